//! JSON Patch (RFC 6902, FHIR R4 http.html#patch with `application/json-patch+json`) applied to a
//! resource's JSON on the crate's own [`Json`] tree, so decimals keep their exact text and the
//! result goes back through the strict reader (and so through validation) like any other write.
//!
//! Why not the `json-patch` crate: it works on `serde_json::Value`, which the model does not use;
//! going through it would add a second JSON tree, a second parse and a lossy number
//! representation (unless `arbitrary_precision`) for an operation that is a hundred lines over
//! [`Json`]. Every error names the operation (`/2` in the patch document) and the target
//! pointer.
//!
//! ```
//! use xenrad_fhir_model::patch::apply;
//! let doc = br#"{"resourceType":"Patient","id":"p","active":true,"name":[{"family":"Doe"}]}"#;
//! let patch = br#"[{"op":"replace","path":"/active","value":false},
//!                  {"op":"add","path":"/name/0/given","value":["Ann"]},
//!                  {"op":"test","path":"/id","value":"p"}]"#;
//! let out = apply(doc, patch).unwrap();
//! assert_eq!(out, r#"{"resourceType":"Patient","id":"p","active":false,"name":[{"family":"Doe","given":["Ann"]}]}"#);
//! let err = apply(doc, br#"[{"op":"remove","path":"/gender"}]"#).unwrap_err();
//! assert_eq!((err.op, err.pointer.as_str()), (Some(0), "/gender"));
//! ```

use crate::json::{Json, parse};
use std::borrow::Cow;

/// Nesting limit for the document and the patch.
const MAX_DEPTH: u32 = 128;

/// Why a patch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{pointer}: {message}", .op.map(|o| format!("operation {o} at ")).unwrap_or_default())]
pub struct PatchError {
    /// Index of the failing operation in the patch document (`None`: the documents themselves).
    pub op: Option<usize>,
    /// The JSON pointer the operation targets (or the patch member that is wrong).
    pub pointer: String,
    /// What went wrong.
    pub message: String,
    /// `true` when a `test` operation failed (HTTP 409/422 rather than 400).
    pub test_failed: bool,
}

fn err(op: Option<usize>, pointer: &str, message: impl Into<String>) -> PatchError {
    PatchError {
        op,
        pointer: pointer.to_owned(),
        message: message.into(),
        test_failed: false,
    }
}

/// Applies a JSON Patch document to a JSON document, returning the patched JSON (compact).
pub fn apply(document: &[u8], patch: &[u8]) -> Result<String, PatchError> {
    let mut doc = parse(document, MAX_DEPTH).map_err(|e| {
        err(
            None,
            "",
            format!("document: {} (byte {})", e.message, e.offset),
        )
    })?;
    let ops = parse(patch, MAX_DEPTH).map_err(|e| {
        err(
            None,
            "",
            format!("patch: {} (byte {})", e.message, e.offset),
        )
    })?;
    apply_json(&mut doc, &ops)?;
    let mut out = String::with_capacity(document.len() + 64);
    doc.write(&mut out);
    Ok(out)
}

