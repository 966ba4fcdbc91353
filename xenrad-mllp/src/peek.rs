//! Minimal, allocation-free peeking at the few HL7 v2 fields MLLP endpoints need to match
//! acknowledgements to messages: MSH-10 (message control id) and MSA-1/MSA-2 (acknowledgement
//! code and the control id it acknowledges). HL7 v2.5.1 ch. 2.14.9 (MSH) and 2.14.8 (MSA).
//!
//! This is not a parser: full parsing and ACK building live in `xenrad-hl7v2`.

use memchr::{memchr_iter, memchr2};

/// Splits a message into segments on `<CR>` (and tolerates `<LF>`/`<CR><LF>`), skipping
/// empty ones. memchr-based: this runs once or twice per message on every MLLP exchange.
fn segments(msg: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < msg.len() {
            let rest = &msg[pos..];
            let end = memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
            pos += end + 1;
            if end > 0 {
                return Some(&rest[..end]);
            }
        }
        None
    })
}

/// The first segment if it is an MSH, with its field separator (MSH-1, the byte after `MSH`).
fn msh(msg: &[u8]) -> Option<(&[u8], u8)> {
    let msh = segments(msg).next()?;
    if msh.len() >= 4 && msh.starts_with(b"MSH") {
        Some((msh, msh[3]))
    } else {
        None
    }
}

/// Element `n` of a segment split on `sep` (element 0 is the segment id; for non-MSH
/// segments element `n` is field `n`, for MSH it is field `n + 1`).
fn field(segment: &[u8], sep: u8, n: usize) -> Option<&[u8]> {
    let mut seps = memchr_iter(sep, segment);
    let mut start = 0;
    for _ in 0..n {
        start = seps.next()? + 1;
    }
    Some(&segment[start..seps.next().unwrap_or(segment.len())])
}

/// MSH-10, the message control id, of `msg`.
///
/// ```
/// let msg = b"MSH|^~\\&|APP|FAC|RAD|HOSP|20240101||ADT^A01|MSG00042|P|2.5.1\rPID|1\r";
/// assert_eq!(xenrad_mllp::peek::control_id(msg), Some(&b"MSG00042"[..]));
/// ```
pub fn control_id(msg: &[u8]) -> Option<&[u8]> {
    let (msh, sep) = msh(msg)?;
    // MSH-1 is the separator itself, so MSH-n is split element n-1.
    field(msh, sep, 9)
}

/// MSH-3 and MSH-4 (sending application and facility), identifying the sender.
pub fn sender(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    let (msh, sep) = msh(msg)?;
    Some((field(msh, sep, 2)?, field(msh, sep, 3).unwrap_or_default()))
}

/// MSA-1 (acknowledgement code, e.g. `AA`, `CA`) and MSA-2 (the acknowledged control id) of an
/// acknowledgement message.
///
/// ```
/// let ack = b"MSH|^~\\&|RAD|HOSP|APP|FAC|20240101||ACK^A01|A1|P|2.5.1\rMSA|AA|MSG00042\r";
/// assert_eq!(xenrad_mllp::peek::msa(ack), Some((&b"AA"[..], &b"MSG00042"[..])));
/// ```
pub fn msa(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, sep) = msh(msg)?;
    let seg = segments(msg).find(|s| s.starts_with(b"MSA") && s.get(3) == Some(&sep))?;
    Some((field(seg, sep, 1)?, field(seg, sep, 2).unwrap_or_default()))
}
