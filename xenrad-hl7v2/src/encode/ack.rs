//! ACK/NAK generation (HL7 v2.5.1 section 2.9 "Message processing rules", 2.14.1 ACK,
//! 2.15.5 ERR, 2.15.8 MSA, tables 0008, 0357, 0516).
//!
//! The ACK uses the sender's delimiters (MSH-1/MSH-2) and character set (MSH-18), swaps
//! sending and receiving application and facility, copies MSH-10 into MSA-2, MSH-11 and MSH-12,
//! and answers `ACK^<trigger>^ACK`. Text we add is escaped and encoded in the sender's charset.

use crate::charset;
use crate::delimiters::Delimiters;
use crate::escape::escape;
use crate::parse::element::nth_part;
use crate::parse::error::{ParseError, ParseErrorKind};
use crate::parse::message::{AckCondition, Message};
use crate::parse::options::Terminators;
use crate::parse::scan::Lines;
use encoding_rs::Encoding;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Acknowledgment code (MSA-1, table 0008).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// Original mode: application accept.
    AA,
    /// Original mode: application error.
    AE,
    /// Original mode: application reject.
    AR,
    /// Enhanced mode: commit accept.
    CA,
    /// Enhanced mode: commit error.
    CE,
    /// Enhanced mode: commit reject.
    CR,
}

impl AckCode {
    /// The table 0008 code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AA => "AA",
            Self::AE => "AE",
            Self::AR => "AR",
            Self::CA => "CA",
            Self::CE => "CE",
            Self::CR => "CR",
        }
    }
    /// The code to use for `msg`: accept, error or reject in enhanced mode (commit level) if
    /// MSH-15/16 is valued, else in original mode (section 2.9.2 / 2.9.3). Same as
    /// [`AckMode::of`]`(msg).`[`code`](AckMode::code)`(outcome)`.
    pub fn for_message(msg: &Message<'_>, outcome: Outcome) -> Self {
        AckMode::of(msg).code(outcome)
    }
}

/// How a message asks to be acknowledged, read once from its MSH: original mode (HL7 v2.5.1
/// ch. 2.9.2: MSH-15 and MSH-16 empty) or enhanced mode (ch. 2.9.3), and in enhanced mode the
/// MSH-15 accept acknowledgement condition (table 0155).
///
/// ```
/// use xenrad_hl7v2::{Message, ack::{AckCode, AckMode, Outcome}};
/// let msg = Message::parse(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1|||ER|NE\r").unwrap();
/// let mode = AckMode::of(&msg);
/// assert_eq!(mode.code(Outcome::Accept), AckCode::CA);
/// assert!(!mode.wants_ack(Outcome::Accept)); // MSH-15 `ER`: only errors and rejects
/// assert!(mode.wants_ack(Outcome::Error));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckMode {
    /// Enhanced mode: MSH-15 or MSH-16 is valued (ch. 2.9.3); commit codes `CA`/`CE`/`CR`.
    pub enhanced: bool,
    /// MSH-15 accept acknowledgement type (table 0155), if valued and known.
    pub accept: Option<AckCondition>,
}

impl AckMode {
    /// Original mode: every message is answered with `AA`/`AE`/`AR`.
    pub const ORIGINAL: Self = Self {
        enhanced: false,
        accept: None,
    };

    /// Reads MSH-15 and MSH-16 of `msg`.
    pub fn of(msg: &Message<'_>) -> Self {
        Self {
            enhanced: msg.is_enhanced_mode(),
            accept: msg.accept_ack_type(),
        }
    }

    /// MSA-1 for `outcome`: table 0008 original-mode codes (`AA`/`AE`/`AR`, ch. 2.9.2) or
    /// enhanced-mode commit codes (`CA`/`CE`/`CR`, ch. 2.9.3).
    pub fn code(self, outcome: Outcome) -> AckCode {
        match (self.enhanced, outcome) {
            (false, Outcome::Accept) => AckCode::AA,
            (false, Outcome::Error) => AckCode::AE,
            (false, Outcome::Reject) => AckCode::AR,
            (true, Outcome::Accept) => AckCode::CA,
            (true, Outcome::Error) => AckCode::CE,
            (true, Outcome::Reject) => AckCode::CR,
        }
    }

