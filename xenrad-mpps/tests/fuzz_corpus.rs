//! Replays every committed seed of `fuzz/corpus/mpps_json/` through the fuzz entry point.
#![cfg(feature = "fuzzing")]

use std::path::Path;

#[test]
fn replay_mpps_json_corpus() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fuzz/corpus/mpps_json"
    ));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("fuzz/corpus/mpps_json exists") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        xenrad_mpps::fuzzing::json(&data);
        // Every prefix too: truncated inputs are the common real-world damage.
        for cut in (0..data.len()).step_by(7) {
            xenrad_mpps::fuzzing::json(&data[..cut]);
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} corpus files");
}
