//! Escape sequences (HL7 v2.5.1 ch. 2, section 2.7 "Use of escape sequences in text fields").
//!
//! Decoding policy ([`EscapePolicy`]):
//! - `\F\ \S\ \T\ \R\ \E\` (and `\P\`, truncation, v2.7) always become the delimiter they name.
//! - `\Xhh..\` becomes the raw bytes, which are then decoded with the message charset (MSH-18).
//! - Formatting commands `\.br\ \.sp\ \.in\ \.ti\ \.sk\ \.ce\ \.fi\ \.nf\` and highlighting
//!   `\H\ \N\` are kept verbatim by default ([`Formatting::Preserve`], what HAPI does), or mapped
//!   to plain text ([`Formatting::PlainText`]: `\.br\`, `\.sp\`, `\.ce\` → line feed, the rest
//!   removed).
//! - `\Cxxyy\` and `\Mxxyy[zz]\` (HL7 v2.5.1 ch. 2, 2.7: escape sequences supporting multiple
//!   character sets; `xx yy zz` are the hex bytes of an ISO 2022 designation after ESC) switch
//!   the character set of the text that follows, up to the next switch or the end of the value
//!   (each value starts in the MSH-18 charset), by default ([`CharsetEscapes::Apply`], what
//!   HAPI does not do but the standard asks); [`CharsetEscapes::Preserve`] keeps them verbatim.
//!   Designations applied (decoded with encoding_rs): `ESC ( B` ASCII, `ESC ( J` / `ESC ( I`
//!   JIS X 0201 Roman / katakana (ISO-IR 14/13), `ESC ) I` katakana in G1, `ESC $ B` /
//!   `ESC $ @` JIS X 0208 (ISO-IR 87), `ESC $ ( D` JIS X 0212 (ISO-IR 159), `ESC $ ) C` /
//!   `ESC $ ( C` KS X 1001 (ISO-IR 149) in G1 / G0, `ESC $ ) A` / `ESC $ A` GB 2312 (ISO-IR 58)
//!   in G1 / G0, and the ISO 8859 sets in G1 (`ESC - A` 8859-1 ... `ESC - M` 8859-9,
//!   `ESC - T` Thai). An unknown designation is kept verbatim. Double-byte text in a 7-bit
//!   set can contain delimiter bytes: such a message is split wrongly before any decoding,
//!   which the standard leaves to the sender to avoid.
//! - `\Z..\` (locally defined) is always kept verbatim.
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

/// What to do with the character-set escapes `\Cxxyy\` and `\Mxxyyzz\` when decoding text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CharsetEscapes {
    /// Switch the character set of the text that follows (default).
    #[default]
    Apply,
    /// Keep the escapes verbatim and decode everything in the MSH-18 charset.
    Preserve,
}

/// Escape decoding policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EscapePolicy {
    /// Handling of formatting commands and highlighting.
    pub formatting: Formatting,
    /// Handling of the character-set escapes.
    pub charsets: CharsetEscapes,
}

/// Decodes escapes in `raw` and then the charset; borrows when there is nothing to decode.
///
/// ```
/// use xenrad_hl7v2::{Delimiters, escape::{decode, EscapePolicy}};
/// // JIS X 0208 (`ESC $ B`) for the family name, back to ASCII (`ESC ( B`) after it.
/// let raw = br"\M2442\;3ED\C2842\ Taro";
/// let text = decode(raw, &Delimiters::STANDARD, encoding_rs::UTF_8, EscapePolicy::default());
/// assert_eq!(text, "山田 Taro");
/// ```
pub fn decode<'a>(
    raw: &'a [u8],
    d: &Delimiters,
    enc: &'static Encoding,
    policy: EscapePolicy,
) -> Cow<'a, str> {
    match d.escape {
        Some(e) if crate::parse::element::find(e, raw).is_some() => {
            Cow::Owned(decode_escaped(raw, e, d, enc, policy).0)
        }
        _ => charset::decode(raw, enc),
    }
}

/// Like [`decode`] but `None` if some bytes are not valid in the character set they are in
/// (the message charset, or the one a character-set escape switched to).
pub fn decode_strict<'a>(
    raw: &'a [u8],
    d: &Delimiters,
    enc: &'static Encoding,
    policy: EscapePolicy,
) -> Option<Cow<'a, str>> {
    match d.escape {
        Some(e) if crate::parse::element::find(e, raw).is_some() => {
            let (text, errors) = decode_escaped(raw, e, d, enc, policy);
            (!errors).then_some(Cow::Owned(text))
        }
        _ => charset::decode_strict(raw, enc),
    }
}

