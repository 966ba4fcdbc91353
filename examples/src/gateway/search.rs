//! FHIR R4 search over the gateway's index (FHIR R4 §3.1.1 "Search").
//!
//! Resources are stored as JSON; each write also stores index rows
//! `(type, id, param, system, value)`. A query string is parsed into typed criteria
//! (string, token, date, reference), each of which becomes one `EXISTS` clause.
//! String values are indexed normalised (lower case, accents removed), so `name=doe`
//! matches `Doe` and `Dœ`-free accented forms such as `Müller` for `muller` (§3.1.1.5.4: case- and
//! accent-insensitive, starts-with by default).

use super::store::StoreError;
use rusqlite::{Connection, ToSql};
use std::fmt::Write as _;
use unicode_normalization::UnicodeNormalization;

/// Kind of a search parameter (FHIR R4 §3.1.1.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// `string`: starts-with, case- and accent-insensitive.
    String,
    /// `token`: `[system]|[code]`.
    Token,
    /// `date`: with prefixes eq, ne, lt, gt, le, ge, sa, eb.
    Date,
    /// `reference`: `[type]/[id]` or `[id]`.
    Reference,
}

/// The parameters one resource type supports here, with their types.
pub fn params_for(resource_type: &str) -> &'static [(&'static str, ParamType)] {
    use ParamType::{Date, Reference, String, Token};
    match resource_type {
        "Patient" => &[
            ("_id", Token),
            ("identifier", Token),
            ("name", String),
            ("family", String),
            ("given", String),
            ("birthdate", Date),
            ("gender", Token),
            ("active", Token),
        ],
        "ServiceRequest" | "ImagingStudy" | "Procedure" => &[
            ("_id", Token),
            ("identifier", Token),
            ("subject", Reference),
            ("patient", Reference),
            ("status", Token),
        ],
        _ => &[("_id", Token)],
    }
}

/// Resource types the FHIR surface serves.
pub const SERVED_TYPES: [&str; 4] = ["Patient", "ServiceRequest", "ImagingStudy", "Procedure"];

/// One parsed criterion.
#[derive(Clone, Debug, PartialEq)]
pub struct Criterion {
    /// Parameter name (`name`, `identifier`, …).
    pub param: String,
    /// Its type.
    pub kind: ParamType,
    /// Modifier after `:` (`exact`, `contains`, `missing`, `not`), if any.
    pub modifier: Option<String>,
    /// Alternatives (comma-separated values are ORed, §3.1.1.2).
    pub values: Vec<String>,
}

/// A parsed search request.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Criteria, ANDed.
    pub criteria: Vec<Criterion>,
    /// Page size (`_count`), at most [`MAX_COUNT`].
    pub count: usize,
    /// Offset of the page (`_offset`, used by our paging links).
    pub offset: usize,
    /// Sort keys (`_sort`), `-` prefix for descending.
    pub sort: Vec<(String, bool)>,
    /// Parameters we did not understand (reported in an OperationOutcome).
    pub unknown: Vec<String>,
}

/// Default page size.
pub const DEFAULT_COUNT: usize = 20;
/// Largest page size.
pub const MAX_COUNT: usize = 500;

/// A problem with a query, reported as an OperationOutcome issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The offending parameter.
    pub param: String,
    /// What is wrong.
    pub message: String,
}

