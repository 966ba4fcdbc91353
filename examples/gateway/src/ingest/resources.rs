//! Resources read, merged and written inside an ingest transaction: finds the resource a fact
//! is about (identifier index, derived id), reads it once, lets [`crate::project`] build the
//! new content from it and writes that as a new version only when it changed, with its index
//! rows. The only clock read is the `lastUpdated` of a write.

use super::worklist;
use crate::map::report::ReportFacts;
use crate::map::{self, InstanceFacts, OrderFacts, PatientFacts, ProcedureFacts};
use crate::project::{self, Resource, Subject, UNKNOWN_PATIENT, derived_id};
use crate::store::{Current, InstanceRow, ReadTx, StoreError, StoredResource, WriteTx, now};

fn job(e: project::Invalid) -> StoreError {
    StoreError::Job(e.0)
}

/// A stored resource read once: its current row and its content in the model (parsed
/// once). A deleted resource comes back as its delete's version with an empty body and no
/// content, so the next write continues its history.
pub(crate) fn load(
    tx: &dyn ReadTx,
    resource_type: &str,
    id: &str,
) -> Result<(Option<StoredResource>, Option<Resource>), StoreError> {
    let row = match tx.current(resource_type, id)? {
        None => return Ok((None, None)),
        Some(Current::Deleted {
            version,
            last_updated,
        }) => {
            let row = StoredResource {
                version,
                last_updated,
                body: String::new(),
            };
            return Ok((Some(row), None));
        }
        Some(Current::Live(row)) => row,
    };
    let resource = xenrad_fhir_model::from_json(row.body.as_bytes())
        .map_err(|e| StoreError::Job(format!("stored {resource_type}/{id} is not FHIR R4: {e}")))?
        .into_owned();
    Ok((Some(row), Some(resource)))
}

/// Writes a built resource as a new version unless `previous` (its current row, read by the
/// caller with [`load`]) has the same content, replacing its index rows; returns the version
/// now stored. The model serialises it once, with its new `meta`; an unchanged redelivery is
/// found by comparing that text with the stored one around the two `meta` values
/// ([`super::fhir::same_content`]), and then nothing is written.
pub fn put(
    tx: &dyn WriteTx,
    previous: Option<&StoredResource>,
    mut r: Resource,
) -> Result<i64, StoreError> {
    let id = r
        .id()
        .ok_or_else(|| StoreError::Job("a projected resource has no id".into()))?
        .to_owned();
    let version = previous.map_or(1, |p| p.version + 1);
    let now = now();
    r.set_version(version.to_string(), now.clone())
        .map_err(|e| StoreError::Job(e.to_string()))?;
    let body = xenrad_fhir_model::to_json(&r);
    if let Some(p) = previous
        && super::fhir::same_content(p, &body, version, &now)
    {
        return Ok(p.version);
    }
    let stored = StoredResource {
        version,
        last_updated: now,
        body,
    };
    tx.put_resource(r.resource_type.as_str(), &id, &stored, &project::index(&r))?;
    Ok(stored.version)
}

/// Creates or updates the Patient for these facts; returns its id.
pub fn upsert_patient(tx: &dyn WriteTx, f: &PatientFacts) -> Result<String, StoreError> {
    let Some((sys0, val0)) = f.identifiers.first() else {
        return Err(StoreError::Job("patient has no identifier".into()));
    };
    let mut id = None;
    for (s, v) in &f.identifiers {
        if let Some(found) = tx.find_by_token("Patient", "identifier", s, v)? {
            id = Some(found);
            break;
        }
    }
    let id = id.unwrap_or_else(|| derived_id("pat", &format!("{sys0}|{val0}")));
    let (row, existing) = load(tx, "Patient", &id)?;
    let p = project::patient::patient(&id, existing, f).map_err(job)?;
    put(tx, row.as_ref(), p)?;
    Ok(id)
}

/// Marks the patient `old` as replaced by `new_id` (ADT^A40 merge); its id when it exists.
pub fn merge_patient(
    tx: &dyn WriteTx,
    old: &(String, String),
    new_id: &str,
) -> Result<Option<String>, StoreError> {
    let Some(old_id) = tx.find_by_token("Patient", "identifier", &old.0, &old.1)? else {
        return Ok(None);
    };
    if old_id == new_id {
        return Ok(None);
    }
    let (row, Some(existing)) = load(tx, "Patient", &old_id)? else {
        return Ok(None);
    };
    let p = project::patient::replaced_by(existing, new_id).map_err(job)?;
    put(tx, row.as_ref(), p)?;
    // Both sides: the survivor `replaces` the retired patient.
    if let (row, Some(survivor)) = load(tx, "Patient", new_id)? {
        let p = project::patient::replaces(survivor, &old_id).map_err(job)?;
        put(tx, row.as_ref(), p)?;
    }
    move_subject(tx, &old_id, new_id)?;
    Ok(Some(old_id))
}

