//! Search indexing: evaluates the FHIRPath expressions of the generated SearchParameters on a
//! resource and turns the values they select into index values (token `system|code`, string,
//! date range with precision, reference, quantity, number, uri), so a server can index resources
//! without hand-written extraction (R4 §3.1.1.4 <https://hl7.org/fhir/R4/search.html#ptypes>).
//!
//! The FHIRPath subset is the one the R4 SearchParameters use (all 2,500 non-composite,
//! non-special (resource type, parameter) expressions of the 146 resources are within it): paths,
//! `|` unions (alternatives for other resource types are skipped), `(path as type)` with further
//! steps, `.as(type)`/`.ofType(type)`, `[i]`, `.where(resolve() is Type)`,
//! `.where(element='literal')`, and `path.exists() and path != false`. Anything else is reported
//! as [`Unsupported`].
//!
//! ```
//! use xenrad_fhir_model::index::{IndexValue, extract};
//! use xenrad_fhir_model::{ResourceType, from_json, schema::search_param};
//!
//! let r = from_json(br#"{"resourceType":"Patient","birthDate":"1974-12",
//!   "telecom":[{"system":"email","value":"a@b.c"},{"system":"phone","value":"123"}]}"#)?;
//! let email = search_param(ResourceType::Patient, "email").unwrap();
//! assert_eq!(extract(&r, email).unwrap(), [IndexValue::Token { system: None, code: "a@b.c" }]);
//! let birth = search_param(ResourceType::Patient, "birthdate").unwrap();
//! let IndexValue::Date(d) = &extract(&r, birth).unwrap()[0] else { panic!() };
//! assert_eq!((d.low.as_deref(), d.high.as_deref()), (Some("1974-12-01T00:00:00"), Some("1974-12-31T23:59:59.999")));
//! # Ok::<(), xenrad_fhir_model::Error>(())
//! ```

use crate::generated::ResourceType;
use crate::model::{Node, PrimValue, Resource, Value};
use crate::schema::{SearchParamDef, SearchParamType, TypeKind, search_params};

/// An expression (or part of one) outside the supported FHIRPath subset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported FHIRPath expression: {0}")]
pub struct Unsupported(pub String);

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A child element by (base) name.
    Child(String),
    /// `as(T)`, `ofType(T)`, `(… as T)`: keep values of type `T`.
    OfType(String),
    /// `where(resolve() is T)`: references that point to a `T`.
    ResolveIs(String),
    /// `where(child='literal')`.
    WhereEq(String, String),
    /// `[i]`: the i-th item of the collection so far.
    Index(usize),
}

/// One `|` alternative: a path from a base type, optionally tested with `exists() and != false`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PathExpr {
    base: String,
    steps: Vec<Step>,
    /// `path.exists() and path != false`: a boolean token.
    exists_not_false: bool,
}

/// A compiled expression: the alternatives that apply to one resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    paths: Vec<PathExpr>,
}

