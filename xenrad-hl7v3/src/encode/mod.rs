//! Layer 5: encoders — MCCI_IN000002UV01 accept acks ([`ack`]), PRPA patient messages
//! ([`patient`]) and PDQ/PIX queries and responses ([`query`]).

pub mod ack;
pub mod patient;
pub mod query;

use crate::types::Ii;
use crate::xml::escape::escape_into;

/// A small indenting XML writer producing UTF-8 text.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
    depth: usize,
}

impl XmlWriter {
    /// Starts a document with the XML declaration.
    pub fn new() -> Self {
        let mut out = String::with_capacity(2048);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        XmlWriter { out, depth: 0 }
    }
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }
    fn tag(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            if let Some(v) = v {
                self.out.push(' ');
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_into(&mut self.out, v);
                self.out.push('"');
            }
        }
    }
    /// Writes `<name attrs…>` and indents; attributes with `None` values are skipped.
    pub fn open(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        self.tag(name, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }
    /// Writes `<name attrs…/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, Option<&str>)]) {
        self.tag(name, attrs);
        self.out.push_str("/>\n");
    }
    /// Writes `<name attrs…>text</name>`.
    pub fn text_element(&mut self, name: &str, attrs: &[(&str, Option<&str>)], text: &str) {
        self.tag(name, attrs);
        self.out.push('>');
        escape_into(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }
    /// Writes an indented line of escaped character data (mixed content).
    pub fn text_raw(&mut self, text: &str) {
        self.indent();
        escape_into(&mut self.out, text);
        self.out.push('\n');
    }
    /// Writes `</name>` and dedents.
    pub fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }
    /// Writes an II element.
    pub fn ii(&mut self, name: &str, id: &Ii<'_>) {
        self.empty(
            name,
            &[
                ("root", id.root.as_deref()),
                ("extension", id.extension.as_deref()),
                (
                    "assigningAuthorityName",
                    id.assigning_authority_name.as_deref(),
                ),
                ("nullFlavor", id.null_flavor.as_deref()),
            ],
        );
    }
    /// The document text.
    pub fn finish(self) -> String {
        self.out
    }
}
