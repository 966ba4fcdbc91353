//! Replays every seed of `fuzz/corpus/hl7v3_strict/` through the fuzz entry point, and checks
//! that the strict pass accepts exactly the seeds not named `bad_*`.
#![cfg(feature = "fuzzing")]

use std::path::Path;

#[test]
fn replay_fuzz_corpus() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/hl7v3_strict"
    ));
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        xenrad_hl7v3::fuzzing::strict(&bytes);
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let verdict = xenrad_hl7v3::strict(&bytes);
        if name.starts_with("bad_") || name == "deep.xml" {
            let e = verdict.expect_err(&name);
            assert!(e.line >= 1 && e.column >= 1);
        } else if !name.starts_with("crash-") {
            assert!(verdict.is_ok(), "{name}: {:?}", verdict.err());
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} seeds");
}
