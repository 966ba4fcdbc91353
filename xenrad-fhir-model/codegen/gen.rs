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
}

struct Ty {
    name: String,
    kind: String,
    elems: Vec<Elem>,
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

fn collect_codes(contains: &Value, out: &mut BTreeSet<String>, systems: &mut BTreeSet<String>) {
    for c in contains.as_array().into_iter().flatten() {
        if let Some(code) = c["code"].as_str()
            && c["abstract"].as_bool() != Some(true)
        {
            out.insert(code.to_owned());
            if let Some(s) = c["system"].as_str() {
                systems.insert(s.to_owned());
            }
        }
        collect_codes(&c["contains"], out, systems);
    }
}

fn lit(s: &str) -> String {
    format!("{s:?}")
}

/// Generates the text of `src/generated/defs.rs` from an unpacked package directory.
pub fn generate(dir: &Path) -> String {
    let types_bundle = load(dir, "Bundle-types.json");
    let res_bundle = load(dir, "Bundle-resources.json");
    let sp_bundle = load(dir, "Bundle-searchParams.json");
    let vs_bundle = load(dir, "Bundle-valueset-expansions.json");

    // value-set expansions (enumerable required bindings)
    let mut expansions: HashMap<String, (BTreeSet<String>, BTreeSet<String>)> = HashMap::new();
    for vs in entries(&vs_bundle) {
        if let (Some(url), Some(exp)) = (vs["url"].as_str(), vs.get("expansion")) {
            let (mut codes, mut systems) = (BTreeSet::new(), BTreeSet::new());
            collect_codes(&exp["contains"], &mut codes, &mut systems);
            if !codes.is_empty() {
                expansions.insert(url.to_owned(), (codes, systems));
            }
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
            });
        }
    }
    let index: HashMap<&str, usize> = types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
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
    o.push_str("use crate::schema::{ElementDef as E, PrimKind, SearchParamDef, SearchParamType as S, TypeDef, TypeId, TypeKind, ValueSetDef};\n\n");

    // value sets
    let mut vs_sorted: Vec<(&String, &usize)> = bindings.iter().collect();
    vs_sorted.sort_by_key(|(_, i)| **i);
    for (url, i) in &vs_sorted {
        let (codes, systems) = &expansions[*url];
        let list: Vec<String> = codes.iter().map(|c| lit(c)).collect();
        let sys: Vec<String> = systems.iter().map(|c| lit(c)).collect();
        let _ = writeln!(
            o,
            "static VS{i}: ValueSetDef = ValueSetDef {{ url: {}, codes: &[{}], systems: &[{}] }};",
            lit(url),
            list.join(", "),
            sys.join(", ")
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
                "        E {{ name: {}, min: {}, max: {max}, types: &[{}], choice: {}, plain: {}, binding: {binding} }},",
                lit(&e.name),
                e.min,
                ids.join(", "),
                e.choice,
                e.plain
            );
        }
        o.push_str("    ] },\n");
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
