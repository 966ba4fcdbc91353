//! The FHIR R4 surface (FHIR R4 http.html): protocol glue only. Reads (`read`, `vread`,
//! history at instance, type and system level), searches (`GET` and `POST _search`), writes
//! (create, update, patch, delete, conditional variants) and `transaction`/`batch` Bundles
//! call [`crate::ingest::fhir`] on the store; formats are negotiated here (`_format`,
//! `Accept`, `Content-Type`: FHIR JSON and XML, 406/415 otherwise, `_pretty`).
//!
//! Stored resources are the bytes the model wrote (with `meta`): JSON answers and searchset
//! or history Bundles are assembled from them without parsing; only XML output, `_pretty`,
//! `_summary` and `_elements` go through the model.

// Handlers return a ready `Response` as their error (axum's idiom); boxing it buys nothing.
#![allow(clippy::result_large_err)]

use crate::Gateway;
use crate::ingest::fhir::{self as rest, Refusal, Written};
use crate::search::{self, DEFAULT_COUNT, MAX_COUNT};
use crate::store::{Current, HistoryEntry, HistoryQuery, HistoryScope, StoreError};
use crate::surface::http::{ErrorStyle, SurfaceState, error_response, finish_surface};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::{Arc, Mutex};
use utoipa::OpenApi;
use xenrad_fhir_model::bundle::{
    BundleWriter, EntryMode, Paging, RawEntry, RawRequest, RawResponse,
};
use xenrad_fhir_model::capability::{CapabilityStatementBuilder, ResourceOptions};
use xenrad_fhir_model::outcome::{OperationOutcome, Severity};
use xenrad_fhir_model::schema::SearchParamType;
use xenrad_fhir_model::subset::{self, Summary};
use xenrad_fhir_model::{Resource, ResourceType};

const FHIR_JSON: &str = "application/fhir+json";
const FHIR_XML: &str = "application/fhir+xml";

/// The FHIR surface's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Xenrad FHIR R4", version = "0.2.0", description = "FHIR R4 (4.0.1) RESTful API over every resource type: read, vread, history (instance, type, system), search (every R4 search parameter except composite and special ones; chains, _has, _include/_revinclude with :iterate, _summary, _elements, _total, _sort, _count), create, update, patch (JSON Patch), delete, conditional create/update/delete, If-Match, Prefer return, transaction and batch Bundles; JSON and XML. Resources projected from HL7 v2/v3, DICOM and MPPS ingest are served the same way."),
    paths(metadata, read, vread, history_instance, history_type, history_system, search_type, search_post, create, update, conditional_update, patch, conditional_patch, delete, conditional_delete, bundle),
    modifiers(&ApiKeyScheme),
    security(("api_key" = []))
)]
pub struct FhirApi;

/// Adds the `X-API-Key` security scheme.
pub struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Builds the surface.
pub fn router(gw: Gateway) -> Router {
    let state = SurfaceState::of(
        &gw,
        "fhir",
        ErrorStyle::Fhir,
        &[
            "/fhir/metadata",
            "/api/documentation",
            "/api/documentation/openapi.json",
        ],
    );
    let max_body = gw.config.max_body;
    let r = Router::new()
        .route("/fhir/metadata", get(metadata))
        .route("/fhir", post(bundle))
        .route("/fhir/_history", get(history_system))
        .route(
            "/fhir/{resource_type}",
            get(search_type)
                .post(create)
                .put(conditional_update)
                .patch(conditional_patch)
                .delete(conditional_delete),
        )
        .route("/fhir/{resource_type}/_search", post(search_post))
        .route("/fhir/{resource_type}/_history", get(history_type))
        .route(
            "/fhir/{resource_type}/{id}",
            get(read).put(update).patch(patch).delete(delete),
        )
        .route("/fhir/{resource_type}/{id}/_history", get(history_instance))
        .route("/fhir/{resource_type}/{id}/_history/{vid}", get(vread))
        .merge(crate::surface::dicomweb::routes())
        .with_state(gw);
    let mut api = FhirApi::openapi();
    api.merge(<crate::surface::dicomweb::DicomWebApi as OpenApi>::openapi());
    let doc = api.to_pretty_json().unwrap_or_default();
    finish_surface(r, state, doc, max_body)
}

/// FHIR serialisation of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/fhir+json`.
    Json,
    /// `application/fhir+xml`.
    Xml,
}

impl Format {
    fn from_mime(m: &str) -> Option<Format> {
        let m = m
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match m.as_str() {
            "json"
            | "application/fhir+json"
            | "application/json"
            | "application/json+fhir"
            | "*/*"
            | "application/*" => Some(Format::Json),
            "xml"
            | "application/fhir+xml"
            | "application/xml"
            | "text/xml"
            | "application/xml+fhir" => Some(Format::Xml),
            _ => None,
        }
    }
}

/// What the response should look like: format and `_pretty`.
#[derive(Clone, Copy, Debug)]
struct Out {
    format: Format,
    pretty: bool,
}

fn query_value<'q>(raw: &'q str, key: &str) -> Option<&'q str> {
    raw.split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// `_format` wins over `Accept`; no acceptable format is 406 (FHIR R4 http.html#mime-type).
fn negotiate(headers: &HeaderMap, raw: &str) -> Result<Out, Response> {
    let pretty = query_value(raw, "_pretty") == Some("true");
    if let Some(f) = query_value(raw, "_format") {
        let f = xenrad_fhir_model::search::percent_decode(f).unwrap_or_default();
        return match Format::from_mime(&f) {
            Some(format) => Ok(Out { format, pretty }),
            None => Err(plain_error(
                StatusCode::NOT_ACCEPTABLE,
                "not-supported",
                &format!("_format {f:?}: this server answers FHIR JSON or XML"),
            )),
        };
    }
    let Some(accept) = header_str(headers, header::ACCEPT) else {
        return Ok(Out {
            format: Format::Json,
            pretty,
        });
    };
    let mut any = false;
    for m in accept.split(',') {
        any = true;
        if let Some(format) = Format::from_mime(m) {
            return Ok(Out { format, pretty });
        }
    }
    if !any || accept.trim().is_empty() {
        return Ok(Out {
            format: Format::Json,
            pretty,
        });
    }
    Err(plain_error(
        StatusCode::NOT_ACCEPTABLE,
        "not-supported",
        &format!(
            "Accept {accept:?}: this server answers application/fhir+json or application/fhir+xml"
        ),
    ))
}