/// The character set of a stretch of text between character-set escapes.
#[derive(Clone, Copy)]
enum Set {
    /// The message charset (MSH-18).
    Message,
    /// US-ASCII: other bytes become U+FFFD.
    Ascii,
    /// Bytes decoded as they are by an ASCII-compatible charset (8-bit sets in G1/GR).
    Bytes(&'static Encoding),
    /// A set the ISO-2022-JP decoder handles, entered with this escape sequence.
    Iso2022Jp(&'static [u8]),
    /// A 94×94 set in G0 (7-bit): each byte is moved to GR, then decoded as the EUC form.
    High(&'static Encoding),
    /// JIS X 0212 in G0: byte pairs decoded as EUC-JP code set 3 (`0x8F` prefix).
    Jis0212,
}

/// The set an ISO 2022 designation (the hex after `C`/`M`) names; `None` if unsupported.
fn designation(body: &[u8]) -> Option<Set> {
    let (kind, hex) = body.split_first()?;
    if !matches!(hex.len(), 4 | 6) || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut seq = [0u8; 3];
    for (b, pair) in seq.iter_mut().zip(hex.chunks_exact(2)) {
        *b = (hex_val(pair[0]) << 4) | hex_val(pair[1]);
    }
    let seq = &seq[..hex.len() / 2];
    Some(match (kind, seq) {
        (b'C', b"(B") => Set::Ascii,
        (b'C', b"(J") => Set::Iso2022Jp(b"\x1b(J"),
        (b'C', b"(I") => Set::Iso2022Jp(b"\x1b(I"),
        (b'C', b")I") => Set::Bytes(encoding_rs::SHIFT_JIS),
        (b'C', [b'-', f]) => Set::Bytes(match f {
            b'A' => encoding_rs::WINDOWS_1252,
            b'B' => encoding_rs::ISO_8859_2,
            b'C' => encoding_rs::ISO_8859_3,
            b'D' => encoding_rs::ISO_8859_4,
            b'L' => encoding_rs::ISO_8859_5,
            b'G' => encoding_rs::ISO_8859_6,
            b'F' => encoding_rs::ISO_8859_7,
            b'H' => encoding_rs::ISO_8859_8,
            b'M' => encoding_rs::WINDOWS_1254,
            b'T' => encoding_rs::WINDOWS_874,
            _ => return None,
        }),
        (b'M', b"$B") => Set::Iso2022Jp(b"\x1b$B"),
        (b'M', b"$@") => Set::Iso2022Jp(b"\x1b$@"),
        (b'M', b"$(D") => Set::Jis0212,
        (b'M', b"$)C") => Set::Bytes(encoding_rs::EUC_KR),
        (b'M', b"$(C") => Set::High(encoding_rs::EUC_KR),
        (b'M', b"$)A") => Set::Bytes(encoding_rs::GB18030),
        (b'M', b"$A") => Set::High(encoding_rs::GB18030),
        _ => return None,
    })
}

/// Appends `run`, in character set `set`, to `out` as text; true if some bytes were not valid
/// in that set (they became U+FFFD).
fn decode_run(run: &[u8], set: Set, enc: &'static Encoding, out: &mut String) -> bool {
    let gr = |b: u8| {
        if (0x21..=0x7e).contains(&b) {
            b | 0x80
        } else {
            b
        }
    };
    match set {
        Set::Message if enc == encoding_rs::UTF_8 => {
            let text = charset::utf8_lossy(run);
            let errors = matches!(text, Cow::Owned(_));
            append(out, (text, errors))
        }
        Set::Message => append(out, enc.decode_without_bom_handling(run)),
        Set::Ascii => {
            out.extend(run.iter().map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    '\u{fffd}'
                }
            }));
            !run.is_ascii()
        }
        Set::Bytes(e) => append(out, e.decode_without_bom_handling(run)),
        Set::Iso2022Jp(esc) => append(
            out,
            encoding_rs::ISO_2022_JP.decode_without_bom_handling(&[esc, run].concat()),
        ),
        Set::High(e) => {
            let bytes: Vec<u8> = run.iter().map(|&b| gr(b)).collect();
            append(out, e.decode_without_bom_handling(&bytes))
        }
        Set::Jis0212 => {
            let mut bytes = Vec::with_capacity(run.len() * 3 / 2 + 1);
            let mut pairs = run.chunks_exact(2);
            for p in &mut pairs {
                bytes.extend_from_slice(&[0x8f, gr(p[0]), gr(p[1])]);
            }
            bytes.extend_from_slice(pairs.remainder());
            append(out, encoding_rs::EUC_JP.decode_without_bom_handling(&bytes))
        }
    }
}

