//! MLLP deframing: xenrad-mllp against the `mllp` and `hl7-mllp-codec` crates and a bare
//! memchr scan, measured in the same run.
//!
//! Groups:
//! - `mllp/corpus_whole`: the framed 10k-message corpus (`shared/corpus/hl7v2/generated`)
//!   decoded from one buffer; baseline `memchr_count` = memchr counting `<FS>` bytes.
//! - `mllp/corpus_64k_reads`: the same corpus fed in 64 KiB reads, all three decoders.
//! - `mllp/4mib_frame_64k_reads`: one 4 MiB frame fed in 64 KiB reads, all three decoders.
//! - `mllp/frame_size_scaling`: xenrad-mllp on 1, 4, 16 and 64 MiB frames in 64 KiB reads
//!   (constant throughput = cost per MiB flat), beside `append_only`: the same reads merely
//!   appended to a growing buffer.
//!
//! - `mllp/hl7_handler_1000_messages`: the listener's HL7 handler per message
//!   (`Hl7Handler::process` with a store that keeps nothing) beside parse only and parse +
//!   ACK with `xenrad_hl7v2::ack` defaults.
//!
//! Run: `cargo bench -p xenrad-benches --bench mllp -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]
use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use xenrad_mllp::{Decoder, DecoderConfig};

const READ: usize = 64 * 1024;
/// One frame holding an HL7 ORU with a base64 body of about `size` bytes (no framing bytes).
fn big_frame(size: usize) -> Vec<u8> {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut f = vec![0x0b];
    f.extend_from_slice(
        b"MSH|^~\\&|RIS|HOSP|PACS|RAD|20240101||ORU^R01|BIG1|P|2.5.1\rOBX|1|ED|PDF^Report||^AP^PDF^Base64^",
    );
    let body = size.saturating_sub(f.len() + 2);
    f.extend((0..body).map(|i| B64[i % 64]));
    f.extend_from_slice(b"\r\x1c\r");
    f
}

/// Each feeder returns (frames, payload bytes) so the run can check what it measured.
fn xenrad_reads(data: &[u8], max: usize) -> (usize, usize) {
    let mut dec = Decoder::new(DecoderConfig::default().max_frame_size(max));
    let mut buf = BytesMut::with_capacity(2 * READ);
    let (mut frames, mut n) = (0, 0);
    for part in data.chunks(READ) {
        buf.extend_from_slice(part);
        while let Some(f) = dec.decode(&mut buf).expect("valid stream") {
            frames += 1;
            n += black_box(f).payload().len();
        }
    }
    (frames, n)
}

fn mllp_crate_reads(data: &[u8], max: usize) -> (usize, usize) {
    let mut dec = mllp::Decoder::with_max_frame_size(max);
    let (mut frames, mut n) = (0, 0);
    for part in data.chunks(READ) {
        dec.push(part);
        while let Some(f) = dec.next_frame() {
            frames += 1;
            n += black_box(f.expect("valid stream")).len();
        }
    }
    (frames, n)
}

fn hl7_mllp_codec_reads(data: &[u8]) -> (usize, usize) {
    use tokio_util::codec::Decoder as _;
    let mut codec = hl7_mllp_codec::MllpCodec::new();
    let mut buf = BytesMut::with_capacity(2 * READ);
    let (mut frames, mut n) = (0, 0);
    for part in data.chunks(READ) {
        buf.extend_from_slice(part);
        while let Some(f) = codec.decode(&mut buf).expect("valid stream") {
            frames += 1;
            n += black_box(f).len();
        }
    }
    (frames, n)
}

/// Checks xenrad-mllp's answer and reports what the peers yield (a peer that merges
/// pipelined frames is still timed, and the miscount is printed).
fn check(what: &str, data: &[u8], frames: usize, max: usize) {
    let payload = data.len() - 3 * frames;
    assert_eq!(
        xenrad_reads(data, max),
        (frames, payload),
        "xenrad-mllp on {what}"
    );
    for (name, got) in [
        ("mllp 0.3", mllp_crate_reads(data, max)),
        ("hl7-mllp-codec 0.4", hl7_mllp_codec_reads(data)),
    ] {
        if got != (frames, payload) {
            eprintln!(
                "note: {name} on {what}: {} frames, {} payload bytes; expected {frames}, {payload}",
                got.0, got.1
            );
        }
    }
}

