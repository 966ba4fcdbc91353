//! DICOMweb (PS3.18) on the FHIR origin under `/dicomweb`, behind the same API key:
//!
//! - QIDO-RS (PS3.18 §10.6): `/studies`, `/series`, `/instances` and the forms under a study
//!   and series, answered from the query/retrieve index ([`crate::store::qr`]) with the standard
//!   query keys, `limit`/`offset`, `includefield` and `fuzzymatching`, in
//!   `application/dicom+json`;
//! - WADO-RS (PS3.18 §10.4): study, series and instance as `multipart/related;
//!   type="application/dicom"`, each part the stored Part 10 file streamed from disk as stored
//!   (never re-encoded), and `/metadata` as DICOM JSON from the stored header attributes;
//! - STOW-RS (PS3.18 §10.5): `POST /dicomweb/studies` with `multipart/related` Part 10
//!   instances, each stored through the DICOM port's file sink (the same journal, durability
//!   and idempotency as a C-STORE) and indexed like one, answered with a Store Instances
//!   Response (Referenced SOP Sequence / Failed SOP Sequence with Failure Reasons).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dicom_dictionary_std::tags;
use serde_json::{Value, json};
use xenrad_dimse::assoc::policy::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, ts};
use xenrad_dimse::dimse::status;
use xenrad_dimse::query::{
    FindOptions, FindQuery, Identifier, InformationModel, QueryError, RetrieveItem,
    decode_identifier, identifier_from_pairs, to_dicom_json,
};
use xenrad_dimse::scp::StoredInstance;
use xenrad_dimse::store::{
    FileMeta, InstanceHeader, InstanceStart, PeekOutcome, StorageSink, parse_part10,
};

use crate::Gateway;
use crate::surface::http::{ErrorStyle, error_response};

/// `application/dicom+json` (PS3.18 §8.7.3.1).
pub const DICOM_JSON: &str = "application/dicom+json";

/// The routes, mounted on the FHIR surface's router.
pub fn routes() -> Router<Gateway> {
    Router::new()
        .route("/dicomweb/studies", get(qido_studies).post(stow))
        .route("/dicomweb/series", get(qido_series))
        .route("/dicomweb/instances", get(qido_instances))
        .route("/dicomweb/studies/{study}", get(wado_study))
        .route("/dicomweb/studies/{study}/metadata", get(metadata_study))
        .route("/dicomweb/studies/{study}/series", get(qido_study_series))
        .route(
            "/dicomweb/studies/{study}/instances",
            get(qido_study_instances),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}",
            get(wado_series),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/metadata",
            get(metadata_series),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances",
            get(qido_series_instances),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}",
            get(wado_instance),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata",
            get(metadata_instance),
        )
}

/// The DICOMweb base URL as the client addressed it (`…/dicomweb`).
pub fn base_url(gw: &Gateway, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| gw.config.fhir_addr.to_string(), str::to_owned);
    let scheme = if gw.config.fhir_tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}/dicomweb")
}

fn problem(status: StatusCode, code: &'static str, detail: &str) -> Response {
    error_response(ErrorStyle::Problem, status, code, detail)
}

fn query_problem(e: &QueryError) -> Response {
    problem(StatusCode::BAD_REQUEST, "invalid", &e.to_string())
}

/// Query levels of the QIDO-RS resources (PS3.18 §10.6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Study,
    Series,
    Instance,
}

