//! Cross-protocol projection into FHIR R4 resources, inside the ingest transaction.
//!
//! Protocol adapters reduce what they received to small protocol-neutral facts
//! ([`PatientFacts`], [`OrderFacts`], [`InstanceFacts`], [`ProcedureFacts`]); this
//! module turns facts into resources, versions them and writes their search index
//! rows. Resource ids are derived from business identifiers (so a redelivery lands
//! on the same resource) or found through the identifier index.

use super::search::{self, IndexEntry};
use super::store::{InstanceRow, ReadTx, StoreError, StoredResource, WriteTx, now};
use serde_json::{Map, Value, json};
use xenrad_fhir_model::index::IndexValue;

/// The identifier system used for DICOM UIDs (FHIR R4 ImagingStudy.identifier).
pub const DICOM_UID_SYSTEM: &str = "urn:dicom:uid";

/// Stable, FHIR-legal id (`[A-Za-z0-9\-\.]{1,64}`) derived from a business key:
/// FNV-1a 64 of the key, as hex, after a type prefix.
pub fn derived_id(prefix: &str, key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}-{h:016x}")
}

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
/// ([`checked`]); the model's serialisation is what is stored and compared, so an
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
    let (body, index) = checked_indexed(resource_type, &resource.to_string())?;
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

/// Reads the resource with the generated R4 model (strict: unknown elements are
/// errors), validates cardinality and required bindings, and returns the model's
/// own serialisation (elements in specification order). A projection that would
/// store an invalid resource fails its ingest instead.
pub fn checked(resource_type: &str, json: &str) -> Result<String, StoreError> {
    checked_indexed(resource_type, json).map(|(body, _)| body)
}

fn read_checked<'a>(
    resource_type: &str,
    json: &'a str,
) -> Result<xenrad_fhir_model::Resource<'a>, StoreError> {
    let r = xenrad_fhir_model::from_json(json.as_bytes()).map_err(|e| {
        StoreError::Job(format!(
            "projected {resource_type} is not valid FHIR R4: {e}"
        ))
    })?;
    let oo = xenrad_fhir_model::validate(&r);
    if oo.has_errors() {
        return Err(StoreError::Job(format!(
            "projected {resource_type} fails validation: {}",
            oo.to_json()
        )));
    }
    Ok(r)
}

/// [`checked`], plus the search index rows of the parameters the gateway serves,
/// extracted from the same parsed resource by `xenrad_fhir_model::index` (the R4
/// SearchParameters' FHIRPath expressions), so no projection indexes by hand.
pub fn checked_indexed(
    resource_type: &str,
    json: &str,
) -> Result<(String, Vec<IndexEntry>), StoreError> {
    let r = read_checked(resource_type, json)?;
    let mut index = Vec::new();
    for (param, _) in search::params_for(resource_type) {
        // `_id` is the row's own id.
        if *param == "_id" {
            continue;
        }
        let Some(def) = xenrad_fhir_model::schema::search_param(r.resource_type, param) else {
            continue;
        };
        let values = xenrad_fhir_model::index::extract(&r, def)
            .map_err(|e| StoreError::Job(format!("indexing {resource_type}.{param}: {}", e.0)))?;
        for v in values {
            push_index(&mut index, param, &v);
        }
    }
    Ok((xenrad_fhir_model::to_json(&r), index))
}

