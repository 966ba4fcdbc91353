//! HL7 v2.5.1 structure and content validation: segment order, groups, usage and
//! cardinality for ADT_A01 (A01/A04/A08/A13), ADT_A02, ADT_A03, ORM_O01, OMI_O23, ORU_R01,
//! SIU_S12 and ACK; required fields, repetition, data types (DTM/TS, DT, NM, SI) and coded
//! values against the common tables. Every problem is reported with its location, not only
//! the first.

mod defs;
mod fields;
mod structures;

use crate::ack::{ErrorCode, ErrorDetail, ErrorLocation, Severity};
use crate::parse::element;
use crate::parse::message::Message;
use structures::{Kind, Node};

/// What to do with segments the structure does not list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExtraSegments {
    /// Ignore them silently.
    Ignore,
    /// Report them as warnings (default for non-Z segments; Z segments are always ignored
    /// unless [`ValidationOptions::z_segments`] says otherwise).
    #[default]
    Warn,
    /// Report them as errors (segment sequence error, code 100).
    Error,
}

/// Validation options.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ValidationOptions {
    /// Unknown (not in the structure, non-Z) segments.
    pub unknown_segments: ExtraSegments,
    /// Z segments (locally defined, e.g. ZDS).
    pub z_segments: ExtraSegments,
    /// Check coded values against the tables.
    pub check_tables: bool,
    /// Report an unsupported message structure as an error (else information only).
    pub require_known_structure: bool,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        Self {
            unknown_segments: ExtraSegments::Warn,
            z_segments: ExtraSegments::Ignore,
            check_tables: true,
            require_known_structure: false,
        }
    }
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where (segment ID and occurrence, field, repetition, component).
    pub location: ErrorLocation,
    /// Table 0357 condition code.
    pub code: ErrorCode,
    /// Severity (table 0516).
    pub severity: Severity,
    /// Explanation.
    pub message: String,
}

impl core::fmt::Display for Problem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} {}: {} ({} {})",
            self.severity.as_str(),
            self.location,
            self.message,
            self.code.code(),
            self.code.text()
        )
    }
}

impl Problem {
    /// The problem as an ERR detail for an ACK.
    pub fn to_error_detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            severity: self.severity,
            location: Some(self.location.clone()),
            diagnostic: None,
            user_message: Some(self.message.clone()),
        }
    }
}

/// The validation outcome.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The structure the message was checked against (e.g. `ORU_R01`), if supported.
    pub structure: Option<&'static str>,
    /// All problems, in message order.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True if no problem has severity error.
    pub fn is_valid(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }
    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }
}

struct SegInfo<'m> {
    name: &'m str,
    seq: usize,
    /// This segment's bit in the structure's first-set masks (0: not in the structure).
    bit: u64,
}

/// The segments of a message (inline: most messages have fewer than 32).
type SegInfos<'m> = smallvec::SmallVec<[SegInfo<'m>; 32]>;

struct Matcher<'m, 'o> {
    segs: SegInfos<'m>,
    opts: &'o ValidationOptions,
    pos: usize,
    problems: Vec<Problem>,
    /// While resynchronising after an out-of-order segment, missing segments are not reported again.
    quiet: bool,
}

fn loc(segment: &str, seq: usize) -> ErrorLocation {
    ErrorLocation {
        segment: segment.to_owned(),
        sequence: seq,
        ..ErrorLocation::default()
    }
}

impl Matcher<'_, '_> {
    /// Skips segments the grammar does not know (reported per policy).
    fn skip_extra(&mut self) {
        while let Some(s) = self.segs.get(self.pos) {
            if s.bit != 0 {
                return;
            }
            let z = s.name.starts_with('Z');
            let policy = if z {
                self.opts.z_segments
            } else {
                self.opts.unknown_segments
            };
            let severity = match policy {
                ExtraSegments::Ignore => None,
                ExtraSegments::Warn => Some(Severity::Warning),
                ExtraSegments::Error => Some(Severity::Error),
            };
            if let Some(severity) = severity {
                self.problems.push(Problem {
                    location: loc(s.name, s.seq),
                    code: ErrorCode::SegmentSequence,
                    severity,
                    message: format!("segment {} is not part of this message structure", s.name),
                });
            }
            self.pos += 1;
        }
    }