    /// Whether the sender asked for the (accept) acknowledgement of `outcome`: always in
    /// original mode (ch. 2.9.2); in enhanced mode as MSH-15 says (ch. 2.9.3, table 0155:
    /// `AL` always, `NE` never, `ER` only for errors and rejects, `SU` only on success; an
    /// empty or unknown MSH-15 is treated as `AL`).
    pub fn wants_ack(self, outcome: Outcome) -> bool {
        if !self.enhanced {
            return true;
        }
        let success = outcome == Outcome::Accept;
        match self.accept {
            Some(AckCondition::Never) => false,
            Some(AckCondition::Error) => !success,
            Some(AckCondition::Successful) => success,
            Some(AckCondition::Always) | None => true,
        }
    }
}

/// Whether the sender of `msg` asked for the acknowledgement of `outcome` (HL7 v2.5.1 ch. 2.9.3,
/// MSH-15, table 0155); see [`AckMode::wants_ack`].
pub fn wants_ack(msg: &Message<'_>, outcome: Outcome) -> bool {
    AckMode::of(msg).wants_ack(outcome)
}

/// Processing outcome, mapped to an [`AckCode`] by [`AckCode::for_message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Accept,
    /// Error while processing.
    Error,
    /// Rejected (unsupported or malformed).
    Reject,
}

/// Error severity (ERR-4, table 0516).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Severity {
    /// `E`: error.
    #[default]
    Error,
    /// `W`: warning.
    Warning,
    /// `I`: information.
    Information,
}

impl Severity {
    /// The table 0516 code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "E",
            Self::Warning => "W",
            Self::Information => "I",
        }
    }
}

/// Message error condition code (ERR-3, table 0357).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0: message accepted.
    Accepted,
    /// 100: segment sequence error.
    SegmentSequence,
    /// 101: required field missing.
    RequiredFieldMissing,
    /// 102: data type error.
    DataType,
    /// 103: table value not found.
    TableValueNotFound,
    /// 200: unsupported message type.
    UnsupportedMessageType,
    /// 201: unsupported event code.
    UnsupportedEventCode,
    /// 202: unsupported processing ID.
    UnsupportedProcessingId,
    /// 203: unsupported version ID.
    UnsupportedVersionId,
    /// 204: unknown key identifier.
    UnknownKey,
    /// 205: duplicate key identifier.
    DuplicateKey,
    /// 206: application record locked.
    RecordLocked,
    /// 207: application internal error.
    InternalError,
}

impl ErrorCode {
    /// Numeric code.
    pub fn code(self) -> u16 {
        match self {
            Self::Accepted => 0,
            Self::SegmentSequence => 100,
            Self::RequiredFieldMissing => 101,
            Self::DataType => 102,
            Self::TableValueNotFound => 103,
            Self::UnsupportedMessageType => 200,
            Self::UnsupportedEventCode => 201,
            Self::UnsupportedProcessingId => 202,
            Self::UnsupportedVersionId => 203,
            Self::UnknownKey => 204,
            Self::DuplicateKey => 205,
            Self::RecordLocked => 206,
            Self::InternalError => 207,
        }
    }
    /// Table 0357 description.
    pub fn text(self) -> &'static str {
        match self {
            Self::Accepted => "Message accepted",
            Self::SegmentSequence => "Segment sequence error",
            Self::RequiredFieldMissing => "Required field missing",
            Self::DataType => "Data type error",
            Self::TableValueNotFound => "Table value not found",
            Self::UnsupportedMessageType => "Unsupported message type",
            Self::UnsupportedEventCode => "Unsupported event code",
            Self::UnsupportedProcessingId => "Unsupported processing id",
            Self::UnsupportedVersionId => "Unsupported version id",
            Self::UnknownKey => "Unknown key identifier",
            Self::DuplicateKey => "Duplicate key identifier",
            Self::RecordLocked => "Application record locked",
            Self::InternalError => "Application internal error",
        }
    }
}

/// Where an error is (ERR-2, data type ERL): segment ID and 1-based sequence, then
/// optional field, field repetition, component and subcomponent.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ErrorLocation {
    /// Segment ID.
    pub segment: String,
    /// 1-based occurrence of this segment ID in the message.
    pub sequence: usize,
    /// Field position.
    pub field: Option<usize>,
    /// Field repetition (1-based).
    pub field_rep: Option<usize>,
    /// Component number.
    pub component: Option<usize>,
    /// Subcomponent number.
    pub subcomponent: Option<usize>,
}

