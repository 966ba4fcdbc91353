//! FHIR R4 search semantics, backend-neutral (FHIR R4 §3.1.1 "Search").
//!
//! Query strings are parsed and validated by `xenrad_fhir_model::search::parse_query`
//! against the generated R4 SearchParameters; this module turns the typed result into a
//! [`Query`] whose [`Criterion`]s carry normalised, directly comparable values (date
//! ranges as fixed-width UTC-less bounds, numbers as `f64` intervals, strings folded), and
//! turns a resource into its [`IndexEntry`] rows. A store backend (SQLite today, PostgreSQL
//! later: issue 19) only compares columns: it decides nothing about FHIR.
//!
//! Every R4 SearchParameter of every resource type is indexed and executed, except
//! composite and special parameters, `:text`/`:of-type`/`:above`/`:below` on tokens,
//! `:identifier` on references and `:in`/`:not-in` (no terminology server): those land in
//! [`Query::unknown`], reported in an OperationOutcome entry, or refused with
//! `Prefer: handling=strict`.
//!
//! String values are indexed folded (lower case, accents removed), so `name=doe` matches
//! `Doe` and `muller` matches `Müller` (§3.1.1.5.4: case- and accent-insensitive,
//! starts-with by default); their exact text is kept for `:exact`.

use unicode_normalization::UnicodeNormalization;
use xenrad_fhir_model::index::{DateRange, IndexValue};
use xenrad_fhir_model::outcome::{OperationOutcome, Severity};
use xenrad_fhir_model::schema::SearchParamType;
use xenrad_fhir_model::search::{
    Chain, Link, Modifier, Prefix, SearchParam, SearchValue, parse_query, percent_decode,
};
use xenrad_fhir_model::subset::Summary;
use xenrad_fhir_model::{Resource, ResourceType};

/// Default page size.
pub const DEFAULT_COUNT: usize = 20;
/// Largest page size.
pub const MAX_COUNT: usize = 500;

/// One alternative value of a criterion (values of one parameter are ORed).
#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    /// string: folded prefix.
    StartsWith(String),
    /// string `:exact`: the raw text.
    Exact(String),
    /// string/uri `:contains`: folded substring.
    Contains(String),
    /// token `[system]|[code]`: `system = Some("")` means "no system"; `code = None` any code.
    Token {
        /// The system.
        system: Option<String>,
        /// The code.
        code: Option<String>,
    },
    /// date with prefix: the search value's implicit range `[low, high]` (fixed width).
    Date {
        /// The prefix.
        prefix: Prefix,
        /// Lower bound.
        low: String,
        /// Upper bound.
        high: String,
    },
    /// number/quantity with prefix: the value and its precision range; for quantities the
    /// unit system and code when given.
    Number {
        /// The prefix.
        prefix: Prefix,
        /// The value.
        value: f64,
        /// Lower bound of the implicit range (precision, §3.1.1.4.1).
        low: f64,
        /// Upper bound.
        high: f64,
        /// Quantity unit system.
        system: Option<String>,
        /// Quantity unit code.
        code: Option<String>,
    },
    /// reference `Type/id` (or an absolute URL) exactly.
    Reference(String),
    /// reference given as a bare id: any `*/id`.
    ReferenceId(String),
    /// uri, exactly.
    Uri(String),
    /// uri `:below`: starts with.
    UriBelow(String),
    /// uri `:above`: is a prefix of the stored value's... stored value is a prefix of this.
    UriAbove(String),
}