/// A request header's value as text (`None` when absent or not visible ASCII).
fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The request body's format from `Content-Type` (absent: JSON); anything else is 415.
fn body_format(headers: &HeaderMap) -> Result<Format, Response> {
    match header_str(headers, header::CONTENT_TYPE) {
        None => Ok(Format::Json),
        Some(ct) => Format::from_mime(ct)
            .filter(|_| !ct.starts_with("*/*"))
            .ok_or_else(|| {
                plain_error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "not-supported",
                    &format!(
                        "Content-Type {ct:?}: send application/fhir+json or application/fhir+xml"
                    ),
                )
            }),
    }
}

fn plain_error(status: StatusCode, code: &'static str, detail: &str) -> Response {
    error_response(ErrorStyle::Fhir, status, code, detail)
}

/// A body (resource JSON written by the model) in the negotiated format.
fn body_response(status: StatusCode, out: Out, json: String) -> Response {
    let (ct, body) = match (out.format, out.pretty) {
        (Format::Json, false) => (FHIR_JSON, json),
        (Format::Json, true) => match xenrad_fhir_model::from_json(json.as_bytes()) {
            Ok(r) => (FHIR_JSON, xenrad_fhir_model::to_json_pretty(&r)),
            Err(_) => (FHIR_JSON, json),
        },
        (Format::Xml, _) => match xenrad_fhir_model::from_json(json.as_bytes()) {
            Ok(r) => (FHIR_XML, xenrad_fhir_model::xml::to_xml(&r)),
            Err(e) => {
                return plain_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    &e.to_string(),
                );
            }
        },
    };
    let ct = if out.format == Format::Xml {
        format!("{ct}; charset=utf-8")
    } else {
        ct.to_owned()
    };
    (status, [(header::CONTENT_TYPE, ct)], body).into_response()
}

fn outcome_response(status: u16, out: Out, oo: &OperationOutcome) -> Response {
    body_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        out,
        oo.to_json(),
    )
}

fn refusal(out: Out, r: &Refusal) -> Response {
    outcome_response(r.status, out, &r.outcome)
}

fn store_error(out: Out, e: &StoreError) -> Response {
    refusal(out, &Refusal::from(e.clone_lossy()))
}

trait CloneLossy {
    fn clone_lossy(&self) -> StoreError;
}
impl CloneLossy for StoreError {
    fn clone_lossy(&self) -> StoreError {
        if self.is_full() {
            StoreError::Full(self.to_string())
        } else {
            StoreError::Job(self.to_string())
        }
    }
}

/// The resource type of a path, or 404 (FHIR R4: an unknown type is not found).
fn type_named(name: &str, out: Out) -> Result<ResourceType, Response> {
    ResourceType::from_name(name).ok_or_else(|| {
        refusal(
            out,
            &Refusal::new(
                404,
                "not-supported",
                format!("{name:?} is not an R4 resource type"),
            ),
        )
    })
}

/// The CapabilityStatement (FHIR R4 capabilitystatement.html), generated from what is
/// executed: every resource type with its interactions, the search parameters the index
/// executes, `_include`/`_revinclude` targets (its reference parameters and those pointing
/// at it), versioning and conditional support, JSON and XML, and the API key.
pub fn capability_statement(base_url: &str) -> Result<String, xenrad_fhir_model::Error> {
    let mut b = CapabilityStatementBuilder::new("xenrad-gateway", env!("CARGO_PKG_VERSION"), "2026-12-08")
        .base_url(base_url)
        .formats(&["application/fhir+json", "application/fhir+xml", "json", "xml"])
        .system_interactions(&["transaction", "batch", "history-system"])
        .security("Every request except /fhir/metadata needs the X-API-Key header (one of the keys given with --api-key or XENRAD_API_KEYS); TLS with --fhir-tls-cert, client certificates with --fhir-tls-client-ca.");
    let interactions = [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ];
    for rt in ResourceType::all() {
        let params = search::params_for(rt);
        let codes: Vec<&'static str> = params.iter().map(|d| d.code).collect();
        let mut o = ResourceOptions::versioned_read_write();
        o.search_include = params
            .iter()
            .filter(|d| d.kind == SearchParamType::Reference)
            .map(|d| format!("{rt}:{}", d.code))
            .collect();
        if !o.search_include.is_empty() {
            o.search_include.push("*".into());
        }
        o.search_rev_include = ResourceType::all()
            .flat_map(|src| {
                search::params_for(src)
                    .into_iter()
                    .filter(move |d| {
                        d.kind == SearchParamType::Reference && d.target.contains(&rt.as_str())
                    })
                    .map(move |d| format!("{src}:{}", d.code))
            })
            .collect();
        b = b.resource_with(rt, &interactions, &codes, o)?;
    }
    Ok(xenrad_fhir_model::to_json(&b.build()?))
}

/// The FHIR base URL as the client addressed it.
fn base_url(gw: &Gateway, headers: &HeaderMap) -> String {
    let host = header_str(headers, header::HOST)
        .map_or_else(|| gw.config.fhir_addr.to_string(), str::to_owned);
    let scheme = if gw.config.fhir_tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}/fhir")
}

/// The CapabilityStatement, built once per base URL (it lists every resource type).
fn cached_capability(base: &str) -> Result<String, xenrad_fhir_model::Error> {
    static CACHE: Mutex<Vec<(String, Arc<String>)>> = Mutex::new(Vec::new());
    let mut c = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, s)) = c.iter().find(|(b, _)| b == base) {
        return Ok(s.as_str().to_owned());
    }
    let s = capability_statement(base)?;
    if c.len() < 16 {
        c.push((base.to_owned(), Arc::new(s.clone())));
    }
    Ok(s)
}

