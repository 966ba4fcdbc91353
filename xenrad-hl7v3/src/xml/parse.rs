//! The strict pass: the borrowed tokenizer plus the checks a tokenizer leaves to its caller
//! (XML 1.0 well-formedness of attributes and references, Namespaces in XML 1.0 §5-6 prefix
//! resolution, no DTD, one root element, limits).

use std::borrow::Cow;

use smallvec::SmallVec;

use super::lexer::{AttrIter, AttrStep, Lexer, Token, TokenSource, find_control, is_ws};
use super::qx::QxLexer;
use super::{AttrData, Document, Element, Kind, NONE, NodeData, NsDecl, Tokenizer, XML_NS, escape};
use crate::error::{ErrorKind, V3Error};

/// Up to this many attributes on one element, duplicates are found by a linear scan per
/// attribute; above it, by sorting the names once (n log n instead of n²).
const FEW_ATTRIBUTES: usize = 8;

/// Explicit bounds on what the strict pass accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

struct Builder<'a, 'l> {
    src: &'a str,
    limits: &'l Limits,
    doc: Document<'a>,
    /// Innermost open element (`NONE` outside the root); the open elements are its ancestors.
    cur: u32,
    /// Last child of `cur` so far (`NONE` before its first child): siblings are linked
    /// without a per-node last-child field, since children are only ever appended to `cur`.
    last: u32,
    /// Number of open elements.
    depth: usize,
    /// The default namespace resolved for one scope head (scope chains never change once
    /// built, so the pair stays true); most elements share their parent's scope.
    default_ns: Option<(u32, u16)>,
    /// Current namespace scope head.
    scope: u32,
    /// Last text node while it could be extended (comments and PIs end a run).
    open_text: u32,
    /// Names (and value offsets) of the current start tag's attributes, for duplicate checks.
    names: SmallVec<[(&'a str, usize); 16]>,
}

pub(crate) fn parse<'a>(
    input: &'a [u8],
    limits: &Limits,
    tokenizer: Tokenizer,
) -> Result<Document<'a>, V3Error> {
    if input.len() > limits.max_bytes {
        return Err(V3Error::at(
            input,
            limits.max_bytes,
            ErrorKind::Limit("input size"),
        ));
    }
    // UTF-8 check of the whole document with SIMD (simdutf8); the error position comes
    // from std's validator, on the error path only.
    let Ok(src) = simdutf8::basic::from_utf8(input) else {
        let at = std::str::from_utf8(input)
            .err()
            .map_or(0, |e| e.valid_up_to());
        return Err(V3Error::at(input, at, ErrorKind::Utf8));
    };
    // Skip a UTF-8 byte order mark; offsets stay relative to `input`.
    let body_start = if src.starts_with('\u{FEFF}') { 3 } else { 0 };
    // Capacity from a cheap upper bound: every element starts with '<'.
    let lt = memchr::memchr_iter(b'<', input).count();
    let eq = memchr::memchr_iter(b'=', input).count();
    let mut b = Builder {
        src,
        limits,
        doc: Document {
            src,
            nodes: Vec::with_capacity((lt * 2).min(limits.max_nodes) + 1),
            attrs: Vec::with_capacity(eq.min(limits.max_nodes)),
            decls: SmallVec::new(),
            uris: SmallVec::new(),
            root: NONE,
        },
        cur: NONE,
        last: NONE,
        depth: 0,
        default_ns: None,
        scope: NONE,
        open_text: NONE,
        names: SmallVec::new(),
    };
    b.doc.uris.push(Cow::Borrowed(""));
    match tokenizer {
        Tokenizer::QuickXml => b.run::<QxLexer<'a>>(body_start)?,
        Tokenizer::Handwritten => b.run::<Lexer<'a>>(body_start)?,
    }
    Ok(b.doc)
}

