//! Layer 4: the typed JSON reader (FHIR R4 JSON format, <https://hl7.org/fhir/R4/json.html>).
//!
//! One pass over the input, driven by the generated descriptor tables: member names are resolved
//! against the type's elements (choice `value[x]` by suffix), `_name` siblings are merged into
//! their primitives (arrays with `null`s included), `contained`/`entry.resource` dispatch on
//! `resourceType` without a second parse, strings without escapes are borrowed.

use crate::error::{Error, ErrorKind, push_segment};
use crate::generated::ResourceType;
use crate::json::{Lexer, SyntaxError};
use crate::model::{Field, Node, PrimValue, Primitive, Resource, Value, Values};
use crate::schema::{JsonKind, PrimKind, TypeId, TypeKind};
use std::borrow::Cow;

/// What to do with members the definitions do not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownPolicy {
    /// Fail with the member's JSON pointer.
    #[default]
    Strict,
    /// Keep them in [`Node::unknown`], report them as issues, and write them back.
    Lenient,
}

/// Limits and policies of the reader.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Unknown members.
    pub unknown: UnknownPolicy,
    /// Maximum JSON nesting depth (default 100).
    pub max_depth: u32,
    /// Maximum input size in bytes (default 64 MiB).
    pub max_size: usize,
    /// Check minimum/maximum cardinality while reading (default true).
    pub check_cardinality: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            unknown: UnknownPolicy::Strict,
            max_depth: 100,
            max_size: 64 << 20,
            check_cardinality: true,
        }
    }
}

/// Reads a resource from JSON in strict mode with default limits.
///
/// ```
/// let json = br#"{"resourceType":"Patient","id":"p1","name":[{"family":"Chalmers","given":["Peter","James"]}],
///                 "birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://x","valueDecimal":1.50}]}}"#;
/// let patient = xenrad_fhir_model::from_json(json)?;
/// assert_eq!(patient.resource_type, xenrad_fhir_model::ResourceType::Patient);
/// assert_eq!(patient.node.first("name").unwrap().as_node().unwrap().str("family"), Some("Chalmers"));
/// // decimals keep their text, output follows specification order
/// assert!(xenrad_fhir_model::to_json(&patient).contains(r#""valueDecimal":1.50"#));
/// # Ok::<(), xenrad_fhir_model::Error>(())
/// ```
pub fn from_json(input: &[u8]) -> Result<Resource<'_>, Error> {
    from_json_with(input, &ReadOptions::default()).map(|(r, _)| r)
}

/// Reads a resource with options; returns it with the issues found in lenient mode.
pub fn from_json_with<'a>(
    input: &'a [u8],
    opts: &ReadOptions,
) -> Result<(Resource<'a>, Vec<Error>), Error> {
    if input.len() > opts.max_size {
        return Err(Error {
            pointer: String::new(),
            offset: Some(opts.max_size),
            kind: ErrorKind::TooLarge,
        });
    }
    let mut r = Reader {
        field_pool: Vec::new(),
        value_pool: Vec::new(),
        lx: Lexer::new(input),
        opts,
        path: Vec::new(),
        issues: Vec::new(),
        nulls: 0,
        top: -1,
    };
    let res = r.resource(opts.max_depth)?;
    r.lx.end().map_err(|e| r.syntax(e))?;
    Ok((res, r.issues))
}

enum Seg<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

struct Reader<'a, 'o> {
    lx: Lexer<'a>,
    /// Scratch buffers reused across nodes so each node's field list is allocated once, exactly.
    field_pool: Vec<Vec<Field<'a>>>,
    /// Scratch buffers for array values.
    value_pool: Vec<Vec<Value<'a>>>,
    opts: &'o ReadOptions,
    path: Vec<Seg<'a>>,
    issues: Vec<Error>,
    /// `null`s read in primitive arrays so far (nodes re-check for empty primitives only then).
    nulls: usize,
    /// The highest element index among the fields of the node being read (-1: none yet).
    top: i32,
}

