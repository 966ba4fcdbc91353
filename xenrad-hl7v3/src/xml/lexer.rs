//! A borrowed, allocation-free XML 1.0 tokenizer (sans-IO: a `&str` in, tokens with byte
//! offsets out). It checks the markup grammar of XML 1.0 §2.4–2.8 and §3.1: names, quoted
//! attribute values, comments without `--`, PIs, CDATA sections, `]]>` outside CDATA, and it
//! reports a DOCTYPE as its own token so callers can reject it. Entity references in text and
//! attribute values are checked by the caller ([`super::escape`]).

use crate::error::ErrorKind;

/// A lexical error: byte offset and what went wrong.
pub(crate) type LexError = (usize, ErrorKind);

/// A syntax error at `at`.
pub(crate) fn syntax(at: usize, msg: impl Into<String>) -> LexError {
    (at, ErrorKind::Syntax(msg.into()))
}

/// One attribute of a start tag, checked: a Name that is a valid QName, a quoted value with
/// no `<` and only valid references (XML 1.0 §3.1, §4.1; Namespaces §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawAttr<'a> {
    /// Qualified name as written.
    pub name: &'a str,
    /// Length of the prefix (0 = unprefixed).
    pub prefix_len: usize,
    /// Raw value (references undecoded).
    pub value: &'a str,
    /// Document offset of the value.
    pub voff: usize,
    /// The value has no reference and no tab/CR/LF: its normalised value is the raw value.
    pub plain: bool,
}

/// The next step through a start tag's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttrStep<'a> {
    /// An attribute.
    Attr(RawAttr<'a>),
    /// The end of the tag; `empty` for `/>`.
    End {
        /// Self-closing tag.
        empty: bool,
    },
}

