//! Layer 3: borrowed views of the HL7 v3 data types (Abstract Data Types R1 / XML ITS 1.0).
//!
//! Every view is read off an [`Element`]; strings borrow the input unless a reference forced a copy.

mod name_addr;
mod time;

use std::borrow::Cow;

use crate::xml::{Element, XSI_NS};

pub use name_addr::{Ad, AddrPart, AddrPartKind, NamePart, NamePartKind, Pn};
pub use time::{IvlTs, Pq, Precision, Ts, TsParts, parse_ts};

/// `nullFlavor` of any element (ADT R1 §2.3: NI, OTH, NINF, PINF, UNK, ASKU, NAV, NASK, TRC, MSK, NA, NP).
pub fn null_flavor<'a>(e: &Element<'_, 'a>) -> Option<Cow<'a, str>> {
    e.attr("nullFlavor")
}

/// `xsi:type` of an element resolved through its namespace prefix: (namespace URI, local name).
/// `None` when absent or when the prefix is unbound.
pub fn xsi_type<'d, 'a>(e: &Element<'d, 'a>) -> Option<(&'d str, &'a str)> {
    let raw = e
        .attributes()
        .find(|a| a.local_name() == "type" && a.namespace() == XSI_NS)?
        .raw_value();
    e.resolve_qname(raw)
}

/// Kind of an II root (ADT R1 §2.17: OID, UUID or RUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKind {
    /// ISO object identifier: dot-separated decimal arcs.
    Oid,
    /// DCE UUID, 8-4-4-4-12 hex digits.
    Uuid,
    /// HL7 reserved unique identifier: a letter then letters, digits and `-`.
    Ruid,
    /// None of the above.
    Invalid,
}

/// Classifies an II root.
pub fn root_kind(root: &str) -> RootKind {
    let b = root.as_bytes();
    if b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
    {
        return RootKind::Uuid;
    }
    if !b.is_empty()
        && root.split('.').all(|arc| {
            !arc.is_empty()
                && arc.bytes().all(|c| c.is_ascii_digit())
                && (arc == "0" || !arc.starts_with('0'))
        })
    {
        return RootKind::Oid;
    }
    if b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    {
        return RootKind::Ruid;
    }
    RootKind::Invalid
}

/// II: instance identifier (root, extension, nullFlavor).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ii<'a> {
    /// `root` (OID, UUID or RUID).
    pub root: Option<Cow<'a, str>>,
    /// `extension` within the root's namespace.
    pub extension: Option<Cow<'a, str>>,
    /// `assigningAuthorityName`.
    pub assigning_authority_name: Option<Cow<'a, str>>,
    /// `nullFlavor`.
    pub null_flavor: Option<Cow<'a, str>>,
}

impl<'a> Ii<'a> {
    /// Reads an II from its element (one pass over the attributes; unprefixed names only).
    pub fn from_element(e: &Element<'_, 'a>) -> Self {
        let mut ii = Ii::default();
        for a in e.attributes() {
            // A prefixed name never equals one of these (its qualified name has a colon).
            let slot = match a.qname() {
                "root" => &mut ii.root,
                "extension" => &mut ii.extension,
                "assigningAuthorityName" => &mut ii.assigning_authority_name,
                "nullFlavor" => &mut ii.null_flavor,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(a.value());
            }
        }
        ii
    }
    /// The kind of the root, if there is one.
    pub fn root_kind(&self) -> Option<RootKind> {
        self.root.as_deref().map(root_kind)
    }
    /// Copies into an owned identifier.
    pub fn into_owned(self) -> Ii<'static> {
        Ii {
            root: self.root.map(|c| Cow::Owned(c.into_owned())),
            extension: self.extension.map(|c| Cow::Owned(c.into_owned())),
            assigning_authority_name: self
                .assigning_authority_name
                .map(|c| Cow::Owned(c.into_owned())),
            null_flavor: self.null_flavor.map(|c| Cow::Owned(c.into_owned())),
        }
    }
}

/// CS / CV / CE / CD: a coded value with optional original text and translations.
#[derive(Debug, Clone)]
pub struct Coded<'d, 'a> {
    elem: Element<'d, 'a>,
}

impl<'d, 'a> Coded<'d, 'a> {
    /// Wraps a coded element.
    pub fn new(elem: Element<'d, 'a>) -> Self {
        Coded { elem }
    }
    /// The underlying element.
    pub fn element(&self) -> Element<'d, 'a> {
        self.elem
    }
    /// `code`.
    pub fn code(&self) -> Option<Cow<'a, str>> {
        self.elem.attr("code")
    }
    /// `codeSystem` (an OID).
    pub fn code_system(&self) -> Option<Cow<'a, str>> {
        self.elem.attr("codeSystem")
    }
    /// `codeSystemName`.
    pub fn code_system_name(&self) -> Option<Cow<'a, str>> {
        self.elem.attr("codeSystemName")
    }
    /// `codeSystemVersion`.
    pub fn code_system_version(&self) -> Option<Cow<'a, str>> {
        self.elem.attr("codeSystemVersion")
    }
    /// `displayName`.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.elem.attr("displayName")
    }
    /// `nullFlavor`.
    pub fn null_flavor(&self) -> Option<Cow<'a, str>> {
        null_flavor(&self.elem)
    }
    /// Text of the `originalText` child.
    pub fn original_text(&self) -> Option<Cow<'a, str>> {
        self.elem.child("originalText").map(|e| e.text())
    }
    /// `translation` children (CD/CE).
    pub fn translations(&self) -> impl Iterator<Item = Coded<'d, 'a>> + use<'d, 'a> {
        self.elem.children_named("translation").map(Coded::new)
    }
    /// `qualifier` children (CD).
    pub fn qualifiers(&self) -> impl Iterator<Item = Element<'d, 'a>> + use<'d, 'a> {
        self.elem.children_named("qualifier")
    }
}

/// TEL: a telecommunication address (`value` URL such as `tel:`, `mailto:`; `use` codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tel<'a> {
    /// `value` URL.
    pub value: Option<Cow<'a, str>>,
    /// `use` (space-separated codes such as `HP WP`).
    pub use_: Option<Cow<'a, str>>,
    /// `nullFlavor`.
    pub null_flavor: Option<Cow<'a, str>>,
}

impl<'a> Tel<'a> {
    /// Reads a TEL from its element.
    pub fn from_element(e: &Element<'_, 'a>) -> Self {
        Tel {
            value: e.attr("value"),
            use_: e.attr("use"),
            null_flavor: null_flavor(e),
        }
    }
    /// The URL scheme (`tel`, `mailto`, `http`, …).
    pub fn scheme(&self) -> Option<&str> {
        self.value.as_deref()?.split_once(':').map(|(s, _)| s)
    }
}
