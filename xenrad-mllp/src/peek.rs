//! Minimal, allocation-free peeking at the few HL7 v2 fields MLLP endpoints need to match
//! acknowledgements to messages: MSH-10 (message control id) and MSA-1/MSA-2 (acknowledgement
//! code and the control id it acknowledges). HL7 v2.5.1 ch. 2.14.9 (MSH) and 2.14.8 (MSA).
//!
//! This is not a parser: full parsing and ACK building live in `xenrad-hl7v2`.

/// Splits a message into segments on `<CR>` (and tolerates `<LF>`/`<CR><LF>`).
fn segments(msg: &[u8]) -> impl Iterator<Item = &[u8]> {
    msg.split(|&b| b == b'\r' || b == b'\n')
        .filter(|s| !s.is_empty())
}

/// The field separator declared by MSH-1 (the byte after `MSH`), if the message starts with MSH.
fn field_separator(msg: &[u8]) -> Option<u8> {
    let msh = segments(msg).next()?;
    if msh.len() >= 4 && msh.starts_with(b"MSH") {
        Some(msh[3])
    } else {
        None
    }
}

/// Field `n` of a segment as numbered by HL7 for non-MSH segments (`n = 1` is the first field
/// after the segment id).
fn field(segment: &[u8], sep: u8, n: usize) -> Option<&[u8]> {
    segment.split(|&b| b == sep).nth(n)
}

/// MSH-10, the message control id, of `msg`.
///
/// ```
/// let msg = b"MSH|^~\\&|APP|FAC|RAD|HOSP|20240101||ADT^A01|MSG00042|P|2.5.1\rPID|1\r";
/// assert_eq!(xenrad_mllp::peek::control_id(msg), Some(&b"MSG00042"[..]));
/// ```
pub fn control_id(msg: &[u8]) -> Option<&[u8]> {
    let sep = field_separator(msg)?;
    let msh = segments(msg).next()?;
    // MSH-1 is the separator itself, so MSH-n is split element n-1.
    field(msh, sep, 9)
}

/// MSH-3 and MSH-4 (sending application and facility), identifying the sender.
pub fn sender(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    let sep = field_separator(msg)?;
    let msh = segments(msg).next()?;
    let mut it = msh.split(|&b| b == sep).skip(2);
    Some((it.next()?, it.next().unwrap_or_default()))
}

/// MSA-1 (acknowledgement code, e.g. `AA`, `CA`) and MSA-2 (the acknowledged control id) of an
/// acknowledgement message.
///
/// ```
/// let ack = b"MSH|^~\\&|RAD|HOSP|APP|FAC|20240101||ACK^A01|A1|P|2.5.1\rMSA|AA|MSG00042\r";
/// assert_eq!(xenrad_mllp::peek::msa(ack), Some((&b"AA"[..], &b"MSG00042"[..])));
/// ```
pub fn msa(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    let sep = field_separator(msg)?;
    let seg = segments(msg).find(|s| s.starts_with(b"MSA") && s.get(3) == Some(&sep))?;
    Some((field(seg, sep, 1)?, field(seg, sep, 2).unwrap_or_default()))
}
