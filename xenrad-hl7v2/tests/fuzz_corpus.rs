//! Replays every committed fuzz seed and crash input through the same `fuzzing::` functions
//! the fuzz targets call.
#![cfg(feature = "fuzzing")]

use std::path::PathBuf;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus")).join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            f(&std::fs::read(&path).unwrap());
            n += 1;
        }
    }
    assert!(n > 0, "no corpus files in {}", dir.display());
}

#[test]
fn hl7v2_parse_corpus() {
    replay("hl7v2_parse", xenrad_hl7v2::fuzzing::parse);
}

#[test]
fn hl7v2_escape_corpus() {
    replay("hl7v2_escape", xenrad_hl7v2::fuzzing::escape);
}

#[test]
fn hl7v2_validate_corpus() {
    replay("hl7v2_validate", xenrad_hl7v2::fuzzing::validate);
}
