//! The tokenizer on quick-xml: its borrowed [`quick_xml::Reader`] over `&[u8]` (plain events,
//! no `NsReader`) turned into the crate's [`Token`]s, plus the checks quick-xml leaves to its
//! caller so the strict pass stays as strict as with the hand-written [`super::lexer::Lexer`]:
//!
//! - quick-xml is configured with `check_end_names` and `check_comments` (XML 1.0 §3, §2.5),
//!   no dangling `&` (§4.1), no unmatched end tags, no trimming;
//! - names of elements, attributes and PI targets are checked here (§2.3; quick-xml takes any
//!   run of non-whitespace), as is the whitespace required before each attribute (§3.1);
//! - a `<!DOCTYPE` is reported as soon as it is seen, before quick-xml would scan the DTD;
//! - quick-xml splits character data at references; the pieces are joined back into one run so
//!   text nodes borrow the input exactly as with the hand-written tokenizer;
//! - every offset is a byte offset into the whole input (quick-xml reads after any BOM).

use quick_xml::Reader;
use quick_xml::errors::{Error as QxError, IllFormedError, SyntaxError};
use quick_xml::events::Event;
use quick_xml::events::attributes::{AttrError, Attributes};

use super::lexer::{
    AttrStep, LexError, RawAttr, Token, TokenSource, is_ws, name_len, qname_prefix, syntax,
};
use crate::error::ErrorKind;

/// Byte offset of `part` within `whole`, when `part` is a slice of `whole` (quick-xml's events
/// over a `&[u8]` borrow the input; anything else is reported, never sliced).
#[inline]
fn offset_in(whole: &str, part: &str) -> usize {
    let off = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    if off
        .checked_add(part.len())
        .is_some_and(|end| end <= whole.len())
    {
        off
    } else {
        usize::MAX
    }
}

/// The slice of `src` that `part` borrows, or an error at `at`.
fn borrowed<'a>(src: &'a str, part: &str, at: usize) -> Result<(usize, &'a str), LexError> {
    match offset_in(src, part) {
        usize::MAX => Err(syntax(
            at,
            "quick-xml returned an event that does not borrow the input",
        )),
        off => src
            .get(off..off + part.len())
            .map(|s| (off, s))
            .ok_or_else(|| {
                syntax(
                    at,
                    "quick-xml returned an event that does not borrow the input",
                )
            }),
    }
}

#[inline]
fn is_name(s: &str) -> bool {
    !s.is_empty() && name_len(s.as_bytes()) == s.len()
}

/// quick-xml's reader as a [`TokenSource`].
pub(crate) struct QxLexer<'a> {
    src: &'a str,
    /// Offset in `src` where the document starts (after the BOM the caller skipped).
    start: usize,
    /// Offset in `src` where the reader's input starts.
    base: usize,
    reader: Reader<&'a [u8]>,
    /// An event read ahead while joining a run of text, with its start offset.
    pending: Option<(usize, Event<'a>)>,
    /// The attributes of the current start tag, and whether it is self-closing.
    attrs: Option<QxAttrs<'a>>,
    empty: bool,
}

impl<'a> QxLexer<'a> {
    /// Starts at byte `pos` of `src`.
    fn start(src: &'a str, pos: usize) -> Self {
        // quick-xml drops a byte order mark at the start of its input without counting it in
        // its positions; a second BOM (after the one the caller skipped) is character data
        // here, so it is handed over as text and the reader starts after it.
        let mut skip = pos;
        while src[skip..].starts_with('\u{FEFF}') {
            skip += 3;
        }
        let pending =
            (skip > pos).then(|| (pos, Event::Text(quick_xml::events::BytesText::new(""))));
        let mut reader = Reader::from_str(&src[skip..]);
        let c = reader.config_mut();
        c.check_end_names = true;
        c.check_comments = true;
        c.allow_dangling_amp = false;
        c.allow_unmatched_ends = false;
        c.expand_empty_elements = false;
        c.trim_text(false);
        c.trim_markup_names_in_closing_tags = true;
        QxLexer {
            src,
            start: pos,
            base: skip,
            reader,
            pending,
            attrs: None,
            empty: false,
        }
    }

