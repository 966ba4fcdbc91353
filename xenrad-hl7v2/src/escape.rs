//! Escape sequences (HL7 v2.5.1 ch. 2, section 2.7 "Use of escape sequences in text fields").
//!
//! Decoding policy ([`EscapePolicy`]):
//! - `\F\ \S\ \T\ \R\ \E\` (and `\P\`, truncation, v2.7) always become the delimiter they name.
//! - `\Xhh..\` becomes the raw bytes, which are then decoded with the message charset (MSH-18).
//! - Formatting commands `\.br\ \.sp\ \.in\ \.ti\ \.sk\ \.ce\ \.fi\ \.nf\` and highlighting
//!   `\H\ \N\` are kept verbatim by default ([`Formatting::Preserve`], what HAPI does), or mapped
//!   to plain text ([`Formatting::PlainText`]: `\.br\`, `\.sp\`, `\.ce\` → line feed, the rest
//!   removed).
//! - `\Z..\` (locally defined) and `\C..\ \M..\` (charset switches) are always kept verbatim.
//! - A malformed sequence (no closing escape, odd or non-hex `\X\` payload, unknown letter) is
//!   kept verbatim: never dropped, never a panic.

use crate::charset;
use crate::delimiters::Delimiters;
use encoding_rs::Encoding;
use std::borrow::Cow;

/// What to do with formatting escapes (`\.br\`, `\H\`, ...) when decoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Formatting {
    /// Keep them verbatim in the decoded text (default).
    #[default]
    Preserve,
    /// Map line-breaking commands to `\n` and drop the other formatting commands.
    PlainText,
}

/// Escape decoding policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EscapePolicy {
    /// Handling of formatting commands and highlighting.
    pub formatting: Formatting,
}

/// Decodes escapes in `raw` and then the charset; borrows when there is nothing to decode.
pub fn decode<'a>(
    raw: &'a [u8],
    d: &Delimiters,
    enc: &'static Encoding,
    policy: EscapePolicy,
) -> Cow<'a, str> {
    match d.escape {
        Some(e) if crate::parse::element::find(e, raw).is_some() => {
            let bytes = unescape_bytes(raw, d, policy);
            Cow::Owned(charset::decode(&bytes, enc).into_owned())
        }
        _ => charset::decode(raw, enc),
    }
}

/// Decodes escapes only, returning bytes still in the message charset.
pub fn unescape_bytes<'a>(raw: &'a [u8], d: &Delimiters, policy: EscapePolicy) -> Cow<'a, [u8]> {
    let Some(esc) = d.escape else {
        return Cow::Borrowed(raw);
    };
    let Some(first) = memchr::memchr(esc, raw) else {
        return Cow::Borrowed(raw);
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
    while i < raw.len() {
        let b = raw[i];
        if b != esc {
            // Copy the run up to the next escape character in one go.
            let next = memchr::memchr(esc, &raw[i..]).map_or(raw.len(), |n| i + n);
            out.extend_from_slice(&raw[i..next]);
            i = next;
            continue;
        }
        let Some(len) = memchr::memchr(esc, &raw[i + 1..]) else {
            // Unterminated: keep the rest verbatim.
            out.extend_from_slice(&raw[i..]);
            break;
        };
        let body = &raw[i + 1..i + 1 + len];
        let whole = &raw[i..i + len + 2];
        decode_one(body, whole, d, policy, &mut out);
        i += len + 2;
    }
    Cow::Owned(out)
}

fn decode_one(body: &[u8], whole: &[u8], d: &Delimiters, policy: EscapePolicy, out: &mut Vec<u8>) {
    let single = |c: Option<u8>, out: &mut Vec<u8>| match c {
        Some(c) => out.push(c),
        None => out.extend_from_slice(whole),
    };
    match body {
        b"F" => out.push(d.field),
        b"S" => single(d.component, out),
        b"T" => single(d.subcomponent, out),
        b"R" => single(d.repetition, out),
        b"E" => single(d.escape, out),
        b"P" => single(d.truncation, out),
        [b'X' | b'x', hex @ ..]
            if !hex.is_empty() && hex.len() % 2 == 0 && hex.iter().all(u8::is_ascii_hexdigit) =>
        {
            for pair in hex.chunks_exact(2) {
                out.push((hex_val(pair[0]) << 4) | hex_val(pair[1]));
            }
        }
        b"H" | b"N" => {
            if policy.formatting == Formatting::Preserve {
                out.extend_from_slice(whole);
            }
        }
        [b'.', cmd @ ..] if is_formatting(cmd) => match policy.formatting {
            Formatting::Preserve => out.extend_from_slice(whole),
            Formatting::PlainText => {
                if cmd.starts_with(b"br") || cmd.starts_with(b"ce") {
                    out.push(b'\n');
                } else if let Some(n) = cmd.strip_prefix(b"sp") {
                    let n = parse_small(n).unwrap_or(1).clamp(1, 100);
                    out.extend(std::iter::repeat_n(b'\n', n));
                }
            }
        },
        _ => out.extend_from_slice(whole),
    }
}

