//! Character sets named in MSH-18 (HL7 v2.5.1 section 2.15.9.18, table 0211), mapped onto
//! [`encoding_rs`] decoders.
//!
//! Policy:
//! - Empty MSH-18 means the options' default (UTF-8, a superset of the standard's ASCII default).
//! - Only the first repetition of MSH-18 selects the charset; alternates are for `\C..\`/`\M..\`
//!   escapes, which switch the set of the text that follows (see [`crate::escape`]).
//! - `8859/1` maps to encoding_rs's `windows-1252` (the WHATWG mapping of ISO-8859-1): the two
//!   differ only in the C1 range 0x80-0x9F, which 8859/1 leaves as controls.
//! - As the message charset, multi-byte sets whose bytes can collide with the delimiters
//!   (ISO-2022 JIS variants, UTF-16) are not supported: the message is split byte-wise, which
//!   would be wrong for them.

use encoding_rs::Encoding;

/// Resolves one MSH-18 value (table 0211 or an alias) to an encoding, or `None` if unknown.
pub fn lookup(name: &[u8], aliases: &[(String, &'static Encoding)]) -> Option<&'static Encoding> {
    let name = trim_ascii(name);
    for (alias, enc) in aliases {
        if alias.as_bytes().eq_ignore_ascii_case(name) {
            return Some(enc);
        }
    }
    // Upper-case on the stack: lookups run once per message and must not allocate.
    let mut buf = [0u8; 32];
    let upper = buf.get_mut(..name.len())?;
    for (d, s) in upper.iter_mut().zip(name) {
        *d = s.to_ascii_uppercase();
    }
    let enc = match &*upper {
        b"" | b"ASCII" | b"ISO IR6" | b"ISO_IR 6" | b"UNICODE UTF-8" | b"UTF-8" | b"UTF8"
        | b"ISO IR192" | b"ISO_IR 192" => encoding_rs::UTF_8,
        b"8859/1" | b"ISO IR100" | b"ISO_IR 100" | b"ISO-8859-1" | b"LATIN1" | b"WINDOWS-1252"
        | b"CP1252" => encoding_rs::WINDOWS_1252,
        b"8859/2" | b"ISO IR101" | b"ISO_IR 101" | b"ISO-8859-2" => encoding_rs::ISO_8859_2,
        b"8859/3" | b"ISO IR109" | b"ISO_IR 109" | b"ISO-8859-3" => encoding_rs::ISO_8859_3,
        b"8859/4" | b"ISO IR110" | b"ISO_IR 110" | b"ISO-8859-4" => encoding_rs::ISO_8859_4,
        b"8859/5" | b"ISO IR144" | b"ISO_IR 144" | b"ISO-8859-5" => encoding_rs::ISO_8859_5,
        b"8859/6" | b"ISO IR127" | b"ISO_IR 127" | b"ISO-8859-6" => encoding_rs::ISO_8859_6,
        b"8859/7" | b"ISO IR126" | b"ISO_IR 126" | b"ISO-8859-7" => encoding_rs::ISO_8859_7,
        b"8859/8" | b"ISO IR138" | b"ISO_IR 138" | b"ISO-8859-8" => encoding_rs::ISO_8859_8,
        // WHATWG maps ISO-8859-9 to windows-1254 (a superset in the printable range).
        b"8859/9" | b"ISO IR148" | b"ISO_IR 148" | b"ISO-8859-9" => encoding_rs::WINDOWS_1254,
        b"8859/10" | b"ISO-8859-10" => encoding_rs::ISO_8859_10,
        b"8859/11" | b"ISO-8859-11" | b"ISO IR166" | b"ISO_IR 166" => encoding_rs::WINDOWS_874,
        b"8859/13" | b"ISO-8859-13" => encoding_rs::ISO_8859_13,
        b"8859/14" | b"ISO-8859-14" => encoding_rs::ISO_8859_14,
        b"8859/15" | b"ISO-8859-15" => encoding_rs::ISO_8859_15,
        b"GB 18030-2000" | b"GB18030" => encoding_rs::GB18030,
        b"KS X 1001" | b"EUC-KR" => encoding_rs::EUC_KR,
        b"BIG-5" | b"BIG5" => encoding_rs::BIG5,
        b"WINDOWS-1250" | b"CP1250" => encoding_rs::WINDOWS_1250,
        b"WINDOWS-1251" | b"CP1251" => encoding_rs::WINDOWS_1251,
        _ => return None,
    };
    Some(enc)
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end]
}

/// Decodes `bytes` in `enc`, borrowing when possible (valid UTF-8 under UTF-8, or pure ASCII
/// under an ASCII-compatible charset). Malformed sequences become U+FFFD.
pub fn decode<'a>(bytes: &'a [u8], enc: &'static Encoding) -> std::borrow::Cow<'a, str> {
    if enc == encoding_rs::UTF_8 {
        return utf8_lossy(bytes);
    }
    enc.decode_without_bom_handling(bytes).0
}

/// `String::from_utf8_lossy` with a fast path for long values: `str::from_utf8` validates
/// ASCII a word at a time, while the lossy decoder walks chunk by chunk (a 4 MiB base64 OBX-5
/// took ~5 ms that way, ~15× the cost of validating it). Short values, the common case, keep
/// the lossy walk, which starts faster (measured: decoding every leaf of the bench corpus
/// through `from_utf8` was slower). Only invalid long input pays for both.
#[inline]
pub(crate) fn utf8_lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if bytes.len() < 256 {
        return String::from_utf8_lossy(bytes);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(e) => {
            let (valid, rest) = bytes.split_at(e.valid_up_to());
            // `valid` is known valid: from_utf8 cannot fail on it.
            let mut out = String::with_capacity(bytes.len() + 2);
            out.push_str(std::str::from_utf8(valid).unwrap_or_default());
            out.push_str(&String::from_utf8_lossy(rest));
            std::borrow::Cow::Owned(out)
        }
    }
}

/// Like [`decode`] but reports malformed byte sequences instead of replacing them.
pub fn decode_strict<'a>(
    bytes: &'a [u8],
    enc: &'static Encoding,
) -> Option<std::borrow::Cow<'a, str>> {
    if enc == encoding_rs::UTF_8 {
        return std::str::from_utf8(bytes)
            .ok()
            .map(std::borrow::Cow::Borrowed);
    }
    enc.decode_without_bom_handling_and_without_replacement(bytes)
}

