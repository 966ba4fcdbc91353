//! The worklist use case: an order's steps ([`crate::map::order`]) written to the store in the
//! order's transaction (so an order is acknowledged only with its worklist item durable, and
//! a refused order writes nothing), and the steps a C-FIND asks for
//! ([`crate::store::worklist`]).

use crate::map::OrderFacts;
use crate::map::order::{OrderError, OrderMessage, OrderSettings, StepFacts, WorklistChange};
use crate::map::worklist::{item_row, with_status};
use crate::store::worklist::{WorklistFilter, filter_of, find_in_rows};
use crate::store::{ReadTx, Store, StoreError, WorklistRow, WriteTx};
use xenrad_dimse::query::{FindOptions, FindQuery, Identifier, QueryError};
use xenrad_hl7v2::ack::{ErrorCode, ErrorDetail, ErrorLocation};

/// Site settings of the scheduled workflow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkflowSettings {
    /// The order mapping's settings (accession system).
    pub order: OrderSettings,
    /// Keep completed, discontinued and cancelled steps on the worklist (with their SPS
    /// Status) instead of removing them.
    pub keep_done: bool,
}

/// The ERR of a refused order: the condition (required field missing, or data type error)
/// and where (`OBR-18` → OBR, field 18).
pub fn order_error(e: &OrderError) -> ErrorDetail {
    let code = if e.message.contains("not a DICOM UID") {
        ErrorCode::DataType
    } else {
        ErrorCode::RequiredFieldMissing
    };
    let (segment, field) = e.field.split_once('-').unwrap_or((e.field, ""));
    ErrorDetail::new(code, e.to_string()).at(ErrorLocation {
        segment: segment.to_owned(),
        sequence: 1,
        field: field.parse().ok(),
        ..ErrorLocation::default()
    })
}