impl core::fmt::Display for ErrorLocation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.segment)?;
        if self.sequence > 1 {
            write!(f, "({})", self.sequence)?;
        }
        if let Some(n) = self.field {
            write!(f, "-{n}")?;
            if let Some(r) = self.field_rep.filter(|&r| r > 1) {
                write!(f, "({r})")?;
            }
            if let Some(c) = self.component {
                write!(f, "-{c}")?;
                if let Some(s) = self.subcomponent {
                    write!(f, "-{s}")?;
                }
            }
        }
        Ok(())
    }
}

/// One error to report in an ERR segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorDetail {
    /// ERR-3 condition code.
    pub code: ErrorCode,
    /// ERR-4 severity.
    pub severity: Severity,
    /// ERR-2 location.
    pub location: Option<ErrorLocation>,
    /// ERR-7 diagnostic information (for the sender's support staff).
    pub diagnostic: Option<String>,
    /// ERR-8 user message.
    pub user_message: Option<String>,
}

impl ErrorDetail {
    /// An error with a code and a message, no location.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            severity: Severity::Error,
            location: None,
            diagnostic: None,
            user_message: Some(message.into()),
        }
    }
    /// Sets the location.
    #[must_use]
    pub fn at(mut self, location: ErrorLocation) -> Self {
        self.location = Some(location);
        self
    }
    /// Maps a parse error to a table 0357 code and an MSH/segment location.
    pub fn from_parse_error(e: &ParseError) -> Self {
        let code = match e.kind {
            ParseErrorKind::Delimiters(_)
            | ParseErrorKind::UnsupportedCharset(_)
            | ParseErrorKind::TruncatedMsh => ErrorCode::DataType,
            ParseErrorKind::TooLarge { .. } | ParseErrorKind::TooManySegments { .. } => {
                ErrorCode::InternalError
            }
            _ => ErrorCode::SegmentSequence,
        };
        let location = match (&e.kind, e.segment) {
            (ParseErrorKind::InvalidSegmentId | ParseErrorKind::SecondMsh, _) | (_, None) => None,
            (_, Some(_)) => Some(ErrorLocation {
                segment: "MSH".into(),
                sequence: 1,
                field: e.field,
                ..ErrorLocation::default()
            }),
        };
        Self {
            code,
            severity: Severity::Error,
            location,
            diagnostic: None,
            user_message: Some(e.to_string()),
        }
    }
}

/// Overrides for [`ack_with`]: the ACK's own MSH-7 and MSH-10. A field left `None` is
/// generated by [`AckIds::system`] (UTC; see [`AckIds`]).
#[derive(Clone, Debug, Default)]
pub struct AckOptions {
    /// MSH-7 date/time of the ACK (`YYYYMMDDHHMMSS[.SSSS][+ZZZZ]`); default: now, in UTC, as
    /// written by [`AckIds`].
    pub timestamp: Option<String>,
    /// MSH-10 of the ACK; default: a time-based ID unique within this process (20 chars,
    /// see [`AckIds`]).
    pub control_id: Option<String>,
}

/// A source of the current time for [`AckIds`]: inject one to make ACK headers reproducible
/// (tests) or to follow another clock. Any `Fn() -> SystemTime` is a clock.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's wall clock ([`SystemTime::now`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl<F: Fn() -> SystemTime + Send + Sync> Clock for F {
    fn now(&self) -> SystemTime {
        self()
    }
}

