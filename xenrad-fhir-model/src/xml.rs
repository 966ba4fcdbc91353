//! Layer 4: FHIR's XML format (R4 <https://hl7.org/fhir/R4/xml.html>) for the same model, with
//! quick-xml. Elements in specification order; primitives as `value` attributes with `id` and
//! child `extension`s; `Element.id` and `Extension.url` as attributes; resources wrapped in their
//! element (`<contained><Patient>…`); `Narrative.div` carried as raw XHTML. Unknown members kept by
//! the lenient JSON reader have no XML form and are not written.

use crate::error::{Error, ErrorKind, push_segment};
use crate::generated::ResourceType;
use crate::model::{Field, Node, PrimValue, Primitive, Resource, Value, Values};
use crate::schema::{JsonKind, PrimKind, TypeId, TypeKind};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use std::borrow::Cow;
use std::fmt::Write as _;

const FHIR_NS: &str = "http://hl7.org/fhir";

/// Serialises a resource as FHIR XML (no XML declaration).
///
/// ```
/// let r = xenrad_fhir_model::from_json(br#"{"resourceType":"Patient","id":"p","name":[{"family":"O'Brien"}],"birthDate":"1970"}"#)?;
/// let xml = xenrad_fhir_model::xml::to_xml(&r);
/// assert_eq!(xml, r#"<Patient xmlns="http://hl7.org/fhir"><id value="p"/><name><family value="O'Brien"/></name><birthDate value="1970"/></Patient>"#);
/// assert_eq!(xenrad_fhir_model::xml::from_xml(&xml)?, r);
/// # Ok::<(), xenrad_fhir_model::Error>(())
/// ```
pub fn to_xml(r: &Resource<'_>) -> String {
    let mut out = String::with_capacity(512);
    write_resource(&mut out, r, true);
    out
}

fn write_resource(out: &mut String, r: &Resource<'_>, root: bool) {
    let name = r.resource_type.as_str();
    out.push('<');
    out.push_str(name);
    if root {
        let _ = write!(out, " xmlns=\"{FHIR_NS}\"");
    }
    if write_children(out, &r.node) {
        let _ = write!(out, "</{name}>");
    }
}

/// Writes `>` + children, or `/>` when there are none; returns whether an end tag is needed.
fn write_children(out: &mut String, node: &Node<'_>) -> bool {
    // attributes first: plain elements (`Element.id`, `Extension.url`)
    for f in &node.fields {
        let e = node.element_def(f.index);
        if e.plain
            && let Some(v) = f.values.first().and_then(Value::as_str)
        {
            let _ = write!(out, " {}=\"", e.name);
            escape_attr(out, v);
            out.push('"');
        }
    }
    let mut open = false;
    for f in &node.fields {
        let e = node.element_def(f.index);
        if e.plain {
            continue;
        }
        if !open {
            out.push('>');
            open = true;
        }
        write_field(out, node, f);
    }
    if !open {
        out.push_str("/>");
    }
    open
}

fn write_field(out: &mut String, node: &Node<'_>, f: &Field<'_>) {
    let name = node.json_name(f);
    for v in f.values.iter() {
        match v {
            Value::Primitive(p) => {
                if p.type_id.prim() == Some(PrimKind::Xhtml) {
                    if let Some(PrimValue::String(s)) = &p.value {
                        out.push_str(s);
                    }
                    continue;
                }
                out.push('<');
                out.push_str(&name);
                if let Some(el) = &p.element
                    && let Some(id) = el.str("id")
                {
                    out.push_str(" id=\"");
                    escape_attr(out, id);
                    out.push('"');
                }
                if let Some(val) = &p.value {
                    out.push_str(" value=\"");
                    match val {
                        PrimValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                        PrimValue::Number(s) | PrimValue::String(s) => escape_attr(out, s),
                    }
                    out.push('"');
                }
                let exts = p
                    .element
                    .as_ref()
                    .map(|el| el.get("extension"))
                    .unwrap_or_default();
                if exts.is_empty() {
                    out.push_str("/>");
                } else {
                    out.push('>');
                    for x in exts {
                        if let Value::Complex(n) = x {
                            out.push_str("<extension");
                            if write_children(out, n) {
                                out.push_str("</extension>");
                            }
                        }
                    }
                    let _ = write!(out, "</{name}>");
                }
            }
            Value::Complex(n) => {
                out.push('<');
                out.push_str(&name);
                if write_children(out, n) {
                    let _ = write!(out, "</{name}>");
                }
            }
            Value::Resource(r) => {
                let _ = write!(out, "<{name}>");
                write_resource(out, r, false);
                let _ = write!(out, "</{name}>");
            }
        }
    }
}