impl<'a> Builder<'a, '_> {
    fn err(&self, offset: usize, kind: ErrorKind) -> V3Error {
        V3Error::at(self.src.as_bytes(), offset, kind)
    }

    fn run<T: TokenSource<'a>>(&mut self, body_start: usize) -> Result<(), V3Error> {
        let src = self.src;
        // XML 1.0 §2.2: no C0 control characters other than tab, LF, CR anywhere (the
        // hand-written tokenizer checks every byte it passes; quick-xml does not).
        if !T::CHECKS_CONTROLS
            && let Some(p) = find_control(src.as_bytes())
        {
            let c = src.as_bytes()[p];
            return Err(self.err(
                p,
                ErrorKind::Syntax(format!("control character U+{c:04X} not allowed")),
            ));
        }
        let mut lx = T::new(src, body_start);
        let mut seen_root = false;
        loop {
            let (before, tok) = match lx.next_token() {
                Ok(Some(t)) => t,
                Ok(None) => break,
                Err((at, kind)) => return Err(self.err(at, kind)),
            };
            match tok {
                Token::Decl(body) => self.decl(before, body, before + 5)?,
                Token::Doctype => return Err(self.err(before, ErrorKind::Doctype)),
                Token::Misc => self.open_text = NONE,
                Token::Start { qname, prefix_len } => {
                    if self.cur == NONE {
                        if seen_root {
                            return Err(self.err(
                                before,
                                ErrorKind::Syntax("more than one root element".into()),
                            ));
                        }
                        seen_root = true;
                    }
                    self.start(&mut lx, before, qname, prefix_len)?;
                }
                Token::End(qname) => {
                    let idx = self.cur;
                    if idx == NONE {
                        return Err(self.err(
                            before,
                            ErrorKind::Syntax(format!("end tag </{qname}> without a start tag")),
                        ));
                    }
                    if !T::CHECKS_END_NAMES {
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
                    }
                    self.cur = self.doc.nodes[idx as usize].parent;
                    self.last = idx;
                    self.depth -= 1;
                    self.scope = self.parent_scope();
                    self.open_text = NONE;
                }
                Token::Text(t, special) => {
                    if self.cur == NONE {
                        if let Some(p) = t.bytes().position(|b| !is_ws(b)) {
                            return Err(self.err(
                                before + p,
                                ErrorKind::Syntax("text outside the root element".into()),
                            ));
                        }
                    } else if special {
                        self.text(before, t)?;
                    } else {
                        self.push_node(before, Kind::Text, t, 0)?;
                    }
                }
                Token::CData(c) => {
                    if self.cur == NONE {
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
        if self.cur != NONE {
            let name = Element {
                doc: &self.doc,
                idx: self.cur,
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
            let (name, value, voff) = a.map_err(|(p, k)| self.err(p, k))?;
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
        let parent = self.cur;
        self.doc.nodes.push(NodeData {
            kind,
            name,
            ns,
            prefix_len: 0,
            parent,
            first_child: NONE,
            next_sibling: NONE,
            attr_start: 0,
            attr_end: 0,
            scope: self.scope,
            offset: offset as u32,
        });
        if parent != NONE {
            if self.last == NONE {
                self.doc.nodes[parent as usize].first_child = idx;
            } else {
                self.doc.nodes[self.last as usize].next_sibling = idx;
            }
        }
        self.last = idx;
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

    fn parent_scope(&self) -> u32 {
        if self.cur == NONE {
            NONE
        } else {
            self.doc.nodes[self.cur as usize].scope
        }
    }

    fn start<T: TokenSource<'a>>(
        &mut self,
        lx: &mut T,
        offset: usize,
        qname: &'a str,
        prefix_len: usize,
    ) -> Result<(), V3Error> {
        if self.depth >= self.limits.max_depth {
            return Err(self.err(offset, ErrorKind::Limit("element depth")));
        }
        self.open_text = NONE;
        let (prefix, local) = if prefix_len == 0 {
            ("", qname)
        } else {
            (&qname[..prefix_len], &qname[prefix_len + 1..])
        };
        let attr_start = self.doc.attrs.len();
        self.names.clear();
        let mut prefixed = 0usize;
        let empty = loop {
            let a = match lx.next_attr() {
                Ok(AttrStep::Attr(a)) => a,
                Ok(AttrStep::End { empty }) => break empty,
                Err((p, k)) => return Err(self.err(p, k)),
            };
            let (key, value, voff) = (a.name, a.value, a.voff);
            if self.names.len() >= self.limits.max_attributes {
                return Err(self.err(offset, ErrorKind::Limit("attributes per element")));
            }
            // Duplicate attribute names (XML 1.0 §3.1 "Unique Att Spec"), namespace
            // declarations included: a linear scan while the tag has few attributes.
            if self.names.len() < FEW_ATTRIBUTES && self.names.iter().any(|&(k, _)| k == key) {
                return Err(self.err(voff, ErrorKind::DuplicateAttribute(key.to_owned())));
            }
            self.names.push((key, voff));
            if key.starts_with("xmlns") && (key.len() == 5 || key.as_bytes()[5] == b':') {
                let prefix = key.get(6..).unwrap_or("");
                let uri = if a.plain {
                    Cow::Borrowed(value)
                } else {
                    escape::unescape(value, true)
                };
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
                prefixed += usize::from(a.prefix_len > 0);
                self.doc.attrs.push(AttrData {
                    ns: 0,
                    prefix_len: a.prefix_len as u16,
                    plain: a.plain,
                    qname: key,
                    raw: value,
                });
            }
        };
        if self.names.len() > FEW_ATTRIBUTES {
            // Many attributes: sort the names once and compare neighbours (n log n).
            self.names.sort_unstable();
            if let Some(w) = self.names.windows(2).find(|w| w[0].0 == w[1].0) {
                let (key, voff) = w[1];
                return Err(self.err(voff, ErrorKind::DuplicateAttribute(key.to_owned())));
            }
        }
        // Resolve the element prefix (Namespaces §6.2) and attribute prefixes (§6.3).
        let ns = self
            .lookup(prefix)
            .ok_or_else(|| self.err(offset, ErrorKind::UnboundPrefix(prefix.to_owned())))?;
        if prefixed > 0 {
            for i in attr_start..self.doc.attrs.len() {
                let a = &self.doc.attrs[i];
                if a.prefix_len > 0 {
                    let p = &a.qname[..a.prefix_len as usize];
                    let ans = self
                        .lookup(p)
                        .filter(|&n| n != 0)
                        .ok_or_else(|| self.err(offset, ErrorKind::UnboundPrefix(p.to_owned())))?;
                    self.doc.attrs[i].ns = ans;
                }
            }
            // Namespaces §6.3: no two attributes with the same expanded name. Only prefixed
            // attributes can clash (unprefixed ones are in no namespace and have distinct names).
            if prefixed > 1 {
                self.check_expanded_names(offset, attr_start, prefixed)?;
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
            self.scope = self.parent_scope();
        } else {
            self.cur = idx;
            self.last = NONE;
            self.depth += 1;
        }
        Ok(())
    }

    /// Namespaces §6.3 for the prefixed attributes of the element whose attributes start at
    /// `attr_start`: linear per attribute when there are few, sorted (n log n) otherwise.
    fn check_expanded_names(
        &mut self,
        offset: usize,
        attr_start: usize,
        prefixed: usize,
    ) -> Result<(), V3Error> {
        let expanded = |a: &AttrData<'a>| (a.ns, &a.qname[a.prefix_len as usize + 1..]);
        let attrs = &self.doc.attrs[attr_start..];
        let clash = if prefixed <= FEW_ATTRIBUTES {
            attrs.iter().enumerate().find_map(|(i, a)| {
                (a.prefix_len > 0
                    && attrs[..i]
                        .iter()
                        .any(|x| x.prefix_len > 0 && expanded(x) == expanded(a)))
                .then_some(a.qname)
            })
        } else {
            let mut keys: SmallVec<[((u16, &str), usize); 16]> = attrs
                .iter()
                .enumerate()
                .filter(|(_, a)| a.prefix_len > 0)
                .map(|(i, a)| (expanded(a), i))
                .collect();
            keys.sort_unstable();
            keys.windows(2)
                .find(|w| w[0].0 == w[1].0)
                .map(|w| attrs[w[0].1.max(w[1].1)].qname)
        };
        match clash {
            Some(key) => Err(self.err(offset, ErrorKind::DuplicateAttribute(key.to_owned()))),
            None => Ok(()),
        }
    }

    /// Namespace index bound to `prefix` in the current scope (0 = no namespace).
    fn lookup(&mut self, prefix: &str) -> Option<u16> {
        if prefix.is_empty() {
            if let Some((scope, ns)) = self.default_ns
                && scope == self.scope
            {
                return Some(ns);
            }
            let ns = self.lookup_chain("").unwrap_or(0);
            self.default_ns = Some((self.scope, ns));
            return Some(ns);
        }
        if prefix.len() == 3 && prefix == "xml" {
            return self.intern(Cow::Borrowed(XML_NS)).ok();
        }
        self.lookup_chain(prefix)
    }

    /// Walks the scope chain for `prefix`.
    fn lookup_chain(&self, prefix: &str) -> Option<u16> {
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

#[cfg(test)]
mod tests {
    use super::super::lexer::find_control;

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