    fn missing(&mut self, what: &str) {
        if self.quiet {
            return;
        }
        let (location, at) = match self.segs.get(self.pos) {
            Some(s) => (loc(s.name, s.seq), "before this segment"),
            None => (
                self.segs
                    .last()
                    .map_or_else(ErrorLocation::default, |s| loc(s.name, s.seq)),
                "after this segment, at the end of the message",
            ),
        };
        self.problems.push(Problem {
            location,
            code: ErrorCode::SegmentSequence,
            severity: Severity::Error,
            message: format!("required {what} missing ({at})"),
        });
    }

    /// Matches a sequence of nodes; returns true if anything was consumed.
    fn seq(&mut self, nodes: &[Node]) -> bool {
        let start = self.pos;
        for node in nodes {
            let mut count = 0;
            loop {
                self.skip_extra();
                if count > 0 && !node.repeating {
                    break;
                }
                let Some(bit) = self.segs.get(self.pos).map(|s| s.bit) else {
                    break;
                };
                if node.first & bit == 0 {
                    break;
                }
                match &node.kind {
                    Kind::Seg(_) | Kind::Choice(_) => self.pos += 1,
                    Kind::Group(children) => {
                        let before = self.pos;
                        self.seq(children);
                        if self.pos == before {
                            break;
                        }
                    }
                }
                count += 1;
            }
            if count == 0 && !node.optional {
                self.missing(&node.label());
            }
        }
        self.pos > start
    }
}

/// Validates a parsed message with default options.
///
/// ```
/// use xenrad_hl7v2::{Message, validate::validate};
/// let msg = Message::parse(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|1|P|2.5.1\rPID|1||1^^^H^MR||DOE^J||19800101|X\r").unwrap();
/// let report = validate(&msg);
/// assert!(!report.is_valid());
/// let text: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
/// assert!(text.iter().any(|t| t.contains("EVN")));          // required segment missing
/// assert!(text.iter().any(|t| t.contains("PID-8")));        // 'X' not in table 0001
/// ```
pub fn validate(msg: &Message<'_>) -> Report {
    validate_with(msg, &ValidationOptions::default())
}

/// Validates a parsed message.
pub fn validate_with(msg: &Message<'_>, opts: &ValidationOptions) -> Report {
    let mut report = Report::default();
    // Segment occurrences (ERL sequence numbers).
    let mut counts = Counts::default();
    let segs: SegInfos<'_> = msg
        .segments()
        .map(|s| {
            let name = s.name();
            SegInfo {
                name,
                seq: counts.next(name),
                bit: 0,
            }
        })
        .collect();

    // Structure (MSH-9-3, else from MSH-9-1/2).
    let mt = msg.message_type();
    let structure = mt.as_ref().and_then(|t| {
        if t.structure.is_empty() {
            structures::structure_for(&t.code, &t.trigger_event)
        } else {
            structures::STRUCTURES
                .iter()
                .map(|(n, _)| *n)
                .find(|n| *n == t.structure)
        }
    });
    report.structure = structure;
    let mut segs = segs;
    if let Some(st) = structure.and_then(structures::get) {
        for s in &mut segs {
            s.bit = st
                .known_keys
                .binary_search(&key(s.name))
                .map_or(0, |i| 1 << i);
        }
        let grammar = st.nodes.as_slice();
        let mut m = Matcher {
            segs: std::mem::take(&mut segs),
            opts,
            pos: 0,
            problems: Vec::new(),
            quiet: false,
        };
        m.seq(grammar);
        loop {
            m.skip_extra();
            let Some(s) = m.segs.get(m.pos) else { break };
            m.problems.push(Problem {
                location: loc(s.name, s.seq),
                code: ErrorCode::SegmentSequence,
                severity: Severity::Error,
                message: format!(
                    "segment {} is out of order for {}",
                    s.name,
                    structure.unwrap_or("?")
                ),
            });
            m.pos += 1;
            // Resynchronise: the segments after it may start a later part of the structure.
            m.quiet = true;
            m.seq(grammar.get(1..).unwrap_or_default());
        }
        report.problems.extend(m.problems);
        segs = m.segs;
    } else {
        let name = mt.as_ref().map_or_else(String::new, |t| {
            format!("{}^{}^{}", t.code, t.trigger_event, t.structure)
        });
        report.problems.push(Problem {
            location: ErrorLocation {
                field: Some(9),
                ..loc("MSH", 1)
            },
            code: ErrorCode::UnsupportedMessageType,
            severity: if opts.require_known_structure {
                Severity::Error
            } else {
                Severity::Information
            },
            message: format!(
                "no structure definition for message type {name:?}; only fields were checked"
            ),
        });
    }
    check_fields(msg, &segs, opts, &mut report.problems);
    if report.problems.len() > 1 {
        report
            .problems
            .sort_by_cached_key(|p| (seg_order(&segs, &p.location), p.location.field.unwrap_or(0)));
    }
    report
}

