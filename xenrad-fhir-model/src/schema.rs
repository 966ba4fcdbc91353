//! Layer 1: the descriptor types the generated tables (`generated/defs.rs`) are made of, and
//! lookups over them. The model, reader, writer and validator are generic code driven by these
//! tables (FHIR R4 StructureDefinition snapshots, <https://hl7.org/fhir/R4/elementdefinition.html>).

use crate::generated::{
    RESOURCE_TYPES, ResourceType, SEARCH_BY_BASE, SEARCH_PARAMS, TYPE_NAMES, TYPES,
};

/// Index of a type in [`crate::generated::TYPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub u16);

impl TypeId {
    /// The descriptor of this type.
    pub fn def(self) -> &'static TypeDef {
        &TYPES[self.0 as usize]
    }

    /// The type's name (`Patient`, `HumanName`, `string`, or a backbone path like `Patient.contact`).
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Looks a type up by its name.
    pub fn by_name(name: &str) -> Option<TypeId> {
        TYPE_NAMES
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| TYPE_NAMES[i].1)
    }

    /// The primitive kind, if this is a primitive type.
    pub fn prim(self) -> Option<PrimKind> {
        match self.def().kind {
            TypeKind::Primitive(p) => Some(p),
            _ => None,
        }
    }

    /// Whether values of this type are resources (`Resource` as an element type: any resource).
    pub fn is_any_resource(self) -> bool {
        matches!(self.def().kind, TypeKind::AbstractResource)
    }
}

/// What a type is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    /// A primitive type (JSON string, number or boolean, with an optional `_name` sibling).
    Primitive(PrimKind),
    /// A complex data type (`HumanName`, `Quantity`, …).
    Complex,
    /// A concrete resource.
    Resource,
    /// `Resource`/`DomainResource`: as an element type it means "any resource" (`contained`).
    AbstractResource,
    /// A backbone element defined inline in a resource or data type.
    Backbone,
}

/// The FHIR primitive types (R4 §2.24.0.1 <https://hl7.org/fhir/R4/datatypes.html#primitive>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum PrimKind {
    Base64Binary,
    Boolean,
    Canonical,
    Code,
    Date,
    DateTime,
    Decimal,
    Id,
    Instant,
    Integer,
    Markdown,
    Oid,
    PositiveInt,
    String,
    Time,
    UnsignedInt,
    Uri,
    Url,
    Uuid,
    Xhtml,
}

impl PrimKind {
    /// How the value is represented in JSON (R4 JSON §1.2 <https://hl7.org/fhir/R4/json.html#primitive>).
    pub fn json_kind(self) -> JsonKind {
        match self {
            PrimKind::Boolean => JsonKind::Bool,
            PrimKind::Integer | PrimKind::PositiveInt | PrimKind::UnsignedInt => JsonKind::Integer,
            PrimKind::Decimal => JsonKind::Number,
            _ => JsonKind::String,
        }
    }
}

/// JSON representation class of a primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `true`/`false`.
    Bool,
    /// A JSON number without fraction or exponent.
    Integer,
    /// Any JSON number (decimal; text kept exactly).
    Number,
    /// A JSON string.
    String,
}

/// A type: its name, kind and elements in specification order.
#[derive(Debug)]
pub struct TypeDef {
    /// Type name or backbone path.
    pub name: &'static str,
    /// Kind.
    pub kind: TypeKind,
    /// Child elements, in the order of the StructureDefinition (= JSON output order).
    pub elements: &'static [ElementDef],
    /// Indexes of the elements whose cardinality needs checking after reading (`min > 0`, or a
    /// maximum other than 1 and `*`); the others cannot be violated by a reader that rejects
    /// duplicate members and arrays for single-valued elements.
    pub checked: &'static [u16],
}

impl TypeDef {
    /// Finds an element by JSON member name; for choice elements (`value[x]`) also returns the
    /// chosen type (`valueQuantity` → (`value`, `Quantity`)).
    pub fn element_for_json(&self, key: &str) -> Option<(u16, TypeId)> {
        self.element_for_json_from(key, 0)
    }

    /// [`element_for_json`](Self::element_for_json) starting the search at element `start` and
    /// wrapping around: members usually come in specification order, so a reader passing the
    /// element after the previous match finds most members at the first try.
    #[inline]
    pub fn element_for_json_from(&self, key: &str, start: usize) -> Option<(u16, TypeId)> {
        let n = self.elements.len();
        let start = if start < n { start } else { 0 };
        (start..n)
            .chain(0..start)
            .find_map(|i| Self::matches(i, &self.elements[i], key))
    }

