//! # xenrad-hl7v2
//!
//! A sans-IO, zero-copy HL7 v2 (v2.5.1) codec: a one-pass segment index over borrowed bytes,
//! lazy field/repetition/component/subcomponent access, Terser-style paths, escape and MSH-18
//! charset decoding, an owned model and encoder, ACK/NAK generation, batch splitting and
//! structure validation.
//!
//! ```
//! use xenrad_hl7v2::{Message, ack::{ack, AckCode}};
//! let raw = b"MSH|^~\\&|RIS|RAD|PACS|IMG|20240101120000||ORU^R01^ORU_R01|42|P|2.5.1|||AL|NE||UNICODE UTF-8\r\
//!             PID|1||123^^^HOSP^MR||M\\XC39C\\LLER^ANNA\r\
//!             OBX|1|TX|IMP||Line one\\.br\\Line two||||||F\r";
//! let msg = Message::parse(raw)?;
//! assert_eq!(msg.get("PID-5-1").as_deref(), Some("MÜLLER"));
//! assert_eq!(msg.message_type().unwrap().structure, "ORU_R01");
//! let reply = ack(&msg, AckCode::CA, None);
//! assert!(reply.starts_with(b"MSH|^~\\&|PACS|IMG|RIS|RAD|"));
//! # Ok::<(), xenrad_hl7v2::ParseError>(())
//! ```
//!
//! Layers: [`parse`] (scanner, index, borrowed views), [`escape`] and [`charset`] (text
//! decoding), [`path`] (Terser paths), [`encode`] (owned model, encoder, ACKs), [`batch`]
//! (FHS/BHS envelopes), [`validate`] (v2.5.1 structure and data type rules).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod batch;
pub mod charset;
pub mod datetime;
pub mod delimiters;
pub mod encode;
pub mod escape;
pub mod parse;
pub mod path;
pub mod validate;
pub mod views;

pub use delimiters::Delimiters;
pub use encode::ack;
pub use parse::element::{Component, Field, Repetition, Segment, SubComponent};
pub use parse::error::{ParseError, ParseErrorKind};
pub use parse::message::{AckCondition, Message, MessageType, Parser};
pub use parse::options::{ParseOptions, Terminators, UnknownCharset};
pub use path::{Path, PathError};

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests. Each must never
/// panic on any input.
#[cfg(any(fuzzing, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing {
    use crate::{Message, ParseOptions, Terminators};

    /// Parses `data` in both terminator modes and walks every element, path and ACK.
    pub fn parse(data: &[u8]) {
        for t in [Terminators::Lenient, Terminators::CrOnly] {
            let opts = ParseOptions {
                terminators: t,
                ..ParseOptions::default()
            };
            match Message::parse_with(data, &opts) {
                Ok(msg) => {
                    for seg in msg.segments() {
                        let _ = seg.name();
                        for f in seg.fields() {
                            for r in f.repetitions() {
                                for c in r.components() {
                                    for s in c.subcomponents() {
                                        let _ = s.text();
                                        let _ = s.try_text();
                                    }
                                }
                            }
                        }
                    }
                    for p in [
                        "MSH-9-2",
                        "PID-3(2)-1",
                        "OBX(2)-5",
                        "MSH-2",
                        "MSH-1",
                        "PID-5-1-1",
                    ] {
                        let _ = msg.get(p);
                    }
                    let _ = msg.message_type();
                    let out = crate::ack::ack(&msg, crate::ack::AckCode::AA, None);
                    assert!(
                        Message::parse(&out).is_ok(),
                        "ACK of a parsed message must parse"
                    );
                }
                Err(e) => {
                    let _ = e.to_string();
                    let out = crate::ack::ack_unparseable(data, None);
                    assert!(Message::parse(&out).is_ok(), "best-effort AR must parse");
                }
            }
            let _ = crate::batch::split(data, &opts);
        }
    }

    /// Parses `data` (leniently: unknown charsets decode as UTF-8) and validates it with the
    /// strictest options; every problem must render.
    pub fn validate(data: &[u8]) {
        use crate::validate::{ExtraSegments, ValidationOptions, validate_with};
        let opts = ParseOptions {
            unknown_charset: crate::UnknownCharset::UseDefault,
            strict_segment_ids: false,
            ..ParseOptions::default()
        };
        if let Ok(msg) = Message::parse_with(data, &opts) {
            let strict = ValidationOptions {
                unknown_segments: ExtraSegments::Error,
                z_segments: ExtraSegments::Warn,
                check_tables: true,
                require_known_structure: true,
            };
            for v in [ValidationOptions::default(), strict] {
                let report = validate_with(&msg, &v);
                for p in &report.problems {
                    let _ = p.to_string();
                    let _ = p.to_error_detail();
                }
            }
        }
    }

    /// Decodes `data` as field text under every escape policy, and checks that escaping
    /// any UTF-8 text then decoding it gives the text back.
    pub fn escape(data: &[u8]) {
        use crate::escape::{CharsetEscapes, EscapePolicy, Formatting, decode, escape};
        let d = crate::Delimiters::STANDARD;
        for formatting in [Formatting::Preserve, Formatting::PlainText] {
            for charsets in [CharsetEscapes::Apply, CharsetEscapes::Preserve] {
                let policy = EscapePolicy {
                    formatting,
                    charsets,
                };
                let _ = decode(data, &d, encoding_rs::UTF_8, policy);
                let _ = decode(data, &d, encoding_rs::WINDOWS_1252, policy);
            }
        }
        if let Ok(text) = std::str::from_utf8(data) {
            let esc = escape(text.as_bytes(), &d);
            let back = decode(&esc, &d, encoding_rs::UTF_8, EscapePolicy::default());
            assert_eq!(back, text, "escape/decode round trip");
        }
    }
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