/// A source of [`Token`]s over one input. After a [`Token::Start`] the caller reads the tag's
/// attributes with [`TokenSource::next_attr`] up to [`AttrStep::End`], or skips them with
/// [`TokenSource::skip_attrs`], before asking for the next token.
pub(crate) trait TokenSource<'a> {
    /// Whether the source itself checks that each end tag matches its start tag.
    const CHECKS_END_NAMES: bool;
    /// Whether the source rejects C0 control characters (XML 1.0 §2.2) wherever they occur.
    const CHECKS_CONTROLS: bool;
    /// Starts at byte `pos` of `src`.
    fn new(src: &'a str, pos: usize) -> Self;
    /// The next token and its start offset, or `None` at the end of input.
    fn next_token(&mut self) -> Result<Option<(usize, Token<'a>)>, LexError>;
    /// The next attribute of the current start tag (checked), or its end.
    fn next_attr(&mut self) -> Result<AttrStep<'a>, LexError>;
    /// Skips the rest of the current start tag without checking its attributes; returns
    /// whether it was self-closing.
    fn skip_attrs(&mut self) -> Result<bool, LexError>;
}

/// Namespaces in XML §3: a QName has at most one colon, not at either end. Returns the prefix
/// length (0 = none).
pub(crate) fn qname_prefix(q: &str) -> Result<usize, String> {
    match q.bytes().position(|c| c == b':') {
        None => Ok(0),
        Some(p) if p > 0 && p + 1 < q.len() && !q.as_bytes()[p + 1..].contains(&b':') => Ok(p),
        Some(_) => Err(format!("{q:?} is not a valid qualified name")),
    }
}

/// One token; all strings borrow the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// `<?xml …?>` at the very start: its pseudo-attributes region.
    Decl(&'a str),
    /// A start tag's qualified name (a valid QName) and prefix length; the attributes follow.
    Start { qname: &'a str, prefix_len: usize },
    /// An end tag's qualified name.
    End(&'a str),
    /// Character data up to the next `<` (references undecoded); the flag is `false` when the
    /// run is known to hold no `&`, CR or `]`.
    Text(&'a str, bool),
    /// CDATA section content.
    CData(&'a str),
    /// A comment or processing instruction (skipped by callers).
    Misc,
    /// `<!DOCTYPE`.
    Doctype,
}

/// The tokenizer state: input and position (inside a start tag: just after the name or the
/// last attribute read).
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    /// The current start tag: its `<` offset and name.
    tag: (usize, &'a str),
}

/// Bytes that end a short scan of character data or flag it: bit 0 = `<`, bit 1 = `&`, CR, `]`,
/// bit 2 = a C0 control character other than tab, LF, CR.
static TEXT_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        if !matches!(i, 0x09 | 0x0A | 0x0D) {
            t[i] = 4;
        }
        i += 1;
    }
    t[b'<' as usize] = 1;
    t[b'&' as usize] = 2;
    t[b'\r' as usize] = 2;
    t[b']' as usize] = 2;
    t
};

/// Bytes that matter inside an attribute value: 1 = `"`, 2 = `'`, 4 = `<`, 8 = `&`,
/// 16 = tab/LF/CR (normalised to spaces, §3.3.3), 32 = other C0 control characters.
static VALUE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 32;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\'' as usize] = 2;
    t[b'<' as usize] = 4;
    t[b'&' as usize] = 8;
    t[b'\t' as usize] = 16;
    t[b'\n' as usize] = 16;
    t[b'\r' as usize] = 16;
    t
};

/// Length of a Name at the start of `s` and the position of its only colon (0 = none), or the
/// error message when it is not a valid QName (Namespaces in XML §3). One pass: the colon is
/// located only in names that have one.
#[inline]
fn scan_qname(s: &[u8]) -> (usize, Result<usize, &'static str>) {
    let Some(&first) = s.first() else {
        return (0, Ok(0));
    };
    let mut seen = NAME_CLASS[first as usize];
    if seen & 1 == 0 {
        return (0, Ok(0));
    }
    let mut n = 1;
    while n < s.len() {
        let c = NAME_CLASS[s[n] as usize];
        if c & 2 == 0 {
            break;
        }
        seen |= c;
        n += 1;
    }
    if seen & 4 == 0 {
        return (n, Ok(0));
    }
    let name = &s[..n];
    let at = name.iter().position(|&c| c == b':').unwrap_or(0);
    let prefix = if at > 0 && at + 1 < n && !name[at + 1..].contains(&b':') {
        Ok(at)
    } else {
        Err("is not a valid qualified name")
    };
    (n, prefix)
}

/// First C0 control character other than tab, LF, CR (XML 1.0 §2.2), sixteen bytes at a time.
pub(crate) fn find_control(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Has a byte below 0x20 (bytes >= 0x80 are excluded by `!x`).
    let low = |x: u64| x.wrapping_sub(0x20 * LO) & !x & HI;
    let bad = |c: u8| c < 0x20 && !is_ws(c);
    let mut chunks = b.chunks_exact(16);
    let mut at = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(c[8..].try_into().unwrap_or([0; 8]));
        if low(x) | low(y) != 0
            && let Some(p) = c.iter().position(|&c| bad(c))
        {
            return Some(at + p);
        }
        at += 16;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| bad(c))
        .map(|p| at + p)
}

/// The error for a C0 control character at `at` (XML 1.0 §2.2 Char).
fn control_error(at: usize, c: u8) -> LexError {
    syntax(at, format!("control character U+{c:04X} not allowed"))
}

/// Checks a span the tokenizer skipped with a SIMD search for C0 control characters.
#[inline]
fn check_span(b: &[u8], from: usize, to: usize) -> Result<(), LexError> {
    match find_control(&b[from..to]) {
        Some(p) => Err(control_error(from + p, b[from + p])),
        None => Ok(()),
    }
}

/// Short distances dominate in markup (indentation, attribute values): scan a few bytes
/// directly before paying for a SIMD search.
const SHORT: usize = 32;

#[inline]
fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    let head = &hay[..hay.len().min(SHORT)];
    match head.iter().position(|&c| c == needle) {
        Some(p) => Some(p),
        None if hay.len() > SHORT => memchr::memchr(needle, &hay[SHORT..]).map(|p| p + SHORT),
        None => None,
    }
}

#[inline]
fn find_tag_stop(hay: &[u8]) -> Option<usize> {
    let stop = |c: &u8| matches!(c, b'>' | b'"' | b'\'');
    let head = &hay[..hay.len().min(SHORT)];
    match head.iter().position(stop) {
        Some(p) => Some(p),
        None if hay.len() > SHORT => {
            memchr::memchr3(b'>', b'"', b'\'', &hay[SHORT..]).map(|p| p + SHORT)
        }
        None => None,
    }
}

