//! [`ProcedureFacts`] (an MPPS state) → `Procedure` (FHIR R4 §9.4) and the status it gives the
//! ImagingStudy.

use super::{DICOM_UID_SYSTEM, Invalid, Resource, Subject, invalid};
use crate::map::ProcedureFacts;
use xenrad_fhir_model::builders::ProcedureBuilder;

/// SNOMED CT 103693007 "Diagnostic procedure".
const DIAGNOSTIC: (&str, &str, &str) = (
    "http://snomed.info/sct",
    "103693007",
    "Diagnostic procedure",
);

/// `(Procedure.status, ImagingStudy.status)` of an MPPS status (PS3.3 C.4.14 Performed
/// Procedure Step Status: IN PROGRESS, COMPLETED, DISCONTINUED) and discontinuation reason:
/// a step discontinued because the wrong worklist entry was selected (DCM 110514) is a
/// Procedure `entered-in-error`.
pub fn statuses(mpps_status: &str, reason: Option<&str>) -> (&'static str, &'static str) {
    match (mpps_status, reason) {
        ("IN PROGRESS", _) => ("in-progress", "registered"),
        ("COMPLETED", _) => ("completed", "available"),
        ("DISCONTINUED", Some(super::order::INCORRECT_WORKLIST_ENTRY)) => {
            ("entered-in-error", "cancelled")
        }
        ("DISCONTINUED", _) => ("stopped", "cancelled"),
        _ => ("unknown", "unknown"),
    }
}

/// The Procedure `id` of an MPPS instance about `subject`: its UID as identifier, status,
/// category and performed period. MPPS carries the whole state, so the result replaces what was
/// stored.
/// `based_on` is the ServiceRequest it performs, when known.
pub fn procedure(
    id: &str,
    f: &ProcedureFacts,
    subject: &Subject,
    based_on: Option<&str>,
) -> Result<Resource, Invalid> {
    let (status, _) = statuses(&f.status, f.discontinuation_reason.as_deref());
    let b = match subject {
        Subject::Reference(r) => ProcedureBuilder::new(id, status, r),
        Subject::Display(d) => ProcedureBuilder::with_subject_display(id, status, d),
    };
    let b = match based_on {
        Some(r) => b.based_on(r),
        None => b,
    };
    b.identifier(DICOM_UID_SYSTEM, &format!("urn:oid:{}", f.mpps_uid))
        .category(DIAGNOSTIC.0, DIAGNOSTIC.1, Some(DIAGNOSTIC.2))
        .performed(f.start.as_deref(), f.end.as_deref())
        .build()
        .map_err(|oo| invalid("Procedure", &oo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mpps_state_becomes_a_procedure() {
        let f = ProcedureFacts {
            mpps_uid: "1.2.9".into(),
            study_uid: "1.2.3".into(),
            status: "COMPLETED".into(),
            start: Some("2024-01-01T10:00:00+00:00".into()),
            end: Some("2024-01-01T10:20:00+00:00".into()),
            ..ProcedureFacts::default()
        };
        let p = procedure(
            "proc-1",
            &f,
            &Subject::Reference("Patient/pat-1".into()),
            None,
        )
        .unwrap();
        assert_eq!(
            xenrad_fhir_model::to_json(&p),
            r#"{"resourceType":"Procedure","id":"proc-1","identifier":[{"system":"urn:dicom:uid","value":"urn:oid:1.2.9"}],"status":"completed","category":{"coding":[{"system":"http://snomed.info/sct","code":"103693007","display":"Diagnostic procedure"}]},"subject":{"reference":"Patient/pat-1"},"performedPeriod":{"start":"2024-01-01T10:00:00+00:00","end":"2024-01-01T10:20:00+00:00"}}"#
        );
        let f = ProcedureFacts {
            status: "SOMETHING".into(),
            start: None,
            end: None,
            ..f
        };
        let p = procedure(
            "proc-1",
            &f,
            &Subject::Display("unknown patient".into()),
            None,
        )
        .unwrap();
        let j = xenrad_fhir_model::to_json(&p);
        assert!(
            j.contains(r#""status":"unknown""#) && !j.contains("performed"),
            "{j}"
        );
        assert_eq!(statuses("DISCONTINUED", None), ("stopped", "cancelled"));
        assert_eq!(
            statuses("DISCONTINUED", Some("110514")),
            ("entered-in-error", "cancelled")
        );
        assert_eq!(statuses("IN PROGRESS", None), ("in-progress", "registered"));
        let based = procedure(
            "proc-1",
            &f,
            &Subject::Display("unknown patient".into()),
            Some("ServiceRequest/sr-1"),
        )
        .unwrap();
        assert!(
            xenrad_fhir_model::to_json(&based)
                .contains(r#""basedOn":[{"reference":"ServiceRequest/sr-1"}]"#)
        );
    }
}
