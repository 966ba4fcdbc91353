//! [`Message`]: one HL7 v2 message indexed in one pass over borrowed bytes.

use super::element::{Ctx, Field, Segment, nth_part};
use super::error::{ParseError, ParseErrorKind};
use super::options::{ParseOptions, UnknownCharset};
use super::scan::{Lines, Span, valid_segment_id};
use crate::delimiters::Delimiters;
use crate::path::{Path, PathError};
use encoding_rs::Encoding;
use std::borrow::Cow;

/// A parsed message borrowing its input. Only segment boundaries are indexed; fields,
/// repetitions, components and subcomponents are split lazily on access.
///
/// ```
/// use xenrad_hl7v2::Message;
/// let raw = b"MSH|^~\\&|RIS|RAD|PACS|IMG|20240101120000||ORM^O01^ORM_O01|MSG1|P|2.5.1\r\
///             PID|1||123^^^HOSP^MR~456^^^HOSP^AN||DOE^JOHN\\S\\JR\r";
/// let msg = Message::parse(raw).unwrap();
/// assert_eq!(msg.get("MSH-9-2").as_deref(), Some("O01"));
/// assert_eq!(msg.control_id().as_deref(), Some("MSG1"));
/// assert_eq!(msg.get("PID-3(2)-1").as_deref(), Some("456"));
/// assert_eq!(msg.get("PID-5-2").as_deref(), Some("JOHN^JR"));
/// ```
#[derive(Clone, Debug)]
pub struct Message<'a> {
    input: &'a [u8],
    segs: Cow<'a, [Span]>,
    ctx: Ctx,
}

/// A reusable parser: keeps its segment index buffer between messages, so parsing allocates
/// nothing once the buffer has grown to the largest message seen.
///
/// ```
/// use xenrad_hl7v2::{Parser, ParseOptions};
/// let mut parser = Parser::new(ParseOptions::default());
/// for raw in [&b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5.1\r"[..], b"MSH|^~\\&|A|B|C|D|||ADT^A08|2|P|2.5.1\r"] {
///     let msg = parser.parse(raw).unwrap();
///     assert_eq!(msg.get("MSH-9").as_deref(), Some("ADT"));
/// }
/// ```
#[derive(Debug, Default)]
pub struct Parser {
    options: ParseOptions,
    segs: Vec<Span>,
}

impl Parser {
    /// A parser with the given options.
    pub fn new(options: ParseOptions) -> Self {
        Self {
            options,
            segs: Vec::new(),
        }
    }
    /// The parser's options.
    pub fn options(&self) -> &ParseOptions {
        &self.options
    }
    /// Parses one message, reusing the internal index buffer.
    pub fn parse<'a>(&'a mut self, input: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let ctx = index(input, &self.options, &mut self.segs)?;
        Ok(Message {
            input,
            segs: Cow::Borrowed(&self.segs),
            ctx,
        })
    }
}