/// Byte classes for names: bit 0 = NameStartChar, bit 1 = NameChar (ASCII rules of XML 1.0
/// §2.3; every non-ASCII byte is accepted as both), bit 2 = the colon.
static NAME_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let start = b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80;
        let name = start || b.is_ascii_digit() || b == b'-' || b == b'.';
        t[i] = (start as u8) | ((name as u8) << 1) | (((b == b':') as u8) << 2);
        i += 1;
    }
    t
};

#[inline]
fn is_name_start(b: u8) -> bool {
    NAME_CLASS[b as usize] & 1 != 0
}

#[inline]
fn is_name_char(b: u8) -> bool {
    NAME_CLASS[b as usize] & 2 != 0
}

#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Length of the XML Name at the start of `s` (0 when there is none). Non-ASCII characters
/// are accepted as name characters (a superset of the §2.3 ranges).
#[inline]
pub(crate) fn name_len(s: &[u8]) -> usize {
    match s.first() {
        Some(&b) if is_name_start(b) => {
            1 + s[1..]
                .iter()
                .position(|&b| !is_name_char(b))
                .unwrap_or(s.len() - 1)
        }
        _ => 0,
    }
}

impl<'a> Lexer<'a> {
    fn err<T>(at: usize, msg: impl Into<String>) -> Result<T, LexError> {
        Err(syntax(at, msg))
    }

    /// The next token and its start offset, or `None` at the end of input.
    fn next_token_impl(&mut self) -> Result<Option<(usize, Token<'a>)>, LexError> {
        let src = self.src;
        let b = src.as_bytes();
        let start = self.pos;
        if start >= b.len() {
            return Ok(None);
        }
        if b[start] != b'<' {
            // Indentation (a newline and spaces) eight bytes at a time.
            let mut i = start;
            if b[i] == b'\n' {
                i += 1;
                while i + 8 <= b.len() && b[i..i + 8] == *b"        " {
                    i += 8;
                }
            }
            // Short runs (indentation, most values): one pass finds the end and the flags.
            let lim = (i + 64).min(b.len());
            let mut flags = 0u8;
            while i < lim {
                let c = TEXT_CLASS[b[i] as usize];
                if c != 0 {
                    if c & 1 != 0 {
                        break;
                    }
                    if c & 4 != 0 {
                        return Err(control_error(i, b[i]));
                    }
                    flags |= c;
                }
                i += 1;
            }
            let special = if i == lim && i < b.len() {
                let from = i;
                i = memchr::memchr(b'<', &b[i..]).map_or(b.len(), |p| i + p);
                check_span(b, from, i)?;
                true
            } else {
                flags != 0
            };
            self.pos = i;
            return Ok(Some((start, Token::Text(&src[start..i], special))));
        }
        let rest = &b[start + 1..];
        match rest.first() {
            Some(b'/') => {
                let n = name_len(&rest[1..]);
                if n == 0 {
                    return Self::err(start, "expected a name in the end tag");
                }
                let qname = &src[start + 2..start + 2 + n];
                let mut i = start + 2 + n;
                while i < b.len() && is_ws(b[i]) {
                    i += 1;
                }
                if b.get(i) != Some(&b'>') {
                    return Self::err(i, format!("expected '>' to close </{qname}"));
                }
                self.pos = i + 1;
                Ok(Some((start, Token::End(qname))))
            }
            Some(b'?') => self.pi(start),
            Some(b'!') => {
                if rest.starts_with(b"!--") {
                    let body = start + 4;
                    let Some(p) = memchr::memmem::find(&b[body..], b"--") else {
                        return Self::err(start, "unterminated comment");
                    };
                    if b.get(body + p + 2) != Some(&b'>') {
                        return Self::err(body + p, "'--' inside a comment");
                    }
                    check_span(b, body, body + p)?;
                    self.pos = body + p + 3;
                    Ok(Some((start, Token::Misc)))
                } else if rest.starts_with(b"![CDATA[") {
                    let body = start + 9;
                    let Some(p) = memchr::memmem::find(&b[body..], b"]]>") else {
                        return Self::err(start, "unterminated CDATA section");
                    };
                    check_span(b, body, body + p)?;
                    self.pos = body + p + 3;
                    Ok(Some((start, Token::CData(&src[body..body + p]))))
                } else if rest.starts_with(b"!DOCTYPE") {
                    Ok(Some((start, Token::Doctype)))
                } else {
                    Self::err(start, "unexpected '<!'")
                }
            }
            _ => self.start_tag(start),
        }
    }

