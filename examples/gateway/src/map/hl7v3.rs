//! HL7 v3 messages as facts: a PRPA patient record → [`PatientFacts`].

use super::{PatientFacts, fhir_date, gender_code};

/// `urn:oid:` for OIDs, `urn:uuid:` for UUIDs (HL7 v3 II.root; FHIR R4 §2.24.0.1 uri).
fn root_uri(root: &str) -> String {
    if root.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        format!("urn:oid:{root}")
    } else if root.len() == 36 && root.bytes().filter(|b| *b == b'-').count() == 4 {
        format!("urn:uuid:{}", root.to_ascii_lowercase())
    } else {
        root.to_owned()
    }
}

fn ii_pair(ii: &xenrad_hl7v3::types::Ii<'_>) -> Option<(String, String)> {
    ii_parts(ii.root.as_deref(), ii.extension.as_deref())
}

/// (system, value) of an instance identifier's root and extension.
pub fn ii_parts(root: Option<&str>, extension: Option<&str>) -> Option<(String, String)> {
    match (root, extension) {
        (Some(r), Some(e)) if !e.is_empty() => Some((root_uri(r), e.to_owned())),
        (Some(r), _) if !r.is_empty() => Some((String::new(), root_uri(r))),
        _ => None,
    }
}

/// Patient facts from a PRPA patient record (HL7 v3 NE PRPA_RM201301UV02).
pub fn patient(rec: &xenrad_hl7v3::payload::PatientRecord, source: &str) -> PatientFacts {
    use xenrad_hl7v3::types::AddrPartKind as A;
    let mut f = PatientFacts {
        source: source.to_owned(),
        ..PatientFacts::default()
    };
    f.identifiers = rec
        .ids
        .iter()
        .chain(rec.other_ids.iter())
        .filter_map(ii_pair)
        .collect();
    if let Some(n) = rec.names.first() {
        f.family = n.family().next().map(str::to_owned);
        f.given = n.given().map(str::to_owned).collect();
    }
    f.gender = rec.gender.as_deref().and_then(gender_code);
    f.birth_date = rec.birth_time.as_deref().and_then(fhir_date);
    for a in &rec.addresses {
        let part = |k: A| {
            a.parts
                .iter()
                .find(|(kind, _)| *kind == k)
                .map(|(_, v)| v.clone())
        };
        let lines: Vec<String> = a
            .parts
            .iter()
            .filter(|(k, _)| {
                matches!(
                    k,
                    A::StreetAddressLine | A::StreetName | A::HouseNumber | A::UnitId | A::PostBox
                )
            })
            .map(|(_, v)| v.clone())
            .collect();
        f.addresses.push((
            lines,
            part(A::City),
            part(A::State),
            part(A::PostalCode),
            part(A::Country),
        ));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_identifiers_become_systems_and_values() {
        assert_eq!(
            ii_parts(Some("1.2.3"), Some("X9")),
            Some(("urn:oid:1.2.3".to_owned(), "X9".to_owned()))
        );
        assert_eq!(
            ii_parts(Some("22A0F9E0-4454-11DC-A6BE-3603D6866807"), None),
            Some((
                String::new(),
                "urn:uuid:22a0f9e0-4454-11dc-a6be-3603d6866807".to_owned()
            ))
        );
        assert_eq!(
            ii_parts(Some("x:y"), Some("")),
            Some((String::new(), "x:y".to_owned()))
        );
        assert_eq!(ii_parts(None, Some("X9")), None);
    }

    #[test]
    fn a_patient_registry_record_becomes_patient_facts() {
        // IHE ITI PIXV3 example (shared corpus), as the e2e test ingests it.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/corpus/hl7v3/ihe-iti-examples/PIXV3__01_PatientRegistryRecordAdded1.xml");
        let Ok(xml) = std::fs::read(&path) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{} missing",
                path.display()
            );
            println!("skipped: {} not found", path.display());
            return;
        };
        let m = xenrad_hl7v3::strict(&xml).expect("strict pass");
        let p = m.patients();
        let f = patient(&p[0].to_record(), "HL7v3 PRPA_IN201301UV02");
        assert_eq!(
            f.identifiers[0],
            (
                "urn:oid:1.2.840.114350.1.13.99998.8734".to_owned(),
                "34827G234".to_owned()
            )
        );
        assert_eq!(f.family.as_deref(), Some("Dean"));
        assert_eq!(f.given, vec!["Jimmy"]);
        assert_eq!(f.gender, Some("male"));
        assert_eq!(f.birth_date.as_deref(), Some("1957-03-23"));
        assert_eq!(f.addresses[0].0, vec!["3443 S Beach Ave"]);
        assert_eq!(f.addresses[0].1.as_deref(), Some("Some City"));
    }
}
