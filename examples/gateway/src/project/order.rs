//! [`OrderFacts`] → `ServiceRequest` (FHIR R4 §12.2).

use super::{Invalid, Resource, invalid};
use crate::map::OrderFacts;
use xenrad_fhir_model::builders::ServiceRequestBuilder;

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
}
