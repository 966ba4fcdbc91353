//! Owned message model and encoder, the exact inverse of the parser (HL7 v2.5.1 section 2.6
//! "Message construction rules").
//!
//! Each segment keeps its raw (escaped, charset-encoded) bytes in one buffer, so
//! `OwnedMessage::from(&msg).encode()` reproduces the input byte for byte when it uses one
//! segment terminator throughout (the last segment may differ), and encoding is a copy per
//! segment. Edits ([`OwnedMessage::set`]) split only the field they touch and rebuild it.

use crate::charset;
use crate::delimiters::Delimiters;
use crate::escape;
use crate::parse::element::Split;
use crate::parse::message::Message;
use crate::path::{Path, PathError};
use encoding_rs::Encoding;

/// One segment: its ID and its raw bytes after the ID (starting with the field separator,
/// empty for a segment with no field).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedSegment {
    name: String,
    raw: Vec<u8>,
}

impl OwnedSegment {
    /// An empty segment with the given ID.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            raw: Vec::new(),
        }
    }
    /// The segment ID.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The raw bytes after the segment ID.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
    fn is_header(&self) -> bool {
        matches!(self.name.as_str(), "MSH" | "FHS" | "BHS")
    }
    /// Index of field `n` among the parts of `raw[1..]` split on the field separator
    /// (MSH-1 is the separator itself and not a part).
    fn part_index(&self, n: usize) -> Option<usize> {
        if self.is_header() {
            n.checked_sub(2)
        } else {
            n.checked_sub(1)
        }
    }
    /// Raw bytes of field `n` (HL7 numbering).
    pub fn field_raw(&self, n: usize, d: &Delimiters) -> Option<&[u8]> {
        if self.is_header() && n == 1 {
            return self.raw.get(..1);
        }
        let i = self.part_index(n)?;
        Split::new(self.raw.get(1..)?, Some(d.field)).nth(i)
    }
    /// Replaces field `n` with `raw` (already escaped), adding empty fields as needed.
    /// Field 1 of MSH/FHS/BHS (the separator) cannot be replaced; returns false then.
    pub fn set_field_raw(&mut self, n: usize, raw: &[u8], d: &Delimiters) -> bool {
        let Some(i) = self.part_index(n) else {
            return false;
        };
        if self.is_header() && n == 1 {
            return false;
        }
        let body: &[u8] = self.raw.get(1..).unwrap_or(&[]);
        let mut parts: Vec<&[u8]> = if self.raw.is_empty() {
            Vec::new()
        } else {
            Split::new(body, Some(d.field)).collect()
        };
        if parts.len() <= i {
            parts.resize(i + 1, &[]);
        }
        parts[i] = raw;
        let mut out = Vec::with_capacity(self.raw.len() + raw.len() + i);
        for p in parts {
            out.push(d.field);
            out.extend_from_slice(p);
        }
        self.raw = out;
        true
    }
}

/// Segment terminator written by the encoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Terminator {
    /// `\r` (standard).
    #[default]
    Cr,
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
}

impl Terminator {
    fn bytes(self) -> &'static [u8] {
        match self {
            Self::Cr => b"\r",
            Self::Lf => b"\n",
            Self::CrLf => b"\r\n",
        }
    }
}

/// An owned, editable message.
///
/// ```
/// use xenrad_hl7v2::{Message, encode::owned::OwnedMessage};
/// let mut m = OwnedMessage::new(Default::default());
/// m.set("MSH-9-1", "ADT").unwrap();
/// m.set("MSH-9-2", "A01").unwrap();
/// m.set("MSH-10", "42").unwrap();
/// m.set("PID-5-1", "O'NEIL|SMITH").unwrap();
/// m.set("PID-3(2)-1", "A123").unwrap();
/// let bytes = m.encode();
/// assert_eq!(bytes, b"MSH|^~\\&|||||||ADT^A01|42\rPID|||~A123||O'NEIL\\F\\SMITH\r");
/// let parsed = Message::parse(&bytes).unwrap();
/// assert_eq!(parsed.get("PID-5-1").as_deref(), Some("O'NEIL|SMITH"));
/// assert_eq!(OwnedMessage::from(&parsed).encode(), bytes);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedMessage {
    /// Delimiters used to split and join fields on edit.
    pub delimiters: Delimiters,
    /// Charset used by [`OwnedMessage::set`] to encode text.
    pub encoding: &'static Encoding,
    /// Segments in order; the first should be MSH.
    pub segments: Vec<OwnedSegment>,
    /// Terminator written after each segment but the last.
    pub terminator: Terminator,
    /// Terminator after the last segment (`None`: none; default `Some(Cr)`).
    pub final_terminator: Option<Terminator>,
}

impl OwnedMessage {
    /// A message holding just `MSH|^~\&` (with the given delimiters).
    pub fn new(delimiters: Delimiters) -> Self {
        let mut raw = vec![delimiters.field];
        raw.extend_from_slice(&delimiters.encoding_characters());
        Self {
            delimiters,
            encoding: encoding_rs::UTF_8,
            segments: vec![OwnedSegment {
                name: "MSH".into(),
                raw,
            }],
            terminator: Terminator::Cr,
            final_terminator: Some(Terminator::Cr),
        }
    }