/// CapabilityStatement (no key needed).
#[utoipa::path(get, path = "/fhir/metadata", security(()),
    params(("_format" = Option<String>, Query, description = "json or xml")),
    responses((status = 200, description = "The server's CapabilityStatement", content_type = "application/fhir+json")))]
async fn metadata(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let raw = raw.unwrap_or_default();
    let out = match negotiate(&headers, &raw) {
        Ok(o) => o,
        Err(r) => return r,
    };
    match cached_capability(&base_url(&gw, &headers)) {
        Ok(body) => body_response(StatusCode::OK, out, body),
        Err(e) => plain_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
    }
}

fn http_date(rfc3339: &str) -> Option<HeaderValue> {
    let d = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    HeaderValue::from_str(&d.to_utc().format("%a, %d %b %Y %H:%M:%S GMT").to_string()).ok()
}

fn version_headers(r: &mut Response, version: i64, last_updated: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
        r.headers_mut().insert(header::ETAG, v);
    }
    if let Some(v) = http_date(last_updated) {
        r.headers_mut().insert(header::LAST_MODIFIED, v);
    }
}

/// `_summary`/`_elements` of a read or search, applied to one stored resource.
fn subset_json(json: &str, summary: Option<Summary>, elements: &[String]) -> Option<String> {
    if summary.is_none_or(|s| s == Summary::False) && elements.is_empty() {
        return Some(json.to_owned());
    }
    let r = xenrad_fhir_model::from_json(json.as_bytes()).ok()?;
    if let Some(s) = summary.filter(|s| *s != Summary::False) {
        return subset::summarize(&r, s).map(|x| xenrad_fhir_model::to_json(&x));
    }
    let names: Vec<&str> = elements.iter().map(String::as_str).collect();
    Some(xenrad_fhir_model::to_json(&subset::elements(&r, &names).0))
}

/// Reads one resource, with its version as ETag; a deleted one is 410.
#[utoipa::path(get, path = "/fhir/{resource_type}/{id}",
    params(("resource_type" = String, Path, description = "Any R4 resource type", example = "Patient"),
           ("id" = String, Path, description = "Logical id"),
           ("_format" = Option<String>, Query, description = "json or xml"),
           ("_summary" = Option<String>, Query, description = "true, text, data"),
           ("_elements" = Option<String>, Query, description = "Top-level elements to return")),
    responses((status = 200, description = "The resource", content_type = "application/fhir+json"),
              (status = 304, description = "Not modified (If-None-Match)"),
              (status = 401, description = "Missing or wrong X-API-Key"),
              (status = 404, description = "No such resource (OperationOutcome)"),
              (status = 406, description = "Neither JSON nor XML acceptable"),
              (status = 410, description = "Deleted (OperationOutcome)")))]
async fn read(
    State(gw): State<Gateway>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let raw = raw.unwrap_or_default();
    let out = match negotiate(&headers, &raw) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let rt = match type_named(&resource_type, out) {
        Ok(rt) => rt,
        Err(r) => return r,
    };
    let i = id.clone();
    match gw.store.read(move |c| c.current(rt.as_str(), &i)).await {
        Ok(Some(Current::Live(stored))) => {
            let etag = format!("W/\"{}\"", stored.version);
            if header_str(&headers, header::IF_NONE_MATCH) == Some(etag.as_str()) {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            let summary = query_value(&raw, "_summary").and_then(Summary::parse);
            let elements: Vec<String> = query_value(&raw, "_elements")
                .map(|e| xenrad_fhir_model::search::percent_decode(e).unwrap_or_default())
                .map(|e| e.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            let body = subset_json(&stored.body, summary, &elements).unwrap_or(stored.body.clone());
            let mut r = body_response(StatusCode::OK, out, body);
            version_headers(&mut r, stored.version, &stored.last_updated);
            r
        }
        Ok(Some(Current::Deleted {
            version,
            last_updated,
        })) => {
            let mut r = refusal(
                out,
                &Refusal::new(
                    410,
                    "deleted",
                    format!("{rt}/{id} was deleted (version {version})"),
                ),
            );
            version_headers(&mut r, version, &last_updated);
            r
        }
        Ok(None) => refusal(
            out,
            &Refusal::new(404, "not-found", format!("{rt}/{id} is not known")),
        ),
        Err(e) => store_error(out, &e),
    }
}

/// Reads one version (vread).
#[utoipa::path(get, path = "/fhir/{resource_type}/{id}/_history/{vid}",
    params(("resource_type" = String, Path, description = "Resource type", example = "Patient"),
           ("id" = String, Path, description = "Logical id"), ("vid" = String, Path, description = "Version id")),
    responses((status = 200, description = "That version", content_type = "application/fhir+json"),
              (status = 404, description = "No such version"), (status = 410, description = "That version is a delete")))]
