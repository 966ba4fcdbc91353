//! Planning `transaction` and `batch` Bundles (R4 http.html#transaction
//! <https://hl7.org/fhir/R4/http.html#trules>): each entry's request is read and checked
//! (method, URL, conditional headers, the resource a write needs), the entries are put in the
//! processing order the specification requires — DELETE, then POST, then PUT/PATCH, then
//! GET/HEAD — and the references a server must rewrite are found: `urn:uuid:`/`urn:oid:` (and
//! other `fullUrl`) references to resources created in the same Bundle, and conditional
//! references `Type?params`.
//!
//! The plan does no I/O: a server resolves conditional operations and conditional references
//! against its store, assigns ids, then calls [`rewrite_references`] with what it decided.
//! Errors are OperationOutcomes whose `expression` names the entry
//! (`Bundle.entry[2].request.method`).
//!
//! ```
//! use xenrad_fhir_model::{from_json, transaction::{plan, Method, rewrite_references}};
//! let b = from_json(br#"{"resourceType":"Bundle","type":"transaction","entry":[
//!   {"request":{"method":"GET","url":"Patient?name=doe"}},
//!   {"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
//!    "resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient"}},
//!   {"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
//!     "subject":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}},
//!    "request":{"method":"PUT","url":"Observation/o1"}},
//!   {"request":{"method":"DELETE","url":"Patient/old"}}]}"#)?;
//! let mut p = plan(b).unwrap();
//! let order: Vec<Method> = p.entries.iter().map(|e| e.request.method).collect();
//! assert_eq!(order, [Method::Delete, Method::Post, Method::Put, Method::Get]);
//! assert_eq!(p.entries[0].index, 3); // entries keep their position for the response
//! let put = p.entries[2].resource.as_mut().unwrap();
//! let n = rewrite_references(put, &mut |r| (r == "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a").then(|| "Patient/p9".to_owned()));
//! assert_eq!(n, 1);
//! assert!(xenrad_fhir_model::to_json(put).contains(r#""reference":"Patient/p9""#));
//! # Ok::<(), xenrad_fhir_model::Error>(())
//! ```

use crate::generated::ResourceType;
use crate::model::{Node, PrimValue, Resource, Value};
use crate::outcome::{OperationOutcome, Severity};
use std::borrow::Cow;

/// `Bundle.type` of a Bundle a client posts to the base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    /// All or nothing.
    Transaction,
    /// Each entry on its own.
    Batch,
}

/// `Bundle.entry.request.method` (R4 `http-verb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// DELETE (processed first).
    Delete,
    /// POST (create).
    Post,
    /// PUT (update).
    Put,
    /// PATCH.
    Patch,
    /// GET (processed last).
    Get,
    /// HEAD.
    Head,
}

impl Method {
    /// Parses the code.
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    /// The code.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Processing rank (R4 http.html#trules: DELETE, POST, PUT/PATCH, GET/HEAD).
    pub fn rank(self) -> u8 {
        match self {
            Method::Delete => 0,
            Method::Post => 1,
            Method::Put | Method::Patch => 2,
            Method::Get | Method::Head => 3,
        }
    }
}

/// A parsed request URL relative to the base: `Type`, `Type/id`, `Type/id/_history/vid`,
/// `Type?query`, `Type/_history`, `_history` or `?query` on the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The resource type, if the URL names one.
    pub resource_type: Option<ResourceType>,
    /// The logical id.
    pub id: Option<String>,
    /// `_history` was named (with `version` for a vread).
    pub history: bool,
    /// The version id of a vread.
    pub version: Option<String>,
    /// The query string (without `?`), for searches and conditional operations.
    pub query: Option<String>,
    /// A `$operation` name, if any (not planned further).
    pub operation: Option<String>,
}

impl Target {
    /// Parses a URL relative to the FHIR base; an absolute URL is accepted and cut at its first
    /// path segment that names a resource type.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (url, None),
        };
        let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if url.contains("://") {
            let start = segs
                .iter()
                .position(|s| ResourceType::from_name(s).is_some())
                .ok_or_else(|| format!("{url:?} names no resource type"))?;
            segs.drain(..start);
        }
        let mut t = Target {
            resource_type: None,
            id: None,
            history: false,
            version: None,
            query,
            operation: None,
        };
        let mut it = segs.into_iter().peekable();
        if let Some(s) = it.peek()
            && let Some(rt) = ResourceType::from_name(s)
        {
            t.resource_type = Some(rt);
            it.next();
        }
        if let Some(s) = it.peek()
            && !s.starts_with('_')
            && !s.starts_with('$')
        {
            if t.resource_type.is_none() {
                return Err(format!("{s:?} is not a resource type"));
            }
            // the id charset; the 64-character limit is a validation warning (one official
            // example has a 67-character id), so longer ids up to 255 are addressable
            if s.len() > 255
                || !is_id(&s[..s.len().min(64)])
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(format!("{s:?} is not a valid id"));
            }
            t.id = Some((*s).to_owned());
            it.next();
        }
        match it.next() {
            None => {}
            Some("_history") => {
                t.history = true;
                if let Some(v) = it.next() {
                    t.version = Some(v.to_owned());
                }
            }
            Some(op) if op.starts_with('$') => t.operation = Some(op[1..].to_owned()),
            Some(other) => return Err(format!("unexpected path segment {other:?}")),
        }
        if let Some(extra) = it.next() {
            return Err(format!("unexpected path segment {extra:?}"));
        }
        Ok(t)
    }
}

/// FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// One entry's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The URL as written.
    pub url: String,
    /// The parsed URL.
    pub target: Target,
    /// `ifNoneMatch`.
    pub if_none_match: Option<String>,
    /// `ifModifiedSince`.
    pub if_modified_since: Option<String>,
    /// `ifMatch` (`W/"3"`).
    pub if_match: Option<String>,
    /// `ifNoneExist` (a query string: conditional create).
    pub if_none_exist: Option<String>,
}

/// One entry of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEntry<'a> {
    /// Position in the submitted Bundle (the response keeps this order).
    pub index: usize,
    /// `fullUrl`.
    pub full_url: Option<String>,
    /// The request.
    pub request: Request,
    /// The resource (POST, PUT; PATCH carries a `Binary` or `Parameters`).
    pub resource: Option<Resource<'a>>,
}

/// A checked Bundle in processing order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<'a> {
    /// Transaction or batch.
    pub kind: BundleKind,
    /// Entries sorted by [`Method::rank`], stable within a rank.
    pub entries: Vec<PlannedEntry<'a>>,
    /// Number of entries in the submitted Bundle.
    pub len: usize,
}

fn fail(index: Option<usize>, what: &str, msg: impl Into<String>) -> OperationOutcome {
    let mut oo = OperationOutcome::new();
    let expr = match index {
        Some(i) => format!("Bundle.entry[{i}]{what}"),
        None => format!("Bundle{what}"),
    };
    let pointer = expr
        .trim_start_matches("Bundle")
        .replace('[', "/")
        .replace("].", "/")
        .replace(']', "")
        .replace('.', "/");
    oo.push(
        Severity::Error,
        "invalid",
        msg,
        Some((&pointer, Some(ResourceType::Bundle))),
    );
    oo
}

/// Reads a `transaction` or `batch` Bundle into a [`Plan`]. For a transaction every entry must
/// be valid and no two writes may address the same resource; for a batch the same checks
/// apply per entry (a server answering a batch may prefer to report a bad entry in its
/// response entry: the error names which one).
pub fn plan(bundle: Resource<'_>) -> Result<Plan<'_>, OperationOutcome> {
    if bundle.resource_type != ResourceType::Bundle {
        return Err(fail(
            None,
            "",
            format!("expected a Bundle, got {}", bundle.resource_type),
        ));
    }
    let kind = match bundle.node.str("type") {
        Some("transaction") => BundleKind::Transaction,
        Some("batch") => BundleKind::Batch,
        other => {
            return Err(fail(
                None,
                ".type",
                format!("Bundle.type must be transaction or batch, not {other:?}"),
            ));
        }
    };
    let Resource { node, .. } = bundle;
    let (entry_index, _) = node.type_id.def().element("entry").expect("Bundle.entry");
    let values = node
        .fields
        .into_iter()
        .find(|f| f.index == entry_index)
        .map(|f| f.values)
        .unwrap_or_default();
    let mut entries = Vec::new();
    let mut full_urls: Vec<(String, usize)> = Vec::new();
    let mut written: Vec<(ResourceType, String, usize)> = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        let Value::Complex(e) = v else { continue };
        let e = entry(i, e)?;
        if let Some(u) = &e.full_url {
            if let Some((_, j)) = full_urls.iter().find(|(f, _)| f == u) {
                return Err(fail(
                    Some(i),
                    ".fullUrl",
                    format!("fullUrl {u:?} is also entry {j}'s"),
                ));
            }
            full_urls.push((u.clone(), i));
        }
        if kind == BundleKind::Transaction
            && matches!(
                e.request.method,
                Method::Put | Method::Patch | Method::Delete
            )
            && let (Some(rt), Some(id)) = (e.request.target.resource_type, &e.request.target.id)
        {
            if let Some((_, _, j)) = written.iter().find(|(t, d, _)| *t == rt && d == id) {
                return Err(fail(
                    Some(i),
                    ".request.url",
                    format!("{rt}/{id} is also written by entry {j}"),
                ));
            }
            written.push((rt, id.clone(), i));
        }
        entries.push(e);
    }
    let len = entries.len();
    entries.sort_by_key(|e| e.request.method.rank());
    Ok(Plan { kind, entries, len })
}