impl Level {
    fn dicom(self) -> &'static str {
        match self {
            Level::Study => "STUDY",
            Level::Series => "SERIES",
            Level::Instance => "IMAGE",
        }
    }

    /// The attributes every match carries (PS3.18 §10.6.3.3.1, tables 10.6.3-3 to -5).
    fn default_keys(self) -> &'static [&'static str] {
        match self {
            Level::Study => &[
                "StudyDate",
                "StudyTime",
                "AccessionNumber",
                "ModalitiesInStudy",
                "ReferringPhysicianName",
                "PatientName",
                "PatientID",
                "PatientBirthDate",
                "PatientSex",
                "StudyInstanceUID",
                "StudyID",
                "NumberOfStudyRelatedSeries",
                "NumberOfStudyRelatedInstances",
            ],
            Level::Series => &[
                "Modality",
                "SeriesInstanceUID",
                "SeriesNumber",
                "SeriesDescription",
                "NumberOfSeriesRelatedInstances",
            ],
            Level::Instance => &[
                "SOPClassUID",
                "SOPInstanceUID",
                "InstanceNumber",
                "Rows",
                "Columns",
                "BitsAllocated",
                "NumberOfFrames",
            ],
        }
    }

    /// What `includefield=all` adds to the defaults: the other attributes commonly kept at
    /// this level (PS3.4 C.6.2.1.2 study, series and composite object instance keys).
    fn more_keys(self) -> &'static [&'static str] {
        match self {
            Level::Study => &[
                "StudyDescription",
                "InstitutionName",
                "IssuerOfPatientID",
                "OtherPatientIDs",
                "PatientAge",
                "NameOfPhysiciansReadingStudy",
            ],
            Level::Series => &[
                "StudyDescription",
                "BodyPartExamined",
                "ProtocolName",
                "PerformedProcedureStepStartDate",
                "PerformedProcedureStepStartTime",
                "SeriesDate",
                "SeriesTime",
            ],
            Level::Instance => &[
                "StudyDescription",
                "SeriesDescription",
                "Modality",
                "ImageType",
                "ContentDate",
                "ContentTime",
                "AcquisitionNumber",
                "PhotometricInterpretation",
            ],
        }
    }

    /// This level's keys and those of the levels above (a flat `/series` or `/instances`
    /// query returns the study attributes too, PS3.18 §10.6.3.3.2).
    fn keys_up_to(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for l in [Level::Study, Level::Series, Level::Instance] {
            v.extend_from_slice(l.default_keys());
            if l == self {
                break;
            }
        }
        v
    }
}

/// `limit`, `offset` and the identifier a QIDO-RS request asks for.
struct Qido {
    identifier: Identifier,
    limit: Option<usize>,
    offset: usize,
}

/// Builds the C-FIND-like identifier of a QIDO-RS request (PS3.18 §8.3.4): return keys (the
/// level's defaults and `includefield`), then matching keys from the query parameters, then
/// the UIDs of the path, which win. An unknown attribute, a bad `limit`/`offset` or
/// `fuzzymatching` value is an error (→ 400).
fn qido_request(
    level: Level,
    path_keys: &[(&str, &str)],
    params: &[(String, String)],
) -> Result<Qido, String> {
    let mut returns: Vec<String> = level.keys_up_to().iter().map(|s| (*s).to_owned()).collect();
    let mut matching: Vec<(&str, &str)> = Vec::new();
    let (mut limit, mut offset) = (None, 0usize);
    let number = |name: &str, v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("{name}={v:?} is not a non-negative integer"))
    };
    for (k, v) in params {
        match k.as_str() {
            "limit" => limit = Some(number("limit", v)?),
            "offset" => offset = number("offset", v)?,
            // PS3.18 §8.3.4.1: fuzzy matching is optional; person names already match
            // case-insensitively here, nothing fuzzier is offered.
            "fuzzymatching" => {
                if !matches!(v.as_str(), "true" | "false") {
                    return Err(format!("fuzzymatching={v:?} is neither true nor false"));
                }
            }
            "includefield" => {
                for f in v.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if f == "all" {
                        returns.extend(level.more_keys().iter().map(|s| (*s).to_owned()));
                    } else {
                        returns.push(f.to_owned());
                    }
                }
            }
            _ => matching.push((k.as_str(), v.as_str())),
        }
    }
    let ret_pairs: Vec<(&str, &str)> = returns.iter().map(|k| (k.as_str(), "")).collect();
    let mut identifier = identifier_from_pairs(&ret_pairs).map_err(|e| e.to_string())?;
    let mut keys = matching;
    keys.extend_from_slice(path_keys);
    keys.push(("QueryRetrieveLevel", level.dicom()));
    for e in identifier_from_pairs(&keys).map_err(|e| e.to_string())? {
        identifier.put(e);
    }
    Ok(Qido {
        identifier,
        limit,
        offset,
    })
}

/// The URL of a study, series or instance (the Retrieve URL (0008,1190), PS3.18 §10.6.3.3).
fn resource_url(base: &str, study: &str, series: Option<&str>, instance: Option<&str>) -> String {
    let mut u = format!("{base}/studies/{study}");
    if let Some(s) = series {
        u.push_str("/series/");
        u.push_str(s);
        if let Some(i) = instance {
            u.push_str("/instances/");
            u.push_str(i);
        }
    }
    u
}

fn text(obj: &Identifier, tag: dicom_core::Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim_start().to_owned())
        .filter(|s| !s.is_empty())
}