/// Whether `s` is one well-formed XHTML `div` element and nothing else (the form `Narrative.div`
/// must have, R4 narrative.html#xhtml); only such values can be carried in XML.
pub fn is_xhtml_div(s: &str) -> bool {
    if !s.starts_with("<div") {
        return false;
    }
    let mut rd = quick_xml::Reader::from_str(s);
    let mut depth = 0usize;
    loop {
        match rd.read_event() {
            Ok(Event::Start(e)) => {
                if depth == 0 && e.local_name().as_ref() != "div" {
                    return false;
                }
                depth += 1;
            }
            Ok(Event::Empty(e)) => {
                if depth == 0 {
                    return e.local_name().as_ref() == "div"
                        && rd.read_event().is_ok_and(|e| matches!(e, Event::Eof));
                }
            }
            Ok(Event::End(_)) => {
                depth -= 1;
                if depth == 0 {
                    return matches!(rd.read_event(), Ok(Event::Eof));
                }
            }
            Ok(Event::Eof) | Err(_) => return false,
            Ok(_) => {
                if depth == 0 {
                    return false;
                }
            }
        }
    }
}

/// Whether every `Narrative.div` in the resource is a well-formed XHTML div (else [`to_xml`]
/// cannot be read back).
pub fn xml_representable(r: &Resource<'_>) -> bool {
    fn node_ok(n: &Node<'_>) -> bool {
        n.fields.iter().all(|f| {
            f.values.iter().all(|v| match v {
                Value::Primitive(p) => {
                    p.type_id.prim() != Some(PrimKind::Xhtml)
                        || p.value
                            .as_ref()
                            .and_then(PrimValue::as_str)
                            .is_some_and(is_xhtml_div)
                }
                Value::Complex(c) => node_ok(c),
                Value::Resource(r) => node_ok(&r.node),
            })
        }) && n.unknown.is_empty()
    }
    node_ok(&r.node)
}

fn escape_attr(out: &mut String, s: &str) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            // keep whitespace through attribute-value normalisation (XML 1.0 §3.3.3)
            b'\n' => "&#10;",
            b'\r' => "&#13;",
            b'\t' => "&#9;",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        out.push_str(esc);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Reads a resource from FHIR XML (strict: unknown elements and attributes are errors).
pub fn from_xml(input: &str) -> Result<Resource<'_>, Error> {
    let mut r = XmlReader {
        input,
        rd: quick_xml::Reader::from_str(input),
        path: String::new(),
    };
    r.rd.config_mut().trim_text(true);
    loop {
        match r.next()? {
            Event::Start(e) => return r.resource(&e, false, 100),
            Event::Empty(e) => return r.resource(&e, true, 100),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => return Err(r.err(ErrorKind::MissingResourceType)),
            _ => {
                return Err(r.err(ErrorKind::Syntax(
                    "unexpected content before the root element",
                )));
            }
        }
    }
}

struct XmlReader<'a> {
    input: &'a str,
    rd: quick_xml::Reader<&'a [u8]>,
    path: String,
}

fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_owned()
}

impl<'a> XmlReader<'a> {
    fn err(&self, kind: ErrorKind) -> Error {
        Error {
            pointer: self.path.clone(),
            offset: Some(self.rd.buffer_position() as usize),
            kind,
        }
    }

