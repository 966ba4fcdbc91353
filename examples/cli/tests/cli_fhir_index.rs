//! `xenrad fhir index FILE|-`: the search index values of a resource, from the generated
//! SearchParameters' FHIRPath expressions.

use std::io::Write;
use std::process::{Command, Stdio};

fn run(input: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xenrad"))
        .args(["fhir", "index", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run xenrad");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf-8"),
    )
}

#[test]
fn prints_index_values() {
    let (ok, out) = run(
        r#"{"resourceType":"ImagingStudy","id":"s1","status":"available","subject":{"reference":"Patient/p1"},
            "series":[{"uid":"1.2.3","modality":{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"CT"}}]}"#,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(r#"series (Token) = Token { system: None, code: "1.2.3" }"#),
        "{out}"
    );
    assert!(out.contains(r#"patient (Reference) = Reference { reference: "Patient/p1", target: Some("Patient"), id: Some("p1") }"#), "{out}");
    assert!(out.contains(r#"modality (Token) = Token { system: Some("http://dicom.nema.org/resources/ontology/DCM"), code: "CT" }"#), "{out}");
}

#[test]
fn unreadable_input_prints_the_outcome() {
    let (ok, out) = run(r#"{"resourceType":"ImagingStudy","bogus":1}"#);
    assert!(!ok);
    assert!(
        out.contains("OperationOutcome") && out.contains("bogus"),
        "{out}"
    );
}
