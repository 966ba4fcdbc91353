//! The MPPS state machine as pure functions over attribute lists (PS3.4 F.7.2).
//!
//! - N-CREATE only with status IN PROGRESS (PS3.4 F.7.2.1.1); Type 1 attributes present with a value,
//!   absent Type 2 attributes are recorded as empty (Table F.7.2-1).
//! - N-SET while IN PROGRESS: "Not allowed" attributes are refused; present attributes replace the
//!   stored ones, a sequence replaces the whole sequence (PS3.4 F.7.2.2.1, PS3.7 10.1.1.1.2).
//! - IN PROGRESS → COMPLETED | DISCONTINUED; nothing after a final state (Error ID A710).
//! - Going final requires End Date/Time with values, and COMPLETED at least one Performed Series
//!   item (PS3.4 F.7.2.2.1; IHE RAD TF-2 4.7).

use crate::attributes::{
    self, PERFORMED_SERIES_ITEM, REFERENCED_SOP_ITEM, SCHEDULED_STEP_ITEM, Usage, tags,
};
use crate::dataset::{Dataset, Element};
use crate::error::{ErrorKind, MppsError};
use crate::model::PpsStatus;
use dicom_core::{Tag, VR};

/// Which attribute profile a request is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Full Table F.7.2-1 requirements (DICOM JSON and DIMSE doors).
    Full,
    /// The seed JSON profile: only SOP Instance UID, Study Instance UID and status are required,
    /// and going final does not require end date/time or performed series (the format cannot carry them).
    Seed,
}

/// Reads and checks the status in a request: absent → `None`.
fn request_status(req: &Dataset) -> Result<Option<PpsStatus>, MppsError> {
    let Some(el) = req.get(tags::PPS_STATUS) else {
        return Ok(None);
    };
    let path = [tags::PPS_STATUS];
    if el.is_empty() {
        return Err(MppsError::at(
            ErrorKind::MissingValue,
            &path,
            "Performed Procedure Step Status is empty",
        ));
    }
    let s = el.first_str().unwrap_or_default();
    PpsStatus::parse(s).map(Some).ok_or_else(|| {
        MppsError::at(
            ErrorKind::InvalidValue,
            &path,
            format!("Performed Procedure Step Status {s:?} is not IN PROGRESS, COMPLETED or DISCONTINUED"),
        )
    })
}

fn require(ds: &Dataset, tag: Tag, path: &mut Vec<Tag>, what: &str) -> Result<(), MppsError> {
    path.push(tag);
    let r = match ds.get(tag) {
        None => Err(MppsError::at(
            ErrorKind::MissingAttribute,
            path,
            format!("missing Type 1 attribute {what}"),
        )),
        Some(e) if e.is_empty() => Err(MppsError::at(
            ErrorKind::MissingValue,
            path,
            format!("Type 1 attribute {what} has no value"),
        )),
        Some(_) => Ok(()),
    };
    path.pop();
    r
}

fn check_items(
    ds: &Dataset,
    seq: Tag,
    rules: &[(Tag, VR, Usage)],
    path: &mut Vec<Tag>,
) -> Result<(), MppsError> {
    path.push(seq);
    for item in ds.items(seq) {
        for (tag, _, usage) in rules {
            if *usage == Usage::Type1 {
                require(item, *tag, path, &format!("({:04X},{:04X})", tag.0, tag.1))?;
            }
        }
        if seq == tags::PERFORMED_SERIES_SEQUENCE {
            check_items(
                item,
                tags::REFERENCED_IMAGE_SEQUENCE,
                REFERENCED_SOP_ITEM,
                path,
            )?;
            check_items(
                item,
                tags::REFERENCED_NON_IMAGE_COMPOSITE_SEQUENCE,
                REFERENCED_SOP_ITEM,
                path,
            )?;
        }
    }
    path.pop();
    Ok(())
}