/// Appends a decoder's output to `out`, passing on its had-errors flag.
fn append(out: &mut String, (text, errors): (Cow<'_, str>, bool)) -> bool {
    out.push_str(&text);
    errors
}

/// Escapes resolved into runs of bytes, each decoded in its character set; the flag is true
/// if some bytes were not valid in their set.
fn decode_escaped(
    raw: &[u8],
    esc: u8,
    d: &Delimiters,
    enc: &'static Encoding,
    policy: EscapePolicy,
) -> (String, bool) {
    let mut errors = false;
    let mut out = String::with_capacity(raw.len());
    let mut run = Vec::with_capacity(raw.len());
    let mut set = Set::Message;
    let mut i = 0;
    while i < raw.len() {
        let next = memchr::memchr(esc, &raw[i..]).map_or(raw.len(), |n| i + n);
        run.extend_from_slice(&raw[i..next]);
        i = next;
        if i == raw.len() {
            break;
        }
        let Some(len) = memchr::memchr(esc, &raw[i + 1..]) else {
            // Unterminated: keep the rest verbatim.
            run.extend_from_slice(&raw[i..]);
            break;
        };
        let body = &raw[i + 1..i + 1 + len];
        let whole = &raw[i..i + len + 2];
        i += len + 2;
        if policy.charsets == CharsetEscapes::Apply
            && matches!(body.first(), Some(b'C' | b'M'))
            && let Some(new) = designation(body)
        {
            errors |= decode_run(&run, set, enc, &mut out);
            run.clear();
            set = new;
            continue;
        }
        decode_one(body, whole, d, policy, &mut run);
    }
    errors |= decode_run(&run, set, enc, &mut out);
    (out, errors)
}

/// Decodes escapes only, returning bytes still in the message charset; character-set escapes
/// (`\C..\ \M..\`) stay verbatim here, since the bytes around them are in different sets.
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
            ..EscapePolicy::default()
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
        assert_eq!(dec(br"\Zfoo\ \C2899\ \M24\"), r"\Zfoo\ \C2899\ \M24\");
    }

    fn with(charsets: CharsetEscapes, raw: &[u8]) -> String {
        let policy = EscapePolicy {
            charsets,
            ..EscapePolicy::default()
        };
        decode(raw, &Delimiters::STANDARD, encoding_rs::UTF_8, policy).into_owned()
    }

    fn strict(raw: &[u8]) -> Option<Cow<'_, str>> {
        let p = EscapePolicy::default();
        decode_strict(raw, &Delimiters::STANDARD, encoding_rs::UTF_8, p)
    }

    #[test]
    fn charset_escapes_applied() {
        use CharsetEscapes::{Apply, Preserve};
        // JIS X 0208 (ISO-IR 87) then ASCII; a delimiter escape inside the ASCII run.
        assert_eq!(with(Apply, br"\M2442\;3ED\C2842\^\S\TARO"), "山田^^TARO");
        assert_eq!(
            with(Preserve, br"\M2442\;3ED\C2842\"),
            r"\M2442\;3ED\C2842\"
        );
        // JIS X 0201 katakana (ISO-IR 13) in G0 and in G1.
        assert_eq!(with(Apply, br"\C2849\1"), "ｱ");
        assert_eq!(with(Apply, b"\\C2949\\\xb1"), "ｱ");
        // KS X 1001 (ISO-IR 149) in G1: EUC-KR bytes; in G0: the same 7-bit.
        let (kr, _, _) = encoding_rs::EUC_KR.encode("홍길동");
        let g1 = [&br"\M242943\"[..], &kr].concat();
        assert_eq!(with(Apply, &g1), "홍길동");
        let g0: Vec<u8> = br"\M242843\"
            .iter()
            .copied()
            .chain(kr.iter().map(|b| b & 0x7f))
            .collect();
        assert_eq!(with(Apply, &g0), "홍길동");
        // GB 2312 (ISO-IR 58) in G0 and G1.
        let (gb, _, _) = encoding_rs::GB18030.encode("中文");
        let g0: Vec<u8> = br"\M2441\"
            .iter()
            .copied()
            .chain(gb.iter().map(|b| b & 0x7f))
            .collect();
        assert_eq!(with(Apply, &g0), "中文");
        assert_eq!(with(Apply, &[&br"\M242941\"[..], &gb].concat()), "中文");
        // JIS X 0212 (ISO-IR 159): EUC-JP code set 3.
        let expect = encoding_rs::EUC_JP
            .decode_without_bom_handling(&[0x8f, 0xb0, 0xa1])
            .0;
        assert!(!expect.contains('\u{fffd}'));
        assert_eq!(with(Apply, br"\M242844\0!"), expect);
        // ISO 8859-7 (Greek) in G1 inside a UTF-8 message; unknown sets stay verbatim.
        assert_eq!(with(Apply, b"\\C2D46\\\xe1\xe2"), "αβ");
        assert_eq!(with(Apply, br"a\C2D5A\b"), r"a\C2D5A\b");
        // Each value starts in the message charset.
        assert_eq!(with(Apply, "é".as_bytes()), "é");
        // Strict decoding: valid in the switched set, invalid where the bytes do not fit it.
        assert_eq!(strict(br"\M2442\;3ED").as_deref(), Some("山田"));
        assert_eq!(strict(b"\\C2842\\\xe9"), None);
        assert_eq!(strict(b"\\C2D41\\\xe9").as_deref(), Some("é"));
        assert_eq!(strict(b"\\F\\\xff"), None);
    }

    #[test]
    fn escape_inverts_decode() {
        let text = "a|b^c&d~e\\f\r\ng";
        let esc = escape(text.as_bytes(), &Delimiters::STANDARD);
        assert_eq!(&*esc, br"a\F\b\S\c\T\d\R\e\E\f\X0D\\X0A\g");
        assert_eq!(dec(&esc), text);
    }
}
