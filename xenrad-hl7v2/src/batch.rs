//! Batches and files (HL7 v2.5.1 section 2.10.3 "HL7 batch protocol": FHS, BHS, BTS, FTS),
//! and inputs holding several messages without any envelope.
//!
//! [`split`] finds the message boundaries (each message runs from its MSH to the segment
//! before the next MSH or envelope segment) and checks BTS-1 (batch message count) and FTS-1
//! (file batch count) when they are valued: a mismatch is recorded in [`Batch::count_errors`]
//! (the messages are still usable; [`Batch::check_counts`] turns it into an error). Missing
//! trailers or headers are tolerated, as python-hl7 and HAPI do; segments outside any message
//! and a second FHS are errors.

use crate::parse::options::ParseOptions;
use crate::parse::scan::Lines;

/// One batch (BHS ... BTS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchGroup<'a> {
    /// The BHS segment, if present.
    pub header: Option<&'a [u8]>,
    /// The messages, each a byte slice from its MSH through its last segment terminator.
    pub messages: Vec<&'a [u8]>,
    /// The BTS segment, if present.
    pub trailer: Option<&'a [u8]>,
}

/// A split input: an optional file envelope around one or more batches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch<'a> {
    /// The FHS segment, if present.
    pub file_header: Option<&'a [u8]>,
    /// The batches (one implicit batch when there is no BHS).
    pub batches: Vec<BatchGroup<'a>>,
    /// The FTS segment, if present.
    pub file_trailer: Option<&'a [u8]>,
    /// BTS-1/FTS-1 count mismatches ([`BatchError::BatchCount`], [`BatchError::FileCount`]).
    pub count_errors: Vec<BatchError>,
}

impl<'a> Batch<'a> {
    /// All messages of all batches, in order.
    pub fn messages(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.batches.iter().flat_map(|b| b.messages.iter().copied())
    }
    /// Number of messages.
    pub fn message_count(&self) -> usize {
        self.batches.iter().map(|b| b.messages.len()).sum()
    }
    /// The first BTS-1/FTS-1 count mismatch as an error.
    pub fn check_counts(&self) -> Result<(), BatchError> {
        self.count_errors.first().map_or(Ok(()), |e| Err(e.clone()))
    }
}

/// Why a batch cannot be split.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A segment that is neither an envelope segment nor inside a message (no MSH before it).
    #[error("segment {segment:?} at byte {offset} is outside any message")]
    OutsideMessage {
        /// Segment ID (lossy text).
        segment: String,
        /// Byte offset.
        offset: usize,
    },
    /// A second FHS.
    #[error("second FHS at byte {offset}: an input holds at most one file")]
    SecondFileHeader {
        /// Byte offset.
        offset: usize,
    },
    /// BTS-1 does not match the number of messages in the batch.
    #[error("BTS-1 says {declared} messages but the batch holds {actual} (byte {offset})")]
    BatchCount {
        /// BTS-1 value.
        declared: usize,
        /// Messages found.
        actual: usize,
        /// Offset of the BTS.
        offset: usize,
    },
    /// FTS-1 does not match the number of batches in the file.
    #[error("FTS-1 says {declared} batches but the file holds {actual} (byte {offset})")]
    FileCount {
        /// FTS-1 value.
        declared: usize,
        /// Batches found.
        actual: usize,
        /// Offset of the FTS.
        offset: usize,
    },
    /// The input holds neither a message nor an envelope.
    #[error("no message (no MSH segment) in input")]
    NoMessage,
}

fn count_field(line: &[u8]) -> Option<usize> {
    let sep = *line.get(3)?;
    let f = crate::parse::element::nth_part(line, Some(sep), 1)?;
    let s = std::str::from_utf8(f).ok()?.trim();
    if s.is_empty() { None } else { s.parse().ok() }
}

/// Splits `input` into messages and envelope segments.
///
/// ```
/// let file = b"FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A||||||ADT^A01|1|P|2.5.1\rPID|1\rMSH|^~\\&|A||||||ADT^A01|2|P|2.5.1\rBTS|2\rFTS|1\r";
/// let batch = xenrad_hl7v2::batch::split(file, &Default::default()).unwrap();
/// assert_eq!(batch.message_count(), 2);
/// ```
pub fn split<'a>(input: &'a [u8], options: &ParseOptions) -> Result<Batch<'a>, BatchError> {
    let mut out = Batch::default();
    let mut cur = BatchGroup::default();
    let mut msg_start: Option<usize> = None;
    let mut last_end = 0usize;
    let mut saw_bhs_or_msgs = false;
    let close_msg = |cur: &mut BatchGroup<'a>, start: &mut Option<usize>, end: usize| {
        if let Some(s) = start.take() {
            cur.messages.push(&input[s..end]);
        }
    };
    for (start, end) in Lines::new(input, options.terminators) {
        let line = &input[start..end];
        // Message slices include the terminator(s) of their last segment.
        let tag = line.get(..3).unwrap_or(line);
        match tag {
            b"MSH" => {
                close_msg(&mut cur, &mut msg_start, last_end);
                msg_start = Some(start);
                saw_bhs_or_msgs = true;
            }
            b"FHS" => {
                if out.file_header.is_some() || saw_bhs_or_msgs {
                    return Err(BatchError::SecondFileHeader { offset: start });
                }
                out.file_header = Some(line);
            }
            b"BHS" => {
                close_msg(&mut cur, &mut msg_start, last_end);
                if cur.header.is_some() || !cur.messages.is_empty() || cur.trailer.is_some() {
                    out.batches.push(std::mem::take(&mut cur));
                }
                cur.header = Some(line);
                saw_bhs_or_msgs = true;
            }
            b"BTS" => {
                close_msg(&mut cur, &mut msg_start, last_end);
                cur.trailer = Some(line);
                if let Some(n) = count_field(line)
                    && n != cur.messages.len()
                {
                    out.count_errors.push(BatchError::BatchCount {
                        declared: n,
                        actual: cur.messages.len(),
                        offset: start,
                    });
                }
                out.batches.push(std::mem::take(&mut cur));
            }
            b"FTS" => {
                close_msg(&mut cur, &mut msg_start, last_end);
                if cur.header.is_some() || !cur.messages.is_empty() {
                    out.batches.push(std::mem::take(&mut cur));
                }
                out.file_trailer = Some(line);
                if let Some(n) = count_field(line)
                    && n != out.batches.len()
                {
                    out.count_errors.push(BatchError::FileCount {
                        declared: n,
                        actual: out.batches.len(),
                        offset: start,
                    });
                }
            }
            _ => {
                if msg_start.is_none() {
                    return Err(BatchError::OutsideMessage {
                        segment: String::from_utf8_lossy(tag).into_owned(),
                        offset: start,
                    });
                }
            }
        }
        last_end = next_line_start(input, end);
    }
    close_msg(&mut cur, &mut msg_start, last_end);
    if cur.header.is_some() || !cur.messages.is_empty() {
        out.batches.push(cur);
    }
    if out.message_count() == 0 && out.file_header.is_none() && out.batches.is_empty() {
        return Err(BatchError::NoMessage);
    }
    Ok(out)
}

/// Offset just past the terminator (CR, LF or CRLF) that ends at `end`.
fn next_line_start(input: &[u8], end: usize) -> usize {
    match input.get(end) {
        Some(b'\r') if input.get(end + 1) == Some(&b'\n') => end + 2,
        Some(b'\r' | b'\n') => end + 1,
        _ => end,
    }
}
