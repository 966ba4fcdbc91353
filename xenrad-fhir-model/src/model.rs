//! Layer 3: the model. One generic, table-driven representation serves all 146 resources and every
//! data type: a [`Node`] is an instance of a [`TypeId`] whose fields are kept in specification order.
//! `Resource<'a>` borrows strings from the input it was read from; `Resource<'static>` (via
//! [`Resource::into_owned`] or the builders) owns them.

use crate::error::{Error, ErrorKind};
use crate::generated::ResourceType;
use crate::json::Json;
use crate::schema::{ElementDef, PrimKind, TypeId, TypeKind, choice_json_name};
use std::borrow::Cow;

/// The values of one field, stored inline when there is one (most fields), so reading a
/// single-valued element allocates nothing for the list. Derefs to a slice.
#[derive(Debug, Clone)]
pub enum Values<'a> {
    /// Exactly one value.
    One(Value<'a>),
    /// Zero or several values.
    Many(Vec<Value<'a>>),
}

impl<'a> Values<'a> {
    /// No values (does not allocate).
    pub fn new() -> Self {
        Values::Many(Vec::new())
    }

    /// Appends a value.
    pub fn push(&mut self, v: Value<'a>) {
        match self {
            Values::Many(vs) if vs.is_empty() => *self = Values::One(v),
            Values::Many(vs) => vs.push(v),
            Values::One(_) => {
                let Values::One(first) = std::mem::take(self) else {
                    unreachable!()
                };
                *self = Values::Many(vec![first, v]);
            }
        }
    }

    /// Moves the values out of a scratch vector (one exact allocation when there are several).
    // drain+collect on purpose: exact capacity, and the scratch keeps its buffer for reuse
    #[allow(clippy::drain_collect)]
    pub fn from_drain(v: &mut Vec<Value<'a>>) -> Self {
        if v.len() == 1 {
            Values::One(v.pop().expect("one"))
        } else {
            Values::Many(v.drain(..).collect())
        }
    }
}

impl Default for Values<'_> {
    fn default() -> Self {
        Values::new()
    }
}

impl<'a> std::ops::Deref for Values<'a> {
    type Target = [Value<'a>];
    fn deref(&self) -> &[Value<'a>] {
        match self {
            Values::One(v) => std::slice::from_ref(v),
            Values::Many(vs) => vs,
        }
    }
}

impl std::ops::DerefMut for Values<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Values::One(v) => std::slice::from_mut(v),
            Values::Many(vs) => vs,
        }
    }
}

impl PartialEq for Values<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<'a> FromIterator<Value<'a>> for Values<'a> {
    fn from_iter<I: IntoIterator<Item = Value<'a>>>(iter: I) -> Self {
        let mut v: Vec<Value<'a>> = iter.into_iter().collect();
        Values::from_drain(&mut v)
    }
}

impl<'a> IntoIterator for Values<'a> {
    type Item = Value<'a>;
    type IntoIter =
        std::iter::Chain<std::option::IntoIter<Value<'a>>, std::vec::IntoIter<Value<'a>>>;
    fn into_iter(self) -> Self::IntoIter {
        match self {
            Values::One(v) => Some(v).into_iter().chain(Vec::new()),
            Values::Many(vs) => None.into_iter().chain(vs),
        }
    }
}

/// A resource: its type and content.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource<'a> {
    /// The resource type (dispatched from `resourceType` while reading, no second parse).
    pub resource_type: ResourceType,
    /// The content (its `type_id` is `resource_type.type_id()`).
    pub node: Node<'a>,
}

/// An instance of a complex type, backbone element or resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    /// The type this node instantiates.
    pub type_id: TypeId,
    /// Fields present, sorted by element index (= specification order).
    pub fields: Vec<Field<'a>>,
    /// Unknown members kept in lenient mode (name, raw JSON).
    pub unknown: Vec<(Cow<'a, str>, Json<'a>)>,
}

/// One present element of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Field<'a> {
    /// Index into the type's `elements`.
    pub index: u16,
    /// The values (one for `max = 1` elements).
    pub values: Values<'a>,
}