/// Runs a QIDO-RS search over the index: matches after `offset`, at most `limit`, as one
/// DICOM JSON array (PS3.18 §F.2) with each match's Retrieve URL.
fn qido_search(gw: &Gateway, base: &str, level: Level, q: Qido) -> Result<String, String> {
    let query =
        FindQuery::parse(q.identifier, InformationModel::StudyRoot).map_err(|e| e.to_string())?;
    gw.images.refresh();
    let index = gw.images.index();
    let mut cursor = index
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .find_cursor(query, FindOptions::default());
    let mut out = Vec::new();
    let mut seen = 0usize;
    while q.limit.is_none_or(|l| out.len() < l) {
        let next = cursor.next_match(
            &index
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let Some(mut m) = next else { break };
        seen += 1;
        if seen <= q.offset {
            continue;
        }
        m.remove_element(tags::QUERY_RETRIEVE_LEVEL);
        m.remove_element(tags::SPECIFIC_CHARACTER_SET);
        let study = text(&m, tags::STUDY_INSTANCE_UID).unwrap_or_default();
        let series = text(&m, tags::SERIES_INSTANCE_UID);
        let instance = text(&m, tags::SOP_INSTANCE_UID);
        let url = match level {
            Level::Study => resource_url(base, &study, None, None),
            Level::Series => resource_url(base, &study, series.as_deref(), None),
            Level::Instance => resource_url(base, &study, series.as_deref(), instance.as_deref()),
        };
        let json = to_dicom_json(&m).map_err(|e| e.to_string())?;
        let mut v: Value =
            serde_json::from_str(&json).map_err(|e| format!("DICOM JSON of a match: {e}"))?;
        if let Some(o) = v.as_object_mut() {
            o.insert("00081190".into(), json!({"vr": "UR", "Value": [url]}));
        }
        out.push(v);
    }
    Ok(Value::Array(out).to_string())
}

async fn qido(
    gw: Gateway,
    headers: &HeaderMap,
    level: Level,
    path: Vec<(&'static str, String)>,
    params: Vec<(String, String)>,
) -> Response {
    let base = base_url(&gw, headers);
    let r = tokio::task::spawn_blocking(move || {
        let path_keys: Vec<(&str, &str)> = path.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let q = qido_request(level, &path_keys, &params)?;
        qido_search(&gw, &base, level, q)
    })
    .await;
    match r {
        Ok(Ok(body)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, DICOM_JSON)], body).into_response()
        }
        Ok(Err(e)) => problem(StatusCode::BAD_REQUEST, "invalid", &e),
        Err(e) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        ),
    }
}

type Params = Query<Vec<(String, String)>>;

/// QIDO-RS: search for studies (PS3.18 §10.6).
#[utoipa::path(get, path = "/dicomweb/studies", tag = "DICOMweb",
    params(("query" = Option<String>, Query, description = "Matching keys by keyword or tag (PatientID=123, 00100010=DOE*, StudyDate=20240101-20241231), includefield, limit, offset, fuzzymatching")),
    responses((status = 200, description = "Matching studies", content_type = "application/dicom+json"),
              (status = 400, description = "Unknown attribute or bad value (problem+json)"),
              (status = 401, description = "Missing or wrong X-API-Key")))]
async fn qido_studies(State(gw): State<Gateway>, headers: HeaderMap, Query(p): Params) -> Response {
    qido(gw, &headers, Level::Study, Vec::new(), p).await
}

/// QIDO-RS: search for series of all studies.
#[utoipa::path(get, path = "/dicomweb/series", tag = "DICOMweb",
    responses((status = 200, description = "Matching series", content_type = "application/dicom+json"),
              (status = 400, description = "Unknown attribute or bad value")))]
async fn qido_series(State(gw): State<Gateway>, headers: HeaderMap, Query(p): Params) -> Response {
    qido(gw, &headers, Level::Series, Vec::new(), p).await
}

/// QIDO-RS: search for instances of all studies.
#[utoipa::path(get, path = "/dicomweb/instances", tag = "DICOMweb",
    responses((status = 200, description = "Matching instances", content_type = "application/dicom+json"),
              (status = 400, description = "Unknown attribute or bad value")))]
async fn qido_instances(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Query(p): Params,
) -> Response {
    qido(gw, &headers, Level::Instance, Vec::new(), p).await
}

/// QIDO-RS: search for the series of a study.
#[utoipa::path(get, path = "/dicomweb/studies/{study}/series", tag = "DICOMweb",
    params(("study" = String, Path, description = "Study Instance UID")),
    responses((status = 200, description = "Matching series", content_type = "application/dicom+json")))]
async fn qido_study_series(
    State(gw): State<Gateway>,
    Path(study): Path<String>,
    headers: HeaderMap,
    Query(p): Params,
) -> Response {
    let path = vec![("StudyInstanceUID", study)];
    qido(gw, &headers, Level::Series, path, p).await
}

