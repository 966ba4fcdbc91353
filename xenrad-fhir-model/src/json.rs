//! Layer 2: a small borrowed JSON lexer (RFC 8259) and a generic JSON tree.
//!
//! Strings without escapes are borrowed from the input; numbers keep their exact text (FHIR R4
//! JSON §1.2: decimals must round-trip with their precision). Used by the typed reader, for unknown
//! elements kept in lenient mode, and by tests to compare documents semantically.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A JSON syntax error at a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset in the input.
    pub offset: usize,
    /// What was wrong.
    pub message: &'static str,
}

/// A generic JSON value; strings and numbers borrow the input where possible.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// `null`
    Null,
    /// `true`/`false`
    Bool(bool),
    /// A number, exactly as written.
    Number(Cow<'a, str>),
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object, members in input order.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl Json<'_> {
    /// Converts into a value that owns all its strings.
    pub fn into_owned(self) -> Json<'static> {
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(b),
            Json::Number(n) => Json::Number(Cow::Owned(n.into_owned())),
            Json::String(s) => Json::String(Cow::Owned(s.into_owned())),
            Json::Array(a) => Json::Array(a.into_iter().map(Json::into_owned).collect()),
            Json::Object(o) => Json::Object(
                o.into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            ),
        }
    }

    /// Semantic equality: object member order ignored, numbers compared by exact text.
    pub fn same_as(&self, other: &Json<'_>) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            (Json::Number(a), Json::Number(b)) | (Json::String(a), Json::String(b)) => a == b,
            (Json::Array(a), Json::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
            }
            (Json::Object(a), Json::Object(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.iter()
                            .find(|(k2, _)| k2 == k)
                            .is_some_and(|(_, v2)| v.same_as(v2))
                    })
            }
            _ => false,
        }
    }

    /// Member of an object by key.
    pub fn get(&self, key: &str) -> Option<&Json<'_>> {
        match self {
            Json::Object(o) => o.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// Writes compact JSON.
    pub fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_str(out, s),
            Json::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Object(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// Parses a complete JSON document into a generic tree (with a nesting limit).
pub fn parse(input: &[u8], max_depth: u32) -> Result<Json<'_>, SyntaxError> {
    let mut lx = Lexer::new(input);
    let v = lx.any(max_depth)?;
    lx.end()?;
    Ok(v)
}

/// Writes `s` as a JSON string literal with the escapes RFC 8259 §7 requires.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        // copy the run that needs no escaping in one go
        let run = escape_free_run(&bytes[start..]);
        out.push_str(&s[start..start + run]);
        let i = start + run;
        let Some(&b) = bytes.get(i) else { break };
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push('"');
}

/// Length of the leading run without `"`, `\\` or control bytes.
#[allow(clippy::needless_bitwise_bool)] // branch-free on purpose
fn escape_free_run(s: &[u8]) -> usize {
    let mut n = 0;
    for chunk in s.chunks(32) {
        let clean = chunk
            .iter()
            .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
        if !clean {
            return n + chunk
                .iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
                .unwrap_or(chunk.len());
        }
        n += chunk.len();
    }
    n
}

/// A cursor over JSON text.
#[derive(Debug)]
pub struct Lexer<'a> {
    src: &'a [u8],
    /// The whole input as text when it is valid UTF-8 (checked once, up front), so strings are
    /// sliced from it without validating each one; `None` falls back to per-string checks that
    /// report where the bad bytes are.
    text: Option<&'a str>,
    /// Current byte offset.
    pub pos: usize,
}

impl<'a> Lexer<'a> {
    /// Starts at offset 0.
    pub fn new(src: &'a [u8]) -> Self {
        Lexer {
            src,
            text: std::str::from_utf8(src).ok(),
            pos: 0,
        }
    }

