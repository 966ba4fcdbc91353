//! Interoperability with python-hl7 (`pip install hl7`, installed by `scripts/peers.sh`):
//! for every message of the shared corpus that both parse, every leaf value (segment
//! occurrence, field, repetition, component, subcomponent) read through python-hl7's
//! `Message.extract_field` equals ours.
//!
//! Both parsers get the same bytes: each message as we index it, segments joined by CR
//! (python-hl7 only splits on CR). Leaves are compared where both libraries define the
//! same decoding: raw text whose only escapes are the delimiter escapes `\F\ \S\ \T\ \R\ \E\`
//! (python-hl7 maps `\H\`, `\.br\` and `\Xhh\` differently from our documented policy), in
//! messages whose bytes are UTF-8 as python-hl7 decodes them (non-ASCII leaves of messages
//! declaring another MSH-18 charset are skipped: we decode per MSH-18, python-hl7 as UTF-8).
//! python-hl7 also `strip()`s the whole message, losing trailing blanks of the last segment's
//! last value; such leaves are skipped too.

use std::fmt::Write as _;
use std::process::{Command, Stdio};

mod common;

use common::for_each_corpus_message;

const SCRIPT: &str = r#"
import sys, hl7
msgs = {}
out = []
for line in sys.stdin.read().split("\n"):
    if not line:
        continue
    kind, rest = line.split("\t", 1)
    if kind == "M":
        idx, hexmsg = rest.split("\t")
        msgs[idx] = hl7.parse(bytes.fromhex(hexmsg).decode("utf-8"))
        continue
    idx, seg, sn, f, r, c, s = rest.split("\t")
    try:
        v = msgs[idx].extract_field(seg, int(sn), int(f), int(r), int(c), int(s))
        out.append(v.encode("utf-8", "surrogatepass").hex())
    except Exception as e:
        out.append("-")
print("\n".join(out))
"#;

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<String> {
    if s == "-" {
        return None;
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    Some(String::from_utf8(bytes).unwrap())
}

/// Only delimiter escapes (the subset both libraries decode identically).
fn simple_escapes(raw: &[u8], esc: Option<u8>) -> bool {
    let Some(e) = esc else { return true };
    let mut parts = raw.split(|&b| b == e);
    parts.next();
    let mut inside = true;
    for p in parts {
        if inside && !matches!(p, b"F" | b"S" | b"T" | b"R" | b"E") {
            return false;
        }
        inside = !inside;
    }
    inside
}

struct Query {
    ours: String,
    label: String,
}

#[test]
fn leaf_values_equal_python_hl7() {
    let Some(python) = common::peer_python() else {
        return;
    };
    let dir = common::corpus_dir().expect("the shared corpus is required with XENRAD_PEERS");

    let mut input = String::new();
    let mut queries: Vec<Query> = Vec::new();
    let (mut messages, mut skipped_leaves) = (0usize, 0usize);
    for_each_corpus_message(
        &dir,
        |cols| matches!(cols[3], "ok" | "envelope" | "semantic"),
        |file, _, msg| {
            let mut text = Vec::new();
            for seg in msg.segments() {
                text.extend_from_slice(seg.raw());
                text.push(b'\r');
            }
            if std::str::from_utf8(&text).is_err() {
                return;
            }
            messages += 1;
            let idx = messages;
            let _ = writeln!(input, "M\t{idx}\t{}", hex(&text));
            let utf8 = msg.encoding() == encoding_rs::UTF_8;
            let esc = msg.delimiters().escape;
            let mut seen: Vec<(String, usize)> = Vec::new();
            let last_segment = msg.segment_count();
            for seg in msg.segments() {
                let is_last = seg.index() == last_segment;
                let name = seg.name().to_owned();
                let sn = if let Some(e) = seen.iter_mut().find(|e| e.0 == name) {
                    e.1 += 1;
                    e.1
                } else {
                    seen.push((name.clone(), 1));
                    1
                };
                for (fi, f) in seg.fields().enumerate() {
                    for (ri, r) in f.repetitions().enumerate() {
                        for (ci, c) in r.components().enumerate() {
                            for (si, s) in c.subcomponents().enumerate() {
                                let raw = s.raw();
                                let stripped =
                                    is_last && raw.last().is_some_and(u8::is_ascii_whitespace);
                                if !simple_escapes(raw, esc)
                                    || (!utf8 && !raw.is_ascii())
                                    || stripped
                                {
                                    skipped_leaves += 1;
                                    continue;
                                }
                                let path = [fi + 1, ri + 1, ci + 1, si + 1];
                                let label = format!(
                                    "{} {name}({sn})-{}({})-{}-{}",
                                    file,
                                    fi + 1,
                                    ri + 1,
                                    ci + 1,
                                    si + 1
                                );
                                let _ = writeln!(
                                    input,
                                    "Q\t{idx}\t{name}\t{sn}\t{}\t{}\t{}\t{}",
                                    path[0], path[1], path[2], path[3]
                                );
                                queries.push(Query {
                                    ours: s.text().into_owned(),
                                    label,
                                });
                            }
                        }
                    }
                }
            }
        },
    );

    let mut child = Command::new(&python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python-hl7");
    let mut stdin = child.stdin.take().unwrap();
    let writer =
        std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "python-hl7 failed");
    let answers: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(answers.len(), queries.len());

    let (mut equal, mut python_errors) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    for (q, a) in queries.iter().zip(&answers) {
        match unhex(a) {
            Some(v) if v == q.ours => equal += 1,
            Some(v) => mismatches.push(format!(
                "{}: ours {:?}, python-hl7 {:?}",
                q.label, q.ours, v
            )),
            None => python_errors += 1,
        }
    }
    println!(
        "{messages} messages, {} leaves compared: {equal} equal, {} different, {python_errors} python-hl7 errors; {skipped_leaves} leaves skipped (escapes/charset)",
        queries.len(),
        mismatches.len()
    );
    assert!(equal > 50_000, "too few leaves compared: {equal}");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(30)].join("\n")
    );
    assert_eq!(python_errors, 0);
}