/// QIDO-RS: search for the instances of a study.
#[utoipa::path(get, path = "/dicomweb/studies/{study}/instances", tag = "DICOMweb",
    params(("study" = String, Path, description = "Study Instance UID")),
    responses((status = 200, description = "Matching instances", content_type = "application/dicom+json")))]
async fn qido_study_instances(
    State(gw): State<Gateway>,
    Path(study): Path<String>,
    headers: HeaderMap,
    Query(p): Params,
) -> Response {
    let path = vec![("StudyInstanceUID", study)];
    qido(gw, &headers, Level::Instance, path, p).await
}

/// QIDO-RS: search for the instances of a series.
#[utoipa::path(get, path = "/dicomweb/studies/{study}/series/{series}/instances", tag = "DICOMweb",
    params(("study" = String, Path, description = "Study Instance UID"),
           ("series" = String, Path, description = "Series Instance UID")),
    responses((status = 200, description = "Matching instances", content_type = "application/dicom+json")))]
async fn qido_series_instances(
    State(gw): State<Gateway>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
    Query(p): Params,
) -> Response {
    let path = vec![("StudyInstanceUID", study), ("SeriesInstanceUID", series)];
    qido(gw, &headers, Level::Instance, path, p).await
}

/// A response body fed by a channel: the WADO-RS multipart stream.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// The stored instances of a study, series or instance, from the index.
fn select(
    gw: &Gateway,
    study: &str,
    series: Option<&str>,
    instance: Option<&str>,
) -> Result<Vec<RetrieveItem>, QueryError> {
    let mut keys = vec![("StudyInstanceUID", study)];
    let level = match (series, instance) {
        (Some(s), Some(i)) => {
            keys.push(("SeriesInstanceUID", s));
            keys.push(("SOPInstanceUID", i));
            "IMAGE"
        }
        (Some(s), None) => {
            keys.push(("SeriesInstanceUID", s));
            "SERIES"
        }
        _ => "STUDY",
    };
    keys.push(("QueryRetrieveLevel", level));
    let id = identifier_from_pairs(&keys)?;
    gw.images
        .index()
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retrieve(&id, InformationModel::StudyRoot)
}

fn what(series: Option<&str>, instance: Option<&str>) -> &'static str {
    match (series, instance) {
        (Some(_), Some(_)) => "instance",
        (Some(_), None) => "series",
        _ => "study",
    }
}

/// WADO-RS retrieve (PS3.18 §10.4.1.1.1): the selected instances as `multipart/related;
/// type="application/dicom"`, one part per stored Part 10 file, read and sent in chunks as it
/// is stored (each part names its transfer syntax, PS3.18 §8.7.3.5.2); an unknown UID is 404.
fn wado(gw: &Gateway, study: &str, series: Option<&str>, instance: Option<&str>) -> Response {
    let items = match select(gw, study, series, instance) {
        Ok(v) if v.is_empty() => {
            return problem(
                StatusCode::NOT_FOUND,
                "not-found",
                &format!("no such {} stored here", what(series, instance)),
            );
        }
        Ok(v) => v,
        Err(e) => return query_problem(&e),
    };
    let boundary = format!(
        "xenrad-{:032x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let b = boundary.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        for it in items {
            let mut f = match tokio::fs::File::open(&it.path).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "WADO-RS: a stored file cannot be opened");
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let len = match f.metadata().await {
                Ok(m) => m.len(),
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let head = format!(
                "--{b}\r\nContent-Type: application/dicom; transfer-syntax={}\r\nContent-Length: {len}\r\n\r\n",
                it.transfer_syntax_uid
            );
            if tx.send(Ok(Bytes::from(head))).await.is_err() {
                return;
            }
            loop {
                let mut buf = vec![0u8; 256 * 1024];
                match f.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "WADO-RS: reading a stored file failed");
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            if tx.send(Ok(Bytes::from_static(b"\r\n"))).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Ok(Bytes::from(format!("--{b}--\r\n")))).await;
    });
    let mut r = Response::new(Body::new(ChannelBody(rx)));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "multipart/related; type=\"application/dicom\"; boundary={boundary}"
    )) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// WADO-RS: retrieve a study.
#[utoipa::path(get, path = "/dicomweb/studies/{study}", tag = "DICOMweb",
    params(("study" = String, Path, description = "Study Instance UID")),
    responses((status = 200, description = "The study's instances as Part 10 files", content_type = "multipart/related; type=\"application/dicom\""),
              (status = 404, description = "No such study")))]
async fn wado_study(State(gw): State<Gateway>, Path(study): Path<String>) -> Response {
    wado(&gw, &study, None, None)
}

