//! Resources read, merged and written inside an ingest transaction: finds the resource a fact
//! is about (identifier index, derived id), lets [`crate::project`] build the new content and
//! writes it as a new version only when it changed, with its index rows.

use crate::map::{InstanceFacts, OrderFacts, PatientFacts, ProcedureFacts};
use crate::project::{self, DICOM_UID_SYSTEM, derived_id};
use crate::store::{InstanceRow, ReadTx, StoreError, StoredResource, WriteTx, now};
use serde_json::{Map, Value, json};

/// Reads a stored resource's content (without `meta`) as JSON, with its version.
pub fn get(
    tx: &dyn ReadTx,
    resource_type: &str,
    id: &str,
) -> Result<Option<(i64, Value)>, StoreError> {
    match tx.resource(resource_type, id)? {
        None => Ok(None),
        Some(r) => Ok(Some((r.version, r.value()?))),
    }
}

/// Writes a resource, as a new version only when its content changed, replacing
/// its index rows. Returns the version now stored.
///
/// The resource is read strictly and validated with the R4 model once
/// ([`project::checked`]); the model's serialisation is what is stored and compared, so an
/// unchanged redelivery costs one string comparison.
pub fn put(
    tx: &dyn WriteTx,
    resource_type: &str,
    id: &str,
    mut resource: Value,
) -> Result<i64, StoreError> {
    if let Value::Object(o) = &mut resource {
        o.remove("meta");
        o.insert(
            "resourceType".into(),
            Value::String(resource_type.to_owned()),
        );
        o.insert("id".into(), Value::String(id.to_owned()));
    }
    let (body, index) = project::checked_indexed(resource_type, &resource.to_string())
        .map_err(|e| StoreError::Job(e.0))?;
    let previous = tx.resource(resource_type, id)?;
    if let Some(p) = &previous
        && p.body == body
    {
        return Ok(p.version);
    }
    let stored = StoredResource {
        version: previous.map_or(1, |p| p.version + 1),
        last_updated: now(),
        body,
    };
    tx.put_resource(resource_type, id, &stored, &index)?;
    Ok(stored.version)
}

/// Finds a resource by a token in the index.
pub fn find_by_token(
    tx: &dyn ReadTx,
    resource_type: &str,
    param: &str,
    system: &str,
    value: &str,
) -> Result<Option<String>, StoreError> {
    tx.find_by_token(resource_type, param, system, value)
}

fn identifier_json(system: &str, value: &str) -> Value {
    if system.is_empty() {
        json!({"value": value})
    } else {
        json!({"system": system, "value": value})
    }
}

/// Creates or updates the Patient for these facts; returns its id.
pub fn upsert_patient(tx: &dyn WriteTx, f: &PatientFacts) -> Result<String, StoreError> {
    let Some((sys0, val0)) = f.identifiers.first() else {
        return Err(StoreError::Job("patient has no identifier".into()));
    };
    let mut id = None;
    for (s, v) in &f.identifiers {
        if let Some(found) = find_by_token(tx, "Patient", "identifier", s, v)? {
            id = Some(found);
            break;
        }
    }
    let id = id.unwrap_or_else(|| derived_id("pat", &format!("{sys0}|{val0}")));
    let mut p = match get(tx, "Patient", &id)? {
        Some((_, v)) => v,
        None => json!({"resourceType": "Patient", "active": true}),
    };
    let o = p.as_object_mut().expect("object");
    // Identifiers: union of stored and new.
    let mut ids: Vec<(String, String)> = o
        .get("identifier")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i.get("system")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        i.get("value")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for i in &f.identifiers {
        if !ids.contains(i) {
            ids.push(i.clone());
        }
    }
    o.insert(
        "identifier".into(),
        Value::Array(ids.iter().map(|(s, v)| identifier_json(s, v)).collect()),
    );
    if f.family.is_some() || !f.given.is_empty() {
        let mut name = Map::new();
        name.insert("use".into(), json!("official"));
        if let Some(fam) = &f.family {
            name.insert("family".into(), json!(fam));
        }
        if !f.given.is_empty() {
            name.insert("given".into(), json!(f.given));
        }
        o.insert("name".into(), Value::Array(vec![Value::Object(name)]));
    }
    if let Some(g) = f.gender {
        o.insert("gender".into(), json!(g));
    }
    if let Some(b) = &f.birth_date {
        o.insert("birthDate".into(), json!(b));
    }
    if !f.addresses.is_empty() {
        let addrs: Vec<Value> = f
            .addresses
            .iter()
            .map(|(lines, city, state, postal, country)| {
                let mut a = Map::new();
                if !lines.is_empty() {
                    a.insert("line".into(), json!(lines));
                }
                for (k, v) in [
                    ("city", city),
                    ("state", state),
                    ("postalCode", postal),
                    ("country", country),
                ] {
                    if let Some(v) = v {
                        a.insert(k.into(), json!(v));
                    }
                }
                Value::Object(a)
            })
            .collect();
        o.insert("address".into(), Value::Array(addrs));
    }
    put(tx, "Patient", &id, p)?;
    Ok(id)
}

