//! Layer 2: the transmission wrapper (HL7 v3 NE Transmission Infrastructure, MCCI_MT000100UV01).
//!
//! [`Header`] is produced either by the fast [`header()`] pass — tokens only, attributes
//! read only on the wrapper elements, stops at the control act so the payload is never read —
//! or from a strict [`crate::Message`] with [`Header::from_root`].

use std::borrow::Cow;

use crate::error::{ErrorKind, V3Error};
use crate::types::Ii;
use crate::xml::lexer::{Lexer, Token, TokenSource};
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

/// Reads the attributes `names` of one start tag in a single pass over its attribute region
/// (first occurrence wins; the values are checked and decoded).
fn attrs<'a, T: TokenSource<'a>, const N: usize>(
    src: &'a str,
    attrs: &'a str,
    attrs_offset: usize,
    names: [&str; N],
) -> Result<[Option<Cow<'a, str>>; N], V3Error> {
    let mut out = [const { None }; N];
    for a in T::attributes(attrs, attrs_offset) {
        let (key, value, voff) = a.map_err(|(p, k)| V3Error::at(src.as_bytes(), p, k))?;
        let Some(i) = names.iter().position(|&n| n == key) else {
            continue;
        };
        if out[i].is_some() {
            continue;
        }
        if let Err((p, what)) = crate::xml::escape::check_attr_value(value) {
            return Err(V3Error::at(
                src.as_bytes(),
                voff + p,
                ErrorKind::UndefinedEntity(what),
            ));
        }
        out[i] = Some(crate::xml::escape::unescape(value, true));
    }
    Ok(out)
}

fn attr<'a, T: TokenSource<'a>>(
    src: &'a str,
    raw: &'a str,
    attrs_offset: usize,
    name: &str,
) -> Result<Option<Cow<'a, str>>, V3Error> {
    let [v] = attrs::<T, 1>(src, raw, attrs_offset, [name])?;
    Ok(v)
}

fn ii<'a, T: TokenSource<'a>>(src: &'a str, raw: &'a str, at: usize) -> Result<Ii<'a>, V3Error> {
    let [root, extension, assigning_authority_name, null_flavor] = attrs::<T, 4>(
        src,
        raw,
        at,
        ["root", "extension", "assigningAuthorityName", "nullFlavor"],
    )?;
    Ok(Ii {
        root,
        extension,
        assigning_authority_name,
        null_flavor,
    })
}

fn local(qname: &str) -> &str {
    // Names are short: a forward byte scan beats `rsplit_once`'s reverse memchr set-up.
    match qname.bytes().position(|b| b == b':') {
        Some(p) => &qname[p + 1..],
        None => qname,
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
    let src = std::str::from_utf8(input)
        .map_err(|e| V3Error::at(input, e.valid_up_to(), ErrorKind::Utf8))?;
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
            Token::Start {
                qname,
                attrs,
                attrs_offset: at,
                empty,
            } => {
                let name = local(qname);
                let this_depth = depth;
                if !empty {
                    depth += 1;
                }
                let Some(rd) = root_depth else {
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
                match (rel, name) {
                    (1, "id") if h.message_id.is_none() => h.message_id = Some(ii::<T>(src, attrs, at)?),
                    (1, "creationTime") => h.creation_time = attr::<T>(src, attrs, at, "value")?,
                    (1, "interactionId") => h.interaction_id = Some(ii::<T>(src, attrs, at)?),
                    (1, "processingCode") => h.processing_code = attr::<T>(src, attrs, at, "code")?,
                    (1, "processingModeCode") => {
                        h.processing_mode_code = attr::<T>(src, attrs, at, "code")?;
                    }
                    (1, "acceptAckCode") => h.accept_ack_code = attr::<T>(src, attrs, at, "code")?,
                    (1, "controlActProcess" | "controlActEvent") => {
                        h.control_act = Some(name);
                        if empty {
                            return Ok((h, true));
                        }
                    }
                    (2, "code") if in_ca => {
                        h.trigger_event = attr::<T>(src, attrs, at, "code")?;
                        return Ok((h, true));
                    }
                    (2, _) if in_ca => return Ok((h, true)),
                    (2, "typeCode")
                        if path[1] == "acknowledgement" && h.ack_type_code.is_none() =>
                    {
                        h.ack_type_code = attr::<T>(src, attrs, at, "code")?;
                    }
                    (3, "id")
                        if path[1] == "receiver" && path[2] == "device" && h.receiver.is_none() =>
                    {
                        h.receiver = Some(ii::<T>(src, attrs, at)?);
                    }
                    (3, "id")
                        if path[1] == "sender" && path[2] == "device" && h.sender.is_none() =>
                    {
                        h.sender = Some(ii::<T>(src, attrs, at)?);
                    }
                    (3, "id")
                        if path[1] == "acknowledgement"
                            && path[2] == "targetMessage"
                            && h.ack_target.is_none() =>
                    {
                        h.ack_target = Some(ii::<T>(src, attrs, at)?);
                    }
                    _ => {}
                }
            }
            Token::End(_) => {
                depth = depth.saturating_sub(1);
                wsa = None;
                if root_depth == Some(depth) {
                    return Ok((h, true));
                }
            }
            Token::Text(t) => {
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
