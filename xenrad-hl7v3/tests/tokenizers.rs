//! The two tokenizers (quick-xml's `Reader` and the hand-written one) give the same documents,
//! the same verdicts and the same error kinds: on the whole corpus, on the rule samples, and on
//! deterministic random mutations of corpus files.

mod common;

use std::mem::discriminant;

use xenrad_hl7v3::xml::{Document, Element, Limits, Node, Tokenizer};
use xenrad_hl7v3::{header_using, strict};

fn parse(bytes: &[u8], t: Tokenizer) -> Result<Document<'_>, xenrad_hl7v3::V3Error> {
    Document::parse_using(bytes, &Limits::default(), t)
}

/// Every element and text run, with names, namespaces and attributes, in document order.
fn dump(e: Element<'_, '_>, out: &mut Vec<String>) {
    out.push(format!(
        "<{} {{{}}} @{}",
        e.qname(),
        e.namespace(),
        e.offset()
    ));
    for a in e.attributes() {
        out.push(format!(
            "  {}={{{}}}{:?}",
            a.qname(),
            a.namespace(),
            a.value()
        ));
    }
    for n in e.nodes() {
        match n {
            Node::Element(c) => dump(c, out),
            Node::Text(t) => out.push(format!("  text {:?}", t.value())),
        }
    }
}

/// Same documents, same verdicts; with `kinds`, also the same error kind (with several errors in
/// one input the tokenizers may meet a different one first, so mutations compare verdicts only).
fn agree(bytes: &[u8], what: &str, kinds: bool) {
    let q = parse(bytes, Tokenizer::QuickXml);
    let h = parse(bytes, Tokenizer::Handwritten);
    match (&q, &h) {
        (Ok(q), Ok(h)) => {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            dump(q.root(), &mut a);
            dump(h.root(), &mut b);
            assert_eq!(a, b, "{what}: documents differ");
        }
        (Err(q), Err(h)) => assert!(
            !kinds || discriminant(&q.kind) == discriminant(&h.kind),
            "{what}: quick-xml {q} / hand-written {h}"
        ),
        _ => panic!(
            "{what}: verdicts differ: quick-xml {:?} / hand-written {:?}",
            q.as_ref().err(),
            h.as_ref().err()
        ),
    }
    let hq = header_using(bytes, Tokenizer::QuickXml);
    let hh = header_using(bytes, Tokenizer::Handwritten);
    if let (Ok(a), Ok(b)) = (&hq, &hh) {
        assert_eq!(a, b, "{what}: header pass differs");
    }
    if q.is_ok() {
        assert!(hq.is_ok() && hh.is_ok(), "{what}: header pass failed");
    }
}

#[test]
fn same_documents_on_the_corpus() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let (good, bad) = common::corpus_files(&dir);
    for p in good.iter().chain(&bad) {
        agree(&std::fs::read(p).unwrap(), &p.display().to_string(), true);
    }
}

