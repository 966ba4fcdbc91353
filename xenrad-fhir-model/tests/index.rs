//! Search indexing over the official examples of the radiology resources: every expression of
//! their parameters is within the supported FHIRPath subset, and the extracted values agree with
//! what `serde_json` finds at the same paths.

mod common;

use serde_json::Value as J;
use xenrad_fhir_model::index::{DatePrecision, IndexValue, extract, index};
use xenrad_fhir_model::schema::search_param;
use xenrad_fhir_model::{Resource, ResourceType, from_json};

const TYPES: &[&str] = &[
    "Patient",
    "ServiceRequest",
    "ImagingStudy",
    "Procedure",
    "DiagnosticReport",
    "Encounter",
    "Practitioner",
    "Organization",
    "Endpoint",
];

fn values<'a>(r: &'a Resource<'a>, code: &str) -> Vec<IndexValue<'a>> {
    let p = search_param(r.resource_type, code).unwrap_or_else(|| panic!("{code}"));
    extract(r, p).unwrap()
}

fn strings<'a>(vs: &[IndexValue<'a>]) -> Vec<&'a str> {
    vs.iter()
        .map(|v| match v {
            IndexValue::String(s) | IndexValue::Uri(s) => *s,
            IndexValue::Token { code, .. } => code,
            IndexValue::Reference { reference, .. } => reference,
            other => panic!("{other:?}"),
        })
        .collect()
}

/// `json[a][b]…` over arrays: every string at the path.
fn at<'j>(j: &'j J, path: &[&str]) -> Vec<&'j str> {
    let mut items = vec![j];
    for k in path {
        items = items
            .into_iter()
            .filter_map(|i| i.get(*k))
            .flat_map(|v| match v {
                J::Array(a) => a.iter().collect(),
                v => vec![v],
            })
            .collect();
    }
    items.into_iter().filter_map(J::as_str).collect()
}

#[test]
fn radiology_examples_index() {
    let files = common::example_files();
    let (mut resources, mut params, mut vals) = (0, 0, 0);
    for f in &files {
        let name = common::file_name(f);
        if !TYPES.iter().any(|t| name.starts_with(&format!("{t}-"))) {
            continue;
        }
        let bytes = std::fs::read(f).expect("read");
        let Ok(r) = from_json(&bytes) else { continue };
        let j: J = serde_json::from_slice(&bytes).expect("json");
        let (found, unsupported) = index(&r);
        assert!(unsupported.is_empty(), "{name}: {unsupported:?}");
        resources += 1;
        params += found.len();
        vals += found.iter().map(|(_, v)| v.len()).sum::<usize>();

        assert_eq!(strings(&values(&r, "_id")), at(&j, &["id"]), "{name}");
        assert_eq!(
            values(&r, "identifier").len(),
            j["identifier"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|i| i.get("value").is_some()).count()),
            "{name}"
        );
        if let Some(lu) = j["meta"]["lastUpdated"].as_str() {
            let IndexValue::Date(d) = &values(&r, "_lastUpdated")[0] else {
                panic!("{name}")
            };
            assert_eq!(d.low.as_deref(), Some(lu));
        }
        match r.resource_type {
            ResourceType::Patient | ResourceType::Practitioner => {
                assert_eq!(
                    strings(&values(&r, "family")),
                    at(&j, &["name", "family"]),
                    "{name}"
                );
                assert_eq!(strings(&values(&r, "given")), at(&j, &["name", "given"]));
                let emails: Vec<&str> = j["telecom"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| t["system"] == "email")
                    .filter_map(|t| t["value"].as_str())
                    .collect();
                assert_eq!(strings(&values(&r, "email")), emails, "{name}");
                assert_eq!(strings(&values(&r, "gender")), at(&j, &["gender"]));
            }
            ResourceType::ImagingStudy => {
                assert_eq!(strings(&values(&r, "series")), at(&j, &["series", "uid"]));
                assert_eq!(
                    strings(&values(&r, "instance")),
                    at(&j, &["series", "instance", "uid"])
                );
                assert_eq!(
                    strings(&values(&r, "modality")),
                    at(&j, &["series", "modality", "code"])
                );
            }
            _ => {}
        }
        // `patient` = the `subject` references that point to a Patient
        if search_param(r.resource_type, "patient").is_some()
            && let Some(s) = j["subject"]["reference"].as_str()
        {
            let expected: Vec<&str> = if s.starts_with("Patient/") || s.contains("/Patient/") {
                vec![s]
            } else {
                vec![]
            };
            assert_eq!(strings(&values(&r, "patient")), expected, "{name}");
        }
    }
    if files.is_empty() {
        return;
    }
    println!("{resources} resources, {params} parameters with {vals} values");
    assert!(resources >= 100 && params > 500);
}