/// Process-wide sequence behind every [`AckIds`], so two generators never hand out the same
/// MSH-10 within one second.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// The one generator of an ACK's own MSH-7 (date/time of message) and MSH-10 (message control
/// id), used by [`ack`], [`ack_with`] (fields left `None` in [`AckOptions`]),
/// [`ack_unparseable`] and `xenrad-mllp`'s HL7 handler.
///
/// - **Time zone: UTC**, always, whatever the host's zone: MSH-7 is written as the DTM
///   `YYYYMMDDHHMMSS+0000` (HL7 v2.5.1 ch. 2.A.22 DTM with an explicit offset, so no receiver
///   has to guess the zone, and no daylight-saving jump makes the ACK times go backwards).
///   Second precision.
/// - **MSH-10**: the same UTC second `YYYYMMDDHHMMSS` followed by a 6-digit sequence number
///   shared by every generator of the process: 20 characters (the MSH-10 length of v2.5.1,
///   ch. 2.14.9.10), unique within the process unless a million ACKs are built in one second.
/// - **Clock**: the system clock ([`AckIds::system`]) or any [`Clock`] ([`AckIds::with_clock`]).
///   A clock before 1970 reads as 1970-01-01T00:00:00Z; nothing here panics.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use xenrad_hl7v2::ack::AckIds;
/// let ids = AckIds::with_clock(|| UNIX_EPOCH + Duration::from_secs(1_704_110_400));
/// let o = ids.next();
/// assert_eq!(o.timestamp.as_deref(), Some("20240101120000+0000"));
/// let id = o.control_id.unwrap();
/// assert_eq!((id.len(), &id[..14]), (20, "20240101120000"));
/// assert_ne!(ids.next().control_id.unwrap(), id);
/// ```
#[derive(Clone, Default)]
pub struct AckIds {
    /// `None`: the system clock (so [`AckIds::system`] is `const`).
    clock: Option<Arc<dyn Clock>>,
}

impl core::fmt::Debug for AckIds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AckIds")
            .field(
                "clock",
                &if self.clock.is_some() {
                    "injected"
                } else {
                    "system"
                },
            )
            .finish()
    }
}

impl AckIds {
    /// On the system clock.
    pub const fn system() -> Self {
        Self { clock: None }
    }

    /// On `clock`.
    pub fn with_clock(clock: impl Clock + 'static) -> Self {
        Self {
            clock: Some(Arc::new(clock)),
        }
    }

    /// MSH-7 and MSH-10 for the next ACK, from one clock reading.
    pub fn next(&self) -> AckOptions {
        let now = match &self.clock {
            Some(c) => c.now(),
            None => SystemTime::now(),
        };
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let second = utc_dtm(secs);
        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        let mut timestamp = String::with_capacity(19);
        timestamp.push_str(&second);
        timestamp.push_str("+0000");
        let mut control_id = second;
        let _ = write!(control_id, "{n:06}");
        AckOptions {
            timestamp: Some(timestamp),
            control_id: Some(control_id),
        }
    }

    /// `options` with its `None` fields generated by this generator.
    pub fn fill(&self, options: &AckOptions) -> AckOptions {
        if options.timestamp.is_some() && options.control_id.is_some() {
            return options.clone();
        }
        let generated = self.next();
        AckOptions {
            timestamp: options.timestamp.clone().or(generated.timestamp),
            control_id: options.control_id.clone().or(generated.control_id),
        }
    }
}

/// `YYYYMMDDHHMMSS` of a count of seconds since 1970-01-01T00:00:00Z, in UTC (proleptic
/// Gregorian calendar; days to civil date after H. Hinnant, "chrono-Compatible Low-Level Date
/// Algorithms"). Years past 9999 are written with more digits; no panic.
fn utc_dtm(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // days since 0000-03-01, in 400-year eras of 146,097 days
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    let mut out = String::with_capacity(20);
    let _ = write!(
        out,
        "{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}"
    );
    out
}

struct Writer<'d> {
    out: Vec<u8>,
    d: &'d Delimiters,
    enc: &'static Encoding,
}

impl Writer<'_> {
    fn raw(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
    fn sep(&mut self) {
        self.out.push(self.d.field);
    }
    fn comp(&mut self) {
        self.out.push(self.d.component.unwrap_or(b'^'));
    }
    fn text(&mut self, s: &str) {
        let bytes = charset::encode(s, self.enc);
        let esc = escape(&bytes, self.d);
        self.out.extend_from_slice(&esc);
    }
    fn err(&mut self, e: &ErrorDetail) {
        self.raw(b"\rERR");
        self.sep(); // ERR-1 (ELD, backward compatibility only) left empty
        self.sep();
        if let Some(loc) = &e.location {
            self.text(&loc.segment);
            self.comp();
            self.text(&loc.sequence.to_string());
            let parts = [loc.field, loc.field_rep, loc.component, loc.subcomponent];
            let n = parts.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
            for p in &parts[..n] {
                self.comp();
                if let Some(v) = p {
                    self.text(&v.to_string());
                }
            }
        }
        self.sep();
        self.text(&e.code.code().to_string());
        self.comp();
        self.text(e.code.text());
        self.comp();
        self.raw(b"HL70357");
        self.sep();
        self.raw(e.severity.as_str().as_bytes());
        let tail = [
            None,
            None,
            e.diagnostic.as_deref(),
            e.user_message.as_deref(),
        ];
        let n = tail.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        for t in &tail[..n] {
            self.sep();
            if let Some(t) = t {
                self.text(t);
            }
        }
    }
}

