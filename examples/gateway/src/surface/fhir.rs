//! The FHIR R4 surface: `/fhir/metadata`, `/fhir/{type}/{id}`, `/fhir/{type}?{search}`.

use crate::Gateway;
use crate::search::{self, SERVED_TYPES};
use crate::store::{Page, StoredResource};
use crate::surface::http::{ErrorStyle, SurfaceState, error_response, finish_surface};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::OpenApi;
use xenrad_fhir_model::ResourceType;
use xenrad_fhir_model::bundle::{EntryMode, SearchSet};
use xenrad_fhir_model::capability::CapabilityStatementBuilder;
use xenrad_fhir_model::outcome::{OperationOutcome, Severity};

const FHIR_JSON: &str = "application/fhir+json";

/// The FHIR surface's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Xenrad FHIR R4", version = "0.1.0", description = "FHIR R4 (4.0.1) read and search over resources projected from HL7 v2/v3, DICOM and MPPS ingest."),
    paths(metadata, read, search_type),
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
        .route("/fhir/{resource_type}", get(search_type))
        .route("/fhir/{resource_type}/{id}", get(read))
        .merge(crate::surface::dicomweb::routes())
        .with_state(gw);
    let mut api = FhirApi::openapi();
    api.merge(<crate::surface::dicomweb::DicomWebApi as OpenApi>::openapi());
    let doc = api.to_pretty_json().unwrap_or_default();
    finish_surface(r, state, doc, max_body)
}

fn fhir_error(status: StatusCode, code: &'static str, detail: &str) -> Response {
    error_response(ErrorStyle::Fhir, status, code, detail)
}

fn outcome_response(status: StatusCode, oo: &OperationOutcome) -> Response {
    fhir_text(status, oo.to_json())
}

/// A 404 OperationOutcome for a resource type this server does not serve.
fn unserved(resource_type: &str) -> Option<Response> {
    (!SERVED_TYPES.contains(&resource_type)).then(|| {
        fhir_error(
            StatusCode::NOT_FOUND,
            "not-supported",
            &format!("resource type {resource_type:?} is not served here"),
        )
    })
}

/// A FHIR JSON response whose body was written by `xenrad-fhir-model` (stored
/// resources are the model's own serialisation, so they are served as stored).
fn fhir_text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response()
}

/// The CapabilityStatement (FHIR R4 §2.38): `read` and `search-type` on the served
/// types, with exactly the search parameters the gateway executes.
pub fn capability_statement(base_url: &str) -> Result<String, xenrad_fhir_model::Error> {
    let mut b =
        CapabilityStatementBuilder::new("xenrad-gateway", env!("CARGO_PKG_VERSION"), "2026-11-26")
            .base_url(base_url);
    for t in SERVED_TYPES {
        let rt = ResourceType::from_name(t).expect("served types are R4 resource types");
        let params: Vec<&'static str> = search::params_for(t).iter().map(|(n, _)| *n).collect();
        b = b.resource(rt, &["read", "search-type"], &params)?;
    }
    Ok(xenrad_fhir_model::to_json(&b.build()?))
}

/// The FHIR base URL as the client addressed it.
fn base_url(gw: &Gateway, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| gw.config.fhir_addr.to_string(), str::to_owned);
    let scheme = if gw.config.fhir_tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}/fhir")
}

/// CapabilityStatement (no key needed).
#[utoipa::path(get, path = "/fhir/metadata", security(()),
    responses((status = 200, description = "The server's CapabilityStatement", content_type = "application/fhir+json")))]
async fn metadata(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    match capability_statement(&base_url(&gw, &headers)) {
        Ok(body) => fhir_text(StatusCode::OK, body),
        Err(e) => fhir_error(
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

/// Reads one resource, with its version as ETag.
#[utoipa::path(get, path = "/fhir/{resource_type}/{id}",
    params(("resource_type" = String, Path, description = "Patient, ServiceRequest, ImagingStudy or Procedure", example = "Patient"),
           ("id" = String, Path, description = "Logical id")),
    responses((status = 200, description = "The resource", content_type = "application/fhir+json"),
              (status = 304, description = "Not modified (If-None-Match)"),
              (status = 401, description = "Missing or wrong X-API-Key"),
              (status = 404, description = "No such resource (OperationOutcome)")))]
async fn read(
    State(gw): State<Gateway>,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unserved(&resource_type) {
        return r;
    }
    let (t, i) = (resource_type.clone(), id.clone());
    let found = gw.store.read(move |c| c.resource(&t, &i)).await;
    match found {
        Ok(Some(stored)) => {
            // FHIR R4 §3.1.0.5 (versions, ETag) and HTTP conditional read.
            let etag = format!("W/\"{}\"", stored.version);
            if headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                == Some(etag.as_str())
            {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            let mut r = fhir_text(StatusCode::OK, stored.json());
            if let Ok(v) = HeaderValue::from_str(&etag) {
                r.headers_mut().insert(header::ETAG, v);
            }
            if let Some(v) = http_date(&stored.last_updated) {
                r.headers_mut().insert(header::LAST_MODIFIED, v);
            }
            r
        }
        Ok(None) => fhir_error(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("{resource_type}/{id} is not known"),
        ),
        Err(e) => fhir_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
    }
}

/// Searches one resource type (FHIR R4 §3.1.1), answering a searchset Bundle.
#[utoipa::path(get, path = "/fhir/{resource_type}",
    params(("resource_type" = String, Path, description = "Patient, ServiceRequest, ImagingStudy or Procedure", example = "Patient"),
           ("search" = Option<String>, Query, description = "Search parameters, e.g. name=smith&birthdate=ge1980-01-01&_count=10. Patient: _id identifier name family given birthdate gender active; others: _id identifier subject patient status. Also _count, _sort, _offset.", example = "name=smith")),
    responses((status = 200, description = "A searchset Bundle", content_type = "application/fhir+json"),
              (status = 400, description = "A bad parameter (OperationOutcome)"),
              (status = 401, description = "Missing or wrong X-API-Key")))]
