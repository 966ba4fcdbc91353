//! The strict pass: the borrowed tokenizer plus the checks a tokenizer leaves to its caller
//! (XML 1.0 well-formedness of attributes and references, Namespaces in XML 1.0 §5-6 prefix
//! resolution, no DTD, one root element, limits).

use std::borrow::Cow;

use super::lexer::{AttrIter, Lexer, Token, is_ws};
use super::{AttrData, Document, Element, Kind, NONE, NodeData, NsDecl, XML_NS, escape};
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
    /// Most distinct namespace URIs in one document, and most namespace declarations in scope
    /// at once (keeps prefix resolution linear in the input size).
    pub max_namespaces: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 32 * 1024 * 1024,
            max_depth: 256,
            max_attributes: 256,
            max_nodes: 2_000_000,
            max_namespaces: 64,
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
    /// Last text node while it could be extended (comments and PIs end a run).
    open_text: u32,
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
    let xmlns = memchr::memmem::find_iter(input, b"xmlns").count();
    let mut b = Builder {
        src,
        limits: limits.clone(),
        doc: Document {
            src,
            nodes: Vec::with_capacity((lt * 2).min(limits.max_nodes) + 1),
            attrs: Vec::with_capacity(eq.min(limits.max_nodes)),
            decls: Vec::with_capacity(xmlns),
            uris: Vec::with_capacity(xmlns + 2),
            root: NONE,
        },
        stack: Vec::with_capacity(64),
        scope: NONE,
        open_text: NONE,
    };
    b.doc.uris.push(Cow::Borrowed(""));
    b.run(body_start)?;
    Ok(b.doc)
}

impl<'a> Builder<'a> {
    fn err(&self, offset: usize, kind: ErrorKind) -> V3Error {
        V3Error::at(self.src.as_bytes(), offset, kind)
    }

    fn run(&mut self, body_start: usize) -> Result<(), V3Error> {
        let src = self.src;
        // XML 1.0 §2.2: no C0 control characters other than tab, LF, CR anywhere.
        if let Some(p) = find_control(src.as_bytes()) {
            let c = src.as_bytes()[p];
            return Err(self.err(
                p,
                ErrorKind::Syntax(format!("control character U+{c:04X} not allowed")),
            ));
        }
        let mut lx = Lexer::new(src, body_start);
        let mut seen_root = false;
        loop {
            let (before, tok) = match lx.next_token() {
                Ok(Some(t)) => t,
                Ok(None) => break,
                Err((at, msg)) => return Err(self.err(at, ErrorKind::Syntax(msg))),
            };
            match tok {
                Token::Decl(body) => self.decl(before, body, before + 5)?,
                Token::Doctype => return Err(self.err(before, ErrorKind::Doctype)),
                Token::Misc => self.open_text = NONE,
                Token::Start {
                    qname,
                    attrs,
                    attrs_offset,
                    empty,
                } => {
                    if self.stack.is_empty() {
                        if seen_root {
                            return Err(self.err(
                                before,
                                ErrorKind::Syntax("more than one root element".into()),
                            ));
                        }
                        seen_root = true;
                    }
                    self.start(before, qname, attrs, attrs_offset, empty)?;
                }
                Token::End(qname) => {
                    let Some(idx) = self.stack.pop() else {
                        return Err(self.err(
                            before,
                            ErrorKind::Syntax(format!("end tag </{qname}> without a start tag")),
                        ));
                    };
                    let open = Element {
                        doc: &self.doc,
                        idx,
                    }
                    .qname();
                    if open != qname {
                        return Err(self.err(
                            before,
                            ErrorKind::Syntax(format!("expected </{open}>, found </{qname}>")),
                        ));
                    }
                    self.scope = match self.stack.last() {
                        Some(&p) => self.doc.nodes[p as usize].scope,
                        None => NONE,
                    };
                    self.open_text = NONE;
                }
                Token::Text(t) => {
                    if self.stack.is_empty() {
                        if let Some(p) = t.bytes().position(|b| !is_ws(b)) {
                            return Err(self.err(
                                before + p,
                                ErrorKind::Syntax("text outside the root element".into()),
                            ));
                        }
                    } else {
                        self.text(before, t)?;
                    }
                }
                Token::CData(c) => {
                    if self.stack.is_empty() {
                        return Err(self.err(
                            before,
                            ErrorKind::Syntax("CDATA outside the root element".into()),
                        ));
                    }
                    self.push_node(before, Kind::CData, c, 0)?;
                    self.open_text = NONE;
                }
            }
        }
        if let Some(&open) = self.stack.last() {
            let name = Element {
                doc: &self.doc,
                idx: open,
            }
            .qname();
            return Err(self.err(
                src.len(),
                ErrorKind::Syntax(format!("unexpected end of input: <{name}> not closed")),
            ));
        }
        if !seen_root {
            return Err(self.err(src.len(), ErrorKind::Syntax("no root element".into())));
        }
        Ok(())
    }

