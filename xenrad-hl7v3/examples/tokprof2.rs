#![allow(missing_docs)]
use xenrad_hl7v3::xml::{Document, Limits, Tokenizer};
fn main() {
    let f = std::env::args().nth(1).unwrap();
    let t = if std::env::args().nth(2).as_deref() == Some("qx") { Tokenizer::QuickXml } else { Tokenizer::Handwritten };
    let b = std::fs::read(f).unwrap();
    let l = Limits::default();
    let mut n = 0;
    for _ in 0..2000 { n += std::hint::black_box(Document::parse_using(&b, &l, t).unwrap().node_count()); }
    println!("{n}");
}
