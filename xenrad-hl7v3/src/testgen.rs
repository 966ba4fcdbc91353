//! Deterministic synthetic PRPA_IN201301UV02 corpus for benches and allocation tests
//! (HL7 example OID arc 2.16.840.1.113883.19; names with `&`, `'`, `<` and UTF-8;
//! 1–2 names and addresses, 0–3 other ids). Encoded through [`PatientMessage`].

use std::borrow::Cow;

use crate::encode::patient::{PatientMessage, TransmissionRecord};
use crate::payload::{AddressRecord, NameRecord, PatientRecord, TelRecord};
use crate::types::{AddrPartKind, Ii, NamePartKind};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'s>(&mut self, xs: &[&'s str]) -> &'s str {
        xs[self.below(xs.len())]
    }
}

const GIVEN: &[&str] = &[
    "Jimmy",
    "Ann",
    "José",
    "Zoë",
    "Li",
    "Marie-Ève",
    "Ólafur",
    "Sam",
    "Priya",
    "Kwame",
];
const FAMILY: &[&str] = &[
    "Dean",
    "O'Brien",
    "Smith & Sons",
    "Müller",
    "Nguyễn",
    "García",
    "Lee",
    "<Unknown>",
    "Øster",
    "Kowalski",
];
const CITY: &[&str] = &[
    "Some City",
    "Montréal",
    "Zürich",
    "Springfield",
    "Lyon",
    "Kraków",
];
const STREET: &[&str] = &[
    "3443 S Beach Ave",
    "12 Rue de l'Église",
    "5 Main St & 2nd",
    "Hauptstraße 7",
    "1 Infinite Loop",
];

fn ii(root: &str, ext: String) -> Ii<'static> {
    Ii {
        root: Some(Cow::Owned(root.to_owned())),
        extension: Some(Cow::Owned(ext)),
        ..Ii::default()
    }
}

/// Builds message number `i` of the corpus with `seed`.
pub fn message(seed: u64, i: usize) -> PatientMessage {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (i as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)
        | 1);
    for _ in 0..4 {
        r.next();
    }
    let names = (0..=r.below(2))
        .map(|k| NameRecord {
            use_: Some(if k == 0 { "L" } else { "A" }.to_owned()),
            parts: vec![
                (NamePartKind::Given, r.pick(GIVEN).to_owned()),
                (NamePartKind::Given, r.pick(GIVEN).to_owned()),
                (NamePartKind::Family, r.pick(FAMILY).to_owned()),
            ],
        })
        .collect();
    let addresses = (0..=r.below(2))
        .map(|_| AddressRecord {
            use_: Some("H".to_owned()),
            parts: vec![
                (AddrPartKind::StreetAddressLine, r.pick(STREET).to_owned()),
                (AddrPartKind::City, r.pick(CITY).to_owned()),
                (
                    AddrPartKind::State,
                    r.pick(&["IL", "QC", "ZH", "ON"]).to_owned(),
                ),
                (AddrPartKind::PostalCode, format!("{:05}", r.below(100_000))),
                (
                    AddrPartKind::Country,
                    r.pick(&["US", "CA", "CH", "FR"]).to_owned(),
                ),
            ],
        })
        .collect();
    let other_ids = (0..r.below(4))
        .map(|k| {
            ii(
                &format!("1.2.3.{}", k + 1),
                format!("OID{}", r.below(1_000_000)),
            )
        })
        .collect();
    let patient = PatientRecord {
        ids: vec![ii(
            "2.16.840.1.113883.19.5",
            format!("P{:08}", r.below(100_000_000)),
        )],
        status_code: Some("active".to_owned()),
        names,
        telecoms: vec![TelRecord {
            value: Some(format!("tel:+1-555-{:04}", r.below(10_000))),
            use_: Some("HP".to_owned()),
        }],
        gender: Some(r.pick(&["M", "F", "UN"]).to_owned()),
        birth_time: Some(format!(
            "{}{:02}{:02}",
            1920 + r.below(100),
            1 + r.below(12),
            1 + r.below(28)
        )),
        addresses,
        other_ids,
        replaced_ids: Vec::new(),
    };
    PatientMessage {
        transmission: TransmissionRecord {
            interaction: "PRPA_IN201301UV02".to_owned(),
            message_id: ii("2.16.840.1.113883.19.1", format!("MSG{i:08}")),
            creation_time: format!(
                "2024{:02}{:02}{:02}{:02}{:02}",
                1 + r.below(12),
                1 + r.below(28),
                r.below(24),
                r.below(60),
                r.below(60)
            ),
            processing_code: Some("P".to_owned()),
            processing_mode_code: Some("T".to_owned()),
            accept_ack_code: Some("AL".to_owned()),
            receiver: ii("2.16.840.1.113883.19.2", "PIXMGR".to_owned()),
            sender: ii("2.16.840.1.113883.19.3", format!("SRC{}", r.below(16))),
        },
        patients: vec![patient],
    }
}

/// `count` encoded messages of the corpus with `seed`.
pub fn corpus(seed: u64, count: usize) -> Vec<String> {
    (0..count).map(|i| message(seed, i).encode()).collect()
}