    fn next(&mut self) -> Result<Event<'a>, Error> {
        self.rd
            .read_event()
            .map_err(|_| self.err(ErrorKind::Syntax("malformed XML")))
    }

    fn resource(
        &mut self,
        start: &BytesStart<'a>,
        empty: bool,
        depth: u32,
    ) -> Result<Resource<'a>, Error> {
        let name = local(start);
        let rt = ResourceType::from_name(&name)
            .ok_or_else(|| self.err(ErrorKind::UnknownResourceType(name)))?;
        let node = self.node(rt.type_id(), start, empty, depth)?;
        Ok(Resource {
            resource_type: rt,
            node,
        })
    }

    fn node(
        &mut self,
        ty: TypeId,
        start: &BytesStart<'a>,
        empty: bool,
        depth: u32,
    ) -> Result<Node<'a>, Error> {
        if depth == 0 {
            return Err(self.err(ErrorKind::TooDeep));
        }
        let def = ty.def();
        let mut node = Node::new(ty);
        for a in start.attributes() {
            let a = a.map_err(|_| self.err(ErrorKind::Syntax("malformed attribute")))?;
            let key = a.key.as_ref().to_owned();
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|_| self.err(ErrorKind::Syntax("bad attribute value")))?
                .into_owned();
            match def.element(&key) {
                Some((i, e)) if e.plain => {
                    let v = Value::Primitive(Primitive {
                        type_id: e.types[0],
                        value: Some(PrimValue::String(Cow::Owned(value))),
                        element: None,
                    });
                    push(&mut node, i, v);
                }
                _ => return Err(self.err(ErrorKind::UnknownElement(format!("@{key}")))),
            }
        }
        if !empty {
            loop {
                let before = self.rd.buffer_position() as usize;
                match self.next()? {
                    Event::Start(e) => self.child(&mut node, &e, false, before, depth)?,
                    Event::Empty(e) => self.child(&mut node, &e, true, before, depth)?,
                    Event::End(_) => break,
                    Event::Comment(_) => {}
                    Event::Eof => {
                        return Err(self.err(ErrorKind::Syntax("unexpected end of document")));
                    }
                    _ => return Err(self.err(ErrorKind::Syntax("unexpected text"))),
                }
            }
        }
        if !node.fields.is_sorted_by_key(|f| f.index) {
            node.fields.sort_by_key(|f| f.index);
        }
        Ok(node)
    }

    fn child(
        &mut self,
        node: &mut Node<'a>,
        e: &BytesStart<'a>,
        empty: bool,
        before: usize,
        depth: u32,
    ) -> Result<(), Error> {
        let name = local(e);
        let len = self.path.len();
        push_segment(&mut self.path, &name);
        let def = node.type_id.def();
        let (idx, t) = def
            .element_for_json(&name)
            .filter(|(i, _)| !def.elements[*i as usize].plain)
            .ok_or_else(|| self.err(ErrorKind::UnknownElement(name.clone())))?;
        if let Some(f) = node.fields.iter().find(|f| f.index == idx) {
            // a second value of a single element, or of a choice element under another type
            if !def.elements[idx as usize].is_array()
                || f.values.first().is_some_and(|v| v.type_id() != t)
                    && def.elements[idx as usize].choice
            {
                return Err(self.err(ErrorKind::Duplicate));
            }
        }
        let v = match t.def().kind {
            TypeKind::Primitive(PrimKind::Xhtml) => {
                let end = if empty {
                    self.rd.buffer_position() as usize
                } else {
                    self.rd
                        .read_to_end(e.name())
                        .map_err(|_| self.err(ErrorKind::Syntax("malformed XHTML")))?;
                    self.rd.buffer_position() as usize
                };
                let raw = self.input.get(before..end).unwrap_or("").trim_start();
                Value::Primitive(Primitive {
                    type_id: t,
                    value: Some(PrimValue::String(Cow::Borrowed(raw))),
                    element: None,
                })
            }
            TypeKind::Primitive(k) => self.primitive(t, k, e, empty, depth)?,
            TypeKind::AbstractResource => {
                if empty {
                    return Err(self.err(ErrorKind::WrongType {
                        expected: "a resource".into(),
                    }));
                }
                let r = loop {
                    match self.next()? {
                        Event::Start(s) => break self.resource(&s, false, depth - 1)?,
                        Event::Empty(s) => break self.resource(&s, true, depth - 1)?,
                        Event::Comment(_) => {}
                        _ => {
                            return Err(self.err(ErrorKind::WrongType {
                                expected: "a resource".into(),
                            }));
                        }
                    }
                };
                loop {
                    match self.next()? {
                        Event::End(_) => break,
                        Event::Comment(_) => {}
                        _ => {
                            return Err(
                                self.err(ErrorKind::Syntax("more than one resource in a wrapper"))
                            );
                        }
                    }
                }
                Value::Resource(Box::new(r))
            }
            _ => Value::Complex(self.node(t, e, empty, depth - 1)?),
        };
        push(node, idx, v);
        self.path.truncate(len);
        Ok(())
    }

    #[allow(clippy::many_single_char_names)]
    fn primitive(
        &mut self,
        t: TypeId,
        k: PrimKind,
        e: &BytesStart<'a>,
        empty: bool,
        depth: u32,
    ) -> Result<Value<'a>, Error> {
        let element_t = TypeId::by_name("Element").expect("Element type");
        let mut value = None;
        let mut el = Node::new(element_t);
        for a in e.attributes() {
            let a = a.map_err(|_| self.err(ErrorKind::Syntax("malformed attribute")))?;
            let text = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|_| self.err(ErrorKind::Syntax("bad attribute value")))?
                .into_owned();
            match a.key.as_ref() {
                "value" => {
                    let v = match k.json_kind() {
                        JsonKind::Bool => match text.as_str() {
                            "true" => PrimValue::Bool(true),
                            "false" => PrimValue::Bool(false),
                            _ => return Err(self.err(ErrorKind::InvalidPrimitive("not a boolean"))),
                        },
                        JsonKind::Integer | JsonKind::Number => PrimValue::Number(Cow::Owned(text)),
                        JsonKind::String => PrimValue::String(Cow::Owned(text)),
                    };
                    crate::check_primitive(k, &v)
                        .map_err(|r| self.err(ErrorKind::InvalidPrimitive(r)))?;
                    value = Some(v);
                }
                "id" => {
                    el.add_str("id", text).map_err(|x| x.under(&self.path))?;
                }
                other => {
                    let name = other.to_owned();
                    return Err(self.err(ErrorKind::UnknownElement(format!("@{name}"))));
                }
            }
        }
        if !empty {
            let (ext_idx, ext_def) = element_t
                .def()
                .element("extension")
                .expect("Element.extension");
            loop {
                match self.next()? {
                    Event::Start(c) if c.local_name().as_ref() == "extension" => {
                        let n = self.node(ext_def.types[0], &c, false, depth - 1)?;
                        push(&mut el, ext_idx, Value::Complex(n));
                    }
                    Event::Empty(c) if c.local_name().as_ref() == "extension" => {
                        let n = self.node(ext_def.types[0], &c, true, depth - 1)?;
                        push(&mut el, ext_idx, Value::Complex(n));
                    }
                    Event::End(_) => break,
                    Event::Comment(_) => {}
                    _ => {
                        return Err(
                            self.err(ErrorKind::Syntax("unexpected content in a primitive"))
                        );
                    }
                }
            }
        }
        let element = (!el.fields.is_empty()).then(|| Box::new(el));
        if value.is_none() && element.is_none() {
            return Err(self.err(ErrorKind::BadSibling(
                "primitive without value or extension",
            )));
        }
        Ok(Value::Primitive(Primitive {
            type_id: t,
            value,
            element,
        }))
    }
}

fn push<'a>(node: &mut Node<'a>, idx: u16, v: Value<'a>) {
    if let Some(f) = node.fields.iter_mut().find(|f| f.index == idx) {
        f.values.push(v);
    } else {
        node.fields.push(Field {
            index: idx,
            values: Values::One(v),
        });
    }
}