/// A copied value cut at the first CR or LF (possible with `Terminators::CrOnly`, where LF
/// is data), so the ACK never gains a segment break.
fn one_line(b: &[u8]) -> &[u8] {
    memchr::memchr2(b'\r', b'\n', b).map_or(b, |i| &b[..i])
}

/// Fields copied from the original MSH.
struct Header<'a> {
    sep: u8,
    enc_chars: &'a [u8],
    sending_app: &'a [u8],
    sending_fac: &'a [u8],
    receiving_app: &'a [u8],
    receiving_fac: &'a [u8],
    trigger: &'a [u8],
    control_id: &'a [u8],
    processing: &'a [u8],
    version: &'a [u8],
    charset: &'a [u8],
}

fn build(
    h: &Header<'_>,
    delims: &Delimiters,
    enc: &'static Encoding,
    code: AckCode,
    errors: &[ErrorDetail],
    options: &AckOptions,
) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::with_capacity(256),
        d: delims,
        enc,
    };
    w.raw(b"MSH");
    w.raw(&[h.sep]);
    w.raw(h.enc_chars);
    for f in [
        h.receiving_app,
        h.receiving_fac,
        h.sending_app,
        h.sending_fac,
    ] {
        w.sep();
        w.raw(f);
    }
    w.sep();
    let generated;
    let options = if options.timestamp.is_none() || options.control_id.is_none() {
        generated = AckIds::system().fill(options);
        &generated
    } else {
        options
    };
    if let Some(t) = &options.timestamp {
        w.text(t);
    }
    w.sep();
    w.sep();
    w.raw(b"ACK");
    if !h.trigger.is_empty() {
        w.comp();
        w.raw(h.trigger);
        w.comp();
        w.raw(b"ACK");
    }
    w.sep();
    if let Some(c) = &options.control_id {
        w.text(c);
    }
    w.sep();
    w.raw(if h.processing.is_empty() {
        b"P"
    } else {
        h.processing
    });
    w.sep();
    w.raw(if h.version.is_empty() {
        b"2.5.1"
    } else {
        h.version
    });
    if !h.charset.is_empty() {
        // MSH-13..17 empty, MSH-18 copied.
        for _ in 13..=18 {
            w.sep();
        }
        w.raw(h.charset);
    }
    w.raw(b"\rMSA");
    w.sep();
    w.raw(code.as_str().as_bytes());
    w.sep();
    w.raw(h.control_id);
    for e in errors {
        w.err(e);
    }
    w.raw(b"\r");
    w.out
}

/// Builds the ACK for `msg` with one optional error, default MSH-7/MSH-10.
///
/// ```
/// use xenrad_hl7v2::{Message, ack::{ack, AckCode}};
/// let msg = Message::parse(b"MSH|^~\\&|RIS|RAD|PACS|IMG|20240101||ORM^O01^ORM_O01|MSG7|P|2.5.1\r").unwrap();
/// let out = ack(&msg, AckCode::AA, None);
/// let reply = Message::parse(&out).unwrap();
/// assert_eq!(reply.get("MSA-2").as_deref(), Some("MSG7"));
/// assert_eq!(reply.get("MSH-3").as_deref(), Some("PACS"));
/// assert_eq!(reply.get("MSH-9-2").as_deref(), Some("O01"));
/// ```
pub fn ack(msg: &Message<'_>, code: AckCode, error: Option<&ErrorDetail>) -> Vec<u8> {
    ack_with(
        msg,
        code,
        error.map(core::slice::from_ref).unwrap_or_default(),
        &AckOptions::default(),
    )
}