impl<'a> Reader<'a, '_> {
    fn pointer(&self) -> String {
        let mut p = String::new();
        for s in &self.path {
            match s {
                Seg::Key(k) => push_segment(&mut p, k),
                Seg::Index(i) => push_segment(&mut p, &i.to_string()),
            }
        }
        p
    }

    fn error(&self, kind: ErrorKind) -> Error {
        Error {
            pointer: self.pointer(),
            offset: Some(self.lx.pos),
            kind,
        }
    }

    fn syntax(&self, e: SyntaxError) -> Error {
        Error {
            pointer: self.pointer(),
            offset: Some(e.offset),
            kind: ErrorKind::Syntax(e.message),
        }
    }

    fn resource(&mut self, depth: u32) -> Result<Resource<'a>, Error> {
        if depth == 0 {
            return Err(self.error(ErrorKind::TooDeep));
        }
        if self.lx.peek() != Some(b'{') {
            return Err(self.error(ErrorKind::WrongType {
                expected: "resource object".into(),
            }));
        }
        let start = self.lx.pos;
        let rt = self.find_resource_type()?;
        self.lx.pos = start + 1;
        let node = self.object_body(rt.type_id(), depth, true)?;
        Ok(Resource {
            resource_type: rt,
            node,
        })
    }

    /// Finds `resourceType` (usually the first member, otherwise by skimming the object).
    fn find_resource_type(&mut self) -> Result<ResourceType, Error> {
        self.lx.pos += 1;
        if self.lx.empty_close(b'}') {
            return Err(self.error(ErrorKind::MissingResourceType));
        }
        loop {
            let key = self.lx.string().map_err(|e| self.syntax(e))?;
            self.lx
                .expect(b':', "expected ':'")
                .map_err(|e| self.syntax(e))?;
            if key == "resourceType" {
                self.path.push(Seg::Key(key));
                if self.lx.peek() != Some(b'"') {
                    return Err(self.error(ErrorKind::WrongType {
                        expected: "string".into(),
                    }));
                }
                let name = self.lx.string().map_err(|e| self.syntax(e))?;
                let rt = ResourceType::from_name(&name)
                    .ok_or_else(|| self.error(ErrorKind::UnknownResourceType(name.into_owned())));
                self.path.pop();
                return rt;
            }
            self.lx
                .skip(self.opts.max_depth)
                .map_err(|e| self.syntax(e))?;
            if !self.lx.next_or_close(b'}').map_err(|e| self.syntax(e))? {
                return Err(self.error(ErrorKind::MissingResourceType));
            }
        }
    }

    /// Reads the members of an object (after its `{`) as an instance of `ty`.
    fn object_body(
        &mut self,
        ty: TypeId,
        depth: u32,
        is_resource: bool,
    ) -> Result<Node<'a>, Error> {
        let def = ty.def();
        let mut node = Node::new(ty);
        node.fields = self.field_pool.pop().unwrap_or_default();
        // where to start looking up the next member (the element after the last one found)
        let mut hint = 0usize;
        let nulls_before = self.nulls;
        // the highest element index among this node's fields (nodes nest: saved, then restored)
        let outer_top = std::mem::replace(&mut self.top, -1);
        if !self.lx.empty_close(b'}') {
            loop {
                let key = self.lx.string().map_err(|e| self.syntax(e))?;
                self.lx
                    .expect(b':', "expected ':'")
                    .map_err(|e| self.syntax(e))?;
                if is_resource && key == "resourceType" {
                    self.lx.string().map_err(|e| self.syntax(e))?;
                } else {
                    let (sibling, name) = match key.strip_prefix('_') {
                        Some(n) => (true, n),
                        None => (false, &*key),
                    };
                    let found = def.element_for_json_from(name, hint);
                    self.path.push(Seg::Key(key.clone()));
                    if let Some((idx, t)) = found {
                        hint = idx as usize + 1;
                        let e = &def.elements[idx as usize];
                        if sibling {
                            if e.plain || t.prim().is_none() {
                                return Err(self.error(ErrorKind::UnknownElement(key.into_owned())));
                            }
                            self.sibling(&mut node, idx, t, e.is_array(), depth)?;
                        } else {
                            self.values(&mut node, idx, t, e.is_array(), e.plain, depth)?;
                        }
                    } else {
                        let v = self
                            .lx
                            .any(depth.saturating_sub(1))
                            .map_err(|e| self.syntax(e))?;
                        let err = self.error(ErrorKind::UnknownElement(key.clone().into_owned()));
                        if self.opts.unknown == UnknownPolicy::Strict {
                            return Err(err);
                        }
                        self.issues.push(err);
                        node.unknown.push((key, v));
                    }
                    self.path.pop();
                }
                if !self.lx.next_or_close(b'}').map_err(|e| self.syntax(e))? {
                    break;
                }
            }
        }
        if !node.fields.is_sorted_by_key(|f| f.index) {
            node.fields.sort_by_key(|f| f.index);
        }
        let mut scratch = std::mem::take(&mut node.fields);
        // drain+collect on purpose: one exact allocation; the scratch keeps its buffer for reuse
        #[allow(clippy::drain_collect)]
        let fields = scratch.drain(..).collect();
        node.fields = fields;
        self.field_pool.push(scratch);
        self.top = outer_top;
        self.finish(&node, nulls_before)?;
        Ok(node)
    }

    /// Post-checks of a node: primitives with neither value nor extension, cardinality.
    fn finish(&mut self, node: &Node<'a>, nulls_before: usize) -> Result<(), Error> {
        let def = node.type_id.def();
        // only arrays with `null`s (here or in a descendant) can leave an empty primitive
        let fields = if self.nulls > nulls_before {
            &node.fields[..]
        } else {
            &[]
        };
        for f in fields {
            for (i, v) in f.values.iter().enumerate() {
                if let Value::Primitive(p) = v
                    && p.value.is_none()
                    && p.element.is_none()
                {
                    let e = &def.elements[f.index as usize];
                    self.path.push(Seg::Key(node.json_name(f)));
                    if e.is_array() {
                        self.path.push(Seg::Index(i));
                    }
                    let err =
                        self.error(ErrorKind::BadSibling("null without a value or extension"));
                    return Err(err);
                }
            }
        }
        if self.opts.check_cardinality {
            for &i in def.checked {
                let e = &def.elements[i as usize];
                let n = node
                    .fields
                    .iter()
                    .find(|f| f.index >= i)
                    .filter(|f| f.index == i)
                    .map_or(0, |f| f.values.len());
                if n < e.min as usize || n > e.max as usize {
                    self.path.push(Seg::Key(Cow::Borrowed(e.name)));
                    let err = self.error(ErrorKind::Cardinality {
                        min: e.min,
                        max: e.max,
                        found: n,
                    });
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// The position of element `idx` among the fields read so far: members usually come in
    /// specification order, so an element above every one read yet (`self.top`) is known to be
    /// new without a search.
    #[inline]
    fn find_field(&self, node: &Node<'a>, idx: u16) -> Option<usize> {
        if i32::from(idx) > self.top {
            return None;
        }
        node.fields.iter().rposition(|f| f.index == idx)
    }

    fn slot<'n>(&mut self, node: &'n mut Node<'a>, idx: u16) -> (&'n mut Field<'a>, bool) {
        if let Some(p) = self.find_field(node, idx) {
            (&mut node.fields[p], false)
        } else {
            self.top = self.top.max(i32::from(idx));
            node.fields.push(Field {
                index: idx,
                values: Values::new(),
            });
            (node.fields.last_mut().expect("just pushed"), true)
        }
    }

    fn values(
        &mut self,
        node: &mut Node<'a>,
        idx: u16,
        t: TypeId,
        array: bool,
        plain: bool,
        depth: u32,
    ) -> Result<(), Error> {
        let existing = self.find_field(node, idx);
        if let Some(p) = existing {
            // only a `_name` sibling may have come first, for the same type
            let f = &node.fields[p];
            let dup = f.values.iter().any(|v| match v {
                Value::Primitive(pr) => pr.value.is_some() || pr.type_id != t,
                _ => true,
            });
            if dup {
                return Err(self.error(ErrorKind::Duplicate));
            }
        }
        if array {
            if self.lx.peek() != Some(b'[') {
                return Err(self.error(ErrorKind::WrongType {
                    expected: "array".into(),
                }));
            }
            self.lx.pos += 1;
            let mut items = self.value_pool.pop().unwrap_or_default();
            if self.lx.empty_close(b']') {
                return Err(self.error(ErrorKind::Cardinality {
                    min: 1,
                    max: u32::MAX,
                    found: 0,
                }));
            }
            loop {
                self.path.push(Seg::Index(items.len()));
                if t.prim().is_some() && self.lx.peek() == Some(b'n') {
                    self.lx.literal().map_err(|e| self.syntax(e))?;
                    self.nulls += 1;
                    items.push(Value::Primitive(Primitive {
                        type_id: t,
                        value: None,
                        element: None,
                    }));
                } else {
                    items.push(self.value(t, plain, depth)?);
                }
                self.path.pop();
                if !self.lx.next_or_close(b']').map_err(|e| self.syntax(e))? {
                    break;
                }
            }
            let (field, fresh) = self.slot(node, idx);
            if fresh {
                field.values = Values::from_drain(&mut items);
            } else {
                if field.values.len() != items.len() {
                    return Err(self.error(ErrorKind::BadSibling(
                        "array length differs from its _ sibling",
                    )));
                }
                for (slot, item) in field.values.iter_mut().zip(items.drain(..)) {
                    if let (Value::Primitive(p), Value::Primitive(v)) = (slot, item) {
                        p.value = v.value;
                    }
                }
            }
            self.value_pool.push(items);
        } else {
            let v = self.value(t, plain, depth)?;
            let (field, fresh) = self.slot(node, idx);
            if fresh {
                field.values.push(v);
            } else if let (Some(Value::Primitive(p)), Value::Primitive(v)) =
                (field.values.first_mut(), v)
            {
                p.value = v.value;
            }
        }
        Ok(())
    }

    fn sibling(
        &mut self,
        node: &mut Node<'a>,
        idx: u16,
        t: TypeId,
        array: bool,
        depth: u32,
    ) -> Result<(), Error> {
        let element_t = TypeId::by_name("Element").expect("Element type");
        let existing = self.find_field(node, idx);
        if let Some(p) = existing {
            let dup = node.fields[p].values.iter().any(|v| match v {
                Value::Primitive(pr) => pr.element.is_some() || pr.type_id != t,
                _ => true,
            });
            if dup {
                return Err(self.error(ErrorKind::Duplicate));
            }
        }
        let mut items: Vec<Option<Node<'a>>> = Vec::new();
        if array {
            if self.lx.peek() != Some(b'[') {
                return Err(self.error(ErrorKind::WrongType {
                    expected: "array".into(),
                }));
            }
            self.lx.pos += 1;
            if self.lx.empty_close(b']') {
                return Err(self.error(ErrorKind::Cardinality {
                    min: 1,
                    max: u32::MAX,
                    found: 0,
                }));
            }
            {
                loop {
                    self.path.push(Seg::Index(items.len()));
                    if self.lx.peek() == Some(b'n') {
                        self.lx.literal().map_err(|e| self.syntax(e))?;
                        items.push(None);
                    } else {
                        items.push(Some(self.object(element_t, depth)?));
                    }
                    self.path.pop();
                    if !self.lx.next_or_close(b']').map_err(|e| self.syntax(e))? {
                        break;
                    }
                }
            }
        } else {
            items.push(Some(self.object(element_t, depth)?));
        }
        // An empty `_x` object (no id, no extension) is no element (FHIR R4 JSON §2.6.2.1:
        // an element has a value or children), and a null in a `_x` array is none either.
        // Both are counted like a null in a value array, so that a primitive left with
        // neither value nor element is reported at the object's end, as the XML reader
        // reports `<x/>`.
        for e in &mut items {
            if e.as_ref()
                .is_some_and(|n| n.fields.is_empty() && n.unknown.is_empty())
            {
                *e = None;
            }
            if e.is_none() {
                self.nulls += 1;
            }
        }
        let (field, fresh) = self.slot(node, idx);
        if fresh {
            field.values = items
                .into_iter()
                .map(|e| {
                    Value::Primitive(Primitive {
                        type_id: t,
                        value: None,
                        element: e.map(Box::new),
                    })
                })
                .collect();
        } else {
            if field.values.len() != items.len() {
                return Err(self.error(ErrorKind::BadSibling(
                    "array length differs from its value array",
                )));
            }
            for (slot, item) in field.values.iter_mut().zip(items) {
                if let Value::Primitive(p) = slot {
                    p.element = item.map(Box::new);
                }
            }
        }
        Ok(())
    }

    fn object(&mut self, t: TypeId, depth: u32) -> Result<Node<'a>, Error> {
        if depth == 0 {
            return Err(self.error(ErrorKind::TooDeep));
        }
        if self.lx.peek() != Some(b'{') {
            return Err(self.error(ErrorKind::WrongType {
                expected: t.name().to_owned(),
            }));
        }
        self.lx.pos += 1;
        self.object_body(t, depth - 1, false)
    }

    fn value(&mut self, t: TypeId, plain: bool, depth: u32) -> Result<Value<'a>, Error> {
        match t.def().kind {
            // attachments: one fused pass finds the end of the string and checks the alphabet
            TypeKind::Primitive(PrimKind::Base64Binary)
                if self.lx.peek() == Some(b'"')
                    && let Some(s) = self.lx.base64_string(is_base64_alphabet) =>
            {
                Ok(Value::Primitive(Primitive {
                    type_id: t,
                    value: Some(PrimValue::String(Cow::Borrowed(s))),
                    element: None,
                }))
            }
            TypeKind::Primitive(k) => {
                let v = self.primitive(k)?;
                if plain {
                    return Ok(Value::Primitive(Primitive {
                        type_id: t,
                        value: Some(v),
                        element: None,
                    }));
                }
                check_primitive(k, &v).map_err(|r| self.error(ErrorKind::InvalidPrimitive(r)))?;
                Ok(Value::Primitive(Primitive {
                    type_id: t,
                    value: Some(v),
                    element: None,
                }))
            }
            TypeKind::AbstractResource => Ok(Value::Resource(Box::new(self.resource(depth - 1)?))),
            _ => Ok(Value::Complex(self.object(t, depth)?)),
        }
    }

    fn primitive(&mut self, k: PrimKind) -> Result<PrimValue<'a>, Error> {
        let next = self.lx.peek();
        let ok = match (k.json_kind(), next) {
            (JsonKind::Bool, Some(b't' | b'f')) => {
                return Ok(PrimValue::Bool(
                    self.lx
                        .literal()
                        .map_err(|e| self.syntax(e))?
                        .unwrap_or(false),
                ));
            }
            (JsonKind::Integer | JsonKind::Number, Some(b'-' | b'0'..=b'9')) => {
                let (text, integer) = self.lx.number().map_err(|e| self.syntax(e))?;
                if k.json_kind() == JsonKind::Integer && !integer {
                    return Err(self.error(ErrorKind::InvalidPrimitive("not an integer")));
                }
                return Ok(PrimValue::Number(Cow::Borrowed(text)));
            }
            (JsonKind::String, Some(b'"')) => true,
            _ => false,
        };
        if !ok {
            let expected = match k.json_kind() {
                JsonKind::Bool => "boolean",
                JsonKind::Integer | JsonKind::Number => "number",
                JsonKind::String => "string",
            };
            return Err(self.error(ErrorKind::WrongType {
                expected: expected.into(),
            }));
        }
        Ok(PrimValue::String(
            self.lx.string().map_err(|e| self.syntax(e))?,
        ))
    }
}

