//! HL7 date/time values (HL7 v2.5.1 section 2.A.22 DT, 2.A.23 DTM, 2.A.77 TS) as chrono
//! values with their precision.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

/// How much of a DTM value was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    /// `YYYY`.
    Year,
    /// `YYYYMM`.
    Month,
    /// `YYYYMMDD`.
    Day,
    /// `YYYYMMDDHH`.
    Hour,
    /// `YYYYMMDDHHMM`.
    Minute,
    /// `YYYYMMDDHHMMSS`.
    Second,
    /// Fractional seconds with this many digits (1-4).
    Fraction(u8),
}

/// A parsed DTM/TS/DT value: missing parts are filled with their minimum (month 1, day 1,
/// 00:00:00), `precision` says which parts were given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// The local date and time.
    pub value: NaiveDateTime,
    /// The UTC offset, if given (`+ZZZZ`).
    pub offset: Option<FixedOffset>,
    /// Precision of the value as written.
    pub precision: Precision,
}

/// Why a date/time is rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid HL7 date/time {0:?}")]
pub struct DateTimeError(pub String);

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// Parses a DTM (`YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`); TS is DTM plus an
/// ignored `^precision` component, which callers strip.
pub fn parse_dtm(s: &str) -> Result<DateTime, DateTimeError> {
    let err = || DateTimeError(s.to_owned());
    let b = s.as_bytes();
    let (main, offset) = match b.iter().position(|&c| c == b'+' || c == b'-') {
        Some(i) => {
            let z = &b[i + 1..];
            if z.len() != 4 {
                return Err(err());
            }
            let hh = digits(&z[..2]).ok_or_else(err)?;
            let mm = digits(&z[2..]).ok_or_else(err)?;
            if hh > 23 || mm > 59 {
                return Err(err());
            }
            let secs = (hh * 3600 + mm * 60).cast_signed();
            let off = if b[i] == b'-' {
                FixedOffset::west_opt(secs)
            } else {
                FixedOffset::east_opt(secs)
            };
            (&b[..i], Some(off.ok_or_else(err)?))
        }
        None => (b, None),
    };
    let (whole, frac) = match main.iter().position(|&c| c == b'.') {
        Some(i) => (&main[..i], Some(&main[i + 1..])),
        None => (main, None),
    };
    let precision = match (whole.len(), frac) {
        (4, None) => Precision::Year,
        (6, None) => Precision::Month,
        (8, None) => Precision::Day,
        (10, None) => Precision::Hour,
        (12, None) => Precision::Minute,
        (14, None) => Precision::Second,
        (14, Some(f)) if (1..=4).contains(&f.len()) => Precision::Fraction(f.len() as u8),
        _ => return Err(err()),
    };
    let part = |a: usize, b: usize, default: u32| -> Option<u32> {
        if whole.len() >= b {
            digits(&whole[a..b])
        } else {
            Some(default)
        }
    };
    let year = part(0, 4, 0).ok_or_else(err)?;
    let month = part(4, 6, 1).ok_or_else(err)?;
    let day = part(6, 8, 1).ok_or_else(err)?;
    let hour = part(8, 10, 0).ok_or_else(err)?;
    let minute = part(10, 12, 0).ok_or_else(err)?;
    let second = part(12, 14, 0).ok_or_else(err)?;
    let micros = match frac {
        Some(f) => {
            let v = digits(f).ok_or_else(err)?;
            v * 10u32.pow(6 - f.len() as u32)
        }
        None => 0,
    };
    let date = NaiveDate::from_ymd_opt(year.cast_signed(), month, day).ok_or_else(err)?;
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros).ok_or_else(err)?;
    Ok(DateTime {
        value: NaiveDateTime::new(date, time),
        offset,
        precision,
    })
}

/// Parses a DT (`YYYY[MM[DD]]`).
pub fn parse_dt(s: &str) -> Result<DateTime, DateTimeError> {
    if !matches!(s.len(), 4 | 6 | 8) {
        return Err(DateTimeError(s.to_owned()));
    }
    parse_dtm(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions() {
        let d = parse_dtm("20240907224144").unwrap();
        assert_eq!(d.precision, Precision::Second);
        assert_eq!(d.value.to_string(), "2024-09-07 22:41:44");
        let d = parse_dtm("202409").unwrap();
        assert_eq!(d.precision, Precision::Month);
        let d = parse_dtm("20240907224144.12-0500").unwrap();
        assert_eq!(d.precision, Precision::Fraction(2));
        assert_eq!(d.offset, FixedOffset::west_opt(5 * 3600));
        assert_eq!(d.value.and_utc().timestamp_subsec_micros(), 120_000);
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "2024-09-07",
            "20241301",
            "20240230",
            "2024090",
            "20240907246000",
            "20240907224144.12345",
            "2024+05",
        ] {
            assert!(parse_dtm(bad).is_err(), "{bad}");
        }
        assert!(parse_dt("20240907").is_ok());
        assert!(parse_dt("2024090712").is_err());
    }
}