/// Applies the operations of `ops` (a JSON array) to `doc` in place; on error `doc` may be
/// partly changed (the caller discards it, RFC 6902 §5).
pub fn apply_json<'a>(doc: &mut Json<'a>, ops: &Json<'a>) -> Result<(), PatchError> {
    let Json::Array(ops) = ops else {
        return Err(err(
            None,
            "",
            "a JSON Patch document is an array of operations",
        ));
    };
    for (i, op) in ops.iter().enumerate() {
        let at = Some(i);
        let member = |k: &str| -> Option<&Json<'a>> {
            match op {
                Json::Object(o) => o.iter().find(|(n, _)| n == k).map(|(_, v)| v),
                _ => None,
            }
        };
        let text = |k: &str| -> Result<&str, PatchError> {
            member(k).and_then(Json::as_str).ok_or_else(|| {
                err(
                    at,
                    &format!("/{i}/{k}"),
                    format!("missing or non-string \"{k}\""),
                )
            })
        };
        let name = text("op")?;
        let path = text("path")?;
        let value = || {
            member("value")
                .cloned()
                .ok_or_else(|| err(at, path, "missing \"value\""))
        };
        match name {
            "add" => add(doc, path, value()?).map_err(|m| err(at, path, m))?,
            "remove" => {
                remove(doc, path).map_err(|m| err(at, path, m))?;
            }
            "replace" => {
                let v = value()?;
                let target = get_mut(doc, path).map_err(|m| err(at, path, m))?;
                *target = v;
            }
            "move" => {
                let from = text("from")?;
                if path.starts_with(from) && path[from.len()..].starts_with('/') {
                    return Err(err(at, path, "cannot move a value into itself"));
                }
                let v = remove(doc, from).map_err(|m| err(at, from, m))?;
                add(doc, path, v).map_err(|m| err(at, path, m))?;
            }
            "copy" => {
                let from = text("from")?;
                let v = get_mut(doc, from).map_err(|m| err(at, from, m))?.clone();
                add(doc, path, v).map_err(|m| err(at, path, m))?;
            }
            "test" => {
                let v = value()?;
                let target = get_mut(doc, path).map_err(|m| err(at, path, m))?;
                if !target.same_as(&v) {
                    let mut e = err(at, path, "test failed: the value differs");
                    e.test_failed = true;
                    return Err(e);
                }
            }
            other => {
                return Err(err(
                    at,
                    &format!("/{i}/op"),
                    format!("unknown operation {other:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// Applies a JSON Merge Patch (RFC 7386: members replace, `null` removes, objects merge
/// recursively, anything else replaces the whole value), the form some clients (`fhirpy`'s
/// `patch(key=value)`) send as `application/merge-patch+json` or plain JSON objects.
///
/// ```
/// let out = xenrad_fhir_model::patch::merge(br#"{"a":{"b":1,"c":2},"d":[1]}"#, br#"{"a":{"b":null,"e":3},"d":[2]}"#).unwrap();
/// assert_eq!(out, r#"{"a":{"c":2,"e":3},"d":[2]}"#);
/// ```
pub fn merge(document: &[u8], patch: &[u8]) -> Result<String, PatchError> {
    let mut doc = parse(document, MAX_DEPTH).map_err(|e| {
        err(
            None,
            "",
            format!("document: {} (byte {})", e.message, e.offset),
        )
    })?;
    let p = parse(patch, MAX_DEPTH).map_err(|e| {
        err(
            None,
            "",
            format!("patch: {} (byte {})", e.message, e.offset),
        )
    })?;
    merge_json(&mut doc, p);
    let mut out = String::with_capacity(document.len() + 64);
    doc.write(&mut out);
    Ok(out)
}

/// [`merge`] on trees.
pub fn merge_json<'a>(doc: &mut Json<'a>, patch: Json<'a>) {
    let Json::Object(members) = patch else {
        *doc = patch;
        return;
    };
    if !matches!(doc, Json::Object(_)) {
        *doc = Json::Object(Vec::new());
    }
    let Json::Object(target) = doc else { return };
    for (k, v) in members {
        let at = target.iter().position(|(n, _)| *n == k);
        match (v, at) {
            (Json::Null, Some(i)) => {
                target.remove(i);
            }
            (Json::Null, None) => {}
            (v, Some(i)) => merge_json(&mut target[i].1, v),
            (v, None) => {
                let mut fresh = Json::Null;
                merge_json(&mut fresh, v);
                target.push((k, fresh));
            }
        }
    }
}

/// Splits a pointer into unescaped tokens (RFC 6901 §4).
fn tokens(pointer: &str) -> Result<Vec<Cow<'_, str>>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| format!("{pointer:?} is not a JSON pointer"))?;
    Ok(rest
        .split('/')
        .map(|t| {
            if t.contains('~') {
                Cow::Owned(t.replace("~1", "/").replace("~0", "~"))
            } else {
                Cow::Borrowed(t)
            }
        })
        .collect())
}

fn index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && token == "-" {
        return Ok(len);
    }
    if token.is_empty()
        || (token.len() > 1 && token.starts_with('0'))
        || !token.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("{token:?} is not an array index"));
    }
    let i: usize = token
        .parse()
        .map_err(|_| format!("{token:?} is not an array index"))?;
    let max = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    if i > max || (!allow_end && len == 0) {
        return Err(format!("index {i} is out of bounds (length {len})"));
    }
    Ok(i)
}

fn child_mut<'j, 'a>(v: &'j mut Json<'a>, token: &str) -> Result<&'j mut Json<'a>, String> {
    match v {
        Json::Object(o) => o
            .iter_mut()
            .find(|(k, _)| k == token)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("no member {token:?}")),
        Json::Array(a) => {
            let i = index(token, a.len(), false)?;
            Ok(&mut a[i])
        }
        _ => Err(format!("cannot descend into a scalar at {token:?}")),
    }
}

fn get_mut<'j, 'a>(doc: &'j mut Json<'a>, pointer: &str) -> Result<&'j mut Json<'a>, String> {
    let mut cur = doc;
    for t in tokens(pointer)? {
        cur = child_mut(cur, &t)?;
    }
    Ok(cur)
}

/// The parent of the pointer's target and the last token.
fn parent<'j, 'a, 'p>(
    doc: &'j mut Json<'a>,
    pointer: &'p str,
) -> Result<(&'j mut Json<'a>, Cow<'p, str>), String> {
    let mut toks = tokens(pointer)?;
    let last = toks.pop().ok_or("the root cannot be the target here")?;
    let mut cur = doc;
    for t in toks {
        cur = child_mut(cur, &t)?;
    }
    Ok((cur, last))
}

fn add<'a>(doc: &mut Json<'a>, pointer: &str, v: Json<'a>) -> Result<(), String> {
    if pointer.is_empty() {
        *doc = v;
        return Ok(());
    }
    let (p, last) = parent(doc, pointer)?;
    match p {
        Json::Object(o) => {
            match o.iter_mut().find(|(k, _)| *k == last) {
                Some((_, slot)) => *slot = v,
                None => o.push((Cow::Owned(last.into_owned()), v)),
            }
            Ok(())
        }
        Json::Array(a) => {
            let i = index(&last, a.len(), true)?;
            a.insert(i, v);
            Ok(())
        }
        _ => Err("the parent is not an object or array".into()),
    }
}