async fn vread(
    State(gw): State<Gateway>,
    Path((resource_type, id, vid)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let raw = raw.unwrap_or_default();
    let out = match negotiate(&headers, &raw) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let rt = match type_named(&resource_type, out) {
        Ok(rt) => rt,
        Err(r) => return r,
    };
    let Ok(v) = vid.parse::<i64>() else {
        return refusal(
            out,
            &Refusal::new(
                404,
                "not-found",
                format!("{rt}/{id} has no version {vid:?}"),
            ),
        );
    };
    let i = id.clone();
    match gw.store.read(move |c| c.version(rt.as_str(), &i, v)).await {
        Ok(Some(HistoryEntry {
            body: Some(body),
            version,
            last_updated,
            ..
        })) => {
            let mut r = body_response(StatusCode::OK, out, body);
            version_headers(&mut r, version, &last_updated);
            r
        }
        Ok(Some(h)) => {
            let mut r = refusal(
                out,
                &Refusal::new(
                    410,
                    "deleted",
                    format!("version {v} of {rt}/{id} is its delete"),
                ),
            );
            version_headers(&mut r, h.version, &h.last_updated);
            r
        }
        Ok(None) => refusal(
            out,
            &Refusal::new(404, "not-found", format!("{rt}/{id} has no version {v}")),
        ),
        Err(e) => store_error(out, &e),
    }
}

/// `_since`/`_at` of a history request, as stored timestamps.
fn instant_param(raw: &str, key: &str) -> Result<Option<String>, Refusal> {
    let Some(v) = query_value(raw, key) else {
        return Ok(None);
    };
    let v = xenrad_fhir_model::search::percent_decode(v).unwrap_or_default();
    let (low, high) = search::search_date_range(&v).ok_or_else(|| {
        Refusal::new(
            400,
            "invalid",
            format!("{key}: {v:?} is not a date or instant"),
        )
    })?;
    let bound = if key == "_since" { low } else { high };
    Ok(Some(format!("{bound}Z")))
}

async fn history(
    gw: Gateway,
    headers: HeaderMap,
    raw: String,
    scope: (Option<ResourceType>, Option<String>),
) -> Response {
    let out = match negotiate(&headers, &raw) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let parse_n = |k: &str, d: usize| {
        query_value(&raw, k)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(d)
    };
    let (since, before) = match (instant_param(&raw, "_since"), instant_param(&raw, "_at")) {
        (Ok(s), Ok(b)) => (s, b),
        (Err(r), _) | (_, Err(r)) => return refusal(out, &r),
    };
    let q = HistoryQuery {
        since,
        before,
        count: parse_n("_count", DEFAULT_COUNT).min(MAX_COUNT),
        offset: parse_n("_offset", 0),
    };
    let base = base_url(&gw, &headers);
    let (rt, id) = scope.clone();
    let q2 = q.clone();
    let found = gw
        .store
        .read(move |c| {
            let scope = match (&rt, &id) {
                (Some(t), Some(i)) => HistoryScope::Instance(t.as_str(), i),
                (Some(t), None) => HistoryScope::Type(t.as_str()),
                _ => HistoryScope::System,
            };
            c.history(scope, &q2)
        })
        .await;
    let (total, rows) = match found {
        Ok(x) => x,
        Err(e) => return store_error(out, &e),
    };
    let path = match &scope {
        (Some(t), Some(i)) => format!("{base}/{t}/{i}/_history"),
        (Some(t), None) => format!("{base}/{t}/_history"),
        _ => format!("{base}/_history"),
    };
    let kept: Vec<&str> = raw
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("_count=") && !p.starts_with("_offset="))
        .collect();
    let paging = Paging {
        base: if kept.is_empty() {
            path
        } else {
            format!("{path}?{}", kept.join("&"))
        },
        offset: q.offset,
        count: q.count,
        total: Some(total),
    };
    let mut w = BundleWriter::with_capacity(
        "history",
        Some(total),
        &paging.links(),
        512 + rows
            .iter()
            .map(|h| h.body.as_ref().map_or(64, String::len) + 160)
            .sum::<usize>(),
    );
    for h in &rows {
        let full = format!("{base}/{}/{}", h.resource_type, h.id);
        let url = if h.method == "POST" {
            h.resource_type.clone()
        } else {
            format!("{}/{}", h.resource_type, h.id)
        };
        let etag = format!("W/\"{}\"", h.version);
        let status = match h.method.as_str() {
            "POST" => "201 Created",
            "DELETE" => "204 No Content",
            _ => "200 OK",
        };
        w.entry(&RawEntry {
            full_url: Some(&full),
            resource: h.body.as_deref(),
            request: Some(RawRequest {
                method: &h.method,
                url: &url,
            }),
            response: Some(RawResponse {
                status,
                etag: Some(&etag),
                last_modified: Some(&h.last_updated),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    body_response(StatusCode::OK, out, w.finish())
}

/// History of one resource (every version, deletes included), newest first.
#[utoipa::path(get, path = "/fhir/{resource_type}/{id}/_history",
    params(("resource_type" = String, Path, description = "Resource type", example = "Patient"), ("id" = String, Path, description = "Logical id"),
           ("_count" = Option<usize>, Query, description = "Page size"), ("_since" = Option<String>, Query, description = "Versions since this instant"), ("_at" = Option<String>, Query, description = "Versions up to this instant")),
    responses((status = 200, description = "A history Bundle", content_type = "application/fhir+json")))]
async fn history_instance(
    State(gw): State<Gateway>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let raw = raw.unwrap_or_default();
    let Some(rt) = ResourceType::from_name(&resource_type) else {
        return plain_error(
            StatusCode::NOT_FOUND,
            "not-supported",
            &format!("{resource_type:?} is not an R4 resource type"),
        );
    };
    history(gw, headers, raw, (Some(rt), Some(id))).await
}

/// History of one resource type, newest first.
#[utoipa::path(get, path = "/fhir/{resource_type}/_history",
    params(("resource_type" = String, Path, description = "Resource type", example = "Patient"), ("_count" = Option<usize>, Query, description = "Page size"), ("_since" = Option<String>, Query, description = "Versions since this instant")),
    responses((status = 200, description = "A history Bundle", content_type = "application/fhir+json")))]
async fn history_type(
    State(gw): State<Gateway>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let raw = raw.unwrap_or_default();
    let Some(rt) = ResourceType::from_name(&resource_type) else {
        return plain_error(
            StatusCode::NOT_FOUND,
            "not-supported",
            &format!("{resource_type:?} is not an R4 resource type"),
        );
    };
    history(gw, headers, raw, (Some(rt), None)).await
}

/// History of the whole server, newest first.
#[utoipa::path(get, path = "/fhir/_history",
    params(("_count" = Option<usize>, Query, description = "Page size"), ("_since" = Option<String>, Query, description = "Versions since this instant")),
    responses((status = 200, description = "A history Bundle", content_type = "application/fhir+json")))]
async fn history_system(
    State(gw): State<Gateway>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    history(gw, headers, raw.unwrap_or_default(), (None, None)).await
}

fn prefers_strict(headers: &HeaderMap) -> bool {
    prefer(headers, "handling") == Some("strict")
}

