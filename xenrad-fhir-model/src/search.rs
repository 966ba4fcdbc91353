//! Search query strings (R4 §3.1.1 <https://hl7.org/fhir/R4/search.html>) parsed against the
//! generated SearchParameters of a resource type into typed, validated parameters, or an
//! OperationOutcome naming the offending parameter.

use crate::generated::ResourceType;
use crate::outcome::{OperationOutcome, Severity};
use crate::schema::{SearchParamDef, SearchParamType, search_param};

/// Comparison prefixes of number/date/quantity parameters (§3.1.1.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

/// Modifiers (§3.1.1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modifier {
    /// `:exact` (string)
    Exact,
    /// `:contains` (string, uri)
    Contains,
    /// `:missing` (all)
    Missing,
    /// `:not` (token)
    Not,
    /// `:text` (token, string)
    Text,
    /// `:above` (uri, token)
    Above,
    /// `:below` (uri, token)
    Below,
    /// `:in` (token)
    In,
    /// `:not-in` (token)
    NotIn,
    /// `:of-type` (token on identifier)
    OfType,
    /// `:identifier` (reference)
    Identifier,
    /// `:[type]` (reference)
    Type(ResourceType),
}

/// One value of a parameter (comma-separated values are ORed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchValue {
    /// string / uri / special value.
    Text(String),
    /// token `[system]|[code]`, `code`, `|code`, `system|`.
    Token {
        /// The system; `Some("")` for `|code` (no system).
        system: Option<String>,
        /// The code; `None` for `system|`.
        code: Option<String>,
    },
    /// number / date / quantity with prefix; `value` is the validated text.
    Ordered {
        /// Prefix (default `eq`).
        prefix: Prefix,
        /// The number or date text.
        value: String,
        /// Quantity system (`number|system|code`).
        system: Option<String>,
        /// Quantity code.
        code: Option<String>,
    },
    /// reference `[type]/[id]`, `[id]` or an absolute URL.
    Reference {
        /// Resource type, when given.
        resource_type: Option<ResourceType>,
        /// Logical id or URL.
        id: String,
    },
    /// `:missing=true|false`.
    Missing(bool),
    /// composite `a$b`.
    Composite(Vec<String>),
}

/// A parsed parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParam {
    /// The parameter's definition.
    pub def: &'static SearchParamDef,
    /// The modifier, if any.
    pub modifier: Option<Modifier>,
    /// Values (OR).
    pub values: Vec<SearchValue>,
}

/// `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// Parameter code.
    pub code: String,
    /// `-code` sorts descending.
    pub descending: bool,
}

/// `_include` / `_revinclude` (`Source:param[:Target]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// Source resource type.
    pub source: ResourceType,
    /// Reference parameter code (or `*`).
    pub param: String,
    /// Target type restriction.
    pub target: Option<ResourceType>,
    /// `:iterate`.
    pub iterate: bool,
}

/// One hop of a chained (`subject:Patient.name`) or reverse-chained
/// (`_has:Observation:patient:code`) parameter (§3.1.1.4.13, §3.1.1.4.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Follow the reference parameter `reference` of the current type to one of `targets`
    /// (the `:Type` modifier, or every target type that defines the next parameter).
    Forward {
        /// The reference parameter followed.
        reference: &'static SearchParamDef,
        /// The candidate target types, in definition order.
        targets: Vec<ResourceType>,
    },
    /// Resources of type `source` whose reference parameter `reference` points at the current
    /// resource (`_has:source:reference:...`).
    Reverse {
        /// The referring type.
        source: ResourceType,
        /// Its reference parameter.
        reference: &'static SearchParamDef,
    },
}

/// A chained parameter: hops from the searched type, then the parameter tested at the end.
/// The final parameter is parsed with the definition of the first candidate type that has it;
/// a server evaluates its code on every candidate of the last forward hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The hops, from the searched type outwards (at least one).
    pub links: Vec<Link>,
    /// The type the final parameter is tested on (the first candidate).
    pub end: ResourceType,
    /// The final parameter and its values.
    pub param: SearchParam,
}