    fn pi(&mut self, start: usize) -> Result<Option<(usize, Token<'a>)>, LexError> {
        let b = self.src.as_bytes();
        let n = name_len(&b[start + 2..]);
        if n == 0 {
            return Self::err(start, "expected a processing instruction target");
        }
        let target = &self.src[start + 2..start + 2 + n];
        let Some(p) = memchr::memmem::find(&b[start + 2 + n..], b"?>") else {
            return Self::err(start, "unterminated processing instruction");
        };
        let end = start + 2 + n + p;
        if p > 0 && !is_ws(b[start + 2 + n]) {
            return Self::err(start + 2 + n, "expected whitespace after the PI target");
        }
        check_span(b, start + 2 + n, end)?;
        self.pos = end + 2;
        if target.eq_ignore_ascii_case("xml") {
            if (start != 0 && !(start == 3 && self.src.starts_with('\u{FEFF}'))) || target != "xml"
            {
                return Self::err(start, "XML declaration not at the start of the document");
            }
            return Ok(Some((start, Token::Decl(&self.src[start + 2 + n..end]))));
        }
        Ok(Some((start, Token::Misc)))
    }

    fn start_tag(&mut self, start: usize) -> Result<Option<(usize, Token<'a>)>, LexError> {
        let src = self.src;
        let b = src.as_bytes();
        let (n, prefix) = scan_qname(&b[start + 1..]);
        if n == 0 {
            return Self::err(start, "expected an element name after '<'");
        }
        let qname = &src[start + 1..start + 1 + n];
        let prefix_len = prefix.map_err(|m| syntax(start + 1, format!("{qname:?} {m}")))?;
        self.pos = start + 1 + n;
        self.tag = (start, qname);
        Ok(Some((start, Token::Start { qname, prefix_len })))
    }

    fn unterminated<T>(&self) -> Result<T, LexError> {
        Self::err(
            self.tag.0,
            format!("unterminated start tag <{}", self.tag.1),
        )
    }

    /// An attribute value starting after its opening quote `q` at `vstart`: one pass finds the
    /// closing quote, rejects `<`, checks references and notes whether normalisation applies.
    fn value(&self, name: &str, q: u8, vstart: usize) -> Result<(usize, bool), LexError> {
        let b = self.src.as_bytes();
        let stop = (if q == b'"' { 1 } else { 2 }) | 4 | 8 | 16 | 32;
        let mut i = vstart;
        let mut plain = true;
        loop {
            // A short byte loop first; long runs without markup go to memchr.
            let lim = (i + 64).min(b.len());
            while i < lim && VALUE_CLASS[b[i] as usize] & stop == 0 {
                i += 1;
            }
            if i == lim {
                if i >= b.len() {
                    return Self::err(vstart - 1, "unterminated attribute value");
                }
                plain = false;
                match memchr::memchr3(q, b'<', b'&', &b[i..]) {
                    Some(p) => {
                        check_span(b, i, i + p)?;
                        i += p;
                    }
                    None => return Self::err(vstart - 1, "unterminated attribute value"),
                }
            }
            match b[i] {
                c if c == q => return Ok((i, plain)),
                b'<' => {
                    return Err(syntax(i, format!("'<' in the value of attribute {name:?}")));
                }
                b'&' => {
                    plain = false;
                    let rest = &self.src[i + 1..];
                    let end = rest.bytes().take(40).position(|c| c == b';');
                    match end {
                        Some(e) if super::escape::resolve_ref(&rest[..e]).is_some() => {
                            i += e + 2;
                        }
                        Some(e) => return Err((i, ErrorKind::UndefinedEntity(rest[..e].into()))),
                        None => {
                            let what = rest.chars().take(16).collect();
                            return Err((i, ErrorKind::UndefinedEntity(what)));
                        }
                    }
                }
                c if VALUE_CLASS[c as usize] & 32 != 0 && !is_ws(c) => {
                    return Err(control_error(i, c));
                }
                _ => {
                    plain = false;
                    i += 1;
                }
            }
        }
    }
}

