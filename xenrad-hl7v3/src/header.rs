//! Layer 2: the transmission wrapper (HL7 v3 NE Transmission Infrastructure, MCCI_MT000100UV01).
//!
//! [`Header`] is produced either by the fast [`header()`] pass — tokens only, attributes
//! read only on the wrapper elements, stops at the control act so the payload is never read —
//! or from a strict [`crate::Message`] with [`Header::from_root`].

use std::borrow::Cow;

use crate::error::{ErrorKind, V3Error};
use crate::types::Ii;
use crate::xml::lexer::{AttrStep, Lexer, Token, TokenSource};
use crate::xml::{Element, Tokenizer};

/// The transmission wrapper fields used for routing, de-duplication and acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header<'a> {
    /// Local name of the message root element, e.g. `PRPA_IN201301UV02`.
    pub interaction: &'a str,
    /// `id`: the message id (root/extension).
    pub message_id: Option<Ii<'a>>,
    /// `creationTime/@value`.
    pub creation_time: Option<Cow<'a, str>>,
    /// `interactionId` (root 2.16.840.1.113883.1.6 or …1.18, extension = interaction).
    pub interaction_id: Option<Ii<'a>>,
    /// `processingCode/@code` (P, D, T).
    pub processing_code: Option<Cow<'a, str>>,
    /// `processingModeCode/@code` (A, I, R, T).
    pub processing_mode_code: Option<Cow<'a, str>>,
    /// `acceptAckCode/@code` (AL, ER, NE).
    pub accept_ack_code: Option<Cow<'a, str>>,
    /// First `receiver/device/id`.
    pub receiver: Option<Ii<'a>>,
    /// First `sender/device/id`.
    pub sender: Option<Ii<'a>>,
    /// For acknowledgements: `acknowledgement/typeCode/@code`.
    pub ack_type_code: Option<Cow<'a, str>>,
    /// For acknowledgements: `acknowledgement/targetMessage/id`.
    pub ack_target: Option<Ii<'a>>,
    /// Local name of the control act wrapper (`controlActProcess`, or `controlActEvent` in the CA realm).
    pub control_act: Option<&'a str>,
    /// Trigger event: `code/@code` of the control act.
    pub trigger_event: Option<Cow<'a, str>>,
    /// Whether the message came inside a SOAP envelope.
    pub soap: bool,
    /// WS-Addressing `MessageID` of the SOAP envelope.
    pub wsa_message_id: Option<Cow<'a, str>>,
    /// WS-Addressing `Action` of the SOAP envelope.
    pub wsa_action: Option<Cow<'a, str>>,
}

impl<'a> Header<'a> {
    /// Reads the header from a strict message root element.
    pub fn from_root(root: &Element<'_, 'a>) -> Self {
        let mut h = Header {
            interaction: root.local_name(),
            ..Header::default()
        };
        for c in root.children() {
            match c.local_name() {
                "id" if h.message_id.is_none() => h.message_id = Some(Ii::from_element(&c)),
                "creationTime" => h.creation_time = c.attr("value"),
                "interactionId" => h.interaction_id = Some(Ii::from_element(&c)),
                "processingCode" => h.processing_code = c.attr("code"),
                "processingModeCode" => h.processing_mode_code = c.attr("code"),
                "acceptAckCode" => h.accept_ack_code = c.attr("code"),
                "receiver" if h.receiver.is_none() => {
                    h.receiver = c.path(&["device", "id"]).map(|e| Ii::from_element(&e));
                }
                "sender" if h.sender.is_none() => {
                    h.sender = c.path(&["device", "id"]).map(|e| Ii::from_element(&e));
                }
                "acknowledgement" if h.ack_type_code.is_none() => {
                    h.ack_type_code = c.child("typeCode").and_then(|t| t.attr("code"));
                    h.ack_target = c
                        .path(&["targetMessage", "id"])
                        .map(|e| Ii::from_element(&e));
                }
                "controlActProcess" | "controlActEvent" if h.control_act.is_none() => {
                    h.control_act = Some(c.local_name());
                    h.trigger_event = c.child("code").and_then(|t| t.attr("code"));
                }
                _ => {}
            }
        }
        h
    }

    /// The de-duplication key: (message id root, extension, sender device id root).
    pub fn dedup_key(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        let id = self.message_id.as_ref();
        (
            id.and_then(|i| i.root.as_deref()),
            id.and_then(|i| i.extension.as_deref()),
            self.sender.as_ref().and_then(|i| i.root.as_deref()),
        )
    }
}

/// Decoded attribute values by position, and whether the tag was self-closing.
type Values<'a, const N: usize> = ([Option<Cow<'a, str>>; N], bool);

