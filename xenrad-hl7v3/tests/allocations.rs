//! Heap allocations per message (counting allocator; allocations + reallocations): strict pass + header + typed patient extraction.
#![allow(clippy::cast_precision_loss)]
//! One test per binary so no other test thread allocates while a region is measured.

mod common;

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xenrad_hl7v3::Tokenizer;
use xenrad_hl7v3::types::AddrPartKind;
use xenrad_hl7v3::xml::{Document, Limits};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Strict pass plus the typed extraction the gateway does; returns a checksum so nothing is optimised out.
fn extract(bytes: &[u8], t: Tokenizer) -> usize {
    let doc = Document::parse_using(bytes, &Limits::default(), t).unwrap();
    let m = xenrad_hl7v3::Message::from_document(doc).unwrap();
    let h = m.header();
    let mut n = h.interaction.len()
        + h.message_id
            .as_ref()
            .map_or(0, |i| i.root.as_deref().map_or(0, str::len));
    n += h
        .sender
        .as_ref()
        .map_or(0, |i| i.root.as_deref().map_or(0, str::len));
    for p in m.patients() {
        n += p
            .ids()
            .map(|i| i.extension.map_or(0, |e| e.len()))
            .sum::<usize>();
        for name in p.names() {
            n += name.given().map(|g| g.len()).sum::<usize>()
                + name.family().map(|f| f.len()).sum::<usize>();
        }
        n += p.gender().and_then(|g| g.code()).map_or(0, |c| c.len());
        n += p.birth_time().and_then(|t| t.date()).map_or(0, |_| 1);
        n += p
            .addresses()
            .filter_map(|a| a.get(AddrPartKind::City))
            .map(|c| c.len())
            .sum::<usize>();
        n += p.other_ids().count();
    }
    n
}

#[test]
fn at_most_16_allocations_per_message() {
    let generated = xenrad_hl7v3::testgen::corpus(42, 200);
    let mut files: Vec<(String, Vec<u8>)> = generated
        .into_iter()
        .enumerate()
        .map(|(i, s)| (format!("gen#{i}"), s.into_bytes()))
        .collect();
    if let Some(dir) = common::corpus_dir() {
        let (good, _) = common::corpus_files(&dir.join("ihe-iti-examples"));
        files.extend(
            good.into_iter()
                .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap())),
        );
    }
    // The default tokenizer is bounded; the quick-xml one is reported for the comparison.
    for t in [Tokenizer::default(), Tokenizer::QuickXml] {
        let mut worst = (0usize, String::new());
        let mut total = 0usize;
        for (name, bytes) in &files {
            let region = Region::new(GLOBAL);
            let n = extract(bytes, t);
            let stats = region.change();
            assert!(n > 0);
            let count = stats.allocations + stats.reallocations;
            total += count;
            if count > worst.0 {
                worst = (count, name.clone());
            }
        }
        println!(
            "allocations ({t:?}): worst {} ({}), mean {:.1} over {} messages",
            worst.0,
            worst.1,
            total as f64 / files.len() as f64,
            files.len()
        );
        if t == Tokenizer::default() {
            assert!(worst.0 <= 16, "{} allocations for {}", worst.0, worst.1);
        }
    }
}
