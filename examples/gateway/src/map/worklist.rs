//! Step facts → the Modality Worklist item (pure): its DICOM attributes (PS3.4 Table K.6-1,
//! the module docs of [`super::order`] say which HL7 field each comes from) and the row the
//! store keeps, whose indexed columns answer C-FIND ([`crate::store::worklist`]).

use super::order::{Code, StepFacts};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use xenrad_dimse::assoc::policy::ts;
use xenrad_dimse::query::{
    Identifier, QueryError, decode_identifier, encode_identifier, identifier_from_pairs,
};

/// One stored worklist item: the keys of PS3.4 Table K.6-1 the store indexes as columns,
/// and the whole item as a data set (Explicit VR Little Endian, ISO_IR 192).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorklistRow {
    /// Accession system, accession and SPS ID ([`StepFacts::key`]).
    pub step_key: String,
    /// Accession Number (0008,0050).
    pub accession: String,
    /// The accession's identifier system.
    pub accession_system: String,
    /// Requested Procedure ID (0040,1001).
    pub requested_procedure_id: String,
    /// Patient ID (0010,0020).
    pub patient_id: String,
    /// Scheduled Station AE Title (0040,0001).
    pub station_ae: String,
    /// Modality (0008,0060).
    pub modality: String,
    /// SPS Start Date (0040,0002), `YYYYMMDD` or empty.
    pub start_date: String,
    /// SPS Status (0040,0020).
    pub status: String,
    /// Study Instance UID (0020,000D).
    pub study_uid: String,
    /// Whether the step is on the worklist (C-FIND answers listed steps only). A completed,
    /// discontinued or cancelled step is kept unlisted: its Study Instance UID and accession
    /// still link the images and the procedure that follow to the order.
    pub listed: bool,
    /// Placer order number (ORC-2-1), empty when none.
    pub placer: String,
    /// Filler order number (ORC-3-1), empty when none.
    pub filler: String,
    /// The item's attributes.
    pub attributes: Vec<u8>,
}

