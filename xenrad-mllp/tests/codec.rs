//! Decoder and encoder behaviour: framing rules, garbage, limits, release 2 blocks, and
//! property tests over every split point of generated streams.
// The split-independence harness (`fuzzing::run`) is the fuzz target's: feature `fuzzing`.
#![cfg(feature = "fuzzing")]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use xenrad_mllp::fuzzing::{Event, run};
use xenrad_mllp::{DecodeError, Decoder, DecoderConfig, EncodeError, Encoder, Frame};

fn msg(s: &str) -> Frame {
    Frame::Message(Bytes::copy_from_slice(s.as_bytes()))
}

fn frames(events: Vec<Event>) -> Vec<Frame> {
    events
        .into_iter()
        .map(|e| match e {
            Event::Frame(f) => f,
            Event::Error(e) => panic!("unexpected error {e}"),
        })
        .collect()
}

#[test]
fn lone_fs_and_cr_are_payload() {
    let (ev, _) = run(b"\x0bA\rB\x1cC\x1c\x1c\r", DecoderConfig::default(), 1);
    assert_eq!(frames(ev), [msg("A\rB\x1cC\x1c")]);
}

#[test]
fn pipelined_frames_are_never_merged() {
    let mut wire = Vec::new();
    for i in 0..10_000 {
        wire.extend_from_slice(format!("\x0bMSH|^~\\&|{i}\r\x1c\r").as_bytes());
    }
    for chunk in [wire.len(), 4096, 7, 1] {
        let (ev, stats) = run(&wire, DecoderConfig::default(), chunk);
        let got = frames(ev);
        assert_eq!(got.len(), 10_000, "chunk {chunk}");
        assert_eq!(got[9_999], msg("MSH|^~\\&|9999\r"));
        assert_eq!(stats.frames, 10_000);
        assert_eq!(stats.garbage_bytes, 0);
    }
}

#[test]
fn garbage_before_start_block_is_counted_and_skipped() {
    let wire = b"\0\0\r\n\x1cjunk\x0bA\x1c\r\r\n\x0bB\x1c\r\n";
    let (ev, stats) = run(wire, DecoderConfig::default(), 3);
    assert_eq!(frames(ev), [msg("A"), msg("B")]);
    assert_eq!(stats.garbage_bytes, 9 + 2 + 1);
    assert_eq!(stats.errors, 0);
}

#[test]
fn start_block_inside_open_frame_is_an_error_and_resyncs() {
    let wire = b"xx\x0bpartial\x0bwhole\x1c\r";
    let (ev, stats) = run(wire, DecoderConfig::default(), 2);
    assert_eq!(
        ev,
        [
            Event::Error(DecodeError::Interrupted { offset: 2, len: 7 }),
            Event::Frame(msg("whole"))
        ]
    );
    assert_eq!(stats.errors, 1);
    assert_eq!(stats.discarded_bytes, 8);
    assert_eq!(stats.garbage_bytes, 2);
}

#[test]
fn truncated_stream_is_reported_at_eof() {
    let (ev, _) = run(b"\x0bA\x1c\r\x0bhalf", DecoderConfig::default(), 4);
    assert_eq!(
        ev,
        [
            Event::Frame(msg("A")),
            Event::Error(DecodeError::Truncated { offset: 4, len: 4 })
        ]
    );
}

#[test]
fn missing_final_cr_only_when_tolerated() {
    let wire = b"\x0bA\x1c\x0bB\x1c";
    let strict = DecoderConfig::default();
    let (ev, _) = run(wire, strict, 1);
    assert_eq!(
        ev,
        [
            Event::Error(DecodeError::Interrupted { offset: 0, len: 2 }),
            Event::Error(DecodeError::Truncated { offset: 3, len: 2 })
        ]
    );
    let (ev, _) = run(wire, strict.allow_missing_final_cr(true), 1);
    assert_eq!(frames(ev), [msg("A"), msg("B")]);
}