/// A parsed query: parameters are ANDed, values inside one parameter ORed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchQuery {
    /// Search parameters.
    pub params: Vec<SearchParam>,
    /// Chained and reverse-chained parameters (ANDed with `params`).
    pub chains: Vec<Chain>,
    /// `_count`.
    pub count: Option<usize>,
    /// `_offset` (paging).
    pub offset: Option<usize>,
    /// `_sort`.
    pub sort: Vec<SortKey>,
    /// `_include`.
    pub include: Vec<Include>,
    /// `_revinclude`.
    pub revinclude: Vec<Include>,
    /// `_summary`.
    pub summary: Option<String>,
    /// `_elements`.
    pub elements: Vec<String>,
    /// `_total`.
    pub total: Option<String>,
}

/// Limits of the parser.
const MAX_PARAMS: usize = 100;
const MAX_VALUES: usize = 100;

fn invalid(msg: String) -> OperationOutcome {
    OperationOutcome::single(Severity::Error, "invalid", msg)
}

/// Decodes `%XX` and `+` (application/x-www-form-urlencoded).
pub fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(h.ok_or_else(|| format!("bad percent escape in {s:?}"))?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("percent escapes of {s:?} are not UTF-8"))
}

/// Splits on an unescaped separator (`\,` `\|` `\$` `\\` are escapes, §3.1.1.5.7) and unescapes.
fn split_escaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ (',' | '|' | '$' | '\\')) if n == sep => {
                    let last = parts.last_mut().expect("non-empty");
                    last.push('\\');
                    last.push(n);
                }
                Some(n) => {
                    let last = parts.last_mut().expect("non-empty");
                    last.push('\\');
                    last.push(n);
                }
                None => parts.last_mut().expect("non-empty").push('\\'),
            }
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("non-empty").push(c);
        }
    }
    parts
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a query string (`name=smith&birthdate=ge1980-01-01&_count=10`) for a resource type.
///
/// ```
/// use xenrad_fhir_model::{ResourceType, search::{parse_query, Prefix, SearchValue}};
/// let q = parse_query(ResourceType::Patient, "name:exact=Smith&birthdate=ge1980-01-01&identifier=http://x%7C123&_count=10").unwrap();
/// assert_eq!(q.params.len(), 3);
/// assert_eq!(q.count, Some(10));
/// assert!(matches!(&q.params[1].values[0], SearchValue::Ordered { prefix: Prefix::Ge, value, .. } if value == "1980-01-01"));
/// assert!(parse_query(ResourceType::Patient, "colour=red").is_err());
/// ```
pub fn parse_query(rt: ResourceType, query: &str) -> Result<SearchQuery, OperationOutcome> {
    let mut q = SearchQuery::default();
    let query = query.strip_prefix('?').unwrap_or(query);
    for (n, pair) in query.split('&').filter(|p| !p.is_empty()).enumerate() {
        if n >= MAX_PARAMS {
            return Err(OperationOutcome::single(
                Severity::Error,
                "too-costly",
                format!("more than {MAX_PARAMS} parameters"),
            ));
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(k).map_err(invalid)?;
        let value = percent_decode(v).map_err(invalid)?;
        parse_pair(rt, &key, &value, &mut q)?;
    }
    Ok(q)
}

fn parse_usize(key: &str, v: &str) -> Result<usize, OperationOutcome> {
    v.parse()
        .map_err(|_| invalid(format!("{key}: {v:?} is not a non-negative integer")))
}

fn parse_include(key: &str, v: &str, iterate: bool) -> Result<Include, OperationOutcome> {
    let mut parts = v.split(':');
    let src = parts.next().unwrap_or("");
    let source = ResourceType::from_name(src)
        .ok_or_else(|| invalid(format!("{key}: unknown resource type {src:?}")))?;
    let param = parts
        .next()
        .ok_or_else(|| invalid(format!("{key}: expected Type:param[:Target]")))?
        .to_owned();
    if param != "*" {
        match search_param(source, &param) {
            Some(d) if d.kind == SearchParamType::Reference => {}
            _ => {
                return Err(invalid(format!(
                    "{key}: {src} has no reference parameter {param:?}"
                )));
            }
        }
    }
    let target = match parts.next() {
        Some(t) => Some(
            ResourceType::from_name(t)
                .ok_or_else(|| invalid(format!("{key}: unknown target type {t:?}")))?,
        ),
        None => None,
    };
    if parts.next().is_some() {
        return Err(invalid(format!("{key}: too many ':' in {v:?}")));
    }
    Ok(Include {
        source,
        param,
        target,
        iterate,
    })
}

fn parse_pair(
    rt: ResourceType,
    key: &str,
    value: &str,
    q: &mut SearchQuery,
) -> Result<(), OperationOutcome> {
    let (code, modifier) = match key.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (key, None),
    };
    match code {
        "_count" => q.count = Some(parse_usize(key, value)?),
        "_offset" => q.offset = Some(parse_usize(key, value)?),
        "_sort" => {
            for s in value.split(',') {
                let (desc, c) = match s.strip_prefix('-') {
                    Some(c) => (true, c),
                    None => (false, s),
                };
                if search_param(rt, c).is_none() {
                    return Err(invalid(format!(
                        "_sort: {rt} has no search parameter {c:?}"
                    )));
                }
                q.sort.push(SortKey {
                    code: c.to_owned(),
                    descending: desc,
                });
            }
        }
        "_include" | "_revinclude" => {
            let iterate = match modifier {
                None => false,
                Some("iterate" | "recurse") => true,
                Some(m) => return Err(invalid(format!("{code}: unknown modifier :{m}"))),
            };
            let inc = parse_include(key, value, iterate)?;
            if code == "_include" {
                q.include.push(inc);
            } else {
                q.revinclude.push(inc);
            }
        }
        "_summary" => match value {
            "true" | "false" | "text" | "data" | "count" => q.summary = Some(value.to_owned()),
            _ => return Err(invalid(format!("_summary: invalid value {value:?}"))),
        },
        "_elements" => q.elements.extend(value.split(',').map(str::to_owned)),
        "_total" => match value {
            "none" | "estimate" | "accurate" => q.total = Some(value.to_owned()),
            _ => return Err(invalid(format!("_total: invalid value {value:?}"))),
        },
        "_format" | "_pretty" => {}
        "_has" => q.chains.push(parse_chain(rt, key, value, 0)?),
        _ if key.contains('.') => q.chains.push(parse_chain(rt, key, value, 0)?),
        _ => {
            let def = search_param(rt, code)
                .ok_or_else(|| invalid(format!("{rt} has no search parameter {code:?}")))?;
            let p =
                parse_param(def, modifier, value).map_err(|m| invalid(format!("{key}: {m}")))?;
            q.params.push(p);
        }
    }
    Ok(())
}