/// Marks `old` as replaced by `new` (ADT^A40 merge): inactive, with a `replaced-by` link.
pub fn merge_patient(
    tx: &dyn WriteTx,
    old: &(String, String),
    new_id: &str,
) -> Result<Option<String>, StoreError> {
    let Some(old_id) = find_by_token(tx, "Patient", "identifier", &old.0, &old.1)? else {
        return Ok(None);
    };
    if old_id == new_id {
        return Ok(None);
    }
    let Some((_, mut p)) = get(tx, "Patient", &old_id)? else {
        return Ok(None);
    };
    let o = p.as_object_mut().expect("object");
    o.insert("active".into(), json!(false));
    o.insert(
        "link".into(),
        json!([{"other": {"reference": format!("Patient/{new_id}")}, "type": "replaced-by"}]),
    );
    put(tx, "Patient", &old_id, p)?;
    Ok(Some(old_id))
}

/// Creates or updates a ServiceRequest (and its Patient); returns its id.
pub fn upsert_service_request(tx: &dyn WriteTx, f: &OrderFacts) -> Result<String, StoreError> {
    let patient_id = upsert_patient(tx, &f.patient)?;
    let Some((s0, v0)) = f.identifiers.first() else {
        return Err(StoreError::Job(
            "order has no placer or filler number".into(),
        ));
    };
    let id = match find_by_token(tx, "ServiceRequest", "identifier", s0, v0)? {
        Some(id) => id,
        None => derived_id("sr", &format!("{s0}|{v0}")),
    };
    let mut sr = json!({
        "resourceType": "ServiceRequest",
        "identifier": f.identifiers.iter().map(|(s, v)| identifier_json(s, v)).collect::<Vec<_>>(),
        "status": f.status,
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "363679005", "display": "Imaging"}]}],
        "subject": {"reference": format!("Patient/{patient_id}")},
    });
    if let Some((system, code, display)) = &f.code {
        let mut c = Map::new();
        if !system.is_empty() {
            c.insert("system".into(), json!(system));
        }
        c.insert("code".into(), json!(code));
        if !display.is_empty() {
            c.insert("display".into(), json!(display));
        }
        sr["code"] = json!({"coding": [Value::Object(c)]});
    }
    if let Some(o) = &f.occurrence {
        sr["occurrenceDateTime"] = json!(o);
    }
    put(tx, "ServiceRequest", &id, sr)?;
    Ok(id)
}

fn uid_identifier(uid: &str) -> Value {
    json!({"system": DICOM_UID_SYSTEM, "value": format!("urn:oid:{uid}")})
}

