//! DICOM Upper Layer PDUs (PS3.8 §9.3): zero-copy decoding over `&[u8]` and encoding.
//!
//! [`Pdu::parse`] takes one complete PDU (header included) and returns a view that borrows
//! the input: AE titles, UIDs and PDV data are slices of it. [`reader::PduReader`] cuts
//! a byte stream into such PDUs incrementally and enforces the maximum length before
//! buffering anything.

pub mod encode;
pub mod reader;

/// Item and PDU type codes (PS3.8 §9.3.1, tables 9-11 … 9-26).
pub mod code {
    /// A-ASSOCIATE-RQ PDU.
    pub const ASSOCIATE_RQ: u8 = 0x01;
    /// A-ASSOCIATE-AC PDU.
    pub const ASSOCIATE_AC: u8 = 0x02;
    /// A-ASSOCIATE-RJ PDU.
    pub const ASSOCIATE_RJ: u8 = 0x03;
    /// P-DATA-TF PDU.
    pub const P_DATA_TF: u8 = 0x04;
    /// A-RELEASE-RQ PDU.
    pub const RELEASE_RQ: u8 = 0x05;
    /// A-RELEASE-RP PDU.
    pub const RELEASE_RP: u8 = 0x06;
    /// A-ABORT PDU.
    pub const ABORT: u8 = 0x07;
    /// Application Context item.
    pub const APPLICATION_CONTEXT: u8 = 0x10;
    /// Presentation Context item (request).
    pub const PRESENTATION_CONTEXT_RQ: u8 = 0x20;
    /// Presentation Context item (accept).
    pub const PRESENTATION_CONTEXT_AC: u8 = 0x21;
    /// Abstract Syntax sub-item.
    pub const ABSTRACT_SYNTAX: u8 = 0x30;
    /// Transfer Syntax sub-item.
    pub const TRANSFER_SYNTAX: u8 = 0x40;
    /// User Information item.
    pub const USER_INFORMATION: u8 = 0x50;
    /// Maximum Length sub-item (PS3.8 D.1).
    pub const MAX_LENGTH: u8 = 0x51;
    /// Implementation Class UID sub-item (PS3.7 D.3.3.2).
    pub const IMPLEMENTATION_CLASS_UID: u8 = 0x52;
    /// Asynchronous Operations Window sub-item (PS3.7 D.3.3.3).
    pub const ASYNC_OPS_WINDOW: u8 = 0x53;
    /// SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4).
    pub const ROLE_SELECTION: u8 = 0x54;
    /// Implementation Version Name sub-item (PS3.7 D.3.3.2).
    pub const IMPLEMENTATION_VERSION_NAME: u8 = 0x55;
    /// SOP Class Extended Negotiation sub-item (PS3.7 D.3.3.5).
    pub const SOP_CLASS_EXTENDED: u8 = 0x56;
    /// SOP Class Common Extended Negotiation sub-item (PS3.7 D.3.3.6).
    pub const SOP_CLASS_COMMON_EXTENDED: u8 = 0x57;
    /// User Identity Negotiation sub-item, request (PS3.7 D.3.3.7).
    pub const USER_IDENTITY_RQ: u8 = 0x58;
    /// User Identity Negotiation sub-item, accept (PS3.7 D.3.3.7).
    pub const USER_IDENTITY_AC: u8 = 0x59;
}

/// Size of the fixed PDU header: type, reserved, 4-byte big-endian length.
pub const PDU_HEADER_LEN: usize = 6;

/// The application context name every DICOM association uses (PS3.7 A.2.1).
pub const DICOM_APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

/// Why a PDU could not be decoded, with the byte offset into the PDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PDU at byte {offset}: {kind}")]
pub struct PduError {
    /// Offset of the offending byte from the start of the PDU.
    pub offset: usize,
    /// What was wrong.
    pub kind: PduErrorKind,
}

