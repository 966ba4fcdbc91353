//! Property tests of the query module: wild card matching equals a reference matcher, DA range
//! matching equals the comparison of dates, and any identifier we build survives encode →
//! decode in each transfer syntax and character set, byte-stable.
#![cfg(feature = "qr")]

use proptest::prelude::*;
use xenrad_dimse::query::{
    FindOptions, FindQuery, InformationModel, decode_identifier, encode_identifier,
    identifier_from_pairs, to_dicom_json,
};

/// Reference wild card matcher (PS3.4 C.2.2.2.4), by plain recursion over characters.
fn reference(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && reference(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
    }
}

fn matches(key: &str, value: &str, pairs_key: &str) -> bool {
    let q = FindQuery::parse(
        identifier_from_pairs(&[(pairs_key, key)]).unwrap(),
        InformationModel::ModalityWorklist,
    )
    .unwrap();
    q.matches(
        &identifier_from_pairs(&[(pairs_key, value)]).unwrap(),
        &FindOptions::default(),
    )
}

fn date() -> impl Strategy<Value = String> {
    (1900u32..2100, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| format!("{y:04}{m:02}{d:02}"))
}

const TS: [&str; 3] = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
];

proptest! {
    #[test]
    fn wild_cards_equal_the_reference(p in "[ab?*é]{1,8}", s in "[abé]{0,8}") {
        let pc: Vec<char> = p.chars().collect();
        let sc: Vec<char> = s.chars().collect();
        // LO (Study Description) is case-sensitive; an empty stored value never matches a
        // non-universal key, and a key of only '*' is universal.
        let want = if p.chars().all(|c| c == '*') {
            true
        } else {
            !s.is_empty() && reference(&pc, &sc)
        };
        prop_assert_eq!(matches(&p, &s, "StudyDescription"), want, "{:?} {:?}", p, s);
    }

    #[test]
    fn date_ranges_equal_date_comparison(d in date(), lo in date(), hi in date(), form in 0u8..4) {
        let (key, want) = match form {
            0 => (format!("{lo}-{hi}"), lo <= d && d <= hi),
            1 => (format!("-{hi}"), d <= hi),
            2 => (format!("{lo}-"), lo <= d),
            _ => (lo.clone(), lo == d),
        };
        prop_assert_eq!(matches(&key, &d, "StudyDate"), want, "{} vs {}", key, d);
    }

    #[test]
    fn identifiers_round_trip(
        cs in 0usize..3,
        name in "[A-Za-z]{1,6}\\^[A-Za-z]{1,6}",
        latin in "[a-zäöüßØå]{1,10}",
        wide in "[a-z山田太郎ЖИ]{1,10}",
        d in date(),
        n in 0u32..100_000,
        ts in 0usize..3,
        nested in any::<bool>(),
    ) {
        let (charset, descr) = match cs {
            0 => ("", "ASCII only".to_owned()),
            1 => ("ISO_IR 100", latin),
            _ => ("ISO_IR 192", wide),
        };
        let n = n.to_string();
        let mut pairs = vec![
            ("PatientName", name.as_str()),
            ("StudyDescription", descr.as_str()),
            ("StudyDate", d.as_str()),
            ("SeriesNumber", n.as_str()),
            ("StudyInstanceUID", "1.2.3.4"),
            ("QueryRetrieveLevel", "STUDY"),
        ];
        if !charset.is_empty() {
            pairs.push(("SpecificCharacterSet", charset));
        }
        if nested {
            pairs.push(("ScheduledProcedureStepSequence.ScheduledProcedureStepDescription", descr.as_str()));
            pairs.push(("ScheduledProcedureStepSequence.Modality", "MR"));
        }
        let id = identifier_from_pairs(&pairs).unwrap();
        let bytes = encode_identifier(&id, TS[ts]).unwrap();
        let back = decode_identifier(&bytes, TS[ts]).unwrap();
        prop_assert_eq!(to_dicom_json(&back).unwrap(), to_dicom_json(&id).unwrap());
        prop_assert_eq!(encode_identifier(&back, TS[ts]).unwrap(), bytes);
    }
}