/// Validates an N-CREATE attribute list and returns the attributes to store.
pub fn validate_create(req: &Dataset, profile: Profile) -> Result<Dataset, MppsError> {
    req.validate_values()?;
    let status = request_status(req)?;
    match status {
        None => {
            return Err(MppsError::at(
                ErrorKind::MissingAttribute,
                &[tags::PPS_STATUS],
                "missing Performed Procedure Step Status",
            ));
        }
        Some(PpsStatus::InProgress) => {}
        Some(s) => {
            return Err(MppsError::at(
                ErrorKind::InvalidValue,
                &[tags::PPS_STATUS],
                format!("N-CREATE status must be IN PROGRESS, not {s} (PS3.4 F.7.2.1.1)"),
            ));
        }
    }
    let mut path = Vec::new();
    let mut out = req.clone();
    if profile == Profile::Full {
        for rule in attributes::TOP_LEVEL {
            match rule.create {
                Usage::Type1 => require(req, rule.tag, &mut path, rule.keyword)?,
                Usage::Type2 if req.get(rule.tag).is_none() => {
                    out.insert(rule.tag, Element::empty(rule.vr));
                }
                Usage::NotAllowed if req.get(rule.tag).is_some() => {
                    return Err(MppsError::at(
                        ErrorKind::NotAllowed,
                        &[rule.tag],
                        format!("{} is not allowed in N-CREATE", rule.keyword),
                    ));
                }
                _ => {}
            }
        }
    }
    require(
        req,
        tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
        &mut path,
        "ScheduledStepAttributesSequence",
    )?;
    check_items(
        req,
        tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
        SCHEDULED_STEP_ITEM,
        &mut path,
    )?;
    check_items(
        req,
        tags::PERFORMED_SERIES_SEQUENCE,
        PERFORMED_SERIES_ITEM,
        &mut path,
    )?;
    Ok(out)
}

/// The result of applying an N-SET to a stored attribute list.
#[derive(Debug, Clone, PartialEq)]
pub struct SetEffect {
    /// The attributes after the update.
    pub attributes: Dataset,
    /// The status after the update.
    pub status: PpsStatus,
    /// False when the update changed nothing (e.g. IN PROGRESS → IN PROGRESS with no other attribute).
    pub changed: bool,
}