/// A `Prefer` header token's value (`return`, `handling`).
fn prefer<'h>(headers: &'h HeaderMap, key: &str) -> Option<&'h str> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// Searches one resource type (FHIR R4 §3.1.1), answering a searchset Bundle.
#[utoipa::path(get, path = "/fhir/{resource_type}",
    params(("resource_type" = String, Path, description = "Any R4 resource type", example = "Patient"),
           ("search" = Option<String>, Query, description = "Search parameters: every R4 parameter of the type except composite and special ones, with modifiers :exact :contains :missing :not :above :below :[type], prefixes eq ne lt gt le ge sa eb ap, chains (subject:Patient.name=x), _has, _id, _lastUpdated, _include/_revinclude (:iterate), _summary (true text data count), _elements, _total, _sort, _count, _offset. Parameters not executed are listed in an OperationOutcome entry (Prefer: handling=strict refuses them).", example = "name=smith")),
    responses((status = 200, description = "A searchset Bundle", content_type = "application/fhir+json"),
              (status = 400, description = "A bad or (strict) unsupported parameter (OperationOutcome)"),
              (status = 401, description = "Missing or wrong X-API-Key")))]
async fn search_type(
    State(gw): State<Gateway>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    run_search(gw, resource_type, raw.unwrap_or_default(), headers).await
}

/// Searches with the parameters in an `application/x-www-form-urlencoded` body (and the URL).
#[utoipa::path(post, path = "/fhir/{resource_type}/_search",
    params(("resource_type" = String, Path, description = "Any R4 resource type", example = "Patient")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "Search parameters"),
    responses((status = 200, description = "A searchset Bundle", content_type = "application/fhir+json")))]
async fn search_post(
    State(gw): State<Gateway>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut q = raw.unwrap_or_default();
    let form = String::from_utf8_lossy(&body);
    let form = form.trim();
    if !form.is_empty() {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(form);
    }
    run_search(gw, resource_type, q, headers).await
}

async fn run_search(
    gw: Gateway,
    resource_type: String,
    raw: String,
    headers: HeaderMap,
) -> Response {
    let out = match negotiate(&headers, &raw) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let rt = match resource_type_of_search(&resource_type, out) {
        Ok(rt) => rt,
        Err(r) => return r,
    };
    let query = match search::parse(rt, &raw) {
        Ok(q) => q,
        Err(oo) => return outcome_response(400, out, &oo),
    };
    if prefers_strict(&headers) && !query.unknown.is_empty() {
        return refusal(
            out,
            &Refusal::new(
                400,
                "not-supported",
                format!(
                    "search parameters not executed: {}",
                    query.unknown.join(", ")
                ),
            ),
        );
    }
    let q = query.clone();
    let mut count_only = q.clone();
    if query.summary == Some(Summary::Count) {
        count_only.count = 0;
    }
    let found = match gw
        .store
        .read(move |c| rest::search_with_includes(c, rt, &count_only))
        .await
    {
        Ok(f) => f,
        Err(e) => return store_error(out, &e),
    };
    match searchset(&base_url(&gw, &headers), rt, &raw, &q, &found) {
        Some(body) => body_response(StatusCode::OK, out, body),
        None => plain_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "a stored resource could not be subsetted",
        ),
    }
}

fn resource_type_of_search(name: &str, out: Out) -> Result<ResourceType, Response> {
    type_named(name, out)
}

/// A searchset Bundle with paging links (FHIR R4 §3.1.1.6, Bundle §2.36), written around
/// the stored bytes by `BundleWriter` (no parse unless `_summary`/`_elements` cut them);
/// unexecuted parameters are reported in an `outcome` entry.
fn searchset(
    base: &str,
    rt: ResourceType,
    raw_query: &str,
    q: &search::Query,
    found: &rest::Found,
) -> Option<String> {
    let kept: Vec<&str> = raw_query
        .split('&')
        .filter(|p| {
            !p.is_empty()
                && !p.starts_with("_count=")
                && !p.starts_with("_offset=")
                && !p.starts_with("_format=")
                && !p.starts_with("_pretty=")
        })
        .collect();
    let path = format!("{base}/{rt}");
    let count_only = q.summary == Some(Summary::Count);
    let paging = Paging {
        base: if kept.is_empty() {
            path
        } else {
            format!("{path}?{}", kept.join("&"))
        },
        offset: q.offset,
        count: q.count,
        total: (!q.no_total).then_some(found.page.total),
    };
    let links = if count_only {
        Vec::new()
    } else {
        paging.links()
    };
    let size: usize = found
        .page
        .rows
        .iter()
        .map(|(_, s)| s.body.len() + 128)
        .sum::<usize>()
        + found
            .included
            .iter()
            .map(|(_, _, s)| s.body.len() + 128)
            .sum::<usize>();
    let mut w = BundleWriter::with_capacity(
        "searchset",
        (!q.no_total || count_only).then_some(found.page.total),
        &links,
        size + 512,
    );
    let subsetting = q.summary.is_some_and(|s| s != Summary::False) || !q.elements.is_empty();
    let mut full = String::with_capacity(base.len() + 80);
    let mut entry = |w: &mut BundleWriter,
                     t: ResourceType,
                     id: &str,
                     body: &str,
                     mode: EntryMode|
     -> Option<()> {
        full.clear();
        full.push_str(base);
        full.push('/');
        full.push_str(t.as_str());
        full.push('/');
        full.push_str(id);
        let cut;
        let resource = if subsetting {
            cut = subset_json(body, q.summary, &q.elements)?;
            cut.as_str()
        } else {
            body
        };
        w.entry(&RawEntry {
            full_url: Some(&full),
            resource: Some(resource),
            search_mode: Some(mode),
            ..Default::default()
        });
        Some(())
    };
    if !count_only {
        for (id, s) in &found.page.rows {
            entry(&mut w, rt, id, &s.body, EntryMode::Match)?;
        }
        for (t, id, s) in &found.included {
            entry(&mut w, *t, id, &s.body, EntryMode::Include)?;
        }
    }
    if !q.unknown.is_empty() {
        let oo = OperationOutcome::single(
            Severity::Warning,
            "not-supported",
            format!(
                "search parameters not executed (ignored): {}",
                q.unknown.join(", ")
            ),
        )
        .to_json();
        w.entry(&RawEntry {
            resource: Some(&oo),
            search_mode: Some(EntryMode::Outcome),
            ..Default::default()
        });
    }
    Some(w.finish())
}

