//! HL7 v2 codec: xenrad-hl7v2 against the `hl7-v2` and `mllp` crates (the two fastest
//! crates.io parsers, both Apache-2.0), measured in the same run on the shared 10,000-message
//! v2.5.1 radiology corpus (`shared/corpus/hl7v2/generated`, MLLP framing stripped in setup).
//! Throughput is corpus bytes per second; messages/s = 10,000 / time per iteration.
//!
//! Groups:
//! - `hl7v2/parse`: index every message. xenrad with a reused [`Parser`] (zero allocations)
//!   and one-shot `Message::parse`; `hl7-v2` `Hl7Message::parse`; `mllp` `Message::parse`
//!   (both split every field eagerly).
//! - `hl7v2/parse_4_lookups`: parse, then PID-3-1, PID-5-1, MSH-10, OBR-4-1.
//! - `hl7v2/full_index`: visit every leaf (xenrad: subcomponents; peers: their deepest level).
//! - `hl7v2/decode_text`: decoded text of every leaf (escapes + MSH-18 charset); mllp's
//!   `Field::unescape` only decodes the first repetition of each field.
//! - `hl7v2/encode`: serialise (xenrad `OwnedMessage::encode_into`, mllp `to_er7`).
//! - `hl7v2/validate`: parse + v2.5.1 structure/field/table validation (xenrad only: no
//!   crates.io HL7 crate validates; `benches/hl7v2/validate_peers.sh` runs this group and the
//!   Python peer validator hl7apy back to back and prints the ratio).
//! - `hl7v2/large_obx_4mib`: one ORU with a 4 MiB base64 OBX-5, parse + read OBX-5-5
//!   (`xenrad_parse_only`: the segment index alone).
//!
//! Run: `cargo bench -p xenrad-benches --bench hl7v2 -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use xenrad_benches::{deframe, load_hl7v2_corpus};
use xenrad_hl7v2::encode::owned::OwnedMessage;
use xenrad_hl7v2::{Message, ParseOptions, Parser, Path, SubComponent};

/// Sum of `f` over every subcomponent (leaf) of a message.
fn sum_leaves(msg: &Message<'_>, f: impl Fn(&SubComponent<'_>) -> usize) -> usize {
    let mut n = 0;
    for seg in msg.segments() {
        for fld in seg.fields() {
            for r in fld.repetitions() {
                for c in r.components() {
                    n += c.subcomponents().map(|s| f(&s)).sum::<usize>();
                }
            }
        }
    }
    n
}

fn big_message(size: usize) -> Vec<u8> {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut m = b"MSH|^~\\&|RIS|HOSP|PACS|RAD|20240101||ORU^R01^ORU_R01|BIG1|P|2.5.1\r\
PID|1||1^^^H^MR||DOE^JOHN\rOBR|1|||PDF^Report\rOBX|1|ED|PDF^Report||^AP^PDF^Base64^"
        .to_vec();
    let body = size.saturating_sub(m.len() + 16);
    m.extend((0..body).map(|i| B64[i % 64]));
    m.extend_from_slice(b"||||||F\r");
    m
}

