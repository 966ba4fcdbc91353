//! Layer 2b: the strict message — SOAP 1.2 unwrapping, the transmission wrapper, the control act
//! wrapper (`controlActProcess`, or `controlActEvent` in the Canadian realm) and payload access.

use crate::error::{ErrorKind, V3Error};
use crate::header::Header;
use crate::types::Coded;
use crate::xml::{Document, Element, Limits};

/// The HL7 v3 namespace.
pub const HL7_NS: &str = "urn:hl7-org:v3";
/// SOAP 1.2 envelope namespace.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// SOAP 1.1 envelope namespace.
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// WS-Addressing 1.0 namespace.
pub const WSA_NS: &str = "http://www.w3.org/2005/08/addressing";

/// A strictly parsed HL7 v3 message (or any other well-formed document, such as a CDA
/// `ClinicalDocument`, available generically through [`Message::root`]).
#[derive(Debug, Clone)]
pub struct Message<'a> {
    doc: Document<'a>,
    /// Node index of the message element (the document element, or the SOAP body's child).
    root_offset: usize,
    header: Header<'a>,
}

/// Runs the strict pass with the default [`Limits`] and reads the transmission wrapper.
///
/// Accepts any well-formed namespace-valid document; a SOAP envelope is unwrapped to the first
/// element of its `Body`. Errors carry line and column.
///
/// ```
/// let err = xenrad_hl7v3::strict(b"<a xmlns:x='u'>\n  <y:b/></a>").unwrap_err();
/// assert_eq!((err.line, err.column), (2, 3));
/// assert!(err.to_string().contains("prefix \"y\""));
/// ```
pub fn strict(input: &[u8]) -> Result<Message<'_>, V3Error> {
    strict_with(input, &Limits::default())
}

/// Runs the strict pass with explicit limits.
pub fn strict_with<'a>(input: &'a [u8], limits: &Limits) -> Result<Message<'a>, V3Error> {
    let doc = Document::parse_with(input, limits)?;
    Message::from_document(doc)
}

fn is_soap(e: &Element<'_, '_>, local: &str) -> bool {
    e.local_name() == local && matches!(e.namespace(), SOAP12_NS | SOAP11_NS)
}

impl<'a> Message<'a> {
    /// Wraps a parsed document, unwrapping a SOAP envelope.
    pub fn from_document(doc: Document<'a>) -> Result<Self, V3Error> {
        let root = doc.root();
        let (msg_root, wsa) = if is_soap(&root, "Envelope") {
            let body = root
                .children()
                .find(|c| is_soap(c, "Body"))
                .ok_or_else(|| {
                    V3Error::at(
                        doc.source().as_bytes(),
                        root.offset(),
                        ErrorKind::NotAMessage("SOAP envelope without Body".into()),
                    )
                })?;
            let first = body.children().next().ok_or_else(|| {
                V3Error::at(
                    doc.source().as_bytes(),
                    body.offset(),
                    ErrorKind::NotAMessage("empty SOAP Body".into()),
                )
            })?;
            let hdr = root.children().find(|c| is_soap(c, "Header"));
            let get = |name: &str| {
                hdr.and_then(|h| {
                    h.children()
                        .find(|c| c.local_name() == name && c.namespace() == WSA_NS)
                })
                .map(|e| match e.text() {
                    std::borrow::Cow::Borrowed(b) => std::borrow::Cow::Borrowed(b.trim()),
                    std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(o.trim().to_owned()),
                })
            };
            (first, Some((get("MessageID"), get("Action"))))
        } else {
            (root, None)
        };
        let mut header = Header::from_root(&msg_root);
        if let Some((mid, action)) = wsa {
            header.soap = true;
            header.wsa_message_id = mid;
            header.wsa_action = action;
        }
        let root_offset = msg_root.offset();
        Ok(Message {
            doc,
            root_offset,
            header,
        })
    }

    /// The parsed document (the SOAP envelope when there was one).
    pub fn document(&self) -> &Document<'a> {
        &self.doc
    }

    /// The message element (SOAP unwrapped).
    pub fn root(&self) -> Element<'_, 'a> {
        let r = self.doc.root();
        if r.offset() == self.root_offset {
            return r;
        }
        // The SOAP body's first child.
        r.children()
            .find(|c| is_soap(c, "Body"))
            .and_then(|b| b.children().next())
            .unwrap_or(r)
    }

    /// The transmission wrapper.
    pub fn header(&self) -> &Header<'a> {
        &self.header
    }

    /// Whether the message element is in the HL7 v3 namespace.
    pub fn is_hl7(&self) -> bool {
        self.root().namespace() == HL7_NS
    }

    /// The control act wrapper (`controlActProcess` or `controlActEvent`).
    pub fn control_act(&self) -> Option<ControlAct<'_, 'a>> {
        self.root()
            .children()
            .find(|c| matches!(c.local_name(), "controlActProcess" | "controlActEvent"))
            .map(|elem| ControlAct { elem })
    }
}

/// The control act wrapper (MFMI_MT700701UV01 / QUQI_MT021001UV01 family).
#[derive(Debug, Clone, Copy)]
pub struct ControlAct<'d, 'a> {
    elem: Element<'d, 'a>,
}

impl<'d, 'a> ControlAct<'d, 'a> {
    /// The element itself.
    pub fn element(&self) -> Element<'d, 'a> {
        self.elem
    }
    /// The trigger event `code`.
    pub fn code(&self) -> Option<Coded<'d, 'a>> {
        self.elem.child("code").map(Coded::new)
    }
    /// `subject` children (the payload of registry events and query responses).
    pub fn subjects(&self) -> impl Iterator<Item = Element<'d, 'a>> + use<'d, 'a> {
        self.elem.children_named("subject")
    }
    /// `queryByParameter` (queries and query responses).
    pub fn query_by_parameter(&self) -> Option<Element<'d, 'a>> {
        self.elem.child("queryByParameter")
    }
    /// `queryAck` (query responses).
    pub fn query_ack(&self) -> Option<Element<'d, 'a>> {
        self.elem.child("queryAck")
    }
}