/// One criterion on a resource type (criteria are ANDed).
#[derive(Clone, Debug, PartialEq)]
pub enum Criterion {
    /// `_id`.
    Id {
        /// `:not`.
        not: bool,
        /// Ids (ORed).
        ids: Vec<String>,
    },
    /// Index rows of `param` matching one of `any`, or (`not`) none of them.
    Match {
        /// The parameter code.
        param: &'static str,
        /// `:not` (tokens): resources with no matching row.
        not: bool,
        /// Alternatives.
        any: Vec<Cond>,
    },
    /// `:missing=true|false`.
    Missing {
        /// The parameter code.
        param: &'static str,
        /// `true`: no row at all.
        missing: bool,
    },
    /// Chained: a reference `reference` to one of `targets` whose resource meets `inner`.
    Chain {
        /// The reference parameter.
        reference: &'static str,
        /// Target types tried.
        targets: Vec<ResourceType>,
        /// The criterion on the target.
        inner: Box<Criterion>,
    },
    /// Reverse chained (`_has`): some `source` resource whose `reference` points here meets
    /// `inner`.
    Has {
        /// The referring type.
        source: ResourceType,
        /// Its reference parameter.
        reference: &'static str,
        /// The criterion on the referring resource.
        inner: Box<Criterion>,
    },
}

/// `_include` / `_revinclude` as executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    /// The type holding the reference.
    pub source: ResourceType,
    /// The reference parameter (`None` for `*`).
    pub param: Option<&'static str>,
    /// Target type restriction.
    pub target: Option<ResourceType>,
    /// `:iterate`.
    pub iterate: bool,
}

/// A sort key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sort {
    /// Parameter code (`_id`, `_lastUpdated` or an indexed one).
    pub param: String,
    /// Descending.
    pub descending: bool,
}

/// A search request ready for a backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// Criteria, ANDed.
    pub criteria: Vec<Criterion>,
    /// Page size (`_count`), at most [`MAX_COUNT`].
    pub count: usize,
    /// Offset of the page (`_offset`, used by the paging links).
    pub offset: usize,
    /// Sort keys (`_sort`).
    pub sort: Vec<Sort>,
    /// `_include`.
    pub include: Vec<Include>,
    /// `_revinclude`.
    pub revinclude: Vec<Include>,
    /// `_summary`.
    pub summary: Option<Summary>,
    /// `_elements`.
    pub elements: Vec<String>,
    /// `_total=none`: the backend may skip counting.
    pub no_total: bool,
    /// Parameters that were not executed (reported in an OperationOutcome entry, or refused
    /// with `Prefer: handling=strict`).
    pub unknown: Vec<String>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            criteria: Vec::new(),
            count: DEFAULT_COUNT,
            offset: 0,
            sort: Vec::new(),
            include: Vec::new(),
            revinclude: Vec::new(),
            summary: None,
            elements: Vec::new(),
            no_total: false,
            unknown: Vec::new(),
        }
    }
}

fn invalid(msg: String) -> OperationOutcome {
    OperationOutcome::single(Severity::Error, "invalid", msg)
}

/// Result, paging and chaining parameters the query parser handles itself.
const RESULT_PARAMS: [&str; 9] = [
    "_count",
    "_offset",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_has",
];

/// Result and paging parameters that are not search criteria (handled elsewhere or harmless).
const NOT_CRITERIA: [&str; 2] = ["_format", "_pretty"];

/// Whether the gateway executes a parameter at all (composite and special ones are not
/// indexed; `_id` is the row itself).
pub fn executes(def: &xenrad_fhir_model::schema::SearchParamDef) -> bool {
    def.code == "_id"
        || (!def.expression.is_empty()
            && !matches!(
                def.kind,
                SearchParamType::Composite | SearchParamType::Special
            ))
}

/// The codes of the parameters executed for a resource type (for the CapabilityStatement).
pub fn params_for(rt: ResourceType) -> Vec<&'static xenrad_fhir_model::schema::SearchParamDef> {
    let mut seen = Vec::new();
    xenrad_fhir_model::schema::search_params(rt)
        .filter(|d| executes(d))
        .filter(|d| {
            let new = !seen.contains(&d.code);
            seen.push(d.code);
            new
        })
        .collect()
}

