//! Heap allocations of the codec, counted with a global counting allocator (stats_alloc).
//! Runs without the libtest harness: the counters are process-wide.

use std::alloc::System;

use bytes::BytesMut;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xenrad_mllp::{Decoder, Encoder, Frame};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    pipelined_frames_allocate_nothing_per_frame();
    println!("test pipelined_frames_allocate_nothing_per_frame ... ok");
    encoding_into_a_reserved_buffer_allocates_nothing();
    println!("test encoding_into_a_reserved_buffer_allocates_nothing ... ok");
    big_frame_in_small_reads_allocates_logarithmically();
    println!("test big_frame_in_small_reads_allocates_logarithmically ... ok");
    println!("3 passed, 0 failed");
}

fn wire(n: usize) -> BytesMut {
    let mut out = BytesMut::new();
    let enc = Encoder::default();
    for i in 0..n {
        let m = format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|{i}|P|2.5.1\rPID|1||{i}\r");
        enc.encode(m.as_bytes(), &mut out).unwrap();
    }
    out
}

/// Zero-copy: every payload is a `Bytes` view of the read buffer. The only allocation is the
/// one-time switch of the buffer to shared ownership on the first split.
fn pipelined_frames_allocate_nothing_per_frame() {
    let mut buf = wire(1000);
    let mut dec = Decoder::default();
    let mut frames = Vec::with_capacity(1000);
    let region = Region::new(GLOBAL);
    while let Some(f) = dec.decode(&mut buf).unwrap() {
        frames.push(f);
    }
    let stats = region.change();
    assert_eq!(frames.len(), 1000);
    assert!(matches!(&frames[999], Frame::Message(m) if m.starts_with(b"MSH")));
    assert!(
        stats.allocations <= 1,
        "{} allocations for 1000 frames",
        stats.allocations
    );
    assert_eq!(stats.reallocations, 0);
}

fn encoding_into_a_reserved_buffer_allocates_nothing() {
    let enc = Encoder::default();
    let msg = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\rPID|1\r";
    let mut out = BytesMut::with_capacity(1000 * (msg.len() + 3));
    let region = Region::new(GLOBAL);
    for _ in 0..1000 {
        enc.encode(msg, &mut out).unwrap();
    }
    let stats = region.change();
    assert_eq!(stats.allocations + stats.reallocations, 0);
    assert_eq!(out.len(), 1000 * (msg.len() + 3));
}

/// A 4 MiB frame in 64 KiB reads: the buffer grows by doubling (a handful of allocations,
/// not one per read) and the scan never revisits bytes.
fn big_frame_in_small_reads_allocates_logarithmically() {
    let mut data = vec![0x0b];
    data.extend(std::iter::repeat_n(b'x', 4 << 20));
    data.extend_from_slice(b"\x1c\r");
    let mut dec = Decoder::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut got = None;
    let region = Region::new(GLOBAL);
    for part in data.chunks(64 * 1024) {
        buf.extend_from_slice(part);
        if let Some(f) = dec.decode(&mut buf).unwrap() {
            got = Some(f);
        }
    }
    let stats = region.change();
    assert_eq!(got.unwrap().payload().len(), 4 << 20);
    let growths = stats.allocations + stats.reallocations;
    assert!(growths <= 12, "{growths} allocations for 65 reads");
}
