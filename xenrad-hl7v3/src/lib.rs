//! Borrowed, strict HL7 v3 XML messaging (XML ITS 1.0, Normative Edition transmission and
//! control act wrappers) with MCCI accept acknowledgements. Sans-IO: bytes in, views and bytes out.
//!
//! Layers (one module each):
//! - [`xml`]: the strict XML pass — well-formedness, every attribute parsed, prefixes resolved,
//!   DOCTYPE rejected, [`Limits`] — building a borrowed document arena.
//! - [`header`]: the transmission wrapper ([`Header`]) from either the fast [`header()`] pass
//!   (stops at the control act, does not read the payload) or a strict [`Message`].
//! - [`message`]: SOAP 1.2 unwrapping, the control act wrapper and generic payload access.
//! - [`types`]: borrowed data-type views (II, CD family, PN, AD, TEL, TS, IVL_TS).
//! - [`payload`]: interaction payload views (PRPA patient registry messages).
//! - [`encode`]: MCCI_IN000002UV01 accept acks and PRPA patient message encoders.
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
pub use header::{Header, header};
pub use message::{HL7_NS, Message, strict, strict_with};
pub use xml::{Document, Element, Limits};

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[doc(hidden)]
pub mod fuzzing {
    /// Fuzz entry point `strict`: strict pass, header, typed and patient views, ack encoding,
    /// and the fast header pass, on arbitrary bytes. Must never panic.
    pub fn strict(data: &[u8]) {
        let fast = crate::header(data);
        if let Ok(msg) = crate::strict(data) {
            let h = msg.header();
            // A document the strict pass accepts must also pass the fast header pass.
            assert!(
                fast.is_ok(),
                "strict accepted but header pass failed: {fast:?}"
            );
            for p in msg.patients() {
                let rec = p.to_record();
                let _ = rec;
            }
            crate::payload::touch_all(msg.document().root());
            if let Some(ack) = crate::accept_ack(
                h,
                crate::Outcome::Error,
                Some(&crate::AckDetail::error("x")),
            ) {
                let re = crate::strict(ack.as_bytes()).expect("our own ack must parse");
                assert_eq!(re.header().interaction, "MCCI_IN000002UV01");
            }
        }
    }
}
