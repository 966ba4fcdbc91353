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

/// `Bundle.entry.request` of a written entry (history and transaction/batch responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRequest<'a> {
    /// `method` (`POST`, `PUT`, `DELETE`, …).
    pub method: &'a str,
    /// `url`.
    pub url: &'a str,
}

/// `Bundle.entry.response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawResponse<'a> {
    /// `status` (`201 Created`).
    pub status: &'a str,
    /// `location`.
    pub location: Option<&'a str>,
    /// `etag` (`W/"2"`).
    pub etag: Option<&'a str>,
    /// `lastModified` (instant).
    pub last_modified: Option<&'a str>,
    /// `outcome`: a resource's JSON as this crate writes it (an OperationOutcome).
    pub outcome: Option<&'a str>,
}

/// One entry for [`BundleWriter`]: every resource is JSON text this crate wrote (for example
/// stored bytes), copied as is, so a server builds Bundles from stored resources without
/// parsing them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawEntry<'a> {
    /// `fullUrl`.
    pub full_url: Option<&'a str>,
    /// `resource`: one JSON object as [`to_json`](crate::to_json) writes it.
    pub resource: Option<&'a str>,
    /// `search.mode`.
    pub search_mode: Option<EntryMode>,
    /// `request`.
    pub request: Option<RawRequest<'a>>,
    /// `response`.
    pub response: Option<RawResponse<'a>>,
}

/// Writes a Bundle's JSON directly, in the element order [`to_json`](crate::to_json) uses,
/// with entries whose resources are already-serialised JSON (searchset, history,
/// transaction-response and batch-response Bundles).
///
/// ```
/// use xenrad_fhir_model::bundle::{BundleWriter, EntryMode, Paging, RawEntry};
/// let paging = Paging { base: "http://h/fhir/Patient".into(), offset: 0, count: 1, total: Some(2) };
/// let mut w = BundleWriter::new("searchset", Some(2), &paging.links());
/// w.entry(&RawEntry { full_url: Some("http://h/fhir/Patient/p1"),
///     resource: Some(r#"{"resourceType":"Patient","id":"p1"}"#), search_mode: Some(EntryMode::Match), ..Default::default() });
/// let json = w.finish();
/// let b = xenrad_fhir_model::from_json(json.as_bytes())?;      // reads strictly
/// assert_eq!(xenrad_fhir_model::to_json(&b), json);            // in the model's own order
/// # Ok::<(), xenrad_fhir_model::Error>(())
/// ```
#[derive(Debug)]
pub struct BundleWriter {
    out: String,
    entries: usize,
}

impl BundleWriter {
    /// Starts a Bundle of `kind` (`searchset`, `history`, `transaction-response`, …) with its
    /// `total` and `link`s.
    pub fn new(kind: &str, total: Option<usize>, links: &[(&str, String)]) -> Self {
        Self::with_capacity(kind, total, links, 1024)
    }