/// Splits at top-level occurrences of `sep` (outside parentheses and quotes).
fn split_top(s: &str, sep: char) -> Vec<&str> {
    let (mut depth, mut quoted, mut start) = (0i32, false, 0);
    let mut out = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn strip_parens(s: &str) -> &str {
    let s = s.trim();
    if s.starts_with('(') && s.ends_with(')') && split_top(&s[1..s.len() - 1], ')').len() == 1 {
        strip_parens(&s[1..s.len() - 1])
    } else {
        s
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The index of the `)` matching the `(` at `open`.
fn matching_paren(s: &str, open: usize) -> Option<usize> {
    let (mut depth, mut quoted) = (0i32, false);
    for (i, c) in s[open..].char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_path(s: &str) -> Result<PathExpr, Unsupported> {
    let unsupported = || Unsupported(s.to_owned());
    let s = strip_parens(s);
    // `A.exists() and A != false`
    if let Some((left, right)) = s.split_once(" and ") {
        let p = left
            .trim()
            .strip_suffix(".exists()")
            .ok_or_else(unsupported)?;
        let q = right
            .trim()
            .strip_suffix("!= false")
            .ok_or_else(unsupported)?;
        if p.trim() != q.trim() {
            return Err(unsupported());
        }
        let mut path = parse_path(p)?;
        path.exists_not_false = true;
        return Ok(path);
    }
    // `(inner).steps`
    if s.starts_with('(') {
        let close = matching_paren(s, 0).ok_or_else(unsupported)?;
        let mut path = parse_path(&s[1..close])?;
        let rest = s[close + 1..].trim();
        if !rest.is_empty() {
            let rest = rest.strip_prefix('.').ok_or_else(unsupported)?;
            parse_steps(rest, &mut path.steps).map_err(|()| unsupported())?;
        }
        return Ok(path);
    }
    // `path as Type`
    if let Some((p, t)) = s.rsplit_once(" as ") {
        let mut path = parse_path(p)?;
        let t = t.trim().trim_start_matches("FHIR.");
        if !is_name(t) {
            return Err(unsupported());
        }
        path.steps.push(Step::OfType(t.to_owned()));
        return Ok(path);
    }
    let (base, rest) = s.split_once('.').unwrap_or((s, ""));
    let base = base.trim();
    if !is_name(base) {
        return Err(unsupported());
    }
    let mut steps = Vec::new();
    if !rest.is_empty() {
        parse_steps(rest, &mut steps).map_err(|()| unsupported())?;
    }
    Ok(PathExpr {
        base: base.to_owned(),
        steps,
        exists_not_false: false,
    })
}

/// Parses `a.b[0].where(…).as(T)` steps.
fn parse_steps(s: &str, steps: &mut Vec<Step>) -> Result<(), ()> {
    for part in split_top(s, '.') {
        let part = part.trim();
        if is_name(part) {
            steps.push(Step::Child(part.to_owned()));
            continue;
        }
        // `name[i]`
        if let Some((name, i)) = part.strip_suffix(']').and_then(|p| p.split_once('[')) {
            if !is_name(name) {
                return Err(());
            }
            steps.push(Step::Child(name.to_owned()));
            steps.push(Step::Index(i.trim().parse().map_err(|_| ())?));
            continue;
        }
        let (func, arg) = part
            .strip_suffix(')')
            .and_then(|p| p.split_once('('))
            .ok_or(())?;
        let arg = arg.trim();
        match func {
            "as" | "ofType" if is_name(arg) => steps.push(Step::OfType(arg.to_owned())),
            "where" => {
                if let Some(t) = arg.strip_prefix("resolve() is ") {
                    let t = t.trim().trim_start_matches("FHIR.");
                    if !is_name(t) {
                        return Err(());
                    }
                    steps.push(Step::ResolveIs(t.to_owned()));
                } else if let Some((child, lit)) = arg.split_once('=') {
                    let (child, lit) = (child.trim(), lit.trim());
                    let lit = lit
                        .strip_prefix('\'')
                        .and_then(|l| l.strip_suffix('\''))
                        .ok_or(())?;
                    if !is_name(child) {
                        return Err(());
                    }
                    steps.push(Step::WhereEq(child.to_owned(), lit.to_owned()));
                } else {
                    return Err(());
                }
            }
            _ => return Err(()),
        }
    }
    Ok(())
}

impl Expression {
    /// Compiles the alternatives of `expression` whose base is `rt` (or `Resource`/`DomainResource`).
    pub fn parse(expression: &str, rt: ResourceType) -> Result<Expression, Unsupported> {
        let mut paths = Vec::new();
        for alt in split_top(expression, '|') {
            let alt = alt.trim();
            if alt.is_empty() {
                continue;
            }
            // the base is the first name, possibly inside parentheses
            let base = alt
                .trim_start_matches('(')
                .split(['.', ' ', ')'])
                .next()
                .unwrap_or("");
            if base != rt.as_str() && base != "Resource" && base != "DomainResource" {
                continue;
            }
            paths.push(parse_path(alt)?);
        }
        Ok(Expression { paths })
    }

    /// Evaluates the expression on a resource: the values it selects, in document order per
    /// alternative. `exists() and != false` alternatives select nothing here (see [`extract`]).
    pub fn evaluate<'a>(&self, r: &'a Resource<'a>) -> Vec<&'a Value<'a>> {
        let mut out = Vec::new();
        for p in self.paths.iter().filter(|p| !p.exists_not_false) {
            out.extend(eval_path(p, r));
        }
        out
    }
}

/// One item of a collection being evaluated: the root node or a value.
#[derive(Clone, Copy)]
enum Item<'a> {
    Root(&'a Node<'a>),
    Value(&'a Value<'a>),
}

impl<'a> Item<'a> {
    fn node(self) -> Option<&'a Node<'a>> {
        match self {
            Item::Root(n) | Item::Value(Value::Complex(n)) => Some(n),
            Item::Value(Value::Resource(r)) => Some(&r.node),
            Item::Value(Value::Primitive(_)) => None,
        }
    }
}

fn eval_path<'a>(p: &PathExpr, r: &'a Resource<'a>) -> Vec<&'a Value<'a>> {
    let mut items = vec![Item::Root(&r.node)];
    for step in &p.steps {
        if let Step::Index(i) = step {
            items = items.get(*i).copied().into_iter().collect();
            continue;
        }
        let mut next = Vec::new();
        for it in items {
            match step {
                Step::Child(name) => {
                    if let Some(n) = it.node() {
                        next.extend(n.get(name).iter().map(Item::Value));
                    }
                }
                Step::OfType(t) => {
                    if let Item::Value(v) = it
                        && type_is(v, t)
                    {
                        next.push(it);
                    }
                }
                Step::ResolveIs(t) => {
                    if let Item::Value(v) = it
                        && reference_target(r, v).is_some_and(|rt| rt == t)
                    {
                        next.push(it);
                    }
                }
                Step::Index(_) => {}
                Step::WhereEq(child, lit) => {
                    if it
                        .node()
                        .and_then(|n| n.str(child))
                        .is_some_and(|s| s == lit)
                    {
                        next.push(it);
                    }
                }
            }
        }
        items = next;
    }
    items
        .into_iter()
        .filter_map(|i| match i {
            Item::Value(v) => Some(v),
            Item::Root(_) => None,
        })
        .collect()
}

/// FHIRPath `is`/`as` on a value: its type name, with the Quantity profiles counted as Quantity.
fn type_is(v: &Value<'_>, t: &str) -> bool {
    let name = v.type_id().name();
    name.eq_ignore_ascii_case(t)
        || (t == "Quantity"
            && matches!(
                name,
                "Age" | "Count" | "Distance" | "Duration" | "MoneyQuantity" | "SimpleQuantity"
            ))
}

/// The resource type a Reference points to: a contained resource (`#id`), the type segment of a
/// relative or absolute literal reference (`Patient/1`, `http://x/fhir/Patient/1/_history/2`),
/// or the Reference's `type`.
fn reference_target<'a>(r: &'a Resource<'a>, v: &'a Value<'a>) -> Option<&'a str> {
    let n = v.as_node()?;
    if let Some(reference) = n.str("reference") {
        if let Some(id) = reference.strip_prefix('#') {
            return r.node.get("contained").iter().find_map(|c| match c {
                Value::Resource(c) if c.id() == Some(id) => Some(c.resource_type.as_str()),
                _ => None,
            });
        }
        if let Some((t, _)) = literal_reference(reference) {
            return Some(t);
        }
    }
    n.str("type")
}

/// `[base/]Type/id[/_history/vid]` → (`Type`, `id`) when `Type` is a resource type.
fn literal_reference(reference: &str) -> Option<(&str, &str)> {
    let path = reference.split('?').next()?;
    let path = match path.find("/_history/") {
        Some(i) => &path[..i],
        None => path,
    };
    let mut segs = path.rsplit('/');
    let id = segs.next()?;
    let t = segs.next()?;
    ResourceType::from_name(t).map(|rt| (rt.as_str(), id))
}

/// Precision of a date search value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum DatePrecision {
    Year,
    Month,
    Day,
    /// Hours and minutes (no seconds: only in `Period`s of some instances) or seconds.
    Time,
}