    /// The next event and the offset where it starts.
    fn read(&mut self) -> Result<(usize, Event<'a>), LexError> {
        let at = self.base + self.reader.buffer_position() as usize;
        let b = self.src.as_bytes();
        // Reject a DTD before quick-xml scans it (entities are never declared or expanded).
        if b.get(at) == Some(&b'<')
            && b.get(at + 1) == Some(&b'!')
            && b[at + 2..].starts_with(b"DOCTYPE")
        {
            return Ok((at, Event::DocType(quick_xml::events::BytesText::new(""))));
        }
        match self.reader.read_event() {
            Ok(e) => Ok((at, e)),
            Err(e) => {
                let pos = self.base + self.reader.error_position() as usize;
                Err(self.map_error(&e, pos))
            }
        }
    }

    fn map_error(&self, e: &QxError, pos: usize) -> LexError {
        let msg = match e {
            QxError::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
                format!("expected </{expected}>, found </{found}>")
            }
            QxError::IllFormed(IllFormedError::UnmatchedEndTag(name)) => {
                format!("end tag </{name}> without a start tag")
            }
            QxError::IllFormed(IllFormedError::DoubleHyphenInComment) => {
                "'--' inside a comment".to_owned()
            }
            QxError::IllFormed(IllFormedError::UnclosedReference) => {
                let rest = self.src.get(pos + 1..).unwrap_or("");
                let what: String = rest.chars().take_while(|&c| c != '<').take(16).collect();
                return (pos, ErrorKind::UndefinedEntity(what));
            }
            QxError::Syntax(s) => match s {
                SyntaxError::InvalidBangMarkup => "unexpected '<!'".to_owned(),
                SyntaxError::UnclosedPI => "unterminated processing instruction".to_owned(),
                SyntaxError::UnclosedXmlDecl => "unterminated XML declaration".to_owned(),
                SyntaxError::UnclosedComment => "unterminated comment".to_owned(),
                SyntaxError::UnclosedDoctype => "unterminated DOCTYPE".to_owned(),
                SyntaxError::UnclosedCData => "unterminated CDATA section".to_owned(),
                SyntaxError::UnclosedTag => "unterminated tag".to_owned(),
                SyntaxError::UnclosedSingleQuotedAttributeValue
                | SyntaxError::UnclosedDoubleQuotedAttributeValue => {
                    "unterminated attribute value".to_owned()
                }
            },
            other => other.to_string(),
        };
        (pos, ErrorKind::Syntax(msg))
    }

    /// Joins the text and reference events starting with the one at `start` into one run.
    fn text_run(&mut self, start: usize) -> Result<(usize, Token<'a>), LexError> {
        loop {
            let (at, e) = self.read()?;
            if !matches!(e, Event::Text(_) | Event::GeneralRef(_)) {
                self.pending = Some((at, e));
                return Ok((start, Token::Text(&self.src[start..at], true)));
            }
        }
    }
}

