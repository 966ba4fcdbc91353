//! Entity and character references (XML 1.0 §4.1, §4.6) and value normalisation (§2.11, §3.3.3).
//!
//! Only the five predefined entities and character references are accepted: documents
//! with a DTD are rejected before any entity could be declared, so nothing is ever expanded.

use std::borrow::Cow;

/// Resolves the body of a reference (`amp`, `#38`, `#x26`) to its character.
pub(crate) fn resolve_ref(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = if let Some(hex) = num.strip_prefix('x') {
                if hex.is_empty() || hex.len() > 8 {
                    return None;
                }
                u32::from_str_radix(hex, 16).ok()?
            } else {
                if num.is_empty() || num.len() > 10 || !num.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                num.parse::<u32>().ok()?
            };
            let c = char::from_u32(code)?;
            // XML 1.0 §2.2 Char production.
            if matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}') {
                Some(c)
            } else {
                None
            }
        }
    }
}

/// Checks a raw attribute value: no `<`, every `&` starts a valid reference.
/// Returns the byte offset within `raw` and the offending reference on error.
pub(crate) fn check_attr_value(raw: &str) -> Result<(), (usize, String)> {
    let b = raw.as_bytes();
    // Values are short: a plain scan beats a SIMD search set-up.
    let first = if b.len() < 64 {
        b.iter().position(|&c| c == b'<' || c == b'&')
    } else {
        memchr::memchr2(b'<', b'&', b)
    };
    let Some(p) = first else { return Ok(()) };
    if let Some(q) = memchr::memchr(b'<', &b[p..]) {
        return Err((p + q, "<".to_owned()));
    }
    check_refs(&raw[p..]).map_err(|(q, what)| (p + q, what))
}

/// Checks every `&` in character data starts a valid reference.
pub(crate) fn check_refs(raw: &str) -> Result<(), (usize, String)> {
    let mut from = 0;
    while let Some(p) = memchr::memchr(b'&', &raw.as_bytes()[from..]) {
        let start = from + p;
        let rest = &raw[start + 1..];
        let Some(end) = rest.bytes().take(40).position(|b| b == b';') else {
            return Err((start, rest.chars().take(16).collect()));
        };
        if resolve_ref(&rest[..end]).is_none() {
            return Err((start, rest[..end].to_owned()));
        }
        from = start + 1 + end + 1;
    }
    Ok(())
}

/// Decodes references in an already-checked raw value.
/// `attr`: apply attribute-value normalisation (literal tab/CR/LF become spaces);
/// otherwise apply end-of-line handling (CRLF and CR become LF).
pub(crate) fn unescape(raw: &str, attr: bool) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    let needs = if attr {
        bytes
            .iter()
            .any(|&b| matches!(b, b'&' | b'\t' | b'\n' | b'\r'))
    } else {
        memchr::memchr2(b'&', b'\r', bytes).is_some()
    };
    if !needs {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '&' => {
                let rest = &raw[i + 1..];
                if let Some(end) = rest.find(';')
                    && let Some(r) = resolve_ref(&rest[..end])
                {
                    out.push(r);
                    // Skip the reference body and the ';'.
                    for _ in 0..=rest[..end].chars().count() {
                        chars.next();
                    }
                } else {
                    out.push('&');
                }
            }
            '\t' | '\n' if attr => out.push(' '),
            '\r' => {
                if chars.peek().is_some_and(|&(_, n)| n == '\n') {
                    chars.next();
                }
                out.push(if attr { ' ' } else { '\n' });
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Appends `s` to `out` escaped for element content or a double-quoted attribute value.
/// C0 control characters other than tab, LF and CR cannot appear in XML 1.0 and become U+FFFD.
pub fn escape_into(out: &mut String, s: &str) {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            b'\r' => "&#13;",
            b'\t' => "&#9;",
            b'\n' => "&#10;",
            // Not representable in XML 1.0 (§2.2), not even as a character reference.
            0..=0x1F => "\u{FFFD}",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(resolve_ref("amp"), Some('&'));
        assert_eq!(resolve_ref("#x41"), Some('A'));
        assert_eq!(resolve_ref("#65"), Some('A'));
        assert_eq!(resolve_ref("#0"), None);
        assert_eq!(resolve_ref("#xD800"), None);
        assert_eq!(resolve_ref("nbsp"), None);
        assert_eq!(resolve_ref("#"), None);
    }

    #[test]
    fn attr_values() {
        assert!(check_attr_value("a &amp; b &#x3C;").is_ok());
        assert_eq!(check_attr_value("a < b"), Err((2, "<".into())));
        assert_eq!(check_attr_value("x &foo; y"), Err((2, "foo".into())));
        assert!(check_attr_value("x & y").is_err());
        assert_eq!(unescape("O&apos;Brien &amp; Co", true), "O'Brien & Co");
        assert_eq!(unescape("a\tb\r\nc", true), "a b c");
        assert_eq!(unescape("a\r\nb\rc", false), "a\nb\nc");
        assert!(matches!(unescape("plain", false), Cow::Borrowed(_)));
    }

    #[test]
    fn escape_roundtrip() {
        let s = "Ünïcode <&> \"q\" 'a'\tx\r\ny";
        let mut out = String::new();
        escape_into(&mut out, s);
        assert!(check_attr_value(&out).is_ok());
        assert_eq!(unescape(&out, true), s);
        assert_eq!(unescape(&out, false), s);
    }
}