/// Applies an N-SET attribute list to the stored attributes of an instance.
pub fn apply_set(
    current: &Dataset,
    req: &Dataset,
    profile: Profile,
) -> Result<SetEffect, MppsError> {
    let current_status = current
        .str(tags::PPS_STATUS)
        .and_then(PpsStatus::parse)
        .unwrap_or(PpsStatus::InProgress);
    if current_status.is_final() {
        return Err(MppsError::at(
            ErrorKind::NoLongerUpdatable,
            &[tags::PPS_STATUS],
            format!(
                "Performed Procedure Step Object may no longer be updated (status is {current_status})"
            ),
        ));
    }
    req.validate_values()?;
    for (tag, _) in req.iter() {
        if let Some(rule) = attributes::rule(tag)
            && rule.set == Usage::NotAllowed
        {
            return Err(MppsError::at(
                ErrorKind::NotAllowed,
                &[tag],
                format!(
                    "{} may not be changed by N-SET (PS3.4 Table F.7.2-1)",
                    rule.keyword
                ),
            ));
        }
    }
    let new_status = request_status(req)?.unwrap_or(current_status);
    let mut path = Vec::new();
    check_items(
        req,
        tags::PERFORMED_SERIES_SEQUENCE,
        PERFORMED_SERIES_ITEM,
        &mut path,
    )?;
    let mut next = current.clone();
    for (tag, el) in req.iter() {
        // A sequence in N-SET replaces the whole stored sequence (PS3.4 F.7.2.2.1).
        next.insert(tag, el.clone());
    }
    if new_status.is_final() && profile == Profile::Full {
        require(
            &next,
            tags::PPS_END_DATE,
            &mut path,
            "PerformedProcedureStepEndDate",
        )?;
        require(
            &next,
            tags::PPS_END_TIME,
            &mut path,
            "PerformedProcedureStepEndTime",
        )?;
        if new_status == PpsStatus::Completed {
            require(
                &next,
                tags::PERFORMED_SERIES_SEQUENCE,
                &mut path,
                "PerformedSeriesSequence",
            )?;
        }
    }
    let changed = &next != current;
    Ok(SetEffect {
        attributes: next,
        status: new_status,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create_req() -> Dataset {
        let item = Dataset::new().with(tags::STUDY_INSTANCE_UID, Element::string(VR::UI, "1.2.3"));
        Dataset::new()
            .with(tags::PPS_STATUS, Element::string(VR::CS, "IN PROGRESS"))
            .with(
                tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
                Element::items(vec![item]),
            )
            .with(tags::PPS_ID, Element::string(VR::SH, "PPS1"))
            .with(
                tags::PERFORMED_STATION_AE_TITLE,
                Element::string(VR::AE, "CT1"),
            )
            .with(tags::PPS_START_DATE, Element::string(VR::DA, "20240101"))
            .with(tags::PPS_START_TIME, Element::string(VR::TM, "101500"))
            .with(tags::MODALITY, Element::string(VR::CS, "CT"))
    }

    #[test]
    fn create_fills_type2_and_checks_type1() {
        let stored = validate_create(&create_req(), Profile::Full).unwrap();
        assert!(
            stored
                .get(tags::PATIENT_NAME)
                .is_some_and(Element::is_empty)
        );
        assert!(
            stored
                .get(tags::PERFORMED_SERIES_SEQUENCE)
                .is_some_and(Element::is_empty)
        );
        let mut req = create_req();
        req.remove(tags::MODALITY);
        assert_eq!(
            validate_create(&req, Profile::Full).unwrap_err().kind(),
            ErrorKind::MissingAttribute
        );
        assert!(validate_create(&req, Profile::Seed).is_ok());
        req.insert(tags::MODALITY, Element::empty(VR::CS));
        assert_eq!(
            validate_create(&req, Profile::Full)
                .unwrap_err()
                .dimse_status(),
            0x0121
        );
    }

    #[test]
    fn final_set_needs_end_and_series() {
        let stored = validate_create(&create_req(), Profile::Full).unwrap();
        let set = Dataset::new().with(tags::PPS_STATUS, Element::string(VR::CS, "COMPLETED"));
        let e = apply_set(&stored, &set, Profile::Full).unwrap_err();
        assert_eq!(e.path(), &[tags::PPS_END_DATE]);
        let set = set
            .with(tags::PPS_END_DATE, Element::string(VR::DA, "20240101"))
            .with(tags::PPS_END_TIME, Element::string(VR::TM, "1100"));
        let e = apply_set(&stored, &set, Profile::Full).unwrap_err();
        assert_eq!(
            (e.kind(), e.path()),
            (
                ErrorKind::MissingValue,
                &[tags::PERFORMED_SERIES_SEQUENCE][..]
            )
        );
        let series = Dataset::new()
            .with(
                tags::SERIES_INSTANCE_UID,
                Element::string(VR::UI, "1.2.3.4"),
            )
            .with(tags::PROTOCOL_NAME, Element::string(VR::LO, "HEAD"));
        let set = set.with(
            tags::PERFORMED_SERIES_SEQUENCE,
            Element::items(vec![series]),
        );
        let eff = apply_set(&stored, &set, Profile::Full).unwrap();
        assert_eq!(eff.status, PpsStatus::Completed);
        let again = apply_set(&eff.attributes, &set, Profile::Full).unwrap_err();
        assert_eq!(again.error_id(), Some(0xA710));
        // DISCONTINUED needs no series.
        let disc = Dataset::new()
            .with(tags::PPS_STATUS, Element::string(VR::CS, "DISCONTINUED"))
            .with(tags::PPS_END_DATE, Element::string(VR::DA, "20240101"))
            .with(tags::PPS_END_TIME, Element::string(VR::TM, "1100"));
        assert!(apply_set(&stored, &disc, Profile::Full).is_ok());
    }

    #[test]
    fn sequence_replaces_whole_and_not_allowed_refused() {
        let stored = validate_create(&create_req(), Profile::Full).unwrap();
        let code = |v: &str| Dataset::new().with(tags::CODE_VALUE, Element::string(VR::SH, v));
        let s1 = Dataset::new().with(
            tags::PROCEDURE_CODE_SEQUENCE,
            Element::items(vec![code("A"), code("B")]),
        );
        let e1 = apply_set(&stored, &s1, Profile::Full).unwrap();
        let s2 = Dataset::new().with(
            tags::PROCEDURE_CODE_SEQUENCE,
            Element::items(vec![code("C")]),
        );
        let e2 = apply_set(&e1.attributes, &s2, Profile::Full).unwrap();
        assert_eq!(
            e2.attributes.items(tags::PROCEDURE_CODE_SEQUENCE),
            &[code("C")]
        );
        let bad = Dataset::new().with(tags::MODALITY, Element::string(VR::CS, "MR"));
        let e = apply_set(&stored, &bad, Profile::Full).unwrap_err();
        assert_eq!((e.http_status(), e.dimse_status()), (409, 0x0106));
        let noop = Dataset::new().with(tags::PPS_STATUS, Element::string(VR::CS, "IN PROGRESS"));
        assert!(!apply_set(&stored, &noop, Profile::Full).unwrap().changed);
    }
}