fn remove<'a>(doc: &mut Json<'a>, pointer: &str) -> Result<Json<'a>, String> {
    let (p, last) = parent(doc, pointer)?;
    match p {
        Json::Object(o) => {
            let i = o
                .iter()
                .position(|(k, _)| *k == last)
                .ok_or_else(|| format!("no member {last:?}"))?;
            Ok(o.remove(i).1)
        }
        Json::Array(a) => {
            let i = index(&last, a.len(), false)?;
            Ok(a.remove(i))
        }
        _ => Err("the parent is not an object or array".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(doc: &str, patch: &str) -> Result<String, PatchError> {
        apply(doc.as_bytes(), patch.as_bytes())
    }

    /// RFC 6902 appendix A examples.
    #[test]
    fn rfc6902_appendix_a() {
        let cases = [
            (
                r#"{"foo":"bar"}"#,
                r#"[{"op":"add","path":"/baz","value":"qux"}]"#,
                r#"{"foo":"bar","baz":"qux"}"#,
            ),
            (
                r#"{"foo":["bar","baz"]}"#,
                r#"[{"op":"add","path":"/foo/1","value":"qux"}]"#,
                r#"{"foo":["bar","qux","baz"]}"#,
            ),
            (
                r#"{"baz":"qux","foo":"bar"}"#,
                r#"[{"op":"remove","path":"/baz"}]"#,
                r#"{"foo":"bar"}"#,
            ),
            (
                r#"{"foo":["bar","qux","baz"]}"#,
                r#"[{"op":"remove","path":"/foo/1"}]"#,
                r#"{"foo":["bar","baz"]}"#,
            ),
            (
                r#"{"baz":"qux","foo":"bar"}"#,
                r#"[{"op":"replace","path":"/baz","value":"boo"}]"#,
                r#"{"baz":"boo","foo":"bar"}"#,
            ),
            (
                r#"{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}"#,
                r#"[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]"#,
                r#"{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}"#,
            ),
            (
                r#"{"foo":["all","grass","cows","eat"]}"#,
                r#"[{"op":"move","from":"/foo/1","path":"/foo/3"}]"#,
                r#"{"foo":["all","cows","eat","grass"]}"#,
            ),
            (
                r#"{"baz":"qux","foo":["a",2,"c"]}"#,
                r#"[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]"#,
                r#"{"baz":"qux","foo":["a",2,"c"]}"#,
            ),
            (
                r#"{"foo":"bar"}"#,
                r#"[{"op":"add","path":"/child","value":{"grandchild":{}}}]"#,
                r#"{"foo":"bar","child":{"grandchild":{}}}"#,
            ),
            (
                r#"{"foo":["bar"]}"#,
                r#"[{"op":"add","path":"/foo/-","value":["abc","def"]}]"#,
                r#"{"foo":["bar",["abc","def"]]}"#,
            ),
            (
                r#"{"/":9,"~1":10}"#,
                r#"[{"op":"test","path":"/~01","value":10}]"#,
                r#"{"/":9,"~1":10}"#,
            ),
            (
                r#"{"a":1.50}"#,
                r#"[{"op":"copy","from":"/a","path":"/b"}]"#,
                r#"{"a":1.50,"b":1.50}"#,
            ),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(run(doc, patch).unwrap(), want, "{patch}");
        }
        let e = run(
            r#"{"baz":"qux"}"#,
            r#"[{"op":"test","path":"/baz","value":"bar"}]"#,
        )
        .unwrap_err();
        assert!(e.test_failed);
        let e = run(
            r#"{"foo":"bar"}"#,
            r#"[{"op":"add","path":"/baz/bat","value":"qux"}]"#,
        )
        .unwrap_err();
        assert_eq!((e.op, e.pointer.as_str()), (Some(0), "/baz/bat"));
        let e = run(
            r#"{"foo":["a"]}"#,
            r#"[{"op":"add","path":"/foo/01","value":1}]"#,
        )
        .unwrap_err();
        assert!(e.message.contains("index"), "{e}");
        let e = run("{}", r#"[{"op":"frobnicate","path":"/a"}]"#).unwrap_err();
        assert_eq!(e.pointer, "/0/op");
        let e = run("{}", r#"[{"op":"add","path":"/a"}]"#).unwrap_err();
        assert!(e.message.contains("value"));
        let e = run(
            r#"{"a":{"b":1}}"#,
            r#"[{"op":"move","from":"/a","path":"/a/b/c"}]"#,
        )
        .unwrap_err();
        assert!(e.message.contains("itself"));
        assert!(run("{}", r#"{"op":"add"}"#).is_err());
        assert_eq!(
            run(r#"{"a":1}"#, r#"[{"op":"replace","path":"","value":[1]}]"#).unwrap(),
            "[1]"
        );
    }
}
