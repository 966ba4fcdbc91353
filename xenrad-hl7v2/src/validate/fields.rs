//! Field rules checked by the validator: usage (R/O), repetition, data type, maximum length and
//! table of every field of the segments the supported structures use, and of the components
//! of their composite data types. The rules are generated (`generated.rs`, from
//! `tools/gen_v251_defs.py`) from the HL7 v2.5.1 segment definitions of ch. 2 (2.15), 3 (3.4),
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
#[derive(Debug)]
pub(crate) struct CompRule {
    pub(crate) dt: Dt,
    /// Enforced table number (0 = none).
    pub(crate) table: u16,
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
    /// Maximum repetitions ([`super::generated::UNBOUNDED`] if unbounded; 0 for withdrawn fields).
    pub(crate) max: u16,
    /// Enforced table number (0 = none).
    pub(crate) table: u16,
    /// Maximum length in characters of a primitive value (0 = unchecked).
    pub(crate) max_len: u16,
    /// Component rules of a composite type.
    pub(crate) comps: &'static [CompRule],
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
    // The checked syntaxes are ASCII: anything else is wrong for them.
    let v = match dt {
        Dt::Text | Dt::Id | Dt::Is | Dt::Composite => return None,
        _ => std::str::from_utf8(v).unwrap_or("\u{fffd}"),
    };
    match dt {
        Dt::Text | Dt::Id | Dt::Is | Dt::Composite => None,
        Dt::Dtm | Dt::Ts => crate::datetime::parse_dtm(v)
            .err()
            .map(|_| "not a valid DTM/TS date/time"),
        Dt::Date => crate::datetime::parse_dt(v)
            .err()
            .map(|_| "not a valid DT date"),
        Dt::Time => (!is_tm(v)).then_some("not a valid TM time"),
        Dt::Num => (!is_nm(v)).then_some("not a valid NM number"),
        Dt::Si => (v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()))
            .then_some("not a valid SI (non-negative integer)"),
    }
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
        let pid = super::super::generated::segment("PID").expect("PID");
        assert_eq!(pid.len(), 39);
        assert_eq!(pid[2].min, 1, "PID-3 is required");
        assert_eq!(pid[7].table, 1, "PID-8 uses table 0001");
        let t = super::super::generated::table(76);
        assert!(t.windows(2).all(|w| w[0] < w[1]), "tables are sorted");
        assert!(t.binary_search(&"ORU").is_ok());
    }
}