/// Runs `f` in one store job; a refusal rolls the job back (nothing of it is stored) and is
/// returned as is.
async fn write_job<T, F>(gw: &Gateway, f: F) -> Result<T, Refusal>
where
    T: Send + 'static,
    F: FnOnce(&dyn crate::store::WriteTx, &str) -> Result<T, Refusal> + Send + 'static,
{
    let slot: Arc<Mutex<Option<Refusal>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let r = gw
        .store
        .write(move |tx| {
            let now = crate::store::now();
            f(tx, &now).map_err(|refusal| {
                *s.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(refusal);
                StoreError::Job("refused".into())
            })
        })
        .await;
    match r {
        Ok(v) => Ok(v),
        Err(e) => Err(slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| Refusal::from(e))),
    }
}

/// The answer to a write: `Location`, `ETag`, `Last-Modified`, and the body `Prefer: return=`
/// asks for (representation by default, minimal: none, OperationOutcome).
fn written_response(base: &str, out: Out, headers: &HeaderMap, w: &Written) -> Response {
    let status = StatusCode::from_u16(w.status).unwrap_or(StatusCode::OK);
    let ret = prefer(headers, "return");
    let mut r = match &w.body {
        _ if w.status == 204 || ret == Some("minimal") => status.into_response(),
        Some(body) if ret != Some("OperationOutcome") => body_response(status, out, body.clone()),
        _ => {
            let oo = OperationOutcome::single(
                Severity::Information,
                "informational",
                format!(
                    "{}/{} version {}: {}",
                    w.resource_type,
                    w.id,
                    w.version,
                    status.canonical_reason().unwrap_or("")
                ),
            );
            outcome_response(w.status, out, &oo)
        }
    };
    if w.version > 0 && !w.id.is_empty() {
        version_headers(&mut r, w.version, &w.last_updated);
        if w.status == 201
            && let Ok(v) = HeaderValue::from_str(&format!(
                "{base}/{}/{}/_history/{}",
                w.resource_type, w.id, w.version
            ))
        {
            r.headers_mut().insert(header::LOCATION, v.clone());
            r.headers_mut().insert(header::CONTENT_LOCATION, v);
        }
    }
    r
}

/// Reads and parses a write's body (negotiated format), owned for the store job.
fn parse_body(headers: &HeaderMap, body: &[u8], out: Out) -> Result<Resource<'static>, Response> {
    let fmt = body_format(headers)?;
    rest::read_body(body, fmt == Format::Xml)
        .map(Resource::into_owned)
        .map_err(|r| refusal(out, &r))
}

macro_rules! try_resp {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

/// Creates a resource with a server-assigned id (`If-None-Exist`: conditional create).
#[utoipa::path(post, path = "/fhir/{resource_type}",
    params(("resource_type" = String, Path, description = "Resource type", example = "Patient"),
           ("If-None-Exist" = Option<String>, Header, description = "Conditional create: search parameters (search parameters on the URL are taken the same way)"),
           ("Prefer" = Option<String>, Header, description = "return=minimal | representation | OperationOutcome")),
    request_body(content = String, content_type = "application/fhir+json", description = "The resource (JSON or XML)"),
    responses((status = 201, description = "Created; Location names the version"), (status = 200, description = "If-None-Exist matched one"),
              (status = 400, description = "Unparseable body"), (status = 412, description = "If-None-Exist matched several"),
              (status = 415, description = "Neither JSON nor XML"), (status = 422, description = "Invalid resource: OperationOutcome with the element's expression")))]
async fn create(
    State(gw): State<Gateway>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = raw.unwrap_or_default();
    let out = try_resp!(negotiate(&headers, &raw));
    let rt = try_resp!(type_named(&resource_type, out));
    let r = try_resp!(parse_body(&headers, &body, out));
    if r.resource_type != rt {
        return refusal(
            out,
            &Refusal::new(
                400,
                "invalid",
                format!("a {} posted to /{rt}", r.resource_type),
            ),
        );
    }
    // `If-None-Exist`, or (as Aidbox and fhirpy do it) search parameters on the POST URL
    let cond = header_str(&headers, "if-none-exist")
        .map(|c| c.trim_start_matches('?').to_owned())
        .or_else(|| {
            let kept: Vec<&str> = raw
                .split('&')
                .filter(|p| {
                    !p.is_empty() && !p.starts_with("_format=") && !p.starts_with("_pretty=")
                })
                .collect();
            (!kept.is_empty()).then(|| kept.join("&"))
        });
    let id = match rest::new_id() {
        Ok(i) => i,
        Err(e) => return store_error(out, &e),
    };
    match write_job(&gw, move |tx, now| {
        rest::create(tx, r, cond.as_deref(), &id, now)
    })
    .await
    {
        Ok(w) => written_response(&base_url(&gw, &headers), out, &headers, &w),
        Err(f) => refusal(out, &f),
    }
}

/// Updates (or creates) a resource at a client-chosen id; `If-Match` for versioned updates.
#[utoipa::path(put, path = "/fhir/{resource_type}/{id}",
    params(("resource_type" = String, Path, description = "Resource type", example = "Patient"), ("id" = String, Path, description = "Logical id"),
           ("If-Match" = Option<String>, Header, description = "W/\"version\": update only that version"),
           ("Prefer" = Option<String>, Header, description = "return=minimal | representation | OperationOutcome")),
    request_body(content = String, content_type = "application/fhir+json", description = "The resource, with the same id"),
    responses((status = 200, description = "Updated"), (status = 201, description = "Created"), (status = 400, description = "Bad body or id mismatch"),
              (status = 412, description = "If-Match does not name the current version"), (status = 422, description = "Invalid resource")))]