    /// [`BundleWriter::new`] reserving `capacity` bytes.
    pub fn with_capacity(
        kind: &str,
        total: Option<usize>,
        links: &[(&str, String)],
        capacity: usize,
    ) -> Self {
        use crate::json::write_str;
        let mut out = String::with_capacity(capacity);
        out.push_str(r#"{"resourceType":"Bundle","type":"#);
        write_str(&mut out, kind);
        if let Some(t) = total {
            out.push_str(",\"total\":");
            out.push_str(&t.to_string());
        }
        if !links.is_empty() {
            out.push_str(",\"link\":[");
            for (i, (rel, url)) in links.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"relation\":");
                write_str(&mut out, rel);
                out.push_str(",\"url\":");
                write_str(&mut out, url);
                out.push('}');
            }
            out.push(']');
        }
        BundleWriter { out, entries: 0 }
    }

    /// Appends an entry.
    pub fn entry(&mut self, e: &RawEntry<'_>) {
        use crate::json::write_str;
        let out = &mut self.out;
        out.push_str(if self.entries == 0 {
            ",\"entry\":[{"
        } else {
            ",{"
        });
        self.entries += 1;
        let mut first = true;
        let mut key = |out: &mut String, k: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push('"');
            out.push_str(k);
            out.push_str("\":");
        };
        if let Some(u) = e.full_url {
            key(out, "fullUrl");
            write_str(out, u);
        }
        if let Some(r) = e.resource {
            debug_assert!(
                crate::json::parse(r.as_bytes(), 256).is_ok(),
                "not JSON: {r}"
            );
            key(out, "resource");
            out.push_str(r);
        }
        if let Some(m) = e.search_mode {
            key(out, "search");
            out.push_str("{\"mode\":\"");
            out.push_str(match m {
                EntryMode::Match => "match",
                EntryMode::Include => "include",
                EntryMode::Outcome => "outcome",
            });
            out.push_str("\"}");
        }
        if let Some(r) = e.request {
            key(out, "request");
            out.push_str("{\"method\":");
            write_str(out, r.method);
            out.push_str(",\"url\":");
            write_str(out, r.url);
            out.push('}');
        }
        if let Some(r) = e.response {
            key(out, "response");
            out.push_str("{\"status\":");
            write_str(out, r.status);
            for (k, v) in [
                ("location", r.location),
                ("etag", r.etag),
                ("lastModified", r.last_modified),
            ] {
                if let Some(v) = v {
                    out.push_str(",\"");
                    out.push_str(k);
                    out.push_str("\":");
                    write_str(out, v);
                }
            }
            if let Some(o) = r.outcome {
                out.push_str(",\"outcome\":");
                out.push_str(o);
            }
            out.push('}');
        }
        out.push('}');
    }

    /// Number of entries written so far.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether no entry was written.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The Bundle's JSON.
    pub fn finish(mut self) -> String {
        if self.entries > 0 {
            self.out.push(']');
        }
        self.out.push('}');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bundles_equal_model_bundles() {
        let p = crate::builders::PatientBuilder::new("p1")
            .name("Smith", &["Ann"])
            .build()
            .unwrap();
        let paging = Paging {
            base: "http://h/fhir/Patient?name=s\"x".into(),
            offset: 10,
            count: 10,
            total: Some(25),
        };
        let mut set = SearchSet::new(paging.clone());
        set.push("http://h/fhir", p.clone(), EntryMode::Match)
            .unwrap();
        set.push("http://h/fhir", p.clone(), EntryMode::Include)
            .unwrap();
        let model = crate::to_json(&set.build().unwrap());
        let text = crate::to_json(&p);
        let mut w = BundleWriter::new("searchset", paging.total, &paging.links());
        for mode in [EntryMode::Match, EntryMode::Include] {
            w.entry(&RawEntry {
                full_url: Some("http://h/fhir/Patient/p1"),
                resource: Some(&text),
                search_mode: Some(mode),
                ..Default::default()
            });
        }
        assert_eq!(w.len(), 2);
        assert_eq!(w.finish(), model);
        // history / transaction-response shapes read strictly and write back unchanged
        let oo = crate::outcome::OperationOutcome::single(
            crate::outcome::Severity::Warning,
            "informational",
            "x",
        )
        .to_json();
        let mut w = BundleWriter::new("transaction-response", None, &[]);
        w.entry(&RawEntry {
            full_url: Some("http://h/fhir/Patient/p1"),
            resource: Some(&text),
            request: Some(RawRequest {
                method: "PUT",
                url: "Patient/p1",
            }),
            response: Some(RawResponse {
                status: "201 Created",
                location: Some("Patient/p1/_history/1"),
                etag: Some("W/\"1\""),
                last_modified: Some("2026-01-01T00:00:00.000Z"),
                outcome: Some(&oo),
            }),
            ..Default::default()
        });
        w.entry(&RawEntry {
            response: Some(RawResponse {
                status: "204 No Content",
                ..Default::default()
            }),
            ..Default::default()
        });
        let json = w.finish();
        let b = crate::from_json(json.as_bytes()).unwrap();
        assert_eq!(crate::to_json(&b), json);
        assert!(!crate::validate(&b).has_errors());
        assert_eq!(
            BundleWriter::new("history", Some(0), &[]).finish(),
            r#"{"resourceType":"Bundle","type":"history","total":0}"#
        );
    }
}
