//! Layer 1: a strict, borrowed XML 1.0 + Namespaces document.
//!
//! [`Document::parse`] runs a borrowed tokenizer over the input ([`Tokenizer`]: quick-xml's
//! `Reader` or the crate's own) and builds a compact arena (one `Vec` of nodes, one of
//! attributes, small inline vectors of namespace declarations and URIs) whose strings borrow
//! the input. Every attribute is parsed and checked, every element and attribute prefix
//! is resolved, a DOCTYPE is rejected, and [`Limits`] bound size, depth and counts.

pub mod escape;
pub(crate) mod lexer;
mod parse;
pub(crate) mod qx;

use std::borrow::Cow;

use smallvec::SmallVec;

pub use parse::Limits;

/// The XML Schema instance namespace (`xsi:type`, `xsi:nil`).
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The `xml:` prefix namespace (XML Namespaces §3).
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Element,
    Text,
    CData,
}

#[derive(Debug, Clone)]
struct NodeData<'a> {
    kind: Kind,
    /// Element: local name. Text: raw text (references undecoded). CData: content.
    name: &'a str,
    /// Element: namespace index into `Document::uris` (0 = no namespace). Text: 1 if it has references or CR.
    ns: u16,
    /// Element: prefix length in the source name (0 = none).
    prefix_len: u16,
    parent: u32,
    first_child: u32,
    next_sibling: u32,
    attr_start: u32,
    attr_end: u32,
    /// Namespace scope head (index into `Document::decls`, `NONE` = only predefined).
    scope: u32,
    /// Byte offset of the node in the input.
    offset: u32,
}

#[derive(Debug, Clone)]
struct AttrData<'a> {
    ns: u16,
    prefix_len: u16,
    /// No reference and no tab/CR/LF: the normalised value is the raw value.
    plain: bool,
    qname: &'a str,
    raw: &'a str,
}

#[derive(Debug, Clone)]
struct NsDecl<'a> {
    prefix: &'a str,
    uri: u16,
    prev: u32,
    /// Length of the scope chain ending here.
    depth: u32,
}

/// A parsed, well-formed, namespace-resolved XML document borrowing its input.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    src: &'a str,
    nodes: Vec<NodeData<'a>>,
    attrs: Vec<AttrData<'a>>,
    decls: SmallVec<[NsDecl<'a>; 8]>,
    uris: SmallVec<[Cow<'a, str>; 8]>,
    root: u32,
}

/// Which tokenizer the strict pass and the header pass run on. Both give the same documents,
/// the same verdicts and the same error kinds (positions of syntax errors may differ by a few
/// bytes); they differ in speed and heap allocations (see the crate README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tokenizer {
    /// quick-xml's borrowed `Reader` over `&[u8]` (plain events), with the name, attribute,
    /// reference and prefix checks added by this crate.
    QuickXml,
    /// The crate's own allocation-free tokenizer (`xml/lexer.rs`).
    #[default]
    Handwritten,
}

impl<'a> Document<'a> {
    /// Parses `input` strictly with the default [`Limits`].
    ///
    /// ```
    /// let doc = xenrad_hl7v3::xml::Document::parse(br#"<a xmlns="urn:hl7-org:v3"><b x="1"/></a>"#).unwrap();
    /// assert_eq!(doc.root().child("b").unwrap().attr("x").as_deref(), Some("1"));
    /// ```
    pub fn parse(input: &'a [u8]) -> Result<Self, crate::V3Error> {
        parse::parse(input, &Limits::default(), Tokenizer::default())
    }

    /// Parses `input` strictly with explicit limits.
    pub fn parse_with(input: &'a [u8], limits: &Limits) -> Result<Self, crate::V3Error> {
        parse::parse(input, limits, Tokenizer::default())
    }

    /// Parses `input` strictly with explicit limits on the given tokenizer.
    ///
    /// ```
    /// use xenrad_hl7v3::xml::{Document, Limits, Tokenizer};
    /// let xml = br#"<a xmlns="urn:hl7-org:v3"><b x="1"/></a>"#;
    /// let q = Document::parse_using(xml, &Limits::default(), Tokenizer::QuickXml).unwrap();
    /// let h = Document::parse_using(xml, &Limits::default(), Tokenizer::Handwritten).unwrap();
    /// assert_eq!(q.node_count(), h.node_count());
    /// ```
    pub fn parse_using(
        input: &'a [u8],
        limits: &Limits,
        tokenizer: Tokenizer,
    ) -> Result<Self, crate::V3Error> {
        parse::parse(input, limits, tokenizer)
    }

    /// The document element.
    pub fn root(&self) -> Element<'_, 'a> {
        Element {
            doc: self,
            idx: self.root,
        }
    }

    /// The input text the document borrows.
    pub fn source(&self) -> &'a str {
        self.src
    }

    /// 1-based line and column of a byte offset in the input.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        crate::error::line_col(self.src.as_bytes(), offset)
    }

    /// Number of element and text nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn uri(&self, idx: u16) -> &str {
        &self.uris[idx as usize]
    }
}