    /// An error at the current position.
    pub fn err(&self, message: &'static str) -> SyntaxError {
        SyntaxError {
            offset: self.pos,
            message,
        }
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.src.get(self.pos) {
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                return Some(b);
            }
        }
        None
    }

    /// Consumes `b` (after whitespace) or fails.
    #[inline]
    pub fn expect(&mut self, b: u8, message: &'static str) -> Result<(), SyntaxError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(message))
        }
    }

    /// Requires that only whitespace remains.
    pub fn end(&mut self) -> Result<(), SyntaxError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.err("trailing characters after the JSON value")),
        }
    }

    /// After an element of an object/array: consumes `,` (returns true) or the closing byte (false).
    #[inline]
    pub fn next_or_close(&mut self, close: u8) -> Result<bool, SyntaxError> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(self.err(if close == b'}' {
                "expected ',' or '}'"
            } else {
                "expected ',' or ']'"
            })),
        }
    }

    /// After `{` or `[`: consumes the closing byte if the container is empty.
    #[inline]
    pub fn empty_close(&mut self, close: u8) -> bool {
        if self.peek() == Some(close) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Reads a string literal (the next token must be `"`).
    pub fn string(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        self.expect(b'"', "expected a string")?;
        let start = self.pos;
        let src = self.src;
        let mut i = start + plain_run(&src[start..]);
        loop {
            match src.get(i) {
                None => {
                    self.pos = i;
                    return Err(self.err("unterminated string"));
                }
                Some(b'"') => {
                    // both ends are ASCII quotes, hence char boundaries of `text`
                    let s = match self.text.and_then(|t| t.get(start..i)) {
                        Some(s) => s,
                        None => std::str::from_utf8(&src[start..i]).map_err(|e| SyntaxError {
                            offset: start + e.valid_up_to(),
                            message: "invalid UTF-8 in string",
                        })?,
                    };
                    self.pos = i + 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(&b) if b < 0x20 => {
                    self.pos = i;
                    return Err(self.err("control character in string"));
                }
                Some(_) => i += 1,
            }
        }
        // slow path with escapes
        let mut buf: Vec<u8> = Vec::with_capacity(i - start + 64);
        buf.extend_from_slice(&src[start..i]);
        loop {
            match src.get(i) {
                None => {
                    self.pos = i;
                    return Err(self.err("unterminated string"));
                }
                Some(b'"') => {
                    self.pos = i + 1;
                    return String::from_utf8(buf)
                        .map(Cow::Owned)
                        .map_err(|_| SyntaxError {
                            offset: start,
                            message: "invalid UTF-8 in string",
                        });
                }
                Some(b'\\') => {
                    i += 1;
                    let c = *src.get(i).ok_or(SyntaxError {
                        offset: i,
                        message: "unterminated escape",
                    })?;
                    i += 1;
                    match c {
                        b'"' => buf.push(b'"'),
                        b'\\' => buf.push(b'\\'),
                        b'/' => buf.push(b'/'),
                        b'b' => buf.push(8),
                        b'f' => buf.push(12),
                        b'n' => buf.push(b'\n'),
                        b'r' => buf.push(b'\r'),
                        b't' => buf.push(b'\t'),
                        b'u' => {
                            let hi = hex4(src, i).ok_or(SyntaxError {
                                offset: i,
                                message: "bad \\u escape",
                            })?;
                            i += 4;
                            let ch = if (0xD800..0xDC00).contains(&hi) {
                                let lo = if src.get(i) == Some(&b'\\')
                                    && src.get(i + 1) == Some(&b'u')
                                {
                                    hex4(src, i + 2)
                                } else {
                                    None
                                }
                                .filter(|lo| (0xDC00..0xE000).contains(lo))
                                .ok_or(SyntaxError {
                                    offset: i,
                                    message: "unpaired surrogate",
                                })?;
                                i += 6;
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                            } else {
                                char::from_u32(hi)
                            }
                            .ok_or(SyntaxError {
                                offset: i,
                                message: "unpaired surrogate",
                            })?;
                            let mut tmp = [0u8; 4];
                            buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => {
                            return Err(SyntaxError {
                                offset: i - 1,
                                message: "unknown escape",
                            });
                        }
                    }
                }
                Some(&b) if b < 0x20 => {
                    self.pos = i;
                    return Err(self.err("control character in string"));
                }
                Some(_) => {
                    // copy the whole run up to the next quote, backslash or control byte
                    let run = plain_run(&src[i..]).max(1);
                    buf.extend_from_slice(&src[i..i + run]);
                    i += run;
                }
            }
        }
    }

    /// Fast path for strings made only of bytes that `alphabet` accepts in 64-byte chunks (such
    /// bytes must exclude `"`, `\\` and control bytes): finds the closing quote and returns the
    /// body in one pass. Returns `None`, consuming nothing, when the string has any other byte
    /// (the caller then uses [`Lexer::string`]).
    pub fn base64_string(&mut self, alphabet: impl Fn(&[u8]) -> bool) -> Option<&'a str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.pos + 1;
        let src = self.src;
        let mut i = start;
        while let Some(c) = src.get(i..i + 64) {
            if !alphabet(c) {
                break;
            }
            i += 64;
        }
        // the last (partial) chunk, byte by byte, up to the quote
        while let Some(&b) = src.get(i) {
            if b == b'"' {
                let s = match self.text {
                    Some(t) => t.get(start..i)?,
                    None => std::str::from_utf8(&src[start..i]).ok()?,
                };
                self.pos = i + 1;
                return Some(s);
            }
            if !alphabet(std::slice::from_ref(&b)) {
                return None;
            }
            i += 1;
        }
        None
    }

    /// Reads a number token and returns its exact text and whether it is an integer.
    pub fn number(&mut self) -> Result<(&'a str, bool), SyntaxError> {
        self.peek();
        let src = self.src;
        let start = self.pos;
        let mut i = start;
        if src.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        while src.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == int_start || (src[int_start] == b'0' && i - int_start > 1) {
            return Err(SyntaxError {
                offset: start,
                message: "invalid number",
            });
        }
        let mut integer = true;
        if src.get(i) == Some(&b'.') {
            integer = false;
            i += 1;
            let f = i;
            while src.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == f {
                return Err(SyntaxError {
                    offset: start,
                    message: "invalid number",
                });
            }
        }
        if matches!(src.get(i), Some(b'e' | b'E')) {
            integer = false;
            i += 1;
            if matches!(src.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let f = i;
            while src.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == f {
                return Err(SyntaxError {
                    offset: start,
                    message: "invalid number",
                });
            }
        }
        self.pos = i;
        // all bytes are ASCII
        let text = std::str::from_utf8(&src[start..i]).map_err(|_| self.err("invalid number"))?;
        Ok((text, integer))
    }

    /// Reads `true`, `false` or `null`; returns `Some(bool)` or `None` for null.
    pub fn literal(&mut self) -> Result<Option<bool>, SyntaxError> {
        self.peek();
        let rest = &self.src[self.pos..];
        let (v, n) = if rest.starts_with(b"true") {
            (Some(true), 4)
        } else if rest.starts_with(b"false") {
            (Some(false), 5)
        } else if rest.starts_with(b"null") {
            (None, 4)
        } else {
            return Err(self.err("unexpected token"));
        };
        self.pos += n;
        Ok(v)
    }

    /// Skips one JSON value (validating it) without building anything.
    pub fn skip(&mut self, depth: u32) -> Result<(), SyntaxError> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(open @ (b'{' | b'[')) => {
                if depth == 0 {
                    return Err(self.err("nesting too deep"));
                }
                self.pos += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                if self.empty_close(close) {
                    return Ok(());
                }
                loop {
                    if open == b'{' {
                        self.string()?;
                        self.expect(b':', "expected ':'")?;
                    }
                    self.skip(depth - 1)?;
                    if !self.next_or_close(close)? {
                        return Ok(());
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            Some(_) => self.literal().map(drop),
            None => Err(self.err("unexpected end of input")),
        }
    }

    /// Reads any JSON value into a generic tree.
    pub fn any(&mut self, depth: u32) -> Result<Json<'a>, SyntaxError> {
        match self.peek() {
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b'{') => {
                if depth == 0 {
                    return Err(self.err("nesting too deep"));
                }
                self.pos += 1;
                let mut members = Vec::new();
                if !self.empty_close(b'}') {
                    loop {
                        let k = self.string()?;
                        self.expect(b':', "expected ':'")?;
                        let v = self.any(depth - 1)?;
                        members.push((k, v));
                        if !self.next_or_close(b'}')? {
                            break;
                        }
                    }
                }
                Ok(Json::Object(members))
            }
            Some(b'[') => {
                if depth == 0 {
                    return Err(self.err("nesting too deep"));
                }
                self.pos += 1;
                let mut items = Vec::new();
                if !self.empty_close(b']') {
                    loop {
                        items.push(self.any(depth - 1)?);
                        if !self.next_or_close(b']')? {
                            break;
                        }
                    }
                }
                Ok(Json::Array(items))
            }
            Some(b'-' | b'0'..=b'9') => Ok(Json::Number(Cow::Borrowed(self.number()?.0))),
            Some(_) => Ok(match self.literal()? {
                Some(b) => Json::Bool(b),
                None => Json::Null,
            }),
            None => Err(self.err("unexpected end of input")),
        }
    }
}

/// Length of the leading run of bytes that need no attention inside a string: up to the next
/// `"` or `\\` (found with memchr), or the first control byte before it.
#[inline]
fn plain_run(s: &[u8]) -> usize {
    // most FHIR strings are short: a byte loop over the head beats setting up a SIMD search
    const HEAD: usize = 24;
    let head = s.len().min(HEAD);
    if let Some(i) = s[..head]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
    {
        return i;
    }
    if head == s.len() {
        return head;
    }
    head + long_plain_run(&s[head..])
}

/// [`plain_run`] for long strings: memchr for the delimiters, then a vectorised control-byte check.
fn long_plain_run(s: &[u8]) -> usize {
    let end = memchr::memchr2(b'"', b'\\', s).unwrap_or(s.len());
    let seg = &s[..end];
    // the minimum byte of each chunk (vectorised as pminub) finds control bytes in one cheap pass;
    // rare control bytes take the slow path
    if seg
        .chunks(64)
        .all(|c| c.iter().copied().fold(u8::MAX, u8::min) >= 0x20)
    {
        end
    } else {
        seg.iter().position(|&b| b < 0x20).unwrap_or(end)
    }
}

fn hex4(src: &[u8], i: usize) -> Option<u32> {
    let s = src.get(i..i + 4)?;
    let mut v = 0;
    for &b in s {
        v = v * 16 + (b as char).to_digit(16)?;
    }
    Some(v)
}
