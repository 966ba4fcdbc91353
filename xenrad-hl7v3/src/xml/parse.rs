//! The strict pass: quick-xml's borrowed reader plus the checks it leaves to the caller
//! (XML 1.0 well-formedness of attributes and references, Namespaces in XML 1.0 §5-6 prefix
//! resolution, no DTD, one root element, limits).

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::Event;
use quick_xml::events::attributes::Attributes;

use super::{AttrData, Document, Kind, NONE, NodeData, NsDecl, XML_NS, escape};
use crate::error::{ErrorKind, V3Error};

/// Explicit bounds on what the strict pass accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input in bytes.
    pub max_bytes: usize,
    /// Deepest accepted element nesting.
    pub max_depth: usize,
    /// Most attributes (including namespace declarations) on one element.
    pub max_attributes: usize,
    /// Most element and text nodes in one document.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 32 * 1024 * 1024,
            max_depth: 256,
            max_attributes: 256,
            max_nodes: 2_000_000,
        }
    }
}

struct Builder<'a> {
    src: &'a str,
    limits: Limits,
    doc: Document<'a>,
    /// Open elements (node indices).
    stack: Vec<u32>,
    /// Current namespace scope head.
    scope: u32,
    /// Index of the text node that is still being extended by adjacent text/references.
    open_text: u32,
    /// Namespace declarations seen on the current start tag (duplicate checks).
    decl_names: Vec<&'a str>,
}

pub(crate) fn parse<'a>(input: &'a [u8], limits: &Limits) -> Result<Document<'a>, V3Error> {
    if input.len() > limits.max_bytes {
        return Err(V3Error::at(
            input,
            limits.max_bytes,
            ErrorKind::Limit("input size"),
        ));
    }
    let src = match std::str::from_utf8(input) {
        Ok(s) => s,
        Err(e) => return Err(V3Error::at(input, e.valid_up_to(), ErrorKind::Utf8)),
    };
    // Skip a UTF-8 byte order mark; offsets stay relative to `input`.
    let body_start = if src.starts_with('\u{FEFF}') { 3 } else { 0 };
    // Capacity from a cheap upper bound: every element starts with '<'.
    let lt = memchr::memchr_iter(b'<', input).count();
    let eq = memchr::memchr_iter(b'=', input).count();
    let mut b = Builder {
        src,
        limits: limits.clone(),
        doc: Document {
            src,
            nodes: Vec::with_capacity((lt * 2).min(limits.max_nodes) + 1),
            attrs: Vec::with_capacity(eq.min(limits.max_nodes)),
            decls: Vec::with_capacity(8),
            uris: Vec::with_capacity(8),
            root: NONE,
        },
        stack: Vec::with_capacity(32),
        scope: NONE,
        open_text: NONE,
        decl_names: Vec::with_capacity(8),
    };
    b.doc.uris.push(Cow::Borrowed(""));
    b.run(body_start)?;
    Ok(b.doc)
}

fn syntax(e: &quick_xml::Error) -> ErrorKind {
    ErrorKind::Syntax(e.to_string())
}

impl<'a> Builder<'a> {
    fn err(&self, offset: usize, kind: ErrorKind) -> V3Error {
        V3Error::at(self.src.as_bytes(), offset, kind)
    }