    /// Appends an empty segment and returns it.
    pub fn push_segment(&mut self, name: &str) -> &mut OwnedSegment {
        self.segments.push(OwnedSegment::new(name));
        self.segments.last_mut().expect("just pushed")
    }

    fn segment_index(&self, path: &Path) -> Option<usize> {
        let name = std::str::from_utf8(&path.segment).ok()?;
        self.segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name == name)
            .nth(path.segment_rep - 1)
            .map(|(i, _)| i)
    }

    /// Sets the raw (already escaped) bytes of the leaf at `path`, creating segments,
    /// fields, repetitions and components as needed. Without component/subcomponent in the
    /// path, the first is set. MSH-1 cannot be set (it is the field separator).
    pub fn set_raw_path(&mut self, path: &Path, raw: &[u8]) {
        let si = if let Some(i) = self.segment_index(path) {
            i
        } else {
            let name = std::str::from_utf8(&path.segment)
                .unwrap_or("ZZZ")
                .to_owned();
            let have = self.segments.iter().filter(|s| s.name == name).count();
            for _ in have..path.segment_rep {
                self.push_segment(&name);
            }
            self.segments.len() - 1
        };
        let d = self.delimiters;
        let seg = &mut self.segments[si];
        let old = seg.field_raw(path.field, &d).unwrap_or(&[]);
        let rep_d = d.repetition.unwrap_or(b'~');
        let comp_d = d.component.unwrap_or(b'^');
        let sub_d = d.subcomponent.unwrap_or(b'&');
        let new_field = replace_part(old, rep_d, path.field_rep, |rep| {
            replace_part(rep, comp_d, path.component.unwrap_or(1), |comp| {
                replace_part(comp, sub_d, path.subcomponent.unwrap_or(1), |_| {
                    raw.to_vec()
                })
            })
        });
        seg.set_field_raw(path.field, &new_field, &d);
    }

    /// Sets text at a Terser path: the text is charset-encoded and escaped.
    pub fn set(&mut self, path: &str, text: &str) -> Result<(), PathError> {
        let p = Path::parse(path)?;
        let bytes = charset::encode(text, self.encoding);
        let raw = escape::escape(&bytes, &self.delimiters);
        self.set_raw_path(&p, &raw);
        Ok(())
    }

    /// Raw bytes of the leaf at `path` (first component/subcomponent if omitted).
    pub fn get_raw(&self, path: &str) -> Option<&[u8]> {
        let p = Path::parse(path).ok()?;
        let d = &self.delimiters;
        let field = self.segments[self.segment_index(&p)?].field_raw(p.field, d)?;
        let rep = Split::new(field, d.repetition).nth(p.field_rep - 1)?;
        let comp = Split::new(rep, d.component).nth(p.component.unwrap_or(1) - 1)?;
        Split::new(comp, d.subcomponent).nth(p.subcomponent.unwrap_or(1) - 1)
    }

    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.segments.iter().map(|s| s.raw.len() + 5).sum());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let n = self.segments.len();
        for (i, seg) in self.segments.iter().enumerate() {
            out.extend_from_slice(seg.name.as_bytes());
            out.extend_from_slice(&seg.raw);
            if i + 1 < n {
                out.extend_from_slice(self.terminator.bytes());
            } else if let Some(t) = self.final_terminator {
                out.extend_from_slice(t.bytes());
            }
        }
    }
}

/// Replaces part `n` (1-based) of `raw` split on `delim` with `f(old part)`, adding empty
/// parts as needed, and returns the joined bytes.
fn replace_part(raw: &[u8], delim: u8, n: usize, f: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Split::new(raw, Some(delim)).collect();
    if parts.len() < n {
        parts.resize(n, &[]);
    }
    let new = f(parts[n - 1]);
    let mut out = Vec::with_capacity(raw.len() + new.len() + n);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(delim);
        }
        if i == n - 1 {
            out.extend_from_slice(&new);
        } else {
            out.extend_from_slice(p);
        }
    }
    out
}

impl From<&Message<'_>> for OwnedMessage {
    fn from(msg: &Message<'_>) -> Self {
        let input = msg.input();
        let mut segments = Vec::with_capacity(msg.segment_count());
        let mut terminator = None;
        let mut last = None;
        for seg in msg.segments() {
            let name = seg.name();
            let raw = seg.raw().get(name.len()..).unwrap_or(&[]).to_vec();
            segments.push(OwnedSegment {
                name: name.to_owned(),
                raw,
            });
            let end = seg.offset() + seg.raw().len();
            let t = match (input.get(end), input.get(end + 1)) {
                (Some(b'\r'), Some(b'\n')) => Some(Terminator::CrLf),
                (Some(b'\r'), _) => Some(Terminator::Cr),
                (Some(b'\n'), _) => Some(Terminator::Lf),
                _ => None,
            };
            if let Some(prev) = last.replace(t)
                && terminator.is_none()
            {
                terminator = prev;
            }
        }
        Self {
            delimiters: msg.delimiters(),
            encoding: msg.encoding(),
            segments,
            terminator: terminator.unwrap_or_default(),
            final_terminator: last.flatten(),
        }
    }
}