    #[inline]
    fn matches(i: usize, e: &ElementDef, key: &str) -> Option<(u16, TypeId)> {
        let (n, k) = (e.name.as_bytes(), key.as_bytes());
        // first byte before any length-dependent compare: most candidates fail here
        if n.first() != k.first() {
            return None;
        }
        if e.choice {
            let suffix = key.strip_prefix(e.name)?;
            e.types
                .iter()
                .find(|t| choice_suffix_eq(t.name(), suffix))
                .map(|&t| (i as u16, t))
        } else if e.name.len() == key.len() && e.name == key {
            Some((i as u16, e.types[0]))
        } else {
            None
        }
    }

    /// Finds an element by its (base) name.
    pub fn element(&self, name: &str) -> Option<(u16, &'static ElementDef)> {
        self.elements
            .iter()
            .enumerate()
            .find(|(_, e)| e.name == name)
            .map(|(i, e)| (i as u16, e))
    }
}

/// `valueString` suffix test: the type name with its first letter upper-cased.
fn choice_suffix_eq(type_name: &str, suffix: &str) -> bool {
    let (t, s) = (type_name.as_bytes(), suffix.as_bytes());
    t.len() == s.len() && !t.is_empty() && t[0].to_ascii_uppercase() == s[0] && t[1..] == s[1..]
}

/// Writes the JSON member name of a choice element for a type (`value` + `Quantity`).
pub fn choice_json_name(base: &str, t: TypeId) -> String {
    let n = t.name();
    let mut s = String::with_capacity(base.len() + n.len());
    s.push_str(base);
    let mut c = n.chars();
    if let Some(f) = c.next() {
        s.push(f.to_ascii_uppercase());
        s.push_str(c.as_str());
    }
    s
}

/// One element of a type.
#[derive(Debug)]
pub struct ElementDef {
    /// JSON name (for choice elements the base name without `[x]`).
    pub name: &'static str,
    /// Minimum cardinality.
    pub min: u32,
    /// Maximum cardinality (`u32::MAX` = `*`).
    pub max: u32,
    /// Allowed types (several only for choice elements).
    pub types: &'static [TypeId],
    /// Whether this is a choice element `name[x]`.
    pub choice: bool,
    /// Whether the value is a plain JSON string without a `_name` sibling (`Element.id`, `Extension.url`).
    pub plain: bool,
    /// The enumerable value set of a required binding, if any.
    pub binding: Option<&'static ValueSetDef>,
    /// `ElementDefinition.isSummary`: part of the `_summary=true` subset
    /// (R4 search.html#summary).
    pub summary: bool,
}

impl ElementDef {
    /// Whether the element repeats (JSON array).
    pub fn is_array(&self) -> bool {
        self.max > 1
    }
}

/// The value set of a required binding: enumerated (codes taken from the package's expansions)
/// or, for a whole grammar-defined system such as BCP 13 MIME types, checked by syntax.
#[derive(Debug)]
pub struct ValueSetDef {
    /// Canonical URL.
    pub url: &'static str,
    /// The codes, sorted (empty when `rule` is set).
    pub codes: &'static [&'static str],
    /// The code systems the codes come from, sorted.
    pub systems: &'static [&'static str],
    /// For value sets spanning several systems: each system with its codes (sorted), so a
    /// coding is checked as an exact (system, code) pair.
    pub by_system: &'static [(&'static str, &'static [&'static str])],
    /// A syntax rule instead of a list.
    pub rule: Option<CodeRule>,
}

/// Code systems defined by a grammar rather than a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRule {
    /// BCP 13 / RFC 6838 §4.2 media types: `type/subtype` with optional `; parameter=value`s.
    MimeType,
}

impl CodeRule {
    /// Whether `code` follows the rule.
    pub fn check(self, code: &str) -> bool {
        match self {
            // `xml`, `json` and `ttl` stand for FHIR's own formats where a format is expected
            // (R4 CapabilityStatement.format, bound to the same value set)
            CodeRule::MimeType => matches!(code, "xml" | "json" | "ttl") || is_mime_type(code),
        }
    }
}

/// RFC 6838 §4.2 `restricted-name "/" restricted-name`, then optional parameters.
fn is_mime_type(s: &str) -> bool {
    fn restricted_name(n: &str) -> bool {
        let b = n.as_bytes();
        !b.is_empty()
            && b.len() <= 127
            && b[0].is_ascii_alphanumeric()
            && b[1..]
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c))
    }
    let mut parts = s.split(';');
    let media = parts.next().unwrap_or("");
    let ok_media = media
        .split_once('/')
        .is_some_and(|(t, st)| restricted_name(t) && restricted_name(st));
    ok_media
        && parts.all(|p| {
            p.trim()
                .split_once('=')
                .is_some_and(|(k, v)| restricted_name(k.trim()) && !v.trim().is_empty())
        })
}

