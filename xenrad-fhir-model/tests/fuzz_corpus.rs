//! Replays every seed of `fuzz/corpus/fhir_json/` through the fuzz entry point, and checks what
//! the seeds are meant to exercise.
#![cfg(feature = "fuzzing")]

use std::path::PathBuf;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/fhir_json"
    ));
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .expect("fuzz/corpus/fhir_json exists")
        .map(|e| {
            let p = e.expect("entry").path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).expect("read"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn replay_corpus() {
    let files = corpus();
    assert!(files.len() >= 10, "seed corpus too small");
    for (name, data) in &files {
        println!("{name}");
        xenrad_fhir_model::fuzzing::json(data);
    }
}

#[test]
fn seeds_behave_as_intended() {
    for (name, data) in corpus() {
        let r = xenrad_fhir_model::from_json(&data);
        match name.as_str() {
            "dup.json" => assert_eq!(r.unwrap_err().pointer, "/gender"),
            "truncated.json" => assert!(r.is_err()),
            n if n.starts_with("crash-") => {} // fixed crashes: replay_corpus checks them
            "escapes_unknown.json" => assert_eq!(r.unwrap_err().pointer, "/unknown"),
            // An empty `_x` object is no element: with no value either, the primitive is empty.
            "empty_element_alone" => assert_eq!(r.unwrap_err().pointer, "/birthDate"),
            _ => assert!(r.is_ok(), "{name}: {r:?}"),
        }
    }
}
