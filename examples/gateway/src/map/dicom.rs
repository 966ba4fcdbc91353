//! A stored DICOM instance's header as facts: the instance, its series and study, and the
//! patient it names.

use super::{InstanceFacts, PatientFacts, SeriesFacts, fhir_date, gender_code};
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
    f.accession = text(&h.accession_number).unwrap_or_default();
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

/// The series of a study from its stored instances' `(series, SOP instance, SOP class)` rows
/// (in series then arrival order), without modalities (the store keeps those per series).
pub fn series(rows: &[(String, String, String)]) -> Vec<SeriesFacts> {
    let mut out: Vec<SeriesFacts> = Vec::new();
    for (series_uid, sop, class) in rows {
        let uid = series_uid.as_str();
        let inst = (sop.clone(), class.clone());
        match out.iter_mut().find(|s| s.uid == uid) {
            Some(s) => s.instances.push(inst),
            None => out.push(SeriesFacts {
                uid: uid.to_owned(),
                modality: None,
                instances: vec![inst],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> StoredInstance {
        StoredInstance {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: "1.2.3.1.1".into(),
            study_instance_uid: None,
            header: None,
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            path: "/nonexistent".into(),
            calling_ae: "SCU".into(),
            dataset_len: 10,
            head: xenrad_dimse::scp::DatasetHead::default(),
        }
    }

    #[test]
    fn a_header_becomes_instance_and_patient_facts() {
        let h = InstanceHeader {
            study_instance_uid: Some("1.2.3\0".into()),
            series_instance_uid: Some("1.2.3.1 ".into()),
            modality: Some("CT".into()),
            patient_id: Some("DCM1".into()),
            issuer_of_patient_id: Some("HOSP".into()),
            patient_name: Some("Doe^John^Q^^=ドウ^ジョン".into()),
            patient_birth_date: Some("19800101".into()),
            patient_sex: Some("M ".into()),
            ..InstanceHeader::default()
        };
        let f = instance(&stored(), Some(&h));
        assert_eq!(
            (
                f.study_uid.as_str(),
                f.series_uid.as_str(),
                f.modality.as_str()
            ),
            ("1.2.3", "1.2.3.1", "CT")
        );
        let p = f.patient.expect("patient");
        assert_eq!(p.identifiers, vec![("HOSP".to_owned(), "DCM1".to_owned())]);
        assert_eq!(p.family.as_deref(), Some("Doe"));
        assert_eq!(p.given, vec!["John", "Q"]);
        assert_eq!(p.birth_date.as_deref(), Some("1980-01-01"));
        assert_eq!(p.gender, Some("male"));
    }

    #[test]
    fn without_a_header_only_the_c_store_uids_are_known() {
        let mut s = stored();
        s.study_instance_uid = Some("9.9".into());
        let f = instance(&s, None);
        assert_eq!(f.study_uid, "9.9");
        assert_eq!(f.sop_instance_uid, "1.2.3.1.1");
        assert!(f.series_uid.is_empty() && f.patient.is_none());
        // A header without a Patient ID names no patient.
        let f = instance(&s, Some(&InstanceHeader::default()));
        assert!(f.patient.is_none());
    }

    #[test]
    fn rows_group_into_series_in_order() {
        let row = |s: &str, i: &str| {
            (
                s.to_owned(),
                i.to_owned(),
                "1.2.840.10008.5.1.4.1.1.2".to_owned(),
            )
        };
        let series = series(&[
            row("1.1", "a"),
            row("1.1", "b"),
            row("", "c"),
            row("1.2", "d"),
        ]);
        let uids: Vec<(&str, usize)> = series
            .iter()
            .map(|s| (s.uid.as_str(), s.instances.len()))
            .collect();
        assert_eq!(uids, vec![("1.1", 2), ("", 1), ("1.2", 1)]);
    }
}