/// A value of an element.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// A primitive, possibly with `id`/`extension` from its `_name` sibling.
    Primitive(Primitive<'a>),
    /// A complex value (data type or backbone element).
    Complex(Node<'a>),
    /// A resource (`contained`, `Bundle.entry.resource`, `Parameters.parameter.resource`).
    Resource(Box<Resource<'a>>),
}

/// A primitive value and its element extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Primitive<'a> {
    /// The primitive type (the chosen type for choice elements).
    pub type_id: TypeId,
    /// The value; `None` when only extensions are present (`null` in a JSON array).
    pub value: Option<PrimValue<'a>>,
    /// The `_name` sibling (an `Element`: `id` and `extension`).
    pub element: Option<Box<Node<'a>>>,
}

/// The lexical value of a primitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrimValue<'a> {
    /// `boolean`
    Bool(bool),
    /// `integer`, `decimal`, …: the exact JSON text (precision kept).
    Number(Cow<'a, str>),
    /// Every string-based primitive.
    String(Cow<'a, str>),
}

impl PrimValue<'_> {
    /// The text of a string or number value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PrimValue::Number(s) | PrimValue::String(s) => Some(s),
            PrimValue::Bool(_) => None,
        }
    }
}

impl<'a> Value<'a> {
    /// The type of this value.
    pub fn type_id(&self) -> TypeId {
        match self {
            Value::Primitive(p) => p.type_id,
            Value::Complex(n) => n.type_id,
            Value::Resource(r) => r.node.type_id,
        }
    }

    /// Converts into an owned value.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Primitive(p) => Value::Primitive(Primitive {
                type_id: p.type_id,
                value: p.value.map(|v| match v {
                    PrimValue::Bool(b) => PrimValue::Bool(b),
                    PrimValue::Number(n) => PrimValue::Number(Cow::Owned(n.into_owned())),
                    PrimValue::String(s) => PrimValue::String(Cow::Owned(s.into_owned())),
                }),
                element: p.element.map(|e| Box::new(e.into_owned())),
            }),
            Value::Complex(n) => Value::Complex(n.into_owned()),
            Value::Resource(r) => Value::Resource(Box::new(r.into_owned())),
        }
    }

    /// The primitive's text, if this is a string/number primitive with a value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Primitive(p) => p.value.as_ref().and_then(PrimValue::as_str),
            _ => None,
        }
    }

    /// The complex node, if this is one.
    pub fn as_node(&self) -> Option<&Node<'a>> {
        match self {
            Value::Complex(n) => Some(n),
            _ => None,
        }
    }

    /// A primitive value of the given kind from text (booleans from `true`/`false`). Not validated
    /// here; [`Node::add`] checks the lexical form.
    pub fn primitive(kind: PrimKind, text: impl Into<Cow<'a, str>>) -> Value<'a> {
        let text = text.into();
        let t = TypeId::by_name(prim_name(kind)).expect("primitive type in tables");
        let value = match kind.json_kind() {
            crate::schema::JsonKind::Bool => PrimValue::Bool(text == "true"),
            crate::schema::JsonKind::Integer | crate::schema::JsonKind::Number => {
                PrimValue::Number(text)
            }
            crate::schema::JsonKind::String => PrimValue::String(text),
        };
        Value::Primitive(Primitive {
            type_id: t,
            value: Some(value),
            element: None,
        })
    }

    /// A `boolean` value.
    pub fn boolean(b: bool) -> Value<'a> {
        let t = TypeId::by_name("boolean").expect("boolean");
        Value::Primitive(Primitive {
            type_id: t,
            value: Some(PrimValue::Bool(b)),
            element: None,
        })
    }
}

/// The FHIR name of a primitive kind.
pub fn prim_name(kind: PrimKind) -> &'static str {
    match kind {
        PrimKind::Base64Binary => "base64Binary",
        PrimKind::Boolean => "boolean",
        PrimKind::Canonical => "canonical",
        PrimKind::Code => "code",
        PrimKind::Date => "date",
        PrimKind::DateTime => "dateTime",
        PrimKind::Decimal => "decimal",
        PrimKind::Id => "id",
        PrimKind::Instant => "instant",
        PrimKind::Integer => "integer",
        PrimKind::Markdown => "markdown",
        PrimKind::Oid => "oid",
        PrimKind::PositiveInt => "positiveInt",
        PrimKind::String => "string",
        PrimKind::Time => "time",
        PrimKind::UnsignedInt => "unsignedInt",
        PrimKind::Uri => "uri",
        PrimKind::Url => "url",
        PrimKind::Uuid => "uuid",
        PrimKind::Xhtml => "xhtml",
    }
}

impl<'a> Node<'a> {
    /// An empty node of a type.
    pub fn new(type_id: TypeId) -> Self {
        Node {
            type_id,
            fields: Vec::new(),
            unknown: Vec::new(),
        }
    }

