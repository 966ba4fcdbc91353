//! ORU^R01 results → [`ReportFacts`] (pure): the report of an imaging order (its OBR) and its
//! observations (OBX), with what finds the order (placer/filler order numbers, accession,
//! Study Instance UID). The tables are the gateway README's; each row has a test here.
//!
//! | FHIR element | from |
//! |---|---|
//! | DiagnosticReport.status | OBR-25 (table 0123, [`report_status`]) |
//! | DiagnosticReport.code | OBR-4 (else LOINC 18748-4 "Diagnostic imaging study") |
//! | DiagnosticReport.effectiveDateTime | OBR-7 |
//! | DiagnosticReport.issued | OBR-22 (with its offset; without one, not set) |
//! | DiagnosticReport.conclusion | the text of the OBX whose OBX-3 text or code names an impression (`IMP`, `…&IMP`, "Impression") |
//! | DiagnosticReport.basedOn | the ServiceRequest of the order (ORC-2/OBR-2 placer, ORC-3/OBR-3 filler, OBR-18/IPC-1 accession, ZDS-1 Study UID) |
//! | DiagnosticReport.imagingStudy | the ImagingStudy of the order's Study Instance UID, when stored |
//! | Observation (one per OBX) .code / .valueString / .status / .effectiveDateTime | OBX-3 / OBX-5 repetitions joined by new lines / OBX-11 (table 0085, [`observation_status`]) / OBX-14, else OBR-7 |

use super::fhir_date;
use std::borrow::Cow;
use xenrad_hl7v2::Message;
use xenrad_hl7v2::ack::{ErrorCode, ErrorDetail, ErrorLocation};
use xenrad_hl7v2::datetime::{DateTime, Precision};

/// One OBX.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservationFacts {
    /// OBX-3 `(coding system, code, text)`.
    pub code: (String, String, String),
    /// OBX-5, repetitions joined by new lines.
    pub value: String,
    /// Observation.status.
    pub status: &'static str,
    /// FHIR dateTime (OBX-14, else OBR-7).
    pub effective: Option<String>,
}

/// One ORU^R01 report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportFacts {
    /// Placer order number (ORC-2, else OBR-2).
    pub placer: String,
    /// Filler order number (ORC-3, else OBR-3).
    pub filler: String,
    /// Accession number (IPC-1, else OBR-18).
    pub accession: String,
    /// Study Instance UID (IPC-3, else ZDS-1).
    pub study_uid: String,
    /// DiagnosticReport.status.
    pub status: &'static str,
    /// OBR-4 `(coding system, code, text)`.
    pub code: (String, String, String),
    /// FHIR dateTime of OBR-7.
    pub effective: Option<String>,
    /// FHIR instant of OBR-22.
    pub issued: Option<String>,
    /// The impression's text.
    pub conclusion: Option<String>,
    /// The OBX segments.
    pub observations: Vec<ObservationFacts>,
}

impl ReportFacts {
    /// The key the report's resources are derived from: filler, else placer, else accession.
    pub fn key(&self) -> String {
        [&self.filler, &self.placer, &self.accession]
            .into_iter()
            .find(|k| !k.is_empty())
            .cloned()
            .unwrap_or_default()
    }
}

/// OBR-25 result status (HL7 table 0123) → DiagnosticReport.status.
pub fn report_status(obr25: &str) -> &'static str {
    match obr25 {
        "O" | "I" | "S" => "registered",
        "P" | "R" => "preliminary",
        "A" => "partial",
        "F" => "final",
        "C" => "corrected",
        "X" => "cancelled",
        _ => "unknown",
    }
}

/// OBX-11 observation result status (HL7 table 0085) → Observation.status.
pub fn observation_status(obx11: &str) -> &'static str {
    match obx11 {
        "F" | "U" => "final",
        "C" => "corrected",
        "P" | "R" | "S" => "preliminary",
        "I" | "O" => "registered",
        "D" | "W" => "entered-in-error",
        "X" => "cancelled",
        _ => "unknown",
    }
}

fn s(c: Option<Cow<'_, str>>) -> String {
    c.map(|c| c.trim().to_owned()).unwrap_or_default()
}

