//! The encoder is the exact inverse of the parser: on every corpus message and on generated
//! messages (proptest), parse → owned → encode gives the input bytes back.

mod common;

use common::{corpus_dir, for_each_corpus_message};
use proptest::prelude::*;
use xenrad_hl7v2::Message;
use xenrad_hl7v2::encode::owned::OwnedMessage;

/// The bytes the parser keeps: the message from its MSH through its last terminator,
/// without lenient-mode junk (blank lines, stray framing bytes) between segments.
fn canonical(msg: &Message<'_>) -> Vec<u8> {
    let input = msg.input();
    let mut out = Vec::new();
    for seg in msg.segments() {
        let end = seg.offset() + seg.raw().len();
        out.extend_from_slice(seg.raw());
        match (input.get(end), input.get(end + 1)) {
            (Some(b'\r'), Some(b'\n')) => out.extend_from_slice(b"\r\n"),
            (Some(&t @ (b'\r' | b'\n')), _) => out.push(t),
            _ => {}
        }
    }
    out
}

#[test]
fn corpus_messages_round_trip() {
    let Some(dir) = corpus_dir() else { return };
    let (mut exact, mut mixed) = (0, 0);
    for_each_corpus_message(
        &dir,
        |_| true,
        |path, m, msg| {
            let canon = canonical(msg);
            let owned = OwnedMessage::from(msg);
            // Byte-exact when every terminator but the last is the same.
            let terms: Vec<&[u8]> = msg
                .segments()
                .map(|s| {
                    let end = s.offset() + s.raw().len();
                    match (m.get(end), m.get(end + 1)) {
                        (Some(b'\r'), Some(b'\n')) => &b"\r\n"[..],
                        (Some(b'\r'), _) => b"\r",
                        (Some(b'\n'), _) => b"\n",
                        _ => b"",
                    }
                })
                .collect();
            let uniform =
                terms.len() < 3 || terms[..terms.len() - 1].windows(2).all(|w| w[0] == w[1]);
            let encoded = owned.encode();
            if uniform {
                assert_eq!(
                    String::from_utf8_lossy(&encoded),
                    String::from_utf8_lossy(&canon),
                    "{path}"
                );
                exact += 1;
            } else {
                // Mixed terminators: only the terminators may differ.
                let norm = |b: &[u8]| -> Vec<u8> {
                    String::from_utf8_lossy(b)
                        .replace("\r\n", "\r")
                        .replace('\n', "\r")
                        .into_bytes()
                };
                assert_eq!(norm(&encoded), norm(&canon), "{path}");
                mixed += 1;
                println!("mixed terminators: {path}");
            }
            // And the re-encoded bytes parse to the same owned model.
            assert_eq!(
                OwnedMessage::from(&Message::parse(&encoded).unwrap()),
                owned,
                "{path}"
            );
        },
    );
    println!("{exact} messages byte-exact, {mixed} equal up to mixed terminators");
    assert!(exact > 300);
}

fn text() -> impl Strategy<Value = String> {
    // Printable text including every delimiter, the escape char, CR/LF and non-ASCII.
    proptest::string::string_regex("[a-zA-Z0-9 |^~&\\\\#.\r\néü日]{0,12}").unwrap()
}

type Gen = Vec<(String, Vec<Vec<Vec<Vec<String>>>>)>;

fn message() -> impl Strategy<Value = Gen> {
    let sub = prop::collection::vec(text(), 1..3);
    let comp = prop::collection::vec(sub, 1..3);
    let rep = prop::collection::vec(comp, 1..3);
    let field = prop::collection::vec(rep, 0..6);
    let seg = ("(PID|OBX|OBR|ZDS|NTE)", field);
    prop::collection::vec(seg, 0..6)
}

proptest! {
    #[test]
    fn generated_messages_round_trip(segs in message(), custom in any::<bool>()) {
        let delims = if custom {
            xenrad_hl7v2::Delimiters::from_msh(b'#', b"*!@$").unwrap()
        } else {
            xenrad_hl7v2::Delimiters::STANDARD
        };
        let mut m = OwnedMessage::new(delims);
        m.set("MSH-9-1", "ORU").unwrap();
        m.set("MSH-9-2", "R01").unwrap();
        m.set("MSH-10", "1").unwrap();
        let mut occurrence = std::collections::HashMap::new();
        let mut expected = Vec::new();
        for (name, fields) in &segs {
            let n = occurrence.entry(name.clone()).or_insert(0usize);
            *n += 1;
            m.push_segment(name);
            for (fi, reps) in fields.iter().enumerate() {
                for (ri, comps) in reps.iter().enumerate() {
                    for (ci, subs) in comps.iter().enumerate() {
                        for (si, t) in subs.iter().enumerate() {
                            let path = format!("{name}({n})-{}({})-{}-{}", fi + 1, ri + 1, ci + 1, si + 1);
                            m.set(&path, t).unwrap();
                            expected.push((path, t.clone()));
                        }
                    }
                }
            }
        }
        let bytes = m.encode();
        let parsed = Message::parse(&bytes).unwrap();
        for (path, t) in &expected {
            let got = parsed.get(path);
            prop_assert_eq!(got.as_deref(), Some(t.as_str()), "{}", path);
        }
        prop_assert_eq!(OwnedMessage::from(&parsed).encode(), bytes);
    }
}