/// Rebuilds the ImagingStudy of `study_uid` from the instances table, keeping the
/// status/procedure fields that MPPS set.
pub fn refresh_imaging_study(
    tx: &dyn WriteTx,
    study_uid: &str,
    patient: Option<&PatientFacts>,
) -> Result<String, StoreError> {
    let id = derived_id("study", study_uid);
    let mut study = match get(tx, "ImagingStudy", &id)? {
        Some((_, v)) => v,
        None => {
            json!({"resourceType": "ImagingStudy", "status": "available", "subject": {"display": "unknown patient"}})
        }
    };
    if let Some(p) = patient.filter(|p| !p.identifiers.is_empty()) {
        let pid = upsert_patient(tx, p)?;
        study["subject"] = json!({"reference": format!("Patient/{pid}")});
    }
    study["identifier"] = json!([uid_identifier(study_uid)]);
    // Where the images are: the DICOMweb Endpoint (`endpoint` module).
    study["endpoint"] = json!([{"reference": project::endpoint::ENDPOINT_REFERENCE}]);
    let rows = tx.study_instances(study_uid)?;
    let mut series: Vec<(String, Vec<Value>)> = Vec::new();
    for (series_uid, sop, class) in &rows {
        let key = if series_uid.is_empty() {
            "unknown".to_owned()
        } else {
            series_uid.clone()
        };
        let inst = json!({"uid": sop, "sopClass": {"system": "urn:ietf:rfc:3986", "code": format!("urn:oid:{class}")}});
        match series.iter_mut().find(|(s, _)| *s == key) {
            Some((_, v)) => v.push(inst),
            None => series.push((key, vec![inst])),
        }
    }
    if !rows.is_empty() {
        study["numberOfSeries"] = json!(series.len());
        study["numberOfInstances"] = json!(rows.len());
        let mut with_modality = Vec::with_capacity(series.len());
        for (uid, instances) in series {
            let modality = tx.series_modality(&uid)?;
            with_modality.push((uid, modality, instances));
        }
        study["series"] = Value::Array(
            with_modality
                .into_iter()
                .map(|(uid, modality, instances)| {
                    // OT (other) when no instance named its modality (PS3.3 C.7.3.1.1.1).
                    let modality = modality.unwrap_or_else(|| "OT".to_owned());
                    json!({
                        "uid": uid,
                        "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": modality},
                        "numberOfInstances": instances.len(),
                        "instance": instances,
                    })
                })
                .collect(),
        );
    }
    put(tx, "ImagingStudy", &id, study)?;
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
    refresh_imaging_study(tx, &f.study_uid, f.patient.as_ref())?;
    Ok(new)
}

/// Projects an MPPS state into a Procedure and the ImagingStudy's status.
pub fn project_mpps(tx: &dyn WriteTx, f: &ProcedureFacts) -> Result<String, StoreError> {
    let (proc_status, study_status) = match f.status.as_str() {
        "IN PROGRESS" => ("in-progress", "registered"),
        "COMPLETED" => ("completed", "available"),
        "DISCONTINUED" => ("stopped", "cancelled"),
        _ => ("unknown", "unknown"),
    };
    let id = derived_id("proc", &f.mpps_uid);
    let mut subject = json!({"display": "unknown patient"});
    let study_id = (!f.study_uid.is_empty()).then(|| derived_id("study", &f.study_uid));
    if let Some(sid) = &study_id {
        let mut study = match get(tx, "ImagingStudy", sid)? {
            Some((_, v)) => v,
            None => {
                json!({"resourceType": "ImagingStudy", "identifier": [uid_identifier(&f.study_uid)], "subject": {"display": "unknown patient"}})
            }
        };
        study["status"] = json!(study_status);
        study["procedureReference"] = json!({"reference": format!("Procedure/{id}")});
        subject = study["subject"].clone();
        put(tx, "ImagingStudy", sid, study)?;
    }
    let mut p = json!({
        "resourceType": "Procedure",
        "identifier": [uid_identifier(&f.mpps_uid)],
        "status": proc_status,
        "category": {"coding": [{"system": "http://snomed.info/sct", "code": "103693007", "display": "Diagnostic procedure"}]},
        "subject": subject,
    });
    if f.start.is_some() || f.end.is_some() {
        let mut period = Map::new();
        if let Some(s) = &f.start {
            period.insert("start".into(), json!(s));
        }
        if let Some(e) = &f.end {
            period.insert("end".into(), json!(e));
        }
        p["performedPeriod"] = Value::Object(period);
    }
    put(tx, "Procedure", &id, p)?;
    Ok(id)
}