/// The kinds of PDU decoding failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduErrorKind {
    /// Input ends before the structure it announces.
    #[error("truncated ({needed} bytes needed, {available} available)")]
    Truncated {
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes that were there.
        available: usize,
    },
    /// PDU type byte not in PS3.8 table 9-11.
    #[error("unrecognized PDU type 0x{0:02X}")]
    UnknownPduType(u8),
    /// An item type that is not allowed at this place.
    #[error("unexpected item type 0x{0:02X}")]
    UnexpectedItem(u8),
    /// A PDU announces a length above the configured limit.
    #[error("PDU length {length} exceeds the limit {limit}")]
    TooLong {
        /// Announced length.
        length: u32,
        /// Limit in force.
        limit: u32,
    },
    /// A fixed-size field or PDU has the wrong length.
    #[error("bad length {0}")]
    BadLength(usize),
    /// A text field (AE title, UID) is not ASCII.
    #[error("text field is not ASCII")]
    NotAscii,
    /// A mandatory item is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// Trailing bytes after the announced PDU length.
    #[error("{0} trailing bytes after the PDU")]
    Trailing(usize),
}

fn err(offset: usize, kind: PduErrorKind) -> PduError {
    PduError { offset, kind }
}

/// A decoded PDU borrowing its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu<'a> {
    /// A-ASSOCIATE-RQ (PS3.8 §9.3.2).
    AssociateRq(AssociateRq<'a>),
    /// A-ASSOCIATE-AC (PS3.8 §9.3.3).
    AssociateAc(AssociateAc<'a>),
    /// A-ASSOCIATE-RJ (PS3.8 §9.3.4).
    AssociateRj(AssociateRj),
    /// P-DATA-TF (PS3.8 §9.3.5).
    PData(PData<'a>),
    /// A-RELEASE-RQ (PS3.8 §9.3.6).
    ReleaseRq,
    /// A-RELEASE-RP (PS3.8 §9.3.7).
    ReleaseRp,
    /// A-ABORT (PS3.8 §9.3.8).
    Abort(Abort),
}

/// A-ASSOCIATE-RQ contents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssociateRq<'a> {
    /// Protocol version bit field (bit 0 = version 1).
    pub protocol_version: u16,
    /// Called AE title, trailing/leading spaces removed.
    pub called_ae: &'a str,
    /// Calling AE title, trailing/leading spaces removed.
    pub calling_ae: &'a str,
    /// Application context name.
    pub application_context: &'a str,
    /// Proposed presentation contexts in the order received.
    pub presentation_contexts: Vec<PresentationContextRq<'a>>,
    /// User information sub-items.
    pub user: UserInformation<'a>,
}

/// A-ASSOCIATE-AC contents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssociateAc<'a> {
    /// Protocol version bit field.
    pub protocol_version: u16,
    /// Called AE title (echoed from the request, not to be tested per PS3.8).
    pub called_ae: &'a str,
    /// Calling AE title (echoed from the request).
    pub calling_ae: &'a str,
    /// Application context name.
    pub application_context: &'a str,
    /// Presentation context results.
    pub presentation_contexts: Vec<PresentationContextAc<'a>>,
    /// User information sub-items.
    pub user: UserInformation<'a>,
}

/// A proposed presentation context (item type 0x20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentationContextRq<'a> {
    /// Presentation context ID (odd, 1–255).
    pub id: u8,
    /// Abstract syntax (SOP class) UID.
    pub abstract_syntax: &'a str,
    /// Proposed transfer syntax UIDs in the requestor's order.
    pub transfer_syntaxes: Vec<&'a str>,
}

/// Result of a presentation context negotiation (PS3.8 table 9-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcResult {
    /// 0: acceptance.
    Acceptance,
    /// 1: user rejection.
    UserRejection,
    /// 2: no reason (provider rejection).
    NoReason,
    /// 3: abstract syntax not supported (provider rejection).
    AbstractSyntaxNotSupported,
    /// 4: transfer syntaxes not supported (provider rejection).
    TransferSyntaxesNotSupported,
    /// Any other value.
    Other(u8),
}

impl PcResult {
    /// Byte value on the wire.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Acceptance => 0,
            Self::UserRejection => 1,
            Self::NoReason => 2,
            Self::AbstractSyntaxNotSupported => 3,
            Self::TransferSyntaxesNotSupported => 4,
            Self::Other(b) => b,
        }
    }
    /// Decodes the wire byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Acceptance,
            1 => Self::UserRejection,
            2 => Self::NoReason,
            3 => Self::AbstractSyntaxNotSupported,
            4 => Self::TransferSyntaxesNotSupported,
            o => Self::Other(o),
        }
    }
}

