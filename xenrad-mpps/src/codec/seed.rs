//! The seed's simple JSON (`POST /ingest`): `{"sop_instance_uid","study_uid","status"}`.
//!
//! This is a **lossy profile**. It can carry only the SOP Instance UID, the Study Instance UID (stored
//! as the single item of the Scheduled Step Attributes Sequence) and the Performed Procedure Step
//! Status. It cannot carry: PPS ID, Performed Station AE Title/Name, Location, start/end date and time,
//! Modality, patient attributes, procedure codes, performed series or discontinuation reason. An
//! instance created through this door records those as absent (not even empty Type 2 values), and
//! the final-state requirements of the full profile (end date/time, at least one performed series)
//! are not applied to seed updates; see [`crate::state::Profile::Seed`]. Unknown JSON keys are refused
//! (400) rather than dropped.

use crate::MppsError;
use crate::attributes::tags;
use crate::codec::{Limits, check_size};
use crate::dataset::{Dataset, Element};
use crate::error::ErrorKind;
use crate::model::MppsInstance;
use crate::uid::validate_uid;
use dicom_core::VR;
use std::borrow::Cow;

/// A decoded seed body, borrowing from the input where no JSON escape forces a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRequest<'a> {
    /// SOP Instance UID of the MPPS instance (validated, PS3.5 §9.1).
    pub sop_instance_uid: Cow<'a, str>,
    /// Study Instance UID (validated).
    pub study_uid: Cow<'a, str>,
    /// Status string as sent (checked by the state machine, not here).
    pub status: Cow<'a, str>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw<'a> {
    #[serde(borrow, default)]
    sop_instance_uid: Option<Str<'a>>,
    #[serde(borrow, default)]
    study_uid: Option<Str<'a>>,
    #[serde(borrow, default)]
    status: Option<Str<'a>>,
}

/// A JSON string borrowed from the body unless it contains escapes (serde only borrows a `Cow`
/// that is a field of its own, not inside an `Option`).
#[derive(serde::Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

/// Decodes and validates a seed JSON body.
///
/// ```
/// let req = xenrad_mpps::codec::seed::decode(
///     br#"{"sop_instance_uid":"1.2.3.4.5","study_uid":"1.2.3.4.5.6","status":"IN PROGRESS"}"#,
///     &Default::default(),
/// ).unwrap();
/// assert_eq!(req.status, "IN PROGRESS");
/// ```
pub fn decode<'a>(body: &'a [u8], limits: &Limits) -> Result<SeedRequest<'a>, MppsError> {
    check_size(body.len(), limits)?;
    let raw: Raw<'a> = serde_json::from_slice(body)
        .map_err(|e| MppsError::new(ErrorKind::Malformed, format!("seed JSON: {e}")))?;
    let sop = raw.sop_instance_uid.map(|s| s.0).ok_or_else(|| {
        MppsError::at(
            ErrorKind::MissingAttribute,
            &[tags::SOP_INSTANCE_UID],
            "missing sop_instance_uid",
        )
    })?;
    let study = raw.study_uid.map(|s| s.0).ok_or_else(|| {
        MppsError::at(
            ErrorKind::MissingAttribute,
            &[
                tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
                tags::STUDY_INSTANCE_UID,
            ],
            "missing study_uid",
        )
    })?;
    let status = raw.status.map(|s| s.0).ok_or_else(|| {
        MppsError::at(
            ErrorKind::MissingAttribute,
            &[tags::PPS_STATUS],
            "missing status",
        )
    })?;
    validate_uid(&sop).map_err(|e| {
        MppsError::at(
            ErrorKind::InvalidValue,
            &[tags::SOP_INSTANCE_UID],
            format!("sop_instance_uid: {e}"),
        )
    })?;
    if study.is_empty() {
        return Err(MppsError::at(
            ErrorKind::MissingValue,
            &[
                tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
                tags::STUDY_INSTANCE_UID,
            ],
            "study_uid is empty",
        ));
    }
    validate_uid(&study).map_err(|e| {
        MppsError::at(
            ErrorKind::InvalidValue,
            &[
                tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
                tags::STUDY_INSTANCE_UID,
            ],
            format!("study_uid: {e}"),
        )
    })?;
    Ok(SeedRequest {
        sop_instance_uid: sop,
        study_uid: study,
        status,
    })
}

impl SeedRequest<'_> {
    /// The N-CREATE attribute list this body stands for.
    pub fn to_create_dataset(&self) -> Dataset {
        self.to_dataset(true)
    }

    /// The N-SET attribute list: the study is included only when it differs from `stored_study`
    /// (and is then refused as "not allowed" by the state machine).
    pub fn to_set_dataset(&self, stored_study: Option<&str>) -> Dataset {
        self.to_dataset(stored_study != Some(&*self.study_uid))
    }

    fn to_dataset(&self, with_study: bool) -> Dataset {
        let mut ds = Dataset::new().with(tags::PPS_STATUS, Element::string(VR::CS, &*self.status));
        if with_study {
            let item = Dataset::new().with(
                tags::STUDY_INSTANCE_UID,
                Element::string(VR::UI, &*self.study_uid),
            );
            ds.insert(
                tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
                Element::items(vec![item]),
            );
        }
        ds
    }
}

/// Encodes an instance in the seed format (for responses).
pub fn encode(instance: &MppsInstance) -> Vec<u8> {
    let v = serde_json::json!({
        "sop_instance_uid": instance.sop_instance_uid,
        "study_uid": instance.study_instance_uid().unwrap_or_default(),
        "status": instance.status().map(crate::PpsStatus::as_str).unwrap_or_default(),
    });
    v.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_without_escapes() {
        let body = br#"{"sop_instance_uid":"1.2.3","study_uid":"1.2.3.4","status":"COMPLETED"}"#;
        let r = decode(body, &Limits::default()).unwrap();
        assert!(matches!(r.sop_instance_uid, Cow::Borrowed(_)));
    }

    #[test]
    fn rejects_unknown_and_wrong_types() {
        let l = Limits::default();
        let unknown =
            br#"{"sop_instance_uid":"1.2.3","study_uid":"1.2","status":"COMPLETED","x":1}"#;
        assert_eq!(decode(unknown, &l).unwrap_err().http_status(), 400);
        let number = br#"{"sop_instance_uid":1,"study_uid":"1.2","status":"COMPLETED"}"#;
        assert_eq!(decode(number, &l).unwrap_err().kind(), ErrorKind::Malformed);
        assert_eq!(decode(b"[", &l).unwrap_err().kind(), ErrorKind::Malformed);
        let null = br#"{"sop_instance_uid":null,"study_uid":"1.2","status":"COMPLETED"}"#;
        assert_eq!(
            decode(null, &l).unwrap_err().kind(),
            ErrorKind::MissingAttribute
        );
    }
}