/// WADO-RS: retrieve a series.
#[utoipa::path(get, path = "/dicomweb/studies/{study}/series/{series}", tag = "DICOMweb",
    params(("study" = String, Path, description = "Study Instance UID"),
           ("series" = String, Path, description = "Series Instance UID")),
    responses((status = 200, description = "The series' instances", content_type = "multipart/related; type=\"application/dicom\""),
              (status = 404, description = "No such series")))]
async fn wado_series(
    State(gw): State<Gateway>,
    Path((study, series)): Path<(String, String)>,
) -> Response {
    wado(&gw, &study, Some(&series), None)
}

/// WADO-RS: retrieve an instance.
#[utoipa::path(get, path = "/dicomweb/studies/{study}/series/{series}/instances/{instance}", tag = "DICOMweb",
    params(("study" = String, Path, description = "Study Instance UID"),
           ("series" = String, Path, description = "Series Instance UID"),
           ("instance" = String, Path, description = "SOP Instance UID")),
    responses((status = 200, description = "The instance", content_type = "multipart/related; type=\"application/dicom\""),
              (status = 404, description = "No such instance")))]
async fn wado_instance(
    State(gw): State<Gateway>,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Response {
    wado(&gw, &study, Some(&series), Some(&instance))
}

/// WADO-RS metadata (PS3.18 §10.4.1.1.2): the stored header attributes of each selected
/// instance as DICOM JSON (PS3.18 §F.2), read from the store, not from the files.
async fn metadata(
    gw: Gateway,
    study: String,
    series: Option<String>,
    instance: Option<String>,
) -> Response {
    let (s, se, i) = (study.clone(), series.clone(), instance.clone());
    let rows = gw
        .store
        .read(move |tx| tx.query_rows_in(&s, se.as_deref(), i.as_deref()))
        .await;
    let rows = match rows {
        Ok(r) if r.is_empty() => {
            return problem(
                StatusCode::NOT_FOUND,
                "not-found",
                &format!(
                    "no such {} stored here",
                    what(series.as_deref(), instance.as_deref())
                ),
            );
        }
        Ok(r) => r,
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                &e.to_string(),
            );
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for (_, q) in rows {
        let json = decode_identifier(&q.header, ts::EXPLICIT_VR_LE).and_then(|mut obj| {
            obj.remove_element(tags::SPECIFIC_CHARACTER_SET);
            to_dicom_json(&obj)
        });
        match json.map(|j| serde_json::from_str::<Value>(&j)) {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                return problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    &e.to_string(),
                );
            }
            Err(e) => {
                return problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    &e.to_string(),
                );
            }
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, DICOM_JSON)],
        Value::Array(out).to_string(),
    )
        .into_response()
}

/// WADO-RS: the metadata of a study.
#[utoipa::path(get, path = "/dicomweb/studies/{study}/metadata", tag = "DICOMweb",
    params(("study" = String, Path, description = "Study Instance UID")),
    responses((status = 200, description = "Header attributes of each instance", content_type = "application/dicom+json"),
              (status = 404, description = "No such study")))]
async fn metadata_study(State(gw): State<Gateway>, Path(study): Path<String>) -> Response {
    metadata(gw, study, None, None).await
}

/// WADO-RS: the metadata of a series.
#[utoipa::path(get, path = "/dicomweb/studies/{study}/series/{series}/metadata", tag = "DICOMweb",
    params(("study" = String, Path, description = "Study Instance UID"),
           ("series" = String, Path, description = "Series Instance UID")),
    responses((status = 200, description = "Header attributes of each instance", content_type = "application/dicom+json"),
              (status = 404, description = "No such series")))]
async fn metadata_series(
    State(gw): State<Gateway>,
    Path((study, series)): Path<(String, String)>,
) -> Response {
    metadata(gw, study, Some(series), None).await
}

/// WADO-RS: the metadata of an instance.
#[utoipa::path(get, path = "/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata", tag = "DICOMweb",
    params(("study" = String, Path, description = "Study Instance UID"),
           ("series" = String, Path, description = "Series Instance UID"),
           ("instance" = String, Path, description = "SOP Instance UID")),
    responses((status = 200, description = "Header attributes of the instance", content_type = "application/dicom+json"),
              (status = 404, description = "No such instance")))]
async fn metadata_instance(
    State(gw): State<Gateway>,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Response {
    metadata(gw, study, Some(series), Some(instance)).await
}

/// One body part of a `multipart/related` request.
#[derive(Debug)]
struct Part<'a> {
    content_type: Option<String>,
    body: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| hay[i..].starts_with(needle))
}