async fn update(
    State(gw): State<Gateway>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let out = try_resp!(negotiate(&headers, &raw.unwrap_or_default()));
    let rt = try_resp!(type_named(&resource_type, out));
    let r = try_resp!(parse_body(&headers, &body, out));
    let if_match = header_str(&headers, header::IF_MATCH).map(str::to_owned);
    match write_job(&gw, move |tx, now| {
        rest::update(tx, rt, &id, r, if_match.as_deref(), now)
    })
    .await
    {
        Ok(w) => written_response(&base_url(&gw, &headers), out, &headers, &w),
        Err(f) => refusal(out, &f),
    }
}

/// Conditional update: `PUT /{type}?params`.
#[utoipa::path(put, path = "/fhir/{resource_type}",
    params(("resource_type" = String, Path, description = "Resource type", example = "Patient"), ("search" = String, Query, description = "Conditions", example = "identifier=urn:x|1")),
    request_body(content = String, content_type = "application/fhir+json", description = "The resource"),
    responses((status = 200, description = "Updated the single match"), (status = 201, description = "No match: created"), (status = 412, description = "Several matches")))]
async fn conditional_update(
    State(gw): State<Gateway>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = raw.unwrap_or_default();
    let out = try_resp!(negotiate(&headers, &raw));
    let rt = try_resp!(type_named(&resource_type, out));
    let r = try_resp!(parse_body(&headers, &body, out));
    let if_match = header_str(&headers, header::IF_MATCH).map(str::to_owned);
    let new = match rest::new_id() {
        Ok(i) => i,
        Err(e) => return store_error(out, &e),
    };
    match write_job(&gw, move |tx, now| {
        rest::update_conditional(tx, rt, &raw, r, if_match.as_deref(), &new, now)
    })
    .await
    {
        Ok(w) => written_response(&base_url(&gw, &headers), out, &headers, &w),
        Err(f) => refusal(out, &f),
    }
}

/// Patches a resource with a JSON Patch (RFC 6902) or a merge patch (RFC 7386): the body decides.
#[utoipa::path(patch, path = "/fhir/{resource_type}/{id}",
    params(("resource_type" = String, Path, description = "Resource type", example = "Patient"), ("id" = String, Path, description = "Logical id"),
           ("If-Match" = Option<String>, Header, description = "W/\"version\"")),
    request_body(content = String, content_type = "application/json-patch+json", description = "RFC 6902 operations or an RFC 7386 merge patch"),
    responses((status = 200, description = "Patched"), (status = 404, description = "Unknown"), (status = 412, description = "If-Match mismatch"),
              (status = 415, description = "Not a JSON Patch"), (status = 422, description = "A failed test, or an invalid result")))]
async fn patch(
    State(gw): State<Gateway>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let out = try_resp!(negotiate(&headers, &raw.unwrap_or_default()));
    let rt = try_resp!(type_named(&resource_type, out));
    let ct = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
    if !patch_type(ct) {
        return plain_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "PATCH takes application/json-patch+json or application/merge-patch+json",
        );
    }
    let if_match = header_str(&headers, header::IF_MATCH).map(str::to_owned);
    match write_job(&gw, move |tx, now| {
        rest::patch(tx, rt, &id, &body, if_match.as_deref(), now)
    })
    .await
    {
        Ok(w) => written_response(&base_url(&gw, &headers), out, &headers, &w),
        Err(f) => refusal(out, &f),
    }
}

/// The content types PATCH takes (plain and conditional alike).
fn patch_type(ct: &str) -> bool {
    [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/json",
    ]
    .iter()
    .any(|t| ct.starts_with(t))
}

/// Conditional patch: `PATCH /{type}?params` (the single match).
#[utoipa::path(patch, path = "/fhir/{resource_type}",
    params(("resource_type" = String, Path, description = "Resource type", example = "Patient"), ("search" = String, Query, description = "Conditions", example = "identifier=urn:x|1")),
    request_body(content = String, content_type = "application/json-patch+json", description = "RFC 6902 operations or an RFC 7386 merge patch"),
    responses((status = 200, description = "Patched the single match"), (status = 404, description = "No match"), (status = 412, description = "Several matches")))]
async fn conditional_patch(
    State(gw): State<Gateway>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = raw.unwrap_or_default();
    let out = try_resp!(negotiate(&headers, &raw));
    let rt = try_resp!(type_named(&resource_type, out));
    let ct = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
    if !patch_type(ct) {
        return plain_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "PATCH takes application/json-patch+json or application/merge-patch+json",
        );
    }
    let if_match = header_str(&headers, header::IF_MATCH).map(str::to_owned);
    let r = write_job(&gw, move |tx, now| {
        match rest::matching(tx, rt, &raw)?.as_slice() {
            [one] => rest::patch(tx, rt, one, &body, if_match.as_deref(), now),
            [] => Err(Refusal::new(
                404,
                "not-found",
                format!("{raw:?} matches no {rt}"),
            )),
            _ => Err(Refusal::new(
                412,
                "multiple-matches",
                format!("{raw:?} matches several {rt}"),
            )),
        }
    })
    .await;
    match r {
        Ok(w) => written_response(&base_url(&gw, &headers), out, &headers, &w),
        Err(f) => refusal(out, &f),
    }
}

/// Deletes a resource (recorded as a version; a read then answers 410).
#[utoipa::path(delete, path = "/fhir/{resource_type}/{id}",
    params(("resource_type" = String, Path, description = "Resource type", example = "Patient"), ("id" = String, Path, description = "Logical id")),
    responses((status = 200, description = "Deleted (OperationOutcome)"), (status = 204, description = "Nothing to delete")))]
async fn delete(
    State(gw): State<Gateway>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let out = try_resp!(negotiate(&headers, &raw.unwrap_or_default()));
    let rt = try_resp!(type_named(&resource_type, out));
    match write_job(&gw, move |tx, now| rest::delete(tx, rt, &id, now)).await {
        Ok(w) => deleted_response(out, &w),
        Err(f) => refusal(out, &f),
    }
}

