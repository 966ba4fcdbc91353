//! xenrad-hl7v3 benches: header pass, strict pass, strict + typed extraction — each on both
//! tokenizers (`hw` = hand-written, `qx` = quick-xml's `Reader`) — and roxmltree parsing the same
//! bytes in the same run, on the public corpus (`../shared/corpus/hl7v3`, 287 well-formed files)
//! and on a deterministic generated PRPA_IN201301UV02 corpus (2,000 messages).
//!
//! `cargo bench -p xenrad-benches --bench hl7v3 -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xenrad_hl7v3::Tokenizer;
use xenrad_hl7v3::types::AddrPartKind;
use xenrad_hl7v3::xml::{Document, Limits};

fn public_corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/hl7v3"
    ));
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "malformed") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "xml") {
                out.push(std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Strict pass + the typed extraction the gateway does (header, patient ids, names, gender,
/// birth time, city).
fn strict_typed(bytes: &[u8], t: Tokenizer) -> usize {
    let doc = Document::parse_using(bytes, &Limits::default(), t).unwrap();
    let m = xenrad_hl7v3::Message::from_document(doc).unwrap();
    let h = m.header();
    let mut n =
        h.interaction.len() + usize::from(h.message_id.is_some()) + usize::from(h.sender.is_some());
    for p in m.patients() {
        n += p.ids().filter(|i| i.extension.is_some()).count();
        for name in p.names() {
            n += name.given().map(|g| g.len()).sum::<usize>()
                + name.family().map(|f| f.len()).sum::<usize>();
        }
        n += p.gender().and_then(|g| g.code()).map_or(0, |c| c.len());
        n += p.birth_time().and_then(|t| t.date()).map_or(0, |_| 1);
        n += p
            .addresses()
            .filter_map(|a| a.get(AddrPartKind::City))
            .count();
    }
    n
}

fn run(c: &mut Criterion, name: &str, corpus: &[Vec<u8>]) {
    if corpus.is_empty() {
        println!("skipped {name}: corpus not found");
        return;
    }
    let bytes: u64 = corpus.iter().map(|m| m.len() as u64).sum();
    let mut g = c.benchmark_group(format!("hl7v3/{name}"));
    g.throughput(Throughput::Bytes(bytes));
    let limits = Limits::default();
    for (tag, t) in [("hw", Tokenizer::Handwritten), ("qx", Tokenizer::QuickXml)] {
        g.bench_function(format!("header_pass_{tag}"), |b| {
            b.iter(|| {
                corpus
                    .iter()
                    .map(|m| {
                        xenrad_hl7v3::header_using(black_box(m), t)
                            .unwrap()
                            .interaction
                            .len()
                    })
                    .sum::<usize>()
            });
        });
        g.bench_function(format!("strict_pass_{tag}"), |b| {
            b.iter(|| {
                corpus
                    .iter()
                    .map(|m| {
                        Document::parse_using(black_box(m), &limits, t)
                            .unwrap()
                            .node_count()
                    })
                    .sum::<usize>()
            });
        });
        g.bench_function(format!("strict_typed_{tag}"), |b| {
            b.iter(|| {
                corpus
                    .iter()
                    .map(|m| strict_typed(black_box(m), t))
                    .sum::<usize>()
            });
        });
    }
    g.bench_function("roxmltree", |b| {
        b.iter(|| {
            corpus
                .iter()
                .map(|m| {
                    let s = std::str::from_utf8(black_box(m)).unwrap();
                    roxmltree::Document::parse(s).unwrap().descendants().count()
                })
                .sum::<usize>()
        });
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    let public = public_corpus();
    run(c, "public", &public);
    let generated: Vec<Vec<u8>> = xenrad_hl7v3::testgen::corpus(42, 2000)
        .into_iter()
        .map(String::into_bytes)
        .collect();
    run(c, "generated", &generated);
}

criterion_group!(benches, bench);
criterion_main!(benches);