    /// An empty node of a named type (`"HumanName"`, `"Patient.contact"`); panics on an unknown name.
    pub fn of(type_name: &str) -> Self {
        Node::new(
            TypeId::by_name(type_name).unwrap_or_else(|| panic!("unknown FHIR type {type_name}")),
        )
    }

    /// Converts into an owned node.
    pub fn into_owned(self) -> Node<'static> {
        Node {
            type_id: self.type_id,
            fields: self
                .fields
                .into_iter()
                .map(|f| Field {
                    index: f.index,
                    values: f.values.into_iter().map(Value::into_owned).collect(),
                })
                .collect(),
            unknown: self
                .unknown
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                .collect(),
        }
    }

    /// The element definition of a field.
    pub fn element_def(&self, index: u16) -> &'static ElementDef {
        &self.type_id.def().elements[index as usize]
    }

    /// The values of an element by (base) name; empty when absent.
    pub fn get(&self, name: &str) -> &[Value<'a>] {
        match self.type_id.def().element(name) {
            Some((i, _)) => self
                .fields
                .iter()
                .find(|f| f.index == i)
                .map_or(&[], |f| &f.values),
            None => &[],
        }
    }

    /// The first value of an element, if present.
    pub fn first(&self, name: &str) -> Option<&Value<'a>> {
        self.get(name).first()
    }

    /// The text of a primitive element (first value).
    pub fn str(&self, name: &str) -> Option<&str> {
        self.first(name).and_then(Value::as_str)
    }

    /// Adds a value to an element (appends for repeating elements; a second value for a `max = 1`
    /// element is an error). The element is checked against the type definition, the value's type
    /// against the element's types (this picks the `[x]` type for choice elements), and primitive
    /// text against its lexical rules.
    pub fn add(&mut self, name: &str, value: Value<'a>) -> Result<&mut Self, Error> {
        let def = self.type_id.def();
        let (index, e) = def
            .element(name)
            .ok_or_else(|| Error::new(ErrorKind::UnknownElement(name.to_owned()), name))?;
        let vt = value.type_id();
        let ok = e.types.iter().any(|&t| {
            t == vt
                || (t.is_any_resource() && matches!(vt.def().kind, TypeKind::Resource))
                || same_complex(t, vt)
        });
        if !ok {
            return Err(Error::new(
                ErrorKind::WrongType {
                    expected: e
                        .types
                        .iter()
                        .map(|t| t.name())
                        .collect::<Vec<_>>()
                        .join("|"),
                },
                name,
            ));
        }
        if let Value::Primitive(p) = &value
            && let (Some(v), Some(k)) = (&p.value, p.type_id.prim())
        {
            crate::read::check_primitive(k, v)
                .map_err(|r| Error::new(ErrorKind::InvalidPrimitive(r), name))?;
        }
        let pos = self.fields.iter().position(|f| f.index >= index);
        match pos {
            Some(p) if self.fields[p].index == index => {
                if !e.is_array() {
                    return Err(Error::new(
                        ErrorKind::Cardinality {
                            min: e.min,
                            max: e.max,
                            found: 2,
                        },
                        name,
                    ));
                }
                self.fields[p].values.push(value);
            }
            Some(p) => self.fields.insert(
                p,
                Field {
                    index,
                    values: Values::One(value),
                },
            ),
            None => self.fields.push(Field {
                index,
                values: Values::One(value),
            }),
        }
        Ok(self)
    }

    /// Removes an element by (base) name and returns its values (empty when it was absent or
    /// the type has no such element), so that a builder can replace it.
    pub fn remove(&mut self, name: &str) -> Vec<Value<'a>> {
        let Some((index, _)) = self.type_id.def().element(name) else {
            return Vec::new();
        };
        match self.fields.iter().position(|f| f.index == index) {
            Some(p) => self.fields.remove(p).values.into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// Adds a primitive to an element whose type is not a choice: the primitive type is taken from
    /// the definition (`add_str("gender", "male")` makes a `code`).
    pub fn add_str(
        &mut self,
        name: &str,
        text: impl Into<Cow<'a, str>>,
    ) -> Result<&mut Self, Error> {
        let def = self.type_id.def();
        let (_, e) = def
            .element(name)
            .ok_or_else(|| Error::new(ErrorKind::UnknownElement(name.to_owned()), name))?;
        let kind = if e.plain {
            Some(PrimKind::String)
        } else {
            e.types[0].prim()
        };
        let kind = kind.ok_or_else(|| {
            Error::new(
                ErrorKind::WrongType {
                    expected: e.types[0].name().to_owned(),
                },
                name,
            )
        })?;
        self.add(name, Value::primitive(kind, text))
    }

    /// Adds a complex child built by `f` (`add_node("name", |n| { n.add_str("family", "Smith")?; Ok(()) })`).
    pub fn add_node(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Node<'a>) -> Result<(), Error>,
    ) -> Result<&mut Self, Error> {
        let def = self.type_id.def();
        let (_, e) = def
            .element(name)
            .ok_or_else(|| Error::new(ErrorKind::UnknownElement(name.to_owned()), name))?;
        let mut child = Node::new(e.types[0]);
        f(&mut child).map_err(|err| err.under(name))?;
        self.add(name, Value::Complex(child))
    }

    /// The JSON member name of a field's values (`valueQuantity` for choice elements).
    pub fn json_name(&self, field: &Field<'_>) -> Cow<'static, str> {
        let e = self.element_def(field.index);
        if e.choice {
            Cow::Owned(choice_json_name(e.name, field.values[0].type_id()))
        } else {
            Cow::Borrowed(e.name)
        }
    }
}

/// `Quantity` is also accepted where `Age`, `Duration`, … are declared, and vice versa, since the
/// profiles of Quantity share its structure.
fn same_complex(declared: TypeId, actual: TypeId) -> bool {
    let quantities = [
        "Quantity",
        "Age",
        "Count",
        "Distance",
        "Duration",
        "MoneyQuantity",
        "SimpleQuantity",
    ];
    quantities.contains(&declared.name()) && quantities.contains(&actual.name())
}

impl<'a> Resource<'a> {
    /// An empty resource of a type, for building.
    pub fn new(resource_type: ResourceType) -> Self {
        Resource {
            resource_type,
            node: Node::new(resource_type.type_id()),
        }
    }

    /// Converts into an owned resource.
    pub fn into_owned(self) -> Resource<'static> {
        Resource {
            resource_type: self.resource_type,
            node: self.node.into_owned(),
        }
    }

    /// The logical id.
    pub fn id(&self) -> Option<&str> {
        self.node.str("id")
    }

    /// Sets `meta.versionId` and `meta.lastUpdated` (creating `meta`, replacing both values,
    /// keeping every other `meta` element), as a server does before storing a version
    /// (R4 resource.html#Meta).
    ///
    /// ```
    /// let mut r = xenrad_fhir_model::from_json(br#"{"resourceType":"Patient","id":"p","meta":{"versionId":"1","tag":[{"code":"t"}]},"active":true}"#)?;
    /// r.set_version("2", "2026-01-01T00:00:00.000Z")?;
    /// assert_eq!(xenrad_fhir_model::to_json(&r), r#"{"resourceType":"Patient","id":"p","meta":{"versionId":"2","lastUpdated":"2026-01-01T00:00:00.000Z","tag":[{"code":"t"}]},"active":true}"#);
    /// # Ok::<(), xenrad_fhir_model::Error>(())
    /// ```
    pub fn set_version(
        &mut self,
        version_id: impl Into<Cow<'a, str>>,
        last_updated: impl Into<Cow<'a, str>>,
    ) -> Result<&mut Self, Error> {
        let (mi, _) = self
            .node
            .type_id
            .def()
            .element("meta")
            .expect("resources have meta");
        let mut meta = match self.node.fields.iter().position(|f| f.index == mi) {
            Some(p) => match self.node.fields.remove(p).values.into_iter().next() {
                Some(Value::Complex(m)) => m,
                _ => Node::of("Meta"),
            },
            None => Node::of("Meta"),
        };
        for name in ["versionId", "lastUpdated"] {
            let (i, _) = meta.type_id.def().element(name).expect("Meta elements");
            meta.fields.retain(|f| f.index != i);
        }
        meta.add_str("versionId", version_id)
            .map_err(|e| e.under("meta"))?;
        meta.add_str("lastUpdated", last_updated)
            .map_err(|e| e.under("meta"))?;
        self.node.add("meta", Value::Complex(meta))?;
        Ok(self)
    }

    /// Sets the logical id (replacing any).
    pub fn set_id(&mut self, id: impl Into<Cow<'a, str>>) -> Result<&mut Self, Error> {
        let (i, _) = self
            .node
            .type_id
            .def()
            .element("id")
            .expect("resources have id");
        self.node.fields.retain(|f| f.index != i);
        self.node.add_str("id", id)?;
        Ok(self)
    }
}
