//! Query payloads: PDQ (PRPA_IN201305UV02, parameter list PRPA_MT201306UV02), PIX
//! (PRPA_IN201309UV02, PRPA_MT201307UV02), the Canadian client registry queries
//! (PRPA_IN101101/101103/101105CA, PRPA_MT101101/101103/101105CA: `personName`,
//! `personBirthtime`, `administrativeGender`, `clientIDBus`, `clientIDPub`), and their responses'
//! `queryAck`; QUQI_IN000003UV01 continuation/cancel (`queryContinuation`).

use std::borrow::Cow;

use super::{AddressRecord, NameRecord};
use crate::types::{Ad, Coded, Ii, IvlTs, Pn};
use crate::xml::Element;

/// `queryByParameter` of a PDQ or PIX query (or echoed in a response).
#[derive(Debug, Clone, Copy)]
pub struct QueryByParameter<'d, 'a> {
    elem: Element<'d, 'a>,
}

impl<'d, 'a> QueryByParameter<'d, 'a> {
    /// Wraps a `queryByParameter` element.
    pub fn new(elem: Element<'d, 'a>) -> Self {
        QueryByParameter { elem }
    }
    /// `queryId`.
    pub fn query_id(&self) -> Option<Ii<'a>> {
        self.elem.child("queryId").map(|e| Ii::from_element(&e))
    }
    /// `statusCode/@code` (`new`).
    pub fn status_code(&self) -> Option<Cow<'a, str>> {
        self.elem.child("statusCode").and_then(|e| e.attr("code"))
    }
    /// `initialQuantity/@value` (PDQ).
    pub fn initial_quantity(&self) -> Option<Cow<'a, str>> {
        self.elem
            .child("initialQuantity")
            .and_then(|e| e.attr("value"))
    }
    /// `responseModalityCode/@code` (R = real time, B = batch).
    pub fn response_modality_code(&self) -> Option<Cow<'a, str>> {
        self.elem
            .child("responseModalityCode")
            .and_then(|e| e.attr("code"))
    }
    /// `responsePriorityCode/@code` (I = immediate, D = deferred).
    pub fn response_priority_code(&self) -> Option<Cow<'a, str>> {
        self.elem
            .child("responsePriorityCode")
            .and_then(|e| e.attr("code"))
    }
    /// PDQ `matchCriterionList/minimumDegreeMatch/value/@value`.
    pub fn minimum_degree_match(&self) -> Option<Cow<'a, str>> {
        self.elem
            .path(&["matchCriterionList", "minimumDegreeMatch", "value"])
            .and_then(|e| e.attr("value"))
    }
    /// `value` children of the parameters named in `params`, parameter by parameter in
    /// document order (IHE and Canadian names of the same parameter may both be given).
    fn values(
        &self,
        params: &'static [&'static str],
    ) -> impl Iterator<Item = Element<'d, 'a>> + use<'d, 'a> {
        self.elem
            .child("parameterList")
            .into_iter()
            .flat_map(|l| l.children())
            .filter(move |p| params.contains(&p.local_name()))
            .flat_map(|p| p.children_named("value"))
    }
    /// PDQ `livingSubjectName/value`, CA `personName/value`.
    pub fn names(&self) -> impl Iterator<Item = Pn<'d, 'a>> + use<'d, 'a> {
        self.values(&["livingSubjectName", "personName"])
            .map(Pn::new)
    }
    /// PDQ `livingSubjectAdministrativeGender/value`, CA `administrativeGender/value`.
    pub fn gender(&self) -> Option<Coded<'d, 'a>> {
        self.values(&["livingSubjectAdministrativeGender", "administrativeGender"])
            .next()
            .map(Coded::new)
    }
    /// PDQ `livingSubjectBirthTime/value`, CA `personBirthtime/value` (an IVL_TS; a point is
    /// its `value`).
    pub fn birth_time(&self) -> Option<IvlTs<'a>> {
        self.values(&["livingSubjectBirthTime", "personBirthtime"])
            .next()
            .map(|e| IvlTs::from_element(&e))
    }
    /// PDQ `livingSubjectId/value`, CA `clientIDBus/value` and `clientIDPub/value`.
    pub fn living_subject_ids(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        self.values(&["livingSubjectId", "clientIDBus", "clientIDPub"])
            .map(|e| Ii::from_element(&e))
    }
    /// PIX `patientIdentifier/value`.
    pub fn patient_identifiers(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        self.values(&["patientIdentifier"])
            .map(|e| Ii::from_element(&e))
    }
    /// Every patient identifier asked for: [`Self::living_subject_ids`] then
    /// [`Self::patient_identifiers`].
    pub fn patient_ids(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        self.living_subject_ids().chain(self.patient_identifiers())
    }
    /// PDQ `patientAddress/value`.
    pub fn addresses(&self) -> impl Iterator<Item = Ad<'d, 'a>> + use<'d, 'a> {
        self.values(&["patientAddress"]).map(Ad::new)
    }
    /// PIX/PDQ `dataSource/value`: the assigning authorities asked for.
    pub fn data_sources(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        self.values(&["dataSource"]).map(|e| Ii::from_element(&e))
    }
    /// PDQ `otherIDsScopingOrganization/value`.
    pub fn other_ids_scoping_organizations(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        self.values(&["otherIDsScopingOrganization"])
            .map(|e| Ii::from_element(&e))
    }

    /// Copies the view into an owned record (the input of the PDQ/PIX query encoders).
    pub fn to_record(&self) -> QueryRecord {
        let owned = |c: Option<Cow<'_, str>>| c.map(Cow::into_owned);
        QueryRecord {
            query_id: self.query_id().map(Ii::into_owned),
            status_code: owned(self.status_code()),
            response_modality_code: owned(self.response_modality_code()),
            response_priority_code: owned(self.response_priority_code()),
            initial_quantity: owned(self.initial_quantity()),
            minimum_degree_match: owned(self.minimum_degree_match()),
            gender: owned(self.gender().and_then(|g| g.code())),
            birth_time: owned(self.birth_time().and_then(|t| t.value)),
            names: self.names().map(|n| NameRecord::from_view(&n)).collect(),
            addresses: self
                .addresses()
                .map(|a| AddressRecord::from_view(&a))
                .collect(),
            living_subject_ids: self.living_subject_ids().map(Ii::into_owned).collect(),
            patient_identifiers: self.patient_identifiers().map(Ii::into_owned).collect(),
            data_sources: self.data_sources().map(Ii::into_owned).collect(),
            other_ids_scoping_organizations: self
                .other_ids_scoping_organizations()
                .map(Ii::into_owned)
                .collect(),
        }
    }
}