/// Reads the attributes `names` of the current start tag in one pass over them (first
/// occurrence wins; values checked and decoded); returns them and whether the tag was empty.
fn attrs<'a, T: TokenSource<'a>, const N: usize>(
    input: &'a [u8],
    lx: &mut T,
    names: [&str; N],
) -> Result<Values<'a, N>, V3Error> {
    let mut out = [const { None }; N];
    loop {
        match lx.next_attr() {
            Ok(AttrStep::End { empty }) => return Ok((out, empty)),
            Ok(AttrStep::Attr(a)) => {
                if let Some(i) = names.iter().position(|&n| n == a.name)
                    && out[i].is_none()
                {
                    out[i] = Some(if a.plain {
                        Cow::Borrowed(a.value)
                    } else {
                        crate::xml::escape::unescape(a.value, true)
                    });
                }
            }
            Err((p, k)) => return Err(V3Error::at(input, p, k)),
        }
    }
}

/// What the header pass reads from a start tag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Nothing (attributes skipped unchecked).
    Skip,
    /// One attribute into a header field.
    Code(&'static str, Field),
    /// An II into a header field.
    Ii(Field),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    MessageId,
    CreationTime,
    InteractionId,
    Processing,
    ProcessingMode,
    AcceptAck,
    AckType,
    Receiver,
    Sender,
    AckTarget,
    Trigger,
}

impl<'a> Header<'a> {
    fn set_code(&mut self, f: Field, v: Option<Cow<'a, str>>) {
        match f {
            Field::CreationTime => self.creation_time = v,
            Field::Processing => self.processing_code = v,
            Field::ProcessingMode => self.processing_mode_code = v,
            Field::AcceptAck => self.accept_ack_code = v,
            Field::AckType => self.ack_type_code = v,
            _ => self.trigger_event = v,
        }
    }
    fn set_ii(&mut self, f: Field, v: Ii<'a>) {
        match f {
            Field::MessageId => self.message_id = Some(v),
            Field::InteractionId => self.interaction_id = Some(v),
            Field::Receiver => self.receiver = Some(v),
            Field::Sender => self.sender = Some(v),
            _ => self.ack_target = Some(v),
        }
    }
}

/// The fast header pass: reads the transmission wrapper (and a SOAP envelope's WS-Addressing
/// headers) and stops at the control act, without reading the payload. It checks the
/// well-formedness of what it reads but not namespaces; run [`crate::strict`] before acknowledging.
///
/// ```
/// let h = xenrad_hl7v3::header(br#"<MCCI_IN000002UV01 xmlns="urn:hl7-org:v3"><id root="1.2" extension="7"/>
///   <sender><device><id root="1.3"/></device></sender></MCCI_IN000002UV01>"#).unwrap();
/// assert_eq!(h.dedup_key(), (Some("1.2"), Some("7"), Some("1.3")));
/// ```
pub fn header(input: &[u8]) -> Result<Header<'_>, V3Error> {
    header_using(input, Tokenizer::default())
}

/// The fast header pass on the given tokenizer (see [`header()`]).
pub fn header_using(input: &[u8], tokenizer: Tokenizer) -> Result<Header<'_>, V3Error> {
    match tokenizer {
        Tokenizer::QuickXml => header_on::<crate::xml::qx::QxLexer<'_>>(input),
        Tokenizer::Handwritten => header_on::<Lexer<'_>>(input),
    }
}