/// An answered presentation context (item type 0x21).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentationContextAc<'a> {
    /// Presentation context ID.
    pub id: u8,
    /// Result/reason.
    pub result: PcResult,
    /// Accepted transfer syntax (meaningless unless accepted).
    pub transfer_syntax: &'a str,
}

/// User information item (0x50) and its sub-items (PS3.7 annex D.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInformation<'a> {
    /// Maximum length receivable of P-DATA-TF PDUs (0 = unlimited).
    pub max_pdu_length: Option<u32>,
    /// Implementation class UID.
    pub implementation_class_uid: Option<&'a str>,
    /// Implementation version name.
    pub implementation_version_name: Option<&'a str>,
    /// Asynchronous operations window: (max invoked, max performed).
    pub async_ops_window: Option<(u16, u16)>,
    /// SCP/SCU role selections.
    pub role_selections: Vec<RoleSelection<'a>>,
    /// SOP class extended negotiation items.
    pub sop_class_extended: Vec<SopClassExtended<'a>>,
    /// SOP class common extended negotiation items.
    pub sop_class_common_extended: Vec<SopClassCommonExtended<'a>>,
    /// User identity request.
    pub user_identity_rq: Option<UserIdentityRq<'a>>,
    /// User identity server response (AC only).
    pub user_identity_ac: Option<&'a [u8]>,
    /// Sub-items of unknown type, kept verbatim: (type, value).
    pub unknown: Vec<(u8, &'a [u8])>,
}

/// SCP/SCU role selection sub-item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleSelection<'a> {
    /// SOP class UID.
    pub sop_class_uid: &'a str,
    /// SCU role proposed/accepted.
    pub scu_role: bool,
    /// SCP role proposed/accepted.
    pub scp_role: bool,
}

/// SOP class extended negotiation sub-item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SopClassExtended<'a> {
    /// SOP class UID.
    pub sop_class_uid: &'a str,
    /// Service-class application information (opaque).
    pub info: &'a [u8],
}

/// SOP class common extended negotiation sub-item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SopClassCommonExtended<'a> {
    /// SOP class UID.
    pub sop_class_uid: &'a str,
    /// Service class UID.
    pub service_class_uid: &'a str,
    /// Related general SOP class UIDs.
    pub related_general_sop_classes: Vec<&'a str>,
}

/// User identity negotiation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserIdentityRq<'a> {
    /// Identity type (1 username, 2 username+passcode, 3 Kerberos, 4 SAML, 5 JWT).
    pub identity_type: u8,
    /// Whether the requestor asks for a positive response.
    pub positive_response_requested: bool,
    /// Primary field (user name or token).
    pub primary: &'a [u8],
    /// Secondary field (passcode), possibly empty.
    pub secondary: &'a [u8],
}

/// A-ASSOCIATE-RJ fields (PS3.8 table 9-21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssociateRj {
    /// 1 rejected-permanent, 2 rejected-transient.
    pub result: u8,
    /// 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation).
    pub source: u8,
    /// Reason/diagnostic.
    pub reason: u8,
}

/// A-ABORT fields (PS3.8 table 9-26).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort {
    /// 0 service-user, 2 service-provider.
    pub source: u8,
    /// Reason/diagnostic when the source is the provider.
    pub reason: u8,
}

/// A-ABORT reasons used by the provider (PS3.8 table 9-26).
pub mod abort_reason {
    /// Reason not specified.
    pub const NOT_SPECIFIED: u8 = 0;
    /// Unrecognized PDU.
    pub const UNRECOGNIZED_PDU: u8 = 1;
    /// Unexpected PDU.
    pub const UNEXPECTED_PDU: u8 = 2;
    /// Unrecognized PDU parameter.
    pub const UNRECOGNIZED_PDU_PARAMETER: u8 = 4;
    /// Unexpected PDU parameter.
    pub const UNEXPECTED_PDU_PARAMETER: u8 = 5;
    /// Invalid PDU parameter value.
    pub const INVALID_PDU_PARAMETER: u8 = 6;
}

/// P-DATA-TF contents: one or more PDVs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PData<'a> {
    /// The presentation data values in order.
    pub pdvs: Vec<Pdv<'a>>,
}

/// One presentation data value item (PS3.8 §9.3.5.1, annex E.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pdv<'a> {
    /// Presentation context ID.
    pub pc_id: u8,
    /// Message control header bit 0: command (true) or data set.
    pub is_command: bool,
    /// Message control header bit 1: last fragment.
    pub is_last: bool,
    /// The fragment bytes.
    pub data: &'a [u8],
}