/// Position of a problem's segment in the message (`usize::MAX` if it names none).
fn seg_order(segs: &[SegInfo<'_>], l: &ErrorLocation) -> usize {
    segs.iter()
        .position(|s| s.seq == l.sequence && short_eq(s.name, &l.segment))
        .unwrap_or(usize::MAX)
}

/// Equality for the short codes compared here, inlined (no memcmp call).
#[inline]
pub(crate) fn short_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// True if `v` is one of the values of a table (packed and sorted by the generator).
fn in_table(values: &[u128], v: &[u8]) -> bool {
    fields::pack(v).is_some_and(|k| {
        if values.len() <= 16 {
            values.contains(&k)
        } else {
            values.binary_search(&k).is_ok()
        }
    })
}

/// A segment ID as an integer (IDs are at most a few bytes; longer ones only need to differ).
pub(crate) fn key(name: &str) -> u64 {
    let b = name.as_bytes();
    let mut k = b.len() as u64;
    for &c in b.iter().take(7) {
        k = (k << 8) | u64::from(c);
    }
    k
}

/// Per-ID occurrence counter (a few distinct IDs per message: a linear list on the stack
/// beats hashing and allocating).
#[derive(Default)]
struct Counts(smallvec::SmallVec<[(u64, usize); 24]>);

impl Counts {
    fn next(&mut self, name: &str) -> usize {
        let k = key(name);
        if let Some(e) = self.0.iter_mut().find(|e| e.0 == k) {
            e.1 += 1;
            e.1
        } else {
            self.0.push((k, 1));
            1
        }
    }
}

/// The repetition, component and subcomponent delimiters as a byte-class table: the field scan
/// tests one byte with one load instead of three compares.
struct Classes {
    delims: Option<crate::Delimiters>,
    table: [bool; 256],
}

impl Default for Classes {
    fn default() -> Self {
        Self {
            delims: None,
            table: [false; 256],
        }
    }
}

impl Classes {
    fn new(d: crate::Delimiters) -> Self {
        let mut table = [false; 256];
        for b in [d.repetition, d.component, d.subcomponent]
            .into_iter()
            .flatten()
        {
            table[usize::from(b)] = true;
        }
        Self {
            delims: Some(d),
            table,
        }
    }
    #[inline]
    fn is_delimiter(&self, b: u8) -> bool {
        self.table[usize::from(b)]
    }
}

/// Where a field check reports: segment occurrence and field number.
struct At<'m> {
    name: &'m str,
    seq: usize,
    field: usize,
}

impl At<'_> {
    fn loc(&self, rep: Option<usize>, comp: Option<usize>) -> ErrorLocation {
        ErrorLocation {
            field: Some(self.field),
            field_rep: rep,
            component: comp,
            ..loc(self.name, self.seq)
        }
    }
}