/// Most hops in one chained parameter.
const MAX_CHAIN: usize = 4;

/// Parses a chained key (`subject:Patient.name:exact`, `_has:Observation:patient:code`,
/// combinations of both) with its value.
fn parse_chain(
    rt: ResourceType,
    key: &str,
    value: &str,
    depth: usize,
) -> Result<Chain, OperationOutcome> {
    if depth >= MAX_CHAIN {
        return Err(OperationOutcome::single(
            Severity::Error,
            "too-costly",
            format!("{key}: more than {MAX_CHAIN} chained hops"),
        ));
    }
    let wrap = |link: Link, mut rest: Chain| {
        rest.links.insert(0, link);
        rest
    };
    if let Some(rest) = key.strip_prefix("_has:") {
        // _has:Type:reference:rest
        let mut parts = rest.splitn(3, ':');
        let (src, reference, tail) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let source = ResourceType::from_name(src)
            .ok_or_else(|| invalid(format!("{key}: unknown resource type {src:?}")))?;
        let rdef = search_param(source, reference)
            .filter(|d| d.kind == SearchParamType::Reference)
            .ok_or_else(|| {
                invalid(format!(
                    "{key}: {src} has no reference parameter {reference:?}"
                ))
            })?;
        if !rdef.target.is_empty() && !rdef.target.contains(&rt.as_str()) {
            return Err(invalid(format!(
                "{key}: {src}.{reference} cannot point to a {rt}"
            )));
        }
        if tail.is_empty() {
            return Err(invalid(format!(
                "{key}: expected _has:Type:reference:parameter"
            )));
        }
        let link = Link::Reverse {
            source,
            reference: rdef,
        };
        return Ok(wrap(link, end_or_chain(source, key, tail, value, depth)?));
    }
    let (head, tail) = key
        .split_once('.')
        .ok_or_else(|| invalid(format!("{key}: not a chained parameter")))?;
    let (code, ty) = match head.split_once(':') {
        Some((c, t)) => (c, Some(t)),
        None => (head, None),
    };
    let rdef = search_param(rt, code)
        .filter(|d| d.kind == SearchParamType::Reference)
        .ok_or_else(|| invalid(format!("{key}: {rt} has no reference parameter {code:?}")))?;
    let next_code = tail.split(['.', ':']).next().unwrap_or("");
    let targets: Vec<ResourceType> = match ty {
        Some(t) => {
            let target = ResourceType::from_name(t)
                .ok_or_else(|| invalid(format!("{key}: unknown resource type {t:?}")))?;
            if !rdef.target.is_empty() && !rdef.target.contains(&t) {
                return Err(invalid(format!(
                    "{key}: {t} is not a target of {rt}.{code}"
                )));
            }
            vec![target]
        }
        None => rdef
            .target
            .iter()
            .filter_map(|t| ResourceType::from_name(t))
            .filter(|t| next_code == "_has" || search_param(*t, next_code).is_some())
            .collect(),
    };
    let Some(&first) = targets.first() else {
        return Err(invalid(format!(
            "{key}: no target type of {rt}.{code} has a parameter {next_code:?}"
        )));
    };
    let link = Link::Forward {
        reference: rdef,
        targets,
    };
    Ok(wrap(link, end_or_chain(first, key, tail, value, depth)?))
}

