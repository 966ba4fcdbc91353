//! The MPPS surface: the seed's `POST /ingest` and the DICOMweb MPPS-RS paths
//! (PS3.18 chapter 15). The state machine lives in `xenrad-mpps`; DIMSE N-CREATE /
//! N-SET on the DICOM port reach the same state through [`crate::ingest`].

use crate::Gateway;
use crate::ingest::{self, MppsOp};
use crate::surface::fhir::ApiKeyScheme;
use crate::surface::http::{DOC_PATHS, ErrorStyle, SurfaceState, finish_surface, typed};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use utoipa::OpenApi;

/// The MPPS surface's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Xenrad MPPS", version = "0.1.0",
         description = "Modality Performed Procedure Step: the seed JSON on POST /ingest and DICOMweb MPPS-RS (PS3.18 ch. 15) with DICOM JSON. \
Creates must be IN PROGRESS; IN PROGRESS moves to COMPLETED or DISCONTINUED; nothing changes after a final state. \
Identical retries are answered with the stored response (idempotent). The seed JSON carries only the SOP Instance UID, \
the Study Instance UID and the status; the other Type 1/2 attributes of PS3.4 Table F.7.2-1 are recorded empty."),
    paths(seed_ingest, rs_create, rs_update_path, rs_get),
    modifiers(&ApiKeyScheme),
    security(("api_key" = []))
)]
pub struct MppsApi;

/// Builds the surface.
pub fn router(gw: Gateway) -> Router {
    let state = SurfaceState::of(&gw, "mpps", ErrorStyle::Problem, DOC_PATHS);
    let max_body = gw.config.max_body;
    let r = Router::new()
        .route("/ingest", post(seed_ingest))
        .route(
            "/modality-performed-procedure-steps/{uid}",
            post(rs_create).get(rs_get),
        )
        .route(
            "/modality-performed-procedure-steps/{uid}/update",
            post(rs_update_path),
        )
        .with_state(gw);
    finish_surface(
        r,
        state,
        MppsApi::openapi().to_pretty_json().unwrap_or_default(),
        max_body,
    )
}

fn respond(o: ingest::HttpOutcome) -> Response {
    typed(
        StatusCode::from_u16(o.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        o.content_type,
        o.body,
    )
}

/// Seed JSON: creates (IN PROGRESS) or updates (COMPLETED / DISCONTINUED) a step.
///
/// Without `op`, a step not yet known is created and a known one updated. With
/// `op=create` or `op=set` the request is exactly an N-CREATE or N-SET, so e.g. a
/// create that is not IN PROGRESS is refused (400) rather than read as an update
/// of an unknown step (404).
#[utoipa::path(post, path = "/ingest",
    params(("op" = Option<String>, Query, description = "create or set; absent: decided by the stored state")),
    request_body(content = String, content_type = "application/json",
        description = "{\"sop_instance_uid\", \"study_uid\", \"status\"}; status is IN PROGRESS, COMPLETED or DISCONTINUED",
        example = json!({"sop_instance_uid": "1.2.3.4.5", "study_uid": "1.2.3.4.5.6", "status": "IN PROGRESS"})),
    responses(
        (status = 201, description = "Created (DIMSE 0x0000)"),
        (status = 200, description = "Updated, or an identical retry answered with the stored response"),
        (status = 400, description = "Malformed JSON, bad UID or status (0x0106), missing attribute (0x0120)", content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong X-API-Key", content_type = "application/problem+json"),
        (status = 404, description = "Update of an unknown step (0x0112)", content_type = "application/problem+json"),
        (status = 409, description = "Duplicate create (0x0111), update after a final state (0x0110, A710), attribute not allowed (0x0106)", content_type = "application/problem+json")))]
async fn seed_ingest(State(gw): State<Gateway>, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let op = match q
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix("op="))
    {
        None => MppsOp::Seed,
        Some("create") => MppsOp::SeedCreate,
        Some("set") => MppsOp::SeedSet,
        Some(other) => {
            return crate::surface::http::error_response(
                ErrorStyle::Problem,
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("op must be create or set, got {other:?}"),
            );
        }
    };
    respond(ingest::mpps(&gw, op, body).await)
}

/// MPPS-RS create (PS3.18 §15.4) — or update when the query is `?update`.
#[utoipa::path(post, path = "/modality-performed-procedure-steps/{uid}",
    params(("uid" = String, Path, description = "SOP Instance UID of the step", example = "1.2.3.4.5"),
           ("update" = Option<String>, Query, description = "present (`?update`) to update instead of create (PS3.18 §15.5)")),
    request_body(content = String, content_type = "application/dicom+json", description = "DICOM JSON dataset (PS3.18 F.2)"),
    responses((status = 201, description = "Created"), (status = 200, description = "Updated or identical retry"),
              (status = 400, description = "Invalid dataset"), (status = 401, description = "Missing or wrong X-API-Key"),
              (status = 404, description = "Unknown step (update)"), (status = 409, description = "Conflict")))]
async fn rs_create(
    State(gw): State<Gateway>,
    Path(uid): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let update = q.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "update" || p.starts_with("update="))
    });
    let op = if update {
        MppsOp::RsUpdate(uid)
    } else {
        MppsOp::RsCreate(uid)
    };
    respond(ingest::mpps(&gw, op, body).await)
}

/// MPPS-RS update, path form.
#[utoipa::path(post, path = "/modality-performed-procedure-steps/{uid}/update",
    params(("uid" = String, Path, description = "SOP Instance UID of the step", example = "1.2.3.4.5")),
    request_body(content = String, content_type = "application/dicom+json", description = "DICOM JSON with the attributes to set"),
    responses((status = 200, description = "Updated or identical retry"), (status = 400, description = "Invalid dataset"),
              (status = 404, description = "Unknown step"), (status = 409, description = "Final state or attribute not allowed")))]
async fn rs_update_path(
    State(gw): State<Gateway>,
    Path(uid): Path<String>,
    body: Bytes,
) -> Response {
    respond(ingest::mpps(&gw, MppsOp::RsUpdate(uid), body).await)
}

/// MPPS-RS retrieve: the step as DICOM JSON.
#[utoipa::path(get, path = "/modality-performed-procedure-steps/{uid}",
    params(("uid" = String, Path, description = "SOP Instance UID of the step", example = "1.2.3.4.5")),
    responses((status = 200, description = "The step", content_type = "application/dicom+json"),
              (status = 401, description = "Missing or wrong X-API-Key"), (status = 404, description = "Unknown step")))]
async fn rs_get(State(gw): State<Gateway>, Path(uid): Path<String>) -> Response {
    respond(ingest::mpps_get(&gw, uid).await)
}
