//! The MPPS instance model (PS3.4 Table F.7.2-1, PS3.3 C.4.13–C.4.16) with typed read access.
//!
//! The stored form is the full attribute list ([`Dataset`]) so nothing a modality sends is lost; the
//! accessors give typed views of the attributes the workflow cares about.

use crate::attributes::tags;
use crate::dataset::Dataset;
use std::fmt;

/// SOP Class UID of Modality Performed Procedure Step (PS3.4 F.7.1, PS3.6 Annex A).
pub const MPPS_SOP_CLASS_UID: &str = "1.2.840.10008.3.1.2.3.3";

/// Performed Procedure Step Status (0040,0252) (PS3.3 C.4.14, enumerated values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PpsStatus {
    /// `IN PROGRESS`: the only status an N-CREATE may carry.
    InProgress,
    /// `COMPLETED`: final.
    Completed,
    /// `DISCONTINUED`: final.
    Discontinued,
}

impl PpsStatus {
    /// Parses the exact DICOM spelling (case-sensitive, no padding).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "IN PROGRESS" => Some(Self::InProgress),
            "COMPLETED" => Some(Self::Completed),
            "DISCONTINUED" => Some(Self::Discontinued),
            _ => None,
        }
    }

    /// The DICOM spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Discontinued => "DISCONTINUED",
        }
    }

    /// True for COMPLETED and DISCONTINUED: no further N-SET is accepted (PS3.4 F.7.2.2.1).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::InProgress)
    }
}

impl fmt::Display for PpsStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A coded entry (Code Value / Coding Scheme Designator / Code Meaning, PS3.3 Table 8.8-1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Code {
    /// (0008,0100) Code Value.
    pub value: String,
    /// (0008,0102) Coding Scheme Designator.
    pub scheme: String,
    /// (0008,0104) Code Meaning.
    pub meaning: String,
}

/// A referenced SOP instance (Referenced Image Sequence item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencedSop {
    /// (0008,1150) Referenced SOP Class UID.
    pub sop_class_uid: String,
    /// (0008,1155) Referenced SOP Instance UID.
    pub sop_instance_uid: String,
}

/// One item of the Performed Series Sequence (0040,0340).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerformedSeries {
    /// (0020,000E) Series Instance UID.
    pub series_instance_uid: String,
    /// (0018,1030) Protocol Name.
    pub protocol_name: String,
    /// (0008,103E) Series Description.
    pub series_description: String,
    /// (0008,0054) Retrieve AE Title.
    pub retrieve_ae_title: String,
    /// (0008,1140) Referenced Image Sequence.
    pub referenced_images: Vec<ReferencedSop>,
}

/// A stored MPPS instance: its SOP Instance UID and full attribute list.
#[derive(Debug, Clone, PartialEq)]
pub struct MppsInstance {
    /// The SOP Instance UID (the DIMSE Affected/Requested SOP Instance UID, or the MPPS-RS path UID).
    pub sop_instance_uid: String,
    /// All attributes (without SOP Class/Instance UID, which travel in the command or URL).
    pub attributes: Dataset,
}

impl MppsInstance {
    /// Performed Procedure Step Status, if present and valid.
    pub fn status(&self) -> Option<PpsStatus> {
        self.attributes
            .str(tags::PPS_STATUS)
            .and_then(PpsStatus::parse)
    }

    /// Study Instance UID from the first Scheduled Step Attributes Sequence item.
    pub fn study_instance_uid(&self) -> Option<&str> {
        self.attributes
            .items(tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE)
            .first()
            .and_then(|i| i.str(tags::STUDY_INSTANCE_UID))
    }

    /// Performed Procedure Step ID (0040,0253).
    pub fn pps_id(&self) -> Option<&str> {
        self.attributes.str(tags::PPS_ID)
    }

    /// Modality (0008,0060).
    pub fn modality(&self) -> Option<&str> {
        self.attributes.str(tags::MODALITY)
    }

    /// Performed Station AE Title (0040,0241).
    pub fn station_ae_title(&self) -> Option<&str> {
        self.attributes.str(tags::PERFORMED_STATION_AE_TITLE)
    }

    /// Start date and time (0040,0244)/(0040,0245) as DA and TM strings.
    pub fn start(&self) -> (Option<&str>, Option<&str>) {
        (
            self.attributes.str(tags::PPS_START_DATE),
            self.attributes.str(tags::PPS_START_TIME),
        )
    }

    /// End date and time (0040,0250)/(0040,0251) as DA and TM strings.
    pub fn end(&self) -> (Option<&str>, Option<&str>) {
        (
            self.attributes.str(tags::PPS_END_DATE),
            self.attributes.str(tags::PPS_END_TIME),
        )
    }

    /// The discontinuation reason (first item of (0040,0281)), if any.
    pub fn discontinuation_reason(&self) -> Option<Code> {
        self.attributes
            .items(tags::PPS_DISCONTINUATION_REASON_CODE_SEQUENCE)
            .first()
            .map(|i| Code {
                value: i.str(tags::CODE_VALUE).unwrap_or_default().to_owned(),
                scheme: i
                    .str(tags::CODING_SCHEME_DESIGNATOR)
                    .unwrap_or_default()
                    .to_owned(),
                meaning: i.str(tags::CODE_MEANING).unwrap_or_default().to_owned(),
            })
    }

    /// The performed series with their referenced images.
    pub fn performed_series(&self) -> Vec<PerformedSeries> {
        let s = |d: &Dataset, t| d.str(t).unwrap_or_default().to_owned();
        self.attributes
            .items(tags::PERFORMED_SERIES_SEQUENCE)
            .iter()
            .map(|i| PerformedSeries {
                series_instance_uid: s(i, tags::SERIES_INSTANCE_UID),
                protocol_name: s(i, tags::PROTOCOL_NAME),
                series_description: s(i, tags::SERIES_DESCRIPTION),
                retrieve_ae_title: s(i, tags::RETRIEVE_AE_TITLE),
                referenced_images: i
                    .items(tags::REFERENCED_IMAGE_SEQUENCE)
                    .iter()
                    .map(|r| ReferencedSop {
                        sop_class_uid: s(r, tags::REFERENCED_SOP_CLASS_UID),
                        sop_instance_uid: s(r, tags::REFERENCED_SOP_INSTANCE_UID),
                    })
                    .collect(),
            })
            .collect()
    }
}
