//! Facts become FHIR R4 resources ([`crate::map`]'s facts in, `xenrad_fhir_model` resources
//! out), checked against the R4 model and indexed for the search parameters the gateway
//! serves. Pure: no store, no clock, no I/O; the ingest layer reads what exists, calls these
//! functions and writes what they return.
//!
//! Resource ids are derived from business identifiers ([`derived_id`]) so that a redelivery
//! lands on the same resource.

pub mod appointment;
pub mod endpoint;
pub mod order;
pub mod patient;
pub mod procedure;
pub mod report;
pub mod study;

use crate::search::{self, IndexEntry};

/// An owned FHIR R4 resource of the generic model (what projections return).
pub type Resource = xenrad_fhir_model::Resource<'static>;

/// Who a resource is about, as a `Reference`: a patient resource, or only a display text
/// while no patient is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `Patient/<id>`.
    Reference(String),
    /// Display text only.
    Display(String),
}

/// The display of a subject no message has named yet.
pub const UNKNOWN_PATIENT: &str = "unknown patient";

/// A projected resource that is not valid FHIR R4 (a bug in a projection or input the
/// mapping let through): its ingest fails instead of storing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// The identifier system used for DICOM UIDs (FHIR R4 ImagingStudy.identifier).
pub const DICOM_UID_SYSTEM: &str = "urn:dicom:uid";

/// Stable, FHIR-legal id (`[A-Za-z0-9\-\.]{1,64}`) derived from a business key:
/// FNV-1a 64 of the key, as hex, after a type prefix.
pub fn derived_id(prefix: &str, key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}-{h:016x}")
}

/// The search index rows of a built (so validated) resource: every executed R4
/// SearchParameter, extracted from the model by [`search::index`] (the SearchParameters'
/// FHIRPath expressions), so no projection indexes by hand. The store serialises the
/// resource once, with its `meta` (`ingest::fhir::write_version`).
pub fn index(r: &Resource) -> Vec<IndexEntry> {
    search::index(r)
}

/// A builder's refusal as [`Invalid`]: the OperationOutcome of what is wrong.
fn invalid(resource_type: &str, oo: &xenrad_fhir_model::outcome::OperationOutcome) -> Invalid {
    Invalid(format!(
        "projected {resource_type} fails validation: {}",
        oo.to_json()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_legal() {
        let a = derived_id("pat", "urn:x|123");
        assert_eq!(a, derived_id("pat", "urn:x|123"));
        assert_ne!(a, derived_id("pat", "urn:x|124"));
        assert!(a.len() <= 64 && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