fn header_on<'a, T: TokenSource<'a>>(input: &'a [u8]) -> Result<Header<'a>, V3Error> {
    // Validate UTF-8 only as far as the scan needs: up to the control act plus some slack.
    // If the scan cannot finish inside that prefix, validate and scan the whole input.
    if input.len() > PREFIX_SLACK
        && let Some(ca) = memchr::memmem::find(input, b"controlAct")
        && ca + PREFIX_SLACK < input.len()
    {
        let cut = ca + PREFIX_SLACK;
        let valid = match std::str::from_utf8(&input[..cut]) {
            Ok(s) => Some(s),
            // Only a character split by the cut: keep the valid part.
            Err(e) if e.error_len().is_none() => {
                std::str::from_utf8(&input[..e.valid_up_to()]).ok()
            }
            Err(_) => None,
        };
        if let Some(prefix) = valid
            && let Ok((h, true)) = scan::<T>(input, prefix)
        {
            return Ok(h);
        }
    }
    let Ok(src) = simdutf8::basic::from_utf8(input) else {
        let at = std::str::from_utf8(input)
            .err()
            .map_or(0, |e| e.valid_up_to());
        return Err(V3Error::at(input, at, ErrorKind::Utf8));
    };
    scan::<T>(input, src).map(|(h, _)| h)
}

/// Bytes validated past the start of the control act before the scan is expected to stop.
const PREFIX_SLACK: usize = 512;

/// Scans `src` (a UTF-8 prefix of `input`, or all of it); the flag says the scan stopped on a
/// definite condition (control act code or end of the message element) rather than end of input.
fn scan<'a, T: TokenSource<'a>>(
    input: &'a [u8],
    src: &'a str,
) -> Result<(Header<'a>, bool), V3Error> {
    let body = usize::from(src.starts_with('\u{FEFF}')) * 3;
    let mut lx = T::new(src, body);
    let mut h = Header::default();
    // Local names of open elements relative to the message root (index 0 = root); deeper levels are not tracked.
    let mut path: [&str; 4] = [""; 4];
    let mut depth: usize = 0; // document depth of the next start tag
    let mut root_depth: Option<usize> = None; // document depth of the message root
    let mut in_body = false;
    let mut wsa: Option<bool> = None; // Some(true) = inside MessageID, Some(false) = inside Action
    let syntax = |(p, k): (usize, ErrorKind)| V3Error::at(input, p, k);
    while let Some((before, tok)) = lx.next_token().map_err(syntax)? {
        match tok {
            Token::Doctype => return Err(V3Error::at(input, before, ErrorKind::Doctype)),
            Token::Start { qname, prefix_len } => {
                let name = if prefix_len == 0 {
                    qname
                } else {
                    &qname[prefix_len + 1..]
                };
                let this_depth = depth;
                let Some(rd) = root_depth else {
                    let empty = lx.skip_attrs().map_err(syntax)?;
                    if !empty {
                        depth += 1;
                    }
                    // Not yet inside the message: SOAP envelope handling.
                    if this_depth == 0 && name == "Envelope" {
                        h.soap = true;
                        continue;
                    }
                    if h.soap && this_depth == 1 {
                        in_body = name == "Body";
                        continue;
                    }
                    if h.soap && this_depth == 2 && !in_body {
                        wsa = match name {
                            "MessageID" => Some(true),
                            "Action" => Some(false),
                            _ => None,
                        };
                        continue;
                    }
                    if h.soap && !(in_body && this_depth == 2) {
                        continue;
                    }
                    // The message root: the document element, or the first child of soap:Body.
                    h.interaction = name;
                    root_depth = Some(this_depth);
                    if empty {
                        return Ok((h, true));
                    }
                    path[0] = name;
                    continue;
                };
                let rel = this_depth - rd;
                if rel < path.len() {
                    path[rel] = name;
                }
                let in_ca = matches!(path[1], "controlActProcess" | "controlActEvent");
                let read = match (rel, name) {
                    (1, "id") if h.message_id.is_none() => Read::Ii(Field::MessageId),
                    (1, "creationTime") => Read::Code("value", Field::CreationTime),
                    (1, "interactionId") => Read::Ii(Field::InteractionId),
                    (1, "processingCode") => Read::Code("code", Field::Processing),
                    (1, "processingModeCode") => Read::Code("code", Field::ProcessingMode),
                    (1, "acceptAckCode") => Read::Code("code", Field::AcceptAck),
                    (1, "controlActProcess" | "controlActEvent") => {
                        h.control_act = Some(name);
                        Read::Skip
                    }
                    (2, "code") if in_ca => Read::Code("code", Field::Trigger),
                    (2, _) if in_ca => return Ok((h, true)),
                    (2, "typeCode")
                        if path[1] == "acknowledgement" && h.ack_type_code.is_none() =>
                    {
                        Read::Code("code", Field::AckType)
                    }
                    (3, "id")
                        if path[1] == "receiver" && path[2] == "device" && h.receiver.is_none() =>
                    {
                        Read::Ii(Field::Receiver)
                    }
                    (3, "id")
                        if path[1] == "sender" && path[2] == "device" && h.sender.is_none() =>
                    {
                        Read::Ii(Field::Sender)
                    }
                    (3, "id")
                        if path[1] == "acknowledgement"
                            && path[2] == "targetMessage"
                            && h.ack_target.is_none() =>
                    {
                        Read::Ii(Field::AckTarget)
                    }
                    _ => Read::Skip,
                };
                let empty = match read {
                    Read::Skip => lx.skip_attrs().map_err(syntax)?,
                    Read::Code(attr, field) => {
                        let ([v], empty) = attrs(input, &mut lx, [attr])?;
                        h.set_code(field, v);
                        empty
                    }
                    Read::Ii(field) => {
                        let ([root, extension, assigning_authority_name, null_flavor], empty) =
                            attrs(
                                input,
                                &mut lx,
                                ["root", "extension", "assigningAuthorityName", "nullFlavor"],
                            )?;
                        h.set_ii(
                            field,
                            Ii {
                                root,
                                extension,
                                assigning_authority_name,
                                null_flavor,
                            },
                        );
                        empty
                    }
                };
                if read == Read::Code("code", Field::Trigger) {
                    return Ok((h, true));
                }
                if !empty {
                    depth += 1;
                } else if rel == 1 && h.control_act == Some(name) {
                    return Ok((h, true));
                }
            }
            Token::End(_) => {
                depth = depth.saturating_sub(1);
                wsa = None;
                if root_depth == Some(depth) {
                    return Ok((h, true));
                }
            }
            Token::Text(t, _) => {
                if let Some(is_id) = wsa {
                    let v = Some(Cow::Borrowed(t.trim()));
                    if is_id {
                        h.wsa_message_id = v;
                    } else {
                        h.wsa_action = v;
                    }
                }
            }
            Token::Decl(_) | Token::CData(_) | Token::Misc => {}
        }
    }
    if root_depth.is_none() {
        return Err(V3Error::at(
            input,
            src.len(),
            ErrorKind::NotAMessage("no message element".into()),
        ));
    }
    Ok((h, false))
}
