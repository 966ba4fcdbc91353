//! Load-independent companion of `benches/hl7v3.rs`: runs one pass over one corpus a fixed
//! number of times, so `perf stat -e instructions:u` (see `hl7v3/instructions.sh`) counts the
//! work of that pass alone. The shared 2-core machine is too noisy for small wall-clock ratios.
//!
//! `hl7v3_work <public|generated> <header|strict|typed|roxmltree> <hw|qx|none> <rounds>`
#![allow(missing_docs)]
use std::hint::black_box;
use std::path::Path;

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
        for e in std::fs::read_dir(&d).expect("shared corpus") {
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

/// The same extraction as the criterion bench's `strict_typed`.
fn typed(bytes: &[u8], t: Tokenizer) -> usize {
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, corpus, pass, tok, rounds] = &args[..] else {
        eprintln!(
            "usage: hl7v3_work <public|generated> <header|strict|typed|roxmltree> <hw|qx|none> <rounds>"
        );
        std::process::exit(2);
    };
    let corpus: Vec<Vec<u8>> = match corpus.as_str() {
        "public" => public_corpus(),
        _ => xenrad_hl7v3::testgen::corpus(42, 2000)
            .into_iter()
            .map(String::into_bytes)
            .collect(),
    };
    let t = if tok == "qx" {
        Tokenizer::QuickXml
    } else {
        Tokenizer::Handwritten
    };
    let rounds: usize = rounds.parse().unwrap();
    let limits = Limits::default();
    let mut n = 0usize;
    for _ in 0..rounds {
        for m in &corpus {
            let m = black_box(m.as_slice());
            n += match pass.as_str() {
                "header" => xenrad_hl7v3::header_using(m, t).unwrap().interaction.len(),
                "strict" => Document::parse_using(m, &limits, t).unwrap().node_count(),
                "typed" => typed(m, t),
                "roxmltree" => {
                    let s = std::str::from_utf8(m).unwrap();
                    roxmltree::Document::parse(s).unwrap().descendants().count()
                }
                "none" => m.len(),
                other => panic!("unknown pass {other}"),
            };
        }
    }
    println!("{n}");
}