/// Encodes `text` in `enc`. Characters the charset cannot represent become `?`
/// (never HTML character references).
pub fn encode(text: &str, enc: &'static Encoding) -> Vec<u8> {
    if enc == encoding_rs::UTF_8 || text.is_ascii() {
        return text.as_bytes().to_vec();
    }
    let (bytes, _, had_errors) = enc.encode(text);
    if !had_errors {
        return bytes.into_owned();
    }
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for ch in text.chars() {
        let s = ch.encode_utf8(&mut buf);
        let (b, _, err) = enc.encode(s);
        if err {
            out.push(b'?');
        } else {
            out.extend_from_slice(&b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_lossy_borrows_valid_and_replaces_invalid() {
        assert!(matches!(
            utf8_lossy(b"abc\xc3\xa9"),
            std::borrow::Cow::Borrowed("abc\u{e9}")
        ));
        let bad = utf8_lossy(b"ab\xffcd\xc3");
        assert_eq!(bad, "ab\u{fffd}cd\u{fffd}");
        // Long values take the from_utf8 path: same result as the lossy walk.
        let mut long = b"x".repeat(300);
        assert!(matches!(utf8_lossy(&long), std::borrow::Cow::Borrowed(_)));
        long.extend_from_slice(b"\xff\xc3\xa9\xe2\x82");
        long.extend_from_slice(&b"y".repeat(300));
        assert_eq!(utf8_lossy(&long), String::from_utf8_lossy(&long));
    }

    #[test]
    fn table_0211() {
        assert_eq!(lookup(b"UNICODE UTF-8", &[]), Some(encoding_rs::UTF_8));
        assert_eq!(lookup(b"8859/1", &[]), Some(encoding_rs::WINDOWS_1252));
        assert_eq!(lookup(b"8859/15", &[]), Some(encoding_rs::ISO_8859_15));
        assert_eq!(lookup(b"EBCDIC", &[]), None);
        let aliases = vec![("EBCDIC-LIKE".to_string(), encoding_rs::WINDOWS_1252)];
        assert_eq!(
            lookup(b"ebcdic-like", &aliases),
            Some(encoding_rs::WINDOWS_1252)
        );
    }

    #[test]
    fn decode_latin1_and_back() {
        let s = decode(b"M\xfcller", encoding_rs::WINDOWS_1252);
        assert_eq!(s, "Müller");
        assert_eq!(encode("Müller", encoding_rs::WINDOWS_1252), b"M\xfcller");
        assert_eq!(
            encode("Müller 日", encoding_rs::WINDOWS_1252),
            b"M\xfcller ?"
        );
        assert!(matches!(
            decode(b"plain", encoding_rs::ISO_8859_2),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(decode_strict(b"\xff", encoding_rs::UTF_8), None);
    }
}
