//! [`ReportFacts`] (an ORU^R01) → `DiagnosticReport` (FHIR R4 §7.1) and one `Observation`
//! (§7.2) per OBX, linked to the order's ServiceRequest and ImagingStudy.

use super::{Invalid, Resource, invalid};
use crate::map::report::{ObservationFacts, ReportFacts};
use xenrad_fhir_model::builders::{DiagnosticReportBuilder, ObservationBuilder};

/// LOINC 18748-4 "Diagnostic imaging study": the code of a report whose OBR-4 is empty.
const IMAGING_REPORT: (&str, &str, &str) =
    ("http://loinc.org", "18748-4", "Diagnostic imaging study");

/// HL7 v2 coding system names (table 0396) as FHIR code system URIs; local and unknown
/// systems give no system (the code alone).
pub fn code_system(v2: &str) -> &'static str {
    match v2 {
        "LN" => "http://loinc.org",
        "SCT" | "SNM" | "SNM3" => "http://snomed.info/sct",
        "DCM" => "http://dicom.nema.org/resources/ontology/DCM",
        _ => "",
    }
}

fn display(text: &str) -> Option<&str> {
    Some(text).filter(|t| !t.is_empty())
}

/// The Observation `id` of one OBX about `subject`.
pub fn observation(
    id: &str,
    o: &ObservationFacts,
    subject: &str,
    based_on: Option<&str>,
) -> Result<Resource, Invalid> {
    let (system, code, text) = &o.code;
    let code = if code.is_empty() { "unknown" } else { code };
    let mut b = ObservationBuilder::new(
        id,
        o.status,
        code_system(system),
        code,
        display(text),
        subject,
    );
    if !o.value.is_empty() {
        b = b.value_string(&o.value);
    }
    if let Some(e) = &o.effective {
        b = b.effective(e);
    }
    if let Some(r) = based_on {
        b = b.based_on(r);
    }
    b.build().map_err(|oo| invalid("Observation", &oo))
}

/// The DiagnosticReport `id` of a report about `subject`, with its observations' ids.
pub fn diagnostic_report(
    id: &str,
    f: &ReportFacts,
    subject: &str,
    based_on: Option<&str>,
    imaging_study: Option<&str>,
    results: &[String],
) -> Result<Resource, Invalid> {
    let (system, code, text) = &f.code;
    let mut b = if code.is_empty() {
        DiagnosticReportBuilder::new(
            id,
            f.status,
            IMAGING_REPORT.0,
            IMAGING_REPORT.1,
            Some(IMAGING_REPORT.2),
            subject,
        )
    } else {
        DiagnosticReportBuilder::new(
            id,
            f.status,
            code_system(system),
            code,
            display(text),
            subject,
        )
    };
    if let Some(r) = based_on {
        b = b.based_on(r);
    }
    if let Some(e) = &f.effective {
        b = b.effective(e);
    }
    if let Some(i) = &f.issued {
        b = b.issued(i);
    }
    for r in results {
        b = b.result(&format!("Observation/{r}"));
    }
    if let Some(s) = imaging_study {
        b = b.imaging_study(s);
    }
    if let Some(c) = &f.conclusion {
        b = b.conclusion(c);
    }
    b.build().map_err(|oo| invalid("DiagnosticReport", &oo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ReportFacts {
        ReportFacts {
            filler: "FL1".into(),
            status: "final",
            code: ("L".into(), "CTH".into(), "CT HEAD".into()),
            effective: Some("2025-01-24".into()),
            issued: Some("2025-01-24T15:00:00+01:00".into()),
            conclusion: Some("Normal.".into()),
            observations: vec![ObservationFacts {
                code: ("LN".into(), "59776-5".into(), "Findings".into()),
                value: "No bleed.".into(),
                status: "final",
                effective: None,
            }],
            ..ReportFacts::default()
        }
    }

    #[test]
    fn a_report_links_its_order_study_and_observations() {
        let f = facts();
        let o = observation(
            "obs-1",
            &f.observations[0],
            "Patient/p",
            Some("ServiceRequest/sr"),
        )
        .unwrap();
        let j = xenrad_fhir_model::to_json(&o);
        assert!(j.contains(r#""code":{"coding":[{"system":"http://loinc.org","code":"59776-5","display":"Findings"}]}"#), "{j}");
        assert!(j.contains(r#""valueString":"No bleed.""#), "{j}");
        let r = diagnostic_report(
            "dr-1",
            &f,
            "Patient/p",
            Some("ServiceRequest/sr"),
            Some("ImagingStudy/is"),
            &["obs-1".into()],
        )
        .unwrap();
        let j = xenrad_fhir_model::to_json(&r);
        for part in [
            r#""basedOn":[{"reference":"ServiceRequest/sr"}]"#,
            r#""status":"final""#,
            r#""code":{"coding":[{"code":"CTH","display":"CT HEAD"}]}"#,
            r#""issued":"2025-01-24T15:00:00+01:00""#,
            r#""result":[{"reference":"Observation/obs-1"}]"#,
            r#""imagingStudy":[{"reference":"ImagingStudy/is"}]"#,
            r#""conclusion":"Normal.""#,
        ] {
            assert!(j.contains(part), "{part} in {j}");
        }
    }

    #[test]
    fn a_report_without_code_is_a_diagnostic_imaging_study() {
        let f = ReportFacts {
            code: Default::default(),
            ..facts()
        };
        let j = xenrad_fhir_model::to_json(
            &diagnostic_report("dr-1", &f, "Patient/p", None, None, &[]).unwrap(),
        );
        assert!(j.contains("18748-4"), "{j}");
    }
}
