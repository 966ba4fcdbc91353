//! The FHIR R4 surface: `/fhir/metadata`, `/fhir/{type}/{id}`, `/fhir/{type}?{search}`.

use super::Gateway;
use super::http::{ErrorStyle, SurfaceState, error_response, finish_surface};
use super::projection;
use super::search::{self, SERVED_TYPES};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::fmt::Write as _;
use utoipa::OpenApi;

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
        .with_state(gw);
    let doc = FhirApi::openapi().to_pretty_json().unwrap_or_default();
    finish_surface(r, state, doc, max_body)
}

fn fhir_error(status: StatusCode, code: &'static str, detail: &str) -> Response {
    error_response(ErrorStyle::Fhir, status, code, detail)
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

fn fhir_json(status: StatusCode, body: &Value) -> Response {
    // Written through the R4 model so members come in definition order (resourceType
    // and id first) rather than serde_json's sorted order.
    let text = body.to_string();
    let ordered = match xenrad_fhir_model::from_json(text.as_bytes()) {
        Ok(r) => xenrad_fhir_model::to_json(&r),
        Err(_) => text.clone(),
    };
    (status, [(header::CONTENT_TYPE, FHIR_JSON)], ordered).into_response()
}

/// The CapabilityStatement: what this server serves (FHIR R4 §2.38 CapabilityStatement).
pub fn capability_statement() -> Value {
    let resources: Vec<Value> = SERVED_TYPES
        .iter()
        .map(|t| {
            let params: Vec<Value> = search::params_for(t)
                .iter()
                .map(|(n, k)| {
                    json!({"name": n, "type": match k {
                        search::ParamType::String => "string",
                        search::ParamType::Token => "token",
                        search::ParamType::Date => "date",
                        search::ParamType::Reference => "reference",
                    }})
                })
                .collect();
            json!({
                "type": t,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "versioning": "versioned",
                "readHistory": false,
                "searchParam": params,
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "publisher": "Xenrad",
        "kind": "instance",
        "software": {"name": "xenrad-gateway", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Xenrad gateway FHIR R4 surface"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {"description": "Send the X-API-Key header on every request except /fhir/metadata."},
            "resource": resources,
        }],
    })
}

/// CapabilityStatement (no key needed).
#[utoipa::path(get, path = "/fhir/metadata", security(()),
    responses((status = 200, description = "The server's CapabilityStatement", content_type = "application/fhir+json")))]
