//! Patient payload (PRPA_MT201301UV02 Patient and its revisions): borrowed view and owned record.

use std::borrow::Cow;

use crate::types::{Ad, AddrPartKind, Coded, Ii, NamePartKind, Pn, Tel, Ts};
use crate::xml::Element;

/// A borrowed view of `patient` (role) with its `patientPerson`, or of the Canadian client
/// registry's `identifiedEntity` with its `identifiedPerson` (PRPA_MT101001CA … 101104CA).
#[derive(Debug, Clone, Copy)]
pub struct Patient<'d, 'a> {
    elem: Element<'d, 'a>,
}

impl<'d, 'a> Patient<'d, 'a> {
    /// Wraps a `patient` element.
    pub fn new(elem: Element<'d, 'a>) -> Self {
        Patient { elem }
    }
    /// The `patient` element.
    pub fn element(&self) -> Element<'d, 'a> {
        self.elem
    }
    /// The person: `patientPerson` (IHE) or `identifiedPerson`/`person` variants.
    pub fn person(&self) -> Option<Element<'d, 'a>> {
        self.elem.children().find(|c| {
            matches!(
                c.local_name(),
                "patientPerson" | "person" | "identifiedPerson"
            )
        })
    }
    /// Patient identifiers (`patient/id`).
    pub fn ids(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        self.elem.children_named("id").map(|e| Ii::from_element(&e))
    }
    /// `patient/statusCode/@code`.
    pub fn status_code(&self) -> Option<Cow<'a, str>> {
        self.elem.child("statusCode").and_then(|e| e.attr("code"))
    }
    /// Person names.
    pub fn names(&self) -> impl Iterator<Item = Pn<'d, 'a>> + use<'d, 'a> {
        self.person()
            .into_iter()
            .flat_map(|p| p.children_named("name"))
            .map(Pn::new)
    }
    /// `administrativeGenderCode`.
    pub fn gender(&self) -> Option<Coded<'d, 'a>> {
        self.person()?
            .child("administrativeGenderCode")
            .map(Coded::new)
    }
    /// `birthTime`.
    pub fn birth_time(&self) -> Option<Ts<'a>> {
        self.person()?
            .child("birthTime")
            .map(|e| Ts::from_element(&e))
    }
    /// Postal addresses.
    pub fn addresses(&self) -> impl Iterator<Item = Ad<'d, 'a>> + use<'d, 'a> {
        self.person()
            .into_iter()
            .flat_map(|p| p.children_named("addr"))
            .map(Ad::new)
    }
    /// Telecom addresses of the person.
    pub fn telecoms(&self) -> impl Iterator<Item = Tel<'a>> + use<'d, 'a> {
        self.person()
            .into_iter()
            .flat_map(|p| p.children_named("telecom"))
            .map(|e| Tel::from_element(&e))
    }
    /// Other identifiers: `asOtherIDs/id` (PIX feeds and responses).
    pub fn other_ids(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        self.person()
            .into_iter()
            .flat_map(|p| p.children_named("asOtherIDs"))
            .flat_map(|o| o.children_named("id"))
            .map(|e| Ii::from_element(&e))
    }
    /// Identifiers being merged away (PRPA_IN201304UV02:
    /// `registrationEvent/replacementOf/priorRegistration/subject1/priorRegisteredRole/id`).
    pub fn replaced_ids(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        let reg = self.elem.parent().and_then(|s| s.parent());
        reg.into_iter()
            .flat_map(|r| r.children_named("replacementOf"))
            .filter_map(|r| r.path(&["priorRegistration", "subject1", "priorRegisteredRole"]))
            .flat_map(|r| r.children_named("id"))
            .map(|e| Ii::from_element(&e))
    }

    /// Copies the view into an owned record (the input of the PRPA encoder).
    pub fn to_record(&self) -> PatientRecord {
        let s = |c: Option<Cow<'_, str>>| c.map(Cow::into_owned);
        PatientRecord {
            ids: self.ids().map(Ii::into_owned).collect(),
            status_code: s(self.status_code()),
            names: self.names().map(|n| NameRecord::from_view(&n)).collect(),
            telecoms: self
                .telecoms()
                .map(|t| TelRecord {
                    value: s(t.value),
                    use_: s(t.use_),
                })
                .collect(),
            gender: self.gender().and_then(|g| g.code()).map(Cow::into_owned),
            birth_time: self.birth_time().and_then(|t| t.value).map(Cow::into_owned),
            addresses: self
                .addresses()
                .map(|a| AddressRecord::from_view(&a))
                .collect(),
            other_ids: self.other_ids().map(Ii::into_owned).collect(),
            replaced_ids: self.replaced_ids().map(Ii::into_owned).collect(),
        }
    }
}

/// An owned person name: `use` and parts in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameRecord {
    /// `use` codes.
    pub use_: Option<String>,
    /// Parts in order.
    pub parts: Vec<(NamePartKind, String)>,
}

impl NameRecord {
    /// Copies a PN view (`use` and parts in order).
    pub fn from_view(n: &Pn<'_, '_>) -> Self {
        NameRecord {
            use_: n.use_().map(Cow::into_owned),
            parts: n.parts().map(|p| (p.kind, p.value.into_owned())).collect(),
        }
    }
    /// Given names.
    pub fn given(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .filter(|(k, _)| *k == NamePartKind::Given)
            .map(|(_, v)| v.as_str())
    }
    /// Family names.
    pub fn family(&self) -> impl Iterator<Item = &str> {
        self.parts
            .iter()
            .filter(|(k, _)| *k == NamePartKind::Family)
            .map(|(_, v)| v.as_str())
    }
}

/// An owned postal address: `use` and parts in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressRecord {
    /// `use` codes.
    pub use_: Option<String>,
    /// Parts in order.
    pub parts: Vec<(AddrPartKind, String)>,
}

impl AddressRecord {
    /// Copies an AD view (`use` and the typed parts in order).
    pub fn from_view(a: &Ad<'_, '_>) -> Self {
        AddressRecord {
            use_: a.use_().map(Cow::into_owned),
            parts: a
                .parts()
                .filter(|p| p.kind != AddrPartKind::Other)
                .map(|p| (p.kind, p.value.into_owned()))
                .collect(),
        }
    }
}

/// An owned telecom address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TelRecord {
    /// `value` URL.
    pub value: Option<String>,
    /// `use` codes.
    pub use_: Option<String>,
}

/// An owned patient: what the views expose, for storage and for encoding PRPA messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientRecord {
    /// `patient/id`.
    pub ids: Vec<Ii<'static>>,
    /// `patient/statusCode/@code`.
    pub status_code: Option<String>,
    /// Person names.
    pub names: Vec<NameRecord>,
    /// Person telecoms.
    pub telecoms: Vec<TelRecord>,
    /// `administrativeGenderCode/@code`.
    pub gender: Option<String>,
    /// `birthTime/@value`.
    pub birth_time: Option<String>,
    /// Addresses.
    pub addresses: Vec<AddressRecord>,
    /// `asOtherIDs/id`.
    pub other_ids: Vec<Ii<'static>>,
    /// Merged-away ids (PRPA_IN201304UV02).
    pub replaced_ids: Vec<Ii<'static>>,
}