/// Parses a raw query string for `rt`. Parameters that R4 does not define for the type or
/// that are not executed go to [`Query::unknown`]; a malformed value (a bad date, a
/// `:missing` that is not true/false, a modifier the type does not allow) is an
/// OperationOutcome naming the parameter.
pub fn parse(rt: ResourceType, raw: &str) -> Result<Query, OperationOutcome> {
    let mut kept = Vec::new();
    let mut unknown = Vec::new();
    for pair in raw.strip_prefix('?').unwrap_or(raw).split('&') {
        if pair.is_empty() {
            continue;
        }
        let key = percent_decode(pair.split_once('=').map_or(pair, |(k, _)| k)).map_err(invalid)?;
        let code = key.split_once(':').map_or(key.as_str(), |(c, _)| c);
        if NOT_CRITERIA.contains(&code) {
            continue;
        }
        let known = RESULT_PARAMS.contains(&code)
            || key.contains('.')
            || xenrad_fhir_model::schema::search_param(rt, code).is_some_and(executes);
        if known {
            kept.push(pair);
        } else {
            unknown.push(key);
        }
    }
    let parsed = parse_query(rt, &kept.join("&"))?;
    let mut q = Query {
        count: parsed.count.unwrap_or(DEFAULT_COUNT).min(MAX_COUNT),
        offset: parsed.offset.unwrap_or(0),
        unknown,
        summary: parsed.summary.as_deref().and_then(Summary::parse),
        elements: parsed.elements,
        no_total: parsed.total.as_deref() == Some("none"),
        ..Query::default()
    };
    for key in parsed.sort {
        let ok = matches!(key.code.as_str(), "_id" | "_lastUpdated")
            || xenrad_fhir_model::schema::search_param(rt, &key.code).is_some_and(executes);
        if !ok {
            return Err(invalid(format!(
                "_sort: {rt} cannot be sorted by {:?}",
                key.code
            )));
        }
        q.sort.push(Sort {
            param: key.code,
            descending: key.descending,
        });
    }
    for (list, out) in [
        (parsed.include, &mut q.include),
        (parsed.revinclude, &mut q.revinclude),
    ] {
        for i in list {
            let param = if i.param == "*" {
                None
            } else {
                xenrad_fhir_model::schema::search_param(i.source, &i.param).map(|d| d.code)
            };
            out.push(Include {
                source: i.source,
                param,
                target: i.target,
                iterate: i.iterate,
            });
        }
    }
    for p in parsed.params {
        match criterion(&p) {
            Ok(c) => q.criteria.push(c),
            Err(why) => q.unknown.push(format!("{} ({why})", p.def.code)),
        }
    }
    for c in parsed.chains {
        let name = chain_name(&c);
        match chain(&c) {
            Ok(c) => q.criteria.push(c),
            Err(why) => q.unknown.push(format!("{name} ({why})")),
        }
    }
    Ok(q)
}

fn chain_name(c: &Chain) -> String {
    let mut s = String::new();
    for l in &c.links {
        match l {
            Link::Forward { reference, .. } => {
                s.push_str(reference.code);
                s.push('.');
            }
            Link::Reverse { source, reference } => {
                let _ = std::fmt::Write::write_fmt(
                    &mut s,
                    format_args!("_has:{source}:{}:", reference.code),
                );
            }
        }
    }
    s.push_str(c.param.def.code);
    s
}

fn chain(c: &Chain) -> Result<Criterion, String> {
    let mut inner = criterion(&c.param)?;
    for l in c.links.iter().rev() {
        inner = match l {
            Link::Forward { reference, targets } => Criterion::Chain {
                reference: reference.code,
                targets: targets.clone(),
                inner: Box::new(inner),
            },
            Link::Reverse { source, reference } => Criterion::Has {
                source: *source,
                reference: reference.code,
                inner: Box::new(inner),
            },
        };
    }
    Ok(inner)
}

