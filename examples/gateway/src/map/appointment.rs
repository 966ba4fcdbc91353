//! SIU^S12–S15 (HL7 v2.5.1 ch. 10) → [`AppointmentFacts`] (pure). Times without an offset
//! are read in the zone passed in (the gateway passes its own, as for MPPS).
//!
//! | FHIR element | from |
//! |---|---|
//! | Appointment id | SCH-2 filler appointment ID, else SCH-1 placer appointment ID |
//! | status | the trigger: S15 → cancelled; else SCH-25 filler status (table 0278, [`appointment_status`]), else booked |
//! | start / end | AIS-4, else SCH-11-4 / start + AIS-7 duration (AIS-8 units, minutes by default), else SCH-11-5, else start + SCH-9 (SCH-10 units) |
//! | description | AIS-3 text, else SCH-7 text |
//! | participant | the patient (PID), accepted |
//! | basedOn | the ServiceRequest of SCH-26 placer / SCH-27 filler order number |

use chrono::TimeZone;
use std::borrow::Cow;
use xenrad_hl7v2::Message;
use xenrad_hl7v2::ack::{ErrorCode, ErrorDetail};
use xenrad_hl7v2::datetime::{DateTime, parse_dtm};

/// One appointment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppointmentFacts {
    /// SCH-2 (else SCH-1) appointment ID.
    pub key: String,
    /// Appointment.status.
    pub status: &'static str,
    /// FHIR instant.
    pub start: Option<String>,
    /// FHIR instant.
    pub end: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// SCH-26-1 placer order number.
    pub placer: String,
    /// SCH-27-1 filler order number.
    pub filler: String,
}

/// SCH-25 filler status code (HL7 table 0278) → Appointment.status.
pub fn appointment_status(sch25: &str) -> &'static str {
    match sch25.to_ascii_lowercase().as_str() {
        "pending" | "waitlist" => "pending",
        "cancelled" | "deleted" | "blocked" => "cancelled",
        "complete" => "fulfilled",
        "noshow" => "noshow",
        "started" => "arrived",
        // Booked, Overbook, empty and anything else.
        _ => "booked",
    }
}

fn comp<'a>(m: &Message<'a>, path: &str) -> Option<Cow<'a, str>> {
    m.get(path).filter(|s| !s.trim().is_empty())
}

