//! Layer 4: the JSON writer. Members come out in specification order (the element order of the
//! StructureDefinition, FHIR R4 JSON §1.2 "should"), primitives with their `_name` siblings,
//! decimals with their exact text, unknown members kept in lenient mode at the end.

use crate::json::{Json, write_str};
use crate::model::{Node, PrimValue, Resource, Value};

/// Serialises a resource as compact JSON.
pub fn to_json(r: &Resource<'_>) -> String {
    let mut out = String::with_capacity(256);
    write_resource(&mut out, r);
    out
}

/// Serialises a resource as indented JSON (two spaces).
pub fn to_json_pretty(r: &Resource<'_>) -> String {
    let compact = to_json(r);
    match crate::json::parse(compact.as_bytes(), u32::MAX) {
        Ok(v) => {
            let mut out = String::with_capacity(compact.len() * 2);
            pretty(&mut out, &v, 0);
            out
        }
        Err(_) => compact,
    }
}

/// Appends a resource's JSON to `out`.
pub fn write_resource(out: &mut String, r: &Resource<'_>) {
    write_node(out, &r.node, Some(r.resource_type.as_str()));
}

/// Appends a node's JSON object to `out`; `resource_type` adds the `resourceType` member first.
pub fn write_node(out: &mut String, node: &Node<'_>, resource_type: Option<&str>) {
    out.push('{');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push(',');
        }
        first = false;
    };
    if let Some(rt) = resource_type {
        sep(out);
        out.push_str("\"resourceType\":");
        write_str(out, rt);
    }
    for f in &node.fields {
        let e = node.element_def(f.index);
        let prim = matches!(f.values.first(), Some(Value::Primitive(_)));
        if prim {
            let prims = f.values.iter().filter_map(|v| match v {
                Value::Primitive(p) => Some(p),
                _ => None,
            });
            let has_value = prims.clone().any(|p| p.value.is_some());
            let has_ext = prims.clone().any(|p| p.element.is_some());
            if has_value {
                sep(out);
                write_key(out, node, f, false);
                if e.is_array() {
                    out.push('[');
                    for (i, p) in prims.clone().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write_prim(out, p.value.as_ref());
                    }
                    out.push(']');
                } else {
                    write_prim(out, f.values[0].as_prim_value());
                }
            }
            if has_ext {
                sep(out);
                write_key(out, node, f, true);
                if e.is_array() {
                    out.push('[');
                    for (i, p) in prims.enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        match &p.element {
                            Some(el) => write_node(out, el, None),
                            None => out.push_str("null"),
                        }
                    }
                    out.push(']');
                } else if let Some(Value::Primitive(p)) = f.values.first()
                    && let Some(el) = &p.element
                {
                    write_node(out, el, None);
                }
            }
        } else {
            sep(out);
            write_key(out, node, f, false);
            if e.is_array() {
                out.push('[');
                for (i, v) in f.values.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_value(out, v);
                }
                out.push(']');
            } else if let Some(v) = f.values.first() {
                write_value(out, v);
            }
        }
    }
    for (k, v) in &node.unknown {
        sep(out);
        write_str(out, k);
        out.push(':');
        v.write(out);
    }
    out.push('}');
}

/// Writes `"name":` (or `"_name":`) without allocating; element names need no escaping.
fn write_key(out: &mut String, node: &Node<'_>, f: &crate::model::Field<'_>, sibling: bool) {
    let e = node.element_def(f.index);
    out.push_str(if sibling { "\"_" } else { "\"" });
    out.push_str(e.name);
    if e.choice {
        let t = f.values[0].type_id().name();
        let mut c = t.chars();
        if let Some(first) = c.next() {
            out.push(first.to_ascii_uppercase());
            out.push_str(c.as_str());
        }
    }
    out.push_str("\":");
}

fn write_value(out: &mut String, v: &Value<'_>) {
    match v {
        Value::Primitive(p) => write_prim(out, p.value.as_ref()),
        Value::Complex(n) => write_node(out, n, None),
        Value::Resource(r) => write_resource(out, r),
    }
}

fn write_prim(out: &mut String, v: Option<&PrimValue<'_>>) {
    match v {
        None => out.push_str("null"),
        Some(PrimValue::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(PrimValue::Number(n)) => out.push_str(n),
        Some(PrimValue::String(s)) => write_str(out, s),
    }
}

impl Value<'_> {
    fn as_prim_value(&self) -> Option<&PrimValue<'_>> {
        match self {
            Value::Primitive(p) => p.value.as_ref(),
            _ => None,
        }
    }
}

fn indent(out: &mut String, n: usize) {
    out.push('\n');
    for _ in 0..n {
        out.push_str("  ");
    }
}

fn pretty(out: &mut String, v: &Json<'_>, level: usize) {
    match v {
        Json::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                pretty(out, x, level + 1);
            }
            indent(out, level);
            out.push(']');
        }
        Json::Object(o) if !o.is_empty() => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_str(out, k);
                out.push_str(": ");
                pretty(out, x, level + 1);
            }
            indent(out, level);
            out.push('}');
        }
        other => other.write(out),
    }
}