/// One parsed parameter as a criterion; `Err` names why it is not executed.
fn criterion(p: &SearchParam) -> Result<Criterion, String> {
    use SearchParamType as T;
    let param = p.def.code;
    if !executes(p.def) {
        return Err("not executed here".into());
    }
    if p.modifier == Some(Modifier::Missing) {
        let missing = matches!(p.values.first(), Some(SearchValue::Missing(true)));
        if param == "_id" {
            // every resource has an id
            return Ok(Criterion::Id {
                not: !missing,
                ids: Vec::new(),
            });
        }
        return Ok(Criterion::Missing { param, missing });
    }
    let not = p.modifier == Some(Modifier::Not);
    if param == "_id" {
        let ids = p
            .values
            .iter()
            .filter_map(|v| match v {
                SearchValue::Token { code, .. } => code.clone(),
                SearchValue::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        return Ok(Criterion::Id { not, ids });
    }
    match (&p.modifier, p.def.kind) {
        (None | Some(Modifier::Exact | Modifier::Contains), T::String)
        | (None | Some(Modifier::Not), T::Token)
        | (None | Some(Modifier::Type(_)), T::Reference)
        | (None | Some(Modifier::Above | Modifier::Below | Modifier::Contains), T::Uri)
        | (None, T::Date | T::Number | T::Quantity) => {}
        (Some(m), _) => return Err(format!("modifier {m:?} is not executed here")),
        _ => return Err("not executed here".into()),
    }
    let mut any = Vec::new();
    for v in &p.values {
        any.push(cond(p, v)?);
    }
    Ok(Criterion::Match { param, not, any })
}

fn cond(p: &SearchParam, v: &SearchValue) -> Result<Cond, String> {
    use SearchParamType as T;
    Ok(match (p.def.kind, v) {
        (T::String, SearchValue::Text(t)) => match p.modifier {
            Some(Modifier::Exact) => Cond::Exact(t.clone()),
            Some(Modifier::Contains) => Cond::Contains(fold(t)),
            _ => Cond::StartsWith(fold(t)),
        },
        (T::Token, SearchValue::Token { system, code }) => Cond::Token {
            system: system.clone(),
            code: code.clone(),
        },
        (T::Uri, SearchValue::Text(t)) => match p.modifier {
            Some(Modifier::Below) => Cond::UriBelow(t.clone()),
            Some(Modifier::Above) => Cond::UriAbove(t.clone()),
            Some(Modifier::Contains) => Cond::Contains(fold(t)),
            _ => Cond::Uri(t.clone()),
        },
        (T::Date, SearchValue::Ordered { prefix, value, .. }) => {
            let (low, high) =
                search_date_range(value).ok_or_else(|| format!("bad date {value:?}"))?;
            Cond::Date {
                prefix: *prefix,
                low,
                high,
            }
        }
        (
            T::Number | T::Quantity,
            SearchValue::Ordered {
                prefix,
                value,
                system,
                code,
            },
        ) => {
            let x: f64 = value.parse().map_err(|_| format!("bad number {value:?}"))?;
            let half = precision_half_step(value);
            let (low, high) = if *prefix == Prefix::Ap {
                // §3.1.1.4.1: approximately, within 10 %
                let d = (x.abs() * 0.1).max(half);
                (x - d, x + d)
            } else {
                (x - half, x + half)
            };
            Cond::Number {
                prefix: *prefix,
                value: x,
                low,
                high,
                system: system.clone(),
                code: code.clone(),
            }
        }
        (T::Reference, SearchValue::Reference { resource_type, id }) => {
            let rt = resource_type.or(match &p.modifier {
                Some(Modifier::Type(t)) => Some(*t),
                _ => None,
            });
            match rt {
                Some(t) => Cond::Reference(format!("{t}/{id}")),
                None if id.contains("://") => Cond::Reference(reference_key(id)),
                None => Cond::ReferenceId(id.clone()),
            }
        }
        _ => return Err("value kind not executed here".into()),
    })
}

/// Half the unit of the last given digit (`5.40` → 0.005): the implicit range of a number
/// search value (§3.1.1.4.1).
fn precision_half_step(text: &str) -> f64 {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len());
    let exp: i32 = text
        .split_once(['e', 'E'])
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    0.5 * 10f64.powi(exp - i32::try_from(decimals).unwrap_or(0))
}

/// Folds text for string search: NFKD, combining marks removed, lower case.
pub fn fold(s: &str) -> String {
    s.nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Kept for callers of the earlier name.
pub fn normalize(s: &str) -> String {
    fold(s)
}

/// A date bound in the fixed width `YYYY-MM-DDThh:mm:ss.fff` (23 characters), so bounds
/// compare as text. Values with a time zone are moved to UTC; values without one are taken
/// as they are (FHIR leaves their zone to the server; this one treats them as UTC).
fn fixed(bound: &str, upper: bool) -> Option<String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(bound) {
        return Some(t.to_utc().format("%Y-%m-%dT%H:%M:%S%.3f").to_string());
    }
    // `YYYY-MM-DDThh:mm:ss[.fff…]` without zone, or `hh:mm` (Period precision)
    let b = bound.as_bytes();
    if b.len() < 16 {
        return None;
    }
    let mut s = bound.get(..16)?.to_owned();
    let secs = bound.get(16..).unwrap_or("");
    let (sec, frac) = match secs.strip_prefix(':') {
        Some(rest) => rest.split_once('.').map_or((rest, ""), |(s, f)| (s, f)),
        None => (if upper { "59" } else { "00" }, ""),
    };
    s.push(':');
    s.push_str(sec.get(..2)?);
    s.push('.');
    let mut f: String = frac.chars().take(3).collect();
    while f.len() < 3 {
        f.push(if upper && frac.is_empty() { '9' } else { '0' });
    }
    s.push_str(&f);
    Some(s)
}

/// The stored form of an indexed date range.
pub fn index_date_range(r: &DateRange) -> (Option<String>, Option<String>) {
    (
        r.low.as_deref().and_then(|l| fixed(l, false)),
        r.high.as_deref().and_then(|h| fixed(h, true)),
    )
}

/// The implicit range of a date search value (`2024`, `2024-03`, `2024-03-01`,
/// `2024-03-01T10:00:00Z`), in the fixed width.
pub fn search_date_range(v: &str) -> Option<(String, String)> {
    let y: u32 = v.get(..4)?.parse().ok()?;
    let (low, high) = match v.len() {
        4 => (
            format!("{y:04}-01-01T00:00:00"),
            format!("{y:04}-12-31T23:59:59.999"),
        ),
        7 => {
            let m: u32 = v.get(5..7)?.parse().ok()?;
            let last = match m {
                2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            (
                format!("{v}-01T00:00:00"),
                format!("{v}-{last:02}T23:59:59.999"),
            )
        }
        10 => (format!("{v}T00:00:00"), format!("{v}T23:59:59.999")),
        _ => {
            // a dateTime to the second or minute: its own second
            (v.to_owned(), v.to_owned())
        }
    };
    Some((fixed(&low, false)?, fixed(&high, true)?))
}

/// `Type/id` for a literal reference (relative, or absolute ending in `Type/id` or
/// `Type/id/_history/v`), else the reference as written.
pub fn reference_key(reference: &str) -> String {
    let path = reference.split(['?', '#']).next().unwrap_or(reference);
    let segs: Vec<&str> = path.split('/').collect();
    let n = segs.len();
    let pick = |i: usize| -> Option<String> {
        let (t, id) = (segs.get(i)?, segs.get(i + 1)?);
        (ResourceType::from_name(t).is_some() && xenrad_fhir_model::transaction::is_id(id))
            .then(|| format!("{t}/{id}"))
    };
    if n >= 4
        && segs[n - 2] == "_history"
        && let Some(k) = pick(n - 4)
    {
        return k;
    }
    if n >= 2
        && let Some(k) = pick(n - 2)
    {
        return k;
    }
    reference.to_owned()
}

/// One row of the index of a resource.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexEntry {
    /// Parameter code.
    pub param: &'static str,
    /// Token system, quantity unit system; `raw` for the exact form of strings; empty when
    /// none.
    pub system: String,
    /// Token code, folded string, reference key (`Type/id`), uri, quantity unit code, date low
    /// bound, number text.
    pub value: String,
    /// Date range lower bound (fixed width), if any.
    pub low: Option<String>,
    /// Date range upper bound (fixed width), if any.
    pub high: Option<String>,
    /// Numeric value of numbers and quantities.
    pub num: Option<f64>,
}

impl IndexEntry {
    fn new(param: &'static str, system: &str, value: &str) -> Self {
        IndexEntry {
            param,
            system: system.to_owned(),
            value: value.to_owned(),
            low: None,
            high: None,
            num: None,
        }
    }
    /// A string-parameter entry (stored folded).
    pub fn string(param: &'static str, value: &str) -> Self {
        IndexEntry::new(param, "", &fold(value))
    }
    /// A token entry.
    pub fn token(param: &'static str, system: &str, value: &str) -> Self {
        IndexEntry::new(param, system, value)
    }
    /// The raw (not folded) form of a string value, for `:exact`.
    pub fn raw(param: &'static str, value: &str) -> Self {
        IndexEntry::new(param, "raw", value)
    }
    /// A plain entry (references, uris).
    pub fn plain(param: &'static str, value: &str) -> Self {
        IndexEntry::new(param, "", value)
    }
}

/// The index rows of one extracted value.
pub fn push_index(out: &mut Vec<IndexEntry>, param: &'static str, v: &IndexValue<'_>) {
    match v {
        IndexValue::Token { system, code } => {
            out.push(IndexEntry::token(param, system.unwrap_or_default(), code));
            // DICOM UIDs are identifiers `urn:oid:<uid>`; also findable by the bare UID.
            if let Some(bare) = code.strip_prefix("urn:oid:") {
                out.push(IndexEntry::token(param, "", bare));
            }
        }
        IndexValue::String(s) => {
            out.push(IndexEntry::string(param, s));
            out.push(IndexEntry::raw(param, s));
        }
        IndexValue::Date(range) => {
            let (low, high) = index_date_range(range);
            if low.is_none() && high.is_none() {
                return;
            }
            let mut e = IndexEntry::plain(param, low.as_deref().or(high.as_deref()).unwrap_or(""));
            e.low = low;
            e.high = high;
            out.push(e);
        }
        IndexValue::Reference {
            reference,
            target,
            id,
        } => {
            let key = match (target, id) {
                (Some(t), Some(id)) => format!("{t}/{id}"),
                _ => reference_key(reference),
            };
            out.push(IndexEntry::plain(param, &key));
        }
        IndexValue::Uri(u) => out.push(IndexEntry::plain(param, u)),
        IndexValue::Number(n) => {
            let mut e = IndexEntry::plain(param, n);
            e.num = n.parse().ok();
            out.push(e);
        }
        IndexValue::Quantity {
            value,
            system,
            code,
            unit,
        } => {
            let mut e = IndexEntry::token(
                param,
                system.unwrap_or_default(),
                code.or(*unit).unwrap_or_default(),
            );
            e.num = value.parse().ok();
            out.push(e);
        }
    }
}

/// Every index row of a resource: all executed R4 SearchParameters of its type, extracted
/// by `xenrad_fhir_model::index` from the model (one pass over the parameters, no
/// re-parse). `_id` is not indexed (it is the row's own id).
pub fn index(r: &Resource<'_>) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    let (found, _unsupported) = xenrad_fhir_model::index::index(r);
    for (def, values) in found {
        if def.code == "_id" || !executes(def) {
            continue;
        }
        for v in &values {
            push_index(&mut out, def.code, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_accents() {
        assert_eq!(fold("Müller"), "muller");
        assert_eq!(fold("DOE"), "doe");
        assert_eq!(fold("Renée"), "renee");
    }

    #[test]
    fn parses_typed_parameters() {
        let p = parse(
            ResourceType::Patient,
            "name=smith&birthdate=ge1980-01-01&identifier=http://x%7C123&_count=5&_sort=-birthdate",
        )
        .unwrap();
        assert_eq!(p.count, 5);
        assert_eq!(p.criteria.len(), 3);
        assert!(matches!(
            &p.criteria[1],
            Criterion::Match { param: "birthdate", any, .. }
                if matches!(&any[0], Cond::Date { prefix: Prefix::Ge, low, .. } if low == "1980-01-01T00:00:00.000")
        ));
        assert!(matches!(
            &p.criteria[2],
            Criterion::Match { any, .. } if any[0] == Cond::Token { system: Some("http://x".into()), code: Some("123".into()) }
        ));
        assert_eq!(
            p.sort,
            vec![Sort {
                param: "birthdate".into(),
                descending: true
            }]
        );
        assert!(p.unknown.is_empty());
        assert_eq!(
            parse(ResourceType::Patient, "").unwrap().count,
            DEFAULT_COUNT
        );
        assert_eq!(
            parse(ResourceType::Patient, "_count=9999").unwrap().count,
            MAX_COUNT
        );
    }

    #[test]
    fn reports_unknown_and_rejects_bad_values() {
        let p = parse(
            ResourceType::Patient,
            "shoe-size=9&address-city=Paris&name=x&identifier:of-type=a|b|c",
        )
        .unwrap();
        assert_eq!(p.unknown.len(), 2, "{:?}", p.unknown);
        assert_eq!(p.unknown[0], "shoe-size");
        assert!(p.unknown[1].starts_with("identifier"));
        assert_eq!(p.criteria.len(), 2);
        assert!(parse(ResourceType::Patient, "birthdate=yesterday").is_err());
        assert!(parse(ResourceType::Patient, "_count=many").is_err());
        assert!(parse(ResourceType::Patient, "gender:contains=m").is_err());
        assert!(parse(ResourceType::Patient, "name:missing=maybe").is_err());
        assert!(parse(ResourceType::Patient, "_sort=shoe").is_err());
    }

    #[test]
    fn chains_and_references() {
        let p = parse(
            ResourceType::ImagingStudy,
            "subject:Patient=pat-1&status:missing=true&subject:Patient.name=doe&_has:Provenance:target:agent=Practitioner/1",
        )
        .unwrap();
        assert!(
            matches!(&p.criteria[0], Criterion::Match { any, .. } if any[0] == Cond::Reference("Patient/pat-1".into()))
        );
        assert_eq!(
            p.criteria[1],
            Criterion::Missing {
                param: "status",
                missing: true
            }
        );
        assert!(
            matches!(&p.criteria[2], Criterion::Chain { reference: "subject", inner, .. } if matches!(**inner, Criterion::Match { param: "name", .. }))
        );
        assert!(matches!(
            &p.criteria[3],
            Criterion::Has {
                source: ResourceType::Provenance,
                ..
            }
        ));
        assert_eq!(
            reference_key("http://h/fhir/Patient/1/_history/2"),
            "Patient/1"
        );
        assert_eq!(reference_key("Patient/1"), "Patient/1");
        assert_eq!(reference_key("urn:uuid:x"), "urn:uuid:x");
    }

    #[test]
    fn dates_and_numbers() {
        assert_eq!(
            search_date_range("2024-02").unwrap(),
            (
                "2024-02-01T00:00:00.000".into(),
                "2024-02-29T23:59:59.999".into()
            )
        );
        assert_eq!(
            search_date_range("2024-02-01T10:00:00+02:00").unwrap().0,
            "2024-02-01T08:00:00.000"
        );
        assert!((precision_half_step("5.40") - 0.005).abs() < 1e-12);
        assert!((precision_half_step("100") - 0.5).abs() < 1e-12);
        let r = xenrad_fhir_model::from_json(
            br#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2024-03",
            "valueQuantity":{"value":5.4,"system":"http://unitsofmeasure.org","code":"mg"},"meta":{"lastUpdated":"2024-01-01T00:00:00Z"}}"#,
        )
        .unwrap();
        let rows = index(&r);
        let d = rows.iter().find(|e| e.param == "date").unwrap();
        assert_eq!(
            (d.low.as_deref(), d.high.as_deref()),
            (
                Some("2024-03-01T00:00:00.000"),
                Some("2024-03-31T23:59:59.999")
            )
        );
        let q = rows.iter().find(|e| e.param == "value-quantity").unwrap();
        assert_eq!(
            (q.num, q.system.as_str(), q.value.as_str()),
            (Some(5.4), "http://unitsofmeasure.org", "mg")
        );
        assert!(rows.iter().any(|e| e.param == "_lastUpdated"));
    }
}
