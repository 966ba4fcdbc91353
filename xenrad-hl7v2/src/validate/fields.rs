//! Field definitions checked by the validator: usage (R/O), repeatability, data type of the
//! checked component and its table (HL7 v2.5.1 segment definitions in ch. 2, 3, 4, 7, 10).

use super::tables::{
    T0001, T0004, T0007, T0008, T0038, T0076, T0085, T0103, T0104, T0119, T0123, T0125, T0155,
    T0200, T0203, T0211, T0357, T0516, Table,
};

/// Data types checked (HL7 v2.5.1 section 2.A).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dt {
    /// Any text (length only).
    Text,
    /// DTM / TS (first component).
    Dtm,
    /// DT.
    Date,
    /// NM.
    Num,
    /// SI: non-negative integer.
    Si,
    /// ID / IS: coded value, checked against the table.
    Code,
}

/// One checked field (or component of a field).
pub(crate) struct FieldDef {
    pub(crate) segment: &'static str,
    pub(crate) field: usize,
    /// Component checked (1 = first component, also for primitive fields).
    pub(crate) component: usize,
    pub(crate) dt: Dt,
    /// Usage R: must be valued (checked for component 1 defs only).
    pub(crate) required: bool,
    pub(crate) repeating: bool,
    pub(crate) table: Option<&'static Table>,
    /// Maximum length in characters of the checked value (0 = unchecked).
    pub(crate) max_len: usize,
}

const fn f(
    segment: &'static str,
    field: usize,
    component: usize,
    dt: Dt,
    required: bool,
    repeating: bool,
) -> FieldDef {
    FieldDef {
        segment,
        field,
        component,
        dt,
        required,
        repeating,
        table: None,
        max_len: 0,
    }
}

const fn t(mut d: FieldDef, table: &'static Table, max_len: usize) -> FieldDef {
    d.table = Some(table);
    d.max_len = max_len;
    d
}

const fn len(mut d: FieldDef, max_len: usize) -> FieldDef {
    d.max_len = max_len;
    d
}

use Dt::{Code, Dtm, Num, Si, Text};

