//! Identifier data sets (PS3.4 C.4.1.1.3, K.6.1.2): bytes ⇄ [`Identifier`] in a transfer
//! syntax, DICOM JSON output (PS3.18 F.2), and identifiers from keyword/value pairs.
//!
//! Decoding first walks the encoding's structure itself (PS3.5 7.1, 7.5: element headers,
//! lengths, sequences and items of defined or undefined length, nesting depth), so a length
//! beyond the end of the input, a stray item tag or runaway nesting is refused with its byte
//! offset and tag before the dicom-rs parser sees the bytes (which then never allocates more
//! than the input's size). Text values are decoded by dicom-rs according to Specific Character
//! Set (0008,0005) as it is met (PS3.5 6.1.2.3); matching then compares decoded text.

use super::{QueryError, QueryErrorKind};
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_encoding::TransferSyntaxIndex;
use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use dicom_encoding::transfer_syntax::{Codec, Endianness, TransferSyntax};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// An identifier (or a stored record's attributes): the dicom-rs in-memory data set.
pub type Identifier = InMemDicomObject;

/// Maximum nesting of sequences accepted in an identifier (the worklist needs 2–3).
const MAX_DEPTH: usize = 16;

/// The encoding facts of a transfer syntax that matter for a data set (PS3.5 10).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoding {
    pub explicit: bool,
    pub big: bool,
}

/// Looks up a transfer syntax by UID (trailing NUL/space padding ignored); deflated transfer
/// syntaxes are refused (this module reads inflated data sets only).
pub(crate) fn transfer_syntax(uid: &str) -> Result<&'static TransferSyntax, QueryError> {
    let uid = uid.trim_end_matches(['\0', ' ']);
    let ts = TransferSyntaxRegistry.get(uid).ok_or_else(|| {
        QueryError::new(
            QueryErrorKind::Unsupported,
            format!("unknown transfer syntax {uid}"),
        )
    })?;
    if matches!(ts.codec(), Codec::Dataset(Some(_))) || ts.is_unsupported() {
        return Err(QueryError::new(
            QueryErrorKind::Unsupported,
            format!("transfer syntax {uid} not supported for identifiers"),
        ));
    }
    Ok(ts)
}

pub(crate) fn encoding_of(ts: &TransferSyntax) -> Encoding {
    Encoding {
        // Implicit VR Little Endian is the only implicit-VR transfer syntax (PS3.5 10.1).
        explicit: ts.uid() != "1.2.840.10008.1.2",
        big: ts.endianness() == Endianness::Big,
    }
}

/// Decodes an identifier data set received in the transfer syntax `ts_uid` (the presentation
/// context's). Never panics; a structural problem is [`QueryErrorKind::Malformed`] with its
/// byte offset and tag (→ 0xC000), an unknown Specific Character Set or transfer syntax is
/// [`QueryErrorKind::Unsupported`] (→ 0xC000).
pub fn decode_identifier(bytes: &[u8], ts_uid: &str) -> Result<Identifier, QueryError> {
    let ts = transfer_syntax(ts_uid)?;
    let enc = encoding_of(ts);
    let end = walk(bytes, enc, false)?;
    debug_assert_eq!(end, bytes.len());
    parse_checked(bytes, ts, true)
}

/// Parses bytes the walker accepted (text decoded per Specific Character Set). `strict`
/// (identifiers): a character set dicom-rs cannot decode is refused; records are indexed
/// anyway (their UIDs stay queryable).
pub(crate) fn parse_checked(
    bytes: &[u8],
    ts: &TransferSyntax,
    strict: bool,
) -> Result<Identifier, QueryError> {
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, ts)
        .map_err(|e| QueryError::malformed(format!("data set does not parse: {e}")))?;
    if strict {
        check_charsets(&obj)?;
    }
    Ok(obj)
}

