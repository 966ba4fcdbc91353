//! Heap allocations on the hot paths, measured with a counting global allocator
//! (stats_alloc). Runs without the libtest harness: the counters are process-wide.

#![allow(clippy::cast_precision_loss)] // ratios printed for humans

use bytes::Bytes;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::sync::Arc;
use std::time::Instant;
use xenrad_dimse::assoc::{AcceptorPolicy, Association, Event, Timeouts};
use xenrad_dimse::dimse::{Assembler, Command, DimseEvent, field};
use xenrad_dimse::pdu::{AssociateRq, Pdu, PresentationContextRq, UserInformation, encode};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    command_decode_allocates_nothing();
    println!("test command_decode_allocates_nothing ... ok");
    pdata_stream_allocations_per_pdu();
    println!("test pdata_stream_allocations_per_pdu ... ok");
    peek_header_allocates_nothing();
    println!("test peek_header_allocates_nothing ... ok");
}

fn peek_header_allocates_nothing() {
    use xenrad_dimse::store::{PeekOutcome, peek_header};
    // (0008,0016), (0008,0018), an undefined-length sequence with one item, (0010,0020),
    // (0020,000D), (0020,0013), then pixel data: Explicit VR Little Endian.
    let mut d = Vec::new();
    let mut put = |g: u16, e: u16, vr: &[u8; 2], v: &[u8]| {
        d.extend_from_slice(&g.to_le_bytes());
        d.extend_from_slice(&e.to_le_bytes());
        d.extend_from_slice(vr);
        if vr == b"SQ" || vr == b"OW" {
            d.extend_from_slice(&[0, 0]);
            d.extend_from_slice(&(v.len() as u32).to_le_bytes());
        } else {
            d.extend_from_slice(&(v.len() as u16).to_le_bytes());
        }
        d.extend_from_slice(v);
    };
    put(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2\0");
    put(0x0008, 0x0018, b"UI", b"1.2.3.4.5.6\0");
    let mut sq = Vec::new();
    sq.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 8, 0, 0, 0]);
    sq.extend_from_slice(&[0x08, 0x00, 0x50, 0x11, b'U', b'I', 0, 0]);
    put(0x0008, 0x1140, b"SQ", &sq);
    put(0x0010, 0x0020, b"LO", b"PID1");
    put(0x0020, 0x000D, b"UI", b"1.2.3.9\0");
    put(0x0020, 0x0013, b"IS", b"7 ");
    put(0x7FE0, 0x0010, b"OW", &[0; 64]);
    let region = Region::new(GLOBAL);
    for _ in 0..1000 {
        let PeekOutcome::Done(h) =
            peek_header(std::hint::black_box(&d), "1.2.840.10008.1.2.1", false)
        else {
            panic!("not done")
        };
        assert_eq!(h.patient_id, Some(&b"PID1"[..]));
        assert_eq!(h.instance_number, Some(&b"7"[..]));
    }
    let s = region.change();
    println!(
        "  peek_header: {} allocations for 1000 scans",
        s.allocations
    );
    assert_eq!(s.allocations, 0);
}

fn store_rq() -> Vec<u8> {
    Command {
        field: field::C_STORE_RQ,
        message_id: Some(1),
        affected_sop_class: Some("1.2.840.10008.5.1.4.1.1.2"),
        affected_sop_instance: Some("1.2.3.4.5"),
        priority: Some(0),
        has_dataset: true,
        ..Command::default()
    }
    .encode()
}

fn command_decode_allocates_nothing() {
    let bytes = store_rq();
    // The first decode initialises dicom-dictionary-std's lazy tag index (one-time).
    Command::decode(&bytes).unwrap();
    let region = Region::new(GLOBAL);
    for _ in 0..1000 {
        let c = Command::decode(std::hint::black_box(&bytes)).unwrap();
        assert_eq!(c.message_id, Some(1));
    }
    let s = region.change();
    println!(
        "  Command::decode: {} allocations for 1000 decodes",
        s.allocations
    );
    assert_eq!(s.allocations, 0);
}

fn pdata_stream_allocations_per_pdu() {
    let now = Instant::now();
    let mut a = Association::acceptor(
        Arc::new(AcceptorPolicy::default()),
        Timeouts::default(),
        now,
    );
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: "XENRAD",
        calling_ae: "ALLOC",
        application_context: "1.2.840.10008.3.1.1.1",
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: "1.2.840.10008.5.1.4.1.1.2",
            transfer_syntaxes: vec!["1.2.840.10008.1.2.1"],
        }],
        user: UserInformation {
            max_pdu_length: Some(16384),
            ..UserInformation::default()
        },
    };
    let mut b = Vec::new();
    encode::associate_rq(&mut b, &rq);
    a.handle_input(&b, now);
    let mut out = Vec::new();
    a.poll_transmit(&mut out);
    while a.poll_event().is_some() {}
    // 2,000 P-DATA-TF PDUs of 16 KiB data fragments (32 MB), received in 64 KiB reads.
    let payload = vec![0x5Au8; 16 * 1024 - 6];
    let mut pdu = Vec::new();
    encode::pdata_fragments(&mut pdu, 1, false, &payload, 0);
    let pdu = Bytes::from(pdu);
    let mut stream = Vec::new();
    for _ in 0..64 {
        stream.extend_from_slice(&pdu);
    }
    let mut asm = Assembler::default();
    let mut run = |rounds: usize| {
        let mut data_bytes = 0usize;
        for _ in 0..rounds {
            for chunk in stream.chunks(64 * 1024) {
                a.buffer_mut().extend_from_slice(chunk);
                a.process(now);
                while let Some(ev) = a.poll_event() {
                    let Event::Data(pdv) = ev else {
                        panic!("{ev:?}")
                    };
                    if let Some(DimseEvent::Data { data, .. }) = asm.push(pdv).unwrap() {
                        data_bytes += data.len();
                    }
                }
            }
        }
        data_bytes
    };
    run(2); // warm up: buffers and queues reach their steady size
    let region = Region::new(GLOBAL);
    let rounds = 32;
    let got = run(rounds);
    let s = region.change();
    let pdus = rounds * 64;
    assert_eq!(got, pdus * payload.len());
    let per_pdu = s.allocations as f64 / pdus as f64;
    println!(
        "  {pdus} P-DATA PDUs (16 KiB) through Association + Assembler: {} allocations ({per_pdu:.2} per PDU), {} bytes allocated",
        s.allocations, s.bytes_allocated
    );
    // The frame is split off the receive buffer (shared, no copy) and each PDV is a slice of
    // it; what remains is the receive buffer's own regrowth.
    assert!(per_pdu <= 1.0, "{per_pdu} allocations per PDU");
    // And no PDU parse allocates for P-DATA beyond the PDV list.
    let region = Region::new(GLOBAL);
    let p = Pdu::parse(&pdu).unwrap();
    drop(p);
    assert!(region.change().allocations <= 1);
}