impl<'a> TokenSource<'a> for Lexer<'a> {
    const CHECKS_END_NAMES: bool = false;
    const CHECKS_CONTROLS: bool = true;

    fn new(src: &'a str, pos: usize) -> Self {
        Lexer {
            src,
            pos,
            tag: (0, ""),
        }
    }

    #[inline]
    fn next_token(&mut self) -> Result<Option<(usize, Token<'a>)>, LexError> {
        self.next_token_impl()
    }

    fn next_attr(&mut self) -> Result<AttrStep<'a>, LexError> {
        let src = self.src;
        let b = src.as_bytes();
        let ws_start = self.pos;
        let mut i = ws_start;
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        match b.get(i) {
            None => return self.unterminated(),
            Some(b'>') => {
                self.pos = i + 1;
                return Ok(AttrStep::End { empty: false });
            }
            Some(b'/') => {
                if b.get(i + 1) == Some(&b'>') {
                    self.pos = i + 2;
                    return Ok(AttrStep::End { empty: true });
                }
                return Self::err(i, "expected '>' after '/'");
            }
            Some(_) => {}
        }
        if i == ws_start {
            return Self::err(i, "expected whitespace before an attribute");
        }
        let (n, prefix) = scan_qname(&b[i..]);
        if n == 0 {
            return Self::err(i, "expected an attribute name");
        }
        let name = &src[i..i + n];
        let prefix_len = prefix.map_err(|m| syntax(i, format!("{name:?} {m}")))?;
        i += n;
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return Self::err(i, format!("expected '=' after attribute {name}"));
        }
        i += 1;
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        let Some(&q @ (b'"' | b'\'')) = b.get(i) else {
            return Self::err(i, format!("expected a quoted value for attribute {name}"));
        };
        let (end, plain) = self.value(name, q, i + 1)?;
        self.pos = end + 1;
        Ok(AttrStep::Attr(RawAttr {
            name,
            prefix_len,
            value: &src[i + 1..end],
            voff: i + 1,
            plain,
        }))
    }

    fn skip_attrs(&mut self) -> Result<bool, LexError> {
        let b = self.src.as_bytes();
        let name_end = self.pos;
        // Find the closing '>' outside quoted values.
        let mut i = name_end;
        loop {
            let Some(p) = find_tag_stop(&b[i..]) else {
                return self.unterminated();
            };
            let at = i + p;
            if b[at] == b'>' {
                self.pos = at + 1;
                return Ok(at > name_end && b[at - 1] == b'/');
            }
            let Some(q) = find_byte(b[at], &b[at + 1..]) else {
                return Self::err(at, "unterminated attribute value");
            };
            i = at + 1 + q + 1;
        }
    }
}

/// Iterates the attributes of a start tag's raw attribute region strictly (§3.1):
/// whitespace before each, `Name Eq AttValue`, quotes `"` or `'`.
pub(crate) struct AttrIter<'a> {
    raw: &'a str,
    pos: usize,
    /// Offset of `raw` in the document, for errors.
    base: usize,
}

impl<'a> AttrIter<'a> {
    pub(crate) fn new(raw: &'a str, base: usize) -> Self {
        AttrIter { raw, pos: 0, base }
    }
}

impl<'a> Iterator for AttrIter<'a> {
    /// (qualified name, raw value, document offset of the value).
    type Item = Result<(&'a str, &'a str, usize), LexError>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.raw.as_bytes();
        let ws_start = self.pos;
        while self.pos < b.len() && is_ws(b[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        let at = self.base + self.pos;
        if self.pos == ws_start {
            self.pos = b.len();
            return Some(Err(syntax(at, "expected whitespace before an attribute")));
        }
        let n = name_len(&b[self.pos..]);
        if n == 0 {
            self.pos = b.len();
            return Some(Err(syntax(at, "expected an attribute name")));
        }
        let name = &self.raw[self.pos..self.pos + n];
        let mut i = self.pos + n;
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            self.pos = b.len();
            return Some(Err(syntax(
                self.base + i,
                format!("expected '=' after attribute {name}"),
            )));
        }
        i += 1;
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        let Some(&q @ (b'"' | b'\'')) = b.get(i) else {
            self.pos = b.len();
            return Some(Err(syntax(
                self.base + i,
                format!("expected a quoted value for attribute {name}"),
            )));
        };
        let Some(len) = find_byte(q, &b[i + 1..]) else {
            self.pos = b.len();
            return Some(Err(syntax(self.base + i, "unterminated attribute value")));
        };
        let value = &self.raw[i + 1..i + 1 + len];
        self.pos = i + 1 + len + 1;
        Some(Ok((name, value, self.base + i + 1)))
    }
}

