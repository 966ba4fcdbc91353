//! Field rules checked by the validator: usage (R/O), repetition, data type, maximum length and
//! table of every field of the segments the supported structures use, and of the components
//! of their composite data types. The rules are generated (the data table `v251.tsv`,
//! from `tools/gen_v251_defs.py`, read by `defs.rs`) from the HL7 v2.5.1 segment definitions of ch. 2 (2.15), 3 (3.4),
//! 4 (4.5), 6 (6.5), 7 (7.4) and 10 (10.6), the data types of 2.A and the tables of Appendix A.

/// Data types checked (HL7 v2.5.1 section 2.A).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dt {
    /// Any text: ST, TX, FT, varies, and composites nested below a component (length only).
    Text,
    /// DTM (2.A.22).
    Dtm,
    /// TS (2.A.77): its first component is a DTM.
    Ts,
    /// DT (2.A.21).
    Date,
    /// TM (2.A.75).
    Time,
    /// NM (2.A.47).
    Num,
    /// SI (2.A.69): a non-negative integer.
    Si,
    /// ID (2.A.35): an HL7-defined coded value.
    Id,
    /// IS (2.A.36): a user-defined coded value.
    Is,
    /// A composite type whose components are checked one by one.
    Composite,
}

impl Dt {
    /// True if values of this type have a syntax to check.
    #[inline]
    pub(crate) const fn has_syntax(self) -> bool {
        !matches!(self, Dt::Text | Dt::Id | Dt::Is | Dt::Composite)
    }
}

/// One component of a composite data type.
#[derive(Clone, Debug)]
pub(crate) struct CompRule {
    pub(crate) dt: Dt,
    /// Enforced table number (0 = none).
    pub(crate) table: u16,
    /// Where its values are in [`super::defs::Defs`] ([`super::defs::NO_TABLE`] = none).
    pub(crate) slot: u16,
    /// Maximum length in characters (0 = unchecked).
    pub(crate) max_len: u16,
}

impl CompRule {
    /// True if a value of this component can be wrong.
    pub(crate) const fn checks(&self) -> bool {
        !matches!(self.dt, Dt::Text | Dt::Id | Dt::Is) || self.table != 0 || self.max_len != 0
    }
}

/// One field of a segment definition.
#[derive(Debug)]
pub(crate) struct FieldRule {
    pub(crate) dt: Dt,
    /// Minimum repetitions: 1 for usage R.
    pub(crate) min: u16,
    /// Maximum repetitions ([`super::defs::UNBOUNDED`] if unbounded; 0 for withdrawn fields).
    pub(crate) max: u16,
    /// Enforced table number (0 = none).
    pub(crate) table: u16,
    /// Where its values are in [`super::defs::Defs`] ([`super::defs::NO_TABLE`] = none).
    pub(crate) slot: u16,
    /// Maximum length in characters of a primitive value (0 = unchecked).
    pub(crate) max_len: u16,
    /// Component rules of a composite type (the trailing ones nothing checks left out).
    pub(crate) comps: Vec<CompRule>,
}

impl FieldRule {
    /// True if the value (not only its presence and repetitions) has to be looked at.
    pub(crate) fn checks_value(&self) -> bool {
        match self.dt {
            // The generator leaves out the trailing components nothing checks.
            Dt::Composite => !self.comps.is_empty(),
            Dt::Text | Dt::Id | Dt::Is => self.table != 0 || self.max_len != 0,
            _ => true,
        }
    }
}

/// Checks a value (text bytes) against a data type; `None` if fine, else the reason.
pub(crate) fn check_type(dt: Dt, v: &[u8]) -> Option<&'static str> {
    match dt {
        Dt::Text | Dt::Id | Dt::Is | Dt::Composite => None,
        Dt::Dtm | Dt::Ts => (!is_dtm(v)).then_some("not a valid DTM/TS date/time"),
        Dt::Date => (!(matches!(v.len(), 4 | 6 | 8) && is_dtm(v))).then_some("not a valid DT date"),
        Dt::Time => (!std::str::from_utf8(v).is_ok_and(is_tm)).then_some("not a valid TM time"),
        Dt::Num => (!std::str::from_utf8(v).is_ok_and(is_nm)).then_some("not a valid NM number"),
        Dt::Si => (v.is_empty() || !v.iter().all(u8::is_ascii_digit))
            .then_some("not a valid SI (non-negative integer)"),
    }
}

