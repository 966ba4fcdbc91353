//! Query payloads: PDQ (PRPA_IN201305UV02, parameter list PRPA_MT201306UV02), PIX
//! (PRPA_IN201309UV02, PRPA_MT201307UV02), and their responses' `queryAck`; QUQI_IN000003UV01
//! continuation/cancel (`queryContinuation`).

use std::borrow::Cow;

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
    fn values(&self, param: &'static str) -> impl Iterator<Item = Element<'d, 'a>> + use<'d, 'a> {
        self.elem
            .child("parameterList")
            .into_iter()
            .flat_map(move |l| l.children_named(param))
            .flat_map(|p| p.children_named("value"))
    }
    /// PDQ `livingSubjectName/value`.
    pub fn names(&self) -> impl Iterator<Item = Pn<'d, 'a>> + use<'d, 'a> {
        self.values("livingSubjectName").map(Pn::new)
    }
    /// PDQ `livingSubjectAdministrativeGender/value`.
    pub fn gender(&self) -> Option<Coded<'d, 'a>> {
        self.values("livingSubjectAdministrativeGender")
            .next()
            .map(Coded::new)
    }
    /// PDQ `livingSubjectBirthTime/value` (an IVL_TS; a point is its `value`).
    pub fn birth_time(&self) -> Option<IvlTs<'a>> {
        self.values("livingSubjectBirthTime")
            .next()
            .map(|e| IvlTs::from_element(&e))
    }
    /// PDQ `livingSubjectId/value` and PIX `patientIdentifier/value`.
    pub fn patient_ids(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        self.values("livingSubjectId")
            .chain(self.values("patientIdentifier"))
            .map(|e| Ii::from_element(&e))
    }
    /// PDQ `patientAddress/value`.
    pub fn addresses(&self) -> impl Iterator<Item = Ad<'d, 'a>> + use<'d, 'a> {
        self.values("patientAddress").map(Ad::new)
    }
    /// PIX/PDQ `dataSource/value`: the assigning authorities asked for.
    pub fn data_sources(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        self.values("dataSource").map(|e| Ii::from_element(&e))
    }
    /// PDQ `otherIDsScopingOrganization/value`.
    pub fn other_ids_scoping_organizations(&self) -> impl Iterator<Item = Ii<'a>> + use<'d, 'a> {
        self.values("otherIDsScopingOrganization")
            .map(|e| Ii::from_element(&e))
    }
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