fn bench(c: &mut Criterion) {
    let Some(data) = load_hl7v2_corpus() else {
        return;
    };
    let msgs = deframe(&data);
    assert_eq!(msgs.len(), 10_000);
    let total: usize = msgs.iter().map(|m| m.len()).sum();
    let strs: Vec<&str> = msgs
        .iter()
        .map(|m| std::str::from_utf8(m).unwrap())
        .collect();
    let paths: Vec<Path> = ["PID-3-1", "PID-5-1", "MSH-10", "OBR-4-1"]
        .iter()
        .map(|p| Path::parse(p).unwrap())
        .collect();

    // Sanity: every parser accepts every message, and lookups agree where peers number right.
    for (m, s) in msgs.iter().zip(&strs) {
        let x = Message::parse(m).unwrap();
        let h = hl7_v2::Hl7Message::parse(m).unwrap();
        let p = mllp::Message::parse(s).unwrap();
        assert_eq!(x.control_id().as_deref(), h.message_control_id());
        assert_eq!(
            x.get("PID-5-1").as_deref(),
            p.segment("PID")
                .and_then(|s| s.field(5))
                .and_then(|f| f.component(1))
        );
    }

    let mut g = c.benchmark_group("hl7v2/parse");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("xenrad_parser_reuse", |b| {
        let mut parser = Parser::new(ParseOptions::default());
        b.iter(|| {
            let mut n = 0;
            for m in &msgs {
                n += parser.parse(black_box(m)).unwrap().segment_count();
            }
            n
        });
    });
    g.bench_function("xenrad_message_parse", |b| {
        b.iter(|| {
            msgs.iter()
                .map(|m| Message::parse(black_box(m)).unwrap().segment_count())
                .sum::<usize>()
        });
    });
    g.bench_function("hl7_v2", |b| {
        b.iter(|| {
            msgs.iter()
                .map(|m| {
                    hl7_v2::Hl7Message::parse(black_box(m))
                        .unwrap()
                        .all_segments()
                        .count()
                })
                .sum::<usize>()
        });
    });
    g.bench_function("mllp", |b| {
        b.iter(|| {
            strs.iter()
                .map(|m| mllp::Message::parse(black_box(m)).unwrap().segments().len())
                .sum::<usize>()
        });
    });
    g.finish();

    let mut g = c.benchmark_group("hl7v2/parse_4_lookups");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("xenrad", |b| {
        let mut parser = Parser::new(ParseOptions::default());
        b.iter(|| {
            let mut n = 0;
            for m in &msgs {
                let msg = parser.parse(black_box(m)).unwrap();
                for p in &paths {
                    n += msg.get_path(p).map_or(0, |v| v.len());
                }
            }
            n
        });
    });
    g.bench_function("hl7_v2", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in &msgs {
                let msg = hl7_v2::Hl7Message::parse(black_box(m)).unwrap();
                // SEG-f-1 (the peer has no path syntax).
                let first = |seg, f| {
                    msg.segment(seg)
                        .and_then(|s| s.field(f))
                        .and_then(|f| f.component(1).map(str::len))
                        .unwrap_or(0)
                };
                n += first("PID", 3) + first("PID", 5) + first("OBR", 4);
                n += msg.message_control_id().map_or(0, str::len);
            }
            n
        });
    });
    g.bench_function("mllp", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in &strs {
                let msg = mllp::Message::parse(black_box(s)).unwrap();
                let first = |seg: &str| {
                    msg.field(seg)
                        .and_then(|f| f.component(1))
                        .map_or(0, str::len)
                };
                n += first("PID-3") + first("PID-5") + first("OBR-4");
                n += msg.field("MSH-10").map_or(0, |f| f.value().len());
            }
            n
        });
    });
    g.finish();

    let mut g = c.benchmark_group("hl7v2/full_index");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("xenrad_subcomponents", |b| {
        let mut parser = Parser::new(ParseOptions::default());
        b.iter(|| {
            msgs.iter()
                .map(|m| sum_leaves(&parser.parse(black_box(m)).unwrap(), |s| s.raw().len()))
                .sum::<usize>()
        });
    });
    g.bench_function("hl7_v2_components", |b| {
        b.iter(|| {
            let mut n = 0;
            for m in &msgs {
                let msg = hl7_v2::Hl7Message::parse(black_box(m)).unwrap();
                for seg in msg.all_segments() {
                    for f in seg.raw_fields() {
                        for c in f.split('^') {
                            n += c.len();
                        }
                    }
                }
            }
            n
        });
    });
    g.bench_function("mllp_subcomponents", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in &strs {
                let msg = mllp::Message::parse(black_box(s)).unwrap();
                let sep = msg.separators();
                for seg in msg.segments() {
                    for f in seg.fields() {
                        for r in f.repetitions() {
                            for c in r.split(sep.component) {
                                for s in c.split(sep.subcomponent) {
                                    n += s.len();
                                }
                            }
                        }
                    }
                }
            }
            n
        });
    });
    g.finish();

    let mut g = c.benchmark_group("hl7v2/decode_text");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("xenrad_every_leaf", |b| {
        let mut parser = Parser::new(ParseOptions::default());
        b.iter(|| {
            msgs.iter()
                .map(|m| sum_leaves(&parser.parse(black_box(m)).unwrap(), |s| s.text().len()))
                .sum::<usize>()
        });
    });
    g.bench_function("mllp_unescape_first_rep_per_field", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in &strs {
                let msg = mllp::Message::parse(black_box(s)).unwrap();
                for seg in msg.segments() {
                    for f in seg.fields() {
                        n += f.unescape().len();
                    }
                }
            }
            n
        });
    });
    g.finish();

    let owned: Vec<OwnedMessage> = msgs
        .iter()
        .map(|m| OwnedMessage::from(&Message::parse(m).unwrap()))
        .collect();
    for (o, m) in owned.iter().zip(&msgs) {
        assert_eq!(o.encode(), *m, "encoder must reproduce the corpus");
    }
    let parsed_mllp: Vec<mllp::Message<'_>> = strs
        .iter()
        .map(|s| mllp::Message::parse(s).unwrap())
        .collect();
    let mut g = c.benchmark_group("hl7v2/encode");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("xenrad_owned_encode", |b| {
        let mut out = Vec::with_capacity(total + 1024);
        b.iter(|| {
            out.clear();
            for o in &owned {
                o.encode_into(&mut out);
            }
            out.len()
        });
    });
    g.bench_function("mllp_to_er7", |b| {
        b.iter(|| parsed_mllp.iter().map(|m| m.to_er7().len()).sum::<usize>());
    });
    g.finish();

    let mut g = c.benchmark_group("hl7v2/validate");
    g.throughput(Throughput::Bytes(total as u64));
    g.bench_function("xenrad_parse_validate", |b| {
        let mut parser = Parser::new(ParseOptions::default());
        b.iter(|| {
            let mut n = 0;
            for m in &msgs {
                let msg = parser.parse(black_box(m)).unwrap();
                n += xenrad_hl7v2::validate::validate(&msg).problems.len();
            }
            n
        });
    });
    g.finish();

    let big = big_message(4 << 20);
    let big_str = std::str::from_utf8(&big).unwrap();
    let mut g = c.benchmark_group("hl7v2/large_obx_4mib");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("xenrad_parse_only", |b| {
        b.iter(|| Message::parse(black_box(&big)).unwrap().segment_count());
    });
    g.bench_function("xenrad", |b| {
        b.iter(|| {
            Message::parse(black_box(&big))
                .unwrap()
                .get("OBX-5-5")
                .map_or(0, |v| v.len())
        });
    });
    g.bench_function("hl7_v2", |b| {
        b.iter(|| {
            let m = hl7_v2::Hl7Message::parse(black_box(&big)).unwrap();
            m.segment("OBX")
                .and_then(|s| s.field(5))
                .and_then(|f| f.component(5).map(str::len))
        });
    });
    g.bench_function("mllp", |b| {
        b.iter_batched(
            || big_str,
            |s| {
                let m = mllp::Message::parse(black_box(s)).unwrap();
                m.segment("OBX")
                    .and_then(|s| s.field(5))
                    .and_then(|f| f.component(5))
                    .map(str::len)
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