#[test]
fn oversized_frame_is_rejected_without_buffering_and_next_frame_survives() {
    let limit = 1024;
    let mut wire = b"\x0b".to_vec();
    wire.extend(std::iter::repeat_n(b'a', 100_000));
    wire.extend_from_slice(b"\x1c\r\x0bnext\x1c\r");
    let config = DecoderConfig::default().max_frame_size(limit);
    // `run` asserts the buffer never exceeds limit + read size.
    for chunk in [wire.len(), 4096, 100, 1] {
        let (ev, stats) = run(&wire, config, chunk);
        assert_eq!(
            ev,
            [
                Event::Error(DecodeError::FrameTooLarge { offset: 0, limit }),
                Event::Frame(msg("next"))
            ],
            "chunk {chunk}"
        );
        assert_eq!(stats.discarded_bytes, 100_003);
    }
    // Exactly at the limit is accepted.
    let mut wire = b"\x0b".to_vec();
    wire.extend(std::iter::repeat_n(b'a', limit));
    wire.extend_from_slice(b"\x1c\r");
    let (ev, _) = run(&wire, config, 1);
    assert_eq!(frames(ev).len(), 1);
}

#[test]
fn release2_commit_blocks() {
    let (ev, _) = run(b"\x0b\x06\x1c\r\x0b\x15\x1c\r", DecoderConfig::default(), 1);
    assert_eq!(frames(ev), [Frame::CommitAck, Frame::CommitNak]);
    let mut out = BytesMut::new();
    let enc = Encoder::default();
    enc.encode_frame(&Frame::CommitAck, &mut out).unwrap();
    enc.encode_frame(&Frame::CommitNak, &mut out).unwrap();
    assert_eq!(&out[..], b"\x0b\x06\x1c\r\x0b\x15\x1c\r");
}

#[test]
fn payloads_are_zero_copy_slices_of_the_read_buffer() {
    let mut buf = BytesMut::from(&b"\x0bHELLO\x1c\r"[..]);
    let base = buf.as_ptr() as usize;
    let f = Decoder::default().decode(&mut buf).unwrap().unwrap();
    let Frame::Message(p) = f else { panic!() };
    assert_eq!(p.as_ptr() as usize, base + 1);
}

#[test]
fn encoder_refuses_unframeable_payloads() {
    let enc = Encoder::new(8);
    let mut out = BytesMut::new();
    assert_eq!(
        enc.encode(b"a\x0bb", &mut out),
        Err(EncodeError::ContainsStartBlock { offset: 1 })
    );
    assert_eq!(
        enc.encode(b"ab\x1c\r", &mut out),
        Err(EncodeError::ContainsEndBlock { offset: 2 })
    );
    assert_eq!(
        enc.encode(b"123456789", &mut out),
        Err(EncodeError::TooLarge { len: 9, limit: 8 })
    );
    assert!(out.is_empty());
    enc.encode(b"a\x1cb\x1c", &mut out).unwrap();
    assert_eq!(&out[..], b"\x0ba\x1cb\x1c\x1c\r");
}

#[test]
fn error_offsets_are_stream_positions() {
    let mut dec = Decoder::new(DecoderConfig::default().max_frame_size(4));
    let mut buf = BytesMut::from(&b"\x0bok\x1c\r\n\x0btoolong"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(Some(msg("ok"))));
    assert_eq!(
        dec.decode(&mut buf),
        Err(DecodeError::FrameTooLarge {
            offset: 6,
            limit: 4
        })
    );
    assert!(dec.in_frame());
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(dec.position(), 14);
}

/// Payload bytes drawn from the characters that matter to the framing (no start block).
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(b'a'), 2 => Just(b'|'), 2 => Just(b'\r'), 1 => Just(b'\n'),
            2 => Just(0x1c), 1 => Just(0x00), 1 => Just(0x06), 1 => Just(0x15), 1 => any::<u8>(),
        ],
        0..40,
    )
    .prop_map(|mut p| {
        for i in 0..p.len() {
            if p[i] == 0x0b || (p[i] == 0x1c && p.get(i + 1) == Some(&b'\r')) {
                p[i] = b'x';
            }
        }
        p
    })
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0u8), Just(b'\r'), Just(b'\n'), Just(0x1c), Just(b'z')],
        0..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For generated frame sequences with garbage between them, and every split point, the
    /// decoder yields exactly the original frames and counts exactly the garbage.
    #[test]
    fn every_split_point_yields_the_original_frames(
        items in prop::collection::vec((garbage(), payload()), 0..8),
        tail in garbage(),
    ) {
        let enc = Encoder::default();
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        let mut garbage_len = tail.len() as u64;
        for (g, p) in &items {
            wire.extend_from_slice(g);
            garbage_len += g.len() as u64;
            enc.encode(p, &mut wire).unwrap();
            expected.push(Frame::from_payload(Bytes::copy_from_slice(p)));
        }
        wire.extend_from_slice(&tail);
        for split in 0..=wire.len() {
            let mut dec = Decoder::default();
            let mut got = Vec::new();
            let mut buf = BytesMut::from(&wire[..split]);
            while let Some(f) = dec.decode(&mut buf).unwrap() { got.push(f); }
            buf.extend_from_slice(&wire[split..]);
            while let Some(f) = dec.decode_eof(&mut buf).unwrap() { got.push(f); }
            prop_assert_eq!(&got, &expected, "split at {}", split);
            prop_assert_eq!(dec.stats().garbage_bytes, garbage_len);
            prop_assert_eq!(dec.stats().bytes_consumed, wire.len() as u64);
        }
        for chunk in [1, 2, 3, 5] {
            let (ev, _) = run(&wire, DecoderConfig::default(), chunk);
            prop_assert_eq!(frames(ev), expected.clone());
        }
    }

    /// Arbitrary bytes: never a panic, and the outcome does not depend on the read size.
    #[test]
    fn arbitrary_input_is_split_independent(data in prop::collection::vec(any::<u8>(), 0..300), ctl in any::<u8>()) {
        let mut input = vec![ctl];
        input.extend_from_slice(&data);
        xenrad_mllp::fuzzing::decode(&input);
    }
}