/// Builds the ACK for `msg` with any number of ERR segments and explicit MSH-7/MSH-10.
pub fn ack_with(
    msg: &Message<'_>,
    code: AckCode,
    errors: &[ErrorDetail],
    options: &AckOptions,
) -> Vec<u8> {
    // One pass over MSH (fields 1..=18) instead of a scan from the start per field.
    let mut fields: [&[u8]; 19] = [b""; 19];
    let mut trigger: &[u8] = b"";
    for (i, f) in msg.msh().fields().enumerate().take(18) {
        fields[i + 1] = one_line(f.raw());
        if i + 1 == 9 {
            trigger = f.component(2).map_or(&b""[..], |c| one_line(c.raw()));
        }
    }
    let raw = |n: usize| fields[n];
    let h = Header {
        sep: msg.delimiters().field,
        enc_chars: raw(2),
        sending_app: raw(3),
        sending_fac: raw(4),
        receiving_app: raw(5),
        receiving_fac: raw(6),
        trigger,
        control_id: raw(10),
        processing: raw(11),
        version: raw(12),
        charset: raw(18),
    };
    build(&h, &msg.delimiters(), msg.encoding(), code, errors, options)
}

/// Best-effort reject (`AR`, or `CR` if MSH-15/16 look valued) for input that does not parse:
/// copies whatever can be read from the first MSH-looking line, falls back to `|^~\&`
/// otherwise. Never fails.
///
/// ```
/// use xenrad_hl7v2::{Message, ack::ack_unparseable};
/// let out = ack_unparseable(b"MSH|^~\\&|A|B|C|D|||ADT^A01|X9|P|2.5.1\rPI", None);
/// let reply = Message::parse(&out).unwrap();
/// assert_eq!(reply.get("MSA-1").as_deref(), Some("AR"));
/// assert_eq!(reply.get("MSA-2").as_deref(), Some("X9"));
/// ```
pub fn ack_unparseable(input: &[u8], error: Option<&ErrorDetail>) -> Vec<u8> {
    ack_unparseable_with(input, error, &AckOptions::default())
}