/// The `boundary` parameter of a `multipart/related` content type whose `type`, when given,
/// is `application/dicom` (PS3.18 §10.5.1.1).
fn boundary(content_type: &str) -> Result<String, String> {
    let mut it = content_type.split(';');
    let media = it.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("multipart/related") {
        return Err(format!("STOW-RS takes multipart/related, not {media:?}"));
    }
    let mut b = None;
    for p in it {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "boundary" => b = Some(v.to_owned()),
            "type" if !v.eq_ignore_ascii_case("application/dicom") => {
                return Err(format!(
                    "only type=\"application/dicom\" instances are accepted, not {v:?}"
                ));
            }
            _ => {}
        }
    }
    b.filter(|b| !b.is_empty())
        .ok_or_else(|| "multipart/related without a boundary".to_owned())
}

/// Splits a multipart body (RFC 2046 §5.1.1) into its parts.
fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut pos = find(body, d, 0).ok_or("no multipart boundary in the body")?;
    let mut out = Vec::new();
    loop {
        pos += d.len();
        if body[pos..].starts_with(b"--") {
            return Ok(out);
        }
        // The rest of the delimiter line (transport padding, then CRLF).
        let line_end = find(body, b"\r\n", pos).ok_or("a boundary line without CRLF")?;
        let start = line_end + 2;
        let next = find(body, format!("\r\n{delim}").as_bytes(), start)
            .ok_or("a body part without a closing boundary")?;
        let part = &body[start..next];
        let (head, content) = if part.starts_with(b"\r\n") {
            (&part[..0], &part[2..])
        } else {
            let h = find(part, b"\r\n\r\n", 0).ok_or("a body part without a header end")?;
            (&part[..h], &part[h + 4..])
        };
        let content_type = String::from_utf8_lossy(head).lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        });
        out.push(Part {
            content_type,
            body: content,
        });
        pos = next + 2;
    }
}

/// How one STOW-RS part ended.
enum Stored {
    Ok {
        class: String,
        instance: String,
        study: String,
        series: String,
    },
    Failed {
        class: String,
        instance: String,
        reason: u16,
        why: String,
    },
}

/// Checks and stores one Part 10 instance like a C-STORE: the data set must parse whole in
/// its transfer syntax and carry its Study, Series and SOP Instance UIDs (the latter equal to
/// the File Meta's), else 0xC000 (cannot understand, PS3.4 B.2.3) and nothing is written;
/// then the file sink (journal, durable before the answer) and the same indexing as C-STORE.
fn store_part(gw: &Gateway, n: usize, part: &Part<'_>) -> Stored {
    let fail = |class: &str, instance: &str, reason: u16, why: String| Stored::Failed {
        class: class.to_owned(),
        instance: instance.to_owned(),
        reason,
        why: format!("part {n}: {why}"),
    };
    if let Some(ct) = &part.content_type {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case("application/dicom") {
            return fail(
                "",
                "",
                status::CANNOT_UNDERSTAND,
                format!("{media:?} is not application/dicom"),
            );
        }
    }
    let Some(p10) = parse_part10(part.body) else {
        return fail(
            "",
            "",
            status::CANNOT_UNDERSTAND,
            "not a DICOM Part 10 file".into(),
        );
    };
    let (class, instance, tsuid) = (p10.sop_class_uid, p10.sop_instance_uid, p10.transfer_syntax);
    let dataset = &part.body[p10.dataset_offset..];
    let obj = match xenrad_dimse::scp::retrieve::decode_dataset(dataset, tsuid) {
        Ok(o) => o,
        Err(e) => return fail(class, instance, status::CANNOT_UNDERSTAND, e.to_string()),
    };
    let (study, series, sop) = (
        text(&obj, tags::STUDY_INSTANCE_UID),
        text(&obj, tags::SERIES_INSTANCE_UID),
        text(&obj, tags::SOP_INSTANCE_UID),
    );
    let (Some(study), Some(series)) = (study, series) else {
        return fail(
            class,
            instance,
            status::CANNOT_UNDERSTAND,
            "no Study or Series Instance UID".into(),
        );
    };
    if sop.as_deref() != Some(instance) {
        return fail(
            class,
            instance,
            status::CANNOT_UNDERSTAND,
            "the SOP Instance UID differs from the File Meta's".into(),
        );
    }
    let start = InstanceStart {
        meta: FileMeta {
            sop_class_uid: class,
            sop_instance_uid: instance,
            transfer_syntax: tsuid,
            implementation_class_uid: IMPLEMENTATION_CLASS_UID,
            implementation_version_name: IMPLEMENTATION_VERSION_NAME,
            source_ae: None,
        },
        message_id: None,
    };
    let written = gw.dicom_sink.begin(&start).and_then(|mut s| {
        if let Err(e) = s.write(dataset) {
            s.abort();
            return Err(e);
        }
        s.commit()
    });
    let path = match written {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "STOW-RS: storing an instance failed");
            return fail(
                class,
                instance,
                status::OUT_OF_RESOURCES,
                format!("not stored: {e}"),
            );
        }
    };
    let inst = StoredInstance {
        sop_class_uid: class.to_owned(),
        sop_instance_uid: instance.to_owned(),
        study_instance_uid: Some(study.clone()),
        // The facts and the header are read from these bytes, not from the file just written.
        header: match xenrad_dimse::store::peek_header(dataset, tsuid, true) {
            PeekOutcome::Done(h) | PeekOutcome::NeedMore(h) => {
                Some(InstanceHeader::from_peeked(&h))
            }
            PeekOutcome::Unsupported | PeekOutcome::Invalid(_) => None,
        },
        transfer_syntax: tsuid.to_owned(),
        path,
        calling_ae: "DICOMWEB".to_owned(),
        dataset_len: dataset.len() as u64,
        head: xenrad_dimse::scp::DatasetHead(dataset[..dataset.len().min(64 * 1024)].to_vec()),
    };
    match crate::ingest::dicom::stored(gw, &inst) {
        status::SUCCESS => Stored::Ok {
            class: class.to_owned(),
            instance: instance.to_owned(),
            study,
            series,
        },
        st => fail(
            class,
            instance,
            st,
            format!("not indexed (status 0x{st:04X})"),
        ),
    }
}