fn entry(i: usize, mut e: Node<'_>) -> Result<PlannedEntry<'_>, OperationOutcome> {
    let full_url = e.str("fullUrl").map(str::to_owned);
    let req = e
        .first("request")
        .and_then(Value::as_node)
        .ok_or_else(|| fail(Some(i), ".request", "entry without request"))?;
    let text = |k: &str| req.str(k).map(str::to_owned);
    let method_text = req.str("method").unwrap_or("");
    let method = Method::parse(method_text).ok_or_else(|| {
        fail(
            Some(i),
            ".request.method",
            format!("unknown method {method_text:?}"),
        )
    })?;
    let url = req.str("url").unwrap_or("").to_owned();
    let target = Target::parse(&url).map_err(|m| fail(Some(i), ".request.url", m))?;
    let request = Request {
        method,
        url,
        target,
        if_none_match: text("ifNoneMatch"),
        if_modified_since: text("ifModifiedSince"),
        if_match: text("ifMatch"),
        if_none_exist: text("ifNoneExist"),
    };
    let (res_index, _) = e.type_id.def().element("resource").expect("entry.resource");
    let resource = e
        .fields
        .iter()
        .position(|f| f.index == res_index)
        .map(|p| e.fields.remove(p))
        .and_then(|f| f.values.into_iter().next())
        .and_then(|v| match v {
            Value::Resource(r) => Some(*r),
            _ => None,
        });
    let t = &request.target;
    let needs = |ok: bool, msg: &str| {
        if ok {
            Ok(())
        } else {
            Err(fail(Some(i), ".request.url", msg.to_owned()))
        }
    };
    match method {
        Method::Post => {
            needs(
                t.resource_type.is_some() && t.id.is_none() && !t.history,
                "POST needs a resource type URL",
            )?;
        }
        Method::Put => needs(
            t.resource_type.is_some() && (t.id.is_some() || t.query.is_some()) && !t.history,
            "PUT needs Type/id or Type?conditions",
        )?,
        Method::Patch | Method::Delete => needs(
            t.resource_type.is_some() && (t.id.is_some() || t.query.is_some()) && !t.history,
            "PATCH and DELETE need Type/id or Type?conditions",
        )?,
        Method::Get | Method::Head => {}
    }
    match (method, &resource) {
        (Method::Post | Method::Put, None) => {
            return Err(fail(
                Some(i),
                ".resource",
                format!("{} without a resource", method.as_str()),
            ));
        }
        (Method::Post | Method::Put, Some(r)) if Some(r.resource_type) != t.resource_type => {
            return Err(fail(
                Some(i),
                ".resource",
                format!("a {} sent to {:?}", r.resource_type, request.url),
            ));
        }
        (Method::Put, Some(r)) => {
            if let (Some(a), Some(b)) = (r.id(), &t.id)
                && a != b
            {
                return Err(fail(
                    Some(i),
                    ".resource.id",
                    format!("id {a:?} differs from the URL's {b:?}"),
                ));
            }
        }
        (Method::Patch, Some(r))
            if !matches!(
                r.resource_type,
                ResourceType::Binary | ResourceType::Parameters
            ) =>
        {
            return Err(fail(
                Some(i),
                ".resource",
                "PATCH carries a Binary (JSON Patch) or Parameters",
            ));
        }
        (Method::Patch, None) => {
            return Err(fail(
                Some(i),
                ".resource",
                "PATCH without a Binary (JSON Patch)",
            ));
        }
        _ => {}
    }
    Ok(PlannedEntry {
        index: i,
        full_url,
        request,
        resource,
    })
}

/// Whether a reference is conditional (`Patient?identifier=x|1`, R4 http.html#trules).
pub fn is_conditional_reference(reference: &str) -> bool {
    reference
        .split_once('?')
        .is_some_and(|(t, _)| ResourceType::from_name(t).is_some())
}

/// Every `Reference.reference` of a resource (contained resources included), in document
/// order.
pub fn references<'r>(r: &'r Resource<'_>) -> Vec<&'r str> {
    fn walk<'r>(n: &'r Node<'_>, out: &mut Vec<&'r str>) {
        if n.type_id.name() == "Reference"
            && let Some(s) = n.str("reference")
        {
            out.push(s);
        }
        for f in &n.fields {
            for v in f.values.iter() {
                match v {
                    Value::Complex(c) => walk(c, out),
                    Value::Resource(r) => walk(&r.node, out),
                    Value::Primitive(_) => {}
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&r.node, &mut out);
    out
}

/// Replaces every `Reference.reference` for which `map` answers (contained resources
/// included); returns how many were replaced.
pub fn rewrite_references(
    r: &mut Resource<'_>,
    map: &mut dyn FnMut(&str) -> Option<String>,
) -> usize {
    fn walk(n: &mut Node<'_>, map: &mut dyn FnMut(&str) -> Option<String>) -> usize {
        let mut count = 0;
        let reference = (n.type_id.name() == "Reference")
            .then(|| n.type_id.def().element("reference").map(|(i, _)| i))
            .flatten();
        for f in &mut n.fields {
            for v in f.values.iter_mut() {
                match v {
                    Value::Complex(c) => count += walk(c, map),
                    Value::Resource(r) => count += walk(&mut r.node, map),
                    Value::Primitive(p) if Some(f.index) == reference => {
                        if let Some(PrimValue::String(s)) = &mut p.value
                            && let Some(new) = map(s)
                        {
                            *s = Cow::Owned(new);
                            count += 1;
                        }
                    }
                    Value::Primitive(_) => {}
                }
            }
        }
        count
    }
    walk(&mut r.node, map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_json;

    #[test]
    fn targets() {
        let t = Target::parse("Patient/1/_history/2").unwrap();
        assert_eq!(
            (t.id.as_deref(), t.version.as_deref(), t.history),
            (Some("1"), Some("2"), true)
        );
        let t = Target::parse("Patient?identifier=a%7Cb").unwrap();
        assert_eq!(t.query.as_deref(), Some("identifier=a%7Cb"));
        let t = Target::parse("http://h/fhir/Observation/o.1").unwrap();
        assert_eq!(
            (t.resource_type, t.id.as_deref()),
            (Some(ResourceType::Observation), Some("o.1"))
        );
        assert!(Target::parse("Unicorn/1").is_err());
        assert!(Target::parse("Patient/a b").is_err());
        assert!(Target::parse("Patient/1/extra").is_err());
        assert_eq!(
            Target::parse("Patient/$everything")
                .unwrap()
                .operation
                .as_deref(),
            Some("everything")
        );
        assert_eq!(
            Target::parse("Patient/1/$everything")
                .unwrap()
                .operation
                .as_deref(),
            Some("everything")
        );
        assert!(Target::parse("_history").unwrap().history);
    }

    #[test]
    fn refusals_name_the_entry() {
        let bad = |json: &str| {
            let r = from_json(json.as_bytes()).unwrap();
            let oo = plan(r).unwrap_err();
            oo.issues[0].expression[0].clone()
        };
        assert_eq!(
            bad(
                r#"{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Patient"}},{"request":{"method":"POST","url":"Patient"}}]}"#
            ),
            "Bundle.entry[1].resource"
        );
        assert_eq!(
            bad(
                r#"{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Patient/1"}},{"request":{"method":"DELETE","url":"Patient/1"}}]}"#
            ),
            "Bundle.entry[1].request.url"
        );
        assert_eq!(
            bad(
                r#"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","id":"a"},"request":{"method":"PUT","url":"Patient/b"}}]}"#
            ),
            "Bundle.entry[0].resource.id"
        );
        assert_eq!(
            bad(
                r#"{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}"#
            ),
            "Bundle.entry[1].fullUrl"
        );
        assert_eq!(
            bad(r#"{"resourceType":"Bundle","type":"collection"}"#),
            "Bundle.type"
        );
        let oo = plan(from_json(br#"{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"FETCH","url":"Patient"}}]}"#).unwrap()).unwrap_err();
        assert_eq!(oo.issues[0].location, ["/entry/0/request/method"]);
    }

    #[test]
    fn references_and_conditionals() {
        let r = from_json(
            br##"{"resourceType":"Observation","status":"final","code":{"text":"x"},
            "contained":[{"resourceType":"Device","id":"d","owner":{"reference":"Organization?identifier=o|1"}}],
            "subject":{"reference":"urn:uuid:a"},"device":{"reference":"#d"},
            "performer":[{"reference":"Practitioner/1"},{"display":"x"}]}"##,
        )
        .unwrap();
        assert_eq!(
            references(&r),
            [
                "Organization?identifier=o|1",
                "urn:uuid:a",
                "Practitioner/1",
                "#d"
            ]
        );
        assert!(is_conditional_reference("Organization?identifier=o|1"));
        assert!(!is_conditional_reference("urn:uuid:a?x"));
        let mut r = r;
        let n = rewrite_references(&mut r, &mut |s| {
            (s == "urn:uuid:a" || is_conditional_reference(s)).then(|| format!("X/{}", s.len()))
        });
        assert_eq!(n, 2);
        assert_eq!(references(&r), ["X/27", "X/10", "Practitioner/1", "#d"]);
    }
}
