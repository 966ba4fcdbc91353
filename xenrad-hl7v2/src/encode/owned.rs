//! Owned message model and encoder, the exact inverse of the parser: leaves keep their raw
//! (escaped, charset-encoded) bytes, so `OwnedMessage::from(&msg).encode()` reproduces the
//! input byte for byte when it uses one segment terminator throughout (HL7 v2.5.1 section
//! 2.6 "Message construction rules").

use crate::charset;
use crate::delimiters::Delimiters;
use crate::escape;
use crate::parse::message::Message;
use crate::path::{Path, PathError};
use encoding_rs::Encoding;

/// One subcomponent list of a component, each leaf as raw (escaped) bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedComponent {
    /// Subcomponents, raw bytes.
    pub subcomponents: Vec<Vec<u8>>,
}

/// One field repetition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedRepetition {
    /// Components.
    pub components: Vec<OwnedComponent>,
}

/// One field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedField {
    /// Repetitions (at least one when encoded; an empty list encodes as an empty field).
    pub repetitions: Vec<OwnedRepetition>,
}

impl OwnedField {
    /// A field holding one raw leaf.
    pub fn from_raw(raw: impl Into<Vec<u8>>) -> Self {
        Self {
            repetitions: vec![OwnedRepetition {
                components: vec![OwnedComponent {
                    subcomponents: vec![raw.into()],
                }],
            }],
        }
    }
}

/// One segment: its ID and fields `1..`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedSegment {
    /// Segment ID, e.g. `PID`.
    pub name: String,
    /// Fields in HL7 numbering: `fields[0]` is field 1 (for MSH, the field separator).
    pub fields: Vec<OwnedField>,
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
    /// Delimiters; MSH-1/MSH-2 are written from these when the MSH is created by [`OwnedMessage::new`].
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
        let msh = OwnedSegment {
            name: "MSH".into(),
            fields: vec![
                OwnedField::from_raw(vec![delimiters.field]),
                OwnedField::from_raw(delimiters.encoding_characters()),
            ],
        };
        Self {
            delimiters,
            encoding: encoding_rs::UTF_8,
            segments: vec![msh],
            terminator: Terminator::Cr,
            final_terminator: Some(Terminator::Cr),
        }
    }

    /// Appends an empty segment and returns it.
    pub fn push_segment(&mut self, name: &str) -> &mut OwnedSegment {
        self.segments.push(OwnedSegment {
            name: name.into(),
            fields: Vec::new(),
        });
        self.segments.last_mut().expect("just pushed")
    }

    fn segment_index(&mut self, path: &Path, create: bool) -> Option<usize> {
        let name = std::str::from_utf8(&path.segment).ok()?;
        let mut seen = 0;
        for (i, s) in self.segments.iter().enumerate() {
            if s.name == name {
                seen += 1;
                if seen == path.segment_rep {
                    return Some(i);
                }
            }
        }
        if !create {
            return None;
        }
        for _ in seen..path.segment_rep {
            self.push_segment(name);
        }
        Some(self.segments.len() - 1)
    }

    /// Sets the raw (already escaped) bytes of the leaf at `path`, creating segments,
    /// fields, repetitions and components as needed. Without component/subcomponent in the
    /// path, the first is set.
    pub fn set_raw_path(&mut self, path: &Path, raw: Vec<u8>) {
        let si = self.segment_index(path, true).expect("created");
        let seg = &mut self.segments[si];
        grow(&mut seg.fields, path.field);
        let field = &mut seg.fields[path.field - 1];
        grow(&mut field.repetitions, path.field_rep);
        let rep = &mut field.repetitions[path.field_rep - 1];
        let c = path.component.unwrap_or(1);
        grow(&mut rep.components, c);
        let comp = &mut rep.components[c - 1];
        let s = path.subcomponent.unwrap_or(1);
        grow(&mut comp.subcomponents, s);
        comp.subcomponents[s - 1] = raw;
    }

    /// Sets text at a Terser path: the text is charset-encoded and escaped.
    pub fn set(&mut self, path: &str, text: &str) -> Result<(), PathError> {
        let p = Path::parse(path)?;
        let bytes = charset::encode(text, self.encoding);
        let raw = escape::escape(&bytes, &self.delimiters).into_owned();
        self.set_raw_path(&p, raw);
        Ok(())
    }

    /// Raw bytes of the leaf at `path` (first component/subcomponent if omitted).
    pub fn get_raw(&mut self, path: &str) -> Option<&[u8]> {
        let p = Path::parse(path).ok()?;
        let si = self.segment_index(&p, false)?;
        let seg = &self.segments[si];
        let rep = seg
            .fields
            .get(p.field - 1)?
            .repetitions
            .get(p.field_rep - 1)?;
        let comp = rep.components.get(p.component.unwrap_or(1) - 1)?;
        comp.subcomponents
            .get(p.subcomponent.unwrap_or(1) - 1)
            .map(Vec::as_slice)
    }

    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let d = &self.delimiters;
        let n = self.segments.len();
        for (i, seg) in self.segments.iter().enumerate() {
            out.extend_from_slice(seg.name.as_bytes());
            let header = matches!(seg.name.as_str(), "MSH" | "FHS" | "BHS");
            for (fi, f) in seg.fields.iter().enumerate() {
                if header && fi < 2 {
                    // MSH-1 is the separator itself; MSH-2 follows it directly.
                    if fi == 0 && f.repetitions.is_empty() {
                        out.push(d.field);
                    }
                    write_field(out, f, d);
                    continue;
                }
                out.push(d.field);
                write_field(out, f, d);
            }
            if i + 1 < n {
                out.extend_from_slice(self.terminator.bytes());
            } else if let Some(t) = self.final_terminator {
                out.extend_from_slice(t.bytes());
            }
        }
    }
}

fn grow<T: Default>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize_with(n, T::default);
    }
}

fn write_field(out: &mut Vec<u8>, f: &OwnedField, d: &Delimiters) {
    for (ri, r) in f.repetitions.iter().enumerate() {
        if ri > 0 {
            out.push(d.repetition.unwrap_or(b'~'));
        }
        for (ci, c) in r.components.iter().enumerate() {
            if ci > 0 {
                out.push(d.component.unwrap_or(b'^'));
            }
            for (si, s) in c.subcomponents.iter().enumerate() {
                if si > 0 {
                    out.push(d.subcomponent.unwrap_or(b'&'));
                }
                out.extend_from_slice(s);
            }
        }
    }
}

impl From<&Message<'_>> for OwnedMessage {
    fn from(msg: &Message<'_>) -> Self {
        let input = msg.input();
        let mut segments = Vec::with_capacity(msg.segment_count());
        let mut terminator = None;
        let mut last = None;
        for seg in msg.segments() {
            let fields = seg
                .fields()
                .map(|f| OwnedField {
                    repetitions: f
                        .repetitions()
                        .map(|r| OwnedRepetition {
                            components: r
                                .components()
                                .map(|c| OwnedComponent {
                                    subcomponents: c
                                        .subcomponents()
                                        .map(|s| s.raw().to_vec())
                                        .collect(),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect();
            segments.push(OwnedSegment {
                name: seg.name().to_owned(),
                fields,
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