    fn run(&mut self, body_start: usize) -> Result<(), V3Error> {
        let src = self.src;
        let mut reader = Reader::from_str(&src[body_start..]);
        {
            let c = reader.config_mut();
            c.check_end_names = true;
            c.check_comments = true;
            c.allow_dangling_amp = false;
            c.allow_unmatched_ends = false;
            c.expand_empty_elements = false;
            c.trim_text(false);
        }
        let mut seen_root = false;
        let mut first = true;
        loop {
            let before = body_start + reader.buffer_position() as usize;
            let ev = match reader.read_event() {
                Ok(ev) => ev,
                Err(e) => {
                    let at = body_start + reader.error_position() as usize;
                    return Err(self.err(at, syntax(&e)));
                }
            };
            let after = body_start + reader.buffer_position() as usize;
            let was_first = std::mem::replace(&mut first, false);
            match ev {
                Event::Decl(d) => {
                    if !was_first {
                        return Err(self.err(
                            before,
                            ErrorKind::Syntax("XML declaration not at the start".into()),
                        ));
                    }
                    if let Some(enc) = d.encoding() {
                        let enc =
                            enc.map_err(|e| self.err(before, ErrorKind::Syntax(e.to_string())))?;
                        if !enc.eq_ignore_ascii_case("utf-8") && !enc.eq_ignore_ascii_case("utf8") {
                            return Err(
                                self.err(before, ErrorKind::UnsupportedEncoding(enc.into_owned()))
                            );
                        }
                    }
                }
                Event::DocType(_) => return Err(self.err(before, ErrorKind::Doctype)),
                Event::PI(_) | Event::Comment(_) => self.open_text = NONE,
                Event::Start(e) | Event::Empty(e) => {
                    let empty = src.as_bytes()[after - 2] == b'/';
                    if self.stack.is_empty() {
                        if seen_root {
                            return Err(self.err(
                                before,
                                ErrorKind::Syntax("more than one root element".into()),
                            ));
                        }
                        seen_root = true;
                    }
                    let len = e.len();
                    let raw = &src[before + 1..before + 1 + len];
                    debug_assert_eq!(raw, &*e);
                    let name_len = e.name().as_ref().len();
                    self.start(before, raw, name_len, empty)?;
                }
                Event::End(_) => {
                    let Some(idx) = self.stack.pop() else {
                        return Err(self.err(before, ErrorKind::Syntax("unmatched end tag".into())));
                    };
                    let parent_scope = match self.stack.last() {
                        Some(&p) => self.doc.nodes[p as usize].scope,
                        None => NONE,
                    };
                    let _ = idx;
                    self.scope = parent_scope;
                    self.open_text = NONE;
                }
                Event::Text(t) => {
                    if self.stack.is_empty() {
                        if let Some(p) = t
                            .bytes()
                            .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                        {
                            return Err(self.err(
                                before + p,
                                ErrorKind::Syntax("text outside the root element".into()),
                            ));
                        }
                    } else {
                        if let Some(p) = memchr::memmem::find(t.as_bytes(), b"]]>") {
                            return Err(self.err(
                                before + p,
                                ErrorKind::Syntax("']]>' in character data".into()),
                            ));
                        }
                        let has_cr = memchr::memchr(b'\r', t.as_bytes()).is_some();
                        self.text(before, after, has_cr)?;
                    }
                }
                Event::GeneralRef(r) => {
                    let name: &str = &r;
                    if escape::resolve_ref(name).is_none() {
                        return Err(self.err(before, ErrorKind::UndefinedEntity(name.to_owned())));
                    }
                    if self.stack.is_empty() {
                        return Err(self.err(
                            before,
                            ErrorKind::Syntax("reference outside the root element".into()),
                        ));
                    }
                    self.text(before, after, true)?;
                }
                Event::CData(c) => {
                    if self.stack.is_empty() {
                        return Err(self.err(
                            before,
                            ErrorKind::Syntax("CDATA outside the root element".into()),
                        ));
                    }
                    let content_start = before + "<![CDATA[".len();
                    let content = &src[content_start..content_start + c.len()];
                    self.push_node(before, Kind::CData, content, 0)?;
                    self.open_text = NONE;
                }
                Event::Eof => {
                    if let Some(&open) = self.stack.last() {
                        let name = self.doc.nodes[open as usize].name;
                        return Err(self.err(
                            src.len(),
                            ErrorKind::Syntax(format!(
                                "unexpected end of input: <{name}> not closed"
                            )),
                        ));
                    }
                    if !seen_root {
                        return Err(
                            self.err(src.len(), ErrorKind::Syntax("no root element".into()))
                        );
                    }
                    return Ok(());
                }
            }
        }
    }