#[test]
fn same_verdicts_on_rule_samples() {
    for s in [
        "<r a='1' a='2'/>",
        "<r xmlns:p='u' xmlns:q='u' p:a='1' q:a='2'/>",
        "<r xmlns:p='u' xmlns:p='v'/>",
        "<r a='<'/>",
        "<r a=1/>",
        "<r a='1/>",
        "<r a='1'b='2'/>",
        "<r a/>",
        "<r =''/>",
        "<r xmlns:p=''/>",
        "",
        "  ",
        "<r>",
        "<r></s>",
        "<r></r >",
        "<r></r x='1'>",
        "<r></ r>",
        "<r></r\u{1}>",
        "<r></r\n\t>",
        "<p:r xmlns:p='u'></p:r >",
        "<p:r xmlns:p='u'></r>",
        "</r>",
        "<r/><r/>",
        "text<r/>",
        "<r/>tail",
        "<r><!-- a -- b --></r>",
        "<r><!-- a ---></r>",
        "<r>]]></r>",
        "<r>a & b</r>",
        "<r>&nbsp;</r>",
        "<r>&#0;</r>",
        "<r>&#x41;&amp;&lt;x</r>",
        "<r><![CDATA[x</r>",
        "<r><![CDATA[<&]]></r>",
        "<r><!ELEMENT></r>",
        "<!DOCTYPE r><r/>",
        "<!DOCTYPE r [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><r>&x;</r>",
        "<?xml version='1.0'?><r/>",
        "<?xml?><r/>",
        "<?xml version='1.0' encoding='ISO-8859-1'?><r/>",
        "<?xml version='1.0' standalone='maybe'?><r/>",
        " <?xml version='1.0'?><r/>",
        "<r/><?xml version='1.0'?>",
        "<r><?XML x?></r>",
        "<r><?pi x?><?pi?></r>",
        "<r><? x?></r>",
        "< r/>",
        "<1r/>",
        "<r:/>",
        "<:r/>",
        "<a:b:c xmlns:a='u'/>",
        "<a:r/>",
        "<r b:x='1'/>",
        "<r xmlns:xmlns='u'/>",
        "<r xmlns:xml='u'/>",
        "<r xml:lang='en'/>",
        "<r><x xmlns:p='u'/><p:y/></r>",
        "<r>\u{1}</r>",
        "<r a='\u{1}'/>",
        "<r a='\t\n\r'/>",
        "<r><!-- \u{2} --></r>",
        "<r><![CDATA[\u{3}]]></r>",
        "<r><?pi \u{4}?></r>",
        "<r>\u{B}<x/></r>",
        "<r>0123456789012345678901234567890123456789012345678901234567890123456789\u{1F}</r>",
        "<r a='0123456789012345678901234567890123456789012345678901234567890123456789\u{1F}'/>",
        "<r a='0123456789012345678901234567890123456789012345678901234567890123456789\t'/>",
        "<r>\u{0}</r>",
        "\u{FEFF}<?xml version='1.0'?><r/>",
        "\u{FEFF}\u{FEFF}<r/>",
        "\u{FEFF}\u{FEFF}\u{FEFF}<?xml version='1.0'?><r><x/></r>",
        "<r/ >",
        "<r x='1'/ >",
        "<r\n  x = '1'\n/>",
        "<r>\r\n</r>",
    ] {
        agree(s.as_bytes(), &format!("{s:?}"), true);
    }
}

/// Small deterministic generator (xorshift) so the test needs no extra dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn same_verdicts_on_mutations() {
    let mut seeds: Vec<Vec<u8>> = xenrad_hl7v3::testgen::corpus(7, 4)
        .into_iter()
        .map(String::into_bytes)
        .collect();
    if let Some(dir) = common::corpus_dir() {
        let (good, _) = common::corpus_files(&dir.join("ihe-iti-examples"));
        seeds.extend(good.iter().take(12).map(|p| std::fs::read(p).unwrap()));
    }
    let alphabet: &[&[u8]] = &[
        b"<",
        b">",
        b"/",
        b"'",
        b"\"",
        b"=",
        b"&",
        b";",
        b":",
        b" ",
        b"!",
        b"?",
        b"-",
        b"]]>",
        b"&amp;",
        b"&#",
        b"xmlns:",
        b"<!--",
        b"<![CDATA[",
        b"\r",
        b"x",
        b"\xC3\xA9",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for round in 0..3000 {
        let mut m = seeds[round % seeds.len()].clone();
        for _ in 0..=rng.below(3) {
            let at = rng.below(m.len() + 1);
            match rng.below(3) {
                0 if at < m.len() => {
                    let n = 1 + rng.below(4).min(m.len() - at - 1);
                    m.drain(at..at + n);
                }
                1 => {
                    let piece = alphabet[rng.below(alphabet.len())];
                    m.splice(at..at, piece.iter().copied());
                }
                _ if at < m.len() => m[at] = alphabet[rng.below(alphabet.len())][0],
                _ => {}
            }
        }
        agree(
            &m,
            &format!("mutation {round}: {}", String::from_utf8_lossy(&m)),
            false,
        );
        accepted += usize::from(strict(&m).is_ok());
    }
    println!("{accepted} of 3000 mutations still accepted by both tokenizers");
}
