//! An MPPS instance (PS3.3 B.17) as [`ProcedureFacts`].

use super::{ProcedureFacts, fhir_date};

/// The facts of MPPS instance `uid`: status, study and performed period.
pub fn procedure(uid: &str, inst: &xenrad_mpps::MppsInstance) -> ProcedureFacts {
    let (sd, st) = inst.start();
    let (ed, et) = inst.end();
    ProcedureFacts {
        mpps_uid: uid.to_owned(),
        study_uid: inst.study_instance_uid().unwrap_or_default().to_owned(),
        status: inst
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        start: dicom_dt(sd, st),
        end: dicom_dt(ed, et),
    }
}

/// DICOM DA + TM to a FHIR dateTime. DICOM times without (0008,0201) are local
/// time (PS3.5 §6.2), and a FHIR dateTime with a time needs an offset (FHIR R4
/// §2.24.0.1), so the gateway's local offset is attached.
fn dicom_dt(date: Option<&str>, time: Option<&str>) -> Option<String> {
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
    let local = naive.and_local_timezone(chrono::Local).earliest()?;
    Some(local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
}
