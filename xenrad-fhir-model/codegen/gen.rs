//! The code generator: reads the StructureDefinitions, SearchParameters and ValueSet expansions of
//! the official FHIR R4 package and writes `src/generated/defs.rs`, the descriptor tables the
//! table-driven model runs on.
//!
//! It is included by `tests/codegen.rs`, which regenerates into memory and fails when the committed
//! file differs (`XENRAD_FHIR_REGEN=1` rewrites it). No per-struct code is generated: one static
//! table per type keeps the crate's compile time in seconds instead of minutes.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

fn load(dir: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn entries(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
}

struct Elem {
    name: String,
    min: u64,
    max: String,
    types: Vec<String>,
    choice: bool,
    plain: bool,
    binding: Option<String>,
    summary: bool,
    short: String,
}

struct Ty {
    name: String,
    kind: String,
    elems: Vec<Elem>,
}

/// The types of the package (in table order), the concrete resource names, and the value-set
/// expansions (url -> codes, systems).
struct Collected {
    types: Vec<Ty>,
    resources: Vec<String>,
    expansions: HashMap<String, Expansion>,
}

const PRIMS: &[(&str, &str)] = &[
    ("base64Binary", "Base64Binary"),
    ("boolean", "Boolean"),
    ("canonical", "Canonical"),
    ("code", "Code"),
    ("date", "Date"),
    ("dateTime", "DateTime"),
    ("decimal", "Decimal"),
    ("id", "Id"),
    ("instant", "Instant"),
    ("integer", "Integer"),
    ("markdown", "Markdown"),
    ("oid", "Oid"),
    ("positiveInt", "PositiveInt"),
    ("string", "String"),
    ("time", "Time"),
    ("unsignedInt", "UnsignedInt"),
    ("uri", "Uri"),
    ("url", "Url"),
    ("uuid", "Uuid"),
    ("xhtml", "Xhtml"),
];

fn collect_codes(contains: &Value, exp: &mut Expansion) {
    for c in contains.as_array().into_iter().flatten() {
        if let Some(code) = c["code"].as_str()
            && c["abstract"].as_bool() != Some(true)
        {
            exp.codes.insert(code.to_owned());
            if let Some(s) = c["system"].as_str() {
                exp.systems.insert(s.to_owned());
                exp.pairs.insert((s.to_owned(), code.to_owned()));
            }
        }
        collect_codes(&c["contains"], exp);
    }
}

/// What a required binding's value set allows: enumerated codes (from the package's expansion)
/// or a syntax rule for a grammar-defined system.
#[derive(Default)]
struct Expansion {
    codes: BTreeSet<String>,
    systems: BTreeSet<String>,
    /// (system, code)
    pairs: BTreeSet<(String, String)>,
    /// `CodeRule` variant for value sets that include a whole grammar-defined system.
    rule: Option<&'static str>,
}

/// Systems defined by a grammar rather than a list, with the `CodeRule` that checks them.
const GRAMMAR_SYSTEMS: &[(&str, &str)] = &[("urn:ietf:bcp:13", "MimeType")];

fn lit(s: &str) -> String {
    format!("{s:?}")
}

/// Reads the StructureDefinitions and value-set expansions of an unpacked package directory.
fn collect(dir: &Path) -> Collected {
    let types_bundle = load(dir, "Bundle-types.json");
    let res_bundle = load(dir, "Bundle-resources.json");
    let vs_bundle = load(dir, "Bundle-valueset-expansions.json");

    // value-set expansions (enumerable required bindings)
    let mut expansions: HashMap<String, Expansion> = HashMap::new();
    for vs in entries(&vs_bundle) {
        if let (Some(url), Some(exp)) = (vs["url"].as_str(), vs.get("expansion")) {
            let mut e = Expansion::default();
            collect_codes(&exp["contains"], &mut e);
            if !e.codes.is_empty() {
                expansions.insert(url.to_owned(), e);
            }
        }
    }
    // value sets without an expansion that include a whole grammar-defined system (BCP 13 MIME
    // types): checked by syntax
    for vs in entries(&load(dir, "Bundle-valuesets.json")) {
        let Some(url) = vs["url"].as_str() else {
            continue;
        };
        let includes = vs["compose"]["include"].as_array();
        let rules: Vec<Option<&'static str>> = includes
            .into_iter()
            .flatten()
            .map(|i| {
                let whole = i.get("concept").is_none() && i.get("filter").is_none();
                GRAMMAR_SYSTEMS
                    .iter()
                    .find(|g| whole && i["system"].as_str() == Some(g.0))
                    .map(|g| g.1)
            })
            .collect();
        if !expansions.contains_key(url)
            && rules.len() == 1
            && let Some(rule) = rules[0]
        {
            let mut e = Expansion {
                rule: Some(rule),
                ..Expansion::default()
            };
            e.systems.insert(
                GRAMMAR_SYSTEMS
                    .iter()
                    .find(|g| g.1 == rule)
                    .map(|g| g.0.to_owned())
                    .unwrap_or_default(),
            );
            expansions.insert(url.to_owned(), e);
        }
    }

    let mut types: Vec<Ty> = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    let sds: Vec<&Value> = entries(&types_bundle)
        .chain(entries(&res_bundle))
        .filter(|r| r["resourceType"] == "StructureDefinition" && r["derivation"] != "constraint")
        .collect();
    for sd in &sds {
        let name = sd["type"].as_str().expect("type").to_owned();
        let kind = sd["kind"].as_str().expect("kind");
        let abstract_ = sd["abstract"].as_bool() == Some(true);
        if kind == "primitive-type" {
            let variant = PRIMS
                .iter()
                .find(|p| p.0 == name)
                .expect("known primitive")
                .1;
            types.push(Ty {
                name,
                kind: format!("Primitive(PrimKind::{variant})"),
                elems: vec![],
            });
            continue;
        }
        let is_resource = kind == "resource";
        if is_resource && !abstract_ {
            resources.push(name.clone());
        }
        let tkind = match (is_resource, abstract_) {
            (true, true) => "AbstractResource",
            (true, false) => "Resource",
            (false, _) => "Complex",
        };
        let elements = sd["snapshot"]["element"].as_array().expect("snapshot");
        let paths: Vec<&str> = elements
            .iter()
            .map(|e| e["path"].as_str().expect("path"))
            .collect();
        // owner path -> index in `types`
        let mut owners: BTreeMap<String, usize> = BTreeMap::new();
        owners.insert(name.clone(), types.len());
        types.push(Ty {
            name: name.clone(),
            kind: tkind.to_owned(),
            elems: vec![],
        });
        for (i, el) in elements.iter().enumerate().skip(1) {
            let path = paths[i];
            let (parent, last) = path.rsplit_once('.').expect("child path");
            let Some(&owner) = owners.get(parent) else {
                continue;
            };
            let has_children = paths
                .get(i + 1)
                .is_some_and(|n| n.starts_with(&format!("{path}.")));
            let choice = last.ends_with("[x]");
            let ename = last.trim_end_matches("[x]").to_owned();
            let mut tys = Vec::new();
            let mut plain = false;
            if has_children {
                owners.insert(path.to_owned(), types.len());
                types.push(Ty {
                    name: path.to_owned(),
                    kind: "Backbone".into(),
                    elems: vec![],
                });
                tys.push(path.to_owned());
            } else if let Some(cr) = el["contentReference"].as_str() {
                tys.push(cr.trim_start_matches('#').to_owned());
            } else {
                for t in el["type"].as_array().into_iter().flatten() {
                    let code = t["code"].as_str().expect("code");
                    if code.starts_with("http://hl7.org/fhirpath/System.") {
                        if is_resource && parent == name && ename == "id" {
                            tys.push("id".into());
                        } else {
                            plain = true;
                            tys.push("string".into());
                        }
                    } else {
                        tys.push(code.to_owned());
                    }
                }
            }
            let binding = el["binding"]
                .as_object()
                .filter(|b| b.get("strength").and_then(Value::as_str) == Some("required"))
                .and_then(|b| b.get("valueSet").and_then(Value::as_str))
                .map(|u| u.split('|').next().unwrap_or(u).to_owned())
                .filter(|u| {
                    expansions.contains_key(u)
                        && tys
                            .iter()
                            .all(|t| matches!(t.as_str(), "code" | "Coding" | "CodeableConcept"))
                });
            types[owner].elems.push(Elem {
                name: ename,
                min: el["min"].as_u64().unwrap_or(0),
                max: el["max"].as_str().unwrap_or("*").to_owned(),
                types: tys,
                choice,
                plain,
                binding,
                summary: el["isSummary"].as_bool().unwrap_or(false),
                short: el["short"].as_str().unwrap_or("").to_owned(),
            });
        }
    }
    Collected {
        types,
        resources,
        expansions,
    }
}

/// Type name → position in the type table.
fn type_index(types: &[Ty]) -> HashMap<&str, usize> {
    types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect()
}

/// Generates the text of `src/generated/defs.rs` from an unpacked package directory.
pub fn generate(dir: &Path) -> String {
    let Collected {
        types,
        resources,
        expansions,
    } = collect(dir);
    let sp_bundle = load(dir, "Bundle-searchParams.json");
    let index = type_index(&types);
    let mut bindings: BTreeMap<String, usize> = BTreeMap::new();
    for t in &types {
        for e in &t.elems {
            if let Some(b) = &e.binding {
                let n = bindings.len();
                bindings.entry(b.clone()).or_insert(n);
            }
        }
    }

    let mut o = String::new();
    o.push_str("// @generated by xenrad-fhir-model/codegen/gen.rs from hl7.fhir.r4.examples-4.0.1 -- do not edit.\n");
    o.push_str(
        "// Regenerate: XENRAD_FHIR_REGEN=1 cargo test -p xenrad-fhir-model --test codegen\n",
    );
    o.push_str("#![allow(clippy::unreadable_literal, clippy::too_many_lines)]\n");
    o.push_str("use crate::schema::{CodeRule, ElementDef as E, PrimKind, SearchParamDef, SearchParamType as S, TypeDef, TypeId, TypeKind, ValueSetDef};\n\n");

    // value sets
    let mut vs_sorted: Vec<(&String, &usize)> = bindings.iter().collect();
    vs_sorted.sort_by_key(|(_, i)| **i);
    for (url, i) in &vs_sorted {
        let e = &expansions[*url];
        let list: Vec<String> = e.codes.iter().map(|c| lit(c)).collect();
        let sys: Vec<String> = e.systems.iter().map(|c| lit(c)).collect();
        // exact (system, code) pairs only where several systems share the value set
        let by_system: Vec<String> = if e.systems.len() > 1 {
            e.systems
                .iter()
                .map(|s| {
                    let codes: Vec<String> = e
                        .pairs
                        .iter()
                        .filter(|p| &p.0 == s)
                        .map(|p| lit(&p.1))
                        .collect();
                    format!("({}, &[{}])", lit(s), codes.join(", "))
                })
                .collect()
        } else {
            Vec::new()
        };
        let rule = e
            .rule
            .map_or("None".to_owned(), |r| format!("Some(CodeRule::{r})"));
        let _ = writeln!(
            o,
            "static VS{i}: ValueSetDef = ValueSetDef {{ url: {}, codes: &[{}], systems: &[{}], by_system: &[{}], rule: {rule} }};",
            lit(url),
            list.join(", "),
            sys.join(", "),
            by_system.join(", ")
        );
    }
    o.push('\n');

    // types
    let _ = writeln!(
        o,
        "/// Every type of the model (primitives, data types, resources, backbone elements), by [`TypeId`]."
    );
    let _ = writeln!(o, "pub static TYPES: [TypeDef; {}] = [", types.len());
    for (ti, t) in types.iter().enumerate() {
        let _ = writeln!(
            o,
            "    // {ti}\n    TypeDef {{ name: {}, kind: TypeKind::{}, elements: &[",
            lit(&t.name),
            t.kind
        );
        for e in &t.elems {
            let ids: Vec<String> = e
                .types
                .iter()
                .map(|n| {
                    format!(
                        "TypeId({})",
                        index
                            .get(n.as_str())
                            .unwrap_or_else(|| panic!("type {n} in {}", t.name))
                    )
                })
                .collect();
            let max = if e.max == "*" {
                "u32::MAX".to_owned()
            } else {
                e.max.clone()
            };
            let binding = e
                .binding
                .as_ref()
                .map_or("None".to_owned(), |b| format!("Some(&VS{})", bindings[b]));
            let _ = writeln!(
                o,
                "        E {{ name: {}, min: {}, max: {max}, types: &[{}], choice: {}, plain: {}, binding: {binding}, summary: {} }},",
                lit(&e.name),
                e.min,
                ids.join(", "),
                e.choice,
                e.plain,
                e.summary
            );
        }
        // elements whose cardinality a reader must check: required ones and bounded repeats
        let checked: Vec<String> = t
            .elems
            .iter()
            .enumerate()
            .filter(|(_, e)| e.min > 0 || (e.max != "1" && e.max != "*"))
            .map(|(i, _)| i.to_string())
            .collect();
        let _ = writeln!(o, "    ], checked: &[{}] }},", checked.join(", "));
    }
    o.push_str("];\n\n");

    // name index, sorted for binary search
    let mut names: Vec<(&str, usize)> = types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    names.sort_unstable();
    let _ = writeln!(
        o,
        "/// Type names sorted for binary search, with their [`TypeId`]."
    );
    let _ = writeln!(
        o,
        "pub static TYPE_NAMES: [(&str, TypeId); {}] = [",
        names.len()
    );
    for (n, i) in &names {
        let _ = writeln!(o, "    ({}, TypeId({i})),", lit(n));
    }
    o.push_str("];\n\n");

    // resource type enum
    let _ = writeln!(o, "/// The 146 concrete resource types of FHIR R4 (4.0.1).");
    o.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum ResourceType {\n");
    for r in &resources {
        let _ = writeln!(o, "    /// `{r}`\n    {r},");
    }
    o.push_str("}\n\n");
    let _ = writeln!(
        o,
        "/// Every resource type with its [`TypeId`], in declaration order."
    );
    let _ = writeln!(
        o,
        "pub(crate) static RESOURCE_TYPES: [(ResourceType, &str, TypeId); {}] = [",
        resources.len()
    );
    for r in &resources {
        let _ = writeln!(
            o,
            "    (ResourceType::{r}, {}, TypeId({})),",
            lit(r),
            index[r.as_str()]
        );
    }
    o.push_str("];\n\n");

    // search parameters
    let mut sps: Vec<String> = Vec::new();
    let mut by_resource: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for sp in entries(&sp_bundle).filter(|r| r["resourceType"] == "SearchParameter") {
        let s = |k: &str| sp[k].as_str().unwrap_or("").to_owned();
        let list = |k: &str| -> Vec<String> {
            sp[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(lit)
                .collect()
        };
        let kind = match s("type").as_str() {
            "number" => "Number",
            "date" => "Date",
            "string" => "String",
            "token" => "Token",
            "reference" => "Reference",
            "composite" => "Composite",
            "quantity" => "Quantity",
            "uri" => "Uri",
            "special" => "Special",
            other => panic!("search param type {other}"),
        };
        let comps: Vec<String> = sp["component"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["definition"].as_str())
            .map(lit)
            .collect();
        let i = sps.len();
        for b in sp["base"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            by_resource.entry(b.to_owned()).or_default().push(i);
        }
        sps.push(format!(
            "    SearchParamDef {{ code: {}, url: {}, kind: S::{kind}, expression: {}, base: &[{}], target: &[{}], components: &[{}] }},",
            lit(&s("code")),
            lit(&s("url")),
            lit(&s("expression")),
            list("base").join(", "),
            list("target").join(", "),
            comps.join(", ")
        ));
    }
    let _ = writeln!(
        o,
        "/// The 1,375 SearchParameters of FHIR R4, from `Bundle-searchParams.json`."
    );
    let _ = writeln!(
        o,
        "pub static SEARCH_PARAMS: [SearchParamDef; {}] = [",
        sps.len()
    );
    for l in &sps {
        o.push_str(l);
        o.push('\n');
    }
    o.push_str("];\n\n");
    let _ = writeln!(
        o,
        "/// Search parameters per base type name (sorted), as indexes into [`SEARCH_PARAMS`]."
    );
    let _ = writeln!(
        o,
        "pub static SEARCH_BY_BASE: [(&str, &[u16]); {}] = [",
        by_resource.len()
    );
    for (b, v) in &by_resource {
        let l: Vec<String> = v.iter().map(ToString::to_string).collect();
        let _ = writeln!(o, "    ({}, &[{}]),", lit(b), l.join(", "));
    }
    o.push_str("];\n");
    o
}

// ---------------------------------------------------------------------------------------------
// Typed views: one zero-cost struct per complex type, backbone element and resource over the
// generic `Node`, one enum per choice element, and `AnyResource` for resource dispatch.

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Names the hand-written `typed` module defines; generated names must not take them.
const RESERVED: &[&str] = &[
    "Prim",
    "Many",
    "FromValue",
    "View",
    "ResourceView",
    "AnyResource",
];

/// `Patient.contact` → `PatientContact`; `dateTime` → `DateTime`.
fn struct_name(type_name: &str) -> String {
    type_name.split('.').map(upper_first).collect()
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// `birthDate` → `birth_date`; keywords become raw identifiers (`r#type`).
fn method_name(element: &str) -> String {
    let mut out = String::new();
    for (i, ch) in element.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    if KEYWORDS.contains(&out.as_str()) {
        format!("r#{out}")
    } else {
        out
    }
}

/// Markdown-safe one-line text for a doc comment (URLs made autolinks).
fn doc_text(s: &str) -> String {
    let escape = |w: &str| {
        w.replace('\\', "\\\\")
            .replace('`', "'")
            .replace('[', "\\[")
            .replace(']', "\\]")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    s.split_whitespace()
        .map(|w| {
            let lead = w.len() - w.trim_start_matches('(').len();
            let body = &w[lead..];
            if body.starts_with("http://") || body.starts_with("https://") {
                let url = body.trim_end_matches([')', ',', '.', ';']);
                format!("{}<{url}>{}", &w[..lead], escape(&body[url.len()..]))
            } else {
                escape(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Rust type of one value of type `t` (`plain` = a plain JSON string without `_` sibling).
fn view_type(types: &[Ty], index: &HashMap<&str, usize>, t: &str, plain: bool) -> String {
    if plain {
        return "&'a str".into();
    }
    let ty = &types[index[t]];
    if let Some(p) = PRIMS.iter().find(|p| p.0 == t) {
        format!("Prim<'a, prim::{}>", p.1)
    } else if ty.kind == "AbstractResource" {
        "AnyResource<'a>".into()
    } else {
        format!("{}<'a>", struct_name(t))
    }
}

fn has_view(t: &Ty) -> bool {
    matches!(t.kind.as_str(), "Complex" | "Resource" | "Backbone")
}

/// The view name of a choice element's enum (`Observation.value[x]` → `ObservationValue`).
fn choice_name(owner: &str, element: &str) -> String {
    struct_name(owner) + &upper_first(element)
}

/// Checks that generated Rust names are unique and do not shadow the hand-written ones.
fn check_names(types: &[Ty]) {
    let mut seen: BTreeSet<String> = RESERVED.iter().map(|s| (*s).to_owned()).collect();
    for t in types.iter().filter(|t| has_view(t)) {
        assert!(seen.insert(struct_name(&t.name)), "name clash: {}", t.name);
        for e in t.elems.iter().filter(|e| e.choice) {
            let n = choice_name(&t.name, &e.name);
            assert!(seen.insert(n.clone()), "name clash: {n}");
        }
    }
}

/// Generates `src/generated/views.rs`: the typed, borrowed views of every type.
pub fn generate_views(dir: &Path) -> String {
    let Collected {
        types, resources, ..
    } = collect(dir);
    check_names(&types);
    let index = type_index(&types);
    let mut o = String::new();
    o.push_str("// @generated by xenrad-fhir-model/codegen/gen.rs from hl7.fhir.r4.examples-4.0.1 -- do not edit.\n");
    o.push_str(
        "// Regenerate: XENRAD_FHIR_REGEN=1 cargo test -p xenrad-fhir-model --test codegen\n",
    );
    o.push_str("#![allow(clippy::must_use_candidate, clippy::too_many_lines, clippy::doc_markdown, clippy::match_same_arms, clippy::enum_variant_names, clippy::large_enum_variant)]\n");
    o.push_str("use super::{AnyResource, FromValue, Many, Prim, many, one, prim};\n");
    o.push_str("use crate::generated::ResourceType;\n\n");

    for (ti, t) in types.iter().enumerate().filter(|(_, t)| has_view(t)) {
        let sn = struct_name(&t.name);
        let what = match t.kind.as_str() {
            "Resource" => "resource",
            "Backbone" => "backbone element",
            _ => "data type",
        };
        let _ = writeln!(
            o,
            "/// `{}` ({what}): a borrowed view of a [`Node`](crate::Node) of this type.",
            t.name
        );
        let _ = writeln!(
            o,
            "#[derive(Debug, Clone, Copy)]\npub struct {sn}<'a>(pub(crate) &'a crate::Node<'a>);"
        );
        if t.kind == "Resource" {
            let _ = writeln!(o, "super::resource_view!({sn}, {ti});");
        } else {
            let _ = writeln!(o, "super::view!({sn}, {ti});");
        }
        let _ = writeln!(o, "impl<'a> {sn}<'a> {{");
        for (ei, e) in t.elems.iter().enumerate() {
            let ty = if e.choice {
                choice_name(&t.name, &e.name) + "<'a>"
            } else {
                view_type(&types, &index, &e.types[0], e.plain)
            };
            let max = if e.max == "*" { "*" } else { e.max.as_str() };
            let suffix = if e.choice { "[x]" } else { "" };
            let _ = writeln!(
                o,
                "    /// `{}.{}{suffix}` ({}..{max}): {}",
                t.name,
                e.name,
                e.min,
                doc_text(&e.short)
            );
            let m = method_name(&e.name);
            if e.max == "1" || e.max == "0" {
                let _ = writeln!(
                    o,
                    "    #[inline]\n    pub fn {m}(&self) -> Option<{ty}> {{ one(self.0, {ei}) }}"
                );
            } else {
                let _ = writeln!(
                    o,
                    "    #[inline]\n    pub fn {m}(&self) -> Many<'a, {ty}> {{ many(self.0, {ei}) }}"
                );
            }
        }
        o.push_str("}\n");
        for e in t.elems.iter().filter(|e| e.choice) {
            let en = choice_name(&t.name, &e.name);
            let _ = writeln!(
                o,
                "/// `{}.{}[x]`: the value of the choice element, by type.",
                t.name, e.name
            );
            let _ = writeln!(o, "#[derive(Debug, Clone, Copy)]\npub enum {en}<'a> {{");
            for ty in &e.types {
                let _ = writeln!(
                    o,
                    "    /// `{}{}`\n    {}({}),",
                    e.name,
                    upper_first(ty),
                    upper_first(ty),
                    view_type(&types, &index, ty, false)
                );
            }
            o.push_str("}\n");
            let _ = writeln!(o, "impl<'a> FromValue<'a> for {en}<'a> {{");
            o.push_str("    #[inline]\n    fn from_value(v: &'a crate::Value<'a>) -> Option<Self> {\n        Some(match v.type_id().0 {\n");
            for ty in &e.types {
                let _ = writeln!(
                    o,
                    "            {} => Self::{}(FromValue::from_value(v)?),",
                    index[ty.as_str()],
                    upper_first(ty)
                );
            }
            o.push_str("            _ => return None,\n        })\n    }\n}\n");
        }
        o.push('\n');
    }

    // resource dispatch
    o.push_str("/// Any resource, by type ([`AnyResource::kind`]; the type comes from `resourceType`, read once while parsing).\n");
    o.push_str("#[derive(Debug, Clone, Copy)]\npub enum AnyResourceKind<'a> {\n");
    for r in &resources {
        let _ = writeln!(o, "    /// `{r}`\n    {r}({r}<'a>),");
    }
    o.push_str("}\n\n");
    o.push_str("impl<'a> AnyResource<'a> {\n    /// The typed view of this resource.\n    #[inline]\n    pub fn kind(&self) -> AnyResourceKind<'a> {\n        let n = &self.0.node;\n        match self.0.resource_type {\n");
    for r in &resources {
        let _ = writeln!(
            o,
            "            ResourceType::{r} => AnyResourceKind::{r}({r}(n)),"
        );
    }
    o.push_str("        }\n    }\n}\n");
    o
}

/// Generates `tests/typed/walk.rs`: a walk through every accessor of every view, counting the
/// values it reaches (the test compares the count with the generic model's).
pub fn generate_walk(dir: &Path) -> String {
    let Collected {
        types, resources, ..
    } = collect(dir);
    let index = type_index(&types);
    let mut o = String::new();
    o.push_str("// @generated by xenrad-fhir-model/codegen/gen.rs from hl7.fhir.r4.examples-4.0.1 -- do not edit.\n");
    o.push_str("// Calls every accessor of every typed view; counts the values reached.\n");
    o.push_str("#![allow(non_snake_case, dead_code, clippy::all, clippy::pedantic)]\n");
    o.push_str("use xenrad_fhir_model::typed::*;\n\n");
    // how to walk one value of type `t` bound to `x`
    let walk_one = |t: &str, plain: bool| -> String {
        if plain {
            return "*c += 1; let _: &str = x;".into();
        }
        let ty = &types[index[t]];
        if PRIMS.iter().any(|p| p.0 == t) {
            "walk_prim(x, c);".into()
        } else if ty.kind == "AbstractResource" {
            "*c += 1; walk_any(x, c);".into()
        } else {
            format!("*c += 1; walk_{}(x, c);", struct_name(t))
        }
    };
    o.push_str("fn walk_prim<K>(x: Prim<'_, K>, c: &mut usize) {\n    *c += 1;\n    let _ = x.text();\n    if let Some(e) = x.element() {\n        *c += 1;\n        walk_Element(e, c);\n    }\n}\n\n");
    o.push_str("/// Walks any resource (not counted itself).\npub fn walk_any(r: AnyResource<'_>, c: &mut usize) {\n    match r.kind() {\n");
    for r in &resources {
        let _ = writeln!(o, "        AnyResourceKind::{r}(v) => walk_{r}(v, c),");
    }
    o.push_str("    }\n}\n\n");
    for t in types.iter().filter(|t| has_view(t)) {
        let sn = struct_name(&t.name);
        let _ = writeln!(o, "fn walk_{sn}(v: {sn}<'_>, c: &mut usize) {{");
        for e in &t.elems {
            let m = method_name(&e.name);
            let body = if e.choice {
                let en = choice_name(&t.name, &e.name);
                let mut s = String::from("match x {");
                for ty in &e.types {
                    let _ = write!(
                        s,
                        " {en}::{}(x) => {{ {} }}",
                        upper_first(ty),
                        walk_one(ty, false)
                    );
                }
                s.push_str(" }");
                s
            } else {
                walk_one(&e.types[0], e.plain)
            };
            if e.max == "1" || e.max == "0" {
                let _ = writeln!(o, "    if let Some(x) = v.{m}() {{ {body} }}");
            } else {
                let _ = writeln!(o, "    for x in v.{m}() {{ {body} }}");
            }
        }
        o.push_str("}\n\n");
    }
    o
}