/// Byte offset of the first PDV item (after PDU header) and its parsed header, for
/// callers that walk PDVs without building a [`PData`].
pub fn pdv_iter(body: &[u8], base: usize) -> PdvIter<'_> {
    PdvIter { body, pos: 0, base }
}

/// Iterator over the PDV items of a P-DATA-TF body.
#[derive(Debug, Clone)]
pub struct PdvIter<'a> {
    body: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Iterator for PdvIter<'a> {
    type Item = Result<Pdv<'a>, PduError>;
    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.body[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let off = self.base + self.pos;
        if rest.len() < 6 {
            self.pos = self.body.len();
            return Some(Err(err(
                off,
                PduErrorKind::Truncated {
                    needed: 6,
                    available: rest.len(),
                },
            )));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        // PS3.8 §9.3.5.1: the item length counts the context ID and the control header.
        if len < 2 || len > rest.len() - 4 {
            self.pos = self.body.len();
            return Some(Err(err(
                off,
                if len < 2 {
                    PduErrorKind::BadLength(len)
                } else {
                    PduErrorKind::Truncated {
                        needed: len + 4,
                        available: rest.len(),
                    }
                },
            )));
        }
        let mch = rest[5];
        let pdv = Pdv {
            pc_id: rest[4],
            is_command: mch & 1 != 0,
            is_last: mch & 2 != 0,
            data: &rest[6..4 + len],
        };
        self.pos += 4 + len;
        Some(Ok(pdv))
    }
}