impl<'a> TokenSource<'a> for QxLexer<'a> {
    const CHECKS_END_NAMES: bool = true;
    const CHECKS_CONTROLS: bool = false;

    fn new(src: &'a str, pos: usize) -> Self {
        Self::start(src, pos)
    }

    fn next_token(&mut self) -> Result<Option<(usize, Token<'a>)>, LexError> {
        let (at, e) = match self.pending.take() {
            Some(p) => p,
            None => self.read()?,
        };
        let end = self.base + self.reader.buffer_position() as usize;
        let empty = matches!(e, Event::Empty(_));
        let tok = match e {
            Event::Eof => {
                self.pending = Some((at, Event::Eof));
                return Ok(None);
            }
            Event::Text(_) | Event::GeneralRef(_) => return self.text_run(at).map(Some),
            Event::Start(s) | Event::Empty(s) => {
                let (qoff, qname) = borrowed(self.src, s.name().into_inner(), at)?;
                if !is_name(qname) {
                    return Err(syntax(at, "expected an element name after '<'"));
                }
                let prefix_len = qname_prefix(qname).map_err(|m| syntax(at + 1, m))?;
                let attrs_offset = qoff + qname.len();
                let attrs_end = if empty { end - 2 } else { end - 1 };
                let mut inner = Attributes::new(&self.src[attrs_offset..attrs_end], 0);
                inner.with_checks(false);
                self.attrs = Some(QxAttrs {
                    raw: &self.src[attrs_offset..attrs_end],
                    base: attrs_offset,
                    inner,
                    done: false,
                });
                self.empty = empty;
                Token::Start { qname, prefix_len }
            }
            Event::End(e) => Token::End(borrowed(self.src, e.name().into_inner(), at)?.1),
            Event::CData(_) => {
                // Content between `<![CDATA[` and `]]>`.
                Token::CData(&self.src[at + 9..end - 3])
            }
            Event::Comment(_) => Token::Misc,
            Event::Decl(_) => {
                if at != self.start {
                    return Err(syntax(
                        at,
                        "XML declaration not at the start of the document",
                    ));
                }
                Token::Decl(&self.src[at + 5..end - 2])
            }
            Event::PI(pi) => {
                let target = pi.target();
                if target.eq_ignore_ascii_case("xml") {
                    return Err(syntax(
                        at,
                        "XML declaration not at the start of the document",
                    ));
                }
                if !is_name(target) {
                    return Err(syntax(at, "expected a processing instruction target"));
                }
                Token::Misc
            }
            Event::DocType(_) => Token::Doctype,
        };
        Ok(Some((at, tok)))
    }

    fn next_attr(&mut self) -> Result<AttrStep<'a>, LexError> {
        let next = match self.attrs.as_mut() {
            Some(it) => it.next(),
            None => None,
        };
        let Some(item) = next else {
            self.attrs = None;
            return Ok(AttrStep::End { empty: self.empty });
        };
        let (name, value, voff) = item?;
        let prefix_len = qname_prefix(name).map_err(|m| syntax(voff, m))?;
        if let Err((p, what)) = super::escape::check_attr_value(value) {
            let kind = if what == "<" {
                ErrorKind::Syntax(format!("'<' in the value of attribute {name:?}"))
            } else {
                ErrorKind::UndefinedEntity(what)
            };
            return Err((voff + p, kind));
        }
        let plain = !value
            .bytes()
            .any(|c| matches!(c, b'&' | b'\t' | b'\n' | b'\r'));
        Ok(AttrStep::Attr(RawAttr {
            name,
            prefix_len,
            value,
            voff,
            plain,
        }))
    }

    fn skip_attrs(&mut self) -> Result<bool, LexError> {
        self.attrs = None;
        Ok(self.empty)
    }
}

/// quick-xml's attribute iterator (duplicate checks are the caller's), with the name and
/// whitespace rules of XML 1.0 §3.1 added; yields (name, raw value, document offset of the value).
pub(crate) struct QxAttrs<'a> {
    raw: &'a str,
    base: usize,
    inner: Attributes<'a>,
    done: bool,
}

impl<'a> Iterator for QxAttrs<'a> {
    type Item = Result<(&'a str, &'a str, usize), LexError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match self.inner.next()? {
            Ok(a) => {
                let key = a.key.into_inner();
                let koff = offset_in(self.raw, key);
                let value = match a.value {
                    std::borrow::Cow::Borrowed(v) => v,
                    // Never happens for a borrowed input; reported below.
                    std::borrow::Cow::Owned(_) => "",
                };
                let voff = offset_in(self.raw, value);
                if koff == usize::MAX || voff == usize::MAX {
                    Err(syntax(
                        self.base,
                        "quick-xml returned an attribute that does not borrow the input",
                    ))
                } else if koff == 0 || !is_ws(self.raw.as_bytes()[koff - 1]) {
                    Err(syntax(
                        self.base + koff,
                        "expected whitespace before an attribute",
                    ))
                } else if !is_name(key) {
                    Err(syntax(self.base + koff, "expected an attribute name"))
                } else {
                    Ok((key, value, self.base + voff))
                }
            }
            Err(e) => {
                let (pos, msg) = match e {
                    AttrError::ExpectedEq(p) => (p, "expected '=' after an attribute name"),
                    AttrError::ExpectedValue(p) | AttrError::UnquotedValue(p) => {
                        (p, "expected a quoted attribute value")
                    }
                    AttrError::ExpectedQuote(p, _) => (p, "unterminated attribute value"),
                    AttrError::Duplicated(p, _) => (p, "duplicate attribute"),
                };
                Err(syntax(self.base + pos, msg))
            }
        };
        self.done = item.is_err();
        Some(item)
    }
}
