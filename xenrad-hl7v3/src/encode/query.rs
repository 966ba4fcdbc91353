//! PDQ and PIX queries and responses (IHE ITI-47 Patient Demographics Query HL7 V3 and ITI-45
//! PIX Query HL7 V3): PRPA_IN201305UV02 / PRPA_IN201306UV02 and PRPA_IN201309UV02 /
//! PRPA_IN201310UV02 from owned records, so that view → record → encode → parse → record is the
//! identity on the fields the records carry.
//!
//! ```
//! use xenrad_hl7v3::encode::{patient::TransmissionRecord, query::QueryMessage};
//! use xenrad_hl7v3::payload::QueryRecord;
//! use xenrad_hl7v3::types::Ii;
//!
//! let id = |r: &str, e: Option<&str>| Ii {
//!     root: Some(r.to_owned().into()),
//!     extension: e.map(|e| e.to_owned().into()),
//!     ..Ii::default()
//! };
//! let query = QueryMessage {
//!     transmission: TransmissionRecord {
//!         interaction: "PRPA_IN201309UV02".into(),
//!         message_id: id("1.2.3", Some("q1")),
//!         creation_time: "20240102030405".into(),
//!         processing_code: Some("P".into()),
//!         accept_ack_code: Some("AL".into()),
//!         receiver: id("1.9", None),
//!         sender: id("1.8", None),
//!         ..TransmissionRecord::default()
//!     },
//!     query: Some(QueryRecord {
//!         query_id: Some(id("1.2.3.4", Some("77"))),
//!         status_code: Some("new".into()),
//!         patient_identifiers: vec![id("1.2.840.1", Some("P1"))],
//!         data_sources: vec![id("2.16.840.1.113883.4.1", None)],
//!         ..QueryRecord::default()
//!     }),
//!     ..QueryMessage::default()
//! };
//! let xml = query.encode();
//! let parsed = xenrad_hl7v3::strict(xml.as_bytes()).unwrap();
//! assert_eq!(QueryMessage::from_message(&parsed), query);
//! assert_eq!(parsed.query().unwrap().patient_ids().next().unwrap().extension.as_deref(), Some("P1"));
//! ```

use super::XmlWriter;
use super::patient::{
    TransmissionRecord, open_transmission, write_addr, write_name, write_subject,
};
use crate::Message;
use crate::payload::{PatientRecord, QueryAck, QueryRecord};
use crate::types::Ii;

/// An owned PDQ/PIX query (PRPA_IN201305UV02, PRPA_IN201309UV02) or query response
/// (PRPA_IN201306UV02, PRPA_IN201310UV02).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryMessage {
    /// The transmission wrapper.
    pub transmission: TransmissionRecord,
    /// Responses: `acknowledgement/typeCode/@code` (AA, AE, AR).
    pub ack_type_code: Option<String>,
    /// Responses: `acknowledgement/targetMessage/id` (the query's message id).
    pub ack_target: Option<Ii<'static>>,
    /// Responses: the patients found (one `subject` each).
    pub patients: Vec<PatientRecord>,
    /// Responses: `queryAck`.
    pub query_ack: Option<QueryAck<'static>>,
    /// `queryByParameter` (echoed in responses).
    pub query: Option<QueryRecord>,
}

impl QueryMessage {
    /// Copies a strictly parsed query or query response.
    pub fn from_message(m: &Message<'_>) -> Self {
        let h = m.header();
        QueryMessage {
            transmission: TransmissionRecord::from_message(m),
            // An acknowledgement is written with both parts; read it back the same way.
            ack_type_code: h
                .ack_type_code
                .as_ref()
                .filter(|_| h.ack_target.is_some())
                .map(|c| c.clone().into_owned()),
            ack_target: h
                .ack_target
                .clone()
                .filter(|_| h.ack_type_code.is_some())
                .map(Ii::into_owned),
            patients: m
                .patients()
                .iter()
                .map(crate::payload::Patient::to_record)
                .collect(),
            query_ack: m.query_ack().map(QueryAck::into_owned),
            query: m.query().map(|q| q.to_record()),
        }
    }