fn bench_corpus(c: &mut Criterion) {
    let Some(corpus) = xenrad_benches::load_hl7v2_corpus() else {
        return;
    };
    let frames = memchr::memmem::find_iter(&corpus, b"\x1c\r").count();
    check(
        "the 10k corpus in 64 KiB reads",
        &corpus,
        frames,
        usize::MAX,
    );

    let mut g = c.benchmark_group("mllp/corpus_whole");
    g.throughput(Throughput::Bytes(corpus.len() as u64));
    g.bench_function("memchr_count", |b| {
        b.iter(|| memchr::memchr_iter(0x1c, black_box(&corpus)).count());
    });
    g.bench_function("xenrad_mllp", |b| {
        b.iter_batched(
            || BytesMut::from(&corpus[..]),
            |mut buf| {
                let mut dec = Decoder::default();
                let mut n = 0;
                while let Some(f) = dec.decode(&mut buf).expect("valid stream") {
                    black_box(f);
                    n += 1;
                }
                assert_eq!(n, frames);
                buf
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();

    let mut g = c.benchmark_group("mllp/corpus_64k_reads");
    g.throughput(Throughput::Bytes(corpus.len() as u64));
    g.bench_function("xenrad_mllp", |b| {
        b.iter(|| xenrad_reads(black_box(&corpus), usize::MAX));
    });
    g.bench_function("mllp_0.3", |b| {
        b.iter(|| mllp_crate_reads(black_box(&corpus), usize::MAX));
    });
    g.bench_function("hl7_mllp_codec_0.4", |b| {
        b.iter(|| hl7_mllp_codec_reads(black_box(&corpus)));
    });
    g.finish();
}

fn bench_big_frame(c: &mut Criterion) {
    let frame = big_frame(4 << 20);
    check("one 4 MiB frame in 64 KiB reads", &frame, 1, usize::MAX);
    let mut g = c.benchmark_group("mllp/4mib_frame_64k_reads");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("xenrad_mllp", |b| {
        b.iter(|| xenrad_reads(black_box(&frame), usize::MAX));
    });
    g.bench_function("mllp_0.3", |b| {
        b.iter(|| mllp_crate_reads(black_box(&frame), usize::MAX));
    });
    g.bench_function("hl7_mllp_codec_0.4", |b| {
        b.iter(|| hl7_mllp_codec_reads(black_box(&frame)));
    });
    g.finish();

    let mut g = c.benchmark_group("mllp/frame_size_scaling");
    g.sample_size(10);
    for mib in [1usize, 4, 16, 64] {
        let frame = big_frame(mib << 20);
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function(format!("xenrad_mllp_{mib}MiB"), |b| {
            b.iter(|| xenrad_reads(black_box(&frame), usize::MAX));
        });
        // Peer for the same sizes: only appending the reads to a growing buffer (the floor
        // any deframer that hands out a contiguous payload pays; allocator and page faults).
        g.bench_function(format!("append_only_{mib}MiB"), |b| {
            b.iter(|| {
                let mut buf = BytesMut::with_capacity(2 * READ);
                for part in black_box(&frame).chunks(READ) {
                    buf.extend_from_slice(part);
                }
                buf.len()
            });
        });
    }
    g.finish();
}

/// A store that takes everything and keeps nothing: isolates the handler's own cost.
struct NullStore;

impl xenrad_mllp::hl7::MessageStore for NullStore {
    async fn store(
        &self,
        _key: &xenrad_mllp::hl7::MessageKey,
        _msg: bytes::Bytes,
    ) -> Result<xenrad_mllp::hl7::Stored, xenrad_mllp::hl7::StoreError> {
        Ok(xenrad_mllp::hl7::Stored::New)
    }
}

/// The per-message work of the listener's HL7 handler, on the first 1000 corpus messages:
/// `Hl7Handler::process` (parse, key, store call, ACK with cached MSH-7/MSH-10) beside its
/// parts: `parse_only`, and `parse_ack_default` = parse + `xenrad_hl7v2::ack::ack` with its
/// default options (a clock reading formatted twice per ACK: what the handler did before).
fn bench_handler(c: &mut Criterion) {
    use xenrad_hl7v2::Message;
    use xenrad_hl7v2::ack::{AckCode, ack};
    let Some(corpus) = xenrad_benches::load_hl7v2_corpus() else {
        return;
    };
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&corpus[..]);
    let mut msgs = Vec::new();
    while let Some(f) = dec.decode(&mut buf).expect("valid stream") {
        if msgs.len() == 1000 {
            break;
        }
        if let xenrad_mllp::Frame::Message(m) = f {
            msgs.push(m);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let h = xenrad_mllp::hl7::Hl7Handler::new(NullStore);
    let mut g = c.benchmark_group("mllp/hl7_handler_1000_messages");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("process", |b| {
        b.iter(|| {
            rt.block_on(async {
                for m in &msgs {
                    let out = h.process(m.clone()).await;
                    assert!(out.accepted());
                    black_box(out);
                }
            });
        });
    });
    g.bench_function("parse_only", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(Message::parse(m).expect("corpus parses"));
            }
        });
    });
    g.bench_function("parse_ack_default", |b| {
        b.iter(|| {
            for m in &msgs {
                let p = Message::parse(m).expect("corpus parses");
                black_box(ack(&p, AckCode::AA, None));
            }
        });
    });
    g.finish();
}

criterion_group!(benches, bench_corpus, bench_big_frame, bench_handler);
criterion_main!(benches);