    fn text(&mut self, start: usize, end: usize, escaped: bool) -> Result<(), V3Error> {
        if self.open_text != NONE {
            let src = self.src;
            let n = &mut self.doc.nodes[self.open_text as usize];
            let s = n.offset as usize;
            n.name = &src[s..end];
            if escaped {
                n.ns = 1;
            }
            return Ok(());
        }
        let idx = self.push_node(start, Kind::Text, &self.src[start..end], u16::from(escaped))?;
        self.open_text = idx;
        Ok(())
    }

    fn push_node(
        &mut self,
        offset: usize,
        kind: Kind,
        name: &'a str,
        ns: u16,
    ) -> Result<u32, V3Error> {
        if self.doc.nodes.len() >= self.limits.max_nodes {
            return Err(self.err(offset, ErrorKind::Limit("node count")));
        }
        let idx = self.doc.nodes.len() as u32;
        let parent = self.stack.last().copied().unwrap_or(NONE);
        self.doc.nodes.push(NodeData {
            kind,
            name,
            ns,
            prefix_len: 0,
            parent,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            attr_start: 0,
            attr_end: 0,
            scope: self.scope,
            offset: offset as u32,
        });
        if parent != NONE {
            let last = self.doc.nodes[parent as usize].last_child;
            if last == NONE {
                self.doc.nodes[parent as usize].first_child = idx;
            } else {
                self.doc.nodes[last as usize].next_sibling = idx;
            }
            self.doc.nodes[parent as usize].last_child = idx;
        }
        Ok(idx)
    }

    fn intern(&mut self, uri: Cow<'a, str>) -> Result<u16, ErrorKind> {
        if let Some(i) = self.doc.uris.iter().position(|u| *u == uri) {
            return Ok(i as u16);
        }
        if self.doc.uris.len() >= usize::from(u16::MAX) {
            return Err(ErrorKind::Limit("distinct namespaces"));
        }
        self.doc.uris.push(uri);
        Ok((self.doc.uris.len() - 1) as u16)
    }