fn instant<Tz: TimeZone>(t: &DateTime, tz: &Tz) -> Option<String> {
    let local = match t.offset {
        Some(off) => t.value.and_local_timezone(off).single()?.fixed_offset(),
        None => t
            .value
            .and_local_timezone(tz.clone())
            .earliest()?
            .fixed_offset(),
    };
    Some(local.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
}

fn minutes(value: Option<Cow<'_, str>>, units: Option<&str>) -> Option<i64> {
    let v: i64 = value?.trim().parse().ok()?;
    let per = match units.map_or("MIN", str::trim) {
        "S" | "SEC" | "s" => return Some(v / 60),
        "H" | "HR" | "h" => 60,
        "D" | "d" => 1440,
        _ => 1,
    };
    Some(v * per)
}

/// Reads an SIU^S12–S15 (`trigger` is MSH-9-2).
#[allow(clippy::result_large_err)] // one ErrorDetail per rejected message
pub fn read_appointment<Tz: TimeZone>(
    m: &Message<'_>,
    trigger: &str,
    tz: &Tz,
) -> Result<AppointmentFacts, ErrorDetail> {
    let key = comp(m, "SCH-2-1")
        .or_else(|| comp(m, "SCH-1-1"))
        .map(|k| k.trim().to_owned())
        .ok_or_else(|| {
            ErrorDetail::new(
                ErrorCode::RequiredFieldMissing,
                "SCH-1/SCH-2 (appointment ID) are empty",
            )
        })?;
    let start_dtm = comp(m, "AIS-4-1")
        .or_else(|| comp(m, "SCH-11-4"))
        .and_then(|s| parse_dtm(s.trim()).ok());
    let start = start_dtm.as_ref().and_then(|t| instant(t, tz));
    let end = match &start_dtm {
        Some(t) => minutes(comp(m, "AIS-7-1"), comp(m, "AIS-8-1").as_deref())
            .map(|d| DateTime {
                value: t.value + chrono::Duration::minutes(d),
                ..*t
            })
            .or_else(|| comp(m, "SCH-11-5").and_then(|s| parse_dtm(s.trim()).ok()))
            .or_else(|| {
                minutes(comp(m, "SCH-9"), comp(m, "SCH-10-1").as_deref()).map(|d| DateTime {
                    value: t.value + chrono::Duration::minutes(d),
                    ..*t
                })
            })
            .and_then(|e| instant(&e, tz)),
        None => None,
    };
    let status = if trigger == "S15" {
        "cancelled"
    } else {
        appointment_status(comp(m, "SCH-25-1").as_deref().unwrap_or("").trim())
    };
    // FHIR R4 app-3: only proposed, cancelled and waitlisted appointments may lack times.
    if (start.is_none() || end.is_none()) && !matches!(status, "cancelled" | "pending") {
        return Err(ErrorDetail::new(
            ErrorCode::RequiredFieldMissing,
            "AIS-4 / SCH-11 (start, end or duration) missing: the appointment has no time",
        ));
    }
    Ok(AppointmentFacts {
        key,
        status,
        start,
        end,
        description: comp(m, "AIS-3-2")
            .or_else(|| comp(m, "SCH-7-2"))
            .map(|d| d.trim().to_owned()),
        placer: comp(m, "SCH-26-1")
            .map(|p| p.trim().to_owned())
            .unwrap_or_default(),
        filler: comp(m, "SCH-27-1")
            .map(|p| p.trim().to_owned())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    const SIU: &str = "MSH|^~\\&|RIS|RAD|XENRAD|GW|20250120||SIU^S12^SIU_S12|S1|P|2.5.1\r\
SCH|AP1^RIS|AF1^DSS|||||^CT head||||^^^20250124143000^20250124150000||||||||||||||Booked|PL1^RIS|FL1^DSS\r\
PID|1||P100^^^HOSP^MR||WORK^LIST\r\
RGS|1\r\
AIS|1||CTH^CT HEAD^L|20250124143000|||20|MIN\r";

    fn read(raw: &str, trigger: &str) -> AppointmentFacts {
        let cet = FixedOffset::east_opt(3600).unwrap();
        read_appointment(&Message::parse(raw.as_bytes()).unwrap(), trigger, &cet).unwrap()
    }

    #[test]
    fn an_siu_becomes_an_appointment_of_its_order() {
        let a = read(SIU, "S12");
        assert_eq!(a.key, "AF1");
        assert_eq!(a.status, "booked");
        assert_eq!(a.start.as_deref(), Some("2025-01-24T14:30:00+01:00"));
        assert_eq!(a.end.as_deref(), Some("2025-01-24T14:50:00+01:00"));
        assert_eq!(a.description.as_deref(), Some("CT HEAD"));
        assert_eq!((&*a.placer, &*a.filler), ("PL1", "FL1"));
        // Without AIS-7, the end of SCH-11.
        let b = read(&SIU.replace("|||20|MIN", ""), "S12");
        assert_eq!(b.end.as_deref(), Some("2025-01-24T15:00:00+01:00"));
    }

    #[test]
    fn a_booked_appointment_without_time_is_refused() {
        let raw = SIU
            .replace("^^^20250124143000^20250124150000", "")
            .replace("|20250124143000|||20|MIN", "");
        let cet = FixedOffset::east_opt(3600).unwrap();
        let e =
            read_appointment(&Message::parse(raw.as_bytes()).unwrap(), "S12", &cet).unwrap_err();
        assert_eq!(e.code, ErrorCode::RequiredFieldMissing);
    }

    #[test]
    fn s15_cancels() {
        assert_eq!(read(SIU, "S15").status, "cancelled");
    }

    // SCH-25 → Appointment.status, one row per test.
    #[test]
    fn status_row_pending_waitlist() {
        assert_eq!(appointment_status("Pending"), "pending");
        assert_eq!(appointment_status("Waitlist"), "pending");
    }
    #[test]
    fn status_row_cancelled_deleted_blocked() {
        for s in ["Cancelled", "Deleted", "Blocked"] {
            assert_eq!(appointment_status(s), "cancelled");
        }
    }
    #[test]
    fn status_row_complete() {
        assert_eq!(appointment_status("Complete"), "fulfilled");
    }
    #[test]
    fn status_row_noshow() {
        assert_eq!(appointment_status("Noshow"), "noshow");
    }
    #[test]
    fn status_row_started() {
        assert_eq!(appointment_status("Started"), "arrived");
    }
    #[test]
    fn status_row_booked_overbook_other() {
        for s in ["Booked", "Overbook", "", "Dc"] {
            assert_eq!(appointment_status(s), "booked");
        }
    }
}