/// A handle to one element of a [`Document`].
#[derive(Clone, Copy)]
pub struct Element<'d, 'a> {
    doc: &'d Document<'a>,
    idx: u32,
}

impl std::fmt::Debug for Element<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}> @{}", self.qname(), self.offset())
    }
}

impl PartialEq for Element<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.doc, other.doc) && self.idx == other.idx
    }
}

/// A child node in document order: an element or a run of character data.
#[derive(Debug, Clone)]
pub enum Node<'d, 'a> {
    /// A child element.
    Element(Element<'d, 'a>),
    /// A run of character data or a CDATA section.
    Text(Text<'a>),
}

/// A run of character data, decoded lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text<'a> {
    raw: &'a str,
    /// References or CR present (CDATA: never).
    escaped: bool,
}

impl<'a> Text<'a> {
    /// The text as written (references undecoded; CDATA content verbatim).
    pub fn raw(&self) -> &'a str {
        self.raw
    }
    /// Whether the run is only whitespace (checked without decoding).
    pub fn is_whitespace(&self) -> bool {
        self.raw
            .bytes()
            .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    }
    /// The decoded text (references resolved, line ends normalised); borrowed when nothing changed.
    pub fn value(&self) -> Cow<'a, str> {
        if self.escaped {
            escape::unescape(self.raw, false)
        } else {
            Cow::Borrowed(self.raw)
        }
    }
    /// The decoded text without leading and trailing whitespace.
    pub fn trimmed(&self) -> Cow<'a, str> {
        let t = self
            .raw
            .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
        if self.escaped {
            match escape::unescape(t, false) {
                Cow::Borrowed(b) => Cow::Borrowed(b),
                Cow::Owned(o) => Cow::Owned(o),
            }
        } else {
            Cow::Borrowed(t)
        }
    }
}

/// One attribute of an element (namespace declarations excluded).
#[derive(Debug, Clone)]
pub struct Attr<'d, 'a> {
    doc: &'d Document<'a>,
    data: &'d AttrData<'a>,
}

impl<'a> Attr<'_, 'a> {
    /// Local name (after the prefix).
    pub fn local_name(&self) -> &'a str {
        &self.data.qname[self.prefix_offset()..]
    }
    /// Qualified name as written.
    pub fn qname(&self) -> &'a str {
        self.data.qname
    }
    /// Namespace URI, or `""` for an unprefixed attribute.
    pub fn namespace(&self) -> &str {
        self.doc.uri(self.data.ns)
    }
    /// Raw value as written (references undecoded).
    pub fn raw_value(&self) -> &'a str {
        self.data.raw
    }
    /// Normalised value with references decoded (borrowed unless it had any).
    pub fn value(&self) -> Cow<'a, str> {
        if self.data.plain {
            Cow::Borrowed(self.data.raw)
        } else {
            escape::unescape(self.data.raw, true)
        }
    }
    fn prefix_offset(&self) -> usize {
        if self.data.prefix_len == 0 {
            0
        } else {
            self.data.prefix_len as usize + 1
        }
    }
}

impl<'d, 'a> Element<'d, 'a> {
    fn data(&self) -> &'d NodeData<'a> {
        &self.doc.nodes[self.idx as usize]
    }

    /// The document this element belongs to.
    pub fn document(&self) -> &'d Document<'a> {
        self.doc
    }

