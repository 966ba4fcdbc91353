//! [`PatientFacts`] → `Patient` (FHIR R4 §8.1), merged into what is stored.

use super::{Invalid, Resource, invalid};
use crate::map::PatientFacts;
use xenrad_fhir_model::builders::{AddressParts, PatientBuilder};
use xenrad_fhir_model::typed::{Patient, ResourceView};

/// The `(system, value)` identifiers of a stored Patient, in order.
pub fn identifiers(existing: &Resource) -> Vec<(String, String)> {
    Patient::from_resource(existing)
        .map(|p| {
            p.identifier()
                .map(|i| {
                    (
                        i.system()
                            .and_then(|s| s.value())
                            .unwrap_or_default()
                            .to_owned(),
                        i.value()
                            .and_then(|v| v.value())
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The Patient `id` after `f`: a new one is `active`; a stored one (`existing`) keeps what the
/// facts do not say. Identifiers are the union of the stored and the new ones (stored first);
/// name (`official`), gender, birth date and addresses are replaced when the facts have them.
pub fn patient(
    id: &str,
    existing: Option<Resource>,
    f: &PatientFacts,
) -> Result<Resource, Invalid> {
    let (mut ids, mut b) = match existing {
        Some(r) => (identifiers(&r), PatientBuilder::edit(r).clear("identifier")),
        None => (Vec::new(), PatientBuilder::new(id).active(true)),
    };
    for i in &f.identifiers {
        if !ids.contains(i) {
            ids.push(i.clone());
        }
    }
    for (system, value) in &ids {
        b = b.identifier(system, value);
    }
    if f.family.is_some() || !f.given.is_empty() {
        let given: Vec<&str> = f.given.iter().map(String::as_str).collect();
        b = b
            .clear("name")
            .name_with_use("official", f.family.as_deref(), &given);
    }
    if let Some(g) = f.gender {
        b = b.clear("gender").gender(g);
    }
    if let Some(d) = &f.birth_date {
        b = b.clear("birthDate").birth_date(d);
    }
    if !f.addresses.is_empty() {
        b = b.clear("address");
        for (lines, city, state, postal, country) in &f.addresses {
            b = b.address(&AddressParts {
                lines,
                city: city.as_deref(),
                state: state.as_deref(),
                postal_code: postal.as_deref(),
                country: country.as_deref(),
            });
        }
    }
    b.build().map_err(|oo| invalid("Patient", &oo))
}

/// A stored Patient replaced by `Patient/<new_id>` (ADT^A40 merge, HL7 v2.5.1 §3.6.2.1.2):
/// inactive, with a `replaced-by` link (FHIR R4 §8.1.2.3).
pub fn replaced_by(existing: Resource, new_id: &str) -> Result<Resource, Invalid> {
    PatientBuilder::edit(existing)
        .clear("active")
        .active(false)
        .clear("link")
        .link(&format!("Patient/{new_id}"), "replaced-by")
        .build()
        .map_err(|oo| invalid("Patient", &oo))
}

/// The surviving patient of a merge, with a `replaces` link to `Patient/<old_id>` (kept once).
pub fn replaces(existing: Resource, old_id: &str) -> Result<Resource, Invalid> {
    let target = format!("Patient/{old_id}");
    let json = xenrad_fhir_model::to_json(&existing);
    let b = PatientBuilder::edit(existing);
    let b = if json.contains(&format!("\"reference\":\"{target}\"")) {
        b
    } else {
        b.link(&target, "replaces")
    };
    b.build().map_err(|oo| invalid("Patient", &oo))
}

/// A resource about `Patient/<old>` moved to `new_subject` (`Patient/<id>`): its `subject`
/// replaced, everything else kept (merges, ADT^A40).
pub fn moved(existing: Resource, new_subject: &str) -> Result<Resource, Invalid> {
    let rt = existing.resource_type;
    xenrad_fhir_model::builders::Builder::edit(existing)
        .clear("subject")
        .reference("subject", new_subject, None)
        .build()
        .map_err(|oo| invalid(rt.as_str(), &oo))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xenrad_fhir_model::to_json;

    fn facts() -> PatientFacts {
        PatientFacts {
            identifiers: vec![("urn:oid:1.2.3".into(), "MRN1".into())],
            family: Some("Doe".into()),
            given: vec!["John".into(), "Q".into()],
            birth_date: Some("1980-01-01".into()),
            gender: Some("male"),
            addresses: vec![(
                vec!["1 Main St".into()],
                Some("Springfield".into()),
                Some("IL".into()),
                Some("62701".into()),
                Some("USA".into()),
            )],
            source: "HL7v2 ADT^A08".into(),
        }
    }

    #[test]
    fn a_new_patient_has_every_fact() {
        let p = patient("pat-1", None, &facts()).unwrap();
        assert_eq!(
            to_json(&p),
            r#"{"resourceType":"Patient","id":"pat-1","identifier":[{"system":"urn:oid:1.2.3","value":"MRN1"}],"active":true,"name":[{"use":"official","family":"Doe","given":["John","Q"]}],"gender":"male","birthDate":"1980-01-01","address":[{"line":["1 Main St"],"city":"Springfield","state":"IL","postalCode":"62701","country":"USA"}]}"#
        );
    }

    #[test]
    fn an_update_keeps_what_it_does_not_say_and_unions_identifiers() {
        let stored = replaced_by(patient("pat-1", None, &facts()).unwrap(), "pat-2").unwrap();
        let update = PatientFacts {
            identifiers: vec![
                (String::new(), "LOCAL7".into()),
                ("urn:oid:1.2.3".into(), "MRN1".into()),
            ],
            family: Some("Roe".into()),
            given: Vec::new(),
            gender: Some("unknown"),
            ..PatientFacts::default()
        };
        let p = patient("ignored", Some(stored), &update).unwrap();
        assert_eq!(p.id(), Some("pat-1"));
        assert_eq!(
            identifiers(&p),
            vec![
                ("urn:oid:1.2.3".to_owned(), "MRN1".to_owned()),
                (String::new(), "LOCAL7".to_owned())
            ]
        );
        let j = to_json(&p);
        assert!(j.contains(r#""active":false"#), "{j}");
        assert!(
            j.contains(r#""name":[{"use":"official","family":"Roe"}]"#),
            "{j}"
        );
        assert!(j.contains(r#""gender":"unknown""#), "{j}");
        assert!(j.contains(r#""birthDate":"1980-01-01""#), "{j}");
        assert!(
            j.contains(r#""link":[{"other":{"reference":"Patient/pat-2"},"type":"replaced-by"}]"#),
            "{j}"
        );
    }

    #[test]
    fn the_same_facts_project_the_same_bytes() {
        let once = patient("pat-1", None, &facts()).unwrap();
        let twice = patient("pat-1", Some(once.clone()), &facts()).unwrap();
        assert_eq!(to_json(&once), to_json(&twice));
    }

    #[test]
    fn an_invalid_fact_is_an_error_not_a_stored_resource() {
        let bad = PatientFacts {
            birth_date: Some("01.01.1980".into()),
            ..facts()
        };
        assert!(patient("pat-1", None, &bad).is_err());
    }

    #[test]
    fn a_merge_links_both_sides_and_moves_subjects() {
        let new = patient("pat-new", None, &facts()).unwrap();
        let linked = replaces(new, "pat-old").unwrap();
        let j = to_json(&linked);
        assert!(
            j.contains(r#""link":[{"other":{"reference":"Patient/pat-old"},"type":"replaces"}]"#),
            "{j}"
        );
        // Linked once.
        assert_eq!(to_json(&replaces(linked, "pat-old").unwrap()), j);
        let sr = xenrad_fhir_model::builders::ServiceRequestBuilder::new(
            "sr-1",
            "active",
            "order",
            "Patient/pat-old",
        )
        .build()
        .unwrap();
        let m = to_json(&moved(sr, "Patient/pat-new").unwrap());
        assert!(
            m.contains(r#""subject":{"reference":"Patient/pat-new"}"#),
            "{m}"
        );
        assert!(m.contains(r#""status":"active""#));
    }
}
