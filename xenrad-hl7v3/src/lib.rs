//! Borrowed, strict HL7 v3 XML messaging (XML ITS 1.0, Normative Edition transmission and
//! control act wrappers) with MCCI accept acknowledgements. Sans-IO: bytes in, views and bytes out.
//!
//! Layers (one module each):
//! - [`xml`]: the strict XML pass — well-formedness, every attribute parsed, prefixes resolved,
//!   DOCTYPE rejected, [`Limits`] — building a borrowed document arena, on the crate's own
//!   tokenizer or quick-xml's ([`Tokenizer`]).
//! - [`header`](mod@header): the transmission wrapper ([`Header`]) from either the fast [`header()`] pass
//!   (stops at the control act, does not read the payload) or a strict [`Message`].
//! - [`message`]: SOAP 1.2 unwrapping, the control act wrapper and generic payload access.
//! - [`types`]: borrowed data-type views (II, CD family, PN, AD, TEL, TS, IVL_TS).
//! - [`payload`]: interaction payload views (PRPA patient registry messages, PDQ/PIX queries,
//!   the Canadian client registry).
//! - [`encode`]: MCCI_IN000002UV01 accept acks, PRPA patient message encoders and PDQ/PIX query
//!   and response encoders.
//!
//! ```
//! let xml = br#"<PRPA_IN201301UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">
//!   <id root="1.2.3" extension="42"/><creationTime value="20240101120000"/>
//!   <interactionId root="2.16.840.1.113883.1.6" extension="PRPA_IN201301UV02"/>
//!   <processingCode code="P"/><processingModeCode code="T"/><acceptAckCode code="AL"/>
//!   <receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE"><id root="1.9"/></device></receiver>
//!   <sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE"><id root="1.8"/></device></sender>
//!   <controlActProcess classCode="CACT" moodCode="EVN"><code code="PRPA_TE201301UV02"/></controlActProcess>
//! </PRPA_IN201301UV02>"#;
//! let msg = xenrad_hl7v3::strict(xml).unwrap();
//! let h = msg.header();
//! assert_eq!(h.interaction, "PRPA_IN201301UV02");
//! assert_eq!(h.message_id.as_ref().unwrap().extension.as_deref(), Some("42"));
//! let ack = xenrad_hl7v3::accept_ack(h, xenrad_hl7v3::Outcome::Accept, None).unwrap();
//! assert!(xenrad_hl7v3::strict(ack.as_bytes()).unwrap().header().interaction == "MCCI_IN000002UV01");
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod encode;
pub mod error;
pub mod header;
pub mod message;
pub mod payload;
#[doc(hidden)]
pub mod testgen;
pub mod types;
pub mod xml;

pub use encode::ack::{AckBuilder, AckDetail, AckKind, Outcome, accept_ack};
pub use error::{ErrorKind, V3Error};
pub use header::{Header, header, header_using};
pub use message::{HL7_NS, Message, strict, strict_with};
pub use xml::{Document, Element, Limits, Tokenizer};

/// The README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[cfg(any(fuzzing, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing {
    /// Fuzz entry point `strict`: the fast header pass, the strict pass on both tokenizers
    /// (which must agree on the verdict), every typed view on every element, patient and query
    /// views and records, and ack encoding, on arbitrary bytes. Must never panic; an ack we
    /// encode must itself pass the strict pass.
    pub fn strict(data: &[u8]) {
        use crate::xml::{Document, Limits, Tokenizer};
        let _ = crate::header(data);
        let _ = crate::header_using(data, Tokenizer::QuickXml);
        // Both tokenizers must agree on well-formedness (the XML level; `strict` adds
        // message-level checks such as a SOAP envelope without a Body on top of it).
        let qx = Document::parse_using(data, &Limits::default(), Tokenizer::QuickXml);
        let hw = Document::parse_using(data, &Limits::default(), Tokenizer::Handwritten);
        assert_eq!(
            qx.is_err(),
            hw.is_err(),
            "tokenizers disagree: quick-xml {:?} / hand-written {:?}",
            qx.as_ref().err(),
            hw.as_ref().err()
        );
        let verdict = crate::strict(data);
        let Ok(msg) = verdict else { return };
        let h = msg.header();
        for p in msg.patients() {
            let _ = p.to_record();
        }
        let _ = msg.control_act().map(|c| {
            (
                c.code().map(|c| c.code()),
                c.query_by_parameter(),
                c.query_ack(),
            )
        });
        if let Some(q) = msg.query() {
            let _ = (
                q.query_id(),
                q.names().count(),
                q.gender(),
                q.birth_time(),
                q.patient_ids().count(),
            );
            let _ = (
                q.addresses().count(),
                q.data_sources().count(),
                q.other_ids_scoping_organizations().count(),
            );
        }
        let _ = (msg.query_ack(), msg.query_continuation());
        let _ = crate::encode::query::QueryMessage::from_message(&msg).encode();
        crate::payload::touch_all(msg.document().root());
        let detail = crate::AckDetail::error("x");
        let ack = crate::AckBuilder::new(h, crate::Outcome::Error)
            .detail(detail)
            .creation_time("20240101")
            .build();
        let re = crate::strict(ack.as_bytes()).expect("our own ack must pass the strict pass");
        let rh = re.header();
        assert_eq!(rh.interaction, "MCCI_IN000002UV01");
        if h.message_id.is_some() {
            assert_eq!(
                rh.ack_target, h.message_id,
                "ack must target the message id"
            );
        }
        if h.sender.is_some() {
            assert_eq!(rh.receiver, h.sender, "ack goes back to the sender");
        }
    }
}