/// The rest of a chain: another hop, or the final parameter on `rt`.
fn end_or_chain(
    rt: ResourceType,
    key: &str,
    tail: &str,
    value: &str,
    depth: usize,
) -> Result<Chain, OperationOutcome> {
    let code = tail.split(':').next().unwrap_or("");
    if tail.starts_with("_has:") || tail.contains('.') {
        return parse_chain(rt, tail, value, depth + 1);
    }
    let modifier = tail.split_once(':').map(|(_, m)| m);
    let def = search_param(rt, code)
        .ok_or_else(|| invalid(format!("{key}: {rt} has no search parameter {code:?}")))?;
    let param = parse_param(def, modifier, value).map_err(|m| invalid(format!("{key}: {m}")))?;
    Ok(Chain {
        links: Vec::new(),
        end: rt,
        param,
    })
}

fn parse_prefix(v: &str) -> (Prefix, &str) {
    let prefixes = [
        ("eq", Prefix::Eq),
        ("ne", Prefix::Ne),
        ("gt", Prefix::Gt),
        ("lt", Prefix::Lt),
        ("ge", Prefix::Ge),
        ("le", Prefix::Le),
        ("sa", Prefix::Sa),
        ("eb", Prefix::Eb),
        ("ap", Prefix::Ap),
    ];
    for (s, p) in prefixes {
        if let Some(rest) = v.strip_prefix(s)
            && rest.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        {
            return (p, rest);
        }
    }
    (Prefix::Eq, v)
}

fn parse_modifier(def: &SearchParamDef, m: &str) -> Result<Modifier, String> {
    use SearchParamType as T;
    let md = match (m, def.kind) {
        ("missing", _) => Modifier::Missing,
        ("exact", T::String) => Modifier::Exact,
        ("contains", T::String | T::Uri) => Modifier::Contains,
        ("text", T::String | T::Token) => Modifier::Text,
        ("not", T::Token) => Modifier::Not,
        ("above", T::Uri | T::Token) => Modifier::Above,
        ("below", T::Uri | T::Token) => Modifier::Below,
        ("in", T::Token) => Modifier::In,
        ("not-in", T::Token) => Modifier::NotIn,
        ("of-type", T::Token) => Modifier::OfType,
        ("identifier", T::Reference) => Modifier::Identifier,
        (t, T::Reference) => {
            let rt = ResourceType::from_name(t).ok_or_else(|| format!("unknown modifier :{t}"))?;
            if !def.target.is_empty() && !def.target.contains(&t) {
                return Err(format!("{t} is not a target of {}", def.code));
            }
            Modifier::Type(rt)
        }
        (m, _) => {
            return Err(format!(
                "modifier :{m} is not allowed on a {:?} parameter",
                def.kind
            ));
        }
    };
    Ok(md)
}