/// Fields of every segment against the generated v2.5.1 rules, in one pass over each
/// segment's bytes (no field views are built for the many fields without a value check).
fn check_fields(
    msg: &Message<'_>,
    segs: &[SegInfo<'_>],
    opts: &ValidationOptions,
    out: &mut Vec<Problem>,
) {
    let mut classes = Classes::default();
    for (seg, info) in msg.segments().zip(segs) {
        let (name, seq) = (info.name, info.seq);
        let Some(rules) = defs::defs().segment(name) else {
            continue;
        };
        let ctx = seg.ctx;
        if classes.delims != Some(ctx.delims) {
            classes = Classes::new(ctx.delims);
        }
        let sep = ctx.delims.field;
        let raw = seg.raw();
        // MSH-1 is the separator itself and MSH-2 the encoding characters (2.15.9.1-2): both
        // present by construction of a parsed message; the other fields follow MSH-2.
        let msh = short_eq(name, "MSH");
        let (skip, body) = if msh {
            (2, raw.get(4..))
        } else {
            (0, raw.get(name.len() + 1..))
        };
        let mut body = body.unwrap_or_default();
        let mut more = raw.len() > name.len();
        if msh {
            // MSH-2: the encoding characters, not a checked value.
            next_field(&mut body, &mut more, sep);
        }
        for (i, rule) in rules.iter().enumerate().skip(skip) {
            let field = next_field(&mut body, &mut more, sep);
            if field.is_empty() {
                if rule.min > 0 {
                    out.push(Problem {
                        location: ErrorLocation {
                            field: Some(i + 1),
                            ..loc(name, seq)
                        },
                        code: ErrorCode::RequiredFieldMissing,
                        severity: Severity::Error,
                        message: format!("{name}-{} is required", i + 1),
                    });
                }
                continue;
            }
            if rule.max == defs::UNBOUNDED && !rule.checks_value() {
                continue;
            }
            let at = At {
                name,
                seq,
                field: i + 1,
            };
            check_field(rule, field, &classes, &at, &ctx, opts, out);
        }
        if name == "OBX" {
            check_obx5(&seg, seq, out);
        }
    }
}

/// The next field of a segment body (empty once the body is used up). Fields are short: a byte
/// loop over the first 32 bytes finds most separators before memchr would have set up.
#[inline]
fn next_field<'a>(body: &mut &'a [u8], more: &mut bool, sep: u8) -> &'a [u8] {
    if !*more {
        return &[];
    }
    let b = *body;
    let head = b.len().min(32);
    let at = match b[..head].iter().position(|&c| c == sep) {
        Some(i) => Some(i),
        None if b.len() > head => memchr::memchr(sep, &b[head..]).map(|i| head + i),
        None => None,
    };
    if let Some(i) = at {
        *body = &b[i + 1..];
        &b[..i]
    } else {
        *more = false;
        *body = &[];
        b
    }
}

/// Repetitions, then the value (primitive) or the checked components (composite) of each, in
/// one left-to-right scan of the field's bytes.
fn check_field(
    rule: &fields::FieldRule,
    field: &[u8],
    classes: &Classes,
    at: &At<'_>,
    ctx: &element::Ctx,
    opts: &ValidationOptions,
    out: &mut Vec<Problem>,
) {
    let delims = &ctx.delims;
    // Absent delimiters become 256, which no byte equals.
    let code = |x: Option<u8>| x.map_or(256u16, u16::from);
    let (rd, cd) = (code(delims.repetition), code(delims.component));
    let reps = if rule.checks_value() {
        let composite = rule.dt == fields::Dt::Composite;
        // Components after the last checked one are skipped to the next repetition.
        let last = if composite { rule.comps.len() } else { 1 };
        let (mut rep, mut comp, mut sub) = (1, 1, 1);
        let mut start = 0;
        let mut i = 0;
        loop {
            while i < field.len() && !classes.is_delimiter(field[i]) {
                i += 1;
            }
            let byte = field.get(i).map_or(257, |&b| u16::from(b));
            // The leaf field[start..i] at repetition rep, component comp, subcomponent sub.
            if sub == 1 {
                let leaf = &field[start..i];
                if composite {
                    if let Some(cr) = rule.comps.get(comp - 1).filter(|cr| cr.checks()) {
                        let value = Value {
                            dt: cr.dt,
                            table: cr.table,
                            slot: cr.slot,
                            max_len: cr.max_len,
                        };
                        value.check(leaf, at, Some(rep), Some(comp), ctx, opts, out);
                    }
                } else if comp == 1 {
                    // A primitive's value is its first component (TS: the DTM).
                    let value = Value {
                        dt: rule.dt,
                        table: rule.table,
                        slot: rule.slot,
                        max_len: rule.max_len,
                    };
                    value.check(leaf, at, Some(rep), None, ctx, opts, out);
                }
            }
            if byte == 257 {
                break rep;
            } else if byte == rd {
                (rep, comp, sub) = (rep + 1, 1, 1);
            } else if byte == cd {
                (comp, sub) = (comp + 1, 1);
                if comp > last {
                    let Some(next) = delims
                        .repetition
                        .and_then(|x| element::find(x, &field[i..]))
                    else {
                        break rep;
                    };
                    i += next;
                    (rep, comp, sub) = (rep + 1, 1, 1);
                }
            } else {
                sub += 1;
            }
            i += 1;
            start = i;
        }
    } else if rule.max != defs::UNBOUNDED {
        1 + field.iter().filter(|&&b| u16::from(b) == rd).count()
    } else {
        return;
    };
    if rule.max != defs::UNBOUNDED && reps > usize::from(rule.max.max(1)) {
        out.push(Problem {
            location: at.loc(Some(2), None),
            code: ErrorCode::DataType,
            severity: Severity::Error,
            message: format!(
                "{}-{} does not repeat but has {reps} repetitions",
                at.name, at.field
            ),
        });
    }
}