/// Parses an `application/x-www-form-urlencoded` query for `resource_type`.
pub fn parse_query(resource_type: &str, pairs: &[(String, String)]) -> Result<Query, QueryError> {
    let supported = params_for(resource_type);
    let mut q = Query {
        count: DEFAULT_COUNT,
        ..Query::default()
    };
    for (k, v) in pairs {
        let (name, modifier) = match k.split_once(':') {
            Some((n, m)) => (n, Some(m.to_owned())),
            None => (k.as_str(), None),
        };
        let bad = |m: String| QueryError {
            param: k.clone(),
            message: m,
        };
        match name {
            "_count" => {
                q.count = v
                    .parse::<usize>()
                    .map_err(|_| bad(format!("_count must be a whole number, got {v:?}")))?;
                q.count = q.count.min(MAX_COUNT);
            }
            "_offset" => {
                q.offset = v
                    .parse::<usize>()
                    .map_err(|_| bad(format!("_offset must be a whole number, got {v:?}")))?;
            }
            "_sort" => {
                for key in v.split(',').filter(|s| !s.is_empty()) {
                    let (desc, key) = key.strip_prefix('-').map_or((false, key), |k| (true, k));
                    if key != "_lastUpdated" && !supported.iter().any(|(n, _)| *n == key) {
                        return Err(bad(format!("cannot sort {resource_type} by {key:?}")));
                    }
                    q.sort.push((key.to_owned(), desc));
                }
            }
            "_format" | "_pretty" | "_summary" | "_elements" | "_total" => {}
            _ => {
                let Some((_, kind)) = supported.iter().find(|(n, _)| *n == name) else {
                    q.unknown.push(k.clone());
                    continue;
                };
                if let Some(m) = &modifier {
                    let ok = match kind {
                        ParamType::String => matches!(m.as_str(), "exact" | "contains" | "missing"),
                        ParamType::Token => matches!(m.as_str(), "not" | "missing"),
                        ParamType::Date => m == "missing",
                        ParamType::Reference => m == "missing" || supported_type(m),
                    };
                    if !ok {
                        return Err(bad(format!("modifier :{m} is not supported on {name}")));
                    }
                }
                let values: Vec<String> = v.split(',').map(str::to_owned).collect();
                if *kind == ParamType::Date && modifier.as_deref() != Some("missing") {
                    for val in &values {
                        parse_date_value(val).map_err(&bad)?;
                    }
                }
                if modifier.as_deref() == Some("missing") && !matches!(v.as_str(), "true" | "false")
                {
                    return Err(bad(format!(":missing takes true or false, got {v:?}")));
                }
                q.criteria.push(Criterion {
                    param: name.to_owned(),
                    kind: *kind,
                    modifier,
                    values,
                });
            }
        }
    }
    Ok(q)
}

fn supported_type(t: &str) -> bool {
    SERVED_TYPES.contains(&t)
}

/// Splits a date search value into its prefix and an ISO date (FHIR R4 §3.1.1.5.1).
pub fn parse_date_value(v: &str) -> Result<(&str, &str), String> {
    let (prefix, date) = match v.get(..2) {
        Some(p @ ("eq" | "ne" | "lt" | "gt" | "le" | "ge" | "sa" | "eb")) => (p, &v[2..]),
        _ => ("eq", v),
    };
    let bytes = date.as_bytes();
    let shape_ok = match bytes.len() {
        4 => bytes.iter().all(u8::is_ascii_digit),
        7 => {
            bytes[..4].iter().all(u8::is_ascii_digit)
                && bytes[4] == b'-'
                && bytes[5..].iter().all(u8::is_ascii_digit)
        }
        10 => chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
        _ => false,
    };
    if shape_ok {
        Ok((prefix, date))
    } else {
        Err(format!(
            "{v:?} is not a date (YYYY, YYYY-MM or YYYY-MM-DD with an optional prefix)"
        ))
    }
}

/// Normalises text for string search: NFKD, combining marks removed, lower case.
pub fn normalize(s: &str) -> String {
    s.nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// One row of the index, produced by the projections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Parameter name.
    pub param: &'static str,
    /// Token system (empty when none).
    pub system: String,
    /// Value (normalised for string parameters).
    pub value: String,
}

impl IndexEntry {
    /// A string-parameter entry (stored normalised).
    pub fn string(param: &'static str, value: &str) -> Self {
        IndexEntry {
            param,
            system: String::new(),
            value: normalize(value),
        }
    }
    /// A token entry.
    pub fn token(param: &'static str, system: &str, value: &str) -> Self {
        IndexEntry {
            param,
            system: system.to_owned(),
            value: value.to_owned(),
        }
    }
    /// The raw (not normalised) form of a string value, for `:exact`.
    pub fn raw(param: &'static str, value: &str) -> Self {
        IndexEntry {
            param,
            system: "raw".to_owned(),
            value: value.to_owned(),
        }
    }
    /// A plain entry (dates, references).
    pub fn plain(param: &'static str, value: &str) -> Self {
        IndexEntry {
            param,
            system: String::new(),
            value: value.to_owned(),
        }
    }
}