/// Parts stored at once: each waits for its own durable commit, so storing several together
/// lets the file journal and the database group their syncs, as concurrent C-STOREs do.
const STOW_PARALLEL: usize = 8;

/// Stores every part, [`STOW_PARALLEL`] at a time; results in part order.
fn store_parts(gw: &Gateway, ps: &[Part<'_>]) -> Vec<Stored> {
    let mut out = Vec::with_capacity(ps.len());
    for (c, chunk) in ps.chunks(STOW_PARALLEL).enumerate() {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| s.spawn(move || store_part(gw, c * STOW_PARALLEL + i + 1, p)))
                .collect();
            for (i, h) in handles.into_iter().enumerate() {
                out.push(h.join().unwrap_or_else(|_| Stored::Failed {
                    class: String::new(),
                    instance: String::new(),
                    reason: status::PROCESSING_FAILURE,
                    why: format!("part {}: storing it failed", c * STOW_PARALLEL + i + 1),
                }));
            }
        });
    }
    out
}

/// STOW-RS: store instances (PS3.18 §10.5).
#[utoipa::path(post, path = "/dicomweb/studies", tag = "DICOMweb",
    request_body(content = String, description = "Part 10 instances, one per part", content_type = "multipart/related; type=\"application/dicom\""),
    responses((status = 200, description = "Every instance stored (Store Instances Response)", content_type = "application/dicom+json"),
              (status = 202, description = "Some instances failed (FailedSOPSequence with reasons)", content_type = "application/dicom+json"),
              (status = 409, description = "No instance stored", content_type = "application/dicom+json"),
              (status = 415, description = "Not multipart/related; type=application/dicom")))]
async fn stow(State(gw): State<Gateway>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let b = match boundary(ct) {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-supported", &e),
    };
    let base = base_url(&gw, &headers);
    let r = tokio::task::spawn_blocking(move || {
        let ps = parts(&body, &b)?;
        if ps.is_empty() {
            return Err("no body part".to_owned());
        }
        Ok(store_parts(&gw, &ps))
    })
    .await;
    let results = match r {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return problem(StatusCode::BAD_REQUEST, "invalid", &e),
        Err(e) => {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                &e.to_string(),
            );
        }
    };
    stow_response(&base, &results)
}

fn uid(v: &str) -> Value {
    json!({"vr": "UI", "Value": [v]})
}