/// An owned PDQ/PIX `queryByParameter`: what the view exposes, for storage and encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryRecord {
    /// `queryId`.
    pub query_id: Option<Ii<'static>>,
    /// `statusCode/@code` (`new` in a query).
    pub status_code: Option<String>,
    /// `responseModalityCode/@code`.
    pub response_modality_code: Option<String>,
    /// `responsePriorityCode/@code`.
    pub response_priority_code: Option<String>,
    /// `initialQuantity/@value`.
    pub initial_quantity: Option<String>,
    /// `matchCriterionList/minimumDegreeMatch/value/@value` (an INT).
    pub minimum_degree_match: Option<String>,
    /// `livingSubjectAdministrativeGender/value/@code`.
    pub gender: Option<String>,
    /// `livingSubjectBirthTime/value/@value`.
    pub birth_time: Option<String>,
    /// `livingSubjectName/value`.
    pub names: Vec<NameRecord>,
    /// `patientAddress/value`.
    pub addresses: Vec<AddressRecord>,
    /// `livingSubjectId/value` (PDQ).
    pub living_subject_ids: Vec<Ii<'static>>,
    /// `patientIdentifier/value` (PIX).
    pub patient_identifiers: Vec<Ii<'static>>,
    /// `dataSource/value` (PIX).
    pub data_sources: Vec<Ii<'static>>,
    /// `otherIDsScopingOrganization/value` (PDQ).
    pub other_ids_scoping_organizations: Vec<Ii<'static>>,
}

/// `queryAck` of a query response (PRPA_IN201306UV02, PRPA_IN201310UV02).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAck<'a> {
    /// `queryId`.
    pub query_id: Option<Ii<'a>>,
    /// `queryResponseCode/@code`: OK, NF (no data found), AE (error), QE (query parameter error).
    pub response_code: Option<Cow<'a, str>>,
    /// `resultTotalQuantity/@value`.
    pub total: Option<Cow<'a, str>>,
    /// `resultCurrentQuantity/@value`.
    pub current: Option<Cow<'a, str>>,
    /// `resultRemainingQuantity/@value`.
    pub remaining: Option<Cow<'a, str>>,
}

impl<'a> QueryAck<'a> {
    /// Copies the borrowed strings (an owned record for encoding).
    pub fn into_owned(self) -> QueryAck<'static> {
        let o = |c: Option<Cow<'a, str>>| c.map(|c| Cow::Owned(c.into_owned()));
        QueryAck {
            query_id: self.query_id.map(Ii::into_owned),
            response_code: o(self.response_code),
            total: o(self.total),
            current: o(self.current),
            remaining: o(self.remaining),
        }
    }

    /// Reads a `queryAck` element.
    pub fn from_element(e: &Element<'_, 'a>) -> Self {
        let v = |name: &str, attr: &str| e.child(name).and_then(|c| c.attr(attr));
        QueryAck {
            query_id: e.child("queryId").map(|c| Ii::from_element(&c)),
            response_code: v("queryResponseCode", "code"),
            total: v("resultTotalQuantity", "value"),
            current: v("resultCurrentQuantity", "value"),
            remaining: v("resultRemainingQuantity", "value"),
        }
    }
}

/// `queryContinuation` of QUQI_IN000003UV01 (continue, or cancel with quantity 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryContinuation<'a> {
    /// `queryId`.
    pub query_id: Option<Ii<'a>>,
    /// `statusCode/@code` (`waitContinuedQueryResponse` or `aborted`).
    pub status_code: Option<Cow<'a, str>>,
    /// `continuationQuantity/@value`.
    pub quantity: Option<Cow<'a, str>>,
}

impl<'a> QueryContinuation<'a> {
    /// Reads a `queryContinuation` element.
    pub fn from_element(e: &Element<'_, 'a>) -> Self {
        QueryContinuation {
            query_id: e.child("queryId").map(|c| Ii::from_element(&c)),
            status_code: e.child("statusCode").and_then(|c| c.attr("code")),
            quantity: e
                .child("continuationQuantity")
                .and_then(|c| c.attr("value")),
        }
    }
}