/// A FHIR dateTime from an HL7 DTM: a date alone as a date; a time with its offset (FHIR
/// requires one), else the date only.
fn fhir_date_time(t: &DateTime) -> String {
    match (t.precision, t.offset) {
        (Precision::Year | Precision::Month | Precision::Day, _) | (_, None) => {
            fhir_date(&t.value.format("%Y%m%d").to_string()).unwrap_or_default()
        }
        (_, Some(off)) => t
            .value
            .and_local_timezone(off)
            .single()
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
            .unwrap_or_default(),
    }
}

/// An instant needs seconds and an offset.
fn fhir_instant(t: &DateTime) -> Option<String> {
    let off = t.offset?;
    matches!(t.precision, Precision::Second | Precision::Fraction(_))
        .then(|| {
            t.value
                .and_local_timezone(off)
                .single()
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
        })
        .flatten()
}

fn is_impression(code: &(String, String, String)) -> bool {
    let (_, c, text) = code;
    c == "IMP"
        || c.ends_with("&IMP")
        || c.ends_with("&IMP&")
        || text.eq_ignore_ascii_case("impression")
}

/// Reads an ORU^R01 (its first OBR and the OBX that follow). Refused when it names no order
/// at all (no placer, filler nor accession).
#[allow(clippy::result_large_err)] // one ErrorDetail per rejected message
pub fn read_report(m: &Message<'_>) -> Result<ReportFacts, ErrorDetail> {
    let Some(obr) = m.obrs().into_iter().next() else {
        return Err(ErrorDetail::new(
            ErrorCode::SegmentSequence,
            "ORU^R01 without OBR: no report to store",
        ));
    };
    let orc = m.orcs().into_iter().next();
    let placer = s(orc
        .and_then(|o| o.placer_order_number())
        .or_else(|| obr.placer_order_number()));
    let filler = s(orc
        .and_then(|o| o.filler_order_number())
        .or_else(|| obr.filler_order_number()));
    let accession = s(m.accession_number());
    if placer.is_empty() && filler.is_empty() && accession.is_empty() {
        return Err(ErrorDetail::new(
            ErrorCode::RequiredFieldMissing,
            "the report names no order: OBR-2, OBR-3 and OBR-18 are empty",
        )
        .at(ErrorLocation {
            segment: "OBR".into(),
            sequence: 1,
            field: Some(3),
            ..ErrorLocation::default()
        }));
    }
    let effective = obr.observation_time().as_ref().map(fhir_date_time);
    let code = obr
        .service()
        .map(|c| {
            (
                c.system.trim().to_owned(),
                c.code.trim().to_owned(),
                c.text.trim().to_owned(),
            )
        })
        .unwrap_or_default();
    let issued = obr
        .segment()
        .field(22)
        .and_then(|f| f.component(1))
        .and_then(|c| xenrad_hl7v2::datetime::parse_dtm(&c.text()).ok())
        .as_ref()
        .and_then(fhir_instant);
    let mut observations = Vec::new();
    let mut conclusion = None;
    for obx in m.obxs() {
        let code = obx
            .observation_id()
            .map(|(c, t)| {
                let system = obx
                    .segment()
                    .field(3)
                    .and_then(|f| f.component(3))
                    .map(|c| c.text().trim().to_owned())
                    .unwrap_or_default();
                (system, c.trim().to_owned(), t.trim().to_owned())
            })
            .unwrap_or_default();
        let value = obx
            .values()
            .iter()
            .map(|v| v.trim_end().to_owned())
            .collect::<Vec<_>>()
            .join("\n");
        if conclusion.is_none() && is_impression(&code) && !value.is_empty() {
            conclusion = Some(value.clone());
        }
        observations.push(ObservationFacts {
            code,
            value,
            status: observation_status(obx.status().as_deref().unwrap_or("").trim()),
            effective: obx
                .observation_time()
                .as_ref()
                .map(fhir_date_time)
                .or_else(|| effective.clone()),
        });
    }
    Ok(ReportFacts {
        placer,
        filler,
        accession,
        study_uid: s(m.study_instance_uid()),
        status: report_status(obr.result_status().as_deref().unwrap_or("").trim()),
        code,
        effective,
        issued,
        conclusion,
        observations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORU: &str = "MSH|^~\\&|RIS|RAD|XENRAD|GW|20250124150000||ORU^R01^ORU_R01|R1|P|2.5.1\r\
PID|1||P100^^^HOSP^MR||WORK^LIST\r\
ORC|RE|PL1^RIS|FL1^DSS\r\
OBR|1|PL1^RIS|FL1^DSS|CTH^CT HEAD^L|||20250124143000|||||||||||ACC1||||20250124150000+0100|||F\r\
OBX|1|TX|GDT^Findings^L||No bleed.~No mass.||||||F|||20250124145000\r\
OBX|2|TX|IMP^Impression^L||Normal CT head.||||||F\r\
ZDS|1.2.3.4^RIS^Application^DICOM\r";

    #[allow(clippy::result_large_err)]
    fn read(raw: &str) -> Result<ReportFacts, ErrorDetail> {
        read_report(&Message::parse(raw.as_bytes()).unwrap())
    }

    #[test]
    fn a_report_names_its_order_and_carries_its_observations() {
        let r = read(ORU).unwrap();
        assert_eq!(
            (&*r.placer, &*r.filler, &*r.accession, &*r.study_uid),
            ("PL1", "FL1", "ACC1", "1.2.3.4")
        );
        assert_eq!(r.key(), "FL1");
        assert_eq!(r.status, "final");
        assert_eq!(r.code.1, "CTH");
        assert_eq!(r.effective.as_deref(), Some("2025-01-24"));
        assert_eq!(r.issued.as_deref(), Some("2025-01-24T15:00:00+01:00"));
        assert_eq!(r.conclusion.as_deref(), Some("Normal CT head."));
        assert_eq!(r.observations.len(), 2);
        assert_eq!(r.observations[0].value, "No bleed.\nNo mass.");
        assert_eq!(r.observations[0].code.2, "Findings");
        assert_eq!(r.observations[0].status, "final");
        assert_eq!(r.observations[0].effective.as_deref(), Some("2025-01-24"));
    }

    #[test]
    fn a_report_that_names_no_order_is_refused() {
        let e = read(
            "MSH|^~\\&|A|B|C|D|2025||ORU^R01|1|P|2.5.1\rPID|1||P1\rOBR|1|||CTH\rOBX|1|TX|X||y\r",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::RequiredFieldMissing);
        let e = read("MSH|^~\\&|A|B|C|D|2025||ORU^R01|1|P|2.5.1\rPID|1||P1\r").unwrap_err();
        assert_eq!(e.code, ErrorCode::SegmentSequence);
    }

    // OBR-25 → DiagnosticReport.status, one row per test.
    #[test]
    fn report_row_o_i_s_registered() {
        for c in ["O", "I", "S"] {
            assert_eq!(report_status(c), "registered");
        }
    }
    #[test]
    fn report_row_p_r_preliminary() {
        assert_eq!(report_status("P"), "preliminary");
        assert_eq!(report_status("R"), "preliminary");
    }
    #[test]
    fn report_row_a_partial() {
        assert_eq!(report_status("A"), "partial");
    }
    #[test]
    fn report_row_f_final() {
        assert_eq!(report_status("F"), "final");
    }
    #[test]
    fn report_row_c_corrected() {
        assert_eq!(report_status("C"), "corrected");
    }
    #[test]
    fn report_row_x_cancelled() {
        assert_eq!(report_status("X"), "cancelled");
    }
    #[test]
    fn report_row_other_unknown() {
        assert_eq!(report_status(""), "unknown");
    }

    // OBX-11 → Observation.status, one row per test.
    #[test]
    fn observation_row_f_u_final() {
        assert_eq!(observation_status("F"), "final");
        assert_eq!(observation_status("U"), "final");
    }
    #[test]
    fn observation_row_c_corrected() {
        assert_eq!(observation_status("C"), "corrected");
    }
    #[test]
    fn observation_row_p_r_s_preliminary() {
        for c in ["P", "R", "S"] {
            assert_eq!(observation_status(c), "preliminary");
        }
    }
    #[test]
    fn observation_row_i_o_registered() {
        assert_eq!(observation_status("I"), "registered");
        assert_eq!(observation_status("O"), "registered");
    }
    #[test]
    fn observation_row_d_w_entered_in_error() {
        assert_eq!(observation_status("D"), "entered-in-error");
        assert_eq!(observation_status("W"), "entered-in-error");
    }
    #[test]
    fn observation_row_x_cancelled() {
        assert_eq!(observation_status("X"), "cancelled");
    }
    #[test]
    fn observation_row_other_unknown() {
        assert_eq!(observation_status("Z"), "unknown");
    }
}