/// Reads the type and length of a PDU header (PS3.8 §9.3.1), or `None` if fewer than 6 bytes.
pub fn peek_header(input: &[u8]) -> Option<(u8, u32)> {
    if input.len() < PDU_HEADER_LEN {
        return None;
    }
    Some((
        input[0],
        u32::from_be_bytes([input[2], input[3], input[4], input[5]]),
    ))
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PduError> {
        if self.buf.len() - self.pos < n {
            return Err(err(
                self.base + self.pos,
                PduErrorKind::Truncated {
                    needed: n,
                    available: self.buf.len() - self.pos,
                },
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PduError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PduError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn offset(&self) -> usize {
        self.base + self.pos
    }
    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    /// Reads one variable item header (type, reserved, 2-byte length) and its value.
    fn item(&mut self) -> Result<(u8, usize, &'a [u8]), PduError> {
        let off = self.offset();
        let t = self.u8()?;
        self.u8()?;
        let len = self.u16()? as usize;
        let v = self.take(len)?;
        Ok((t, off, v))
    }
}

/// Interprets a text field: ASCII, surrounding spaces and NULs removed (PS3.8 §9.3.2, PS3.5 §9.1).
fn text(bytes: &[u8], offset: usize) -> Result<&str, PduError> {
    if !bytes.is_ascii() {
        return Err(err(offset, PduErrorKind::NotAscii));
    }
    let s = std::str::from_utf8(bytes).map_err(|_| err(offset, PduErrorKind::NotAscii))?;
    Ok(s.trim_matches(|c| c == ' ' || c == '\0'))
}

impl<'a> Pdu<'a> {
    /// Decodes one complete PDU; `input` must hold exactly the PDU (header + announced length).
    pub fn parse(input: &'a [u8]) -> Result<Self, PduError> {
        let (ty, len) = peek_header(input).ok_or_else(|| {
            err(
                0,
                PduErrorKind::Truncated {
                    needed: PDU_HEADER_LEN,
                    available: input.len(),
                },
            )
        })?;
        let total = PDU_HEADER_LEN as u64 + u64::from(len);
        if (input.len() as u64) < total {
            return Err(err(
                input.len(),
                PduErrorKind::Truncated {
                    needed: total as usize,
                    available: input.len(),
                },
            ));
        }
        if (input.len() as u64) > total {
            return Err(err(
                total as usize,
                PduErrorKind::Trailing(input.len() - total as usize),
            ));
        }
        let body = &input[PDU_HEADER_LEN..];
        match ty {
            code::ASSOCIATE_RQ => parse_associate(body, true).map(|(h, pcs, ac, user)| {
                Pdu::AssociateRq(AssociateRq {
                    protocol_version: h.0,
                    called_ae: h.1,
                    calling_ae: h.2,
                    application_context: ac,
                    presentation_contexts: pcs.0,
                    user,
                })
            }),
            code::ASSOCIATE_AC => parse_associate(body, false).map(|(h, pcs, ac, user)| {
                Pdu::AssociateAc(AssociateAc {
                    protocol_version: h.0,
                    called_ae: h.1,
                    calling_ae: h.2,
                    application_context: ac,
                    presentation_contexts: pcs.1,
                    user,
                })
            }),
            code::ASSOCIATE_RJ => {
                fixed(body, 4)?;
                Ok(Pdu::AssociateRj(AssociateRj {
                    result: body[1],
                    source: body[2],
                    reason: body[3],
                }))
            }
            code::P_DATA_TF => {
                let mut pdvs = Vec::new();
                for pdv in pdv_iter(body, PDU_HEADER_LEN) {
                    pdvs.push(pdv?);
                }
                if pdvs.is_empty() {
                    return Err(err(PDU_HEADER_LEN, PduErrorKind::Missing("PDV item")));
                }
                Ok(Pdu::PData(PData { pdvs }))
            }
            code::RELEASE_RQ => fixed(body, 4).map(|()| Pdu::ReleaseRq),
            code::RELEASE_RP => fixed(body, 4).map(|()| Pdu::ReleaseRp),
            code::ABORT => {
                fixed(body, 4)?;
                Ok(Pdu::Abort(Abort {
                    source: body[2],
                    reason: body[3],
                }))
            }
            other => Err(err(0, PduErrorKind::UnknownPduType(other))),
        }
    }
}

fn fixed(body: &[u8], n: usize) -> Result<(), PduError> {
    if body.len() == n {
        Ok(())
    } else {
        Err(err(2, PduErrorKind::BadLength(body.len())))
    }
}

type AssocParts<'a> = (
    (u16, &'a str, &'a str),
    (
        Vec<PresentationContextRq<'a>>,
        Vec<PresentationContextAc<'a>>,
    ),
    &'a str,
    UserInformation<'a>,
);

/// Parses the body of an A-ASSOCIATE-RQ/AC (PS3.8 tables 9-11 and 9-17).
fn parse_associate(body: &[u8], rq: bool) -> Result<AssocParts<'_>, PduError> {
    let mut c = Cursor {
        buf: body,
        pos: 0,
        base: PDU_HEADER_LEN,
    };
    let version = c.u16()?;
    c.take(2)?;
    let off = c.offset();
    let called = text(c.take(16)?, off)?;
    let off = c.offset();
    let calling = text(c.take(16)?, off)?;
    c.take(32)?;
    let mut app_ctx = None;
    let mut pcs_rq = Vec::new();
    let mut pcs_ac = Vec::new();
    let mut user = None;
    while !c.is_empty() {
        let (t, off, v) = c.item()?;
        match t {
            code::APPLICATION_CONTEXT => app_ctx = Some(text(v, off + 4)?),
            code::PRESENTATION_CONTEXT_RQ if rq => pcs_rq.push(parse_pc_rq(v, off + 4)?),
            code::PRESENTATION_CONTEXT_AC if !rq => pcs_ac.push(parse_pc_ac(v, off + 4)?),
            code::USER_INFORMATION => user = Some(parse_user(v, off + 4)?),
            // PS3.8 §9.3.2: unknown item types are an unrecognized PDU parameter.
            other => return Err(err(off, PduErrorKind::UnexpectedItem(other))),
        }
    }
    let app_ctx = app_ctx.ok_or(err(
        PDU_HEADER_LEN,
        PduErrorKind::Missing("application context"),
    ))?;
    Ok((
        (version, called, calling),
        (pcs_rq, pcs_ac),
        app_ctx,
        user.unwrap_or_default(),
    ))
}

fn parse_pc_rq(v: &[u8], base: usize) -> Result<PresentationContextRq<'_>, PduError> {
    let mut c = Cursor {
        buf: v,
        pos: 0,
        base,
    };
    let id = c.u8()?;
    c.take(3)?;
    let mut abstract_syntax = None;
    let mut transfer_syntaxes = Vec::new();
    while !c.is_empty() {
        let (t, off, v) = c.item()?;
        match t {
            code::ABSTRACT_SYNTAX => abstract_syntax = Some(text(v, off + 4)?),
            code::TRANSFER_SYNTAX => transfer_syntaxes.push(text(v, off + 4)?),
            other => return Err(err(off, PduErrorKind::UnexpectedItem(other))),
        }
    }
    Ok(PresentationContextRq {
        id,
        abstract_syntax: abstract_syntax
            .ok_or(err(base, PduErrorKind::Missing("abstract syntax")))?,
        transfer_syntaxes,
    })
}

fn parse_pc_ac(v: &[u8], base: usize) -> Result<PresentationContextAc<'_>, PduError> {
    let mut c = Cursor {
        buf: v,
        pos: 0,
        base,
    };
    let id = c.u8()?;
    c.u8()?;
    let result = PcResult::from_byte(c.u8()?);
    c.u8()?;
    let mut transfer_syntax = "";
    while !c.is_empty() {
        let (t, off, v) = c.item()?;
        match t {
            code::TRANSFER_SYNTAX => transfer_syntax = text(v, off + 4)?,
            other => return Err(err(off, PduErrorKind::UnexpectedItem(other))),
        }
    }
    Ok(PresentationContextAc {
        id,
        result,
        transfer_syntax,
    })
}