/// A table value of up to 15 bytes as one integer: the bytes from the most significant end,
/// the length in the lowest byte (`None` if longer: no table value is). The generator packs
/// the table values the same way, so a lookup compares integers, not strings.
#[inline]
pub(crate) fn pack(v: &[u8]) -> Option<u128> {
    if v.len() > 15 {
        return None;
    }
    let mut k = v.len() as u128;
    for (i, &c) in v.iter().enumerate() {
        k |= u128::from(c) << (8 * (15 - i));
    }
    Some(k)
}

/// The value of an all-digit slice (`None` if empty or not all ASCII digits).
fn num(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |acc, &d| acc * 10 + u32::from(d - b'0')))
}

/// DTM syntax and calendar validity, `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`
/// (HL7 v2.5.1 2.A.22): accepts exactly what [`crate::datetime::parse_dtm`] accepts (a
/// proptest checks this), without building chrono values.
pub(crate) fn is_dtm(b: &[u8]) -> bool {
    let main = match b.iter().position(|&c| c == b'+' || c == b'-') {
        Some(i) => {
            let z = &b[i + 1..];
            if z.len() != 4 || num(&z[..2]).is_none_or(|h| h > 23) {
                return false;
            }
            if num(&z[2..]).is_none_or(|m| m > 59) {
                return false;
            }
            &b[..i]
        }
        None => b,
    };
    let (whole, frac) = match main.iter().position(|&c| c == b'.') {
        Some(i) => (&main[..i], Some(&main[i + 1..])),
        None => (main, None),
    };
    match (whole.len(), frac) {
        (4 | 6 | 8 | 10 | 12 | 14, None) => {}
        (14, Some(f)) if (1..=4).contains(&f.len()) && f.iter().all(u8::is_ascii_digit) => {}
        _ => return false,
    }
    let part = |a: usize, default: u32, max: u32| -> Option<u32> {
        if whole.len() >= a + 2 {
            num(&whole[a..a + 2]).filter(|&v| v <= max)
        } else {
            Some(default)
        }
    };
    let Some(year) = num(&whole[..4]) else {
        return false;
    };
    let (Some(month), Some(day)) = (part(4, 1, 12), part(6, 1, 31)) else {
        return false;
    };
    if part(8, 0, 23).is_none() || part(10, 0, 59).is_none() || part(12, 0, 59).is_none() {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    month >= 1 && day >= 1 && day <= days
}

/// NM: optional sign, digits, optional decimal point (HL7 v2.5.1 section 2.A.47).
pub(crate) fn is_nm(v: &str) -> bool {
    let v = v.trim();
    let v = v.strip_prefix(['+', '-']).unwrap_or(v);
    let mut digits = 0;
    let mut dots = 0;
    for b in v.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return false,
        }
    }
    digits > 0 && dots <= 1
}