/// The interval a date value stands for (R4 §3.1.1.4.2: a date is an implicit range): bounds
/// as `YYYY-MM-DDThh:mm:ss[.fff][zone]`, `None` for an open end of a Period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRange {
    /// Inclusive lower bound.
    pub low: Option<String>,
    /// Inclusive upper bound.
    pub high: Option<String>,
    /// Precision of the (finer) source value.
    pub precision: DatePrecision,
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The implicit range of a date/dateTime/instant text (already checked by the reader).
fn date_bounds(s: &str) -> Option<(String, String, DatePrecision)> {
    let y: u32 = s.get(..4)?.parse().ok()?;
    match s.len() {
        4 => Some((
            format!("{y:04}-01-01T00:00:00"),
            format!("{y:04}-12-31T23:59:59.999"),
            DatePrecision::Year,
        )),
        7 => {
            let m: u32 = s.get(5..7)?.parse().ok()?;
            Some((
                format!("{s}-01T00:00:00"),
                format!("{s}-{:02}T23:59:59.999", days_in_month(y, m)),
                DatePrecision::Month,
            ))
        }
        10 => Some((
            format!("{s}T00:00:00"),
            format!("{s}T23:59:59.999"),
            DatePrecision::Day,
        )),
        _ => Some((s.to_owned(), s.to_owned(), DatePrecision::Time)),
    }
}

