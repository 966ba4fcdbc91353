//! An MPPS instance (PS3.3 B.17) as [`ProcedureFacts`].

use super::{ProcedureFacts, fhir_date};
use chrono::TimeZone;

/// The facts of MPPS instance `uid`: status, study and performed period. DICOM dates and
/// times without an offset are local time (PS3.5 §6.2): `tz` is the zone they are read in
/// (the gateway passes its own local zone).
pub fn procedure<Tz: TimeZone>(
    uid: &str,
    inst: &xenrad_mpps::MppsInstance,
    tz: &Tz,
) -> ProcedureFacts {
    let (sd, st) = inst.start();
    let (ed, et) = inst.end();
    ProcedureFacts {
        mpps_uid: uid.to_owned(),
        study_uid: inst.study_instance_uid().unwrap_or_default().to_owned(),
        status: inst
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        start: dicom_dt(sd, st, tz),
        end: dicom_dt(ed, et, tz),
        accession: inst
            .attributes
            .items(xenrad_mpps::tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE)
            .first()
            .and_then(|i| i.str(xenrad_mpps::tags::ACCESSION_NUMBER))
            .map(|a| a.trim().to_owned())
            .unwrap_or_default(),
        discontinuation_reason: inst
            .discontinuation_reason()
            .map(|c| c.value)
            .filter(|v| !v.is_empty()),
    }
}

/// DICOM DA + TM to a FHIR dateTime. DICOM times without (0008,0201) are local
/// time (PS3.5 §6.2), and a FHIR dateTime with a time needs an offset (FHIR R4
/// §2.24.0.1), so the offset of `tz` at that time is attached.
pub fn dicom_dt<Tz: TimeZone>(date: Option<&str>, time: Option<&str>, tz: &Tz) -> Option<String> {
    let d = fhir_date(date?)?;
    if d.len() != 10 {
        return Some(d);
    }
    let t: String = time
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if t.len() < 4 {
        return Some(d);
    }
    let ss = if t.len() >= 6 { &t[4..6] } else { "00" };
    let naive = chrono::NaiveDateTime::parse_from_str(
        &format!("{d}T{}:{}:{ss}", &t[..2], &t[2..4]),
        "%Y-%m-%dT%H:%M:%S",
    )
    .ok()?;
    let local = naive.and_local_timezone(tz.clone()).earliest()?;
    Some(local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    #[test]
    fn dicom_dates_and_times_become_fhir_date_times_in_the_given_zone() {
        let cet = FixedOffset::east_opt(3600).unwrap();
        assert_eq!(
            dicom_dt(Some("20240101"), Some("101500.123"), &cet).as_deref(),
            Some("2024-01-01T10:15:00+01:00")
        );
        assert_eq!(
            dicom_dt(Some("20240101"), Some("1015"), &chrono::Utc).as_deref(),
            Some("2024-01-01T10:15:00+00:00")
        );
        // A date alone, or with a time too short to place, is a FHIR date.
        assert_eq!(
            dicom_dt(Some("20240101"), None, &cet).as_deref(),
            Some("2024-01-01")
        );
        assert_eq!(
            dicom_dt(Some("20240101"), Some("1"), &cet).as_deref(),
            Some("2024-01-01")
        );
        assert_eq!(
            dicom_dt(Some("202401"), Some("101500"), &cet).as_deref(),
            Some("2024-01")
        );
        assert_eq!(dicom_dt(Some("20241301"), Some("1015"), &cet), None);
        assert_eq!(dicom_dt(None, Some("1015"), &cet), None);
        assert_eq!(dicom_dt(Some("20240101"), Some("2561"), &cet), None);
    }

    #[test]
    fn an_mpps_instance_becomes_procedure_facts() {
        use dicom_core::VR;
        use xenrad_mpps::{Dataset, Element, tags};
        let s = |v: &str| Element::string(VR::DA, v);
        let attributes = Dataset::new()
            .with(tags::PPS_STATUS, Element::string(VR::CS, "COMPLETED"))
            .with(
                tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
                Element::items(vec![
                    Dataset::new().with(tags::STUDY_INSTANCE_UID, Element::string(VR::UI, "1.2.3")),
                ]),
            )
            .with(tags::PPS_START_DATE, s("20240101"))
            .with(tags::PPS_START_TIME, Element::string(VR::TM, "100000"))
            .with(tags::PPS_END_DATE, s("20240101"))
            .with(tags::PPS_END_TIME, Element::string(VR::TM, "102000"));
        let inst = xenrad_mpps::MppsInstance {
            sop_instance_uid: "1.2.9".into(),
            attributes,
        };
        let f = procedure("1.2.9", &inst, &chrono::Utc);
        assert_eq!(f.mpps_uid, "1.2.9");
        assert_eq!(f.study_uid, "1.2.3");
        assert_eq!(f.status, "COMPLETED");
        assert_eq!(f.start.as_deref(), Some("2024-01-01T10:00:00+00:00"));
        assert_eq!(f.end.as_deref(), Some("2024-01-01T10:20:00+00:00"));
        let empty = xenrad_mpps::MppsInstance {
            sop_instance_uid: "1.2.10".into(),
            attributes: Dataset::new(),
        };
        let f = procedure("1.2.10", &empty, &chrono::Utc);
        assert_eq!(
            (f.study_uid.as_str(), f.status.as_str(), f.start, f.end),
            ("", "", None, None)
        );
    }
}
