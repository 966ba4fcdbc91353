//! Linear-time MLLP framing (HL7 v2 over TCP, release 1 and 2), sans-IO at its core.
//!
//! Layers:
//! - [`frame`]: block characters and the [`Frame`] type (messages and release 2 commit blocks);
//! - [`decoder`]: the incremental deframer — remembers its scan offset (O(n) over any split),
//!   hands out payloads zero-copy, counts garbage, enforces a frame size limit;
//! - [`encoder`]: framing with payload checks;
//! - [`peek`]: allocation-free MSH-10 / MSA lookups used to match ACKs to messages;
//! - `codec` (feature `tokio`): tokio-util `Decoder`/`Encoder`;
//! - `server` and `client` (feature `tokio`): a listener driving a caller-supplied
//!   [`Handler`](server::Handler), and a client that matches MSA-2 to the sent MSH-10;
//! - `Server::serve_tls` / `client::TlsClient` (feature `tls`): MLLPS over rustls, optional
//!   mutual TLS;
//! - `hl7` (feature `hl7`): a ready-made handler — parse with `xenrad-hl7v2`, store through a
//!   `MessageStore` or an `Hl7Store` (sees the parsed message, may refuse its content), ACK
//!   per MSH-15/16, duplicates acknowledged but not stored twice; `Hl7Handler::process` is
//!   the same without a transport (HTTP adapters).
//!
//! ```
//! use bytes::BytesMut;
//! use xenrad_mllp::{Decoder, Encoder, Frame};
//!
//! let mut wire = BytesMut::new();
//! let enc = Encoder::default();
//! enc.encode(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\r", &mut wire).unwrap();
//! enc.encode(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|2|P|2.5.1\r", &mut wire).unwrap();
//!
//! let mut dec = Decoder::default();
//! let mut ids = Vec::new();
//! while let Some(frame) = dec.decode(&mut wire).unwrap() {
//!     let Frame::Message(msg) = frame else { unreachable!() };
//!     ids.push(xenrad_mllp::peek::control_id(&msg).unwrap().to_vec());
//! }
//! assert_eq!(ids, [b"1".to_vec(), b"2".to_vec()]);
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod decoder;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod peek;

#[cfg(feature = "tokio")]
pub mod client;
#[cfg(feature = "tokio")]
pub mod codec;
#[cfg(feature = "hl7")]
pub mod hl7;
#[cfg(feature = "hl7v3")]
pub mod hl7v3;
#[cfg(feature = "tokio")]
pub mod server;

pub use decoder::{DEFAULT_MAX_FRAME_SIZE, Decoder, DecoderConfig, DecoderStats};
pub use encoder::Encoder;
pub use error::{DecodeError, EncodeError};
pub use frame::Frame;

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[cfg(any(fuzzing, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing {
    use crate::{DecodeError, Decoder, DecoderConfig, DecoderStats, Encoder, Frame};
    use bytes::BytesMut;

    /// One decoder event.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Event {
        /// A frame.
        Frame(Frame),
        /// An error.
        Error(DecodeError),
    }

    /// Feeds `data` to a decoder in reads of `chunk` bytes, then signals end of stream.
    pub fn run(data: &[u8], config: DecoderConfig, chunk: usize) -> (Vec<Event>, DecoderStats) {
        let mut dec = Decoder::new(config);
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        let mut drain = |dec: &mut Decoder, buf: &mut BytesMut, eof: bool| {
            loop {
                // The batching hint must never promise a frame that needs more input.
                let ready = dec.frame_ready(buf);
                let r = if eof {
                    dec.decode_eof(buf)
                } else {
                    dec.decode(buf)
                };
                assert!(
                    !(ready && r == Ok(None)),
                    "frame_ready was true but decode needs more input"
                );
                match r {
                    Ok(Some(f)) => events.push(Event::Frame(f)),
                    Ok(None) => break,
                    Err(e) => events.push(Event::Error(e)),
                }
            }
        };
        for part in data.chunks(chunk.max(1)) {
            buf.extend_from_slice(part);
            drain(&mut dec, &mut buf, false);
            // Memory bound: an open frame never holds more than the limit plus one read.
            assert!(
                buf.len() <= config.max_frame_size + chunk + 2,
                "buffer grew past the limit"
            );
        }
        drain(&mut dec, &mut buf, true);
        assert!(buf.is_empty(), "decode_eof left bytes behind");
        (events, *dec.stats())
    }

    /// Fuzz entry point `decode`: the first byte picks the limits and the read size; the
    /// rest is the stream. Checks that the result is independent of how the stream is
    /// split, that every byte is accounted for, that every payload re-frames to itself, and
    /// that [`Decoder::frame_ready`] never promises a frame that needs more input.
    pub fn decode(data: &[u8]) {
        let Some((&ctl, data)) = data.split_first() else {
            return;
        };
        let config = DecoderConfig {
            max_frame_size: if ctl & 1 == 1 {
                64
            } else {
                crate::DEFAULT_MAX_FRAME_SIZE
            },
            allow_missing_final_cr: ctl & 2 == 2,
        };
        let chunk = usize::from(ctl >> 2) + 1;
        let (whole, whole_stats) = run(data, config, data.len().max(1));
        let (split, split_stats) = run(data, config, chunk);
        assert_eq!(whole, split, "decoding depends on the read split");
        assert_eq!(
            whole_stats, split_stats,
            "counters depend on the read split"
        );
        let s = whole_stats;
        assert_eq!(s.bytes_consumed, data.len() as u64);
        let framed = s.bytes_consumed - s.garbage_bytes - s.discarded_bytes;
        assert!(
            framed >= s.payload_bytes + 2 * s.frames && framed <= s.payload_bytes + 3 * s.frames
        );
        let enc = Encoder::new(config.max_frame_size);
        for ev in &whole {
            if let Event::Frame(f) = ev {
                assert!(f.payload().len() <= config.max_frame_size);
                let mut wire = BytesMut::new();
                enc.encode_frame(f, &mut wire)
                    .expect("a decoded payload must re-frame");
                let mut dec = Decoder::new(config);
                assert_eq!(dec.decode(&mut wire), Ok(Some(f.clone())));
                assert!(wire.is_empty());
            }
        }
    }
}