/// Refuses a Specific Character Set dicom-rs does not decode (it would fall back to the
/// default repertoire silently and match mis-decoded text), at any depth: an unknown term, or
/// several values (ISO 2022 code extensions, PS3.5 6.1.2.5: the decoder uses the first value
/// only, so the escape sequences of the others would not be honoured).
fn check_charsets(obj: &InMemDicomObject) -> Result<(), QueryError> {
    if let Some(e) = obj.get(tags::SPECIFIC_CHARACTER_SET)
        && let Ok(vals) = e.to_multi_str()
    {
        let unsupported = |why: String| {
            Err(QueryError::new(QueryErrorKind::Unsupported, why).tag(tags::SPECIFIC_CHARACTER_SET))
        };
        if vals.len() > 1 {
            return unsupported(format!(
                "code extensions not supported: {:?}",
                vals.join("\\")
            ));
        }
        for v in vals.iter() {
            let v = v.trim();
            if !v.is_empty() && SpecificCharacterSet::from_code(v).is_none() {
                return unsupported(format!("Specific Character Set {v:?} not supported"));
            }
        }
    }
    for e in obj.iter() {
        if let Some(items) = e.items() {
            for item in items {
                check_charsets(item)?;
            }
        }
    }
    Ok(())
}

/// Encodes a response identifier in the transfer syntax `ts_uid`. Text is encoded in the
/// identifier's own Specific Character Set (0008,0005) (default repertoire when absent); a
/// value that character set cannot represent is an error, so build responses with
/// [`crate::query::FindQuery`] / [`crate::query::Worklist`], which pick a character set that can.
pub fn encode_identifier(obj: &Identifier, ts_uid: &str) -> Result<Vec<u8>, QueryError> {
    let ts = transfer_syntax(ts_uid)?;
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts).map_err(|e| {
        QueryError::new(
            QueryErrorKind::Unsupported,
            format!("identifier does not encode: {e}"),
        )
    })?;
    Ok(out)
}

/// The identifier as one DICOM JSON object (PS3.18 F.2), without a trailing newline: what the
/// command line prints per match.
pub fn to_dicom_json(obj: &Identifier) -> Result<String, QueryError> {
    dicom_json::to_string(obj).map_err(|e| {
        QueryError::new(
            QueryErrorKind::Unsupported,
            format!("no DICOM JSON form: {e}"),
        )
    })
}

/// Builds an identifier from `(key, value)` pairs, as a command line's `-k KEY=VALUE` gives
/// them. A key is a dictionary keyword (`PatientName`) or a tag (`0010,0010` or `00100010`);
/// nested keys are written `Sequence.Key` or `Sequence[0].Key` (one item per sequence, as
/// PS3.4 C.2.2.2.6 allows); a sequence key alone with an empty value is a zero-item sequence
/// (universal matching). The VR comes from the standard dictionary; values are taken as
/// text (backslash separates multiple values).
pub fn identifier_from_pairs(pairs: &[(&str, &str)]) -> Result<Identifier, QueryError> {
    let mut obj = InMemDicomObject::new_empty();
    for (k, v) in pairs {
        let path: Vec<&str> = k.split('.').collect();
        put_path(&mut obj, &path, v, 0)?;
    }
    Ok(obj)
}

fn lookup(key: &str) -> Result<(Tag, VR), QueryError> {
    let key = key.trim();
    let key = key.strip_suffix("[0]").unwrap_or(key);
    let parse_hex = |g: &str, e: &str| -> Option<Tag> {
        Some(Tag(
            u16::from_str_radix(g, 16).ok()?,
            u16::from_str_radix(e, 16).ok()?,
        ))
    };
    let inner = key.trim_start_matches('(').trim_end_matches(')');
    let tag = if let Some((g, e)) = inner.split_once(',') {
        parse_hex(g, e)
    } else if inner.len() == 8 && inner.bytes().all(|b| b.is_ascii_hexdigit()) {
        parse_hex(&inner[..4], &inner[4..])
    } else {
        None
    };
    let dict = StandardDataDictionary;
    match tag {
        Some(t) => {
            let vr = dict.by_tag(t).map_or(VR::UN, |e| e.vr().relaxed());
            Ok((t, vr))
        }
        None => dict
            .by_name(key)
            .map(|e| (e.tag(), e.vr().relaxed()))
            .ok_or_else(|| QueryError::mismatch(format!("unknown attribute keyword {key:?}"))),
    }
}