fn is_formatting(cmd: &[u8]) -> bool {
    let name = cmd.get(..2).unwrap_or(cmd);
    matches!(
        name,
        b"br" | b"sp" | b"in" | b"ti" | b"sk" | b"ce" | b"fi" | b"nf"
    )
}

fn parse_small(n: &[u8]) -> Option<usize> {
    let n = std::str::from_utf8(n).ok()?.trim();
    if n.is_empty() {
        return None;
    }
    n.trim_start_matches('+').parse().ok()
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Escapes text bytes so they can be placed in one leaf (subcomponent) of a message:
/// delimiters and the escape character become `\F\ \S\ \T\ \R\ \E\`, CR and LF become
/// `\X0D\` / `\X0A\`. Borrows when nothing needs escaping.
pub fn escape<'a>(text: &'a [u8], d: &Delimiters) -> Cow<'a, [u8]> {
    let needs = text
        .iter()
        .any(|&b| d.is_special(b) || b == b'\r' || b == b'\n');
    if !needs {
        return Cow::Borrowed(text);
    }
    let esc = d.escape.unwrap_or(b'\\');
    let mut out = Vec::with_capacity(text.len() + 8);
    for &b in text {
        let code: &[u8] = if b == d.field {
            b"F"
        } else if Some(b) == d.component {
            b"S"
        } else if Some(b) == d.subcomponent {
            b"T"
        } else if Some(b) == d.repetition {
            b"R"
        } else if Some(b) == d.escape {
            b"E"
        } else if Some(b) == d.truncation {
            b"P"
        } else if b == b'\r' {
            b"X0D"
        } else if b == b'\n' {
            b"X0A"
        } else {
            out.push(b);
            continue;
        };
        out.push(esc);
        out.extend_from_slice(code);
        out.push(esc);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &[u8]) -> Cow<'_, str> {
        decode(
            s,
            &Delimiters::STANDARD,
            encoding_rs::UTF_8,
            EscapePolicy::default(),
        )
    }

    #[test]
    fn delimiter_escapes() {
        assert_eq!(dec(br"a\F\b\S\c\T\d\R\e\E\f"), "a|b^c&d~e\\f");
    }

    #[test]
    fn borrowed_when_plain() {
        assert!(matches!(dec(b"plain text"), Cow::Borrowed("plain text")));
    }

    #[test]
    fn hex_is_charset_decoded() {
        assert_eq!(dec(br"caf\XC3A9\"), "café");
        let latin = decode(
            br"caf\XE9\",
            &Delimiters::STANDARD,
            encoding_rs::WINDOWS_1252,
            EscapePolicy::default(),
        );
        assert_eq!(latin, "café");
        assert_eq!(dec(br"\X0D0A\"), "\r\n");
    }

    #[test]
    fn formatting_policies() {
        assert_eq!(dec(br"a\.br\b\H\c\N\"), r"a\.br\b\H\c\N\");
        let plain = EscapePolicy {
            formatting: Formatting::PlainText,
        };
        let out = decode(
            br"a\.br\b\H\c\N\\.sp2\d",
            &Delimiters::STANDARD,
            encoding_rs::UTF_8,
            plain,
        );
        assert_eq!(out, "a\nbc\n\nd");
    }

    #[test]
    fn malformed_kept_verbatim() {
        assert_eq!(dec(br"a\X0\b"), r"a\X0\b");
        assert_eq!(dec(br"a\Q\b"), r"a\Q\b");
        assert_eq!(dec(br"tail\F"), r"tail\F");
        assert_eq!(dec(br"\Zfoo\ \C2842\ \M2442\"), r"\Zfoo\ \C2842\ \M2442\");
    }

    #[test]
    fn escape_inverts_decode() {
        let text = "a|b^c&d~e\\f\r\ng";
        let esc = escape(text.as_bytes(), &Delimiters::STANDARD);
        assert_eq!(&*esc, br"a\F\b\S\c\T\d\R\e\E\f\X0D\\X0A\g");
        assert_eq!(dec(&esc), text);
    }
}