/// A new Study Instance UID: `2.25.` and a random 122-bit UUID (v4) as a decimal (PS3.5
/// B.2).
pub fn new_study_uid() -> Result<String, StoreError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| StoreError::Job(format!("no random source: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(format!("2.25.{}", u128::from_be_bytes(b)))
}

/// The rows a step designates: its own (by key), else, for an order that names no
/// accession (a cancellation may not), the rows of its filler or placer order number.
fn rows_of(tx: &dyn ReadTx, step: &StepFacts) -> Result<Vec<WorklistRow>, StoreError> {
    if let Some(r) = tx.worklist_row(&step.key())? {
        return Ok(vec![r]);
    }
    let by = |f: WorklistFilter| tx.worklist_rows(&f);
    if !step.accession.is_empty() {
        return by(WorklistFilter {
            accession: Some(step.accession.clone()),
            ..WorklistFilter::default()
        });
    }
    if let Some(f) = step.filler.as_ref().filter(|f| !f.id.is_empty()) {
        return by(WorklistFilter {
            filler: Some(f.id.clone()),
            ..WorklistFilter::default()
        });
    }
    if let Some(p) = step.placer.as_ref().filter(|p| !p.id.is_empty()) {
        return by(WorklistFilter {
            placer: Some(p.id.clone()),
            ..WorklistFilter::default()
        });
    }
    Ok(Vec::new())
}

fn job(e: &QueryError) -> StoreError {
    StoreError::Job(format!("worklist item: {e}"))
}

/// Applies an order's worklist change inside its transaction. Returns the Study Instance
/// UIDs of its steps (kept, given by the order, or generated now).
pub fn apply_order(
    tx: &dyn WriteTx,
    order: &OrderMessage,
    settings: &WorkflowSettings,
) -> Result<Vec<String>, StoreError> {
    let mut uids = Vec::new();
    match order.effect.worklist {
        WorklistChange::Unchanged => {}
        WorklistChange::Upsert => {
            for step in &order.steps {
                let existing = tx.worklist_row(&step.key())?;
                let uid = match (&step.study_uid, existing) {
                    (Some(u), _) => u.clone(),
                    (None, Some(r)) if !r.study_uid.is_empty() => r.study_uid,
                    (None, _) => new_study_uid()?,
                };
                let row = item_row(step, &uid).map_err(|e| job(&e))?;
                tx.worklist_put(&row)?;
                uids.push(uid);
            }
        }
        WorklistChange::Remove => {
            for step in &order.steps {
                for mut row in rows_of(tx, step)? {
                    if !order.effect.sps_status.is_empty() {
                        order.effect.sps_status.clone_into(&mut row.status);
                        row.attributes =
                            with_status(&row.attributes, &row.status).map_err(|e| job(&e))?;
                    }
                    row.listed = settings.keep_done;
                    uids.push(row.study_uid.clone());
                    tx.worklist_put(&row)?;
                }
            }
        }
    }
    Ok(uids)
}

/// The order a study, an instance or a performed step belongs to.
#[derive(Clone, Debug)]
pub struct OrderLink {
    /// Its worklist row (listed or not), when the order came with a scheduled step.
    pub row: Option<WorklistRow>,
    /// Its ServiceRequest id, when stored.
    pub service_request: Option<String>,
}

/// A worklist row's order: the row and the ServiceRequest carrying its accession number.
fn link_row(tx: &dyn ReadTx, row: WorklistRow) -> Result<OrderLink, StoreError> {
    let sr = tx.find_by_token(
        "ServiceRequest",
        "identifier",
        &row.accession_system,
        &row.accession,
    )?;
    Ok(OrderLink {
        row: Some(row),
        service_request: sr,
    })
}

/// The order of a Study Instance UID or, else, of an accession number: the worklist row
/// that carries it (listed or not) and the ServiceRequest with that accession; without a
/// row, a ServiceRequest whose identifiers name the study (DCM 110180).
pub fn order_for(
    tx: &dyn ReadTx,
    study_uid: &str,
    accession: &str,
) -> Result<Option<OrderLink>, StoreError> {
    let mut rows = Vec::new();
    if !study_uid.is_empty() {
        rows = tx.worklist_rows(&WorklistFilter {
            study_uid: Some(study_uid.to_owned()),
            ..WorklistFilter::default()
        })?;
    }
    if rows.is_empty() && !accession.is_empty() {
        rows = tx.worklist_rows(&WorklistFilter {
            accession: Some(accession.to_owned()),
            ..WorklistFilter::default()
        })?;
    }
    if let Some(row) = rows.into_iter().next() {
        return link_row(tx, row).map(Some);
    }
    if study_uid.is_empty() {
        return Ok(None);
    }
    let sr = tx.find_by_token(
        "ServiceRequest",
        "identifier",
        crate::project::DICOM_UID_SYSTEM,
        &format!("urn:oid:{study_uid}"),
    )?;
    Ok(sr.map(|id| OrderLink {
        row: None,
        service_request: Some(id),
    }))
}

/// The order a report (ORU^R01) is about: by Study Instance UID or accession
/// ([`order_for`]), else by filler, else placer order number (through the worklist rows); the
/// refusal (ERR 204 unknown key at OBR-3) when no ServiceRequest is found.
pub fn report_order(
    tx: &dyn ReadTx,
    f: &crate::map::report::ReportFacts,
) -> Result<Result<OrderLink, ErrorDetail>, StoreError> {
    let mut link = order_for(tx, &f.study_uid, &f.accession)?;
    if link.as_ref().is_none_or(|l| l.service_request.is_none()) {
        link = order_by_numbers(tx, &f.placer, &f.filler)?;
    }
    match link {
        Some(l) if l.service_request.is_some() => Ok(Ok(l)),
        _ => Ok(Err(ErrorDetail::new(
            ErrorCode::UnknownKey,
            format!(
                "ORU^R01 for an unknown order (placer {:?}, filler {:?}, accession {:?}): \
                 nothing stored",
                f.placer, f.filler, f.accession
            ),
        )
        .at(ErrorLocation {
            segment: "OBR".into(),
            sequence: 1,
            field: Some(3),
            ..ErrorLocation::default()
        }))),
    }
}

/// A merge moves the worklist steps of the retired patient ID `old_id` to the surviving
/// patient (its first identifier, with its name), listed or not.
pub fn move_patient(
    tx: &dyn WriteTx,
    old_id: &str,
    survivor: &crate::map::PatientFacts,
) -> Result<(), StoreError> {
    let Some((issuer, id)) = survivor.identifiers.first() else {
        return Ok(());
    };
    if id == old_id {
        return Ok(());
    }
    let name = survivor.family.as_ref().map(|family| {
        let mut parts = vec![family.clone()];
        parts.extend(survivor.given.iter().cloned());
        parts.join("^")
    });
    let rows = tx.worklist_rows(&WorklistFilter {
        patient_id: Some(old_id.to_owned()),
        ..WorklistFilter::default()
    })?;
    for mut row in rows {
        row.attributes =
            crate::map::worklist::with_patient(&row.attributes, id, issuer, name.as_deref())
                .map_err(|e| job(&e))?;
        id.clone_into(&mut row.patient_id);
        tx.worklist_put(&row)?;
    }
    Ok(())
}

/// The order of a filler, else placer order number, through the worklist rows that carry it.
pub fn order_by_numbers(
    tx: &dyn ReadTx,
    placer: &str,
    filler: &str,
) -> Result<Option<OrderLink>, StoreError> {
    for filter in [
        (!filler.is_empty()).then(|| WorklistFilter {
            filler: Some(filler.to_owned()),
            ..WorklistFilter::default()
        }),
        (!placer.is_empty()).then(|| WorklistFilter {
            placer: Some(placer.to_owned()),
            ..WorklistFilter::default()
        }),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(row) = tx.worklist_rows(&filter)?.into_iter().next() {
            return link_row(tx, row).map(Some);
        }
    }
    Ok(None)
}

/// What an MPPS state does to its order ([`crate::project::order::after_mpps`]): the
/// ServiceRequest's status and the worklist step's status and listing.
pub fn after_mpps(
    tx: &dyn WriteTx,
    link: &OrderLink,
    mpps_status: &str,
    reason: Option<&str>,
    keep_done: bool,
) -> Result<(), StoreError> {
    let Some((sr_status, sps_status, stays)) =
        crate::project::order::after_mpps(mpps_status, reason)
    else {
        return Ok(());
    };
    if let Some(mut row) = link.row.clone() {
        let listed = stays || keep_done;
        if row.status != sps_status || row.listed != listed {
            sps_status.clone_into(&mut row.status);
            row.attributes = with_status(&row.attributes, sps_status).map_err(|e| job(&e))?;
            row.listed = listed;
            tx.worklist_put(&row)?;
        }
    }
    if let Some(id) = &link.service_request {
        let (stored, Some(existing)) = super::resources::load(tx, "ServiceRequest", id)? else {
            return Ok(());
        };
        let sr = crate::project::order::with_status(existing, sr_status)
            .map_err(|e| StoreError::Job(e.0))?;
        super::resources::put(tx, stored.as_ref(), sr)?;
    }
    Ok(())
}

/// The ServiceRequest facts of an order with what its worklist steps add: the accession
/// (typed ACSN, under its authority's system), the steps' Study Instance UIDs and the
/// status of the order control table.
pub fn order_facts(f: &OrderFacts, order: &OrderMessage, study_uids: Vec<String>) -> OrderFacts {
    let mut f = f.clone();
    if let Some(s) = order.steps.iter().find(|s| !s.accession.is_empty()) {
        f.accession = Some((s.accession_system.clone(), s.accession.clone()));
    }
    let mut uids = study_uids;
    uids.dedup();
    f.study_uids = uids;
    f.status = order.effect.request_status;
    f
}

/// Answers a worklist C-FIND from the store: the rows the query's indexed keys admit, then
/// K.6 matching. Returns the responses and whether the match limit cut them.
pub fn find(
    store: &Store,
    query: &FindQuery,
    opts: &FindOptions,
) -> Result<(Vec<Identifier>, bool), FindError> {
    let filter = filter_of(query);
    let mut rows = Vec::new();
    store
        .read_blocking(|tx: &dyn ReadTx| {
            rows = tx.worklist_rows(&filter)?;
            Ok(())
        })
        .map_err(FindError::Store)?;
    find_in_rows(query, rows, opts).map_err(FindError::Query)
}

/// Why a worklist C-FIND failed.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// The store could not be read.
    #[error("{0}")]
    Store(StoreError),
    /// A stored item does not decode.
    #[error("{0}")]
    Query(QueryError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_uids_are_v4_uuid_uids() {
        let a = new_study_uid().expect("uid");
        let b = new_study_uid().expect("uid");
        assert_ne!(a, b);
        assert!(a.starts_with("2.25."));
        assert!(crate::map::order::is_uid(&a), "{a}");
    }

    #[test]
    fn refusals_name_their_field() {
        let d = order_error(&OrderError {
            field: "OBR-18",
            message: "no accession".into(),
        });
        assert_eq!(d.code, ErrorCode::RequiredFieldMissing);
        let l = d.location.expect("location");
        assert_eq!((l.segment.as_str(), l.field), ("OBR", Some(18)));
    }
}
