//! The attribute rules of the MPPS SOP class: PS3.4 Table F.7.2-1 (N-CREATE and N-SET usage).

use dicom_core::{Tag, VR};

/// Tags used by the MPPS model (PS3.6 names).
pub mod tags {
    use dicom_core::Tag;
    /// (0008,0005) Specific Character Set.
    pub const SPECIFIC_CHARACTER_SET: Tag = Tag(0x0008, 0x0005);
    /// (0008,0016) SOP Class UID.
    pub const SOP_CLASS_UID: Tag = Tag(0x0008, 0x0016);
    /// (0008,0018) SOP Instance UID.
    pub const SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x0018);
    /// (0008,0050) Accession Number.
    pub const ACCESSION_NUMBER: Tag = Tag(0x0008, 0x0050);
    /// (0008,0054) Retrieve AE Title.
    pub const RETRIEVE_AE_TITLE: Tag = Tag(0x0008, 0x0054);
    /// (0008,0060) Modality.
    pub const MODALITY: Tag = Tag(0x0008, 0x0060);
    /// (0008,0100) Code Value.
    pub const CODE_VALUE: Tag = Tag(0x0008, 0x0100);
    /// (0008,0102) Coding Scheme Designator.
    pub const CODING_SCHEME_DESIGNATOR: Tag = Tag(0x0008, 0x0102);
    /// (0008,0104) Code Meaning.
    pub const CODE_MEANING: Tag = Tag(0x0008, 0x0104);
    /// (0008,1032) Procedure Code Sequence.
    pub const PROCEDURE_CODE_SEQUENCE: Tag = Tag(0x0008, 0x1032);
    /// (0008,103E) Series Description.
    pub const SERIES_DESCRIPTION: Tag = Tag(0x0008, 0x103E);
    /// (0008,1050) Performing Physician's Name.
    pub const PERFORMING_PHYSICIAN_NAME: Tag = Tag(0x0008, 0x1050);
    /// (0008,1070) Operators' Name.
    pub const OPERATORS_NAME: Tag = Tag(0x0008, 0x1070);
    /// (0008,1110) Referenced Study Sequence.
    pub const REFERENCED_STUDY_SEQUENCE: Tag = Tag(0x0008, 0x1110);
    /// (0008,1120) Referenced Patient Sequence.
    pub const REFERENCED_PATIENT_SEQUENCE: Tag = Tag(0x0008, 0x1120);
    /// (0008,1140) Referenced Image Sequence.
    pub const REFERENCED_IMAGE_SEQUENCE: Tag = Tag(0x0008, 0x1140);
    /// (0008,1150) Referenced SOP Class UID.
    pub const REFERENCED_SOP_CLASS_UID: Tag = Tag(0x0008, 0x1150);
    /// (0008,1155) Referenced SOP Instance UID.
    pub const REFERENCED_SOP_INSTANCE_UID: Tag = Tag(0x0008, 0x1155);
    /// (0010,0010) Patient's Name.
    pub const PATIENT_NAME: Tag = Tag(0x0010, 0x0010);
    /// (0010,0020) Patient ID.
    pub const PATIENT_ID: Tag = Tag(0x0010, 0x0020);
    /// (0010,0030) Patient's Birth Date.
    pub const PATIENT_BIRTH_DATE: Tag = Tag(0x0010, 0x0030);
    /// (0010,0040) Patient's Sex.
    pub const PATIENT_SEX: Tag = Tag(0x0010, 0x0040);
    /// (0018,1030) Protocol Name.
    pub const PROTOCOL_NAME: Tag = Tag(0x0018, 0x1030);
    /// (0020,000D) Study Instance UID.
    pub const STUDY_INSTANCE_UID: Tag = Tag(0x0020, 0x000D);
    /// (0020,000E) Series Instance UID.
    pub const SERIES_INSTANCE_UID: Tag = Tag(0x0020, 0x000E);
    /// (0020,0010) Study ID.
    pub const STUDY_ID: Tag = Tag(0x0020, 0x0010);
    /// (0032,1060) Requested Procedure Description.
    pub const REQUESTED_PROCEDURE_DESCRIPTION: Tag = Tag(0x0032, 0x1060);
    /// (0040,0007) Scheduled Procedure Step Description.
    pub const SCHEDULED_PROCEDURE_STEP_DESCRIPTION: Tag = Tag(0x0040, 0x0007);
    /// (0040,0008) Scheduled Protocol Code Sequence.
    pub const SCHEDULED_PROTOCOL_CODE_SEQUENCE: Tag = Tag(0x0040, 0x0008);
    /// (0040,0009) Scheduled Procedure Step ID.
    pub const SCHEDULED_PROCEDURE_STEP_ID: Tag = Tag(0x0040, 0x0009);
    /// (0040,0220) Referenced Non-Image Composite SOP Instance Sequence.
    pub const REFERENCED_NON_IMAGE_COMPOSITE_SEQUENCE: Tag = Tag(0x0040, 0x0220);
    /// (0040,0241) Performed Station AE Title.
    pub const PERFORMED_STATION_AE_TITLE: Tag = Tag(0x0040, 0x0241);
    /// (0040,0242) Performed Station Name.
    pub const PERFORMED_STATION_NAME: Tag = Tag(0x0040, 0x0242);
    /// (0040,0243) Performed Location.
    pub const PERFORMED_LOCATION: Tag = Tag(0x0040, 0x0243);
    /// (0040,0244) Performed Procedure Step Start Date.
    pub const PPS_START_DATE: Tag = Tag(0x0040, 0x0244);
    /// (0040,0245) Performed Procedure Step Start Time.
    pub const PPS_START_TIME: Tag = Tag(0x0040, 0x0245);
    /// (0040,0250) Performed Procedure Step End Date.
    pub const PPS_END_DATE: Tag = Tag(0x0040, 0x0250);
    /// (0040,0251) Performed Procedure Step End Time.
    pub const PPS_END_TIME: Tag = Tag(0x0040, 0x0251);
    /// (0040,0252) Performed Procedure Step Status.
    pub const PPS_STATUS: Tag = Tag(0x0040, 0x0252);
    /// (0040,0253) Performed Procedure Step ID.
    pub const PPS_ID: Tag = Tag(0x0040, 0x0253);
    /// (0040,0254) Performed Procedure Step Description.
    pub const PPS_DESCRIPTION: Tag = Tag(0x0040, 0x0254);
    /// (0040,0255) Performed Procedure Type Description.
    pub const PERFORMED_PROCEDURE_TYPE_DESCRIPTION: Tag = Tag(0x0040, 0x0255);
    /// (0040,0260) Performed Protocol Code Sequence.
    pub const PERFORMED_PROTOCOL_CODE_SEQUENCE: Tag = Tag(0x0040, 0x0260);
    /// (0040,0270) Scheduled Step Attributes Sequence.
    pub const SCHEDULED_STEP_ATTRIBUTES_SEQUENCE: Tag = Tag(0x0040, 0x0270);
    /// (0040,0281) Performed Procedure Step Discontinuation Reason Code Sequence.
    pub const PPS_DISCONTINUATION_REASON_CODE_SEQUENCE: Tag = Tag(0x0040, 0x0281);
    /// (0040,0340) Performed Series Sequence.
    pub const PERFORMED_SERIES_SEQUENCE: Tag = Tag(0x0040, 0x0340);
    /// (0040,1001) Requested Procedure ID.
    pub const REQUESTED_PROCEDURE_ID: Tag = Tag(0x0040, 0x1001);
}