/// The checked fields.
pub(crate) const FIELDS: &[FieldDef] = &[
    // MSH (2.15.9)
    f("MSH", 1, 1, Text, true, false),
    f("MSH", 2, 1, Text, true, false),
    f("MSH", 7, 1, Dtm, true, false),
    t(f("MSH", 9, 1, Code, true, false), &T0076, 3),
    len(f("MSH", 9, 2, Text, false, false), 3),
    len(f("MSH", 10, 1, Text, true, false), 20),
    t(f("MSH", 11, 1, Code, true, false), &T0103, 1),
    t(f("MSH", 12, 1, Code, true, false), &T0104, 5),
    len(f("MSH", 13, 1, Num, false, false), 15),
    t(f("MSH", 15, 1, Code, false, false), &T0155, 2),
    t(f("MSH", 16, 1, Code, false, false), &T0155, 2),
    t(f("MSH", 18, 1, Code, false, true), &T0211, 16),
    // EVN (3.4.1)
    f("EVN", 2, 1, Dtm, true, false),
    f("EVN", 3, 1, Dtm, false, false),
    f("EVN", 6, 1, Dtm, false, false),
    // PID (3.4.2)
    len(f("PID", 1, 1, Si, false, false), 4),
    f("PID", 3, 1, Text, true, true),
    t(f("PID", 3, 5, Code, false, true), &T0203, 5),
    f("PID", 5, 1, Text, true, true),
    t(f("PID", 5, 7, Code, false, true), &T0200, 1),
    f("PID", 7, 1, Dtm, false, false),
    t(f("PID", 8, 1, Code, false, false), &T0001, 1),
    f("PID", 29, 1, Dtm, false, false),
    // PV1 (3.4.3)
    len(f("PV1", 1, 1, Si, false, false), 4),
    t(f("PV1", 2, 1, Code, true, false), &T0004, 1),
    t(f("PV1", 4, 1, Code, false, false), &T0007, 2),
    f("PV1", 44, 1, Dtm, false, false),
    f("PV1", 45, 1, Dtm, false, true),
    // ORC (4.5.1)
    t(f("ORC", 1, 1, Code, true, false), &T0119, 2),
    t(f("ORC", 5, 1, Code, false, false), &T0038, 2),
    f("ORC", 9, 1, Dtm, false, false),
    // OBR (4.5.3 / 7.4.1)
    len(f("OBR", 1, 1, Si, false, false), 4),
    f("OBR", 4, 1, Text, true, false),
    f("OBR", 6, 1, Dtm, false, false),
    f("OBR", 7, 1, Dtm, false, false),
    f("OBR", 8, 1, Dtm, false, false),
    f("OBR", 14, 1, Dtm, false, false),
    f("OBR", 22, 1, Dtm, false, false),
    t(f("OBR", 25, 1, Code, false, false), &T0123, 1),
    // OBX (7.4.2)
    len(f("OBX", 1, 1, Si, false, false), 4),
    t(f("OBX", 2, 1, Code, false, false), &T0125, 3),
    f("OBX", 3, 1, Text, true, false),
    t(f("OBX", 11, 1, Code, true, false), &T0085, 1),
    f("OBX", 14, 1, Dtm, false, false),
    f("OBX", 19, 1, Dtm, false, false),
    // NTE (2.15.10)
    len(f("NTE", 1, 1, Si, false, false), 4),
    // MSA (2.15.8) and ERR (2.15.5)
    t(f("MSA", 1, 1, Code, true, false), &T0008, 2),
    len(f("MSA", 2, 1, Text, true, false), 20),
    t(f("ERR", 3, 1, Code, true, false), &T0357, 3),
    t(f("ERR", 4, 1, Code, true, false), &T0516, 1),
    // SCH (10.6.2), AIS (10.6.4), IPC (4.5.6)
    f("SCH", 11, 4, Dtm, false, false),
    len(f("AIS", 1, 1, Si, true, false), 4),
    f("AIS", 4, 1, Dtm, false, false),
    f("IPC", 1, 1, Text, true, false),
    f("IPC", 2, 1, Text, true, false),
    f("IPC", 3, 1, Text, true, false),
    f("IPC", 4, 1, Text, true, false),
    f("IPC", 5, 1, Text, false, false),
    f("DG1", 1, 1, Si, true, false),
    f("AL1", 1, 1, Si, true, false),
    f("NK1", 1, 1, Si, true, false),
    f("PR1", 1, 1, Si, true, false),
    f("IN1", 1, 1, Si, true, false),
    f("GT1", 1, 1, Si, true, false),
    f("SPM", 1, 1, Si, false, false),
    f("SFT", 1, 1, Text, true, false),
    f("RGS", 1, 1, Si, true, false),
];

/// The definitions of one segment ID (FIELDS lists each segment's definitions contiguously).
pub(crate) fn for_segment(name: &str) -> &'static [FieldDef] {
    static INDEX: std::sync::OnceLock<Vec<(&'static str, usize, usize)>> =
        std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut v: Vec<(&'static str, usize, usize)> = Vec::new();
        for (i, d) in FIELDS.iter().enumerate() {
            match v.last_mut() {
                Some(last) if last.0 == d.segment => last.2 = i + 1,
                _ => v.push((d.segment, i, i + 1)),
            }
        }
        v
    });
    index
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(&[], |&(_, a, b)| &FIELDS[a..b])
}

/// Checks a value against a data type; `None` if fine, else the reason.
pub(crate) fn check_type(dt: Dt, v: &str) -> Option<&'static str> {
    match dt {
        Dt::Text | Dt::Code => None,
        Dt::Dtm => crate::datetime::parse_dtm(v)
            .err()
            .map(|_| "not a valid DTM/TS date/time"),
        Dt::Date => crate::datetime::parse_dt(v)
            .err()
            .map(|_| "not a valid DT date"),
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
