//! Validation (R4 §6.1 <https://hl7.org/fhir/R4/validation.html>): cardinality of every element,
//! required bindings on `code` elements whose value set is enumerable (codes from the package's
//! expansions), primitive lexical rules, and the invariants the radiology resources rely on.
//! Everything is reported as an [`OperationOutcome`] with JSON-pointer locations.

use crate::error::push_segment;
use crate::generated::ResourceType;
use crate::model::{Node, Resource, Value};
use crate::outcome::{OperationOutcome, Severity};

/// Validates a resource; an outcome without errors means valid.
///
/// ```
/// let r = xenrad_fhir_model::from_json(br#"{"resourceType":"Patient","gender":"male"}"#)?;
/// assert!(!xenrad_fhir_model::validate(&r).has_errors());
/// let mut bad = r.clone();
/// bad.node = xenrad_fhir_model::Node::of("Patient");
/// bad.node.add("gender", xenrad_fhir_model::Value::primitive(xenrad_fhir_model::PrimKind::Code, "robot")).unwrap();
/// let oo = xenrad_fhir_model::validate(&bad);
/// assert_eq!(oo.issues[0].location, vec!["/gender".to_string()]);
/// # Ok::<(), xenrad_fhir_model::Error>(())
/// ```
pub fn validate(r: &Resource<'_>) -> OperationOutcome {
    let mut oo = OperationOutcome::new();
    let mut path = String::new();
    node(&mut oo, r.resource_type, &r.node, &mut path, 0);
    invariants(&mut oo, r);
    oo
}

fn node(
    oo: &mut OperationOutcome,
    root: ResourceType,
    n: &Node<'_>,
    path: &mut String,
    depth: usize,
) {
    if depth > 200 {
        return;
    }
    let def = n.type_id.def();
    for (i, e) in def.elements.iter().enumerate() {
        let f = n.fields.iter().find(|f| f.index as usize == i);
        let count = f.map_or(0, |f| f.values.len());
        if count < e.min as usize || count > e.max as usize {
            let len = path.len();
            push_segment(path, e.name);
            let max = if e.max == u32::MAX {
                "*".to_owned()
            } else {
                e.max.to_string()
            };
            oo.push(
                Severity::Error,
                "required",
                format!("{} has {count} values, allowed {}..{max}", e.name, e.min),
                Some((path, Some(root))),
            );
            path.truncate(len);
        }
        let Some(f) = f else { continue };
        let name = n.json_name(f);
        for (k, v) in f.values.iter().enumerate() {
            let len = path.len();
            push_segment(path, &name);
            if e.is_array() {
                push_segment(path, &k.to_string());
            }
            match v {
                Value::Primitive(p) => {
                    if let (Some(val), Some(kind)) = (&p.value, p.type_id.prim()) {
                        if !e.plain
                            && let Err(reason) = crate::check_primitive(kind, val)
                        {
                            oo.push(Severity::Error, "value", reason, Some((path, Some(root))));
                        }
                        if kind == crate::PrimKind::Xhtml
                            && !val.as_str().is_some_and(crate::xml::is_xhtml_div)
                        {
                            oo.push(
                                Severity::Error,
                                "value",
                                "xhtml is not one well-formed div element",
                                Some((path, Some(root))),
                            );
                        }
                        if kind == crate::PrimKind::Id && val.as_str().is_some_and(|s| s.len() > 64)
                        {
                            oo.push(
                                Severity::Warning,
                                "value",
                                "id longer than 64 characters",
                                Some((path, Some(root))),
                            );
                        }
                        if let (Some(vs), Some(code)) = (e.binding, val.as_str())
                            && !vs.contains(code)
                        {
                            oo.push(
                                Severity::Error,
                                "code-invalid",
                                format!(
                                    "code {code:?} is not in the required value set {}",
                                    vs.url
                                ),
                                Some((path, Some(root))),
                            );
                        }
                    }
                    if let Some(el) = &p.element {
                        path.insert(len + 1, '_');
                        node(oo, root, el, path, depth + 1);
                    }
                }
                Value::Complex(c) => {
                    if let Some(vs) = e.binding {
                        check_concept(oo, root, vs, c, path);
                    }
                    node(oo, root, c, path, depth + 1);
                }
                Value::Resource(r) => {
                    node(oo, r.resource_type, &r.node, path, depth + 1);
                }
            }
            path.truncate(len);
        }
    }
    for (k, _) in &n.unknown {
        let len = path.len();
        push_segment(path, k);
        oo.push(
            Severity::Warning,
            "structure",
            format!("unknown element {k:?}"),
            Some((path, Some(root))),
        );
        path.truncate(len);
    }
}