/// The index rows of one extracted value (see `store::sqlite` for how each kind is
/// matched).
fn push_index(out: &mut Vec<IndexEntry>, param: &'static str, v: &IndexValue<'_>) {
    use xenrad_fhir_model::index::DatePrecision;
    match v {
        IndexValue::Token { system, code } => {
            out.push(IndexEntry::token(param, system.unwrap_or_default(), code));
            // DICOM UIDs are identifiers `urn:oid:<uid>`; also findable by the bare UID.
            if let Some(bare) = code.strip_prefix("urn:oid:") {
                out.push(IndexEntry::token(param, "", bare));
            }
        }
        IndexValue::String(s) => {
            out.push(IndexEntry::string(param, s));
            out.push(IndexEntry::raw(param, s));
        }
        // Dates are kept as ISO text at their own precision; the SQL compares them
        // lexically and a shorter search value matches the whole period.
        IndexValue::Date(range) => {
            if let Some(low) = &range.low {
                let n = match range.precision {
                    DatePrecision::Year => 4,
                    DatePrecision::Month => 7,
                    DatePrecision::Day => 10,
                    DatePrecision::Time => low.len(),
                };
                out.push(IndexEntry::plain(param, low.get(..n).unwrap_or(low)));
            }
        }
        IndexValue::Reference { reference, .. } => out.push(IndexEntry::plain(param, reference)),
        IndexValue::Uri(u) | IndexValue::Number(u) => out.push(IndexEntry::plain(param, u)),
        IndexValue::Quantity { value, .. } => out.push(IndexEntry::plain(param, value)),
    }
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

/// A postal address: `(lines, city, state, postal code, country)`.
pub type Address = (
    Vec<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// What the protocols know about a patient.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PatientFacts {
    /// `(system, value)` identifiers; the first is the primary one.
    pub identifiers: Vec<(String, String)>,
    /// Family name.
    pub family: Option<String>,
    /// Given names, in order.
    pub given: Vec<String>,
    /// Birth date as FHIR `date` (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`).
    pub birth_date: Option<String>,
    /// FHIR administrative gender code.
    pub gender: Option<&'static str>,
    /// Addresses.
    pub addresses: Vec<Address>,
    /// Where the facts came from (`HL7v2 ADT^A08`, …), kept in `meta.source`-like text.
    pub source: String,
}

/// Maps HL7 table 0001 / v3 AdministrativeGender codes to FHIR's.
pub fn gender_code(code: &str) -> Option<&'static str> {
    match code.trim().to_ascii_uppercase().as_str() {
        "M" => Some("male"),
        "F" => Some("female"),
        "O" | "A" | "UN" => Some("other"),
        "U" | "N" | "UNK" => Some("unknown"),
        _ => None,
    }
}

/// Turns an HL7 v2 DT/DTM or v3 TS prefix (`YYYY[MM[DD…]]`) into a FHIR date.
pub fn fhir_date(ts: &str) -> Option<String> {
    let d: String = ts
        .chars()
        .take_while(char::is_ascii_digit)
        .take(8)
        .collect();
    match d.len() {
        8 => chrono::NaiveDate::parse_from_str(&d, "%Y%m%d")
            .ok()
            .map(|x| x.format("%Y-%m-%d").to_string()),
        6 => Some(format!("{}-{}", &d[..4], &d[4..6]))
            .filter(|_| (1..=12).contains(&d[4..6].parse::<u32>().unwrap_or(0))),
        4 => Some(d),
        _ => None,
    }
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

/// An order (ORM^O01, OMI^O23).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderFacts {
    /// Placer/filler order numbers and accession: `(system, value)`.
    pub identifiers: Vec<(String, String)>,
    /// FHIR ServiceRequest.status.
    pub status: &'static str,
    /// Procedure code `(system, code, display)`.
    pub code: Option<(String, String, String)>,
    /// The patient.
    pub patient: PatientFacts,
    /// Requested time (FHIR dateTime).
    pub occurrence: Option<String>,
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

/// One stored DICOM instance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstanceFacts {
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID (empty when unknown).
    pub series_uid: String,
    /// Modality (empty when unknown).
    pub modality: String,
    /// Patient, when the dataset names one.
    pub patient: Option<PatientFacts>,
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
    study["endpoint"] = json!([{"reference": crate::endpoint::ENDPOINT_REFERENCE}]);
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

/// What MPPS says about a procedure step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcedureFacts {
    /// The MPPS SOP Instance UID.
    pub mpps_uid: String,
    /// Study Instance UID (may be empty).
    pub study_uid: String,
    /// `IN PROGRESS`, `COMPLETED` or `DISCONTINUED`.
    pub status: String,
    /// Start (FHIR dateTime), when known.
    pub start: Option<String>,
    /// End (FHIR dateTime), when known.
    pub end: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_legal() {
        let a = derived_id("pat", "urn:x|123");
        assert_eq!(a, derived_id("pat", "urn:x|123"));
        assert_ne!(a, derived_id("pat", "urn:x|124"));
        assert!(a.len() <= 64 && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn dates_and_genders() {
        assert_eq!(fhir_date("19800101").as_deref(), Some("1980-01-01"));
        assert_eq!(fhir_date("198001").as_deref(), Some("1980-01"));
        assert_eq!(fhir_date("20240101120000").as_deref(), Some("2024-01-01"));
        assert_eq!(fhir_date("19801301"), None);
        assert_eq!(fhir_date(""), None);
        assert_eq!(gender_code("M"), Some("male"));
        assert_eq!(gender_code("x"), None);
    }
}
