//! The HL7 v2.5.1 field rules, read once from the generated data table `v251.tsv` (see
//! `tools/gen_v251_defs.py`: every field of the segments the supported structures use, from
//! the v2.5.1 segment definitions of ch. 2, 3, 4, 6, 7 and 10, the data types of 2.A and the
//! tables of Appendix A).

use super::fields::{CompRule, Dt, FieldRule, pack};
use std::sync::OnceLock;

/// Maximum repetitions meaning "unbounded".
pub(crate) const UNBOUNDED: u16 = u16::MAX;

/// Marks a rule without an enforced table.
pub(crate) const NO_TABLE: u16 = u16::MAX;

const DATA: &str = include_str!("v251.tsv");

/// The parsed table.
pub(crate) struct Defs {
    /// Segment IDs (as [`id`]) with their field rules, sorted by ID.
    segments: Vec<(u32, Vec<FieldRule>)>,
    /// Table values packed by [`pack`] and sorted; rules refer to them by slot.
    tables: Vec<Vec<u128>>,
}

/// A three-letter segment ID as an integer (`None` for other lengths).
#[inline]
fn id(name: &[u8]) -> Option<u32> {
    let [a, b, c] = name.try_into().ok()?;
    Some(u32::from_be_bytes([0, a, b, c]))
}

fn dt(s: &str) -> Dt {
    match s {
        "Dtm" => Dt::Dtm,
        "Ts" => Dt::Ts,
        "Date" => Dt::Date,
        "Time" => Dt::Time,
        "Num" => Dt::Num,
        "Si" => Dt::Si,
        "Id" => Dt::Id,
        "Is" => Dt::Is,
        "Composite" => Dt::Composite,
        "Text" => Dt::Text,
        other => panic!("v251.tsv: unknown data type {other}"),
    }
}

fn num<T: std::str::FromStr>(s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| panic!("v251.tsv: not a number: {s:?}"))
}

impl Defs {
    /// Parses the committed table (a malformed table is a build defect: it panics, and the
    /// unit tests load it).
    fn load() -> Self {
        let mut table_ids: Vec<u16> = Vec::new();
        let mut tables: Vec<Vec<u128>> = Vec::new();
        for line in DATA.lines().filter(|l| l.starts_with("T\t")) {
            let mut cols = line.split('\t').skip(1);
            table_ids.push(num(cols.next().unwrap_or_default()));
            let mut values: Vec<u128> = cols.map(|v| pack(v.as_bytes()).expect("short")).collect();
            values.sort_unstable();
            tables.push(values);
        }
        let slot = |table: u16| {
            if table == 0 {
                NO_TABLE
            } else {
                let i = table_ids.iter().position(|&t| t == table);
                u16::try_from(i.expect("v251.tsv: table listed")).expect("few tables")
            }
        };
        let mut comps: Vec<(&str, Vec<CompRule>)> = Vec::new();
        for line in DATA.lines().filter(|l| l.starts_with("C\t")) {
            let mut cols = line.split('\t').skip(1);
            let name = cols.next().unwrap_or_default();
            let rules = cols
                .map(|c| {
                    let mut p = c.split(':');
                    let d = dt(p.next().unwrap_or_default());
                    let table: u16 = num(p.next().unwrap_or_default());
                    CompRule {
                        dt: d,
                        table,
                        slot: slot(table),
                        max_len: num(p.next().unwrap_or_default()),
                    }
                })
                .collect();
            comps.push((name, rules));
        }
        let mut segments: Vec<(u32, Vec<FieldRule>)> = Vec::new();
        for line in DATA.lines().filter(|l| l.starts_with("F\t")) {
            let c: Vec<&str> = line.split('\t').collect();
            let seg = id(c[1].as_bytes()).expect("three-letter segment ID");
            let table: u16 = num(c[6]);
            let max: i32 = num(c[5]);
            let rule = FieldRule {
                dt: dt(c[3]),
                min: num(c[4]),
                max: u16::try_from(max).unwrap_or(UNBOUNDED),
                table,
                slot: slot(table),
                max_len: num(c[7]),
                comps: comps
                    .iter()
                    .find(|(n, _)| *n == c[8])
                    .map(|(_, r)| r.clone())
                    .unwrap_or_default(),
            };
            match segments.last_mut() {
                Some((s, rules)) if *s == seg => rules.push(rule),
                _ => segments.push((seg, vec![rule])),
            }
        }
        segments.sort_unstable_by_key(|(s, _)| *s);
        Self { segments, tables }
    }

    /// The field rules of a segment ID, `None` for segments not defined here.
    #[inline]
    pub(crate) fn segment(&self, name: &str) -> Option<&[FieldRule]> {
        let k = id(name.as_bytes())?;
        let i = self.segments.binary_search_by_key(&k, |(s, _)| *s).ok()?;
        Some(&self.segments[i].1)
    }

    /// The packed, sorted values of the table in `slot`.
    #[inline]
    pub(crate) fn values(&self, slot: u16) -> &[u128] {
        self.tables
            .get(usize::from(slot))
            .map_or(&[], Vec::as_slice)
    }
}

/// The rules, parsed on first use.
pub(crate) fn defs() -> &'static Defs {
    static DEFS: OnceLock<Defs> = OnceLock::new();
    DEFS.get_or_init(Defs::load)
}
