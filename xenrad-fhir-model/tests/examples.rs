//! Conformance over the 5,306 official R4 examples: every one parses except the 15 known-invalid
//! ones (each pinned to its problem), and every valid one writes back to semantically identical
//! JSON (same members, same values, same decimal text).

mod common;

use xenrad_fhir_model::{ErrorKind, from_json, json, to_json};

/// The known-invalid examples: file, JSON pointer of the problem, and the expected error kind.
const KNOWN_INVALID: &[(&str, &str, &str)] = &[
    // mis-encoded no-break space (C3 82 C2 A0) at the end of a code
    (
        "Bundle-v2-valuesets.json",
        "/entry/814/resource/concept/74/code",
        "invalid value: code with leading/trailing whitespace or empty",
    ),
    (
        "CodeSystem-v2-0550.json",
        "/concept/74/code",
        "invalid value: code with leading/trailing whitespace or empty",
    ),
    // ImplementationGuides without name/status
    (
        "ImplementationGuide-fhir.json",
        "/name",
        "cardinality 0 outside 1..1",
    ),
    // Questionnaire qs1 without linkId
    (
        "Questionnaire-qs1.json",
        "/item/0/item/0/linkId",
        "cardinality 0 outside 1..1",
    ),
    // SearchParameters without base
    (
        "SearchParameter-codesystem-extensions-CodeSystem-author.json",
        "/base",
        "cardinality 0 outside 1..*",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-effective.json",
        "/base",
        "cardinality 0 outside 1..*",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-end.json",
        "/base",
        "cardinality 0 outside 1..*",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-keyword.json",
        "/base",
        "cardinality 0 outside 1..*",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-workflow.json",
        "/base",
        "cardinality 0 outside 1..*",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-author.json",
        "/base",
        "cardinality 0 outside 1..*",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-effective.json",
        "/base",
        "cardinality 0 outside 1..*",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-end.json",
        "/base",
        "cardinality 0 outside 1..*",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-keyword.json",
        "/base",
        "cardinality 0 outside 1..*",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-workflow.json",
        "/base",
        "cardinality 0 outside 1..*",
    ),
    // (sorted by file name: lower case last)
    ("ig-r4.json", "/name", "cardinality 0 outside 1..1"),
];

#[test]
fn official_examples() {
    let files = common::example_files();
    if files.is_empty() {
        return;
    }
    let mut failed = Vec::new();
    let mut roundtrip_bad = Vec::new();
    let mut ok = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(f).expect("read");
        match from_json(&bytes) {
            Ok(r) => {
                ok += 1;
                let out = to_json(&r);
                let a = json::parse(&bytes, 1000).expect("input is JSON");
                let b = json::parse(out.as_bytes(), 1000).expect("output is JSON");
                if !a.same_as(&b) {
                    roundtrip_bad.push(name);
                }
            }
            Err(e) => failed.push((name, e)),
        }
    }
    for (n, e) in &failed {
        println!("FAIL {n}: {e}");
    }
    for n in &roundtrip_bad {
        println!("ROUNDTRIP {n}");
    }
    println!(
        "{} files, {ok} ok, {} failed, {} round-trip differences",
        files.len(),
        failed.len(),
        roundtrip_bad.len()
    );
    assert_eq!(files.len(), 5306, "the package has 5,306 examples");
    assert!(
        roundtrip_bad.is_empty(),
        "round-trip differences: {roundtrip_bad:?}"
    );
    let got: Vec<(String, String, String)> = failed
        .iter()
        .map(|(n, e)| (n.clone(), e.pointer.clone(), e.kind.to_string()))
        .collect();
    let want: Vec<(String, String, String)> = KNOWN_INVALID
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(got, want);
    assert!(failed.iter().all(|(_, e)| matches!(
        e.kind,
        ErrorKind::Cardinality { .. } | ErrorKind::InvalidPrimitive(_)
    )));
    assert_eq!(ok, 5291);
}
