//! A stored DICOM instance (C-STORE or STOW-RS) into the store: its instance row, its
//! query/retrieve row and its ImagingStudy in one durable write, then the in-memory Q/R index.

use super::resources;
use crate::Gateway;
use crate::map;
use crate::store::{InstanceRow, qr};
use dicom_dictionary_std::tags;
use std::path::Path;
use xenrad_dimse::dimse::status;
use xenrad_dimse::scp::StoredInstance;
use xenrad_dimse::store::InstanceHeader;

/// Indexes an instance the file sink committed (idempotent on its SOP Instance UID) and
/// refreshes its ImagingStudy, as a C-STORE does before its C-STORE-RSP goes out (STOW-RS
/// stores through here too); the returned status is the C-STORE status (PS3.4 B.2.3): a
/// store failure answers 0xA700.
pub fn stored(gw: &Gateway, inst: &StoredInstance) -> u16 {
    let file_header;
    let header = match &inst.header {
        Some(h) if h.study_instance_uid.is_some() => Some(h),
        // Not scanned (deflated), or the Study Instance UID lies beyond the first 64 KiB
        // the SCP looks at: read the stored file once.
        _ => {
            file_header = read_header_from_file(&inst.path);
            file_header.as_ref()
        }
    };
    let facts = map::dicom::instance(inst, header);
    if facts.study_uid.is_empty() {
        // Nothing to file it under: the dataset has no Study Instance UID.
        gw.metrics.ingest(
            "dicom",
            "rejected",
            usize::try_from(inst.dataset_len).unwrap_or(usize::MAX),
        );
        return status::CANNOT_UNDERSTAND;
    }
    // The query attributes go into the same durable write as the instance row
    // (`qr` module); an instance whose header cannot be indexed is still stored.
    let qr = match qr::records_for(inst) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(error = %e, "stored instance not indexed for query/retrieve");
            None
        }
    };
    let qrow = qr.as_ref().map(|(_, row)| row.clone());
    let row = InstanceRow {
        sop_instance_uid: facts.sop_instance_uid.clone(),
        sop_class_uid: facts.sop_class_uid.clone(),
        study_uid: facts.study_uid.clone(),
        series_uid: facts.series_uid.clone(),
        transfer_syntax: inst.transfer_syntax.clone(),
        path: inst.path.display().to_string(),
        size: inst.dataset_len,
        calling_ae: inst.calling_ae.clone(),
    };
    let r = gw.store.write_blocking(move |tx| {
        if let Some(q) = &qrow {
            tx.record_query_row(q)?;
        }
        resources::record_instance(tx, &facts, &row)
    });
    let len = usize::try_from(inst.dataset_len).unwrap_or(usize::MAX);
    match r {
        Ok(new) => {
            if let Some((record, _)) = qr
                && let Err(e) = gw.images.insert(record)
            {
                tracing::warn!(error = %e, "stored instance not indexed for query/retrieve");
            }
            gw.metrics
                .ingest("dicom", if new { "stored" } else { "duplicate" }, len);
            status::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "indexing a stored instance failed");
            gw.metrics.ingest("dicom", "failed", len);
            status::OUT_OF_RESOURCES
        }
    }
}

/// The header of an instance read from the stored file up to the pixel data, for the rare
/// instance whose facts did not come with [`StoredInstance::header`] (scanned from the data
/// set as it streamed in): a deflated transfer syntax, or a header longer than 64 KiB.
fn read_header_from_file(path: &Path) -> Option<InstanceHeader> {
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .ok()?;
    let text = |tag| -> Option<String> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    Some(InstanceHeader {
        study_instance_uid: text(tags::STUDY_INSTANCE_UID),
        series_instance_uid: text(tags::SERIES_INSTANCE_UID),
        modality: text(tags::MODALITY),
        patient_id: text(tags::PATIENT_ID),
        issuer_of_patient_id: text(tags::ISSUER_OF_PATIENT_ID),
        patient_name: text(tags::PATIENT_NAME),
        patient_birth_date: text(tags::PATIENT_BIRTH_DATE),
        patient_sex: text(tags::PATIENT_SEX),
        ..InstanceHeader::default()
    })
}