impl ValueSetDef {
    /// Whether `code` is in the value set.
    pub fn contains(&self, code: &str) -> bool {
        match self.rule {
            Some(rule) => rule.check(code),
            None => self.codes.binary_search(&code).is_ok(),
        }
    }

    /// Whether a coding (`system` optional) is in the value set: the exact (system, code) pair
    /// when a system is given, the code alone otherwise.
    pub fn contains_coding(&self, system: Option<&str>, code: &str) -> bool {
        match (system, self.by_system.is_empty()) {
            (Some(s), false) => self
                .by_system
                .binary_search_by(|(n, _)| (*n).cmp(s))
                .is_ok_and(|i| self.by_system[i].1.binary_search(&code).is_ok()),
            (Some(s), true) => self.systems.binary_search(&s).is_ok() && self.contains(code),
            (None, _) => self.contains(code),
        }
    }
}

/// Type of a search parameter (R4 §3.1.1.4 <https://hl7.org/fhir/R4/search.html#ptypes>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum SearchParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

/// One SearchParameter of the specification.
#[derive(Debug, PartialEq, Eq)]
pub struct SearchParamDef {
    /// The code used in query strings (`name`, `birthdate`).
    pub code: &'static str,
    /// Canonical URL (used in CapabilityStatements).
    pub url: &'static str,
    /// Parameter type.
    pub kind: SearchParamType,
    /// FHIRPath expression (may cover several bases joined by `|`).
    pub expression: &'static str,
    /// Resource types it applies to (`Resource`/`DomainResource` for the common ones).
    pub base: &'static [&'static str],
    /// Target resource types of reference parameters.
    pub target: &'static [&'static str],
    /// Component definitions of composite parameters.
    pub components: &'static [&'static str],
}

/// The search parameters defined for a resource type, including `Resource`/`DomainResource` ones
/// (`_id`, `_lastUpdated`, …).
pub fn search_params(rt: ResourceType) -> impl Iterator<Item = &'static SearchParamDef> {
    let name = rt.as_str();
    ["Resource", "DomainResource", name]
        .into_iter()
        .filter_map(|b| SEARCH_BY_BASE.binary_search_by(|(n, _)| (*n).cmp(b)).ok())
        .flat_map(|i| SEARCH_BY_BASE[i].1.iter())
        .map(|&i| &SEARCH_PARAMS[i as usize])
}

/// Looks up one search parameter of a resource type by code.
pub fn search_param(rt: ResourceType, code: &str) -> Option<&'static SearchParamDef> {
    search_params(rt).find(|p| p.code == code)
}

impl ResourceType {
    /// All 146 resource types.
    pub fn all() -> impl Iterator<Item = ResourceType> {
        RESOURCE_TYPES.iter().map(|r| r.0)
    }

    /// The resource type's name (`Patient`).
    pub fn as_str(self) -> &'static str {
        RESOURCE_TYPES[self as usize].1
    }

    /// Parses a `resourceType` name.
    pub fn from_name(name: &str) -> Option<ResourceType> {
        // RESOURCE_TYPES is sorted by name (checked by a test)
        RESOURCE_TYPES
            .binary_search_by(|r| r.1.cmp(name))
            .ok()
            .map(|i| RESOURCE_TYPES[i].0)
    }

    /// The descriptor type of this resource.
    pub fn type_id(self) -> TypeId {
        RESOURCE_TYPES[self as usize].2
    }
}

impl std::fmt::Display for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ResourceType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ResourceType::from_name(s).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types() {
        for ok in [
            "application/pdf",
            "text/plain; charset=UTF-8",
            "application/fhir+json",
            "image/svg+xml",
            "json",
        ] {
            assert!(CodeRule::MimeType.check(ok), "{ok}");
        }
        for bad in [
            "pdf",
            "application/",
            "/pdf",
            "text/plain;",
            "text/pl ain",
            "application/pdf; x",
        ] {
            assert!(!CodeRule::MimeType.check(bad), "{bad}");
        }
    }

    #[test]
    fn resource_types_are_sorted_by_name() {
        assert!(RESOURCE_TYPES.is_sorted_by(|a, b| a.1 < b.1));
        for r in ResourceType::all() {
            assert_eq!(ResourceType::from_name(r.as_str()), Some(r));
        }
        assert_eq!(ResourceType::from_name("HumanName"), None);
    }
}
