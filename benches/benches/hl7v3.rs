//! xenrad-hl7v3 benches: header pass, strict pass, strict + typed extraction — each on both
//! tokenizers (`hw` = hand-written, `qx` = quick-xml's `Reader`) — and roxmltree parsing the same
//! bytes in the same run, on the public corpus (`../shared/corpus/hl7v3`, 287 well-formed files)
//! and on a deterministic generated PRPA_IN201301UV02 corpus (2,000 messages).
//!
//! `cargo bench -p xenrad-benches --bench hl7v3 -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xenrad_hl7v3::Tokenizer;
use xenrad_hl7v3::xml::{Document, Limits};

fn public_corpus() -> Vec<Vec<u8>> {
    xenrad_benches::load_hl7v3_corpus()
}

fn strict_typed(bytes: &[u8], t: Tokenizer) -> usize {
    xenrad_benches::hl7v3_strict_typed(bytes, t)
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
