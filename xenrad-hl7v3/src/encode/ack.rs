//! MCCI_IN000002UV01 accept acknowledgements (HL7 v3 NE Transmission Infrastructure,
//! "Accept Level Acknowledgement"; MCCI_MT000200UV01).
//!
//! `acceptAckCode` of the received message decides whether an accept ack is sent:
//! AL = always, ER = only on error/reject, NE = never (absent = AL, as IHE requires AL).

use std::borrow::Cow;

use super::XmlWriter;
use crate::header::Header;
use crate::types::Ii;

/// The outcome being acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted (CA / AA).
    Accept,
    /// Error in the message (CE / AE).
    Error,
    /// Rejected, e.g. unsupported interaction or system unavailable (CR / AR).
    Reject,
}

/// Which acknowledgement code family to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckKind {
    /// Commit (accept-level) codes CA/CE/CR — the accept ack of enhanced mode; the default.
    #[default]
    Commit,
    /// Application codes AA/AE/AR (original mode; some IHE actors expect these).
    Application,
}

impl AckKind {
    /// The `acknowledgement/typeCode/@code` for an outcome.
    pub fn code(self, outcome: Outcome) -> &'static str {
        match (self, outcome) {
            (AckKind::Commit, Outcome::Accept) => "CA",
            (AckKind::Commit, Outcome::Error) => "CE",
            (AckKind::Commit, Outcome::Reject) => "CR",
            (AckKind::Application, Outcome::Accept) => "AA",
            (AckKind::Application, Outcome::Error) => "AE",
            (AckKind::Application, Outcome::Reject) => "AR",
        }
    }
}

/// One `acknowledgementDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckDetail {
    /// `typeCode`: E (error), W (warning) or I (information).
    pub type_code: &'static str,
    /// `code/@code` from AcknowledgementDetailCode (2.16.840.1.113883.5.1100), e.g. `SYN102`, `INTERR`.
    pub code: Option<String>,
    /// `text`.
    pub text: String,
    /// `location` (e.g. `line 3, column 7`, or an XPath).
    pub location: Option<String>,
}

impl AckDetail {
    /// An error detail with a text.
    pub fn error(text: impl Into<String>) -> Self {
        AckDetail {
            type_code: "E",
            code: None,
            text: text.into(),
            location: None,
        }
    }
    /// An error detail from a strict-pass error: code `SYN102` (ill-formed), location line/column.
    pub fn from_error(e: &crate::V3Error) -> Self {
        AckDetail {
            type_code: "E",
            code: Some("SYN102".to_owned()),
            text: e.message(),
            location: Some(format!("line {}, column {}", e.line, e.column)),
        }
    }
    /// Sets the code.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
}

/// Builds an MCCI_IN000002UV01 for a received message's [`Header`].
#[derive(Debug, Clone)]
pub struct AckBuilder<'h, 'a> {
    header: &'h Header<'a>,
    outcome: Outcome,
    kind: AckKind,
    details: Vec<AckDetail>,
    message_id: Option<Ii<'static>>,
    creation_time: Option<String>,
    processing_mode: &'static str,
}

impl<'h, 'a> AckBuilder<'h, 'a> {
    /// Starts an ack for `header` with the given outcome (commit codes by default).
    pub fn new(header: &'h Header<'a>, outcome: Outcome) -> Self {
        AckBuilder {
            header,
            outcome,
            kind: AckKind::Commit,
            details: Vec::new(),
            message_id: None,
            creation_time: None,
            processing_mode: "T",
        }
    }
    /// Chooses CA/CE/CR or AA/AE/AR.
    #[must_use]
    pub fn kind(mut self, kind: AckKind) -> Self {
        self.kind = kind;
        self
    }
    /// Adds an `acknowledgementDetail`.
    #[must_use]
    pub fn detail(mut self, d: AckDetail) -> Self {
        self.details.push(d);
        self
    }
    /// Sets the ack's own message id (default: the target's root with extension `ACK.<target
    /// extension>`, or `ACK` when the target has none: deterministic and distinct from the target).
    #[must_use]
    pub fn message_id(mut self, id: Ii<'static>) -> Self {
        self.message_id = Some(id);
        self
    }
    /// Sets `creationTime` (default: now, UTC, `YYYYMMDDHHMMSS`).
    #[must_use]
    pub fn creation_time(mut self, ts: impl Into<String>) -> Self {
        self.creation_time = Some(ts.into());
        self
    }

