//! PN (ADT R1 §2.20) and AD (§2.19): mixed content, parts in any order, text between parts kept.

use std::borrow::Cow;

use crate::xml::{Element, Node};

/// Kind of a person name part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamePartKind {
    /// `given`
    Given,
    /// `family`
    Family,
    /// `prefix`
    Prefix,
    /// `suffix`
    Suffix,
    /// `delimiter`
    Delimiter,
    /// Unstructured text directly inside the name.
    Text,
}

impl NamePartKind {
    /// The element name of the part (`""` for text).
    pub fn tag(self) -> &'static str {
        match self {
            NamePartKind::Given => "given",
            NamePartKind::Family => "family",
            NamePartKind::Prefix => "prefix",
            NamePartKind::Suffix => "suffix",
            NamePartKind::Delimiter => "delimiter",
            NamePartKind::Text => "",
        }
    }
    fn from_tag(t: &str) -> Option<Self> {
        Some(match t {
            "given" => NamePartKind::Given,
            "family" => NamePartKind::Family,
            "prefix" => NamePartKind::Prefix,
            "suffix" => NamePartKind::Suffix,
            "delimiter" => NamePartKind::Delimiter,
            _ => return None,
        })
    }
}

/// One part of a PN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePart<'a> {
    /// Which part.
    pub kind: NamePartKind,
    /// Its text.
    pub value: Cow<'a, str>,
    /// `qualifier` (e.g. `BR`, `SP`, `CL`).
    pub qualifier: Option<Cow<'a, str>>,
}

/// PN / EN: a person name as mixed content.
#[derive(Debug, Clone, Copy)]
pub struct Pn<'d, 'a> {
    elem: Element<'d, 'a>,
}

impl<'d, 'a> Pn<'d, 'a> {
    /// Wraps a name element.
    pub fn new(elem: Element<'d, 'a>) -> Self {
        Pn { elem }
    }
    /// `use` codes (e.g. `L`, `A`, `P`).
    pub fn use_(&self) -> Option<Cow<'a, str>> {
        self.elem.attr("use")
    }
    /// `nullFlavor`.
    pub fn null_flavor(&self) -> Option<Cow<'a, str>> {
        super::null_flavor(&self.elem)
    }
    /// Parts in document order; non-whitespace text between parts is a [`NamePartKind::Text`] part.
    pub fn parts(&self) -> impl Iterator<Item = NamePart<'a>> + use<'d, 'a> {
        self.elem.nodes().filter_map(|n| match n {
            Node::Element(e) => NamePartKind::from_tag(e.local_name()).map(|kind| NamePart {
                kind,
                value: e.text(),
                qualifier: e.attr("qualifier"),
            }),
            Node::Text(t) => (!t.is_whitespace()).then(|| NamePart {
                kind: NamePartKind::Text,
                value: t.trimmed(),
                qualifier: None,
            }),
        })
    }
    /// Values of the parts of one element kind, in order (only those parts are read).
    fn of(&self, tag: &'static str) -> impl Iterator<Item = Cow<'a, str>> + use<'d, 'a> {
        self.elem
            .children()
            .filter(move |e| e.local_name() == tag)
            .map(|e| e.text())
    }
    /// Given names in order.
    pub fn given(&self) -> impl Iterator<Item = Cow<'a, str>> + use<'d, 'a> {
        self.of("given")
    }
    /// Family names in order.
    pub fn family(&self) -> impl Iterator<Item = Cow<'a, str>> + use<'d, 'a> {
        self.of("family")
    }
}

/// Kind of an address part (ADT R1 §2.19 ADXP types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrPartKind {
    /// `streetAddressLine`
    StreetAddressLine,
    /// `houseNumber`
    HouseNumber,
    /// `streetName`
    StreetName,
    /// `unitID`
    UnitId,
    /// `city`
    City,
    /// `state`
    State,
    /// `postalCode`
    PostalCode,
    /// `country`
    Country,
    /// `county`
    County,
    /// `censusTract`
    CensusTract,
    /// `additionalLocator`
    AdditionalLocator,
    /// `postBox`
    PostBox,
    /// `precinct`
    Precinct,
    /// `delimiter`
    Delimiter,
    /// `useablePeriod` is not a part; any other element.
    Other,
    /// Unstructured text directly inside the address.
    Text,
}

const ADDR_TAGS: &[(&str, AddrPartKind)] = &[
    ("streetAddressLine", AddrPartKind::StreetAddressLine),
    ("houseNumber", AddrPartKind::HouseNumber),
    ("streetName", AddrPartKind::StreetName),
    ("unitID", AddrPartKind::UnitId),
    ("city", AddrPartKind::City),
    ("state", AddrPartKind::State),
    ("postalCode", AddrPartKind::PostalCode),
    ("country", AddrPartKind::Country),
    ("county", AddrPartKind::County),
    ("censusTract", AddrPartKind::CensusTract),
    ("additionalLocator", AddrPartKind::AdditionalLocator),
    ("postBox", AddrPartKind::PostBox),
    ("precinct", AddrPartKind::Precinct),
    ("delimiter", AddrPartKind::Delimiter),
];

impl AddrPartKind {
    /// The element name of the part (`""` for text and other).
    pub fn tag(self) -> &'static str {
        ADDR_TAGS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(t, _)| t)
    }
    fn from_tag(t: &str) -> Self {
        ADDR_TAGS
            .iter()
            .find(|(n, _)| *n == t)
            .map_or(AddrPartKind::Other, |(_, k)| *k)
    }
}

/// One part of an AD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrPart<'a> {
    /// Which part.
    pub kind: AddrPartKind,
    /// Its text.
    pub value: Cow<'a, str>,
}

/// AD: a postal address as mixed content.
#[derive(Debug, Clone, Copy)]
pub struct Ad<'d, 'a> {
    elem: Element<'d, 'a>,
}

impl<'d, 'a> Ad<'d, 'a> {
    /// Wraps an address element.
    pub fn new(elem: Element<'d, 'a>) -> Self {
        Ad { elem }
    }
    /// `use` codes (e.g. `H`, `WP`).
    pub fn use_(&self) -> Option<Cow<'a, str>> {
        self.elem.attr("use")
    }
    /// `nullFlavor`.
    pub fn null_flavor(&self) -> Option<Cow<'a, str>> {
        super::null_flavor(&self.elem)
    }
    /// Parts in document order (excluding `useablePeriod`).
    pub fn parts(&self) -> impl Iterator<Item = AddrPart<'a>> + use<'d, 'a> {
        self.elem.nodes().filter_map(|n| match n {
            Node::Element(e) if e.local_name() == "useablePeriod" => None,
            Node::Element(e) => Some(AddrPart {
                kind: AddrPartKind::from_tag(e.local_name()),
                value: e.text(),
            }),
            Node::Text(t) => (!t.is_whitespace()).then(|| AddrPart {
                kind: AddrPartKind::Text,
                value: t.trimmed(),
            }),
        })
    }
    /// First part of a kind.
    pub fn get(&self, kind: AddrPartKind) -> Option<Cow<'a, str>> {
        match kind {
            // Typed parts: look at the child elements only.
            AddrPartKind::Text | AddrPartKind::Other => {
                self.parts().find(|p| p.kind == kind).map(|p| p.value)
            }
            _ => self
                .elem
                .children()
                .find(|e| e.local_name() == kind.tag())
                .map(|e| e.text()),
        }
    }
}
