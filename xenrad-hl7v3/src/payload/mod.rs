//! Layer 4: payload views for the interactions that matter.
//!
//! Patient registry messages (PRPA_IN201301UV02 add, 201302 revise, 201303 deactivate, 201304
//! merge; 201306 PDQ response, 201310 PIX response) share the path
//! `controlActProcess/subject/registrationEvent/subject1/patient` (PRPA_MT201301UV02 …
//! PRPA_MT201310UV02); the Canadian client registry (PRPA_IN101201CA add, 101204CA revise,
//! 101004CA duplicates resolved, 101102/101104/101106CA query responses) uses
//! `controlActEvent/subject/registrationEvent|registrationRequest/subject/identifiedEntity`.
//! [`crate::Message::patients`] returns one [`Patient`] per subject of either shape.
//! Queries (201305, 201309, the CA 1011xx queries, QUQI_IN000003UV01) are reached through
//! [`crate::Message::query`]; everything else through generic [`Element`] access.

mod patient;
mod query;

pub use patient::{AddressRecord, NameRecord, Patient, PatientRecord, TelRecord};
pub use query::{QueryAck, QueryByParameter, QueryContinuation, QueryRecord};

use crate::Message;
use crate::xml::Element;

impl<'a> Message<'a> {
    /// Patients of a patient registry message or PIX/PDQ response, in document order.
    pub fn patients(&self) -> Vec<Patient<'_, 'a>> {
        let Some(ca) = self.control_act() else {
            return Vec::new();
        };
        ca.subjects()
            .filter_map(|s| {
                let reg = s.children().find(|c| {
                    matches!(c.local_name(), "registrationEvent" | "registrationRequest")
                })?;
                reg.children()
                    .filter(|c| matches!(c.local_name(), "subject1" | "subject"))
                    .find_map(|c| {
                        c.children()
                            .find(|p| matches!(p.local_name(), "patient" | "identifiedEntity"))
                    })
            })
            .map(Patient::new)
            .collect()
    }

    /// `queryByParameter` of a query or query response.
    pub fn query(&self) -> Option<QueryByParameter<'_, 'a>> {
        self.control_act()?
            .query_by_parameter()
            .map(QueryByParameter::new)
    }

    /// `queryAck` of a query response.
    pub fn query_ack(&self) -> Option<QueryAck<'a>> {
        self.control_act()?
            .query_ack()
            .map(|e| QueryAck::from_element(&e))
    }

    /// `queryContinuation` of a QUQI_IN000003UV01 continuation or cancel.
    pub fn query_continuation(&self) -> Option<QueryContinuation<'a>> {
        self.control_act()?
            .element()
            .child("queryContinuation")
            .map(|e| QueryContinuation::from_element(&e))
    }
}

/// Reads every element through the typed views (fuzzing and robustness tests: must not panic).
#[doc(hidden)]
pub fn touch_all(root: Element<'_, '_>) -> usize {
    use crate::types::{Ad, Coded, Ii, IvlTs, Pn, Tel, Ts, xsi_type};
    let mut n = 0usize;
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        n += usize::from(xsi_type(&e).is_some());
        let _ = Ii::from_element(&e).root_kind();
        let _ = Ts::from_element(&e).with_offset();
        let _ = IvlTs::from_element(&e);
        let _ = Tel::from_element(&e).scheme();
        let c = Coded::new(e);
        n += c.translations().count() + usize::from(c.original_text().is_some());
        n += Pn::new(e).parts().count() + Ad::new(e).parts().count();
        let _ = e.text();
        let _ = e.line_col();
        stack.extend(e.children());
    }
    n
}
