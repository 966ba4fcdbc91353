//! TS (point in time, ADT R1 §2.24) and IVL_TS (§2.27).

use std::borrow::Cow;

use crate::xml::Element;

/// Precision of a TS literal `YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    /// `YYYY`
    Year,
    /// `YYYYMM`
    Month,
    /// `YYYYMMDD`
    Day,
    /// `YYYYMMDDHH`
    Hour,
    /// `YYYYMMDDHHMM`
    Minute,
    /// `YYYYMMDDHHMMSS`
    Second,
    /// Seconds with a fraction.
    Fraction,
}

/// TS: a point in time, kept as its literal; parsed lazily.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ts<'a> {
    /// The `value` literal.
    pub value: Option<Cow<'a, str>>,
    /// `nullFlavor`.
    pub null_flavor: Option<Cow<'a, str>>,
}

/// The parts of a TS literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsParts {
    /// Year.
    pub year: i32,
    /// Month 1–12 (1 when absent).
    pub month: u32,
    /// Day 1–31 (1 when absent).
    pub day: u32,
    /// Hour, minute, second (0 when absent).
    pub hms: (u32, u32, u32),
    /// Nanoseconds from the fraction.
    pub nanos: u32,
    /// UTC offset in seconds, when given.
    pub offset_seconds: Option<i32>,
    /// How much of the literal was present.
    pub precision: Precision,
}

impl<'a> Ts<'a> {
    /// Reads a TS from its element.
    pub fn from_element(e: &Element<'_, 'a>) -> Self {
        Ts {
            value: e.attr("value"),
            null_flavor: super::null_flavor(e),
        }
    }

    /// Parses the literal; `None` when absent or malformed.
    pub fn parts(&self) -> Option<TsParts> {
        parse_ts(self.value.as_deref()?)
    }

    /// Precision of the literal.
    pub fn precision(&self) -> Option<Precision> {
        self.parts().map(|p| p.precision)
    }

    /// The date part as a chrono `NaiveDate` (missing month/day default to 1).
    pub fn date(&self) -> Option<chrono::NaiveDate> {
        let p = self.parts()?;
        chrono::NaiveDate::from_ymd_opt(p.year, p.month, p.day)
    }

    /// Local date and time (no offset applied).
    pub fn naive(&self) -> Option<chrono::NaiveDateTime> {
        let p = self.parts()?;
        self.date()?
            .and_hms_nano_opt(p.hms.0, p.hms.1, p.hms.2, p.nanos)
    }

    /// Date and time with its offset, when the literal has one.
    pub fn with_offset(&self) -> Option<chrono::DateTime<chrono::FixedOffset>> {
        let off = chrono::FixedOffset::east_opt(self.parts()?.offset_seconds?)?;
        self.naive()?.and_local_timezone(off).single()
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// Parses a TS literal (ADT R1 §2.24.3 literal form).
pub fn parse_ts(v: &str) -> Option<TsParts> {
    let b = v.trim().as_bytes();
    let zpos = b.iter().position(|&c| c == b'+' || c == b'-');
    let (main, zone) = match zpos {
        Some(p) => (&b[..p], Some(&b[p..])),
        None => (b, None),
    };
    let (whole, frac) = match main.iter().position(|&c| c == b'.') {
        Some(p) => (&main[..p], Some(&main[p + 1..])),
        None => (main, None),
    };
    let precision = match whole.len() {
        4 => Precision::Year,
        6 => Precision::Month,
        8 => Precision::Day,
        10 => Precision::Hour,
        12 => Precision::Minute,
        14 if frac.is_some() => Precision::Fraction,
        14 => Precision::Second,
        _ => return None,
    };
    if frac.is_some() && whole.len() != 14 {
        return None;
    }
    let year = digits(&whole[..4])?.cast_signed();
    let get = |a: usize, dflt: u32| {
        if whole.len() >= a + 2 {
            digits(&whole[a..a + 2])
        } else {
            Some(dflt)
        }
    };
    let month = get(4, 1)?;
    let day = get(6, 1)?;
    let hms = (get(8, 0)?, get(10, 0)?, get(12, 0)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hms.0 > 23
        || hms.1 > 59
        || hms.2 > 60
    {
        return None;
    }
    let nanos = match frac {
        Some(f) if !f.is_empty() && f.len() <= 9 => digits(f)? * 10u32.pow(9 - f.len() as u32),
        Some(_) => return None,
        None => 0,
    };
    let offset_seconds = match zone {
        Some(z) if z.len() == 5 => {
            let sign = if z[0] == b'-' { -1 } else { 1 };
            let hh = digits(&z[1..3])?.cast_signed();
            let mm = digits(&z[3..5])?.cast_signed();
            if hh > 14 || mm > 59 {
                return None;
            }
            Some(sign * (hh * 3600 + mm * 60))
        }
        Some(_) => return None,
        None => None,
    };
    Some(TsParts {
        year,
        month,
        day,
        hms,
        nanos,
        offset_seconds,
        precision,
    })
}

/// PQ: a physical quantity (`value`, `unit`), as used for IVL_TS `width`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pq<'a> {
    /// `value` literal.
    pub value: Option<Cow<'a, str>>,
    /// UCUM `unit`.
    pub unit: Option<Cow<'a, str>>,
}

/// IVL_TS: an interval of time (`low`, `high`, `center`, `width`, or a single `value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvlTs<'a> {
    /// Lower bound.
    pub low: Option<Ts<'a>>,
    /// Upper bound.
    pub high: Option<Ts<'a>>,
    /// Centre.
    pub center: Option<Ts<'a>>,
    /// Width.
    pub width: Option<Pq<'a>>,
    /// `value` attribute (a point written as an interval).
    pub value: Option<Cow<'a, str>>,
    /// `nullFlavor`.
    pub null_flavor: Option<Cow<'a, str>>,
}

impl<'a> IvlTs<'a> {
    /// Reads an IVL_TS from its element.
    pub fn from_element(e: &Element<'_, 'a>) -> Self {
        IvlTs {
            low: e.child("low").map(|c| Ts::from_element(&c)),
            high: e.child("high").map(|c| Ts::from_element(&c)),
            center: e.child("center").map(|c| Ts::from_element(&c)),
            width: e.child("width").map(|c| Pq {
                value: c.attr("value"),
                unit: c.attr("unit"),
            }),
            value: e.attr("value"),
            null_flavor: super::null_flavor(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions() {
        assert_eq!(parse_ts("1957").unwrap().precision, Precision::Year);
        assert_eq!(parse_ts("19570323").unwrap().precision, Precision::Day);
        let p = parse_ts("20070803130624.123-0500").unwrap();
        assert_eq!(p.precision, Precision::Fraction);
        assert_eq!(p.nanos, 123_000_000);
        assert_eq!(p.offset_seconds, Some(-5 * 3600));
        assert!(parse_ts("2007130").is_none());
        assert!(parse_ts("20071301").is_none());
        assert!(parse_ts("2007.5").is_none());
        assert!(parse_ts("").is_none());
        let ts = Ts {
            value: Some("20070803130624+0100".into()),
            null_flavor: None,
        };
        assert_eq!(
            ts.with_offset().unwrap().to_rfc3339(),
            "2007-08-03T13:06:24+01:00"
        );
        assert_eq!(ts.date().unwrap().to_string(), "2007-08-03");
    }
}