/// What one value is checked against.
struct Value {
    dt: fields::Dt,
    table: u16,
    slot: u16,
    max_len: u16,
}

impl Value {
    #[allow(clippy::too_many_arguments)]
    fn check(
        &self,
        raw: &[u8],
        at: &At<'_>,
        rep: Option<usize>,
        comp: Option<usize>,
        ctx: &element::Ctx,
        opts: &ValidationOptions,
        out: &mut Vec<Problem>,
    ) {
        // Empty, or the explicit null `""` (2.5.3): nothing to check.
        if raw.is_empty() || raw == b"\"\"" {
            return;
        }
        // Plain ASCII without escapes (nearly every checked value) is the same text in every
        // supported charset: checked as bytes, decoded only to word a problem.
        let esc = ctx.delims.escape.map_or(256u16, u16::from);
        let plain = raw.iter().all(|&b| b < 0x80 && u16::from(b) != esc);
        let decoded;
        let v: &[u8] = if plain {
            raw
        } else {
            decoded = crate::escape::decode(raw, &ctx.delims, ctx.encoding, ctx.policy);
            decoded.as_bytes()
        };
        let text = || String::from_utf8_lossy(v);
        let problem = |code, message| Problem {
            location: at.loc(rep, comp),
            code,
            severity: Severity::Error,
            message,
        };
        if self.dt.has_syntax()
            && let Some(why) = fields::check_type(self.dt, v)
        {
            out.push(problem(ErrorCode::DataType, format!("{:?}: {why}", text())));
        }
        // A value no longer in bytes than the limit cannot exceed it in characters.
        let max = usize::from(self.max_len);
        if max > 0 && v.len() > max {
            let chars = text().chars().count();
            if chars > max {
                out.push(problem(
                    ErrorCode::DataType,
                    format!(
                        "{:?} is {chars} characters, more than the {max} allowed",
                        text()
                    ),
                ));
            }
        }
        if opts.check_tables
            && self.slot != defs::NO_TABLE
            && !in_table(defs::defs().values(self.slot), v)
        {
            out.push(problem(
                ErrorCode::TableValueNotFound,
                format!("{:?} is not in HL7 table {:04}", text(), self.table),
            ));
        }
    }
}

/// OBX-5 against OBX-2 for the value types with a checkable syntax (HL7 v2.5.1 section 7.4.2.5).
fn check_obx5(seg: &crate::Segment<'_>, seq: usize, out: &mut Vec<Problem>) {
    let vt = seg.text(2).unwrap_or_default();
    let dt = match vt.as_ref() {
        "NM" => fields::Dt::Num,
        "DT" => fields::Dt::Date,
        "TM" => fields::Dt::Time,
        "DTM" | "TS" => fields::Dt::Dtm,
        _ => return,
    };
    let Some(f5) = seg.field(5) else { return };
    for (ri, rep) in f5.repetitions().enumerate() {
        let v = rep.text();
        if v.is_empty() || v == "\"\"" {
            continue;
        }
        if let Some(why) = fields::check_type(dt, v.as_bytes()) {
            out.push(Problem {
                location: ErrorLocation {
                    field: Some(5),
                    field_rep: Some(ri + 1),
                    ..loc("OBX", seq)
                },
                code: ErrorCode::DataType,
                severity: Severity::Error,
                message: format!("{v:?}: {why} (OBX-2 is {vt})"),
            });
        }
    }
}

