//! Facts become FHIR R4 resources ([`crate::map`]'s facts in, `xenrad_fhir_model` resources
//! out), checked against the R4 model and indexed for the search parameters the gateway
//! serves. Pure: no store, no clock, no I/O; the ingest layer reads what exists, calls these
//! functions and writes what they return.
//!
//! Resource ids are derived from business identifiers ([`derived_id`]) so that a redelivery
//! lands on the same resource.

pub mod endpoint;
pub mod order;
pub mod patient;
pub mod procedure;
pub mod study;

use crate::search::{self, IndexEntry};
use xenrad_fhir_model::index::IndexValue;

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

/// A resource as the store keeps it: the model's serialisation (elements in specification
/// order, no `meta`) and the index rows of the search parameters the gateway serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The resource JSON without `meta`.
    pub body: String,
    /// Its search index rows.
    pub index: Vec<IndexEntry>,
}

/// Serialises a built (so validated) resource once and extracts its search index rows from
/// the same model with `xenrad_fhir_model::index` (the R4 SearchParameters' FHIRPath
/// expressions), so no projection indexes by hand.
pub fn finish(r: &Resource) -> Result<Finished, Invalid> {
    let rt = r.resource_type.as_str();
    let mut index = Vec::new();
    for (param, _) in search::params_for(rt) {
        // `_id` is the row's own id.
        if *param == "_id" {
            continue;
        }
        let Some(def) = xenrad_fhir_model::schema::search_param(r.resource_type, param) else {
            continue;
        };
        let values = xenrad_fhir_model::index::extract(r, def)
            .map_err(|e| Invalid(format!("indexing {rt}.{param}: {}", e.0)))?;
        for v in values {
            push_index(&mut index, param, &v);
        }
    }
    Ok(Finished {
        body: xenrad_fhir_model::to_json(r),
        index,
    })
}

/// A builder's refusal as [`Invalid`]: the OperationOutcome of what is wrong.
fn invalid(resource_type: &str, oo: &xenrad_fhir_model::outcome::OperationOutcome) -> Invalid {
    Invalid(format!(
        "projected {resource_type} fails validation: {}",
        oo.to_json()
    ))
}

/// The index rows of one extracted value (see `store::sqlite` for how each kind is
/// matched).
fn push_index(out: &mut Vec<IndexEntry>, param: &'static str, v: &IndexValue<'_>) {
    use xenrad_fhir_model::index::DatePrecision;
    match v {
        IndexValue::Token { system, code } => {
            out.push(IndexEntry::token(param, system.unwrap_or_default(), code));
            // DICOM UIDs are identifiers `urn:oid:<uid>`; also findable by the bare UID.
            if let Some(bare) = code.strip_prefix("urn:oid:") {
                out.push(IndexEntry::token(param, "", bare));
            }
        }
        IndexValue::String(s) => {
            out.push(IndexEntry::string(param, s));
            out.push(IndexEntry::raw(param, s));
        }
        // Dates are kept as ISO text at their own precision; the SQL compares them
        // lexically and a shorter search value matches the whole period.
        IndexValue::Date(range) => {
            if let Some(low) = &range.low {
                let n = match range.precision {
                    DatePrecision::Year => 4,
                    DatePrecision::Month => 7,
                    DatePrecision::Day => 10,
                    DatePrecision::Time => low.len(),
                };
                out.push(IndexEntry::plain(param, low.get(..n).unwrap_or(low)));
            }
        }
        IndexValue::Reference { reference, .. } => out.push(IndexEntry::plain(param, reference)),
        IndexValue::Uri(u) | IndexValue::Number(u) => out.push(IndexEntry::plain(param, u)),
        IndexValue::Quantity { value, .. } => out.push(IndexEntry::plain(param, value)),
    }
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