fn len_prefixed<'a>(c: &mut Cursor<'a>) -> Result<&'a [u8], PduError> {
    let n = c.u16()? as usize;
    c.take(n)
}

fn parse_user(v: &[u8], base: usize) -> Result<UserInformation<'_>, PduError> {
    let mut c = Cursor {
        buf: v,
        pos: 0,
        base,
    };
    let mut u = UserInformation::default();
    while !c.is_empty() {
        let (t, off, v) = c.item()?;
        let mut s = Cursor {
            buf: v,
            pos: 0,
            base: off + 4,
        };
        match t {
            code::MAX_LENGTH => {
                if v.len() != 4 {
                    return Err(err(off, PduErrorKind::BadLength(v.len())));
                }
                u.max_pdu_length = Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
            }
            code::IMPLEMENTATION_CLASS_UID => u.implementation_class_uid = Some(text(v, off + 4)?),
            code::IMPLEMENTATION_VERSION_NAME => {
                u.implementation_version_name = Some(text(v, off + 4)?);
            }
            code::ASYNC_OPS_WINDOW => u.async_ops_window = Some((s.u16()?, s.u16()?)),
            code::ROLE_SELECTION => {
                let o = s.offset();
                let uid = text(len_prefixed(&mut s)?, o)?;
                u.role_selections.push(RoleSelection {
                    sop_class_uid: uid,
                    scu_role: s.u8()? == 1,
                    scp_role: s.u8()? == 1,
                });
            }
            code::SOP_CLASS_EXTENDED => {
                let o = s.offset();
                let uid = text(len_prefixed(&mut s)?, o)?;
                u.sop_class_extended.push(SopClassExtended {
                    sop_class_uid: uid,
                    info: &v[s.pos..],
                });
            }
            code::SOP_CLASS_COMMON_EXTENDED => {
                let o = s.offset();
                let sop = text(len_prefixed(&mut s)?, o)?;
                let o = s.offset();
                let svc = text(len_prefixed(&mut s)?, o)?;
                let o = s.offset();
                let related = len_prefixed(&mut s)?;
                let mut r = Cursor {
                    buf: related,
                    pos: 0,
                    base: o + 2,
                };
                let mut rel = Vec::new();
                while !r.is_empty() {
                    let o = r.offset();
                    rel.push(text(len_prefixed(&mut r)?, o)?);
                }
                u.sop_class_common_extended.push(SopClassCommonExtended {
                    sop_class_uid: sop,
                    service_class_uid: svc,
                    related_general_sop_classes: rel,
                });
            }
            code::USER_IDENTITY_RQ => {
                let identity_type = s.u8()?;
                let positive = s.u8()? == 1;
                let primary = len_prefixed(&mut s)?;
                let secondary = if s.is_empty() {
                    &[][..]
                } else {
                    len_prefixed(&mut s)?
                };
                u.user_identity_rq = Some(UserIdentityRq {
                    identity_type,
                    positive_response_requested: positive,
                    primary,
                    secondary,
                });
            }
            code::USER_IDENTITY_AC => u.user_identity_ac = Some(len_prefixed(&mut s)?),
            other => u.unknown.push((other, v)),
        }
    }
    Ok(u)
}
