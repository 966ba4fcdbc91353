//! `validate()` over every valid official example: never panics, and the errors it reports are
//! pinned by kind, so a change in the validator shows up here.

mod common;

use std::collections::BTreeMap;

#[test]
fn validate_official_examples() {
    let files = common::example_files();
    if files.is_empty() {
        return;
    }
    let mut by_code: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    let mut samples: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        let Ok(r) = xenrad_fhir_model::from_json(&bytes) else {
            continue;
        };
        for i in xenrad_fhir_model::validate(&r).issues {
            *by_code
                .entry((i.severity.as_str().to_owned(), i.code))
                .or_default() += 1;
            let s = samples.entry(i.code).or_default();
            if s.len() < 5 {
                s.push(format!(
                    "{} {:?}: {}",
                    f.file_name().unwrap().to_string_lossy(),
                    i.location,
                    i.diagnostics
                ));
            }
        }
    }
    println!("{by_code:#?}\n{samples:#?}");
    // the only finding in the valid examples: one id longer than 64 characters (a warning)
    let expected: BTreeMap<(String, &'static str), usize> =
        [(("warning".to_owned(), "value"), 1)].into_iter().collect();
    assert_eq!(by_code, expected, "{samples:#?}");
}

#[test]
fn required_bindings_on_codeable_concepts() {
    let make = |code: &str| {
        format!(
            r#"{{"resourceType":"AllergyIntolerance","patient":{{"reference":"Patient/p"}},
               "clinicalStatus":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"{code}"}}]}}}}"#
        )
    };
    let (good_text, bad_text) = (make("active"), make("bogus"));
    let ok = xenrad_fhir_model::from_json(good_text.as_bytes()).unwrap();
    assert!(!xenrad_fhir_model::validate(&ok).has_errors());
    let bad = xenrad_fhir_model::from_json(bad_text.as_bytes()).unwrap();
    let oo = xenrad_fhir_model::validate(&bad);
    assert_eq!(oo.issues.len(), 1);
    assert_eq!(oo.issues[0].code, "code-invalid");
    assert_eq!(oo.issues[0].location, vec!["/clinicalStatus".to_owned()]);
    assert_eq!(
        oo.issues[0].expression,
        vec!["AllergyIntolerance.clinicalStatus".to_owned()]
    );
}

/// The value set bound (required) somewhere in the model under `url`.
fn bound_value_set(url: &str) -> &'static xenrad_fhir_model::schema::ValueSetDef {
    xenrad_fhir_model::generated::TYPES
        .iter()
        .flat_map(|t| t.elements.iter())
        .find_map(|e| e.binding.filter(|b| b.url == url))
        .unwrap_or_else(|| panic!("{url} is bound"))
}

#[test]
fn codings_are_checked_as_exact_system_code_pairs() {
    let vs = bound_value_set("http://hl7.org/fhir/ValueSet/all-types");
    assert!(vs.contains_coding(Some("http://hl7.org/fhir/resource-types"), "Patient"));
    assert!(vs.contains_coding(Some("http://hl7.org/fhir/data-types"), "HumanName"));
    // both codes are in the value set, but not from that system
    assert!(!vs.contains_coding(Some("http://hl7.org/fhir/data-types"), "Patient"));
    assert!(!vs.contains_coding(Some("http://hl7.org/fhir/resource-types"), "HumanName"));
    assert!(vs.contains_coding(None, "Patient"));
}

#[test]
fn mime_types_are_checked_by_syntax() {
    let make = |ct: &str| {
        format!(
            r#"{{"resourceType":"DocumentReference","status":"current","content":[{{"attachment":{{"contentType":"{ct}"}}}}]}}"#
        )
    };
    let ok = make("application/pdf");
    let ok = xenrad_fhir_model::from_json(ok.as_bytes()).unwrap();
    assert!(!xenrad_fhir_model::validate(&ok).has_errors());
    let bad = make("pdf");
    let bad = xenrad_fhir_model::from_json(bad.as_bytes()).unwrap();
    let oo = xenrad_fhir_model::validate(&bad);
    assert_eq!(oo.issues.len(), 1, "{oo:?}");
    assert_eq!(oo.issues[0].code, "code-invalid");
    assert_eq!(
        oo.issues[0].location,
        vec!["/content/0/attachment/contentType".to_owned()]
    );
}