/// Builds the segment index and the decoding context (HL7 v2.5.1 section 2.5-2.6).
fn index(input: &[u8], opts: &ParseOptions, segs: &mut Vec<Span>) -> Result<Ctx, ParseError> {
    segs.clear();
    let max = opts.max_len.min(u32::MAX as usize);
    if input.len() > max {
        return Err(ParseError::new(
            ParseErrorKind::TooLarge {
                len: input.len(),
                max,
            },
            0,
        ));
    }
    let mut lines = Lines::new(input, opts.terminators);
    let Some((s0, e0)) = lines.next() else {
        return Err(ParseError::new(ParseErrorKind::Empty, 0));
    };
    let msh = &input[s0..e0];
    if !msh.starts_with(b"MSH") {
        let kind = if msh.starts_with(b"FHS") || msh.starts_with(b"BHS") {
            ParseErrorKind::BatchEnvelope
        } else {
            ParseErrorKind::NotMsh
        };
        return Err(ParseError::new(kind, s0).at_segment(1));
    }
    let Some(&sep) = msh.get(3) else {
        return Err(ParseError::new(ParseErrorKind::TruncatedMsh, s0).at_segment(1));
    };
    let enc_end = memchr::memchr(sep, &msh[4..]).map_or(msh.len(), |i| i + 4);
    let delims = Delimiters::from_msh(sep, &msh[4..enc_end]).map_err(|e| {
        ParseError::new(ParseErrorKind::Delimiters(e), s0 + 3)
            .at_segment(1)
            .at_field(2)
    })?;
    segs.push(Span {
        start: s0 as u32,
        end: e0 as u32,
    });
    for (start, end) in &mut lines {
        let line = &input[start..end];
        if opts.strict_segment_ids {
            if !valid_segment_id(line, sep) {
                return Err(ParseError::new(ParseErrorKind::InvalidSegmentId, start)
                    .at_segment(segs.len() + 1));
            }
            if line.starts_with(b"MSH") {
                return Err(
                    ParseError::new(ParseErrorKind::SecondMsh, start).at_segment(segs.len() + 1)
                );
            }
        }
        if segs.len() >= opts.max_segments {
            return Err(ParseError::new(
                ParseErrorKind::TooManySegments {
                    max: opts.max_segments,
                },
                start,
            ));
        }
        segs.push(Span {
            start: start as u32,
            end: end as u32,
        });
    }
    if let Some(off) = lines.stray_start_block {
        let seg = segs.iter().take_while(|s| s.start() < off).count() + 1;
        return Err(ParseError::new(ParseErrorKind::StrayStartBlock, off).at_segment(seg));
    }
    let encoding = resolve_charset(msh, &delims, opts).map_err(|k| {
        let off = s0 + msh.len().saturating_sub(1);
        ParseError::new(k, off).at_segment(1).at_field(18)
    })?;
    Ok(Ctx {
        delims,
        encoding,
        policy: opts.escapes,
    })
}

/// MSH-18 first repetition → encoding (HL7 v2.5.1 section 2.15.9.18).
fn resolve_charset(
    msh: &[u8],
    d: &Delimiters,
    opts: &ParseOptions,
) -> Result<&'static Encoding, ParseErrorKind> {
    let Some(f18) = nth_part(msh, Some(d.field), 17) else {
        return Ok(opts.default_charset);
    };
    let first = nth_part(f18, d.repetition, 0).unwrap_or(f18);
    if first.iter().all(u8::is_ascii_whitespace) {
        return Ok(opts.default_charset);
    }
    match crate::charset::lookup(first, &opts.charset_aliases) {
        Some(e) => Ok(e),
        None => match opts.unknown_charset {
            UnknownCharset::Error => Err(ParseErrorKind::UnsupportedCharset(
                String::from_utf8_lossy(first).into_owned(),
            )),
            UnknownCharset::UseDefault => Ok(opts.default_charset),
        },
    }
}

/// Message type from MSH-9 (message code, trigger event, message structure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageType<'a> {
    /// MSH-9-1, e.g. `ORM` (table 0076).
    pub code: Cow<'a, str>,
    /// MSH-9-2, e.g. `O01` (table 0003); empty if absent.
    pub trigger_event: Cow<'a, str>,
    /// MSH-9-3, e.g. `ORM_O01` (table 0354); empty if absent.
    pub structure: Cow<'a, str>,
}

/// Acknowledgment condition (MSH-15/MSH-16, table 0155).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckCondition {
    /// `AL`: always.
    Always,
    /// `NE`: never.
    Never,
    /// `ER`: error/reject conditions only.
    Error,
    /// `SU`: successful completion only.
    Successful,
}

