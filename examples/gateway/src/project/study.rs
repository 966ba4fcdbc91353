//! Stored instances and MPPS states → `ImagingStudy` (FHIR R4 §5.2).

use super::endpoint::ENDPOINT_REFERENCE;
use super::{Invalid, Resource, Subject, UNKNOWN_PATIENT, invalid};
use crate::map::SeriesFacts;
use xenrad_fhir_model::builders::{ImagingStudyBuilder, Series};
use xenrad_fhir_model::typed::{ImagingStudy, ResourceView};

/// The ImagingStudy `id` of study `study_uid` after an instance was stored: a new one is
/// `available` with an unknown subject; a stored one keeps its status and procedure (which
/// MPPS sets). Its identifier, its DICOMweb endpoint and, when `patient_id` is known, its
/// subject are set; when `series` is not empty, the series and counts are replaced by them.
/// Instances without a Series Instance UID (Type 1 in PS3.3 C.7.3.1, but seen) are counted in
/// `numberOfInstances` and not listed: `series.uid` is required to be a UID.
pub fn imaging_study(
    id: &str,
    existing: Option<Resource>,
    study_uid: &str,
    patient_id: Option<&str>,
    series: &[SeriesFacts],
    based_on: Option<&str>,
) -> Result<Resource, Invalid> {
    let mut b = match existing {
        Some(r) => ImagingStudyBuilder::edit(r),
        None => ImagingStudyBuilder::with_subject_display(id, "available", UNKNOWN_PATIENT),
    };
    if let Some(pid) = patient_id {
        b = b
            .clear("subject")
            .reference("subject", &format!("Patient/{pid}"), None);
    }
    // The order the study performs (found through its Study Instance UID or accession).
    if let Some(r) = based_on {
        b = b.clear("basedOn").based_on(r);
    }
    // Where the images are: the DICOMweb Endpoint (`endpoint` module).
    b = b
        .clear("identifier")
        .study_uid(study_uid)
        .clear("endpoint")
        .endpoint(ENDPOINT_REFERENCE);
    if !series.is_empty() {
        let listed = series.iter().filter(|s| !s.uid.is_empty());
        b = b
            .clear("numberOfSeries")
            .clear("numberOfInstances")
            .clear("series")
            .number_of_series(listed.clone().count())
            .number_of_instances(series.iter().map(|s| s.instances.len()).sum());
        for s in listed {
            // OT (other) when no instance named its modality (PS3.3 C.7.3.1.1.1).
            let mut one = Series::new(&s.uid, s.modality.as_deref().unwrap_or("OT"));
            for (sop, class) in &s.instances {
                one = one.instance(sop, class, None);
            }
            b = b.series(one);
        }
    }
    b.build().map_err(|oo| invalid("ImagingStudy", &oo))
}

/// The ImagingStudy `id` of study `study_uid` with the status an MPPS state gives it and a
/// `procedureReference` to `Procedure/<procedure_id>` (a study MPPS announces before any
/// instance arrived is created with an unknown subject).
pub fn performed(
    id: &str,
    existing: Option<Resource>,
    study_uid: &str,
    status: &str,
    procedure_id: &str,
    based_on: Option<&str>,
) -> Result<Resource, Invalid> {
    let mut b = match existing {
        Some(r) => ImagingStudyBuilder::edit(r).status(status),
        None => ImagingStudyBuilder::with_subject_display(id, status, UNKNOWN_PATIENT)
            .study_uid(study_uid),
    };
    if let Some(r) = based_on {
        b = b.clear("basedOn").based_on(r);
    }
    b.clear("procedureReference")
        .procedure_reference(&format!("Procedure/{procedure_id}"))
        .build()
        .map_err(|oo| invalid("ImagingStudy", &oo))
}