/// Required binding on a `Coding` (its code) or `CodeableConcept` (at least one of its codings;
/// text-only concepts are not checked).
fn check_concept(
    oo: &mut OperationOutcome,
    root: ResourceType,
    vs: &crate::schema::ValueSetDef,
    c: &Node<'_>,
    path: &str,
) {
    let ok_coding = |n: &Node<'_>| {
        n.str("code")
            .is_none_or(|code| vs.contains_coding(n.str("system"), code))
    };
    let ok = match c.type_id.name() {
        "Coding" => ok_coding(c),
        "CodeableConcept" => {
            let codings: Vec<&Node<'_>> =
                c.get("coding").iter().filter_map(Value::as_node).collect();
            codings.is_empty() || codings.iter().any(|n| ok_coding(n))
        }
        _ => true,
    };
    if !ok {
        oo.push(
            Severity::Error,
            "code-invalid",
            format!("no coding from the required value set {}", vs.url),
            Some((path, Some(root))),
        );
    }
}

/// DICOM UID syntax (PS3.5 §9.1): `[0-2](.(0|[1-9][0-9]*))*`, at most 64 characters.
pub fn is_dicom_uid(s: &str) -> bool {
    s.len() <= 64
        && !s.is_empty()
        && s.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && (c == "0" || !c.starts_with('0'))
        })
}

fn invariants(oo: &mut OperationOutcome, r: &Resource<'_>) {
    let rt = r.resource_type;
    match rt {
        ResourceType::ImagingStudy => {
            // ImagingStudy.series.uid / instance.uid are DICOM UIDs (R4 imagingstudy.html, PS3.3 C.7.3.1)
            for (si, s) in r.node.get("series").iter().enumerate() {
                let Some(s) = s.as_node() else { continue };
                if let Some(uid) = s.str("uid")
                    && !is_dicom_uid(uid) {
                        let p = format!("/series/{si}/uid");
                        oo.push(
                            Severity::Error,
                            "value",
                            format!("{uid:?} is not a DICOM UID"),
                            Some((&p, Some(rt))),
                        );
                    }
                for (ii, inst) in s.get("instance").iter().enumerate() {
                    let Some(inst) = inst.as_node() else { continue };
                    for key in ["uid", "sopClass"] {
                        let v = if key == "uid" {
                            inst.str("uid")
                        } else {
                            inst.first("sopClass")
                                .and_then(|c| c.as_node())
                                .and_then(|c| c.str("code"))
                        };
                        if let Some(uid) = v {
                            let uid = uid.strip_prefix("urn:oid:").unwrap_or(uid);
                            if !is_dicom_uid(uid) {
                                let p = format!("/series/{si}/instance/{ii}/{key}");
                                oo.push(
                                    Severity::Error,
                                    "value",
                                    format!("{uid:?} is not a DICOM UID"),
                                    Some((&p, Some(rt))),
                                );
                            }
                        }
                    }
                }
            }
        }
        ResourceType::ServiceRequest
            // prr-1: orderDetail SHALL only be present if code is present
            if !r.node.get("orderDetail").is_empty() && r.node.get("code").is_empty() => {
                oo.push(
                    Severity::Error,
                    "invariant",
                    "prr-1: orderDetail without code",
                    Some(("/orderDetail", Some(rt))),
                );
            }
        ResourceType::Patient => {
            // pat-1: contact SHALL contain details or a reference to an organization
            for (i, c) in r.node.get("contact").iter().enumerate() {
                let Some(c) = c.as_node() else { continue };
                let has = ["name", "telecom", "address", "organization"]
                    .iter()
                    .any(|k| !c.get(k).is_empty());
                if !has {
                    let p = format!("/contact/{i}");
                    oo.push(
                        Severity::Error,
                        "invariant",
                        "pat-1: contact without details",
                        Some((&p, Some(rt))),
                    );
                }
            }
        }
        _ => {}
    }
}
