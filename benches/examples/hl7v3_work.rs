//! Load-independent companion of `benches/hl7v3.rs`: runs one pass over one corpus a fixed
//! number of times, so `perf stat -e instructions:u` (see `hl7v3/instructions.sh`) counts the
//! work of that pass alone. The shared 2-core machine is too noisy for small wall-clock ratios.
//!
//! `hl7v3_work <public|generated> <header|strict|typed|roxmltree> <hw|qx|none> <rounds>`
#![allow(missing_docs)]
use std::hint::black_box;

use xenrad_hl7v3::Tokenizer;
use xenrad_hl7v3::xml::{Document, Limits};

fn public_corpus() -> Vec<Vec<u8>> {
    xenrad_benches::load_hl7v3_corpus()
}

fn typed(bytes: &[u8], t: Tokenizer) -> usize {
    xenrad_benches::hl7v3_strict_typed(bytes, t)
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