    /// XML declaration (§2.8): `version` first, then optional `encoding` (must be UTF-8) and `standalone`.
    fn decl(&self, at: usize, body: &'a str, body_offset: usize) -> Result<(), V3Error> {
        let mut seen = 0;
        for a in AttrIter::new(body.trim_end(), body_offset) {
            let (name, value, voff) = a.map_err(|(p, m)| self.err(p, ErrorKind::Syntax(m)))?;
            match (seen, name) {
                (0, "version")
                    if value.starts_with("1.")
                        && value.len() > 2
                        && value[2..].bytes().all(|b| b.is_ascii_digit()) =>
                {
                    seen = 1;
                }
                (1, "encoding") => {
                    if !value.eq_ignore_ascii_case("utf-8") && !value.eq_ignore_ascii_case("utf8") {
                        return Err(
                            self.err(voff, ErrorKind::UnsupportedEncoding(value.to_owned()))
                        );
                    }
                    seen = 2;
                }
                (1 | 2, "standalone") if matches!(value, "yes" | "no") => seen = 3,
                _ => {
                    return Err(self.err(
                        voff,
                        ErrorKind::Syntax(format!("bad XML declaration at {name:?}")),
                    ));
                }
            }
        }
        if seen == 0 {
            return Err(self.err(
                at,
                ErrorKind::Syntax("XML declaration without version".into()),
            ));
        }
        Ok(())
    }

    fn text(&mut self, start: usize, t: &'a str) -> Result<(), V3Error> {
        let bytes = t.as_bytes();
        let mut escaped = false;
        let special = |c: &u8| matches!(c, b'&' | b'\r' | b']');
        let first = if bytes.len() < 64 {
            bytes.iter().position(special)
        } else {
            memchr::memchr3(b'&', b'\r', b']', bytes)
        };
        if let Some(p) = first {
            let tail = &t[p..];
            if let Some(q) = memchr::memmem::find(tail.as_bytes(), b"]]>") {
                return Err(self.err(
                    start + p + q,
                    ErrorKind::Syntax("']]>' in character data".into()),
                ));
            }
            if memchr::memchr2(b'&', b'\r', tail.as_bytes()).is_some() {
                escaped = true;
                if let Err((q, what)) = escape::check_refs(tail) {
                    return Err(self.err(start + p + q, ErrorKind::UndefinedEntity(what)));
                }
            }
        }
        self.push_node(start, Kind::Text, t, u16::from(escaped))?;
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
        // Index 0 is "no namespace".
        if self.doc.uris.len() > self.limits.max_namespaces.min(usize::from(u16::MAX) - 1) {
            return Err(ErrorKind::Limit("distinct namespaces"));
        }
        self.doc.uris.push(uri);
        Ok((self.doc.uris.len() - 1) as u16)
    }