    fn start(
        &mut self,
        offset: usize,
        raw: &'a str,
        name_len: usize,
        empty: bool,
    ) -> Result<(), V3Error> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.err(offset, ErrorKind::Limit("element depth")));
        }
        self.open_text = NONE;
        let qname = &raw[..name_len];
        let attr_start = self.doc.attrs.len();
        let mut count = 0usize;
        let mut attrs = Attributes::new(raw, name_len);
        attrs.with_checks(false);
        for a in attrs {
            let a = a.map_err(|e| {
                self.err(
                    offset + 1 + e_pos(&e).min(raw.len()),
                    ErrorKind::Syntax(e.to_string()),
                )
            })?;
            count += 1;
            if count > self.limits.max_attributes {
                return Err(self.err(offset, ErrorKind::Limit("attributes per element")));
            }
            let key: &'a str = a.key.0;
            let value: &'a str = match a.value {
                Cow::Borrowed(v) => v,
                Cow::Owned(_) => {
                    return Err(self.err(
                        offset,
                        ErrorKind::Syntax("unexpected attribute form".into()),
                    ));
                }
            };
            let voff = offset + 1 + (value.as_ptr() as usize - raw.as_ptr() as usize);
            if let Err((p, what)) = escape::check_attr_value(value) {
                let kind = if what == "<" {
                    ErrorKind::Syntax(format!("'<' in the value of attribute {key:?}"))
                } else {
                    ErrorKind::UndefinedEntity(what)
                };
                return Err(self.err(voff + p, kind));
            }
            // Duplicate attribute names (XML 1.0 §3.1 "Unique Att Spec").
            let dup = self.doc.attrs[attr_start..].iter().any(|x| x.qname == key)
                || self.pending_decl_dup(attr_start, key);
            if dup {
                return Err(self.err(voff, ErrorKind::DuplicateAttribute(key.to_owned())));
            }
            if key == "xmlns" || key.starts_with("xmlns:") {
                let prefix = key.get(6..).unwrap_or("");
                let uri = escape::unescape(value, true);
                if key.len() > 5 && uri.is_empty() {
                    return Err(self.err(
                        voff,
                        ErrorKind::Syntax(format!("empty namespace for prefix {prefix:?}")),
                    ));
                }
                if prefix == "xmlns" || (prefix == "xml" && uri != XML_NS) {
                    return Err(self.err(
                        voff,
                        ErrorKind::Syntax(format!("reserved prefix {prefix:?}")),
                    ));
                }
                let uri = self.intern(uri).map_err(|k| self.err(voff, k))?;
                self.doc.decls.push(NsDecl {
                    prefix,
                    uri,
                    prev: self.scope,
                });
                self.scope = (self.doc.decls.len() - 1) as u32;
                // Keep declarations out of `attrs` but remember them for duplicate checks.
                self.decl_names.push(key);
            } else {
                self.doc.attrs.push(AttrData {
                    ns: 0,
                    prefix_len: 0,
                    qname: key,
                    raw: value,
                });
            }
        }
        self.decl_names.clear();
        // Resolve the element prefix (Namespaces §6.2) and attribute prefixes (§6.3).
        let (prefix, local) = split_qname(qname);
        let ns = self
            .lookup(prefix)
            .ok_or_else(|| self.err(offset, ErrorKind::UnboundPrefix(prefix.to_owned())))?;
        for i in attr_start..self.doc.attrs.len() {
            let key = self.doc.attrs[i].qname;
            let (p, _) = split_qname(key);
            if !p.is_empty() {
                let ans = self
                    .lookup(p)
                    .filter(|&n| n != 0)
                    .ok_or_else(|| self.err(offset, ErrorKind::UnboundPrefix(p.to_owned())))?;
                let a = &mut self.doc.attrs[i];
                a.ns = ans;
                a.prefix_len = p.len() as u16;
                // Namespaces §6.3: no two attributes with the same expanded name.
                let local = &key[p.len() + 1..];
                let clash = self.doc.attrs[attr_start..i].iter().any(|x| {
                    x.ns == ans
                        && &x.qname[if x.prefix_len == 0 {
                            0
                        } else {
                            x.prefix_len as usize + 1
                        }..] == local
                });
                if clash {
                    return Err(self.err(offset, ErrorKind::DuplicateAttribute(key.to_owned())));
                }
            }
        }
        let idx = self.push_node(offset, Kind::Element, local, ns)?;
        {
            let n = &mut self.doc.nodes[idx as usize];
            n.prefix_len = prefix.len() as u16;
            n.attr_start = attr_start as u32;
            n.attr_end = self.doc.attrs.len() as u32;
            n.scope = self.scope;
        }
        if self.doc.root == NONE {
            self.doc.root = idx;
        }
        if empty {
            self.scope = match self.stack.last() {
                Some(&p) => self.doc.nodes[p as usize].scope,
                None => NONE,
            };
        } else {
            self.stack.push(idx);
        }
        Ok(())
    }

    fn pending_decl_dup(&self, _attr_start: usize, key: &str) -> bool {
        self.decl_names.contains(&key)
    }

    /// Namespace index bound to `prefix` in the current scope (0 = no namespace).
    fn lookup(&mut self, prefix: &str) -> Option<u16> {
        if prefix == "xml" {
            return self.intern(Cow::Borrowed(XML_NS)).ok();
        }
        let mut cur = self.scope;
        while cur != NONE {
            let d = &self.doc.decls[cur as usize];
            if d.prefix == prefix {
                return Some(d.uri);
            }
            cur = d.prev;
        }
        // The default namespace is "no namespace" unless declared; a prefix must be declared.
        prefix.is_empty().then_some(0)
    }
}

fn split_qname(q: &str) -> (&str, &str) {
    match q.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", q),
    }
}

fn e_pos(e: &quick_xml::events::attributes::AttrError) -> usize {
    use quick_xml::events::attributes::AttrError as A;
    match *e {
        A::ExpectedEq(p) | A::ExpectedValue(p) | A::UnquotedValue(p) | A::ExpectedQuote(p, _) => p,
        A::Duplicated(..) => 0,
    }
}