/// How an attribute may appear in a request (PS3.4 Table F.7.2-1 "Req. Type").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Required with a value.
    Type1,
    /// Required, may be empty.
    Type2,
    /// Optional.
    Type3,
    /// Must not be sent.
    NotAllowed,
}

/// One row of Table F.7.2-1.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The attribute tag.
    pub tag: Tag,
    /// The PS3.6 keyword.
    pub keyword: &'static str,
    /// The VR (used for implicit VR decoding and JSON output).
    pub vr: VR,
    /// Usage in N-CREATE.
    pub create: Usage,
    /// Usage in N-SET.
    pub set: Usage,
}

const fn r(tag: Tag, keyword: &'static str, vr: VR, create: Usage, set: Usage) -> Rule {
    Rule {
        tag,
        keyword,
        vr,
        create,
        set,
    }
}

use Usage::{NotAllowed as NA, Type1 as T1, Type2 as T2, Type3 as T3};
use tags as t;

/// Top-level attributes of the MPPS IOD with their N-CREATE / N-SET usage (PS3.4 Table F.7.2-1).
/// Specific Character Set is 1C in both; it is treated as Type 3. Attributes not listed are stored
/// as Type 3 (preserved, never silently dropped).
pub const TOP_LEVEL: &[Rule] = &[
    r(
        t::SPECIFIC_CHARACTER_SET,
        "SpecificCharacterSet",
        VR::CS,
        T3,
        T3,
    ),
    r(t::MODALITY, "Modality", VR::CS, T1, NA),
    r(
        t::PROCEDURE_CODE_SEQUENCE,
        "ProcedureCodeSequence",
        VR::SQ,
        T2,
        T3,
    ),
    r(
        t::REFERENCED_PATIENT_SEQUENCE,
        "ReferencedPatientSequence",
        VR::SQ,
        T2,
        NA,
    ),
    r(t::PATIENT_NAME, "PatientName", VR::PN, T2, NA),
    r(t::PATIENT_ID, "PatientID", VR::LO, T2, NA),
    r(t::PATIENT_BIRTH_DATE, "PatientBirthDate", VR::DA, T2, NA),
    r(t::PATIENT_SEX, "PatientSex", VR::CS, T2, NA),
    r(t::STUDY_ID, "StudyID", VR::SH, T2, NA),
    r(
        t::PERFORMED_STATION_AE_TITLE,
        "PerformedStationAETitle",
        VR::AE,
        T1,
        NA,
    ),
    r(
        t::PERFORMED_STATION_NAME,
        "PerformedStationName",
        VR::SH,
        T2,
        NA,
    ),
    r(t::PERFORMED_LOCATION, "PerformedLocation", VR::SH, T2, NA),
    r(
        t::PPS_START_DATE,
        "PerformedProcedureStepStartDate",
        VR::DA,
        T1,
        NA,
    ),
    r(
        t::PPS_START_TIME,
        "PerformedProcedureStepStartTime",
        VR::TM,
        T1,
        NA,
    ),
    r(
        t::PPS_END_DATE,
        "PerformedProcedureStepEndDate",
        VR::DA,
        T2,
        T3,
    ),
    r(
        t::PPS_END_TIME,
        "PerformedProcedureStepEndTime",
        VR::TM,
        T2,
        T3,
    ),
    r(
        t::PPS_STATUS,
        "PerformedProcedureStepStatus",
        VR::CS,
        T1,
        T3,
    ),
    r(t::PPS_ID, "PerformedProcedureStepID", VR::SH, T1, NA),
    r(
        t::PPS_DESCRIPTION,
        "PerformedProcedureStepDescription",
        VR::LO,
        T2,
        T3,
    ),
    r(
        t::PERFORMED_PROCEDURE_TYPE_DESCRIPTION,
        "PerformedProcedureTypeDescription",
        VR::LO,
        T2,
        T3,
    ),
    r(
        t::PERFORMED_PROTOCOL_CODE_SEQUENCE,
        "PerformedProtocolCodeSequence",
        VR::SQ,
        T2,
        T3,
    ),
    r(
        t::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
        "ScheduledStepAttributesSequence",
        VR::SQ,
        T1,
        NA,
    ),
    r(
        t::PPS_DISCONTINUATION_REASON_CODE_SEQUENCE,
        "PerformedProcedureStepDiscontinuationReasonCodeSequence",
        VR::SQ,
        T3,
        T3,
    ),
    r(
        t::PERFORMED_SERIES_SEQUENCE,
        "PerformedSeriesSequence",
        VR::SQ,
        T2,
        T3,
    ),
];

