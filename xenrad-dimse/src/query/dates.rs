//! DA, TM and DT values as comparable instants, for range matching (PS3.4 C.2.2.2.5) and
//! combined date-time matching. Value formats: PS3.5 6.2 (DA `YYYYMMDD`, TM
//! `HH[MM[SS[.F{1,6}]]]`, DT `YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]`).
//!
//! A value of reduced precision stands for the whole interval it names: `2006` is
//! 2006-01-01 00:00 through 2006-12-31 23:59:59.999999, `10` (TM) is 10:00:00 through
//! 10:59:59.999999. A range's lower bound uses the start of that interval and its upper
//! bound the end, so `-1100` includes 11:00:30; a stored value is the start of its interval.
//! Legacy ACR-NEMA separators (`2006.07.05`, `10:30:00`) are accepted. A DT UTC offset is
//! ignored (values are compared as written): the standard leaves offset-less values in the
//! SCP's local time, so both sides are compared in the time they state.

use std::borrow::Cow;

/// An instant: date as `YYYYMMDD`, then microseconds since midnight. Ordered.
pub(crate) type Instant = (u32, u64);

const DAY_END: u64 = 86_400_000_000 - 1;

/// Lower and upper instant of the interval a value names.
pub(crate) type Interval = (Instant, Instant);

/// `s` trimmed, without the legacy separator `sep` (borrowed when there is none).
fn strip(s: &str, sep: char) -> Cow<'_, str> {
    let s = s.trim();
    if s.contains(sep) {
        Cow::Owned(s.replace(sep, ""))
    } else {
        Cow::Borrowed(s)
    }
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Date: `YYYY`, `YYYYMM`, `YYYYMMDD` (PS3.5 6.2 DA; the reduced forms are DT-style
/// precision, accepted for convenience), with legacy dots removed.
pub(crate) fn parse_da(s: &str) -> Option<(u32, u32)> {
    let s = strip(s, '.');
    let y = digits(s.get(..4)?)? as u32;
    let (m_lo, m_hi) = match s.get(4..6) {
        Some(m) => {
            let m = digits(m)? as u32;
            (m, m)
        }
        None if s.len() == 4 => (1, 12),
        None => return None,
    };
    let (d_lo, d_hi) = match s.get(6..8) {
        Some(d) => {
            let d = digits(d)? as u32;
            (d, d)
        }
        None if s.len() == 6 || s.len() == 4 => (1, 31),
        None => return None,
    };
    if s.len() > 8 || !(1..=12).contains(&m_lo) || !(1..=31).contains(&d_lo) {
        return None;
    }
    Some((y * 10000 + m_lo * 100 + d_lo, y * 10000 + m_hi * 100 + d_hi))
}

/// Time: `HH[MM[SS[.F{1,6}]]]`, legacy colons removed; microseconds since midnight.
pub(crate) fn parse_tm(s: &str) -> Option<(u64, u64)> {
    let s = strip(s, ':');
    if !s.is_ascii() {
        return None;
    }
    let (main, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (&*s, None),
    };
    if !matches!(main.len(), 2 | 4 | 6) || (frac.is_some() && main.len() != 6) {
        return None;
    }
    let h = digits(&main[..2])?;
    let m = main.get(2..4).map_or(Some(0), digits)?;
    let sec = main.get(4..6).map_or(Some(0), digits)?;
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let base = ((h * 60 + m) * 60 + sec) * 1_000_000;
    let (lo, span) = match (main.len(), frac) {
        (2, _) => (base, 3_600_000_000),
        (4, _) => (base, 60_000_000),
        (_, None) => (base, 1_000_000),
        (_, Some(f)) => {
            if f.is_empty() || f.len() > 6 {
                return None;
            }
            let scale = 10u64.pow(6 - f.len() as u32);
            (base + digits(f)? * scale, scale)
        }
    };
    Some((lo, (lo + span - 1).min(DAY_END)))
}

/// Date-time: `YYYY[MM[DD[HH[MM[SS[.F]]]]]]` with an optional `&ZZXX` offset (ignored).
pub(crate) fn parse_dt(s: &str) -> Option<Interval> {
    let s = s.trim();
    if !s.is_ascii() {
        return None;
    }
    // An offset is a sign after the date part (position ≥ 4).
    let core = match s.get(4..).and_then(|t| t.find(['+', '-'])) {
        Some(i) => {
            let off = &s[4 + i + 1..];
            if off.len() != 4 || digits(off).is_none() {
                return None;
            }
            &s[..4 + i]
        }
        None => s,
    };
    let date_len = core.len().min(8);
    let date_part = core.get(..date_len)?;
    if date_len != 4 && date_len != 6 && date_len != 8 {
        return None;
    }
    let (d_lo, d_hi) = parse_da(date_part)?;
    match core.get(8..) {
        None | Some("") => Some(((d_lo, 0), (d_hi, DAY_END))),
        Some(t) => {
            let (t_lo, t_hi) = parse_tm(t)?;
            Some(((d_lo, t_lo), (d_hi, t_hi)))
        }
    }
}