async fn metadata() -> Response {
    fhir_json(StatusCode::OK, &capability_statement())
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
    let found = gw.store.read(move |c| projection::get(c, &t, &i)).await;
    match found {
        Ok(Some((version, last_updated, body))) => {
            let etag = format!("W/\"{version}\"");
            if headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                == Some(etag.as_str())
            {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            let mut r = fhir_json(StatusCode::OK, &body);
            if let Ok(v) = HeaderValue::from_str(&etag) {
                r.headers_mut().insert(header::ETAG, v);
            }
            if let Some(v) = chrono::DateTime::parse_from_rfc3339(&last_updated)
                .ok()
                .and_then(|d| {
                    HeaderValue::from_str(
                        &d.to_utc().format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
                    )
                    .ok()
                })
            {
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
    let pairs: Vec<(String, String)> = form_pairs(&raw);
    let query = match search::parse_query(&resource_type, &pairs) {
        Ok(q) => q,
        Err(e) => {
            return fhir_error(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("{}: {}", e.param, e.message),
            );
        }
    };
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
    let page = match gw.store.read(move |c| search::execute(c, &t, &q)).await {
        Ok(p) => p,
        Err(e) => {
            return fhir_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                &e.to_string(),
            );
        }
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let base = format!("http://{host}/fhir");
    fhir_json(
        StatusCode::OK,
        &searchset(&base, &resource_type, &pairs, &query, &page),
    )
}

/// Decodes `a=b&c=d` (percent and `+` decoding).
pub fn form_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            x => out.push(x),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:|/,".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A searchset Bundle with `self`/`next`/`previous` links (FHIR R4 §3.1.1.6, §2.36).
fn searchset(
    base: &str,
    resource_type: &str,
    pairs: &[(String, String)],
    q: &search::Query,
    page: &search::Page,
) -> Value {
    let link_for = |offset: usize| {
        let mut parts: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k != "_offset" && k != "_count")
            .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
            .collect();
        parts.push(format!("_count={}", q.count));
        parts.push(format!("_offset={offset}"));
        format!("{base}/{resource_type}?{}", parts.join("&"))
    };
    let mut links = vec![json!({"relation": "self", "url": link_for(q.offset)})];
    if q.offset + page.rows.len() < page.total && q.count > 0 {
        links.push(json!({"relation": "next", "url": link_for(q.offset + q.count)}));
    }
    if q.offset > 0 {
        links.push(
            json!({"relation": "previous", "url": link_for(q.offset.saturating_sub(q.count))}),
        );
    }
    let mut entries: Vec<Value> = page
        .rows
        .iter()
        .map(|(id, _, _, json)| {
            let resource: Value = serde_json::from_str(json).unwrap_or(Value::Null);
            json!({"fullUrl": format!("{base}/{resource_type}/{id}"), "resource": resource, "search": {"mode": "match"}})
        })
        .collect();
    if !q.unknown.is_empty() {
        entries.push(json!({
            "resource": {"resourceType": "OperationOutcome", "issue": [{
                "severity": "warning", "code": "not-supported",
                "diagnostics": format!("ignored unknown search parameters: {}", q.unknown.join(", "))
            }]},
            "search": {"mode": "outcome"}
        }));
    }
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(
            form_pairs("name=smith&identifier=http%3A%2F%2Fx%7C1"),
            vec![
                ("name".to_owned(), "smith".to_owned()),
                ("identifier".to_owned(), "http://x|1".to_owned())
            ]
        );
        assert_eq!(
            form_pairs("a=b+c&d=%zz&e=%4"),
            vec![
                ("a".to_owned(), "b c".to_owned()),
                ("d".to_owned(), "%zz".to_owned()),
                ("e".to_owned(), "%4".to_owned())
            ]
        );
    }

    #[test]
    fn capability_statement_is_valid_r4() {
        let c = capability_statement();
        assert_eq!(c["fhirVersion"], "4.0.1");
        assert_eq!(c["rest"][0]["resource"][0]["type"], "Patient");
        let text = c.to_string();
        let r = xenrad_fhir_model::from_json(text.as_bytes()).expect("reads strictly as R4");
        let oo = xenrad_fhir_model::validate(&r);
        assert!(!oo.has_errors(), "{}", oo.to_json());
    }

    #[test]
    fn searchset_bundle_is_valid_r4() {
        let q = search::parse_query("Patient", &form_pairs("name=doe&shoe=9&_count=1")).unwrap();
        let patient = r#"{"resourceType":"Patient","id":"p1","name":[{"family":"Doe"}]}"#;
        let page = search::Page {
            total: 3,
            rows: vec![(
                "p1".into(),
                1,
                "2026-01-01T00:00:00Z".into(),
                patient.into(),
            )],
        };
        let b = searchset(
            "http://h/fhir",
            "Patient",
            &form_pairs("name=doe&shoe=9&_count=1"),
            &q,
            &page,
        );
        assert_eq!(b["link"][1]["relation"], "next");
        assert!(
            b["link"][1]["url"]
                .as_str()
                .unwrap()
                .ends_with("_count=1&_offset=1")
        );
        assert_eq!(b["entry"][1]["search"]["mode"], "outcome");
        let text = b.to_string();
        let r = xenrad_fhir_model::from_json(text.as_bytes()).expect("reads strictly as R4");
        let oo = xenrad_fhir_model::validate(&r);
        assert!(!oo.has_errors(), "{}", oo.to_json());
    }
}
