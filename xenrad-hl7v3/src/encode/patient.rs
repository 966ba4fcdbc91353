//! PRPA patient registry messages (PRPA_IN201301UV02 add, 201302 revise, 201304 merge; IHE
//! ITI-44 Patient Identity Feed HL7 V3) from owned records, so that view → record → encode →
//! parse → record is the identity on the fields the record carries.

use std::borrow::Cow;

use super::XmlWriter;
use crate::Message;
use crate::payload::{AddressRecord, NameRecord, PatientRecord};
use crate::types::{AddrPartKind, Ii, NamePartKind};

/// The owned transmission wrapper of a message (MCCI_MT000100UV01 / MCCI_MT000300UV01):
/// what [`PatientMessage`] and [`QueryMessage`](super::query::QueryMessage) share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransmissionRecord {
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
}

impl TransmissionRecord {
    /// Copies the transmission wrapper of a strictly parsed message.
    pub fn from_message(m: &Message<'_>) -> Self {
        let h = m.header();
        let owned = |s: Option<&Cow<'_, str>>| s.map(|c| c.clone().into_owned());
        TransmissionRecord {
            interaction: h.interaction.to_owned(),
            message_id: h.message_id.clone().unwrap_or_default().into_owned(),
            creation_time: h.creation_time.as_deref().unwrap_or_default().to_owned(),
            processing_code: owned(h.processing_code.as_ref()),
            processing_mode_code: owned(h.processing_mode_code.as_ref()),
            accept_ack_code: owned(h.accept_ack_code.as_ref()),
            receiver: h.receiver.clone().unwrap_or_default().into_owned(),
            sender: h.sender.clone().unwrap_or_default().into_owned(),
        }
    }
}

/// An owned patient registry message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientMessage {
    /// The transmission wrapper.
    pub transmission: TransmissionRecord,
    /// Patients (one `subject` each).
    pub patients: Vec<PatientRecord>,
}

impl PatientMessage {
    /// Copies a strictly parsed patient message.
    pub fn from_message(m: &Message<'_>) -> Self {
        PatientMessage {
            transmission: TransmissionRecord::from_message(m),
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
        let root = self.transmission.interaction.as_str();
        open_transmission(&mut w, &self.transmission, None);
        for p in &self.patients {
            write_subject(&mut w, p);
        }
        w.close("controlActProcess");
        w.close(root);
        w.finish()
    }
}

/// Writes the transmission wrapper and opens `controlActProcess` with its trigger event code
/// (the interaction id with `_IN` replaced by `_TE`); the caller closes both.
pub(crate) fn open_transmission(
    w: &mut XmlWriter,
    t: &TransmissionRecord,
    acknowledgement: Option<(&str, &Ii<'static>)>,
) {
    let root = t.interaction.as_str();
    w.open(
        root,
        &[
            ("xmlns", Some(crate::HL7_NS)),
            ("xmlns:xsi", Some(crate::xml::XSI_NS)),
            ("ITSVersion", Some("XML_1.0")),
        ],
    );
    w.ii("id", &t.message_id);
    w.empty("creationTime", &[("value", Some(t.creation_time.as_str()))]);
    w.empty(
        "interactionId",
        &[
            ("root", Some("2.16.840.1.113883.1.6")),
            ("extension", Some(root)),
        ],
    );
    for (name, code) in ["processingCode", "processingModeCode", "acceptAckCode"]
        .into_iter()
        .zip([
            t.processing_code.as_deref(),
            t.processing_mode_code.as_deref(),
            t.accept_ack_code.as_deref(),
        ])
    {
        if let Some(c) = code {
            w.empty(name, &[("code", Some(c))]);
        }
    }
    for (role, tc, id) in [
        ("receiver", "RCV", &t.receiver),
        ("sender", "SND", &t.sender),
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
    if let Some((code, target)) = acknowledgement {
        w.open("acknowledgement", &[]);
        w.empty("typeCode", &[("code", Some(code))]);
        w.open("targetMessage", &[]);
        w.ii("id", target);
        w.close("targetMessage");
        w.close("acknowledgement");
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
}

/// Writes one `subject/registrationEvent` with the patient (and, for a merge, the
/// `replacementOf/priorRegistration` carrying the obsolete ids).
pub(crate) fn write_subject(w: &mut XmlWriter, p: &PatientRecord) {
    w.open("subject", &[("typeCode", Some("SUBJ"))]);
    w.open(
        "registrationEvent",
        &[("classCode", Some("REG")), ("moodCode", Some("EVN"))],
    );
    w.empty("id", &[("nullFlavor", Some("NA"))]);
    w.empty("statusCode", &[("code", Some("active"))]);
    w.open("subject1", &[("typeCode", Some("SBJ"))]);
    write_patient(w, p);
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

/// Writes a name (`use`, parts in order; unstructured text as its own run).
pub(crate) fn write_name(w: &mut XmlWriter, tag: &str, n: &NameRecord) {
    w.open(tag, &[("use", n.use_.as_deref())]);
    for (k, v) in &n.parts {
        if *k == NamePartKind::Text {
            // Unstructured text would be re-trimmed; write it as its own text run.
            w.text_raw(v);
        } else {
            w.text_element(k.tag(), &[], v);
        }
    }
    w.close(tag);
}

/// Writes an address (`use`, typed parts in order; unstructured text as its own run).
pub(crate) fn write_addr(w: &mut XmlWriter, tag: &str, a: &AddressRecord) {
    w.open(tag, &[("use", a.use_.as_deref())]);
    for (k, v) in &a.parts {
        if *k == AddrPartKind::Text {
            w.text_raw(v);
        } else {
            w.text_element(k.tag(), &[], v);
        }
    }
    w.close(tag);
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
        write_name(w, "name", n);
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
        write_addr(w, "addr", a);
    }
    for id in &p.other_ids {
        w.open("asOtherIDs", &[("classCode", Some("PAT"))]);
        w.ii("id", id);
        w.close("asOtherIDs");
    }
    w.close("patientPerson");
    w.close("patient");
}