/// A value extracted for a search index.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue<'a> {
    /// `token`: a code with its system (Coding, CodeableConcept codings, Identifier
    /// `system|value`, ContactPoint value, code/boolean/id/string/uri primitives).
    Token {
        /// The code system (Identifier system, Coding system), if any.
        system: Option<&'a str>,
        /// The code or identifier value (`true`/`false` for booleans).
        code: &'a str,
    },
    /// `string`: one string (HumanName and Address parts are indexed one by one).
    String(&'a str),
    /// `date`: the range a date, dateTime, instant, Period or Timing event stands for.
    Date(DateRange),
    /// `reference`: a literal reference, with the target type and id when it is `Type/id`.
    Reference {
        /// The reference as written (`Patient/1`, `#c1`, an absolute URL, a canonical).
        reference: &'a str,
        /// The resource type it points to, when known.
        target: Option<&'a str>,
        /// The logical id for `Type/id` references.
        id: Option<&'a str>,
    },
    /// `quantity`: value text with its unit system and code.
    Quantity {
        /// The decimal text.
        value: &'a str,
        /// The unit system.
        system: Option<&'a str>,
        /// The coded unit.
        code: Option<&'a str>,
        /// The human unit.
        unit: Option<&'a str>,
    },
    /// `number`: the exact decimal/integer text.
    Number(&'a str),
    /// `uri`: a uri, url or canonical.
    Uri(&'a str),
}

fn text<'a>(v: &'a Value<'a>) -> Option<&'a str> {
    match v {
        Value::Primitive(p) => match &p.value {
            Some(PrimValue::Bool(b)) => Some(if *b { "true" } else { "false" }),
            Some(PrimValue::Number(s) | PrimValue::String(s)) => Some(s),
            None => None,
        },
        _ => None,
    }
}

fn push_strings<'a>(n: &'a Node<'a>, names: &[&str], out: &mut Vec<IndexValue<'a>>) {
    for name in names {
        out.extend(n.get(name).iter().filter_map(text).map(IndexValue::String));
    }
}

fn push_date<'a>(v: &'a Value<'a>, out: &mut Vec<IndexValue<'a>>) {
    match v {
        Value::Primitive(_) => {
            if let Some((low, high, precision)) = text(v).and_then(date_bounds) {
                out.push(IndexValue::Date(DateRange {
                    low: Some(low),
                    high: Some(high),
                    precision,
                }));
            }
        }
        Value::Complex(n) => match n.type_id.name() {
            "Period" => {
                let start = n.str("start").and_then(date_bounds);
                let end = n.str("end").and_then(date_bounds);
                let precision = match (&start, &end) {
                    (Some(a), Some(b)) => a.2.max(b.2),
                    (Some(a), None) | (None, Some(a)) => a.2,
                    (None, None) => return,
                };
                out.push(IndexValue::Date(DateRange {
                    low: start.map(|s| s.0),
                    high: end.map(|e| e.1),
                    precision,
                }));
            }
            "Timing" => {
                for e in n.get("event") {
                    push_date(e, out);
                }
                if let Some(r) = n.first("repeat").and_then(Value::as_node) {
                    for b in r.get("boundsPeriod") {
                        push_date(b, out);
                    }
                }
            }
            _ => {}
        },
        Value::Resource(_) => {}
    }
}