/// The resource types whose `subject` a merge moves to the surviving patient.
pub const MOVED_BY_MERGE: [&str; 5] = [
    "ServiceRequest",
    "ImagingStudy",
    "Procedure",
    "DiagnosticReport",
    "Observation",
];

/// Moves every order, study, procedure, report, observation about `Patient/<old_id>` to
/// `Patient/<new_id>` (ADT^A40 and the other merges). Returns how many moved.
pub fn move_subject(tx: &dyn WriteTx, old_id: &str, new_id: &str) -> Result<usize, StoreError> {
    let new_subject = format!("Patient/{new_id}");
    let mut moved = 0;
    for rt in MOVED_BY_MERGE {
        let Some(rtype) = xenrad_fhir_model::ResourceType::from_name(rt) else {
            continue;
        };
        if crate::search::params_for(rtype)
            .iter()
            .all(|d| d.code != "subject")
        {
            continue;
        }
        loop {
            // Each pass moves what it found, so the next search starts again at offset 0.
            let q = crate::search::parse(rtype, &format!("subject=Patient/{old_id}&_count=500"))
                .map_err(|oo| StoreError::Job(oo.to_json()))?;
            let page = tx.search(rt, &q)?;
            if page.rows.is_empty() {
                break;
            }
            for (id, _) in page.rows {
                let (row, Some(existing)) = load(tx, rt, &id)? else {
                    continue;
                };
                let r = project::patient::moved(existing, &new_subject).map_err(job)?;
                put(tx, row.as_ref(), r)?;
                moved += 1;
            }
        }
    }
    Ok(moved)
}

/// Creates or updates a ServiceRequest (and its Patient); returns its id.
pub fn upsert_service_request(tx: &dyn WriteTx, f: &OrderFacts) -> Result<String, StoreError> {
    let patient_id = upsert_patient(tx, &f.patient)?;
    let Some((s0, v0)) = f.identifiers.first() else {
        return Err(StoreError::Job(
            "order has no placer or filler number".into(),
        ));
    };
    let id = match tx.find_by_token("ServiceRequest", "identifier", s0, v0)? {
        Some(id) => id,
        None => derived_id("sr", &format!("{s0}|{v0}")),
    };
    let sr = project::order::service_request(&id, f, &patient_id).map_err(job)?;
    let row = tx.resource("ServiceRequest", &id)?;
    put(tx, row.as_ref(), sr)?;
    Ok(id)
}

/// Rebuilds the ImagingStudy of `study_uid` from the instances table, keeping the
/// status/procedure fields that MPPS set; `based_on` (`ServiceRequest/<id>`) links it to its
/// order, once known.
pub fn refresh_imaging_study(
    tx: &dyn WriteTx,
    study_uid: &str,
    patient: Option<&PatientFacts>,
    based_on: Option<&str>,
) -> Result<String, StoreError> {
    let id = derived_id("study", study_uid);
    let (row, existing) = load(tx, "ImagingStudy", &id)?;
    let patient_id = match patient.filter(|p| !p.identifiers.is_empty()) {
        Some(p) => Some(upsert_patient(tx, p)?),
        None => None,
    };
    let mut series = map::dicom::series(&tx.study_instances(study_uid)?);
    for s in series.iter_mut().filter(|s| !s.uid.is_empty()) {
        s.modality = tx.series_modality(&s.uid)?;
    }
    let study = project::study::imaging_study(
        &id,
        existing,
        study_uid,
        patient_id.as_deref(),
        &series,
        based_on,
    )
    .map_err(job)?;
    put(tx, row.as_ref(), study)?;
    Ok(id)
}

/// Records a stored instance (idempotent on its SOP Instance UID) and refreshes
/// its ImagingStudy. Returns `true` when the instance is new.
pub fn record_instance(
    tx: &dyn WriteTx,
    f: &InstanceFacts,
    row: &InstanceRow,
) -> Result<bool, StoreError> {
    let new = tx.record_instance(row)?;
    if !f.modality.is_empty() && !f.series_uid.is_empty() {
        tx.record_series_modality(&f.series_uid, &f.modality)?;
    }
    let order = worklist::order_for(tx, &f.study_uid, &f.accession)?;
    let based_on = order
        .and_then(|o| o.service_request)
        .map(|id| format!("ServiceRequest/{id}"));
    refresh_imaging_study(tx, &f.study_uid, f.patient.as_ref(), based_on.as_deref())?;
    Ok(new)
}