#[test]
fn frame_ready_is_a_hint_that_never_consumes() {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"\r\n\x0bMSH|1\x1c\r\x0bMSH|2"[..]);
    assert!(dec.frame_ready(&buf));
    let before = buf.clone();
    assert!(dec.frame_ready(&buf));
    assert_eq!(buf, before);
    assert!(dec.decode(&mut buf).unwrap().is_some());
    // The second frame is open: not ready, and not ready while inside it either.
    assert!(!dec.frame_ready(&buf));
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert!(dec.in_frame());
    buf.extend_from_slice(b"\x1c\r");
    assert!(
        !dec.frame_ready(&buf),
        "inside an open frame the hint stays false"
    );
    assert!(dec.decode(&mut buf).unwrap().is_some());
    // A lone <FS> is data, not an end.
    assert!(!dec.frame_ready(b"\x0bA\x1cB"));
}

/// The straightforward `peek` implementation (byte-wise splits), kept as the reference the
/// memchr-based one must agree with.
mod peek_reference {
    fn segments(msg: &[u8]) -> impl Iterator<Item = &[u8]> {
        msg.split(|&b| b == b'\r' || b == b'\n')
            .filter(|s| !s.is_empty())
    }
    fn sep(msg: &[u8]) -> Option<u8> {
        let msh = segments(msg).next()?;
        (msh.len() >= 4 && msh.starts_with(b"MSH")).then(|| msh[3])
    }
    pub fn control_id(msg: &[u8]) -> Option<&[u8]> {
        let sep = sep(msg)?;
        segments(msg).next()?.split(|&b| b == sep).nth(9)
    }
    pub fn sender(msg: &[u8]) -> Option<(&[u8], &[u8])> {
        let sep = sep(msg)?;
        let mut it = segments(msg).next()?.split(|&b| b == sep).skip(2);
        Some((it.next()?, it.next().unwrap_or_default()))
    }
    pub fn msa(msg: &[u8]) -> Option<(&[u8], &[u8])> {
        let sep = sep(msg)?;
        let seg = segments(msg).find(|s| s.starts_with(b"MSA") && s.get(3) == Some(&sep))?;
        let f = |n| seg.split(|&b| b == sep).nth(n);
        Some((f(1)?, f(2).unwrap_or_default()))
    }
}

proptest! {
    #[test]
    fn peek_agrees_with_the_reference(
        prefix in prop::sample::select(vec!["", "MSH|", "MSH^", "\r\nMSH|", "MSA|", "\n", "MSH|^~\\&|A|B|C|D|2024||ADT|"]),
        body in prop::collection::vec(
            prop::sample::select(vec!["|", "|", "|", "|", "^", "ID7", "", "\r", "\n", "\rMSA|", "\rMSA^", "AA", "MSH|"]),
            0..40),
    ) {
        let mut msg = prefix.as_bytes().to_vec();
        for t in &body {
            msg.extend_from_slice(t.as_bytes());
        }
        prop_assert_eq!(xenrad_mllp::peek::control_id(&msg), peek_reference::control_id(&msg));
        prop_assert_eq!(xenrad_mllp::peek::sender(&msg), peek_reference::sender(&msg));
        prop_assert_eq!(xenrad_mllp::peek::msa(&msg), peek_reference::msa(&msg));
    }
}