fn push_token<'a>(v: &'a Value<'a>, out: &mut Vec<IndexValue<'a>>) {
    let Some(n) = v.as_node() else {
        if let Some(code) = text(v) {
            out.push(IndexValue::Token { system: None, code });
        }
        return;
    };
    match n.type_id.name() {
        "CodeableConcept" => {
            for c in n.get("coding") {
                push_token(c, out);
            }
        }
        // (element holding the code, element holding its system)
        name => {
            let (code, system) = match name {
                "Coding" => ("code", Some("system")),
                "Identifier" => ("value", Some("system")),
                "ContactPoint" => ("value", None),
                _ => return,
            };
            if let Some(code) = n.str(code) {
                out.push(IndexValue::Token {
                    system: system.and_then(|s| n.str(s)),
                    code,
                });
            }
        }
    }
}

fn push_value<'a>(kind: SearchParamType, v: &'a Value<'a>, out: &mut Vec<IndexValue<'a>>) {
    match kind {
        SearchParamType::Token => push_token(v, out),
        SearchParamType::Date => push_date(v, out),
        SearchParamType::String => match v.as_node() {
            None => out.extend(text(v).map(IndexValue::String)),
            Some(n) => match n.type_id.name() {
                "HumanName" => {
                    push_strings(n, &["text", "family", "given", "prefix", "suffix"], out);
                }
                "Address" => push_strings(
                    n,
                    &[
                        "text",
                        "line",
                        "city",
                        "district",
                        "state",
                        "postalCode",
                        "country",
                    ],
                    out,
                ),
                _ => {}
            },
        },
        SearchParamType::Reference => match v.as_node() {
            None => {
                // canonical/uri references
                out.extend(text(v).map(|reference| IndexValue::Reference {
                    reference,
                    target: None,
                    id: None,
                }));
            }
            Some(n) => {
                if let Some(reference) = n.str("reference") {
                    let lit = literal_reference(reference);
                    out.push(IndexValue::Reference {
                        reference,
                        target: lit.map(|l| l.0).or_else(|| n.str("type")),
                        id: lit.map(|l| l.1),
                    });
                }
            }
        },
        SearchParamType::Quantity => {
            if let Some(n) = v.as_node()
                && let Some(value) = n.str("value")
            {
                out.push(IndexValue::Quantity {
                    value,
                    system: n.str("system"),
                    code: n.str("code"),
                    unit: n.str("unit"),
                });
            }
        }
        SearchParamType::Number => out.extend(text(v).map(IndexValue::Number)),
        SearchParamType::Uri => out.extend(text(v).map(IndexValue::Uri)),
        SearchParamType::Composite | SearchParamType::Special => {}
    }
}

/// Compiled expressions, per (resource type, parameter): parsing a SearchParameter's FHIRPath
/// text costs more than evaluating it, and a server indexes every parameter of every write.
fn compiled(
    param: &'static SearchParamDef,
    rt: ResourceType,
) -> Result<std::sync::Arc<Expression>, Unsupported> {
    use std::collections::HashMap;
    use std::sync::{Arc, OnceLock, RwLock};
    type Key = (ResourceType, usize);
    type Compiled = Result<Arc<Expression>, Unsupported>;
    static CACHE: OnceLock<RwLock<HashMap<Key, Compiled>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (rt, std::ptr::from_ref(param) as usize);
    if let Some(hit) = cache
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
    {
        return hit.clone();
    }
    let e = Expression::parse(param.expression, rt).map(Arc::new);
    cache
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, e.clone());
    e
}