/// A page of results.
#[derive(Debug)]
pub struct Page {
    /// Total matches.
    pub total: usize,
    /// `(id, version, last_updated, json)` of this page.
    pub rows: Vec<(String, i64, String, String)>,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Runs a parsed query.
pub fn execute(conn: &Connection, resource_type: &str, q: &Query) -> Result<Page, StoreError> {
    let mut sql = String::from(" FROM resources r WHERE r.resource_type = ?");
    let mut args: Vec<Box<dyn ToSql>> = vec![Box::new(resource_type.to_owned())];
    for c in &q.criteria {
        if c.modifier.as_deref() == Some("missing") {
            let missing = c.values.first().is_some_and(|v| v == "true");
            if c.param == "_id" {
                sql.push_str(if missing { " AND 0" } else { " AND 1" });
                continue;
            }
            sql.push_str(if missing { " AND NOT " } else { " AND " });
            sql.push_str(EXISTS_HEAD);
            sql.push(')');
            args.push(Box::new(c.param.clone()));
            continue;
        }
        let not = if c.modifier.as_deref() == Some("not") {
            "NOT "
        } else {
            ""
        };
        if c.param == "_id" {
            // `_id` is the row's own id, not an index row.
            let ors: Vec<&str> = c.values.iter().map(|_| "r.id = ?").collect();
            for v in &c.values {
                args.push(Box::new(v.rsplit('|').next().unwrap_or(v).to_owned()));
            }
            let _ = write!(sql, " AND {not}({})", ors.join(" OR "));
            continue;
        }
        let mut alts = Vec::new();
        for v in &c.values {
            let (cond, mut a) = condition(c, v);
            alts.push(cond);
            args.append(&mut a);
        }
        let _ = write!(sql, " AND {not}({})", alts.join(" OR "));
    }
    let params: Vec<&dyn ToSql> = args.iter().map(AsRef::as_ref).collect();
    let total: i64 = conn.query_row(&format!("SELECT COUNT(*){sql}"), params.as_slice(), |r| {
        r.get(0)
    })?;
    let mut order = Vec::new();
    let mut sort_args: Vec<Box<dyn ToSql>> = Vec::new();
    for (key, desc) in &q.sort {
        let dir = if *desc { "DESC" } else { "ASC" };
        match key.as_str() {
            "_lastUpdated" => order.push(format!("r.last_updated {dir}")),
            "_id" => order.push(format!("r.id {dir}")),
            k => {
                order.push(format!(
                    "(SELECT {} (s.value) FROM search_index s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = ?) {dir}",
                    if *desc { "MAX" } else { "MIN" }
                ));
                sort_args.push(Box::new(k.to_owned()));
            }
        }
    }
    order.push("r.id ASC".to_owned());
    let mut all: Vec<&dyn ToSql> = params.clone();
    all.extend(sort_args.iter().map(AsRef::as_ref));
    let limit = i64::try_from(q.count).unwrap_or(i64::MAX);
    let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
    all.push(&limit);
    all.push(&offset);
    let mut stmt = conn.prepare(&format!(
        "SELECT r.id, r.version, r.last_updated, r.json{sql} ORDER BY {} LIMIT ? OFFSET ?",
        order.join(", ")
    ))?;
    let rows = stmt
        .query_map(all.as_slice(), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        total: usize::try_from(total).unwrap_or(0),
        rows,
    })
}

const EXISTS_HEAD: &str = "EXISTS (SELECT 1 FROM search_index s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = ?";