/// DICOM text values cannot hold a backslash (the value delimiter) or control characters.
fn clean(v: &str) -> String {
    v.chars()
        .map(|c| if c == '\\' || c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn push_code(pairs: &mut Vec<(String, String)>, seq: &str, c: &Code) {
    pairs.push((format!("{seq}.CodeValue"), clean(&c.code)));
    let scheme = if c.system.is_empty() { "L" } else { &c.system };
    pairs.push((format!("{seq}.CodingSchemeDesignator"), clean(scheme)));
    pairs.push((format!("{seq}.CodeMeaning"), clean(&c.meaning)));
}

/// The worklist item's attributes for `step` with its Study Instance UID.
pub fn item_attributes(step: &StepFacts, study_uid: &str) -> Result<Identifier, QueryError> {
    let p = &step.patient;
    let sps = "ScheduledProcedureStepSequence";
    let mut pairs: Vec<(String, String)> = vec![
        ("AccessionNumber".into(), clean(&step.accession)),
        ("ReferringPhysicianName".into(), clean(&step.referring)),
        ("PatientName".into(), clean(&p.name)),
        ("PatientID".into(), clean(&p.id)),
        ("IssuerOfPatientID".into(), clean(&p.issuer)),
        ("PatientBirthDate".into(), clean(&p.birth_date)),
        ("PatientSex".into(), clean(&p.sex)),
        ("StudyInstanceUID".into(), study_uid.to_owned()),
        ("RequestingPhysician".into(), clean(&step.requesting)),
        (
            "RequestedProcedureDescription".into(),
            clean(
                &step
                    .procedure
                    .as_ref()
                    .map(|c| c.meaning.clone())
                    .unwrap_or_default(),
            ),
        ),
        ("AdmissionID".into(), clean(&step.admission_id)),
        (
            "RequestedProcedureID".into(),
            clean(&step.requested_procedure_id),
        ),
        ("ReasonForTheRequestedProcedure".into(), clean(&step.reason)),
        ("RequestedProcedurePriority".into(), clean(&step.priority)),
        (
            "PlacerOrderNumberImagingServiceRequest".into(),
            clean(
                &step
                    .placer
                    .as_ref()
                    .map(|o| o.id.clone())
                    .unwrap_or_default(),
            ),
        ),
        (
            "FillerOrderNumberImagingServiceRequest".into(),
            clean(
                &step
                    .filler
                    .as_ref()
                    .map(|o| o.id.clone())
                    .unwrap_or_default(),
            ),
        ),
        (
            format!("{sps}.ScheduledStationAETitle"),
            clean(&step.station_ae),
        ),
        (
            format!("{sps}.ScheduledProcedureStepStartDate"),
            clean(&step.start_date),
        ),
        (
            format!("{sps}.ScheduledProcedureStepStartTime"),
            clean(&step.start_time),
        ),
        (format!("{sps}.Modality"), clean(&step.modality)),
        (
            format!("{sps}.ScheduledPerformingPhysicianName"),
            String::new(),
        ),
        (
            format!("{sps}.ScheduledProcedureStepDescription"),
            clean(&step.sps_description),
        ),
        (
            format!("{sps}.ScheduledProcedureStepID"),
            clean(&step.sps_id),
        ),
        (
            format!("{sps}.ScheduledStationName"),
            clean(&step.station_name),
        ),
        (
            format!("{sps}.ScheduledProcedureStepLocation"),
            clean(&step.location),
        ),
        (
            format!("{sps}.ScheduledProcedureStepStatus"),
            step.sps_status.to_owned(),
        ),
    ];
    if let Some(c) = &step.procedure {
        push_code(&mut pairs, "RequestedProcedureCodeSequence", c);
    }
    if let Some(c) = &step.protocol {
        push_code(
            &mut pairs,
            &format!("{sps}.ScheduledProtocolCodeSequence"),
            c,
        );
    }
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut obj = identifier_from_pairs(&refs)?;
    obj.put(DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        PrimitiveValue::from("ISO_IR 192"),
    ));
    Ok(obj)
}

/// The stored row of `step` with its Study Instance UID.
pub fn item_row(step: &StepFacts, study_uid: &str) -> Result<WorklistRow, QueryError> {
    let attrs = item_attributes(step, study_uid)?;
    Ok(WorklistRow {
        step_key: step.key(),
        accession: clean(&step.accession),
        accession_system: step.accession_system.clone(),
        requested_procedure_id: clean(&step.requested_procedure_id),
        patient_id: clean(&step.patient.id),
        station_ae: clean(&step.station_ae),
        modality: clean(&step.modality),
        start_date: clean(&step.start_date),
        status: step.sps_status.to_owned(),
        study_uid: study_uid.to_owned(),
        listed: true,
        placer: step
            .placer
            .as_ref()
            .map(|o| o.id.clone())
            .unwrap_or_default(),
        filler: step
            .filler
            .as_ref()
            .map(|o| o.id.clone())
            .unwrap_or_default(),
        attributes: encode_identifier(&attrs, ts::EXPLICIT_VR_LE)?,
    })
}

/// A stored item's attributes with another patient (a merge): Patient ID, Issuer of Patient
/// ID and, when given, Patient's Name.
pub fn with_patient(
    attributes: &[u8],
    id: &str,
    issuer: &str,
    name: Option<&str>,
) -> Result<Vec<u8>, QueryError> {
    let mut obj = decode_identifier(attributes, ts::EXPLICIT_VR_LE)?;
    let mut put = |tag, vr, v: &str| {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(clean(v))));
    };
    put(tags::PATIENT_ID, VR::LO, id);
    put(tags::ISSUER_OF_PATIENT_ID, VR::LO, issuer);
    if let Some(n) = name {
        put(tags::PATIENT_NAME, VR::PN, n);
    }
    encode_identifier(&obj, ts::EXPLICIT_VR_LE)
}

