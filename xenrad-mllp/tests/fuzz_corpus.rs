//! Replays every committed seed of `fuzz/corpus/mllp_decode/` through the fuzz entry point.
#![cfg(feature = "fuzzing")]

use std::path::Path;

#[test]
fn replay_mllp_decode_corpus() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/mllp_decode"
    ));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("fuzz/corpus/mllp_decode exists") {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            xenrad_mllp::fuzzing::decode(&data);
            n += 1;
        }
    }
    assert!(
        n >= 5,
        "expected seed files in {}, found {n}",
        dir.display()
    );
}