/// SQL for one alternative value of a criterion, with its arguments.
#[allow(clippy::many_single_char_names)]
fn condition(c: &Criterion, v: &str) -> (String, Vec<Box<dyn ToSql>>) {
    let head = EXISTS_HEAD;
    let p: Box<dyn ToSql> = Box::new(c.param.clone());
    match c.kind {
        ParamType::String => match c.modifier.as_deref() {
            Some("exact") => (
                format!("{head} AND s.system = 'raw' AND s.value = ?)"),
                vec![p, Box::new(v.to_owned())],
            ),
            Some("contains") => (
                format!("{head} AND s.system = '' AND s.value LIKE ? ESCAPE '\\')"),
                vec![p, Box::new(format!("%{}%", like_escape(&normalize(v))))],
            ),
            _ => (
                format!("{head} AND s.system = '' AND s.value LIKE ? ESCAPE '\\')"),
                vec![p, Box::new(format!("{}%", like_escape(&normalize(v))))],
            ),
        },
        ParamType::Token => match v.split_once('|') {
            Some(("", code)) => (
                format!("{head} AND s.system = '' AND s.value = ?)"),
                vec![p, Box::new(code.to_owned())],
            ),
            Some((system, "")) => (
                format!("{head} AND s.system = ?)"),
                vec![p, Box::new(system.to_owned())],
            ),
            Some((system, code)) => (
                format!("{head} AND s.system = ? AND s.value = ?)"),
                vec![p, Box::new(system.to_owned()), Box::new(code.to_owned())],
            ),
            None => (
                format!("{head} AND s.value = ?)"),
                vec![p, Box::new(v.to_owned())],
            ),
        },
        ParamType::Date => {
            let (prefix, date) = parse_date_value(v).unwrap_or(("eq", v));
            let d = date.to_owned();
            // Stored dates are ISO (YYYY[-MM[-DD]]); lexical order is date order at
            // equal precision; a shorter search value matches the whole period.
            let (cond, args): (&str, Vec<Box<dyn ToSql>>) = match prefix {
                "ne" => ("AND s.value NOT LIKE ?", vec![Box::new(format!("{d}%"))]),
                "lt" | "eb" => ("AND s.value < ?", vec![Box::new(d)]),
                "gt" | "sa" => (
                    "AND s.value > ? AND s.value NOT LIKE ?",
                    vec![Box::new(d.clone()), Box::new(format!("{d}%"))],
                ),
                "le" => (
                    "AND (s.value < ? OR s.value LIKE ?)",
                    vec![Box::new(d.clone()), Box::new(format!("{d}%"))],
                ),
                "ge" => ("AND s.value >= ?", vec![Box::new(d)]),
                _ => ("AND s.value LIKE ?", vec![Box::new(format!("{d}%"))]),
            };
            let mut a = vec![p];
            a.extend(args);
            (format!("{head} {cond})"), a)
        }
        ParamType::Reference => {
            let typed = c.modifier.as_deref().filter(|m| *m != "missing");
            let target = match (typed, v.contains('/')) {
                (Some(t), false) => format!("{t}/{v}"),
                _ => v.to_owned(),
            };
            if target.contains('/') {
                (
                    format!("{head} AND s.value = ?)"),
                    vec![p, Box::new(target)],
                )
            } else {
                (
                    format!("{head} AND s.value LIKE ? ESCAPE '\\')"),
                    vec![p, Box::new(format!("%/{}", like_escape(&target)))],
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(t: &str, s: &str) -> Result<Query, QueryError> {
        let pairs: Vec<(String, String)> = s
            .split('&')
            .filter(|x| !x.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        parse_query(t, &pairs)
    }

    #[test]
    fn normalises_case_and_accents() {
        assert_eq!(normalize("Müller"), "muller");
        assert_eq!(normalize("DOE"), "doe");
        assert_eq!(normalize("Renée"), "renee");
    }

    #[test]
    fn parses_typed_parameters() {
        let p = q(
            "Patient",
            "name=smith&birthdate=ge1980-01-01&identifier=http://x|123&_count=5&_sort=-birthdate",
        )
        .unwrap();
        assert_eq!(p.count, 5);
        assert_eq!(p.criteria.len(), 3);
        assert_eq!(p.criteria[1].kind, ParamType::Date);
        assert_eq!(p.sort, vec![("birthdate".to_owned(), true)]);
        assert!(p.unknown.is_empty());
    }

    #[test]
    fn reports_unknown_and_rejects_bad_values() {
        let p = q("Patient", "shoe-size=9").unwrap();
        assert_eq!(p.unknown, vec!["shoe-size".to_owned()]);
        assert!(q("Patient", "birthdate=yesterday").is_err());
        assert!(q("Patient", "_count=many").is_err());
        assert!(q("Patient", "gender:contains=m").is_err());
        assert!(q("Patient", "name:missing=maybe").is_err());
        assert!(q("Patient", "_sort=shoe").is_err());
    }

    #[test]
    fn date_prefixes() {
        assert_eq!(
            parse_date_value("ge1980-01-01").unwrap(),
            ("ge", "1980-01-01")
        );
        assert_eq!(parse_date_value("1980").unwrap(), ("eq", "1980"));
        assert!(parse_date_value("1980-13-01").is_err());
    }
}
