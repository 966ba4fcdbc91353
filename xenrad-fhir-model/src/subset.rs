//! Result subsets for `_summary` and `_elements` (R4 §3.1.1.7.5 and §3.1.1.7.6
//! <https://hl7.org/fhir/R4/search.html#summary>), driven by the `isSummary` flags of the
//! StructureDefinitions ([`ElementDef::summary`](crate::schema::ElementDef::summary)).
//!
//! - `_summary=true`: the elements marked `isSummary`, in the resource and (recursively) in its
//!   backbone elements; data-type values are kept whole.
//! - `_summary=text`: `text`, `id`, `meta` and the top-level mandatory elements.
//! - `_summary=data`: everything but `text`.
//! - `_summary=count`: no resources at all (the server answers the total only).
//! - `_elements=a,b`: the listed top-level elements, plus `id`, `meta` and the mandatory ones.
//!
//! A subsetted resource carries the tag `SUBSETTED` (system
//! `http://terminology.hl7.org/CodeSystem/v3-ObservationValue`) in `meta.tag`, as the
//! specification asks, so that a client does not mistake it for the whole resource.
//!
//! ```
//! use xenrad_fhir_model::{from_json, to_json, subset::{Summary, summarize, elements}};
//! let p = from_json(br#"{"resourceType":"Patient","id":"p","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
//!   "name":[{"family":"Doe"}],"maritalStatus":{"text":"M"}}"#)?;
//! let s = summarize(&p, Summary::True).unwrap();
//! assert_eq!(to_json(&s), r#"{"resourceType":"Patient","id":"p","meta":{"tag":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},"name":[{"family":"Doe"}]}"#);
//! let (e, unknown) = elements(&p, &["maritalStatus", "shoeSize"]);
//! assert_eq!(to_json(&e), r#"{"resourceType":"Patient","id":"p","meta":{"tag":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}]},"maritalStatus":{"text":"M"}}"#);
//! assert_eq!(unknown, ["shoeSize"]);
//! # Ok::<(), xenrad_fhir_model::Error>(())
//! ```

use crate::model::{Node, Resource, Value};
use crate::schema::TypeKind;

/// The code system of the `SUBSETTED` tag.
pub const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// A `_summary` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// `true`: the `isSummary` elements.
    True,
    /// `text`: text, id, meta and mandatory top-level elements.
    Text,
    /// `data`: all but the narrative.
    Data,
    /// `count`: no resources, only the total.
    Count,
    /// `false`: the whole resource.
    False,
}

impl Summary {
    /// Parses the parameter value; `None` for anything else.
    pub fn parse(s: &str) -> Option<Summary> {
        Some(match s {
            "true" => Summary::True,
            "text" => Summary::Text,
            "data" => Summary::Data,
            "count" => Summary::Count,
            "false" => Summary::False,
            _ => return None,
        })
    }

    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Summary::True => "true",
            Summary::Text => "text",
            Summary::Data => "data",
            Summary::Count => "count",
            Summary::False => "false",
        }
    }
}

/// Elements every subset keeps at the top level of a resource.
fn always(name: &str) -> bool {
    matches!(name, "id" | "meta")
}

/// The subset of a resource for a `_summary` mode, tagged `SUBSETTED`; `None` for
/// [`Summary::Count`] (no resource is returned) and a plain copy for [`Summary::False`].
pub fn summarize<'a>(r: &Resource<'a>, mode: Summary) -> Option<Resource<'a>> {
    let mut out = Resource {
        resource_type: r.resource_type,
        node: match mode {
            Summary::Count => return None,
            Summary::False => return Some(r.clone()),
            Summary::True => summary_node(&r.node, true),
            Summary::Text => keep_top(&r.node, |name, min| {
                always(name) || name == "text" || min > 0
            }),
            Summary::Data => keep_top(&r.node, |name, _| name != "text"),
        },
    };
    mark_subsetted(&mut out);
    Some(out)
}

/// The `_elements` subset: the named top-level elements (a `Type.` prefix is accepted), plus
/// `id`, `meta` and the mandatory ones, tagged `SUBSETTED`. Names the type does not have are
/// returned apart, so a server can report them (they select nothing).
pub fn elements<'a, 'n>(r: &Resource<'a>, names: &[&'n str]) -> (Resource<'a>, Vec<&'n str>) {
    let prefix = r.resource_type.as_str();
    let wanted: Vec<&str> = names
        .iter()
        .map(|n| {
            n.strip_prefix(prefix)
                .and_then(|s| s.strip_prefix('.'))
                .unwrap_or(n)
        })
        .collect();
    let def = r.node.type_id.def();
    let unknown = names
        .iter()
        .zip(&wanted)
        .filter(|(_, w)| def.element(w).is_none())
        .map(|(n, _)| *n)
        .collect();
    let mut out = Resource {
        resource_type: r.resource_type,
        node: keep_top(&r.node, |name, min| {
            always(name) || min > 0 || wanted.contains(&name)
        }),
    };
    mark_subsetted(&mut out);
    (out, unknown)
}

