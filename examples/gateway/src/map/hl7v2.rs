//! HL7 v2 (v2.5.1) messages as facts: PID → [`PatientFacts`], ORC/OBR → [`OrderFacts`],
//! ADT^A40's MRG → the identifier a patient replaces. Reads the parsed message only.

use super::{OrderFacts, PatientFacts, fhir_date, gender_code};
use std::borrow::Cow;
use xenrad_hl7v2::Message;
use xenrad_hl7v2::ack::{ErrorCode, ErrorDetail};

/// What an HL7 v2 message changes, extracted (owned) before the store job runs.
#[derive(Debug, Clone, PartialEq)]
pub enum V2Effect {
    /// Nothing beyond storing the message.
    None,
    /// Create or update a Patient.
    Patient(PatientFacts),
    /// Merge: the surviving patient, then the identifier of the one it replaces.
    Merge(PatientFacts, (String, String)),
    /// Create or update a ServiceRequest.
    Order(Box<OrderFacts>),
}

fn text<'a>(m: &Message<'a>, path: &str) -> Option<Cow<'a, str>> {
    m.get(path).filter(|s| !s.trim().is_empty())
}

fn owned(m: &Message<'_>, path: &str) -> Option<String> {
    text(m, path).map(|s| s.trim().to_owned())
}

/// Assigning authority of a CX (component 4, an HD): the universal id as a URI when
/// it is an ISO OID, else the namespace id (HL7 v2.5.1 §2.A.14 HD, §2.A.14 CX).
fn cx_system(m: &Message<'_>, base: &str) -> String {
    let ns = owned(m, &format!("{base}-4-1"));
    let uid = owned(m, &format!("{base}-4-2"));
    let uid_type = owned(m, &format!("{base}-4-3"));
    match (uid, uid_type.as_deref()) {
        (Some(u), Some("ISO")) => format!("urn:oid:{u}"),
        (Some(u), _) if u.contains(':') => u,
        (Some(u), _) => ns.unwrap_or(u),
        (None, _) => ns.unwrap_or_default(),
    }
}

/// Patient facts from the PID segment (HL7 v2.5.1 §3.4.2).
#[allow(clippy::result_large_err)] // one ErrorDetail per rejected message
fn pid_facts(m: &Message<'_>, source: &str) -> Result<PatientFacts, ErrorDetail> {
    if m.segment("PID").is_none() {
        return Err(ErrorDetail::new(
            ErrorCode::SegmentSequence,
            "PID segment missing",
        ));
    }
    let mut f = PatientFacts {
        source: source.to_owned(),
        ..PatientFacts::default()
    };
    for r in 1..=64 {
        let base = format!("PID-3({r})");
        let Some(v) = owned(m, &format!("{base}-1")) else {
            if text(m, &base).is_none() {
                break;
            }
            continue;
        };
        f.identifiers.push((cx_system(m, &base), v));
    }
    if f.identifiers.is_empty() {
        return Err(ErrorDetail::new(
            ErrorCode::RequiredFieldMissing,
            "PID-3 (patient identifier list) is empty",
        ));
    }
    f.family = owned(m, "PID-5-1-1").or_else(|| owned(m, "PID-5-1"));
    f.given = ["PID-5-2", "PID-5-3"]
        .iter()
        .filter_map(|p| owned(m, p))
        .collect();
    if let Some(b) = owned(m, "PID-7-1").or_else(|| owned(m, "PID-7")) {
        f.birth_date = Some(fhir_date(&b).ok_or_else(|| {
            ErrorDetail::new(ErrorCode::DataType, format!("PID-7 {b:?} is not a date"))
        })?);
    }
    f.gender = owned(m, "PID-8").and_then(|g| gender_code(&g));
    for r in 1..=8 {
        let base = format!("PID-11({r})");
        if text(m, &base).is_none() {
            break;
        }
        let lines: Vec<String> = [format!("{base}-1-1"), format!("{base}-2")]
            .iter()
            .filter_map(|p| owned(m, p))
            .collect();
        f.addresses.push((
            lines,
            owned(m, &format!("{base}-3")),
            owned(m, &format!("{base}-4")),
            owned(m, &format!("{base}-5")),
            owned(m, &format!("{base}-6")),
        ));
    }
    Ok(f)
}