    fn start(
        &mut self,
        offset: usize,
        qname: &'a str,
        raw: &'a str,
        raw_offset: usize,
        empty: bool,
    ) -> Result<(), V3Error> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.err(offset, ErrorKind::Limit("element depth")));
        }
        self.open_text = NONE;
        check_qname(qname).map_err(|m| self.err(offset + 1, ErrorKind::Syntax(m)))?;
        let attr_start = self.doc.attrs.len();
        let decl_start = self.doc.decls.len();
        let mut count = 0usize;
        for a in AttrIter::new(raw, raw_offset) {
            let (key, value, voff) = a.map_err(|(p, m)| self.err(p, ErrorKind::Syntax(m)))?;
            count += 1;
            if count > self.limits.max_attributes {
                return Err(self.err(offset, ErrorKind::Limit("attributes per element")));
            }
            check_qname(key).map_err(|m| self.err(voff, ErrorKind::Syntax(m)))?;
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
                || self.doc.decls[decl_start..].iter().any(|d| {
                    if d.prefix.is_empty() {
                        key == "xmlns"
                    } else {
                        key.strip_prefix("xmlns:") == Some(d.prefix)
                    }
                });
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
                let in_scope = if self.scope == NONE {
                    1
                } else {
                    self.doc.decls[self.scope as usize].depth + 1
                };
                if in_scope as usize > self.limits.max_namespaces {
                    return Err(self.err(voff, ErrorKind::Limit("namespace declarations in scope")));
                }
                self.doc.decls.push(NsDecl {
                    prefix,
                    uri,
                    prev: self.scope,
                    depth: in_scope,
                });
                self.scope = (self.doc.decls.len() - 1) as u32;
            } else {
                self.doc.attrs.push(AttrData {
                    ns: 0,
                    prefix_len: 0,
                    qname: key,
                    raw: value,
                });
            }
        }
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

    /// Namespace index bound to `prefix` in the current scope (0 = no namespace).
    fn lookup(&mut self, prefix: &str) -> Option<u16> {
        if prefix.len() == 3 && prefix == "xml" {
            return self.intern(Cow::Borrowed(XML_NS)).ok();
        }
        let mut cur = self.scope;
        while cur != NONE {
            let d = &self.doc.decls[cur as usize];
            if d.prefix.len() == prefix.len() && (prefix.is_empty() || d.prefix == prefix) {
                return Some(d.uri);
            }
            cur = d.prev;
        }
        // The default namespace is "no namespace" unless declared; a prefix must be declared.
        prefix.is_empty().then_some(0)
    }
}

fn split_qname(q: &str) -> (&str, &str) {
    match q.bytes().position(|c| c == b':') {
        Some(p) => (&q[..p], &q[p + 1..]),
        None => ("", q),
    }
}

/// First C0 control character other than tab, LF, CR (XML 1.0 §2.2), eight bytes at a time.
fn find_control(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let bad = |c: u8| c < 0x20 && !is_ws(c);
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Has a byte below 0x20 (bytes >= 0x80 are excluded by `!x`).
        if x.wrapping_sub(0x20 * LO) & !x & HI != 0
            && let Some(p) = c.iter().position(|&c| bad(c))
        {
            return Some(at + p);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| bad(c))
        .map(|p| at + p)
}

/// Namespaces in XML §3: a QName has at most one colon, not at either end.
fn check_qname(q: &str) -> Result<(), String> {
    match q.bytes().position(|c| c == b':') {
        None => Ok(()),
        Some(p) if p > 0 && p + 1 < q.len() && !q.as_bytes()[p + 1..].contains(&b':') => Ok(()),
        Some(_) => Err(format!("{q:?} is not a valid qualified name")),
    }
}

#[cfg(test)]
mod tests {
    use super::find_control;

    #[test]
    fn control_characters() {
        assert_eq!(find_control(b"abc\tdef\r\nghijklmnop"), None);
        for i in 0..20 {
            let mut v = vec![b'a'; 20];
            v[i] = 0x01;
            assert_eq!(find_control(&v), Some(i));
            v[i] = 0xC3;
            assert_eq!(find_control(&v), None);
        }
        assert_eq!(find_control("é\u{1F600}\u{7}".as_bytes()), Some(6));
    }
}