/// A stored item's attributes with its SPS Status (0040,0020) replaced (in every SPS item).
pub fn with_status(attributes: &[u8], status: &str) -> Result<Vec<u8>, QueryError> {
    let mut obj = decode_identifier(attributes, ts::EXPLICIT_VR_LE)?;
    let items = obj
        .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .and_then(|e| e.items())
        .map(<[Identifier]>::to_vec)
        .unwrap_or_default();
    let items: Vec<Identifier> = items
        .into_iter()
        .map(|mut it| {
            it.put(DataElement::new(
                tags::SCHEDULED_PROCEDURE_STEP_STATUS,
                VR::CS,
                PrimitiveValue::from(status),
            ));
            it
        })
        .collect();
    obj.put(DataElement::new(
        tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
        VR::SQ,
        dicom_core::value::DataSetSequence::from(items),
    ));
    encode_identifier(&obj, ts::EXPLICIT_VR_LE)
}

#[cfg(test)]
mod tests {
    use super::super::order::{OrderSettings, read_order};
    use super::*;
    use xenrad_hl7v2::Message;

    const OMI: &str = "MSH|^~\\&|RIS|RAD|XENRAD|GW|20250124||OMI^O23^OMI_O23|M1|P|2.5.1\r\
PID|1||P1^^^HOSP^MR||MÜLLER^JÖRG||19700101|M\r\
ORC|NW|PL1^RIS|FL1^DSS\r\
TQ1|1||||||20250124143000\r\
OBR|1|PL1^RIS|FL1^DSS|CTH^CT HEAD^L\r\
IPC|ACC1|RP1|1.2.3.4|SPS1|CT|PR1^Plain^L|ST1|ROOM 3|CT_AE\r";

    fn text(obj: &Identifier, tag: dicom_core::Tag) -> String {
        obj.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn item_carries_the_k6_keys_and_round_trips() {
        let m = Message::parse(OMI.as_bytes()).expect("parses");
        let o = read_order(&m, &OrderSettings::default()).expect("order");
        let row = item_row(&o.steps[0], "1.2.3.4").expect("row");
        assert_eq!(
            (
                &*row.accession,
                &*row.patient_id,
                &*row.station_ae,
                &*row.modality,
                &*row.start_date,
                &*row.status,
                &*row.study_uid
            ),
            (
                "ACC1",
                "P1",
                "CT_AE",
                "CT",
                "20250124",
                "SCHEDULED",
                "1.2.3.4"
            )
        );
        let obj = decode_identifier(&row.attributes, ts::EXPLICIT_VR_LE).expect("decodes");
        assert_eq!(text(&obj, tags::PATIENT_NAME), "MÜLLER^JÖRG");
        assert_eq!(text(&obj, tags::STUDY_INSTANCE_UID), "1.2.3.4");
        assert_eq!(text(&obj, tags::REQUESTED_PROCEDURE_ID), "RP1");
        let sps = obj
            .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|i| i.first())
            .expect("sps item");
        assert_eq!(
            text(sps, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
            "143000"
        );
        assert_eq!(text(sps, tags::SCHEDULED_PROCEDURE_STEP_ID), "SPS1");
        assert_eq!(text(sps, tags::SCHEDULED_STATION_NAME), "ST1");
        assert_eq!(text(sps, tags::SCHEDULED_PROCEDURE_STEP_LOCATION), "ROOM 3");
        let proto = sps
            .get(tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|i| i.first())
            .expect("protocol");
        assert_eq!(text(proto, tags::CODE_VALUE), "PR1");
    }

    #[test]
    fn the_status_of_a_stored_item_changes() {
        let m = Message::parse(OMI.as_bytes()).expect("parses");
        let o = read_order(&m, &OrderSettings::default()).expect("order");
        let row = item_row(&o.steps[0], "1.2.3.4").expect("row");
        let bytes = with_status(&row.attributes, "COMPLETED").expect("patched");
        let obj = decode_identifier(&bytes, ts::EXPLICIT_VR_LE).expect("decodes");
        let sps = obj
            .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .and_then(|e| e.items())
            .and_then(|i| i.first())
            .expect("sps item");
        assert_eq!(
            text(sps, tags::SCHEDULED_PROCEDURE_STEP_STATUS),
            "COMPLETED"
        );
        assert_eq!(text(sps, tags::SCHEDULED_PROCEDURE_STEP_ID), "SPS1");
        assert_eq!(text(&obj, tags::ACCESSION_NUMBER), "ACC1");
    }

    #[test]
    fn values_lose_backslashes_and_controls() {
        assert_eq!(clean(" a\\b\tc "), "a b c");
    }
}