/// The Store Instances Response Module (PS3.18 §10.5.3, table 10.5.3-3): 200 when every
/// instance was stored, 202 when some failed, 409 when none was (PS3.18 §10.5.3.1); the
/// reasons of the failures also go into `Warning: 299` headers.
fn stow_response(base: &str, results: &[Stored]) -> Response {
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    let mut studies = std::collections::BTreeSet::new();
    for r in results {
        match r {
            Stored::Ok {
                class,
                instance,
                study,
                series,
            } => {
                studies.insert(study.clone());
                referenced.push(json!({
                    "00081150": uid(class),
                    "00081155": uid(instance),
                    "00081190": {"vr": "UR", "Value": [resource_url(base, study, Some(series), Some(instance))]},
                }));
            }
            Stored::Failed {
                class,
                instance,
                reason,
                why,
            } => {
                let mut item = serde_json::Map::new();
                if !class.is_empty() {
                    item.insert("00081150".into(), uid(class));
                }
                if !instance.is_empty() {
                    item.insert("00081155".into(), uid(instance));
                }
                item.insert("00081197".into(), json!({"vr": "US", "Value": [reason]}));
                failed.push(Value::Object(item));
                warnings.push(why.clone());
            }
        }
    }
    let mut body = serde_json::Map::new();
    if studies.len() == 1
        && let Some(s) = studies.iter().next()
    {
        body.insert(
            "00081190".into(),
            json!({"vr": "UR", "Value": [resource_url(base, s, None, None)]}),
        );
    }
    if !failed.is_empty() {
        body.insert("00081198".into(), json!({"vr": "SQ", "Value": failed}));
    }
    if !referenced.is_empty() {
        body.insert("00081199".into(), json!({"vr": "SQ", "Value": referenced}));
    }
    let code = match (referenced.is_empty(), failed.is_empty()) {
        (_, true) => StatusCode::OK,
        (false, false) => StatusCode::ACCEPTED,
        (true, false) => StatusCode::CONFLICT,
    };
    let mut r = (
        code,
        [(header::CONTENT_TYPE, DICOM_JSON)],
        Value::Object(body).to_string(),
    )
        .into_response();
    for w in warnings {
        let clean: String = w.chars().filter(|c| *c != '"' && !c.is_control()).collect();
        if let Ok(v) = HeaderValue::from_str(&format!("299 xenrad \"{clean}\"")) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

/// The DICOMweb part of the FHIR origin's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    qido_studies,
    qido_series,
    qido_instances,
    qido_study_series,
    qido_study_instances,
    qido_series_instances,
    wado_study,
    wado_series,
    wado_instance,
    metadata_study,
    metadata_series,
    metadata_instance,
    stow
))]
pub struct DicomWebApi;

/// The DICOMweb base URL the Endpoint announces: `--dicomweb-url`, else the FHIR surface's
/// scheme and address with `/dicomweb`.
pub fn dicomweb_url(config: &crate::Config) -> String {
    if let Some(u) = &config.dicomweb_url {
        return u.trim_end_matches('/').to_owned();
    }
    let scheme = if config.fhir_tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}/dicomweb", config.fhir_addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_parts_and_boundary() {
        let b = boundary("multipart/related; type=\"application/dicom\"; boundary=\"abc\"")
            .expect("boundary");
        assert_eq!(b, "abc");
        assert!(boundary("application/json").is_err());
        assert!(boundary("multipart/related; type=\"image/jpeg\"; boundary=x").is_err());
        let body = b"preamble\r\n--abc\r\nContent-Type: application/dicom\r\n\r\nONE\r\n--abc\r\n\r\nTWO\r\n--abc--\r\n";
        let ps = parts(body, "abc").expect("parts");
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].body, b"ONE");
        assert_eq!(ps[0].content_type.as_deref(), Some("application/dicom"));
        assert_eq!(ps[1].body, b"TWO");
        assert_eq!(ps[1].content_type, None);
        assert!(parts(b"--abc\r\nno end", "abc").is_err());
    }

    #[test]
    fn qido_keys_limit_offset_and_unknown_attributes() {
        let p = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        let q = qido_request(
            Level::Series,
            &[("StudyInstanceUID", "1.2.3")],
            &p(&[
                ("Modality", "CT"),
                ("limit", "5"),
                ("offset", "2"),
                ("includefield", "00080080"),
            ]),
        )
        .expect("valid");
        assert_eq!((q.limit, q.offset), (Some(5), 2));
        assert_eq!(text(&q.identifier, tags::MODALITY).as_deref(), Some("CT"));
        assert_eq!(
            text(&q.identifier, tags::STUDY_INSTANCE_UID).as_deref(),
            Some("1.2.3")
        );
        assert_eq!(
            text(&q.identifier, tags::QUERY_RETRIEVE_LEVEL).as_deref(),
            Some("SERIES")
        );
        assert!(q.identifier.get(tags::INSTITUTION_NAME).is_some());
        assert!(
            q.identifier.get(tags::PATIENT_NAME).is_some(),
            "study keys on a flat series query"
        );
        assert!(qido_request(Level::Study, &[], &p(&[("NoSuchKeyword", "x")])).is_err());
        assert!(qido_request(Level::Study, &[], &p(&[("limit", "-1")])).is_err());
        assert!(qido_request(Level::Study, &[], &p(&[("fuzzymatching", "maybe")])).is_err());
    }
}