fn parse_param(
    def: &'static SearchParamDef,
    modifier: Option<&str>,
    value: &str,
) -> Result<SearchParam, String> {
    let modifier = modifier.map(|m| parse_modifier(def, m)).transpose()?;
    let mut values = Vec::new();
    if value.is_empty() {
        return Err("empty value".into());
    }
    for raw in split_escaped(value, ',') {
        if values.len() >= MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values"));
        }
        if modifier == Some(Modifier::Missing) {
            values.push(SearchValue::Missing(match raw.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(format!(":missing needs true or false, not {raw:?}")),
            }));
            continue;
        }
        values.push(parse_value(def, modifier.as_ref(), &raw)?);
    }
    Ok(SearchParam {
        def,
        modifier,
        values,
    })
}

fn parse_value(
    def: &SearchParamDef,
    modifier: Option<&Modifier>,
    raw: &str,
) -> Result<SearchValue, String> {
    use SearchParamType as T;
    Ok(match def.kind {
        T::String | T::Uri | T::Special => SearchValue::Text(unescape(raw)),
        T::Token => {
            if modifier == Some(&Modifier::Text) {
                return Ok(SearchValue::Text(unescape(raw)));
            }
            let parts = split_escaped(raw, '|');
            match parts.as_slice() {
                [code] => SearchValue::Token {
                    system: None,
                    code: Some(unescape(code)),
                },
                [system, code] => SearchValue::Token {
                    system: Some(unescape(system)),
                    code: (!code.is_empty()).then(|| unescape(code)),
                },
                // of-type: system|code|value
                [s, c, v] if modifier == Some(&Modifier::OfType) => {
                    SearchValue::Composite(vec![unescape(s), unescape(c), unescape(v)])
                }
                _ => return Err(format!("invalid token {raw:?}")),
            }
        }
        T::Number | T::Date | T::Quantity => {
            let parts = split_escaped(raw, '|');
            let (prefix, v) = parse_prefix(&parts[0]);
            let ok = if def.kind == T::Date {
                crate::check_primitive(
                    crate::PrimKind::DateTime,
                    &crate::PrimValue::String(std::borrow::Cow::Borrowed(v)),
                )
                .is_ok()
            } else {
                let mut lx = crate::json::Lexer::new(v.as_bytes());
                lx.number().is_ok() && lx.pos == v.len()
                    || v.parse::<f64>().is_ok_and(f64::is_finite)
            };
            if !ok {
                return Err(format!("invalid {:?} value {v:?}", def.kind));
            }
            if parts.len() > 1 && def.kind != T::Quantity || parts.len() > 3 {
                return Err(format!("invalid value {raw:?}"));
            }
            SearchValue::Ordered {
                prefix,
                value: v.to_owned(),
                system: parts.get(1).filter(|s| !s.is_empty()).map(|s| unescape(s)),
                code: parts.get(2).filter(|s| !s.is_empty()).map(|s| unescape(s)),
            }
        }
        T::Reference => {
            let v = unescape(raw);
            if modifier == Some(&Modifier::Identifier) {
                let parts = split_escaped(raw, '|');
                return Ok(match parts.as_slice() {
                    [code] => SearchValue::Token {
                        system: None,
                        code: Some(unescape(code)),
                    },
                    [s, c] => SearchValue::Token {
                        system: Some(unescape(s)),
                        code: Some(unescape(c)),
                    },
                    _ => return Err(format!("invalid identifier {raw:?}")),
                });
            }
            if v.contains("://") {
                SearchValue::Reference {
                    resource_type: None,
                    id: v,
                }
            } else if let Some((t, id)) = v.split_once('/') {
                let rt = ResourceType::from_name(t)
                    .ok_or_else(|| format!("unknown resource type {t:?}"))?;
                SearchValue::Reference {
                    resource_type: Some(rt),
                    id: id.to_owned(),
                }
            } else {
                let rt = match modifier {
                    Some(Modifier::Type(rt)) => Some(*rt),
                    _ => None,
                };
                SearchValue::Reference {
                    resource_type: rt,
                    id: v,
                }
            }
        }
        T::Composite => SearchValue::Composite(
            split_escaped(raw, '$')
                .iter()
                .map(|s| unescape(s))
                .collect(),
        ),
    })
}

