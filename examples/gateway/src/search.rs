//! FHIR R4 search over the gateway's index (FHIR R4 §3.1.1 "Search").
//!
//! Query strings are parsed and validated by `xenrad_fhir_model::search::parse_query`
//! against the generated R4 SearchParameters; this module only decides which of
//! those parameters the gateway *executes* (the ones its projections index) and
//! turns the typed result into a backend-neutral [`Query`] that a store backend
//! runs (see `store::ReadTx::search`).
//!
//! Resources are stored with index rows `(type, id, param, system, value)`, written
//! by the projections. String values are indexed normalised (lower case, accents
//! removed), so `name=doe` matches `Doe` and `muller` matches `Müller`
//! (§3.1.1.5.4: case- and accent-insensitive, starts-with by default).

use unicode_normalization::UnicodeNormalization;
use xenrad_fhir_model::ResourceType;
use xenrad_fhir_model::outcome::{OperationOutcome, Severity};
use xenrad_fhir_model::search::{Modifier, SearchValue, parse_query, percent_decode};

/// How the gateway executes a parameter (a subset of FHIR R4 §3.1.1.4 types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// `string`: starts-with, case- and accent-insensitive; `:exact`, `:contains`.
    String,
    /// `token`: `[system]|[code]`; `:not`.
    Token,
    /// `date`: prefixes eq, ne, lt, gt, le, ge, sa, eb.
    Date,
    /// `reference`: `[type]/[id]` or `[id]`; `:[type]`.
    Reference,
}

/// The parameters the gateway executes per resource type (each is an R4
/// SearchParameter of that type; the CapabilityStatement lists exactly these).
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
pub const SERVED_TYPES: [&str; 5] = [
    "Patient",
    "ServiceRequest",
    "ImagingStudy",
    "Procedure",
    "Endpoint",
];

/// Result parameters (§3.1.1.7) the gateway accepts without acting on them.
const IGNORED: [&str; 5] = ["_format", "_pretty", "_summary", "_elements", "_total"];

/// One executable criterion: an R4 parameter the gateway indexes, with its
/// validated values (ORed, §3.1.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Criterion {
    /// Parameter code (`name`, `identifier`, …), as indexed.
    pub param: &'static str,
    /// How it is executed.
    pub kind: ParamType,
    /// The modifier, if any (only ones the kind supports get here).
    pub modifier: Option<Modifier>,
    /// Alternatives, typed by `xenrad-fhir-model`.
    pub values: Vec<SearchValue>,
}

/// A search request ready for a backend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Criteria, ANDed.
    pub criteria: Vec<Criterion>,
    /// Page size (`_count`), at most [`MAX_COUNT`].
    pub count: usize,
    /// Offset of the page (`_offset`, used by the paging links).
    pub offset: usize,
    /// Sort keys (`_sort`): parameter code and descending flag.
    pub sort: Vec<(String, bool)>,
    /// Parameters that were not executed (reported in an OperationOutcome entry,
    /// or refused with `Prefer: handling=strict`).
    pub unknown: Vec<String>,
}

/// Default page size.
pub const DEFAULT_COUNT: usize = 20;
/// Largest page size.
pub const MAX_COUNT: usize = 500;

fn invalid(msg: String) -> OperationOutcome {
    OperationOutcome::single(Severity::Error, "invalid", msg)
}

