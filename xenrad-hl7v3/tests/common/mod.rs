//! Shared helpers for integration tests: locating the shared corpus.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `../shared/corpus/hl7v3`, or `None` (with a printed reason) when absent outside CI.
pub fn corpus_dir() -> Option<PathBuf> {
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/hl7v3"
    ));
    if p.is_dir() {
        return Some(p.to_path_buf());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "shared corpus missing at {} (required in CI)",
        p.display()
    );
    println!("skipped: shared corpus not found at {}", p.display());
    None
}

/// Every `.xml` file under `dir`, sorted, split into (well-formed, malformed).
pub fn corpus_files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "xml") {
                all.push(p);
            }
        }
    }
    all.sort();
    all.into_iter()
        .partition(|p| !p.components().any(|c| c.as_os_str() == "malformed"))
}
