//! A stored DICOM instance's header as facts: the instance, its series and study, and the
//! patient it names.

use super::{InstanceFacts, PatientFacts, fhir_date, gender_code};
use xenrad_dimse::scp::StoredInstance;
use xenrad_dimse::store::InstanceHeader;

/// What a stored instance's header says: its UIDs, modality and patient (PS3.3 C.7.1.1,
/// C.7.2.1, C.7.3.1). `header` is what the SCP scanned as the data set streamed in (or what
/// was read from the stored file when it could not); without one only the UIDs of the
/// C-STORE itself are known.
pub fn instance(inst: &StoredInstance, header: Option<&InstanceHeader>) -> InstanceFacts {
    let mut f = InstanceFacts {
        sop_class_uid: inst.sop_class_uid.clone(),
        sop_instance_uid: inst.sop_instance_uid.clone(),
        study_uid: inst.study_instance_uid.clone().unwrap_or_default(),
        ..InstanceFacts::default()
    };
    let Some(h) = header else {
        return f;
    };
    let text = |v: &Option<String>| -> Option<String> {
        v.as_deref()
            .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    if f.study_uid.is_empty() {
        f.study_uid = text(&h.study_instance_uid).unwrap_or_default();
    }
    f.series_uid = text(&h.series_instance_uid).unwrap_or_default();
    f.modality = text(&h.modality).unwrap_or_default();
    if let Some(pid) = text(&h.patient_id) {
        let issuer = text(&h.issuer_of_patient_id).unwrap_or_default();
        let name = text(&h.patient_name).unwrap_or_default();
        // PN: components separated by ^ within the first (alphabetic) group (PS3.5 §6.2.1).
        let alpha = name.split('=').next().unwrap_or_default();
        let mut parts = alpha.split('^').map(str::trim);
        let family = parts.next().filter(|s| !s.is_empty()).map(str::to_owned);
        let given: Vec<String> = parts
            .take(2)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        f.patient = Some(PatientFacts {
            identifiers: vec![(issuer, pid)],
            family,
            given,
            birth_date: text(&h.patient_birth_date).and_then(|d| fhir_date(&d)),
            gender: text(&h.patient_sex).and_then(|g| gender_code(&g)),
            addresses: Vec::new(),
            source: "DICOM C-STORE".to_owned(),
        });
    }
    f
}
