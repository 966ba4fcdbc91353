//! [`OrderFacts`] → `ServiceRequest` (FHIR R4 §12.2).

use super::{DICOM_UID_SYSTEM, Invalid, Resource, invalid};
use crate::map::OrderFacts;
use xenrad_fhir_model::builders::ServiceRequestBuilder;

/// DICOM (DCM) code 110180 "Study Instance UID": the type of the identifier that names the
/// study an order's images will have.
pub const STUDY_UID_TYPE: (&str, &str) = ("http://dicom.nema.org/resources/ontology/DCM", "110180");

/// DCM 110514 "Incorrect worklist entry selected" (PS3.16 CID 9300): the discontinuation
/// reason saying the step performed was not this order's.
pub const INCORRECT_WORKLIST_ENTRY: &str = "110514";

/// What an MPPS state does to the order it performs: `(ServiceRequest.status, SPS Status,
/// whether the step stays on the worklist)` (the gateway README's table; the Procedure and
/// ImagingStudy statuses are [`super::procedure::statuses`]).
///
/// | MPPS status | discontinuation reason | ServiceRequest.status | SPS status | worklist |
/// |---|---|---|---|---|
/// | IN PROGRESS | — | active | STARTED | stays |
/// | COMPLETED | — | completed | COMPLETED | leaves |
/// | DISCONTINUED | 110514 incorrect worklist entry selected | active (the order was not performed) | SCHEDULED | stays (back to scheduled) |
/// | DISCONTINUED | any other, none | revoked | DISCONTINUED | leaves |
/// | other | — | unchanged | unchanged | unchanged |
pub fn after_mpps(
    mpps_status: &str,
    reason: Option<&str>,
) -> Option<(&'static str, &'static str, bool)> {
    match (mpps_status, reason) {
        ("IN PROGRESS", _) => Some(("active", "STARTED", true)),
        ("COMPLETED", _) => Some(("completed", "COMPLETED", false)),
        ("DISCONTINUED", Some(INCORRECT_WORKLIST_ENTRY)) => Some(("active", "SCHEDULED", true)),
        ("DISCONTINUED", _) => Some(("revoked", "DISCONTINUED", false)),
        _ => None,
    }
}

/// A stored ServiceRequest with another `status`.
pub fn with_status(existing: Resource, status: &str) -> Result<Resource, Invalid> {
    ServiceRequestBuilder::edit(existing)
        .clear("status")
        .str("status", status)
        .build()
        .map_err(|oo| invalid("ServiceRequest", &oo))
}

/// SNOMED CT 363679005 "Imaging": the category of every order the gateway receives.
const IMAGING: (&str, &str, &str) = ("http://snomed.info/sct", "363679005", "Imaging");

/// The ServiceRequest `id` of an order for `Patient/<patient_id>`: an `order` intent, the
/// imaging category, the placer/filler/accession identifiers, status, code and requested time.
/// An order message carries the whole order, so the result replaces what was stored.
pub fn service_request(id: &str, f: &OrderFacts, patient_id: &str) -> Result<Resource, Invalid> {
    let mut b = ServiceRequestBuilder::new(id, f.status, "order", &format!("Patient/{patient_id}"))
        .category(IMAGING.0, IMAGING.1, Some(IMAGING.2));
    for (system, value) in &f.identifiers {
        b = b.identifier(system, value);
    }
    if let Some((system, value)) = &f.accession {
        b = b.accession(system, value);
    }
    for uid in &f.study_uids {
        b = b.identifier_typed(
            DICOM_UID_SYSTEM,
            &format!("urn:oid:{uid}"),
            STUDY_UID_TYPE.0,
            STUDY_UID_TYPE.1,
        );
    }
    if let Some((system, code, display)) = &f.code {
        b = b.code(
            system,
            code,
            Some(display.as_str()).filter(|d| !d.is_empty()),
        );
    }
    if let Some(o) = &f.occurrence {
        b = b.occurrence(o);
    }
    b.build().map_err(|oo| invalid("ServiceRequest", &oo))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::PatientFacts;

    #[test]
    fn an_order_becomes_a_service_request() {
        let f = OrderFacts {
            identifiers: vec![
                ("urn:xenrad:placer".into(), "P1".into()),
                ("urn:xenrad:accession".into(), "ACC9".into()),
            ],
            status: "active",
            code: Some((String::new(), "CTCHEST".into(), String::new())),
            patient: PatientFacts::default(),
            occurrence: Some("2024-01-01".into()),
            ..OrderFacts::default()
        };
        let sr = service_request("sr-1", &f, "pat-1").unwrap();
        assert_eq!(
            xenrad_fhir_model::to_json(&sr),
            r#"{"resourceType":"ServiceRequest","id":"sr-1","identifier":[{"system":"urn:xenrad:placer","value":"P1"},{"system":"urn:xenrad:accession","value":"ACC9"}],"status":"active","intent":"order","category":[{"coding":[{"system":"http://snomed.info/sct","code":"363679005","display":"Imaging"}]}],"code":{"coding":[{"code":"CTCHEST"}]},"subject":{"reference":"Patient/pat-1"},"occurrenceDateTime":"2024-01-01"}"#
        );
        let bad = OrderFacts {
            status: "sleeping",
            ..f
        };
        assert!(service_request("sr-1", &bad, "pat-1").is_err());
    }

    #[test]
    fn the_accession_is_typed_acsn_under_its_authority_and_the_study_uid_dcm_110180() {
        let f = OrderFacts {
            identifiers: vec![("RIS".into(), "P1".into())],
            status: "active",
            accession: Some(("urn:oid:1.2.840.99".into(), "ACC1".into())),
            study_uids: vec!["1.2.3.4".into()],
            ..OrderFacts::default()
        };
        let j = xenrad_fhir_model::to_json(&service_request("sr-1", &f, "pat-1").unwrap());
        assert!(
            j.contains(r#"{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"ACSN"}]},"system":"urn:oid:1.2.840.99","value":"ACC1"}"#),
            "{j}"
        );
        assert!(
            j.contains(r#"{"type":{"coding":[{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"110180"}]},"system":"urn:dicom:uid","value":"urn:oid:1.2.3.4"}"#),
            "{j}"
        );
        let done = with_status(service_request("sr-1", &f, "pat-1").unwrap(), "completed").unwrap();
        assert!(xenrad_fhir_model::to_json(&done).contains(r#""status":"completed""#));
    }

    // The MPPS → order table, one row per test.
    #[test]
    fn mpps_row_in_progress() {
        assert_eq!(
            after_mpps("IN PROGRESS", None),
            Some(("active", "STARTED", true))
        );
    }
    #[test]
    fn mpps_row_completed() {
        assert_eq!(
            after_mpps("COMPLETED", None),
            Some(("completed", "COMPLETED", false))
        );
    }
    #[test]
    fn mpps_row_discontinued_incorrect_worklist_entry() {
        assert_eq!(
            after_mpps("DISCONTINUED", Some("110514")),
            Some(("active", "SCHEDULED", true))
        );
    }
    #[test]
    fn mpps_row_discontinued() {
        assert_eq!(
            after_mpps("DISCONTINUED", Some("110526")),
            Some(("revoked", "DISCONTINUED", false))
        );
        assert_eq!(
            after_mpps("DISCONTINUED", None),
            Some(("revoked", "DISCONTINUED", false))
        );
    }
    #[test]
    fn mpps_row_other() {
        assert_eq!(after_mpps("", None), None);
    }
}