impl AckCondition {
    /// Parses a table 0155 code.
    pub fn from_code(s: &str) -> Option<Self> {
        match s.trim() {
            "AL" => Some(Self::Always),
            "NE" => Some(Self::Never),
            "ER" => Some(Self::Error),
            "SU" => Some(Self::Successful),
            _ => None,
        }
    }
    /// The table 0155 code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Always => "AL",
            Self::Never => "NE",
            Self::Error => "ER",
            Self::Successful => "SU",
        }
    }
}

impl<'a> Message<'a> {
    /// Parses one message with default options ([`ParseOptions::default`]).
    pub fn parse(input: &'a [u8]) -> Result<Self, ParseError> {
        Self::parse_with(input, &ParseOptions::default())
    }

    /// Parses one message with the given options.
    pub fn parse_with(input: &'a [u8], options: &ParseOptions) -> Result<Self, ParseError> {
        let mut segs = Vec::with_capacity(16);
        let ctx = index(input, options, &mut segs)?;
        Ok(Self {
            input,
            segs: Cow::Owned(segs),
            ctx,
        })
    }

    /// The input bytes this message borrows.
    pub fn input(&self) -> &'a [u8] {
        self.input
    }

    /// The delimiters read from MSH-1/MSH-2.
    pub fn delimiters(&self) -> Delimiters {
        self.ctx.delims
    }

    /// The charset used to decode text (from MSH-18 or the default).
    pub fn encoding(&self) -> &'static Encoding {
        self.ctx.encoding
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }

    fn seg(&self, i: usize, span: Span) -> Segment<'a> {
        let input: &'a [u8] = self.input;
        Segment {
            raw: &input[span.start()..span.end()],
            offset: span.start(),
            index: i + 1,
            ctx: self.ctx,
        }
    }

    /// Segment at 1-based position `n`.
    pub fn segment_at(&self, n: usize) -> Option<Segment<'a>> {
        let i = n.checked_sub(1)?;
        self.segs.get(i).map(|&s| self.seg(i, s))
    }

    /// Iterates over all segments in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'a>> + '_ {
        self.segs.iter().enumerate().map(|(i, &s)| self.seg(i, s))
    }

    /// Iterates over the segments with the given ID.
    pub fn segments_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = Segment<'a>> + 's {
        self.segments()
            .filter(move |s| s.raw.starts_with(name.as_bytes()) && s.name() == name)
    }

    /// The first segment with the given ID.
    pub fn segment(&self, name: &str) -> Option<Segment<'a>> {
        self.segments_named(name).next()
    }

    /// The MSH segment.
    pub fn msh(&self) -> Segment<'a> {
        self.seg(0, self.segs[0])
    }

    fn find_segment(&self, id: [u8; 3], rep: usize) -> Option<Segment<'a>> {
        let sep = self.ctx.delims.field;
        let mut seen = 0;
        for (i, &s) in self.segs.iter().enumerate() {
            let raw = &self.input[s.start()..s.end()];
            if raw.len() >= 3 && raw[..3] == id[..] && (raw.len() == 3 || raw[3] == sep) {
                seen += 1;
                if seen == rep {
                    return Some(self.seg(i, s));
                }
            }
        }
        None
    }

    /// The field a path points at (component and subcomponent of the path are ignored).
    pub fn field_at(&self, path: &Path) -> Option<Field<'a>> {
        self.find_segment(path.segment, path.segment_rep)?
            .field(path.field)
    }

    /// Raw (escaped) bytes at a path: the whole repetition if no component is given, else
    /// the component or subcomponent.
    pub fn raw_at(&self, path: &Path) -> Option<&'a [u8]> {
        let rep = self.field_at(path)?.repetition(path.field_rep)?;
        let Some(c) = path.component else {
            return Some(rep.raw());
        };
        let comp = rep.component(c)?;
        let Some(s) = path.subcomponent else {
            return Some(comp.raw());
        };
        Some(comp.subcomponent(s)?.raw())
    }

    /// Decoded text at a parsed path. An omitted component/subcomponent means the first
    /// (HAPI Terser semantics). `None` when the segment or element is not present.
    pub fn get_path(&self, path: &Path) -> Option<Cow<'a, str>> {
        let field = self.field_at(path)?;
        let (c, s) = (path.component.unwrap_or(1), path.subcomponent.unwrap_or(1));
        if field.verbatim {
            return (path.field_rep == 1 && c == 1 && s == 1).then(|| field.raw_text());
        }
        let d = &self.ctx.delims;
        let leaf = super::element::locate_leaf(field.raw(), d, (path.field_rep, c, s))?;
        Some(crate::escape::decode(
            leaf,
            d,
            self.ctx.encoding,
            self.ctx.policy,
        ))
    }

    /// Decoded text at a Terser-style path such as `PID-5-1`, `PID-3(2)-1`, `OBX(2)-5`.
    /// `None` if the path is malformed or the element is absent; see [`Message::try_get`].
    pub fn get(&self, path: &str) -> Option<Cow<'a, str>> {
        self.get_path(&Path::parse(path).ok()?)
    }

    /// Like [`Message::get`] but reports a malformed path.
    pub fn try_get(&self, path: &str) -> Result<Option<Cow<'a, str>>, PathError> {
        Ok(self.get_path(&Path::parse(path)?))
    }

    fn msh_text(&self, n: usize) -> Option<Cow<'a, str>> {
        let f = self.msh().field(n)?;
        (!f.is_empty()).then(|| f.text())
    }

    /// MSH-9 message type.
    pub fn message_type(&self) -> Option<MessageType<'a>> {
        let f = self.msh().field(9)?;
        let rep = f.repetition(1)?;
        let comp = |n| rep.component(n).map_or(Cow::Borrowed(""), |c| c.text());
        let code = comp(1);
        if code.is_empty() {
            return None;
        }
        Some(MessageType {
            code,
            trigger_event: comp(2),
            structure: comp(3),
        })
    }

    /// MSH-10 message control ID.
    pub fn control_id(&self) -> Option<Cow<'a, str>> {
        self.msh_text(10)
    }

    /// MSH-3 sending application (an HD; `.text()` is its namespace ID).
    pub fn sending_application(&self) -> Option<Field<'a>> {
        self.msh().field(3)
    }
    /// MSH-4 sending facility.
    pub fn sending_facility(&self) -> Option<Field<'a>> {
        self.msh().field(4)
    }
    /// MSH-5 receiving application.
    pub fn receiving_application(&self) -> Option<Field<'a>> {
        self.msh().field(5)
    }
    /// MSH-6 receiving facility.
    pub fn receiving_facility(&self) -> Option<Field<'a>> {
        self.msh().field(6)
    }
    /// MSH-11 processing ID (`P`, `T`, `D`; table 0103).
    pub fn processing_id(&self) -> Option<Cow<'a, str>> {
        self.msh_text(11)
    }
    /// MSH-12 version ID (`2.5.1`; table 0104).
    pub fn version(&self) -> Option<Cow<'a, str>> {
        self.msh_text(12)
    }
    /// MSH-15 accept acknowledgment type. Unknown codes read as `None` (see `get("MSH-15")`).
    pub fn accept_ack_type(&self) -> Option<AckCondition> {
        AckCondition::from_code(&self.msh_text(15)?)
    }
    /// MSH-16 application acknowledgment type.
    pub fn application_ack_type(&self) -> Option<AckCondition> {
        AckCondition::from_code(&self.msh_text(16)?)
    }
    /// True if MSH-15 or MSH-16 is valued: the sender asks for enhanced-mode acknowledgment
    /// (HL7 v2.5.1 section 2.9.3).
    pub fn is_enhanced_mode(&self) -> bool {
        self.msh_text(15).is_some() || self.msh_text(16).is_some()
    }
    /// MSH-18 character set as written (first repetition), if any.
    pub fn charset_name(&self) -> Option<Cow<'a, str>> {
        self.msh_text(18)
    }
}