#[test]
fn dates_references_and_booleans() {
    let r = from_json(br##"{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
        "subject":{"reference":"http://x/fhir/Patient/p1/_history/3"},
        "participant":[{"individual":{"reference":"#pr"}},{"individual":{"reference":"RelatedPerson/r1"}}],
        "contained":[{"resourceType":"Practitioner","id":"pr"}],
        "period":{"start":"2020-02","end":"2020-03-04T10:00:00+01:00"},"length":{"value":90.0,"unit":"min","system":"http://unitsofmeasure.org","code":"min"}}"##).unwrap();
    assert_eq!(
        values(&r, "class"),
        [IndexValue::Token {
            system: Some("http://terminology.hl7.org/CodeSystem/v3-ActCode"),
            code: "AMB"
        }]
    );
    assert_eq!(
        values(&r, "patient"),
        [IndexValue::Reference {
            reference: "http://x/fhir/Patient/p1/_history/3",
            target: Some("Patient"),
            id: Some("p1")
        }]
    );
    // `where(resolve() is Practitioner)` follows the contained reference
    assert_eq!(strings(&values(&r, "practitioner")), ["#pr"]);
    assert_eq!(
        strings(&values(&r, "participant")),
        ["#pr", "RelatedPerson/r1"]
    );
    let IndexValue::Date(d) = &values(&r, "date")[0] else {
        panic!()
    };
    assert_eq!(d.low.as_deref(), Some("2020-02-01T00:00:00"));
    assert_eq!(d.high.as_deref(), Some("2020-03-04T10:00:00+01:00"));
    assert_eq!(d.precision, DatePrecision::Time);
    assert!(matches!(
        values(&r, "length")[..],
        [IndexValue::Quantity {
            value: "90.0",
            code: Some("min"),
            ..
        }]
    ));

    let p = from_json(br#"{"resourceType":"Patient","deceasedDateTime":"2015-02-14T13:42:00+10:00","active":true}"#).unwrap();
    assert_eq!(strings(&values(&p, "deceased")), ["true"]);
    assert_eq!(strings(&values(&p, "active")), ["true"]);
    assert_eq!(values(&p, "death-date").len(), 1);
    let p = from_json(br#"{"resourceType":"Patient","deceasedBoolean":false}"#).unwrap();
    assert_eq!(strings(&values(&p, "deceased")), ["false"]);
    assert!(values(&p, "death-date").is_empty());
    let p = from_json(br#"{"resourceType":"Patient"}"#).unwrap();
    assert_eq!(strings(&values(&p, "deceased")), ["false"]);
}

#[test]
fn every_example_indexes_without_unsupported_expressions() {
    let files = common::example_files();
    let (mut resources, mut vals) = (0, 0);
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        let Ok(r) = from_json(&bytes) else { continue };
        let (found, unsupported) = index(&r);
        assert!(
            unsupported.is_empty(),
            "{}: {unsupported:?}",
            common::file_name(f)
        );
        resources += 1;
        for (p, v) in &found {
            vals += v.len();
            *by_kind.entry(format!("{:?}", p.kind)).or_default() += v.len();
        }
    }
    if files.is_empty() {
        return;
    }
    println!("{resources} resources, {vals} index values: {by_kind:?}");
    assert_eq!(resources, 5291);
    // every parameter type with a value extraction occurs in the examples
    for k in [
        "Token",
        "String",
        "Date",
        "Reference",
        "Quantity",
        "Number",
        "Uri",
    ] {
        assert!(by_kind.get(k).is_some_and(|&n| n > 0), "{k}: {by_kind:?}");
    }
}
