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