/// ServiceRequest.status from ORC-1 order control and ORC-5 order status (tables 0119, 0038).
fn order_status(control: &str, status: Option<&str>) -> &'static str {
    match (control, status) {
        (_, Some("CM")) => "completed",
        (_, Some("CA" | "DC")) | ("CA" | "DC" | "OC" | "OD", _) => "revoked",
        ("HD" | "OH", _) | (_, Some("HD")) => "on-hold",
        _ => "active",
    }
}

/// Order facts from ORC/OBR (HL7 v2.5.1 §4.5.1, §4.5.3), accession from IPC-1 (OMI) or OBR-18.
#[allow(clippy::result_large_err)] // one ErrorDetail per rejected message
fn order_facts(m: &Message<'_>, source: &str) -> Result<OrderFacts, ErrorDetail> {
    let patient = pid_facts(m, source)?;
    let mut ids = Vec::new();
    for (path, kind) in [
        ("ORC-2", "placer"),
        ("OBR-2", "placer"),
        ("ORC-3", "filler"),
        ("OBR-3", "filler"),
    ] {
        if let Some(v) = owned(m, &format!("{path}-1")) {
            let ns = owned(m, &format!("{path}-2")).unwrap_or_default();
            let system = if ns.is_empty() {
                format!("urn:xenrad:{kind}")
            } else {
                format!("urn:xenrad:{kind}:{ns}")
            };
            if !ids.contains(&(system.clone(), v.clone())) {
                ids.push((system, v));
            }
        }
    }
    if let Some(acc) = owned(m, "IPC-1-1").or_else(|| owned(m, "OBR-18")) {
        ids.push(("urn:xenrad:accession".to_owned(), acc));
    }
    if ids.is_empty() {
        return Err(ErrorDetail::new(
            ErrorCode::RequiredFieldMissing,
            "ORC-2/ORC-3 (placer/filler order number) are empty",
        ));
    }
    let control = owned(m, "ORC-1").unwrap_or_else(|| "NW".to_owned());
    let status = owned(m, "ORC-5");
    let code = owned(m, "OBR-4-1").map(|c| {
        (
            owned(m, "OBR-4-3").unwrap_or_default(),
            c,
            owned(m, "OBR-4-2").unwrap_or_default(),
        )
    });
    let occurrence = owned(m, "OBR-7-1")
        .or_else(|| owned(m, "TQ1-7-1"))
        .and_then(|t| fhir_date(&t));
    Ok(OrderFacts {
        identifiers: ids,
        status: order_status(&control, status.as_deref()),
        code,
        patient,
        occurrence,
    })
}

/// What `m` changes: its facts by message type (ADT → Patient, ADT^A40 → merge,
/// ORM^O01 / OMI^O23 / OMG^O19 → ServiceRequest), or the ERR detail of why it cannot be projected.
#[allow(clippy::result_large_err)] // one ErrorDetail per rejected message
pub fn effect(m: &Message<'_>) -> Result<V2Effect, ErrorDetail> {
    let Some(t) = m.message_type() else {
        return Err(ErrorDetail::new(
            ErrorCode::RequiredFieldMissing,
            "MSH-9 (message type) is empty",
        ));
    };
    let source = format!("HL7v2 {}^{}", t.code, t.trigger_event);
    match (t.code.as_ref(), t.trigger_event.as_ref()) {
        ("ADT", "A40") => {
            let f = pid_facts(m, &source)?;
            let old = owned(m, "MRG-1-1").ok_or_else(|| {
                ErrorDetail::new(
                    ErrorCode::RequiredFieldMissing,
                    "MRG-1 (prior patient identifier) is empty",
                )
            })?;
            Ok(V2Effect::Merge(f, (cx_system(m, "MRG-1"), old)))
        }
        ("ADT", _) if m.segment("PID").is_some() => Ok(V2Effect::Patient(pid_facts(m, &source)?)),
        ("ORM", "O01") | ("OMI", "O23") | ("OMG", "O19") => {
            Ok(V2Effect::Order(Box::new(order_facts(m, &source)?)))
        }
        _ => Ok(V2Effect::None),
    }
}