/// The index values of one search parameter on a resource (empty for composite and special
/// parameters, which have no single-path value).
pub fn extract<'a>(
    r: &'a Resource<'a>,
    param: &'static SearchParamDef,
) -> Result<Vec<IndexValue<'a>>, Unsupported> {
    let mut out = Vec::new();
    if matches!(
        param.kind,
        SearchParamType::Composite | SearchParamType::Special
    ) || param.expression.is_empty()
    {
        return Ok(out);
    }
    let expr = compiled(param, r.resource_type)?;
    for p in &expr.paths {
        let values = eval_path(p, r);
        if p.exists_not_false {
            // true when present and not `false` (e.g. Patient.deceased[x])
            let truthy = values.iter().any(
                |v| !matches!(v, Value::Primitive(pr) if pr.value == Some(PrimValue::Bool(false))),
            );
            out.push(IndexValue::Token {
                system: None,
                code: if truthy { "true" } else { "false" },
            });
            continue;
        }
        for v in values {
            if matches!(v.type_id().def().kind, TypeKind::AbstractResource) {
                continue;
            }
            push_value(param.kind, v, &mut out);
        }
    }
    Ok(out)
}

/// Every search parameter of the resource's type with the values it indexes (parameters that
/// select nothing are left out); expressions outside the supported subset are returned apart.
pub fn index<'a>(
    r: &'a Resource<'a>,
) -> (
    Vec<(&'static SearchParamDef, Vec<IndexValue<'a>>)>,
    Vec<Unsupported>,
) {
    let (mut found, mut unsupported) = (Vec::new(), Vec::new());
    for p in search_params(r.resource_type) {
        match extract(r, p) {
            Ok(v) if v.is_empty() => {}
            Ok(v) => found.push((p, v)),
            Err(e) => unsupported.push(e),
        }
    }
    (found, unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subset() {
        let e = Expression::parse(
            "AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | Patient.link.other",
            ResourceType::Patient,
        )
        .unwrap();
        assert_eq!(e.paths.len(), 1);
        assert_eq!(
            e.paths[0].steps,
            [Step::Child("link".into()), Step::Child("other".into())]
        );
        let e = Expression::parse("(Patient.deceased as dateTime)", ResourceType::Patient).unwrap();
        assert_eq!(
            e.paths[0].steps,
            [
                Step::Child("deceased".into()),
                Step::OfType("dateTime".into())
            ]
        );
        let e = Expression::parse(
            "Patient.deceased.exists() and Patient.deceased != false",
            ResourceType::Patient,
        )
        .unwrap();
        assert!(e.paths[0].exists_not_false);
        assert!(Expression::parse("Patient.name.select(given)", ResourceType::Patient).is_err());
        assert_eq!(
            literal_reference("http://x/fhir/Patient/1/_history/2"),
            Some(("Patient", "1"))
        );
        assert_eq!(literal_reference("urn:uuid:1234"), None);
    }

    #[test]
    fn every_generated_expression_is_in_the_subset() {
        let mut n = 0;
        for rt in ResourceType::all() {
            for p in search_params(rt).filter(|p| {
                !p.expression.is_empty()
                    && !matches!(
                        p.kind,
                        SearchParamType::Composite | SearchParamType::Special
                    )
            }) {
                n += 1;
                if let Err(e) = Expression::parse(p.expression, rt) {
                    panic!("{rt} {}: {e}", p.code);
                }
            }
        }
        // (resource type, parameter) pairs of all 146 resources
        assert_eq!(n, 2500);
        let e = Expression::parse(
            "(Observation.value as string) | (Observation.value as CodeableConcept).text",
            ResourceType::Observation,
        )
        .unwrap();
        assert_eq!(
            e.paths[1].steps,
            [
                Step::Child("value".into()),
                Step::OfType("CodeableConcept".into()),
                Step::Child("text".into())
            ]
        );
        let e = Expression::parse("Bundle.entry[0].resource", ResourceType::Bundle).unwrap();
        assert_eq!(e.paths[0].steps[1], Step::Index(0));
    }

    #[test]
    fn date_ranges() {
        assert_eq!(
            date_bounds("2024-02"),
            Some((
                "2024-02-01T00:00:00".into(),
                "2024-02-29T23:59:59.999".into(),
                DatePrecision::Month
            ))
        );
        assert_eq!(date_bounds("1900-02").unwrap().1, "1900-02-28T23:59:59.999");
        assert_eq!(date_bounds("2024").unwrap().2, DatePrecision::Year);
        assert_eq!(
            date_bounds("2024-01-02T10:00:00Z").unwrap().0,
            "2024-01-02T10:00:00Z"
        );
    }
}
