//! PRPA patient registry messages (PRPA_IN201301UV02 add, 201302 revise, 201304 merge; IHE
//! ITI-44 Patient Identity Feed HL7 V3) from owned records, so that view → record → encode →
//! parse → record is the identity on the fields the record carries.

use std::borrow::Cow;

use super::XmlWriter;
use crate::Message;
use crate::payload::PatientRecord;
use crate::types::{AddrPartKind, Ii, NamePartKind};

/// An owned patient registry message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientMessage {
    /// Interaction, e.g. `PRPA_IN201301UV02`.
    pub interaction: String,
    /// Message id.
    pub message_id: Ii<'static>,
    /// `creationTime/@value`.
    pub creation_time: String,
    /// `processingCode` (P, D, T; required by the schema, omitted when `None`).
    pub processing_code: Option<String>,
    /// `processingModeCode` (omitted when `None`).
    pub processing_mode_code: Option<String>,
    /// `acceptAckCode` (IHE requires AL; omitted when `None`).
    pub accept_ack_code: Option<String>,
    /// Receiver device id.
    pub receiver: Ii<'static>,
    /// Sender device id.
    pub sender: Ii<'static>,
    /// Patients (one `subject` each).
    pub patients: Vec<PatientRecord>,
}

fn owned(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

impl PatientMessage {
    /// Copies a strictly parsed patient message.
    pub fn from_message(m: &Message<'_>) -> Self {
        let h = m.header();
        PatientMessage {
            interaction: h.interaction.to_owned(),
            message_id: h.message_id.clone().unwrap_or_default().into_owned(),
            creation_time: h.creation_time.as_deref().unwrap_or_default().to_owned(),
            processing_code: owned(h.processing_code.clone()),
            processing_mode_code: owned(h.processing_mode_code.clone()),
            accept_ack_code: owned(h.accept_ack_code.clone()),
            receiver: h.receiver.clone().unwrap_or_default().into_owned(),
            sender: h.sender.clone().unwrap_or_default().into_owned(),
            patients: m
                .patients()
                .iter()
                .map(crate::payload::Patient::to_record)
                .collect(),
        }
    }

    /// Encodes the message as HL7 v3 XML.
    pub fn encode(&self) -> String {
        let mut w = XmlWriter::new();
        let root = self.interaction.as_str();
        w.open(
            root,
            &[
                ("xmlns", Some(crate::HL7_NS)),
                ("ITSVersion", Some("XML_1.0")),
            ],
        );
        w.ii("id", &self.message_id);
        w.empty("creationTime", &[("value", Some(&self.creation_time))]);
        w.empty(
            "interactionId",
            &[
                ("root", Some("2.16.840.1.113883.1.6")),
                ("extension", Some(root)),
            ],
        );
        for (name, code) in [
            ("processingCode", &self.processing_code),
            ("processingModeCode", &self.processing_mode_code),
            ("acceptAckCode", &self.accept_ack_code),
        ] {
            if let Some(c) = code {
                w.empty(name, &[("code", Some(c))]);
            }
        }
        for (role, tc, id) in [
            ("receiver", "RCV", &self.receiver),
            ("sender", "SND", &self.sender),
        ] {
            w.open(role, &[("typeCode", Some(tc))]);
            w.open(
                "device",
                &[
                    ("classCode", Some("DEV")),
                    ("determinerCode", Some("INSTANCE")),
                ],
            );
            w.ii("id", id);
            w.close("device");
            w.close(role);
        }
        w.open(
            "controlActProcess",
            &[("classCode", Some("CACT")), ("moodCode", Some("EVN"))],
        );
        let trigger = root.replacen("_IN", "_TE", 1);
        w.empty(
            "code",
            &[
                ("code", Some(&trigger)),
                ("codeSystem", Some("2.16.840.1.113883.1.6")),
            ],
        );
        for p in &self.patients {
            w.open("subject", &[("typeCode", Some("SUBJ"))]);
            w.open(
                "registrationEvent",
                &[("classCode", Some("REG")), ("moodCode", Some("EVN"))],
            );
            w.empty("id", &[("nullFlavor", Some("NA"))]);
            w.empty("statusCode", &[("code", Some("active"))]);
            w.open("subject1", &[("typeCode", Some("SBJ"))]);
            write_patient(&mut w, p);
            w.close("subject1");
            if !p.replaced_ids.is_empty() {
                w.open("replacementOf", &[("typeCode", Some("RPLC"))]);
                w.open(
                    "priorRegistration",
                    &[("classCode", Some("REG")), ("moodCode", Some("EVN"))],
                );
                w.empty("statusCode", &[("code", Some("obsolete"))]);
                w.open("subject1", &[("typeCode", Some("SBJ"))]);
                w.open("priorRegisteredRole", &[("classCode", Some("PAT"))]);
                for id in &p.replaced_ids {
                    w.ii("id", id);
                }
                w.close("priorRegisteredRole");
                w.close("subject1");
                w.close("priorRegistration");
                w.close("replacementOf");
            }
            w.close("registrationEvent");
            w.close("subject");
        }
        w.close("controlActProcess");
        w.close(root);
        w.finish()
    }
}

fn write_patient(w: &mut XmlWriter, p: &PatientRecord) {
    w.open("patient", &[("classCode", Some("PAT"))]);
    for id in &p.ids {
        w.ii("id", id);
    }
    if let Some(s) = &p.status_code {
        w.empty("statusCode", &[("code", Some(s))]);
    }
    w.open(
        "patientPerson",
        &[
            ("classCode", Some("PSN")),
            ("determinerCode", Some("INSTANCE")),
        ],
    );
    for n in &p.names {
        w.open("name", &[("use", n.use_.as_deref())]);
        for (k, v) in &n.parts {
            if *k == NamePartKind::Text {
                // Unstructured text would be re-trimmed; write it as its own text run.
                w.text_raw(v);
            } else {
                w.text_element(k.tag(), &[], v);
            }
        }
        w.close("name");
    }
    for t in &p.telecoms {
        w.empty(
            "telecom",
            &[("value", t.value.as_deref()), ("use", t.use_.as_deref())],
        );
    }
    if let Some(g) = &p.gender {
        w.empty(
            "administrativeGenderCode",
            &[
                ("code", Some(g)),
                ("codeSystem", Some("2.16.840.1.113883.5.1")),
            ],
        );
    }
    if let Some(b) = &p.birth_time {
        w.empty("birthTime", &[("value", Some(b))]);
    }
    for a in &p.addresses {
        w.open("addr", &[("use", a.use_.as_deref())]);
        for (k, v) in &a.parts {
            if *k == AddrPartKind::Text {
                w.text_raw(v);
            } else {
                w.text_element(k.tag(), &[], v);
            }
        }
        w.close("addr");
    }
    for id in &p.other_ids {
        w.open("asOtherIDs", &[("classCode", Some("PAT"))]);
        w.ii("id", id);
        w.close("asOtherIDs");
    }
    w.close("patientPerson");
    w.close("patient");
}