fn keep_top<'a>(n: &Node<'a>, keep: impl Fn(&str, u32) -> bool) -> Node<'a> {
    let mut out = Node::new(n.type_id);
    out.fields = n
        .fields
        .iter()
        .filter(|f| {
            let e = n.element_def(f.index);
            keep(e.name, e.min)
        })
        .cloned()
        .collect();
    out
}

/// `isSummary` elements of a resource or backbone element; the ids of the resource are kept.
fn summary_node<'a>(n: &Node<'a>, top: bool) -> Node<'a> {
    let mut out = Node::new(n.type_id);
    for f in &n.fields {
        let e = n.element_def(f.index);
        if !(e.summary || e.min > 0 || (top && always(e.name))) {
            continue;
        }
        let mut f = f.clone();
        for v in f.values.iter_mut() {
            if let Value::Complex(c) = v
                && c.type_id.def().kind == TypeKind::Backbone
            {
                *c = summary_node(c, false);
            }
        }
        out.fields.push(f);
    }
    out
}

/// Adds the `SUBSETTED` tag to `meta.tag` (creating `meta`), once.
pub fn mark_subsetted(r: &mut Resource<'_>) {
    let has = r
        .node
        .first("meta")
        .and_then(Value::as_node)
        .is_some_and(|m| {
            m.get("tag").iter().filter_map(Value::as_node).any(|t| {
                t.str("system") == Some(SUBSETTED_SYSTEM) && t.str("code") == Some("SUBSETTED")
            })
        });
    if has {
        return;
    }
    let add = |m: &mut Node<'_>| {
        m.add_node("tag", |t| {
            t.add_str("system", SUBSETTED_SYSTEM)?;
            t.add_str("code", "SUBSETTED")?;
            Ok(())
        })
        .map(|_| ())
    };
    let (meta_index, _) = r
        .node
        .type_id
        .def()
        .element("meta")
        .expect("resources have meta");
    let done = match r.node.fields.iter_mut().find(|f| f.index == meta_index) {
        Some(f) => match f.values.first_mut() {
            Some(Value::Complex(m)) => add(m),
            _ => Ok(()),
        },
        None => r.node.add_node("meta", add).map(|_| ()),
    };
    debug_assert!(done.is_ok(), "{done:?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{from_json, to_json};

    #[test]
    fn summary_modes() {
        let r = from_json(
            br#"{"resourceType":"ServiceRequest","id":"s","meta":{"versionId":"2"},
            "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},
            "status":"active","intent":"order","subject":{"reference":"Patient/p"},
            "note":[{"text":"n"}],"orderDetail":[{"text":"d"}],"code":{"text":"CT"}}"#,
        )
        .unwrap();
        let t = to_json(&summarize(&r, Summary::Text).unwrap());
        assert!(t.contains(r#""text":{"status""#) && t.contains(r#""subject""#));
        assert!(!t.contains("note") && !t.contains(r#""code":{"text""#));
        assert!(t.contains(r#""versionId":"2","tag""#), "{t}");
        let d = to_json(&summarize(&r, Summary::Data).unwrap());
        assert!(!d.contains("generated") && d.contains("note"));
        let s = to_json(&summarize(&r, Summary::True).unwrap());
        assert!(s.contains(r#""code":{"text""#) && !s.contains("note") && !s.contains("generated"));
        assert!(summarize(&r, Summary::Count).is_none());
        assert_eq!(summarize(&r, Summary::False).unwrap(), r);
        // tagging twice adds one tag
        let mut again = summarize(&r, Summary::True).unwrap();
        mark_subsetted(&mut again);
        assert_eq!(to_json(&again).matches("SUBSETTED").count(), 1);
        // every subset is still a valid resource
        for m in [Summary::True, Summary::Text, Summary::Data] {
            let oo = crate::validate(&summarize(&r, m).unwrap());
            assert!(!oo.has_errors(), "{m:?}: {oo}");
        }
    }

    #[test]
    fn backbone_elements_are_summarised() {
        let r = from_json(
            br#"{"resourceType":"ImagingStudy","status":"available","subject":{"reference":"Patient/p"},
            "series":[{"uid":"1.2","modality":{"code":"CT"},"description":"d","instance":[{"uid":"1.2.3","sopClass":{"code":"1.2"}}]}]}"#,
        )
        .unwrap();
        let s = to_json(&summarize(&r, Summary::True).unwrap());
        // series.uid/modality are summary, series.instance is not
        assert!(s.contains(r#""uid":"1.2""#) && s.contains("modality"));
        assert!(!s.contains("instance"), "{s}");
        let (e, unknown) = elements(&r, &["ImagingStudy.series", "subject"]);
        assert!(unknown.is_empty());
        assert!(to_json(&e).contains("instance"));
    }
}
