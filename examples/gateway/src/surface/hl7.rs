//! The HL7 over HTTP surface: `POST /v2/ingest` (v2.5.1 pipe-delimited) and
//! `POST /v3/ingest` (v3 XML). Message semantics are those of MLLP :3000
//! ([`crate::ingest`]); this module only maps them to HTTP.

use crate::Gateway;
use crate::ingest;
use crate::surface::fhir::ApiKeyScheme;
use crate::surface::http::{DOC_PATHS, ErrorStyle, SurfaceState, finish_surface, typed};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use utoipa::OpenApi;

/// The HL7 surface's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Xenrad HL7 over HTTP", version = "0.1.0",
         description = "HL7 v2.5.1 and HL7 v3 message ingest. Every accepted message is durably stored before it is acknowledged; a repeated delivery (same sender and control id / message id) is acknowledged again and stored once."),
    paths(v2_ingest, v3_ingest),
    modifiers(&ApiKeyScheme),
    security(("api_key" = []))
)]
pub struct Hl7Api;

/// Builds the surface.
pub fn router(gw: Gateway) -> Router {
    let state = SurfaceState::of(&gw, "hl7", ErrorStyle::Problem, DOC_PATHS);
    let max_body = gw.config.max_body;
    let r = Router::new()
        .route("/v2/ingest", post(v2_ingest))
        .route("/v3/ingest", post(v3_ingest))
        .with_state(gw);
    finish_surface(
        r,
        state,
        Hl7Api::openapi().to_pretty_json().unwrap_or_default(),
        max_body,
    )
}

/// Ingests one HL7 v2 message (or a batch); answers its ACK.
#[utoipa::path(post, path = "/v2/ingest",
    request_body(content = String, content_type = "text/plain", description = "An HL7 v2.5.1 message, segments separated by CR",
        example = "MSH|^~\\&|APP|FAC|XEN|FAC|20240101120000||ADT^A08|1|P|2.5.1\rPID|1||ID1||Doe^John||19800101|M\r"),
    responses(
        (status = 200, description = "Accepted and stored: ACK with MSA-1 AA (or CA in enhanced mode)", content_type = "application/hl7-v2"),
        (status = 400, description = "Unparseable or invalid message: ACK with AR/AE and an ERR segment naming the problem", content_type = "application/hl7-v2"),
        (status = 401, description = "Missing or wrong X-API-Key", content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit"),
        (status = 503, description = "Could not store: ACK with AE (retry later)", content_type = "application/hl7-v2")))]
async fn v2_ingest(State(gw): State<Gateway>, headers: HeaderMap, body: Bytes) -> Response {
    let out = ingest::v2(&gw, body).await;
    let ct = match headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        Some(a) if a.contains("text/plain") && !a.contains("application/hl7-v2") => {
            "text/plain; charset=utf-8"
        }
        _ => "application/hl7-v2",
    };
    let status = StatusCode::from_u16(out.http_status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = typed(status, ct, out.ack);
    if let Some(k) = &out.key {
        r.extensions_mut()
            .insert(crate::surface::http::AuditEntities(vec![
                ingest::v2_audit_entity(k),
            ]));
    }
    r
}

/// Ingests one HL7 v3 message (optionally in a SOAP 1.2 envelope); answers an
/// MCCI_IN000002UV01 accept acknowledgement.
#[utoipa::path(post, path = "/v3/ingest",
    request_body(content = String, content_type = "application/xml", description = "An HL7 v3 interaction, e.g. PRPA_IN201301UV02"),
    responses(
        (status = 200, description = "Accepted and stored: MCCI_IN000002UV01 with typeCode AA/CA", content_type = "application/xml"),
        (status = 400, description = "Malformed XML or not an HL7 v3 message: MCCI_IN000002UV01 with AE/AR and the error's line/column", content_type = "application/xml"),
        (status = 401, description = "Missing or wrong X-API-Key", content_type = "application/problem+json"),
        (status = 413, description = "Body larger than the configured limit")))]
async fn v3_ingest(State(gw): State<Gateway>, body: Bytes) -> Response {
    let out = ingest::v3(&gw, body).await;
    let status = StatusCode::from_u16(out.http_status).unwrap_or(StatusCode::BAD_REQUEST);
    typed(status, "application/xml; charset=utf-8", out.ack)
}