/// Items of the Scheduled Step Attributes Sequence (Table F.7.2-1); N-CREATE usage.
pub const SCHEDULED_STEP_ITEM: &[(Tag, VR, Usage)] = &[
    (t::ACCESSION_NUMBER, VR::SH, T2),
    (t::REFERENCED_STUDY_SEQUENCE, VR::SQ, T2),
    (t::STUDY_INSTANCE_UID, VR::UI, T1),
    (t::REQUESTED_PROCEDURE_DESCRIPTION, VR::LO, T2),
    (t::SCHEDULED_PROCEDURE_STEP_DESCRIPTION, VR::LO, T2),
    (t::SCHEDULED_PROTOCOL_CODE_SEQUENCE, VR::SQ, T2),
    (t::SCHEDULED_PROCEDURE_STEP_ID, VR::SH, T2),
    (t::REQUESTED_PROCEDURE_ID, VR::SH, T2),
];

/// Items of the Performed Series Sequence (Table F.7.2-1); Type 1 entries are checked.
pub const PERFORMED_SERIES_ITEM: &[(Tag, VR, Usage)] = &[
    (t::RETRIEVE_AE_TITLE, VR::AE, T2),
    (t::SERIES_DESCRIPTION, VR::LO, T2),
    (t::PERFORMING_PHYSICIAN_NAME, VR::PN, T2),
    (t::OPERATORS_NAME, VR::PN, T2),
    (t::REFERENCED_IMAGE_SEQUENCE, VR::SQ, T2),
    (t::PROTOCOL_NAME, VR::LO, T1),
    (t::SERIES_INSTANCE_UID, VR::UI, T1),
    (t::REFERENCED_NON_IMAGE_COMPOSITE_SEQUENCE, VR::SQ, T2),
];

/// Items of Referenced Image / Non-Image sequences: both UIDs Type 1.
pub const REFERENCED_SOP_ITEM: &[(Tag, VR, Usage)] = &[
    (t::REFERENCED_SOP_CLASS_UID, VR::UI, T1),
    (t::REFERENCED_SOP_INSTANCE_UID, VR::UI, T1),
];

/// The rule for a top-level tag, if it is in Table F.7.2-1.
pub fn rule(tag: Tag) -> Option<&'static Rule> {
    TOP_LEVEL.iter().find(|r| r.tag == tag)
}

/// The VR this crate uses for a known tag (top level or nested), for implicit VR decoding.
pub fn known_vr(tag: Tag) -> Option<VR> {
    if let Some(r) = rule(tag) {
        return Some(r.vr);
    }
    SCHEDULED_STEP_ITEM
        .iter()
        .chain(PERFORMED_SERIES_ITEM)
        .chain(REFERENCED_SOP_ITEM)
        .find(|(t, _, _)| *t == tag)
        .map(|(_, vr, _)| *vr)
        .or(match tag {
            tags::CODE_VALUE | tags::CODING_SCHEME_DESIGNATOR => Some(VR::SH),
            tags::CODE_MEANING => Some(VR::LO),
            tags::SOP_CLASS_UID | tags::SOP_INSTANCE_UID => Some(VR::UI),
            _ => None,
        })
}
