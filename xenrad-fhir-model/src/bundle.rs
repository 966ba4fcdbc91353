//! searchset Bundles with paging links (R4 §3.1.1.6 <https://hl7.org/fhir/R4/search.html#paging>,
//! Bundle <https://hl7.org/fhir/R4/bundle.html>).

use crate::error::Error;
use crate::generated::ResourceType;
use crate::model::{Node, Resource, Value};

/// Paging state of one search response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    /// The search URL without paging parameters, e.g. `http://host/fhir/Patient?name=smith`.
    pub base: String,
    /// Index of the first match on this page.
    pub offset: usize,
    /// Page size (`_count`).
    pub count: usize,
    /// Total number of matches, when known.
    pub total: Option<usize>,
}

impl Paging {
    fn url(&self, offset: usize) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}_count={}&_offset={offset}", self.base, self.count)
    }

    /// The `self`, `first`, `previous`, `next` and `last` links.
    pub fn links(&self) -> Vec<(&'static str, String)> {
        let mut l = vec![("self", self.url(self.offset)), ("first", self.url(0))];
        if self.offset > 0 && self.count > 0 {
            l.push(("previous", self.url(self.offset.saturating_sub(self.count))));
        }
        let more = self.total.is_none_or(|t| self.offset + self.count < t);
        if more && self.count > 0 {
            l.push(("next", self.url(self.offset + self.count)));
        }
        if let Some(t) = self.total
            && self.count > 0
        {
            let last = if t == 0 {
                0
            } else {
                (t - 1) / self.count * self.count
            };
            l.push(("last", self.url(last)));
        }
        l
    }
}

/// `Bundle.entry.search.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryMode {
    /// A match of the search.
    Match,
    /// Included by `_include`/`_revinclude`.
    Include,
    /// An OperationOutcome with warnings.
    Outcome,
}

/// Builds a `searchset` Bundle.
///
/// ```
/// use xenrad_fhir_model::{bundle::{Paging, SearchSet}, builders::PatientBuilder};
/// let p = PatientBuilder::new("p1").name("Smith", &["Ann"]).build()?;
/// let mut s = SearchSet::new(Paging { base: "http://h/fhir/Patient?name=smith".into(), offset: 0, count: 10, total: Some(25) });
/// s.push("http://h/fhir", p, xenrad_fhir_model::bundle::EntryMode::Match)?;
/// let json = xenrad_fhir_model::to_json(&s.build()?);
/// assert!(json.contains(r#""relation":"next","url":"http://h/fhir/Patient?name=smith&_count=10&_offset=10""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SearchSet {
    paging: Paging,
    id: Option<String>,
    entries: Vec<(String, Resource<'static>, EntryMode)>,
}

impl SearchSet {
    /// A new searchset for a page.
    pub fn new(paging: Paging) -> Self {
        SearchSet {
            paging,
            id: None,
            entries: Vec::new(),
        }
    }

    /// Sets `Bundle.id`.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds an entry; `base` is the server base URL used to make `fullUrl` (`{base}/{type}/{id}`).
    pub fn push(
        &mut self,
        base: &str,
        resource: Resource<'static>,
        mode: EntryMode,
    ) -> Result<(), Error> {
        let full = match resource.id() {
            Some(id) => format!(
                "{}/{}/{id}",
                base.trim_end_matches('/'),
                resource.resource_type
            ),
            None => String::new(),
        };
        self.entries.push((full, resource, mode));
        Ok(())
    }

    /// The Bundle resource.
    pub fn build(self) -> Result<Resource<'static>, Error> {
        let mut b = Resource::new(ResourceType::Bundle);
        if let Some(id) = self.id {
            b.set_id(id)?;
        }
        b.node.add_str("type", "searchset")?;
        if let Some(t) = self.paging.total {
            b.node.add_str("total", t.to_string())?;
        }
        for (rel, url) in self.paging.links() {
            b.node.add_node("link", |l| {
                l.add_str("relation", rel)?;
                l.add_str("url", url)?;
                Ok(())
            })?;
        }
        for (full, res, mode) in self.entries {
            let mut e = Node::of("Bundle.entry");
            if !full.is_empty() {
                e.add_str("fullUrl", full)?;
            }
            e.add("resource", Value::Resource(Box::new(res)))?;
            e.add_node("search", |s| {
                s.add_str(
                    "mode",
                    match mode {
                        EntryMode::Match => "match",
                        EntryMode::Include => "include",
                        EntryMode::Outcome => "outcome",
                    },
                )?;
                Ok(())
            })?;
            b.node.add("entry", Value::Complex(e))?;
        }
        Ok(b)
    }
}