    /// Local name (after any prefix).
    pub fn local_name(&self) -> &'a str {
        self.data().name
    }

    /// Qualified name as written in the input.
    pub fn qname(&self) -> &'a str {
        let d = self.data();
        if d.prefix_len == 0 {
            d.name
        } else {
            let start = d.offset as usize + 1;
            &self.doc.src[start..start + d.prefix_len as usize + 1 + d.name.len()]
        }
    }

    /// Namespace URI (`""` when the element is in no namespace).
    pub fn namespace(&self) -> &'d str {
        self.doc.uri(self.data().ns)
    }

    /// Whether this element has the given namespace and local name.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local_name() == local && self.namespace() == ns
    }

    /// Byte offset of the element's `<` in the input.
    pub fn offset(&self) -> usize {
        self.data().offset as usize
    }

    /// 1-based line and column of the element's start tag.
    pub fn line_col(&self) -> (u32, u32) {
        self.doc.line_col(self.offset())
    }

    /// Parent element, `None` for the document element.
    pub fn parent(&self) -> Option<Element<'d, 'a>> {
        let p = self.data().parent;
        (p != NONE).then_some(Element {
            doc: self.doc,
            idx: p,
        })
    }

    /// All attributes except namespace declarations, in document order.
    pub fn attributes(&self) -> impl Iterator<Item = Attr<'d, 'a>> + use<'d, 'a> {
        let d = self.data();
        let doc = self.doc;
        doc.attrs[d.attr_start as usize..d.attr_end as usize]
            .iter()
            .map(move |data| Attr { doc, data })
    }

    fn attr_data(&self, local: &str) -> Option<&'d AttrData<'a>> {
        let d = self.data();
        self.doc.attrs[d.attr_start as usize..d.attr_end as usize]
            .iter()
            .find(|a| a.prefix_len == 0 && a.qname == local)
    }

    /// Raw value of the unprefixed attribute `local` (references undecoded).
    pub fn attr_raw(&self, local: &str) -> Option<&'a str> {
        self.attr_data(local).map(|a| a.raw)
    }

    /// Decoded value of the unprefixed attribute `local`.
    pub fn attr(&self, local: &str) -> Option<Cow<'a, str>> {
        self.attr_data(local).map(|a| {
            if a.plain {
                Cow::Borrowed(a.raw)
            } else {
                escape::unescape(a.raw, true)
            }
        })
    }

    /// Decoded value of the attribute `{ns}local`.
    pub fn attr_ns(&self, ns: &str, local: &str) -> Option<Cow<'a, str>> {
        self.attributes()
            .find(|a| a.local_name() == local && a.namespace() == ns)
            .map(|a| a.value())
    }

    /// Child nodes (elements and text runs) in document order.
    pub fn nodes(&self) -> impl Iterator<Item = Node<'d, 'a>> + use<'d, 'a> {
        let doc = self.doc;
        let mut next = self.data().first_child;
        std::iter::from_fn(move || {
            if next == NONE {
                return None;
            }
            let idx = next;
            let d = &doc.nodes[idx as usize];
            next = d.next_sibling;
            Some(match d.kind {
                Kind::Element => Node::Element(Element { doc, idx }),
                Kind::Text => Node::Text(Text {
                    raw: d.name,
                    escaped: d.ns != 0,
                }),
                Kind::CData => Node::Text(Text {
                    raw: d.name,
                    escaped: false,
                }),
            })
        })
    }

    /// Child elements in document order.
    pub fn children(&self) -> impl Iterator<Item = Element<'d, 'a>> + use<'d, 'a> {
        let doc = self.doc;
        let mut next = self.data().first_child;
        std::iter::from_fn(move || {
            while next != NONE {
                let idx = next;
                let d = &doc.nodes[idx as usize];
                next = d.next_sibling;
                if d.kind == Kind::Element {
                    return Some(Element { doc, idx });
                }
            }
            None
        })
    }

    /// Child elements with local name `local` in this element's namespace.
    pub fn children_named<'n>(
        &self,
        local: &'n str,
    ) -> impl Iterator<Item = Element<'d, 'a>> + use<'d, 'a, 'n> {
        let ns = self.data().ns;
        let doc = self.doc;
        self.children().filter(move |c| {
            let d = &doc.nodes[c.idx as usize];
            d.name == local && d.ns == ns
        })
    }

    /// First child element with local name `local` in this element's namespace.
    pub fn child(&self, local: &str) -> Option<Element<'d, 'a>> {
        self.children_named(local).next()
    }

    /// Follows a path of child local names (each in this element's namespace).
    pub fn path(&self, path: &[&str]) -> Option<Element<'d, 'a>> {
        let mut cur = *self;
        for step in path {
            cur = cur.child(step)?;
        }
        Some(cur)
    }

    /// Concatenated character data of the direct children (borrowed when it is one plain run).
    pub fn text(&self) -> Cow<'a, str> {
        let mut acc: Option<Cow<'a, str>> = None;
        for n in self.nodes() {
            if let Node::Text(t) = n {
                acc = Some(match acc {
                    None => t.value(),
                    Some(prev) => Cow::Owned(prev.into_owned() + &t.value()),
                });
            }
        }
        acc.unwrap_or(Cow::Borrowed(""))
    }

    /// Whether the element has no child elements and no non-whitespace text.
    pub fn is_empty(&self) -> bool {
        self.nodes().all(|n| match n {
            Node::Element(_) => false,
            Node::Text(t) => t.is_whitespace(),
        })
    }

    /// Resolves a prefix (`""` = default namespace) in this element's scope.
    pub fn resolve_prefix(&self, prefix: &str) -> Option<&'d str> {
        if prefix == "xml" {
            return Some(XML_NS);
        }
        let mut cur = self.data().scope;
        while cur != NONE {
            let d = &self.doc.decls[cur as usize];
            if d.prefix == prefix {
                return Some(self.doc.uri(d.uri)).filter(|u| !u.is_empty() || prefix.is_empty());
            }
            cur = d.prev;
        }
        None
    }

    /// Resolves a QName-valued content string (as in `xsi:type="hl7:II"`) to (namespace, local).
    /// An unprefixed name takes the default namespace; an unbound prefix gives `None`.
    pub fn resolve_qname<'q>(&self, qname: &'q str) -> Option<(&'d str, &'q str)> {
        let qname = qname.trim();
        match qname.split_once(':') {
            Some((p, l)) => Some((self.resolve_prefix(p)?, l)),
            None => Some((self.resolve_prefix("").unwrap_or(""), qname)),
        }
    }
}