/// Checks a primitive's lexical form (R4 §2.24.0.1 regular expressions, <https://hl7.org/fhir/R4/datatypes.html>).
pub fn check_primitive(k: PrimKind, v: &PrimValue<'_>) -> Result<(), &'static str> {
    let s = match (k.json_kind(), v) {
        (JsonKind::Bool, PrimValue::Bool(_)) => return Ok(()),
        (JsonKind::Integer, PrimValue::Number(n)) => {
            let i: i64 = n.parse().map_err(|_| "not an integer")?;
            return match k {
                PrimKind::PositiveInt if !(1..=i64::from(i32::MAX)).contains(&i) => {
                    Err("positiveInt out of range")
                }
                PrimKind::UnsignedInt if !(0..=i64::from(i32::MAX)).contains(&i) => {
                    Err("unsignedInt out of range")
                }
                _ if i32::try_from(i).is_err() => Err("integer out of range"),
                _ => Ok(()),
            };
        }
        (JsonKind::Number, PrimValue::Number(n)) => {
            let mut lx = Lexer::new(n.as_bytes());
            return match lx.number() {
                Ok(_) if lx.pos == n.len() => Ok(()),
                _ => Err("not a decimal"),
            };
        }
        (JsonKind::String, PrimValue::String(s)) => s,
        _ => return Err("wrong kind of value"),
    };
    match k {
        PrimKind::String | PrimKind::Markdown
            if s.is_empty() => {
                return Err("empty string");
            }
        PrimKind::Code if s.is_ascii() => {
            // [^\s]+(\s[^\s]+)* on bytes (char::is_whitespace's ASCII set: \t \n \x0b \x0c \r ' ')
            let b = s.as_bytes();
            let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
            if b.is_empty() || ws(b[0]) || ws(b[b.len() - 1]) {
                return Err("code with leading/trailing whitespace or empty");
            }
            if b.windows(2).any(|w| ws(w[1]) && (ws(w[0]) || w[1] == 0x0b || w[1] == 0x0c)) {
                return Err("code with invalid whitespace");
            }
        }
        PrimKind::Code => {
            // [^\s]+(\s[^\s]+)*
            if s.is_empty()
                || s.starts_with(char::is_whitespace)
                || s.ends_with(char::is_whitespace)
            {
                return Err("code with leading/trailing whitespace or empty");
            }
            let mut prev_ws = false;
            for c in s.chars() {
                let ws = c.is_whitespace();
                if ws && (prev_ws || c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                    return Err("code with invalid whitespace");
                }
                prev_ws = ws;
            }
        }
        PrimKind::Id
            // The 64-character limit is reported by `validate` as a warning only: the official
            // package itself has a 67-character SearchParameter id.
            if (s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
            => {
                return Err("id must be made of [A-Za-z0-9.-]");
            }
        PrimKind::Date
            if !is_date(s, false) => {
                return Err("invalid date");
            }
        PrimKind::DateTime
            if !is_date(s, true) => {
                return Err("invalid dateTime");
            }
        PrimKind::Instant
            if (s.len() < 20 || !is_date(s, true)) => {
                return Err("invalid instant");
            }
        PrimKind::Time
            if !is_time(s) => {
                return Err("invalid time");
            }
        PrimKind::Uri | PrimKind::Url | PrimKind::Canonical | PrimKind::Oid | PrimKind::Uuid
            if (s.is_empty() || s.contains(char::is_whitespace)) => {
                return Err("uri empty or with whitespace");
            }
        PrimKind::Base64Binary
            if !is_base64(s.as_bytes())
            => {
                return Err("invalid base64");
            }
        _ => {}
    }
    Ok(())
}

/// Whether every byte is allowed in base64Binary (RFC 4648 alphabet, padding, whitespace);
/// branch-free per chunk so the compiler vectorises it.
fn is_base64(b: &[u8]) -> bool {
    b.chunks(64)
        .all(|c| is_base64_alphabet(c) || chunk_with_whitespace_is_base64(c))
}

/// Whether every byte is a letter, digit, `+`, `/`, `=` or space: base64 as it appears in JSON,
/// where the other whitespace would be escaped (attachments are 80% of the bytes of the
/// radiology examples).
#[allow(clippy::needless_bitwise_bool)] // branch-free on purpose
fn is_base64_alphabet(c: &[u8]) -> bool {
    let mut bad = 0u8;
    for &x in c {
        let letter = u8::from((x | 0x20).wrapping_sub(b'a') < 26);
        // `/` and the digits are 0x2F..=0x39
        let slash_digit = u8::from(x.wrapping_sub(b'/') < 11);
        let other = u8::from(x == b'+') | u8::from(x == b'=') | u8::from(x == b' ');
        bad |= 1 ^ (letter | slash_digit | other);
    }
    bad == 0
}

/// The full base64Binary alphabet test, whitespace included.
#[allow(clippy::needless_bitwise_bool)] // branch-free on purpose
fn chunk_with_whitespace_is_base64(c: &[u8]) -> bool {
    let mut bad = 0u8;
    for &x in c {
        let letter = u8::from((x | 0x20).wrapping_sub(b'a') < 26);
        let slash_digit = u8::from(x.wrapping_sub(b'/') < 11);
        let other = u8::from(x == b'+')
            | u8::from(x == b'=')
            | u8::from(x == b' ')
            | u8::from(x == b'\r')
            | u8::from(x == b'\n')
            | u8::from(x == b'\t');
        bad |= 1 ^ (letter | slash_digit | other);
    }
    bad == 0
}

fn digits(s: &[u8], n: usize) -> Option<u32> {
    let d = s.get(..n)?;
    d.iter().try_fold(0u32, |a, &b| {
        b.is_ascii_digit().then(|| a * 10 + u32::from(b - b'0'))
    })
}

/// `YYYY(-MM(-DD(Thh:mm:ss(.f+)?(Z|±hh:mm))?)?)?` (R4 date/dateTime).
fn is_date(s: &str, time_allowed: bool) -> bool {
    let b = s.as_bytes();
    if digits(b, 4).is_none() {
        return false;
    }
    if b.len() == 4 {
        return true;
    }
    if b.get(4) != Some(&b'-') || !digits(&b[5..], 2).is_some_and(|m| (1..=12).contains(&m)) {
        return false;
    }
    if b.len() == 7 {
        return true;
    }
    if b.get(7) != Some(&b'-') || !digits(&b[8..], 2).is_some_and(|d| (1..=31).contains(&d)) {
        return false;
    }
    if b.len() == 10 {
        return true;
    }
    if !time_allowed || b.get(10) != Some(&b'T') {
        return false;
    }
    let rest = &s[11..];
    let tz = rest.find(['Z', '+', '-']);
    let Some(tz) = tz else { return false };
    let (time, zone) = rest.split_at(tz);
    is_time(time) && (zone == "Z" || is_zone(zone))
}

fn is_zone(z: &str) -> bool {
    let b = z.as_bytes();
    b.len() == 6
        && digits(&b[1..], 2).is_some_and(|h| h <= 14)
        && b[3] == b':'
        && digits(&b[4..], 2).is_some_and(|m| m < 60)
}

/// `hh:mm:ss(.f+)?`
fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8
        || digits(b, 2).is_none_or(|h| h >= 24)
        || b[2] != b':'
        || digits(&b[3..], 2).is_none_or(|m| m >= 60)
        || b[5] != b':'
        || digits(&b[6..], 2).is_none_or(|s| s > 60)
    {
        return false;
    }
    b.len() == 8 || (b[8] == b'.' && b.len() > 9 && b[9..].iter().all(u8::is_ascii_digit))
}