    /// Encodes the message as HL7 v3 XML (control act wrapper QUQI_MT021001UV01 / QUQI_MT120000UV01).
    pub fn encode(&self) -> String {
        let mut w = XmlWriter::new();
        let root = self.transmission.interaction.as_str();
        let acknowledgement = match (&self.ack_type_code, &self.ack_target) {
            (Some(code), Some(target)) => Some((code.as_str(), target)),
            _ => None,
        };
        open_transmission(&mut w, &self.transmission, acknowledgement);
        for p in &self.patients {
            write_subject(&mut w, p);
        }
        if let Some(a) = &self.query_ack {
            write_query_ack(&mut w, a);
        }
        if let Some(q) = &self.query {
            write_query(&mut w, q);
        }
        w.close("controlActProcess");
        w.close(root);
        w.finish()
    }
}

fn write_query_ack(w: &mut XmlWriter, a: &QueryAck<'_>) {
    w.open("queryAck", &[]);
    if let Some(id) = &a.query_id {
        w.ii("queryId", id);
    }
    for (name, attr, v) in [
        ("queryResponseCode", "code", &a.response_code),
        ("resultTotalQuantity", "value", &a.total),
        ("resultCurrentQuantity", "value", &a.current),
        ("resultRemainingQuantity", "value", &a.remaining),
    ] {
        if let Some(v) = v {
            w.empty(name, &[(attr, Some(v))]);
        }
    }
    w.close("queryAck");
}

/// One parameter of the parameter list: `<name><value …/><semanticsText>…</semanticsText></name>`.
fn parameter(w: &mut XmlWriter, name: &str, semantics: &str, value: impl FnOnce(&mut XmlWriter)) {
    w.open(name, &[]);
    value(w);
    w.text_element("semanticsText", &[], semantics);
    w.close(name);
}

/// `queryByParameter` in schema order (PRPA_MT201306UV02.QueryByParameter for PDQ,
/// PRPA_MT201307UV02.QueryByParameter for PIX; parameters in ParameterList order).
fn write_query(w: &mut XmlWriter, q: &QueryRecord) {
    w.open("queryByParameter", &[]);
    if let Some(id) = &q.query_id {
        w.ii("queryId", id);
    }
    for (name, attr, v) in [
        ("statusCode", "code", &q.status_code),
        ("responseModalityCode", "code", &q.response_modality_code),
        ("responsePriorityCode", "code", &q.response_priority_code),
        ("initialQuantity", "value", &q.initial_quantity),
    ] {
        if let Some(v) = v {
            w.empty(name, &[(attr, Some(v))]);
        }
    }
    if let Some(m) = &q.minimum_degree_match {
        w.open("matchCriterionList", &[]);
        w.open("minimumDegreeMatch", &[]);
        w.empty("value", &[("xsi:type", Some("INT")), ("value", Some(m))]);
        w.text_element("semanticsText", &[], "Degree of match requested");
        w.close("minimumDegreeMatch");
        w.close("matchCriterionList");
    }
    w.open("parameterList", &[]);
    // PIX (PRPA_MT201307UV02.ParameterList): dataSource*, patientIdentifier.
    for id in &q.data_sources {
        parameter(w, "dataSource", "DataSource.id", |w| {
            w.ii("value", id);
        });
    }
    if let Some(g) = &q.gender {
        parameter(
            w,
            "livingSubjectAdministrativeGender",
            "LivingSubject.administrativeGender",
            |w| w.empty("value", &[("code", Some(g))]),
        );
    }
    if let Some(b) = &q.birth_time {
        parameter(
            w,
            "livingSubjectBirthTime",
            "LivingSubject.birthTime",
            |w| {
                w.empty("value", &[("value", Some(b))]);
            },
        );
    }
    for id in &q.living_subject_ids {
        parameter(w, "livingSubjectId", "LivingSubject.id", |w| {
            w.ii("value", id);
        });
    }
    for n in &q.names {
        parameter(w, "livingSubjectName", "LivingSubject.name", |w| {
            write_name(w, "value", n);
        });
    }
    for id in &q.other_ids_scoping_organizations {
        parameter(
            w,
            "otherIDsScopingOrganization",
            "OtherIDs.scopingOrganization.id",
            |w| {
                w.ii("value", id);
            },
        );
    }
    for a in &q.addresses {
        parameter(w, "patientAddress", "Patient.addr", |w| {
            write_addr(w, "value", a);
        });
    }
    for id in &q.patient_identifiers {
        parameter(w, "patientIdentifier", "Patient.id", |w| {
            w.ii("value", id);
        });
    }
    w.close("parameterList");
    w.close("queryByParameter");
}
