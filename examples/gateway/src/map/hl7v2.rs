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
    /// A report (ORU^R01) about this patient: DiagnosticReport and Observations.
    Report(Box<super::report::ReportFacts>, PatientFacts),
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

/// Patient facts from the PID segment of any message (SIU, for one).
#[allow(clippy::result_large_err)] // one ErrorDetail per rejected message
pub fn patient(m: &Message<'_>, source: &str) -> Result<PatientFacts, ErrorDetail> {
    pid_facts(m, source)
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
    // The accession (IPC-1, OBR-18) is added by the worklist mapping (map::order), under
    // the system of its assigning authority and typed ACSN.
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
        ..OrderFacts::default()
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
        ("ORU", "R01") => Ok(V2Effect::Report(
            Box::new(super::report::read_report(m)?),
            pid_facts(m, &source)?,
        )),
        _ => Ok(V2Effect::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::result_large_err)] // as `effect`
    fn effect_of(text: &str) -> Result<V2Effect, ErrorDetail> {
        let bytes = text.replace('\n', "\r");
        let m = Message::parse(bytes.as_bytes()).expect("parses");
        effect(&m)
    }

    const MSH: &str = "MSH|^~\\&|RIS|HOSP|XEN|FAC|20240101120000||";

    #[test]
    fn an_adt_becomes_patient_facts() {
        let e = effect_of(&format!(
            "{MSH}ADT^A08^ADT_A01|C1|P|2.5.1\nEVN|A08|20240101\nPID|1||PAT1^^^HOSP^MR~P2^^^&1.2.3&ISO||Doe^John^Q||19800101|F|||1 Main St^Apt 2^Springfield^IL^62701^USA\n"
        ))
        .unwrap();
        let V2Effect::Patient(f) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            f.identifiers,
            vec![
                ("HOSP".to_owned(), "PAT1".to_owned()),
                ("urn:oid:1.2.3".to_owned(), "P2".to_owned())
            ]
        );
        assert_eq!(f.family.as_deref(), Some("Doe"));
        assert_eq!(f.given, vec!["John", "Q"]);
        assert_eq!(f.birth_date.as_deref(), Some("1980-01-01"));
        assert_eq!(f.gender, Some("female"));
        assert_eq!(
            f.addresses,
            vec![(
                vec!["1 Main St".to_owned(), "Apt 2".to_owned()],
                Some("Springfield".to_owned()),
                Some("IL".to_owned()),
                Some("62701".to_owned()),
                Some("USA".to_owned())
            )]
        );
        assert_eq!(f.source, "HL7v2 ADT^A08");
    }

    #[test]
    fn a_merge_names_the_replaced_identifier() {
        let e = effect_of(&format!(
            "{MSH}ADT^A40^ADT_A39|C2|P|2.5.1\nEVN|A40\nPID|1||NEW1^^^HOSP||Doe^Jane\nMRG|OLD1^^^HOSP\n"
        ))
        .unwrap();
        let V2Effect::Merge(f, old) = e else {
            panic!("{e:?}")
        };
        assert_eq!(f.identifiers[0].1, "NEW1");
        assert_eq!(old, ("HOSP".to_owned(), "OLD1".to_owned()));
        let e = effect_of(&format!(
            "{MSH}ADT^A40^ADT_A39|C3|P|2.5.1\nEVN|A40\nPID|1||NEW1^^^HOSP||Doe^Jane\nMRG|\n"
        ))
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::RequiredFieldMissing);
    }

    #[test]
    fn an_order_becomes_order_facts() {
        let e = effect_of(&format!(
            "{MSH}ORM^O01^ORM_O01|C4|P|2.5.1\nPID|1||PAT1^^^HOSP||Doe^John\nORC|CA|PL1^RIS|FI1\nOBR|1|PL1^RIS|FI1|CTCHEST^CT chest^LOCAL|||20240102083000|||||||||||ACC7\n"
        ))
        .unwrap();
        let V2Effect::Order(f) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            f.identifiers,
            vec![
                ("urn:xenrad:placer:RIS".to_owned(), "PL1".to_owned()),
                ("urn:xenrad:filler".to_owned(), "FI1".to_owned()),
            ]
        );
        // The accession is the worklist mapping's (map::order): typed ACSN, its own system.
        assert_eq!(f.accession, None);
        assert_eq!(f.status, "revoked");
        assert_eq!(
            f.code,
            Some((
                "LOCAL".to_owned(),
                "CTCHEST".to_owned(),
                "CT chest".to_owned()
            ))
        );
        assert_eq!(f.occurrence.as_deref(), Some("2024-01-02"));
        assert_eq!(order_status("NW", Some("CM")), "completed");
        assert_eq!(order_status("HD", None), "on-hold");
        assert_eq!(order_status("NW", None), "active");
    }

    #[test]
    fn what_cannot_be_projected_is_an_error_detail_and_others_change_nothing() {
        let e = effect_of(&format!("{MSH}ADT^A01|C5|P|2.5.1\nPID|1||\n")).unwrap_err();
        assert_eq!(e.code, ErrorCode::RequiredFieldMissing);
        let e = effect_of(&format!(
            "{MSH}ADT^A01|C6|P|2.5.1\nPID|1||X1||Doe||19801301\n"
        ))
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::DataType);
        let e = effect_of(&format!("{MSH}ORM^O01|C7|P|2.5.1\nPID|1||X1\nORC|NW\n")).unwrap_err();
        assert_eq!(e.code, ErrorCode::RequiredFieldMissing);
        // A result without its OBR is no report (map::report).
        let e = effect_of(&format!("{MSH}ORU^R01|C8|P|2.5.1\nPID|1||X1\n")).unwrap_err();
        assert_eq!(e.code, ErrorCode::SegmentSequence);
        assert_eq!(
            effect_of(&format!("{MSH}SIU^S12|C9|P|2.5.1\nPID|1||X1\n")).unwrap(),
            V2Effect::None
        );
    }
}