/// Parses a raw query string for `resource_type`.
///
/// Parameters that R4 does not define for the type, or that the gateway does not
/// index, are dropped into [`Query::unknown`]; `_include`/`_revinclude` are not
/// executed and are reported the same way. Everything else goes through
/// `xenrad_fhir_model::search::parse_query`, so a malformed value (a bad date, a
/// `:missing` that is not true/false, a modifier the type does not allow) is an
/// OperationOutcome naming the parameter.
pub fn parse(resource_type: &str, raw: &str) -> Result<Query, OperationOutcome> {
    let rt = ResourceType::from_name(resource_type).ok_or_else(|| {
        OperationOutcome::single(
            Severity::Error,
            "not-supported",
            format!("unknown resource type {resource_type:?}"),
        )
    })?;
    let served = params_for(resource_type);
    let mut kept = Vec::new();
    let mut unknown = Vec::new();
    for pair in raw.strip_prefix('?').unwrap_or(raw).split('&') {
        if pair.is_empty() {
            continue;
        }
        let key = percent_decode(pair.split_once('=').map_or(pair, |(k, _)| k)).map_err(invalid)?;
        let code = key.split_once(':').map_or(key.as_str(), |(c, _)| c);
        if IGNORED.contains(&code) {
            continue;
        }
        if matches!(code, "_count" | "_offset" | "_sort") || served.iter().any(|(n, _)| *n == code)
        {
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
        ..Query::default()
    };
    for key in parsed.sort {
        if key.code != "_lastUpdated" && !served.iter().any(|(n, _)| *n == key.code) {
            return Err(invalid(format!(
                "_sort: {resource_type} cannot be sorted by {:?} here",
                key.code
            )));
        }
        q.sort.push((key.code, key.descending));
    }
    for p in parsed.params {
        let Some((param, kind)) = served.iter().find(|(n, _)| *n == p.def.code) else {
            continue;
        };
        let executable = matches!(
            (&p.modifier, kind),
            (None | Some(Modifier::Missing), _)
                | (
                    Some(Modifier::Exact | Modifier::Contains),
                    ParamType::String
                )
                | (Some(Modifier::Not), ParamType::Token)
                | (Some(Modifier::Type(_)), ParamType::Reference)
        );
        if !executable {
            return Err(OperationOutcome::single(
                Severity::Error,
                "not-supported",
                format!("{param}: modifier {:?} is not supported here", p.modifier),
            ));
        }
        q.criteria.push(Criterion {
            param,
            kind: *kind,
            modifier: p.modifier,
            values: p.values,
        });
    }
    Ok(q)
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
    /// Token system (empty when none; `raw` for the exact form of strings).
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

#[cfg(test)]
mod tests {
    use super::*;
    use xenrad_fhir_model::search::Prefix;

    #[test]
    fn normalises_case_and_accents() {
        assert_eq!(normalize("Müller"), "muller");
        assert_eq!(normalize("DOE"), "doe");
        assert_eq!(normalize("Renée"), "renee");
    }

    #[test]
    fn parses_typed_parameters() {
        let p = parse(
            "Patient",
            "name=smith&birthdate=ge1980-01-01&identifier=http://x%7C123&_count=5&_sort=-birthdate",
        )
        .unwrap();
        assert_eq!(p.count, 5);
        assert_eq!(p.criteria.len(), 3);
        assert_eq!(p.criteria[1].kind, ParamType::Date);
        assert!(matches!(
            &p.criteria[1].values[0],
            SearchValue::Ordered { prefix: Prefix::Ge, value, .. } if value == "1980-01-01"
        ));
        assert!(matches!(
            &p.criteria[2].values[0],
            SearchValue::Token { system: Some(s), code: Some(c) } if s == "http://x" && c == "123"
        ));
        assert_eq!(p.sort, vec![("birthdate".to_owned(), true)]);
        assert!(p.unknown.is_empty());
        assert_eq!(parse("Patient", "").unwrap().count, DEFAULT_COUNT);
        assert_eq!(parse("Patient", "_count=9999").unwrap().count, MAX_COUNT);
    }

    #[test]
    fn reports_unknown_and_rejects_bad_values() {
        // Not an R4 parameter, and an R4 parameter the gateway does not index.
        let p = parse("Patient", "shoe-size=9&address-city=Paris&name=x").unwrap();
        assert_eq!(
            p.unknown,
            vec!["shoe-size".to_owned(), "address-city".to_owned()]
        );
        assert_eq!(p.criteria.len(), 1);
        assert!(parse("Patient", "birthdate=yesterday").is_err());
        assert!(parse("Patient", "_count=many").is_err());
        assert!(parse("Patient", "gender:contains=m").is_err());
        assert!(parse("Patient", "name:missing=maybe").is_err());
        assert!(parse("Patient", "_sort=shoe").is_err());
        assert!(parse("Patient", "_sort=address-city").is_err());
        assert!(parse("Patient", "identifier:text=x").is_err());
        assert!(parse("Unicorn", "name=x").is_err());
    }

    #[test]
    fn reference_and_missing() {
        let p = parse("ImagingStudy", "subject:Patient=pat-1&status:missing=true").unwrap();
        assert!(matches!(
            &p.criteria[0].values[0],
            SearchValue::Reference { resource_type: Some(ResourceType::Patient), id } if id == "pat-1"
        ));
        assert_eq!(p.criteria[1].values, vec![SearchValue::Missing(true)]);
    }
}