/// The syntax checks a receiver applies to every message before acting on it, whatever its
/// type or version (unlike [`validate`], which checks one structure's grammar and fields):
///
/// * every escape sequence is closed within its element (HL7 v2.5.1 section 2.7: an escape
///   sequence is the escape character, an identifier and the escape character again; one
///   left open runs into a delimiter, which means MSH-2 does not describe the delimiters
///   the message really uses, e.g. `^~&` declares `&` the escape character while the body
///   uses it as the subcomponent separator);
/// * MSH-15 and MSH-16, when valued, hold a table 0155 code (section 2.14.9.15/16); any
///   other value leaves the acknowledgment the sender asked for undefined.
///
/// Returns the first problem (boxed: it is the rare path), located (segment, occurrence, field, component) and with the
/// byte offset in its message.
///
/// ```
/// use xenrad_hl7v2::{Message, validate::well_formed};
/// let ok = Message::parse(b"MSH|^~\\&|A|B|C|D|||ADT^A08|1|P|2.5.1\rPID|1||X\\T\\Y\r").unwrap();
/// assert!(well_formed(&ok).is_ok());
/// let open = Message::parse(b"MSH|^~&|A|B|C|D|||ADT^A08|1|P|2.5.1\rPID|1||X^^^&1.2.3^ISO\r").unwrap();
/// let p = well_formed(&open).unwrap_err();
/// assert_eq!(p.location.to_string(), "PID-3-4");
/// ```
pub fn well_formed(msg: &Message<'_>) -> Result<(), Box<Problem>> {
    let d = msg.delimiters();
    if let Some(esc) = d.escape {
        let mut counts = Counts::default();
        for seg in msg.segments() {
            let name = seg.name();
            let seq = counts.next(name);
            let raw = seg.raw();
            // MSH-1 and MSH-2 hold the delimiters themselves.
            let from = if name == "MSH" {
                memchr::memchr(d.field, raw.get(4..).unwrap_or_default())
                    .map_or(raw.len(), |i| i + 4)
            } else {
                0
            };
            let mut i = from;
            while let Some(n) = memchr::memchr(esc, &raw[i..]) {
                let open = i + n;
                let rest = &raw[open + 1..];
                let close = rest.iter().position(|&b| {
                    b == esc
                        || b == d.field
                        || Some(b) == d.component
                        || Some(b) == d.repetition
                        || Some(b) == d.subcomponent
                });
                match close {
                    Some(c) if rest[c] == esc => i = open + 1 + c + 1,
                    _ => {
                        let (field, component) = position_in(raw, open, &d, name == "MSH");
                        return Err(Box::new(Problem {
                            location: ErrorLocation {
                                field: Some(field),
                                component,
                                ..loc(name, seq)
                            },
                            code: ErrorCode::DataType,
                            severity: Severity::Error,
                            message: format!(
                                "escape sequence opened at byte {} is not closed within its element \
                                 (MSH-2 declares {:?} the escape character)",
                                seg.offset() + open,
                                char::from(esc)
                            ),
                        }));
                    }
                }
                if i >= raw.len() {
                    break;
                }
            }
        }
    }
    for n in [15, 16] {
        let Some(f) = msg.msh().field(n) else {
            continue;
        };
        let t = f.text();
        let v = t.trim();
        if !v.is_empty() && crate::AckCondition::from_code(v).is_none() {
            return Err(Box::new(Problem {
                location: ErrorLocation {
                    field: Some(n),
                    ..loc("MSH", 1)
                },
                code: ErrorCode::TableValueNotFound,
                severity: Severity::Error,
                message: format!(
                    "MSH-{n} {:?} is not an acknowledgment condition of table 0155 (AL, NE, ER, SU)",
                    truncate(v, 40)
                ),
            }));
        }
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// HL7 field number and component of byte `at` in a segment's raw bytes.
fn position_in(raw: &[u8], at: usize, d: &crate::Delimiters, msh: bool) -> (usize, Option<usize>) {
    let before = &raw[..at];
    let seps = memchr::memchr_iter(d.field, before).count();
    // MSH-1 is the field separator itself, so MSH field numbers are one higher.
    let field = if msh { seps + 1 } else { seps };
    let start = before
        .iter()
        .rposition(|&b| b == d.field || Some(b) == d.repetition)
        .map_or(0, |i| i + 1);
    let comp = d
        .component
        .map(|c| memchr::memchr_iter(c, &before[start..]).count() + 1);
    (field, comp)
}
