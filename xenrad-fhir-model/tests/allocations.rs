//! Heap allocations per resource (counting allocator: allocations + reallocations) of the borrowed
//! reader, against `serde_json::Value` on the same files. One test per binary so no other test
//! thread allocates while a region is measured.
#![allow(clippy::cast_precision_loss)]

mod common;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const RADIOLOGY: &[&str] = &[
    "Patient",
    "ImagingStudy",
    "ServiceRequest",
    "Procedure",
    "DiagnosticReport",
    "Endpoint",
    "Practitioner",
    "Organization",
    "Encounter",
];

fn count<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let reg = Region::new(GLOBAL);
    let v = f();
    let s = reg.change();
    (s.allocations + s.reallocations, v)
}

#[test]
fn borrowed_reader_allocates_less_than_serde_json_value() {
    let files = common::example_files();
    if files.is_empty() {
        return;
    }
    let (mut ours_all, mut serde_all, mut n_all) = (0usize, 0usize, 0usize);
    let (mut ours_rad, mut serde_rad, mut n_rad) = (0usize, 0usize, 0usize);
    let mut worse = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let (ours, r) = count(|| xenrad_fhir_model::from_json(&data).map(|r| r.resource_type));
        let Ok(rt) = r else { continue };
        let (theirs, v) = count(|| serde_json::from_slice::<serde_json::Value>(&data).map(|_| ()));
        v.unwrap();
        ours_all += ours;
        serde_all += theirs;
        n_all += 1;
        if RADIOLOGY.contains(&rt.as_str()) {
            ours_rad += ours;
            serde_rad += theirs;
            n_rad += 1;
        }
        if ours > theirs {
            worse.push((
                f.file_name().unwrap().to_string_lossy().into_owned(),
                ours,
                theirs,
            ));
        }
    }
    println!(
        "all {n_all} resources: {:.1} allocations/resource (serde_json::Value {:.1}, ratio {:.2})",
        ours_all as f64 / n_all as f64,
        serde_all as f64 / n_all as f64,
        serde_all as f64 / ours_all as f64
    );
    println!(
        "radiology {n_rad} resources: {:.1} allocations/resource (serde_json::Value {:.1}, ratio {:.2})",
        ours_rad as f64 / n_rad as f64,
        serde_rad as f64 / n_rad as f64,
        serde_rad as f64 / ours_rad as f64
    );
    println!("files where we allocate more: {worse:?}");
    assert_eq!(n_all, 5291);
    assert!(
        worse.is_empty(),
        "more allocations than serde_json::Value: {worse:?}"
    );
    assert!(
        ours_all * 2 < serde_all,
        "expected at most half of serde_json::Value's allocations"
    );
}