    /// Whether the received `acceptAckCode` asks for an accept ack with this outcome.
    pub fn is_requested(&self) -> bool {
        match self.header.accept_ack_code.as_deref() {
            Some("NE") => false,
            Some("ER") => self.outcome != Outcome::Accept,
            _ => true,
        }
    }

    /// Encodes the ack (regardless of `acceptAckCode`; see [`AckBuilder::is_requested`]).
    pub fn build(&self) -> String {
        let h = self.header;
        let target = h.message_id.clone().unwrap_or_default();
        let id = self.message_id.clone().unwrap_or_else(|| Ii {
            root: Some(Cow::Owned(
                target.root.as_deref().unwrap_or("2.25").to_owned(),
            )),
            extension: Some(Cow::Owned(match target.extension.as_deref() {
                Some(ext) => format!("ACK.{ext}"),
                None => "ACK".to_owned(),
            })),
            ..Ii::default()
        });
        let now;
        let ts = if let Some(t) = &self.creation_time {
            t.as_str()
        } else {
            now = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
            now.as_str()
        };
        let mut w = XmlWriter::new();
        w.open(
            "MCCI_IN000002UV01",
            &[
                ("xmlns", Some(crate::HL7_NS)),
                ("xmlns:xsi", Some(crate::xml::XSI_NS)),
                ("ITSVersion", Some("XML_1.0")),
            ],
        );
        w.ii("id", &id);
        w.empty("creationTime", &[("value", Some(ts))]);
        w.empty(
            "interactionId",
            &[
                ("root", Some("2.16.840.1.113883.1.6")),
                ("extension", Some("MCCI_IN000002UV01")),
            ],
        );
        w.empty(
            "processingCode",
            &[("code", Some(h.processing_code.as_deref().unwrap_or("P")))],
        );
        w.empty(
            "processingModeCode",
            &[("code", Some(self.processing_mode))],
        );
        w.empty("acceptAckCode", &[("code", Some("NE"))]);
        // The ack goes back to the sender, from the receiver (roles swapped).
        for (role, type_code, dev) in [
            ("receiver", "RCV", &h.sender),
            ("sender", "SND", &h.receiver),
        ] {
            w.open(role, &[("typeCode", Some(type_code))]);
            w.open(
                "device",
                &[
                    ("classCode", Some("DEV")),
                    ("determinerCode", Some("INSTANCE")),
                ],
            );
            match dev {
                Some(d) => w.ii("id", d),
                None => w.empty("id", &[("nullFlavor", Some("UNK"))]),
            }
            w.close("device");
            w.close(role);
        }
        w.open("acknowledgement", &[]);
        w.empty("typeCode", &[("code", Some(self.kind.code(self.outcome)))]);
        w.open("targetMessage", &[]);
        if h.message_id.is_some() {
            w.ii("id", &target);
        } else {
            w.empty("id", &[("nullFlavor", Some("UNK"))]);
        }
        w.close("targetMessage");
        for d in &self.details {
            w.open("acknowledgementDetail", &[("typeCode", Some(d.type_code))]);
            if let Some(c) = &d.code {
                w.empty(
                    "code",
                    &[
                        ("code", Some(c)),
                        ("codeSystem", Some("2.16.840.1.113883.5.1100")),
                    ],
                );
            }
            w.text_element("text", &[], &d.text);
            if let Some(l) = &d.location {
                w.text_element("location", &[], l);
            }
            w.close("acknowledgementDetail");
        }
        w.close("acknowledgement");
        w.close("MCCI_IN000002UV01");
        w.finish()
    }
}

/// The accept ack for a received message, or `None` when its `acceptAckCode` says not to send
/// one (NE; or ER with an accepting outcome). Commit codes (CA/CE/CR); use [`AckBuilder`] for
/// AA/AE/AR, explicit ids and times.
pub fn accept_ack(
    header: &Header<'_>,
    outcome: Outcome,
    detail: Option<&AckDetail>,
) -> Option<String> {
    let mut b = AckBuilder::new(header, outcome);
    if let Some(d) = detail {
        b = b.detail(d.clone());
    }
    b.is_requested().then(|| b.build())
}