async fn search_type(
    State(gw): State<Gateway>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = unserved(&resource_type) {
        return r;
    }
    let raw = raw.unwrap_or_default();
    let query = match search::parse(&resource_type, &raw) {
        Ok(q) => q,
        Err(oo) => return outcome_response(StatusCode::BAD_REQUEST, &oo),
    };
    // FHIR R4 §3.1.1.4: unknown parameters are ignored (and reported) unless the
    // client asks for strict handling.
    let strict = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').any(|p| p.trim() == "handling=strict"));
    if strict && !query.unknown.is_empty() {
        return fhir_error(
            StatusCode::BAD_REQUEST,
            "not-supported",
            &format!("unknown search parameters: {}", query.unknown.join(", ")),
        );
    }
    let (t, q) = (resource_type.clone(), query.clone());
    let page = match gw.store.read(move |c| c.search(&t, &q)).await {
        Ok(p) => p,
        Err(e) => {
            return fhir_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                &e.to_string(),
            );
        }
    };
    match searchset(&base_url(&gw, &headers), &resource_type, &raw, &query, page) {
        Ok(body) => fhir_text(StatusCode::OK, body),
        Err(e) => fhir_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
    }
}

/// A searchset Bundle with paging links (FHIR R4 §3.1.1.6, Bundle §2.36), built
/// with `xenrad_fhir_model::bundle::SearchSet`; unexecuted parameters are reported
/// in an `outcome` entry.
fn searchset(
    base: &str,
    resource_type: &str,
    raw_query: &str,
    q: &search::Query,
    page: Page,
) -> Result<String, xenrad_fhir_model::Error> {
    let paging_state = xenrad_fhir_model::search::SearchQuery {
        count: Some(q.count),
        offset: Some(q.offset),
        ..Default::default()
    };
    let paging = paging_state.paging(
        &format!("{base}/{resource_type}"),
        raw_query,
        search::DEFAULT_COUNT,
        search::MAX_COUNT,
        Some(page.total),
    );
    let mut set = SearchSet::new(paging);
    for (_, stored) in page.rows {
        set.push(base, parse_stored(&stored)?, EntryMode::Match)?;
    }
    if !q.unknown.is_empty() {
        let oo = OperationOutcome::single(
            Severity::Warning,
            "not-supported",
            format!("ignored search parameters: {}", q.unknown.join(", ")),
        );
        set.push(base, oo.to_resource(), EntryMode::Outcome)?;
    }
    Ok(xenrad_fhir_model::to_json(&set.build()?))
}

/// A stored resource as a model value (for embedding in a Bundle).
fn parse_stored(
    stored: &StoredResource,
) -> Result<xenrad_fhir_model::Resource<'static>, xenrad_fhir_model::Error> {
    let json = stored.json();
    Ok(xenrad_fhir_model::from_json(json.as_bytes())?.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_statement_is_valid_r4() {
        let text = capability_statement("http://h/fhir").unwrap();
        let c: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(c["fhirVersion"], "4.0.1");
        assert_eq!(c["rest"][0]["resource"][0]["type"], "Patient");
        assert_eq!(
            c["rest"][0]["resource"][0]["searchParam"]
                .as_array()
                .unwrap()
                .len(),
            search::params_for("Patient").len()
        );
        let r = xenrad_fhir_model::from_json(text.as_bytes()).expect("reads strictly as R4");
        let oo = xenrad_fhir_model::validate(&r);
        assert!(!oo.has_errors(), "{}", oo.to_json());
    }

    #[test]
    fn searchset_bundle_is_valid_r4() {
        let raw = "name=doe&shoe=9&_count=1";
        let q = search::parse("Patient", raw).unwrap();
        let page = Page {
            total: 3,
            rows: vec![(
                "p1".into(),
                StoredResource {
                    version: 1,
                    last_updated: "2026-01-01T00:00:00Z".into(),
                    body: r#"{"resourceType":"Patient","id":"p1","name":[{"family":"Doe"}]}"#
                        .into(),
                },
            )],
        };
        let text = searchset("http://h/fhir", "Patient", raw, &q, page).unwrap();
        let b: serde_json::Value = serde_json::from_str(&text).unwrap();
        let next = b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .expect("a next link");
        assert_eq!(
            next["url"],
            "http://h/fhir/Patient?name=doe&shoe=9&_count=1&_offset=1"
        );
        assert_eq!(b["entry"][0]["resource"]["meta"]["versionId"], "1");
        assert_eq!(b["entry"][1]["search"]["mode"], "outcome");
        let r = xenrad_fhir_model::from_json(text.as_bytes()).expect("reads strictly as R4");
        let oo = xenrad_fhir_model::validate(&r);
        assert!(!oo.has_errors(), "{}", oo.to_json());
    }
}
