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

/// A source of [`Token`]s over one input, and the attribute iterator that goes with it.
pub(crate) trait TokenSource<'a> {
    /// Whether the source itself checks that each end tag matches its start tag.
    const CHECKS_END_NAMES: bool;
    /// Iterator over a start tag's attributes: (name, raw value, document offset of the value).
    type Attrs: Iterator<Item = Result<(&'a str, &'a str, usize), LexError>>;
    /// Starts at byte `pos` of `src`.
    fn new(src: &'a str, pos: usize) -> Self;
    /// The next token and its start offset, or `None` at the end of input.
    fn next_token(&mut self) -> Result<Option<(usize, Token<'a>)>, LexError>;
    /// The attributes of a start tag's raw attribute region starting at document offset `base`.
    fn attributes(raw: &'a str, base: usize) -> Self::Attrs;
}

/// One token; all strings borrow the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// `<?xml …?>` at the very start: its pseudo-attributes region.
    Decl(&'a str),
    /// A start tag: qualified name, raw attribute region, self-closing flag.
    Start {
        qname: &'a str,
        attrs: &'a str,
        attrs_offset: usize,
        empty: bool,
    },
    /// An end tag's qualified name.
    End(&'a str),
    /// Character data up to the next `<` (references undecoded).
    Text(&'a str),
    /// CDATA section content.
    CData(&'a str),
    /// A comment or processing instruction (skipped by callers).
    Misc,
    /// `<!DOCTYPE`.
    Doctype,
}

/// The tokenizer state: input and position.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
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
/// §2.3; every non-ASCII byte is accepted as both).
static NAME_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let start = b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80;
        let name = start || b.is_ascii_digit() || b == b'-' || b == b'.';
        t[i] = (start as u8) | ((name as u8) << 1);
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
            let end = find_byte(b'<', &b[start..]).map_or(b.len(), |p| start + p);
            self.pos = end;
            return Ok(Some((start, Token::Text(&src[start..end]))));
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
                    self.pos = body + p + 3;
                    Ok(Some((start, Token::Misc)))
                } else if rest.starts_with(b"![CDATA[") {
                    let body = start + 9;
                    let Some(p) = memchr::memmem::find(&b[body..], b"]]>") else {
                        return Self::err(start, "unterminated CDATA section");
                    };
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

    #[allow(clippy::many_single_char_names)]
    fn start_tag(&mut self, start: usize) -> Result<Option<(usize, Token<'a>)>, LexError> {
        let src = self.src;
        let b = src.as_bytes();
        let n = name_len(&b[start + 1..]);
        if n == 0 {
            return Self::err(start, "expected an element name after '<'");
        }
        let qname = &src[start + 1..start + 1 + n];
        let attrs_offset = start + 1 + n;
        // Find the closing '>' outside quoted values.
        let mut i = attrs_offset;
        loop {
            let Some(p) = find_tag_stop(&b[i..]) else {
                return Self::err(start, format!("unterminated start tag <{qname}"));
            };
            let at = i + p;
            if b[at] == b'>' {
                let empty = at > attrs_offset && b[at - 1] == b'/';
                let attrs_end = if empty { at - 1 } else { at };
                self.pos = at + 1;
                return Ok(Some((
                    start,
                    Token::Start {
                        qname,
                        attrs: &src[attrs_offset..attrs_end],
                        attrs_offset,
                        empty,
                    },
                )));
            }
            let Some(q) = find_byte(b[at], &b[at + 1..]) else {
                return Self::err(at, "unterminated attribute value");
            };
            i = at + 1 + q + 1;
        }
    }
}

impl<'a> TokenSource<'a> for Lexer<'a> {
    const CHECKS_END_NAMES: bool = false;
    type Attrs = AttrIter<'a>;

    fn new(src: &'a str, pos: usize) -> Self {
        Lexer { src, pos }
    }

    #[inline]
    fn next_token(&mut self) -> Result<Option<(usize, Token<'a>)>, LexError> {
        self.next_token_impl()
    }

    fn attributes(raw: &'a str, base: usize) -> AttrIter<'a> {
        AttrIter::new(raw, base)
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

    fn tokens(s: &str) -> Result<Vec<Token<'_>>, LexError> {
        let mut l = Lexer::new(s, 0);
        let mut v = Vec::new();
        while let Some((_, t)) = l.next_token()? {
            v.push(t);
        }
        Ok(v)
    }

    #[test]
    fn tokenizes() {
        let t = tokens(
            "<?xml version='1.0'?><a x='>'  y = \"2\"><!--c--><?p d?>t&amp;<![CDATA[<]]></a ><b/>",
        )
        .unwrap();
        assert_eq!(t[0], Token::Decl(" version='1.0'"));
        assert!(matches!(
            t[1],
            Token::Start {
                qname: "a",
                empty: false,
                ..
            }
        ));
        assert_eq!(t[4], Token::Text("t&amp;"));
        assert_eq!(t[5], Token::CData("<"));
        assert_eq!(t[6], Token::End("a"));
        assert!(matches!(
            t[7],
            Token::Start {
                qname: "b",
                attrs: "",
                empty: true,
                ..
            }
        ));
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
        ] {
            assert!(tokens(bad).is_err() || bad == "<?xml?><a/>", "{bad}");
        }
    }

    #[test]
    fn attributes() {
        let v: Vec<_> = AttrIter::new(" a='1' b = \"x y\"", 10)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(v, [("a", "1", 14), ("b", "x y", 22)]);
        for bad in [" a", " a=1", " a='1'b='2'", " ='1'", " a='1"] {
            assert!(AttrIter::new(bad, 0).any(|r| r.is_err()), "{bad}");
        }
    }
}