/// TM: `HH[MM[SS[.S[S[S[S]]]]]][+/-ZZZZ]` (HL7 v2.5.1 section 2.A.75).
pub(crate) fn is_tm(v: &str) -> bool {
    let (time, zone) = match v.find(['+', '-']) {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    if zone.is_some_and(|z| z.len() != 4 || !z.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (time, None),
    };
    let two = |i: usize, max: u8| {
        hms.get(i..i + 2)
            .and_then(|s| s.parse::<u8>().ok())
            .is_some_and(|n| n <= max && hms.as_bytes()[i].is_ascii_digit())
    };
    let shape = match hms.len() {
        2 => two(0, 23),
        4 => two(0, 23) && two(2, 59),
        6 => two(0, 23) && two(2, 59) && two(4, 59),
        _ => false,
    };
    shape
        && frac.is_none_or(|f| {
            hms.len() == 6 && (1..=4).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The byte-level DTM check agrees with the chrono-based parser.
        #[test]
        fn is_dtm_agrees_with_parse_dtm(s in "[0-9]{0,16}(\\.[0-9]{0,5})?([+-][0-9]{0,5})?") {
            prop_assert_eq!(is_dtm(s.as_bytes()), crate::datetime::parse_dtm(&s).is_ok(), "{}", s);
            let dt = check_type(Dt::Date, s.as_bytes()).is_none();
            prop_assert_eq!(dt, crate::datetime::parse_dt(&s).is_ok(), "{}", s);
        }

        /// The same on near-valid dates: every field around its limits, truncated anywhere.
        #[test]
        fn is_dtm_agrees_near_limits(
            y in 0u32..10_000, mo in 0u32..14, d in 0u32..33, h in 0u32..25, mi in 0u32..61,
            se in 0u32..61, cut in 4usize..15, frac in "(\\.[0-9]{1,5})?",
            zone in "([+-][0-2][0-9][0-6][0-9])?",
        ) {
            let full = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{se:02}");
            let s = format!("{}{frac}{zone}", &full[..cut]);
            prop_assert_eq!(is_dtm(s.as_bytes()), crate::datetime::parse_dtm(&s).is_ok(), "{}", s);
        }
    }

    #[test]
    fn dtm_edges() {
        for s in [
            "2024",
            "202402",
            "20240229",
            "2024022923",
            "202402292359",
            "20240229235959",
            "20240229235959.1234",
            "20240229235959+0100",
            "20000229",
            "19991231235959.1-2359",
        ] {
            assert!(is_dtm(s.as_bytes()), "{s}");
            assert!(crate::datetime::parse_dtm(s).is_ok(), "{s}");
        }
        for s in [
            "",
            "N",
            "202",
            "20230229",
            "19000229",
            "20241301",
            "20240001",
            "20240100",
            "2024010124",
            "202401012360",
            "20240101235960",
            "20240101235959.",
            "20240101.5",
            "20240101235959.12345",
            "2024+01",
            "2024+2400",
            "2024+0060",
            "2024-01-01",
        ] {
            assert!(!is_dtm(s.as_bytes()), "{s}");
            assert!(crate::datetime::parse_dtm(s).is_err(), "{s}");
        }
    }

    #[test]
    fn tm_syntax() {
        for ok in [
            "23",
            "2359",
            "235959",
            "235959.1234",
            "0800+0100",
            "120000.5-0500",
        ] {
            assert!(is_tm(ok), "{ok}");
        }
        for bad in [
            "",
            "24",
            "2360",
            "12345",
            "1200.5",
            "120000.12345",
            "12+01",
            "ab",
            "+1",
        ] {
            assert!(!is_tm(bad), "{bad}");
        }
    }

    #[test]
    fn generated_rules_are_consistent() {
        let defs = super::super::defs::defs();
        let pid = defs.segment("PID").expect("PID");
        assert_eq!(pid.len(), 39);
        assert_eq!(pid[2].min, 1, "PID-3 is required");
        assert_eq!(pid[2].comps[4].table, 203, "PID-3-5 uses table 0203");
        assert_eq!(pid[7].table, 1, "PID-8 uses table 0001");
        let msh = defs.segment("MSH").expect("MSH");
        let t = defs.values(msh[8].comps[0].slot);
        assert!(t.windows(2).all(|w| w[0] < w[1]), "tables are sorted");
        assert!(t.binary_search(&pack(b"ORU").unwrap()).is_ok());
        assert!(t.binary_search(&pack(b"OR").unwrap()).is_err());
        let t211 = defs.values(msh[17].slot);
        assert!(t211.binary_search(&pack(b"UNICODE UTF-8").unwrap()).is_ok());
        assert!(defs.segment("ZDS").is_none());
    }
}