/// Who a stored ImagingStudy is about.
pub fn subject(study: &Resource) -> Subject {
    let s = ImagingStudy::from_resource(study).and_then(|s| s.subject());
    match s {
        Some(r) => match r.reference().and_then(|v| v.value()) {
            Some(reference) => Subject::Reference(reference.to_owned()),
            None => Subject::Display(
                r.display()
                    .and_then(|d| d.value())
                    .unwrap_or(UNKNOWN_PATIENT)
                    .to_owned(),
            ),
        },
        None => Subject::Display(UNKNOWN_PATIENT.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xenrad_fhir_model::to_json;

    fn series() -> Vec<SeriesFacts> {
        vec![
            SeriesFacts {
                uid: "1.2.3.1".into(),
                modality: Some("CT".into()),
                instances: vec![
                    ("1.2.3.1.1".into(), "1.2.840.10008.5.1.4.1.1.2".into()),
                    ("1.2.3.1.2".into(), "1.2.840.10008.5.1.4.1.1.2".into()),
                ],
            },
            SeriesFacts {
                uid: "1.2.3.2".into(),
                modality: None,
                instances: vec![("1.2.3.2.1".into(), "1.2.840.10008.5.1.4.1.1.7".into())],
            },
            SeriesFacts {
                uid: String::new(),
                modality: None,
                instances: vec![("1.2.3.9".into(), "1.2.840.10008.5.1.4.1.1.7".into())],
            },
        ]
    }

    #[test]
    fn a_new_study_lists_its_series_and_counts() {
        let s = imaging_study("study-1", None, "1.2.3", None, &series(), None).unwrap();
        assert_eq!(
            to_json(&s),
            r#"{"resourceType":"ImagingStudy","id":"study-1","identifier":[{"system":"urn:dicom:uid","value":"urn:oid:1.2.3"}],"status":"available","subject":{"display":"unknown patient"},"endpoint":[{"reference":"Endpoint/dicomweb"}],"numberOfSeries":2,"numberOfInstances":4,"series":[{"uid":"1.2.3.1","modality":{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"CT"},"numberOfInstances":2,"instance":[{"uid":"1.2.3.1.1","sopClass":{"system":"urn:ietf:rfc:3986","code":"urn:oid:1.2.840.10008.5.1.4.1.1.2"}},{"uid":"1.2.3.1.2","sopClass":{"system":"urn:ietf:rfc:3986","code":"urn:oid:1.2.840.10008.5.1.4.1.1.2"}}]},{"uid":"1.2.3.2","modality":{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"OT"},"numberOfInstances":1,"instance":[{"uid":"1.2.3.2.1","sopClass":{"system":"urn:ietf:rfc:3986","code":"urn:oid:1.2.840.10008.5.1.4.1.1.7"}}]}]}"#
        );
        assert_eq!(subject(&s), Subject::Display(UNKNOWN_PATIENT.into()));
    }

    #[test]
    fn mpps_sets_status_and_procedure_and_instances_keep_them() {
        let announced = performed("study-1", None, "1.2.3", "registered", "proc-1", None).unwrap();
        let j = to_json(&announced);
        assert!(j.contains(r#""status":"registered""#), "{j}");
        assert!(
            j.contains(r#""procedureReference":{"reference":"Procedure/proc-1"}"#),
            "{j}"
        );
        let s = imaging_study(
            "study-1",
            Some(announced),
            "1.2.3",
            Some("pat-1"),
            &series(),
            None,
        )
        .unwrap();
        let j = to_json(&s);
        assert!(j.contains(r#""status":"registered""#), "{j}");
        assert!(
            j.contains(r#""procedureReference":{"reference":"Procedure/proc-1"}"#),
            "{j}"
        );
        assert_eq!(subject(&s), Subject::Reference("Patient/pat-1".into()));
        let done = performed(
            "study-1",
            Some(s.clone()),
            "1.2.3",
            "available",
            "proc-1",
            Some("ServiceRequest/sr-1"),
        )
        .unwrap();
        assert!(to_json(&done).contains(r#""status":"available""#));
        assert!(to_json(&done).contains(r#""basedOn":[{"reference":"ServiceRequest/sr-1"}]"#));
        assert_eq!(subject(&done), subject(&s));
        // Refreshing with the same instances is the same resource.
        let again = imaging_study(
            "study-1",
            Some(s.clone()),
            "1.2.3",
            Some("pat-1"),
            &series(),
            None,
        )
        .unwrap();
        assert_eq!(to_json(&again), to_json(&s));
    }

    #[test]
    fn a_study_is_based_on_its_order_and_keeps_it() {
        let s = imaging_study(
            "study-1",
            None,
            "1.2.3",
            None,
            &series(),
            Some("ServiceRequest/sr-1"),
        )
        .unwrap();
        assert!(to_json(&s).contains(r#""basedOn":[{"reference":"ServiceRequest/sr-1"}]"#));
        let again =
            imaging_study("study-1", Some(s.clone()), "1.2.3", None, &series(), None).unwrap();
        assert_eq!(to_json(&again), to_json(&s));
    }
}
