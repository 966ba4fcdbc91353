//! Protocol messages become typed, protocol-neutral facts: an HL7 v2 message ([`hl7v2`]), an
//! HL7 v3 message ([`hl7v3`]), a stored DICOM instance's header ([`dicom`]) and an MPPS record
//! ([`mpps`]); an order becomes scheduled procedure steps ([`order`]) and a step its Modality
//! Worklist item ([`worklist`]). Pure: these functions read the parsed message they are given
//! and nothing else (no store, no clock, no files); [`crate::project`] turns the facts into
//! resources.

pub mod appointment;
pub mod dicom;
pub mod hl7v2;
pub mod hl7v3;
pub mod mpps;
pub mod order;
pub mod report;
pub mod worklist;

/// A postal address: `(lines, city, state, postal code, country)`.
pub type Address = (
    Vec<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// What the protocols know about a patient.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PatientFacts {
    /// `(system, value)` identifiers; the first is the primary one.
    pub identifiers: Vec<(String, String)>,
    /// Family name.
    pub family: Option<String>,
    /// Given names, in order.
    pub given: Vec<String>,
    /// Birth date as FHIR `date` (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`).
    pub birth_date: Option<String>,
    /// FHIR administrative gender code.
    pub gender: Option<&'static str>,
    /// Addresses.
    pub addresses: Vec<Address>,
    /// Where the facts came from (`HL7v2 ADT^A08`, …), kept in `meta.source`-like text.
    pub source: String,
}

/// Maps HL7 table 0001 / v3 AdministrativeGender codes to FHIR's.
pub fn gender_code(code: &str) -> Option<&'static str> {
    match code.trim().to_ascii_uppercase().as_str() {
        "M" => Some("male"),
        "F" => Some("female"),
        "O" | "A" | "UN" => Some("other"),
        "U" | "N" | "UNK" => Some("unknown"),
        _ => None,
    }
}

/// Turns an HL7 v2 DT/DTM or v3 TS prefix (`YYYY[MM[DD…]]`) into a FHIR date.
pub fn fhir_date(ts: &str) -> Option<String> {
    let d: String = ts
        .chars()
        .take_while(char::is_ascii_digit)
        .take(8)
        .collect();
    match d.len() {
        8 => chrono::NaiveDate::parse_from_str(&d, "%Y%m%d")
            .ok()
            .map(|x| x.format("%Y-%m-%d").to_string()),
        6 => Some(format!("{}-{}", &d[..4], &d[4..6]))
            .filter(|_| (1..=12).contains(&d[4..6].parse::<u32>().unwrap_or(0))),
        4 => Some(d),
        _ => None,
    }
}

/// An order (ORM^O01, OMI^O23).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrderFacts {
    /// Placer/filler order numbers and accession: `(system, value)`.
    pub identifiers: Vec<(String, String)>,
    /// FHIR ServiceRequest.status.
    pub status: &'static str,
    /// Procedure code `(system, code, display)`.
    pub code: Option<(String, String, String)>,
    /// The patient.
    pub patient: PatientFacts,
    /// Requested time (FHIR dateTime).
    pub occurrence: Option<String>,
    /// The accession number `(system, value)`: an identifier typed ACSN.
    pub accession: Option<(String, String)>,
    /// Study Instance UIDs of the order's steps (identifiers typed DCM 110180).
    pub study_uids: Vec<String>,
}

/// One stored DICOM instance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InstanceFacts {
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Study Instance UID.
    pub study_uid: String,
    /// Series Instance UID (empty when unknown).
    pub series_uid: String,
    /// Modality (empty when unknown).
    pub modality: String,
    /// Patient, when the dataset names one.
    pub patient: Option<PatientFacts>,
    /// Accession Number (empty when absent).
    pub accession: String,
}

/// One series of a study, as its stored instances give it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeriesFacts {
    /// Series Instance UID (empty for instances that named none).
    pub uid: String,
    /// The modality recorded for the series, when an instance named one.
    pub modality: Option<String>,
    /// `(SOP Instance UID, SOP Class UID)` of its instances, in arrival order.
    pub instances: Vec<(String, String)>,
}

/// What MPPS says about a procedure step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcedureFacts {
    /// The MPPS SOP Instance UID.
    pub mpps_uid: String,
    /// Study Instance UID (may be empty).
    pub study_uid: String,
    /// `IN PROGRESS`, `COMPLETED` or `DISCONTINUED`.
    pub status: String,
    /// Start (FHIR dateTime), when known.
    pub start: Option<String>,
    /// End (FHIR dateTime), when known.
    pub end: Option<String>,
    /// Accession Number of the scheduled step it performs (empty when unscheduled).
    pub accession: String,
    /// Code value of the discontinuation reason (PS3.16 CID 9300), when discontinued.
    pub discontinuation_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_genders() {
        assert_eq!(fhir_date("19800101").as_deref(), Some("1980-01-01"));
        assert_eq!(fhir_date("198001").as_deref(), Some("1980-01"));
        assert_eq!(fhir_date("20240101120000").as_deref(), Some("2024-01-01"));
        assert_eq!(fhir_date("19801301"), None);
        assert_eq!(fhir_date(""), None);
        assert_eq!(gender_code("M"), Some("male"));
        assert_eq!(gender_code("x"), None);
    }
}