/// Projects an MPPS state into a Procedure and the ImagingStudy's status, and onto the order
/// it performs (found through its Study Instance UID or accession): Procedure and
/// ImagingStudy `basedOn`, the ServiceRequest's status and the worklist step's
/// ([`project::order::after_mpps`]); `keep_done` keeps a finished step listed.
pub fn project_mpps(
    tx: &dyn WriteTx,
    f: &ProcedureFacts,
    keep_done: bool,
) -> Result<String, StoreError> {
    let reason = f.discontinuation_reason.as_deref();
    let (_, study_status) = project::procedure::statuses(&f.status, reason);
    let id = derived_id("proc", &f.mpps_uid);
    let order = worklist::order_for(tx, &f.study_uid, &f.accession)?;
    let based_on = order
        .as_ref()
        .and_then(|o| o.service_request.clone())
        .map(|id| format!("ServiceRequest/{id}"));
    if let Some(o) = &order {
        worklist::after_mpps(tx, o, &f.status, reason, keep_done)?;
    }
    let mut subject = Subject::Display(UNKNOWN_PATIENT.to_owned());
    if !f.study_uid.is_empty() {
        let sid = derived_id("study", &f.study_uid);
        let (row, existing) = load(tx, "ImagingStudy", &sid)?;
        let study = project::study::performed(
            &sid,
            existing,
            &f.study_uid,
            study_status,
            &id,
            based_on.as_deref(),
        )
        .map_err(job)?;
        subject = project::study::subject(&study);
        put(tx, row.as_ref(), study)?;
    }
    let p = project::procedure::procedure(&id, f, &subject, based_on.as_deref()).map_err(job)?;
    let row = tx.resource("Procedure", &id)?;
    put(tx, row.as_ref(), p)?;
    Ok(id)
}

/// Writes a report (ORU^R01) about `patient` for the order `link` names: one Observation per
/// OBX and the DiagnosticReport based on the ServiceRequest, with the ImagingStudy of the
/// order's study when it is stored. A redelivered or corrected report replaces them (ids
/// derived from the order's filler/placer/accession).
pub fn upsert_report(
    tx: &dyn WriteTx,
    f: &ReportFacts,
    patient: &PatientFacts,
    link: &worklist::OrderLink,
) -> Result<String, StoreError> {
    let subject = format!("Patient/{}", upsert_patient(tx, patient)?);
    let based_on = link
        .service_request
        .as_ref()
        .map(|id| format!("ServiceRequest/{id}"));
    let study_uid = if f.study_uid.is_empty() {
        link.row
            .as_ref()
            .map(|r| r.study_uid.clone())
            .unwrap_or_default()
    } else {
        f.study_uid.clone()
    };
    let study = if study_uid.is_empty() {
        None
    } else {
        let sid = derived_id("study", &study_uid);
        tx.resource("ImagingStudy", &sid)?
            .map(|_| format!("ImagingStudy/{sid}"))
    };
    let key = format!(
        "{}|{}",
        link.service_request.as_deref().unwrap_or_default(),
        f.key()
    );
    let mut results = Vec::new();
    for (i, o) in f.observations.iter().enumerate() {
        let oid = derived_id("obs", &format!("{key}|{i}"));
        let obs =
            project::report::observation(&oid, o, &subject, based_on.as_deref()).map_err(job)?;
        let row = tx.resource("Observation", &oid)?;
        put(tx, row.as_ref(), obs)?;
        results.push(oid);
    }
    let id = derived_id("dr", &key);
    let dr = project::report::diagnostic_report(
        &id,
        f,
        &subject,
        based_on.as_deref(),
        study.as_deref(),
        &results,
    )
    .map_err(job)?;
    let row = tx.resource("DiagnosticReport", &id)?;
    put(tx, row.as_ref(), dr)?;
    Ok(id)
}

/// Writes an appointment (SIU^S12–S15) about `patient`, based on the order its SCH-26/27 name
/// when that order is known; returns its id (derived from the appointment ID).
pub fn upsert_appointment(
    tx: &dyn WriteTx,
    f: &crate::map::appointment::AppointmentFacts,
    patient: &PatientFacts,
) -> Result<String, StoreError> {
    let subject = format!("Patient/{}", upsert_patient(tx, patient)?);
    let based_on = worklist::order_by_numbers(tx, &f.placer, &f.filler)?
        .and_then(|l| l.service_request)
        .map(|id| format!("ServiceRequest/{id}"));
    let id = derived_id("appt", &f.key);
    let a =
        project::appointment::appointment(&id, f, &subject, based_on.as_deref()).map_err(job)?;
    let row = tx.resource("Appointment", &id)?;
    put(tx, row.as_ref(), a)?;
    Ok(id)
}

/// Writes (or refreshes) the DICOMweb Endpoint announcing `url`.
pub fn publish_endpoint(tx: &dyn WriteTx, url: &str) -> Result<(), StoreError> {
    let e = project::endpoint::endpoint(url).map_err(job)?;
    let row = tx.resource("Endpoint", project::endpoint::ENDPOINT_ID)?;
    put(tx, row.as_ref(), e).map(drop)
}