#[cfg(test)]
#[allow(clippy::many_single_char_names)]
mod tests {
    use super::*;

    /// Tokens, with each start tag's attributes read (checked) right after it.
    fn tokens(s: &str) -> Result<Vec<Token<'_>>, LexError> {
        let mut l = Lexer::new(s, 0);
        let mut v = Vec::new();
        while let Some((_, t)) = l.next_token()? {
            v.push(t);
            if let Token::Start { .. } = t {
                while let AttrStep::Attr(_) = l.next_attr()? {}
            }
        }
        Ok(v)
    }

    fn attrs(s: &str) -> Result<(Vec<RawAttr<'_>>, bool), LexError> {
        let mut l = Lexer::new(s, 0);
        let Some((_, Token::Start { .. })) = l.next_token()? else {
            panic!("not a start tag: {s}");
        };
        let mut v = Vec::new();
        loop {
            match l.next_attr()? {
                AttrStep::Attr(a) => v.push(a),
                AttrStep::End { empty } => return Ok((v, empty)),
            }
        }
    }

    #[test]
    fn tokenizes() {
        let t = tokens(
            "<?xml version='1.0'?><a x='>'  y = \"2\"><!--c--><?p d?>t&amp;<![CDATA[<]]></a ><b/><c>d</c>",
        )
        .unwrap();
        assert_eq!(t[0], Token::Decl(" version='1.0'"));
        assert_eq!(
            t[1],
            Token::Start {
                qname: "a",
                prefix_len: 0
            }
        );
        assert_eq!(t[4], Token::Text("t&amp;", true));
        assert_eq!(t[5], Token::CData("<"));
        assert_eq!(t[6], Token::End("a"));
        assert_eq!(
            t[8],
            Token::Start {
                qname: "c",
                prefix_len: 0
            }
        );
        assert_eq!(t[9], Token::Text("d", false));
        for bad in [
            "<a x='1>",
            "<!-- a -- b -->",
            "<",
            "< a/>",
            "</ a>",
            "<a></a",
            "<![CDATA[x",
            "<!ELEMENT>",
            "<?xml?><a/>",
            "<a/><?xml version='1.0'?>",
            "<a:b:c/>",
            "<a/ >",
        ] {
            assert!(tokens(bad).is_err() || bad == "<?xml?><a/>", "{bad}");
        }
    }

    #[test]
    fn attributes() {
        let (v, empty) = attrs("<r a='1' p:b = \"x&amp;y\"/>").unwrap();
        assert!(empty);
        assert_eq!(
            (v[0].name, v[0].value, v[0].voff, v[0].plain),
            ("a", "1", 6, true)
        );
        assert_eq!(
            (v[1].name, v[1].prefix_len, v[1].value, v[1].plain),
            ("p:b", 1, "x&amp;y", false)
        );
        let long = format!("<r a='{}\t'>", "x".repeat(100));
        let (v, empty) = attrs(&long).unwrap();
        assert!(!empty && !v[0].plain && v[0].value.len() == 101);
        for bad in [
            "<r a>",
            "<r a=1>",
            "<r a='1'b='2'>",
            "<r ='1'>",
            "<r a='1",
            "<r a='<'>",
            "<r a='&x;'>",
            "<r a='& '>",
            "<r :a='1'>",
            "<r a='1'/ >",
        ] {
            assert!(attrs(bad).is_err(), "{bad}");
        }
        // The declaration's pseudo-attributes still use `AttrIter`.
        let v: Vec<_> = AttrIter::new(" a='1' b = \"x y\"", 10)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(v, [("a", "1", 14), ("b", "x y", 22)]);
    }
}
