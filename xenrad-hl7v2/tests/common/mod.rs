//! Helpers shared by the integration tests: the shared read-only corpus (`../shared` beside
//! the workspace) and the real peers installed by `scripts/peers.sh`. Each test binary uses
//! a subset.
#![allow(dead_code)]

use std::path::PathBuf;
use xenrad_hl7v2::{Message, ParseOptions, batch};

/// A path under the shared data directory; `None` (printing why) when it is missing outside
/// CI, a panic in CI, where it is required.
pub fn shared(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/")).join(path);
    if p.exists() {
        Some(p)
    } else if std::env::var_os("CI").is_some() {
        panic!("{} missing (required in CI)", p.display());
    } else {
        println!("skipped: {} not found", p.display());
        None
    }
}

/// The shared HL7 v2 sample corpus (a directory with `MANIFEST.tsv`).
pub fn corpus_dir() -> Option<PathBuf> {
    shared("corpus/hl7v2/MANIFEST.tsv").and_then(|m| m.parent().map(PathBuf::from))
}

/// Calls `f(path, message bytes, parsed message)` for every message of every manifest row
/// that `row` accepts (given the row's tab-separated columns) and that splits and parses.
pub fn for_each_corpus_message(
    dir: &std::path::Path,
    row: impl Fn(&[&str]) -> bool,
    mut f: impl FnMut(&str, &[u8], &Message<'_>),
) {
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if !row(&cols) {
            continue;
        }
        let data = std::fs::read(dir.join(cols[0])).unwrap();
        let Ok(b) = batch::split(&data, &ParseOptions::default()) else {
            continue;
        };
        for m in b.messages() {
            if let Ok(msg) = Message::parse(m) {
                f(cols[0], m, &msg);
            }
        }
    }
}

/// The peers' Python (with python-hl7 and hl7apy), or `None` with a printed reason when
/// `XENRAD_PEERS` is unset.
pub fn peer_python() -> Option<String> {
    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!("skipped: XENRAD_PEERS unset (run `eval \"$(scripts/peers.sh)\"` first)");
        return None;
    }
    Some(std::env::var("XENRAD_PYTHON").expect("XENRAD_PYTHON must be set with XENRAD_PEERS"))
}
