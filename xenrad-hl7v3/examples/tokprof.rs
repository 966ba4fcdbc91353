#![allow(missing_docs)]
use std::time::Instant;
use xenrad_hl7v3::xml::{Document, Limits, Tokenizer};
fn main() {
    let dir = std::path::Path::new("../../shared/corpus/hl7v3");
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { if !p.ends_with("malformed") { stack.push(p); } }
            else if p.extension().is_some_and(|x| x == "xml") { files.push(p); }
        }
    }
    let l = Limits::default();
    let mut rows = Vec::new();
    for p in &files {
        let b = std::fs::read(p).unwrap();
        let mut t = [0f64; 2];
        for (i, tk) in [Tokenizer::Handwritten, Tokenizer::QuickXml].into_iter().enumerate() {
            let s = Instant::now();
            for _ in 0..50 { std::hint::black_box(Document::parse_using(&b, &l, tk).unwrap().node_count()); }
            t[i] = s.elapsed().as_secs_f64() / 50.0;
        }
        rows.push((t[1] - t[0], t[0], t[1], b.len(), p.display().to_string()));
    }
    rows.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    let (a, b): (f64, f64) = rows.iter().fold((0.0, 0.0), |acc, r| (acc.0 + r.1, acc.1 + r.2));
    println!("total hw {a:.4}s qx {b:.4}s");
    for r in rows.iter().take(12) { println!("{:.1}us hw {:.1}us qx {:.1}us {}B {}", r.0*1e6, r.1*1e6, r.2*1e6, r.3, r.4); }
}