impl SearchQuery {
    /// The paging state for a response: `base` is the type's search URL without query
    /// (`http://host/fhir/Patient`), `query` the request's query string (its `_count`/`_offset`
    /// are dropped and re-added per link), `_count` defaults to `default_count` and is capped at
    /// `max_count`.
    ///
    /// ```
    /// use xenrad_fhir_model::{ResourceType, search::parse_query};
    /// let qs = "name=smith&_count=500&_offset=20";
    /// let q = parse_query(ResourceType::Patient, qs).unwrap();
    /// let p = q.paging("http://h/fhir/Patient", qs, 20, 100, Some(250));
    /// assert_eq!((p.offset, p.count), (20, 100));
    /// assert_eq!(p.base, "http://h/fhir/Patient?name=smith");
    /// ```
    pub fn paging(
        &self,
        base: &str,
        query: &str,
        default_count: usize,
        max_count: usize,
        total: Option<usize>,
    ) -> crate::bundle::Paging {
        let kept: Vec<&str> = query
            .strip_prefix('?')
            .unwrap_or(query)
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("_count=") && !p.starts_with("_offset="))
            .collect();
        let base = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        crate::bundle::Paging {
            base,
            offset: self.offset.unwrap_or(0),
            count: self.count.unwrap_or(default_count).min(max_count),
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains() {
        let q = parse_query(
            ResourceType::Observation,
            "subject:Patient.name:exact=Doe&subject.birthdate=ge1970&_has:Provenance:target:agent=Practitioner/1",
        )
        .unwrap();
        assert_eq!(q.chains.len(), 3);
        let c = &q.chains[0];
        assert!(
            matches!(&c.links[..], [Link::Forward { reference, targets }]
            if reference.code == "subject" && targets == &[ResourceType::Patient])
        );
        assert_eq!(
            (c.end, c.param.def.code, c.param.modifier.clone()),
            (ResourceType::Patient, "name", Some(Modifier::Exact))
        );
        // without :Type, every target that has the parameter
        let Link::Forward { targets, .. } = &q.chains[1].links[0] else {
            panic!()
        };
        assert_eq!(targets, &[ResourceType::Patient]);
        assert!(
            matches!(&q.chains[2].links[..], [Link::Reverse { source: ResourceType::Provenance, reference }] if reference.code == "target")
        );
        // two hops
        let q = parse_query(
            ResourceType::ImagingStudy,
            "subject:Patient.organization.name=acme",
        )
        .unwrap();
        assert_eq!(q.chains[0].links.len(), 2);
        assert_eq!(q.chains[0].end, ResourceType::Organization);
        let q = parse_query(
            ResourceType::Patient,
            "_has:Observation:patient:_has:AuditEvent:entity:agent=Practitioner/1",
        )
        .unwrap();
        assert_eq!(q.chains[0].links.len(), 2);
        assert_eq!(q.chains[0].end, ResourceType::AuditEvent);
        let q = parse_query(
            ResourceType::Patient,
            "general-practitioner:Practitioner.name=x",
        )
        .unwrap();
        assert_eq!(q.chains[0].end, ResourceType::Practitioner);
        for bad in [
            "name.family=x",                      // not a reference
            "subject:Device.name=x", // not a target... of Patient? (Patient has no subject)
            "_has:Observation:code:status=final", // not a reference parameter
            "_has:Observation:patient", // nothing to test
            "_has:Unicorn:patient:code=1",
            "organization.shoe=1",
            "organization.name:frob=1",
            "organization.partof.partof.partof.partof.name=x",
        ] {
            assert!(parse_query(ResourceType::Patient, bad).is_err(), "{bad}");
        }
    }
}