fn deleted_response(out: Out, w: &Written) -> Response {
    if w.status == 204 {
        return StatusCode::NO_CONTENT.into_response();
    }
    let oo = OperationOutcome::single(
        Severity::Information,
        "informational",
        format!(
            "deleted {}/{} (version {})",
            w.resource_type, w.id, w.version
        ),
    );
    let mut r = outcome_response(200, out, &oo);
    version_headers(&mut r, w.version, &w.last_updated);
    r
}

/// Conditional delete: `DELETE /{type}?params` (single match).
#[utoipa::path(delete, path = "/fhir/{resource_type}",
    params(("resource_type" = String, Path, description = "Resource type", example = "Patient"), ("search" = String, Query, description = "Conditions", example = "identifier=urn:x|1")),
    responses((status = 200, description = "Deleted the single match"), (status = 204, description = "No match"), (status = 412, description = "Several matches")))]
async fn conditional_delete(
    State(gw): State<Gateway>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let raw = raw.unwrap_or_default();
    let out = try_resp!(negotiate(&headers, &raw));
    let rt = try_resp!(type_named(&resource_type, out));
    match write_job(&gw, move |tx, now| {
        rest::delete_conditional(tx, rt, &raw, now)
    })
    .await
    {
        Ok(w) => deleted_response(out, &w),
        Err(f) => refusal(out, &f),
    }
}

/// `transaction` (all or nothing, one durable store transaction) or `batch` Bundle.
#[utoipa::path(post, path = "/fhir",
    request_body(content = String, content_type = "application/fhir+json", description = "A Bundle of type transaction or batch"),
    responses((status = 200, description = "transaction-response or batch-response Bundle"), (status = 400, description = "Not a transaction/batch, or a bad entry"),
              (status = 404, description = "A transaction entry's target is unknown"), (status = 412, description = "A conditional matched several"),
              (status = 422, description = "A transaction entry is invalid (the expression names Bundle.entry[i])")))]
async fn bundle(
    State(gw): State<Gateway>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let out = try_resp!(negotiate(&headers, &raw.unwrap_or_default()));
    let b = try_resp!(parse_body(&headers, &body, out));
    let plan = match xenrad_fhir_model::transaction::plan(b) {
        Ok(p) => p,
        Err(oo) => return outcome_response(400, out, &oo),
    };
    let base = base_url(&gw, &headers);
    let is_transaction = plan.kind == xenrad_fhir_model::transaction::BundleKind::Transaction;
    let results = match plan.kind {
        xenrad_fhir_model::transaction::BundleKind::Transaction => {
            match write_job(&gw, move |tx, now| rest::transaction(tx, plan, now)).await {
                Ok(r) => r,
                Err(f) => return refusal(out, &f),
            }
        }
        xenrad_fhir_model::transaction::BundleKind::Batch => {
            // entries are independent: each in its own store job (they group-commit)
            let mut results = Vec::with_capacity(plan.entries.len());
            for e in plan.entries {
                let index = e.index;
                let r = write_job(&gw, move |tx, now| {
                    let id = match e.request.method {
                        xenrad_fhir_model::transaction::Method::Post => None,
                        _ => e.request.target.id.clone(),
                    };
                    rest::run_entry(tx, e, id.as_deref(), now)
                })
                .await;
                results.push(r.unwrap_or_else(|f| rest::EntryResult::refused(index, &f)));
            }
            results.sort_by_key(|r| r.index);
            results
        }
    };
    let kind = if is_transaction {
        "transaction-response"
    } else {
        "batch-response"
    };
    let mut w = BundleWriter::new(kind, None, &[]);
    for r in &results {
        let full = r
            .location
            .as_ref()
            .map(|l| format!("{base}/{}", l.split("/_history").next().unwrap_or(l)));
        w.entry(&RawEntry {
            full_url: full.as_deref(),
            resource: r.resource.as_deref(),
            response: Some(RawResponse {
                status: &r.status,
                location: r.location.as_deref(),
                etag: r.etag.as_deref(),
                last_modified: r.last_modified.as_deref(),
                outcome: r.outcome.as_deref(),
            }),
            ..Default::default()
        });
    }
    body_response(StatusCode::OK, out, w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_statement_is_valid_r4() {
        let text = capability_statement("http://h/fhir").unwrap();
        let c: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(c["fhirVersion"], "4.0.1");
        let rest = &c["rest"][0];
        assert_eq!(rest["resource"].as_array().unwrap().len(), 146);
        let patient = rest["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "Patient")
            .unwrap();
        assert_eq!(patient["versioning"], "versioned-update");
        assert!(
            patient["searchParam"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "_lastUpdated")
        );
        assert!(
            patient["searchRevInclude"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == "Observation:subject")
        );
        assert!(
            rest["interaction"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["code"] == "transaction")
        );
        assert!(
            rest["security"]["description"]
                .as_str()
                .unwrap()
                .contains("X-API-Key")
        );
        let r = xenrad_fhir_model::from_json(text.as_bytes()).expect("reads strictly as R4");
        let oo = xenrad_fhir_model::validate(&r);
        assert!(!oo.has_errors(), "{}", oo.to_json());
    }

    #[test]
    fn formats() {
        let mut h = HeaderMap::new();
        assert_eq!(negotiate(&h, "").unwrap().format, Format::Json);
        assert_eq!(negotiate(&h, "_format=xml").unwrap().format, Format::Xml);
        assert_eq!(
            negotiate(&h, "_format=application%2Ffhir%2Bxml")
                .unwrap()
                .format,
            Format::Xml
        );
        assert!(negotiate(&h, "_format=text/csv").is_err());
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, application/fhir+xml;q=0.9"),
        );
        assert_eq!(negotiate(&h, "").unwrap().format, Format::Xml);
        h.insert(header::ACCEPT, HeaderValue::from_static("text/csv"));
        assert_eq!(
            negotiate(&h, "").unwrap_err().status(),
            StatusCode::NOT_ACCEPTABLE
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(
            body_format(&h).unwrap_err().status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        h.insert(
            "prefer",
            HeaderValue::from_static("return=minimal, handling=strict"),
        );
        assert_eq!(prefer(&h, "return"), Some("minimal"));
        assert!(prefers_strict(&h));
    }
}