/// [`ack_unparseable`] with explicit MSH-7/MSH-10 (e.g. from an [`AckIds`] on an injected
/// clock).
pub fn ack_unparseable_with(
    input: &[u8],
    error: Option<&ErrorDetail>,
    options: &AckOptions,
) -> Vec<u8> {
    let default_err;
    let error = if let Some(e) = error {
        e
    } else {
        default_err = match crate::Message::parse(input) {
            Err(e) => ErrorDetail::from_parse_error(&e),
            Ok(_) => ErrorDetail::new(ErrorCode::InternalError, "message rejected"),
        };
        &default_err
    };
    let line = Lines::new(input, Terminators::Lenient)
        .map(|(s, e)| &input[s..e])
        .find(|l| l.starts_with(b"MSH"));
    let empty: &[u8] = b"";
    let std_enc: &[u8] = b"^~\\&";
    let mut h = Header {
        sep: b'|',
        enc_chars: std_enc,
        sending_app: empty,
        sending_fac: empty,
        receiving_app: empty,
        receiving_fac: empty,
        trigger: empty,
        control_id: empty,
        processing: empty,
        version: empty,
        charset: empty,
    };
    let mut d = Delimiters::STANDARD;
    let mut enhanced = false;
    if let Some(line) = line
        && let Some(&sep) = line.get(3)
    {
        let enc_end = memchr::memchr(sep, &line[4..]).map_or(line.len(), |i| i + 4);
        if let Ok(parsed) = Delimiters::from_msh(sep, &line[4..enc_end]) {
            d = parsed;
            h.sep = sep;
            h.enc_chars = &line[4..enc_end];
            let f = |n: usize| one_line(nth_part(line, Some(sep), n - 1).unwrap_or(empty));
            h.sending_app = f(3);
            h.sending_fac = f(4);
            h.receiving_app = f(5);
            h.receiving_fac = f(6);
            h.trigger = nth_part(f(9), d.component, 1).unwrap_or(empty);
            h.control_id = f(10);
            h.processing = f(11);
            h.version = f(12);
            enhanced = !f(15).is_empty() || !f(16).is_empty();
            // The charset is only copied if we can honour it.
            let cs = f(18);
            if charset::lookup(nth_part(cs, d.repetition, 0).unwrap_or(cs), &[]).is_some() {
                h.charset = cs;
            }
        }
    }
    let enc = if h.charset.is_empty() {
        encoding_rs::UTF_8
    } else {
        charset::lookup(
            nth_part(h.charset, d.repetition, 0).unwrap_or(h.charset),
            &[],
        )
        .unwrap_or(encoding_rs::UTF_8)
    };
    let code = if enhanced { AckCode::CR } else { AckCode::AR };
    build(&h, &d, enc, code, core::slice::from_ref(error), options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_dtm_matches_chrono_across_calendar_edges() {
        // epoch, leap days, century rules (2000 leap, 2100 not), end of year, far future
        for secs in [
            0u64,
            951_782_400,     // 2000-02-29
            951_868_799,     // 2000-02-29T23:59:59
            1_709_164_800,   // 2024-02-29
            1_735_689_599,   // 2024-12-31T23:59:59
            4_107_542_400,   // 2100-03-01
            253_402_300_799, // 9999-12-31T23:59:59
        ] {
            let c = chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap(), 0).unwrap();
            assert_eq!(
                utc_dtm(secs),
                c.format("%Y%m%d%H%M%S").to_string(),
                "{secs}"
            );
        }
        // every day of four years around a leap year
        for day in 19_000..19_000 + 1461 {
            let secs = day * 86_400 + 3_723;
            let c = chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap(), 0).unwrap();
            assert_eq!(utc_dtm(secs), c.format("%Y%m%d%H%M%S").to_string());
        }
    }

    #[test]
    fn generator_uses_the_injected_clock_and_utc() {
        let ids = AckIds::with_clock(|| UNIX_EPOCH + Duration::from_secs(1_709_164_800 + 59));
        let a = ids.next();
        let b = ids.next();
        assert_eq!(a.timestamp.as_deref(), Some("20240229000059+0000"));
        let (ca, cb) = (a.control_id.unwrap(), b.control_id.unwrap());
        assert_eq!((ca.len(), cb.len()), (20, 20));
        assert!(ca.starts_with("20240229000059") && cb.starts_with("20240229000059"));
        assert_ne!(ca, cb);
        // a clock before 1970 is read as the epoch, not a panic
        let early = AckIds::with_clock(|| UNIX_EPOCH - Duration::from_secs(5)).next();
        assert_eq!(early.timestamp.as_deref(), Some("19700101000000+0000"));
        // explicit fields are kept, missing ones generated from the same reading
        let filled = ids.fill(&AckOptions {
            timestamp: None,
            control_id: Some("MINE".into()),
        });
        assert_eq!(filled.control_id.as_deref(), Some("MINE"));
        assert_eq!(filled.timestamp.as_deref(), Some("20240229000059+0000"));
    }

    #[test]
    fn default_ack_header_is_utc() {
        let msg = Message::parse(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\r").unwrap();
        let out = ack(&msg, AckCode::AA, None);
        let reply = Message::parse(&out).unwrap();
        let ts = reply.get("MSH-7").unwrap().into_owned();
        assert_eq!((ts.len(), &ts[14..]), (19, "+0000"));
        assert_eq!(reply.get("MSH-10").unwrap().len(), 20);
    }

    #[test]
    fn table_0155_decides_whether_an_ack_is_wanted() {
        let mode = |msh15: &str| {
            let raw = format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1|||{msh15}|AL\r");
            AckMode::of(&Message::parse(raw.as_bytes()).unwrap())
        };
        let all = [Outcome::Accept, Outcome::Error, Outcome::Reject];
        let wanted = |m: AckMode| all.map(|o| m.wants_ack(o));
        assert_eq!(wanted(mode("AL")), [true, true, true]);
        assert_eq!(wanted(mode("NE")), [false, false, false]);
        assert_eq!(wanted(mode("ER")), [false, true, true]);
        assert_eq!(wanted(mode("SU")), [true, false, false]);
        assert_eq!(wanted(mode("")), [true, true, true]); // MSH-16 alone: enhanced, AL
        assert_eq!(wanted(AckMode::ORIGINAL), [true, true, true]);
        assert_eq!(mode("NE").code(Outcome::Reject), AckCode::CR);
        assert_eq!(AckMode::ORIGINAL.code(Outcome::Error), AckCode::AE);
    }
}