fn put_path(
    obj: &mut InMemDicomObject,
    path: &[&str],
    value: &str,
    depth: usize,
) -> Result<(), QueryError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    if depth >= MAX_DEPTH {
        return Err(QueryError::mismatch("key nested too deeply"));
    }
    let (tag, vr) = lookup(first)?;
    if rest.is_empty() && vr != VR::SQ {
        let val = if value.is_empty() {
            PrimitiveValue::Empty
        } else {
            PrimitiveValue::Strs(value.split('\\').map(str::to_owned).collect())
        };
        obj.put(DataElement::new(tag, vr, val));
        return Ok(());
    }
    if vr != VR::SQ {
        return Err(QueryError::mismatch(format!("{first} is not a sequence")).tag(tag));
    }
    // Reuse the one item of an existing sequence key, or start one.
    let mut item = obj
        .get(tag)
        .and_then(|e| e.items())
        .and_then(|i| i.first().cloned());
    if !rest.is_empty() {
        let mut it = item.take().unwrap_or_else(InMemDicomObject::new_empty);
        put_path(&mut it, rest, value, depth + 1)?;
        item = Some(it);
    }
    let items: Vec<InMemDicomObject> = item.into_iter().collect();
    obj.put(DataElement::new(
        tag,
        VR::SQ,
        DataSetSequence::new(items, Length::UNDEFINED),
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Structural walk (PS3.5 7.1.1–7.1.3 element encodings, 7.5 nesting of data sets)
// ---------------------------------------------------------------------------------------------

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQ_END: Tag = Tag(0xFFFE, 0xE0DD);
const UNDEFINED: u32 = 0xFFFF_FFFF;

struct Walker<'a> {
    b: &'a [u8],
    enc: Encoding,
}

impl Walker<'_> {
    fn u16_at(&self, p: usize) -> u16 {
        let v = [self.b[p], self.b[p + 1]];
        if self.enc.big {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }
    fn u32_at(&self, p: usize) -> u32 {
        let v = [self.b[p], self.b[p + 1], self.b[p + 2], self.b[p + 3]];
        if self.enc.big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }
    fn tag_at(&self, p: usize) -> Tag {
        Tag(self.u16_at(p), self.u16_at(p + 2))
    }
    /// Item and delimiter headers are always tag + 4-byte length (PS3.5 7.5).
    fn item_header(&self, p: usize, end: usize) -> Result<(Tag, u32), QueryError> {
        if end - p < 8 {
            return Err(QueryError::malformed("truncated item header").at(p));
        }
        Ok((self.tag_at(p), self.u32_at(p + 4)))
    }

    /// Walks the elements of a data set in `b[p..end]` (or until an item delimiter when
    /// `until_item_end`); returns the position after it (after the delimiter if any).
    fn dataset(
        &self,
        mut p: usize,
        end: usize,
        until_item_end: bool,
        depth: usize,
    ) -> Result<usize, QueryError> {
        if depth > MAX_DEPTH {
            return Err(QueryError::malformed("sequences nested too deeply").at(p));
        }
        let mut last: Option<Tag> = None;
        while p < end {
            if end - p < 8 {
                return Err(QueryError::malformed("truncated element header").at(p));
            }
            let tag = self.tag_at(p);
            if tag == ITEM_END && until_item_end {
                if self.u32_at(p + 4) != 0 {
                    return Err(QueryError::malformed("item delimiter with a length").at(p));
                }
                return Ok(p + 8);
            }
            if tag.0 == 0xFFFE {
                return Err(
                    QueryError::malformed("item tag where an element was expected")
                        .at(p)
                        .tag(tag),
                );
            }
            // PS3.5 7.1: elements appear in ascending tag order.
            if last.is_some_and(|l| l >= tag) {
                return Err(QueryError::malformed("elements not in ascending tag order")
                    .at(p)
                    .tag(tag));
            }
            last = Some(tag);
            p = self.element(p, end, tag, depth)?;
        }
        if until_item_end {
            return Err(QueryError::malformed("item without its delimiter").at(p));
        }
        Ok(p)
    }

    fn element(&self, p: usize, end: usize, tag: Tag, depth: usize) -> Result<usize, QueryError> {
        let err = |m: &str, at: usize| QueryError::malformed(m.to_string()).at(at).tag(tag);
        let (vr, len, hdr) = if self.enc.explicit {
            let vr_bytes = [self.b[p + 4], self.b[p + 5]];
            let Some(vr) = std::str::from_utf8(&vr_bytes)
                .ok()
                .and_then(|s| s.parse::<VR>().ok())
            else {
                return Err(err("unknown VR", p + 4));
            };
            if matches!(
                vr,
                VR::OB
                    | VR::OD
                    | VR::OF
                    | VR::OL
                    | VR::OV
                    | VR::OW
                    | VR::SQ
                    | VR::UC
                    | VR::UN
                    | VR::UR
                    | VR::UT
                    | VR::SV
                    | VR::UV
            ) {
                if end - p < 12 {
                    return Err(err("truncated element header", p));
                }
                (Some(vr), self.u32_at(p + 8), 12)
            } else {
                (Some(vr), u32::from(self.u16_at(p + 6)), 8)
            }
        } else {
            let vr = StandardDataDictionary
                .by_tag(tag)
                .and_then(|e| e.vr().exact());
            (vr, self.u32_at(p + 4), 8)
        };
        let body = p + hdr;
        // PS3.5 6.2: a binary VR's value is whole multiples of its size. The parser reads
        // len / size values, so a remainder would shift every later element header.
        let size_vr = if self.enc.explicit {
            vr
        } else {
            StandardDataDictionary.by_tag(tag).map(|e| e.vr().relaxed())
        };
        if len != UNDEFINED
            && let Some(size) = size_vr.and_then(value_size)
            && !(len as usize).is_multiple_of(size)
        {
            return Err(err("value length not a multiple of the VR's value size", p));
        }
        if len == UNDEFINED {
            match vr {
                // Undefined length: a sequence (implicit VR: whatever the dictionary says),
                // or in explicit VR an UN sequence or encapsulated pixel data (PS3.5 A.4).
                Some(VR::SQ) | None => self.sequence(body, end, None, depth),
                // PS3.5 6.2.2: UN of undefined length holds an Implicit VR LE sequence; the
                // parser's reading of it is not the walker's, so it is refused here.
                Some(VR::UN) => Err(err("UN of undefined length not supported", p)),
                Some(VR::OB | VR::OW) if tag == Tag(0x7FE0, 0x0010) => self.fragments(body, end),
                Some(_) => Err(err("undefined length on a non-sequence", p)),
            }
        } else {
            let len = len as usize;
            if len > end - body {
                return Err(err("value length beyond the end of the data set", p));
            }
            if vr == Some(VR::SQ) {
                self.sequence(body, body + len, Some(()), depth)?;
            }
            Ok(body + len)
        }
    }

    /// Items of a sequence: in `b[p..end]` when `defined`, else until the sequence delimiter.
    fn sequence(
        &self,
        mut p: usize,
        end: usize,
        defined: Option<()>,
        depth: usize,
    ) -> Result<usize, QueryError> {
        loop {
            if defined.is_some() && p == end {
                return Ok(p);
            }
            let (tag, len) = self.item_header(p, end)?;
            match tag {
                SEQ_END if defined.is_none() => {
                    if len != 0 {
                        return Err(QueryError::malformed("sequence delimiter with a length").at(p));
                    }
                    return Ok(p + 8);
                }
                ITEM if len == UNDEFINED => {
                    p = self.dataset(p + 8, end, true, depth + 1)?;
                }
                ITEM => {
                    let len = len as usize;
                    if len > end - (p + 8) {
                        return Err(QueryError::malformed("item length beyond its sequence").at(p));
                    }
                    self.dataset(p + 8, p + 8 + len, false, depth + 1)?;
                    p += 8 + len;
                }
                other => {
                    return Err(QueryError::malformed("expected an item in a sequence")
                        .at(p)
                        .tag(other));
                }
            }
        }
    }

    /// Encapsulated pixel data fragments (PS3.5 A.4): items of defined length, then the
    /// sequence delimiter.
    fn fragments(&self, mut p: usize, end: usize) -> Result<usize, QueryError> {
        loop {
            let (tag, len) = self.item_header(p, end)?;
            match tag {
                SEQ_END => return Ok(p + 8),
                ITEM if len != UNDEFINED && (len as usize) <= end - (p + 8) => {
                    p += 8 + len as usize;
                }
                _ => {
                    return Err(QueryError::malformed("bad pixel data fragment")
                        .at(p)
                        .tag(tag));
                }
            }
        }
    }
}

/// The size of one value of a fixed-size binary VR (PS3.5 Table 6.2-1).
fn value_size(vr: VR) -> Option<usize> {
    match vr {
        VR::US | VR::SS | VR::OW => Some(2),
        VR::UL | VR::SL | VR::FL | VR::AT | VR::OF | VR::OL => Some(4),
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => Some(8),
        _ => None,
    }
}

/// Walks a whole data set; `Ok(len)` when it is well-formed.
pub(crate) fn walk(b: &[u8], enc: Encoding, _tolerant: bool) -> Result<usize, QueryError> {
    Walker { b, enc }.dataset(0, b.len(), false, 0)
}

/// The length of the longest prefix of `b` made of complete top-level elements that come
/// before Pixel Data (7FE0,0010): what can be parsed of a header whose tail was cut off.
pub(crate) fn complete_prefix(b: &[u8], enc: Encoding) -> usize {
    header_prefix(b, enc).0
}

/// [`complete_prefix`], and whether it stopped at Pixel Data (7FE0,0010) or later, i.e. the
/// prefix holds every header element of the data set.
pub(crate) fn header_prefix(b: &[u8], enc: Encoding) -> (usize, bool) {
    let w = Walker { b, enc };
    let mut p = 0;
    let mut last: Option<Tag> = None;
    while b.len() - p >= 8 {
        let tag = w.tag_at(p);
        if tag >= Tag(0x7FE0, 0x0010) && tag.0 != 0xFFFE && last.is_none_or(|l| l < tag) {
            return (p, true);
        }
        if tag.0 == 0xFFFE || last.is_some_and(|l| l >= tag) {
            break;
        }
        last = Some(tag);
        match w.element(p, b.len(), tag, 0) {
            Ok(next) => p = next,
            Err(_) => break,
        }
    }
    (p, false)
}

/// The character set a response must declare so every text value in it encodes: the query's
/// own when it can represent them, else ISO_IR 192 (UTF-8); `None` for plain ASCII with no
/// declared set (PS3.4 C.4.1.1.3.2: a response uses Specific Character Set when its values
/// need it).
pub(crate) fn response_charset(obj: &InMemDicomObject, query_cs: Option<&str>) -> Option<String> {
    let mut ascii = true;
    let mut fits = true;
    let cs = query_cs
        .and_then(SpecificCharacterSet::from_code)
        .unwrap_or_default();
    scan_text(obj, &mut |s| {
        if !s.is_ascii() {
            ascii = false;
            if fits && cs.encode(s).is_err() {
                fits = false;
            }
        }
    });
    match query_cs {
        _ if ascii => query_cs.map(str::to_owned),
        Some(q) if fits && !q.trim().is_empty() => Some(q.to_owned()),
        _ => Some("ISO_IR 192".to_owned()),
    }
}

fn scan_text(obj: &InMemDicomObject, f: &mut dyn FnMut(&str)) {
    for e in obj.iter() {
        if let Some(items) = e.items() {
            for i in items {
                scan_text(i, f);
            }
        } else if let dicom_core::value::Value::Primitive(PrimitiveValue::Strs(v)) = e.value() {
            for s in v {
                f(s);
            }
        } else if let dicom_core::value::Value::Primitive(PrimitiveValue::Str(s)) = e.value() {
            f(s);
        }
    }
}
