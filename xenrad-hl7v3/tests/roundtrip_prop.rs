//! Property: any patient record → PRPA encoder → strict pass → record is the identity
//! (escaping of `&`, `<`, quotes, tabs, CR/LF and non-ASCII in text and attributes).

use std::borrow::Cow;

use proptest::prelude::*;
use xenrad_hl7v3::encode::patient::{PatientMessage, TransmissionRecord};
use xenrad_hl7v3::payload::{AddressRecord, NameRecord, PatientRecord, TelRecord};
use xenrad_hl7v3::types::{AddrPartKind, Ii, NamePartKind};

fn text() -> impl Strategy<Value = String> {
    // Any XML 1.0 characters (no C0 controls other than tab/LF/CR), markup-heavy.
    proptest::string::string_regex("[a-zA-Z0-9 &<>\"'\t\r\n;#éÜ漢😀-]{0,12}").unwrap()
}

fn ii() -> impl Strategy<Value = Ii<'static>> {
    (text(), proptest::option::of(text())).prop_map(|(r, e)| Ii {
        root: Some(Cow::Owned(r)),
        extension: e.map(Cow::Owned),
        ..Ii::default()
    })
}

fn name() -> impl Strategy<Value = NameRecord> {
    let kind = prop_oneof![
        Just(NamePartKind::Given),
        Just(NamePartKind::Family),
        Just(NamePartKind::Prefix),
        Just(NamePartKind::Suffix)
    ];
    (
        proptest::option::of(text()),
        proptest::collection::vec((kind, text()), 0..4),
    )
        .prop_map(|(use_, parts)| NameRecord { use_, parts })
}

fn addr() -> impl Strategy<Value = AddressRecord> {
    let kind = prop_oneof![
        Just(AddrPartKind::StreetAddressLine),
        Just(AddrPartKind::City),
        Just(AddrPartKind::State),
        Just(AddrPartKind::PostalCode),
        Just(AddrPartKind::Country)
    ];
    (
        proptest::option::of(text()),
        proptest::collection::vec((kind, text()), 0..4),
    )
        .prop_map(|(use_, parts)| AddressRecord { use_, parts })
}

fn patient() -> impl Strategy<Value = PatientRecord> {
    (
        proptest::collection::vec(ii(), 1..3),
        proptest::collection::vec(name(), 0..3),
        proptest::collection::vec(addr(), 0..3),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::collection::vec(ii(), 0..3),
        proptest::collection::vec(
            (proptest::option::of(text()), proptest::option::of(text())),
            0..2,
        ),
    )
        .prop_map(
            |(ids, names, addresses, gender, birth_time, other_ids, tels)| PatientRecord {
                ids,
                status_code: Some("active".into()),
                names,
                telecoms: tels
                    .into_iter()
                    .map(|(value, use_)| TelRecord { value, use_ })
                    .collect(),
                gender,
                birth_time,
                addresses,
                other_ids,
                replaced_ids: Vec::new(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn patient_record_round_trips(p in patient(), id in ii(), merge in proptest::collection::vec(ii(), 0..2)) {
        let mut p = p;
        p.replaced_ids = merge;
        let msg = PatientMessage {
            transmission: TransmissionRecord {
            interaction: "PRPA_IN201304UV02".into(),
            message_id: id,
            creation_time: "20240101".into(),
            processing_code: Some("P".into()),
            processing_mode_code: None,
            accept_ack_code: Some("AL".into()),
            receiver: Ii { root: Some("1.2".into()), ..Ii::default() },
            sender: Ii { root: Some("1.3".into()), ..Ii::default() },
            },
            patients: vec![p],
        };
        let xml = msg.encode();
        let parsed = xenrad_hl7v3::strict(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(PatientMessage::from_message(&parsed), msg);
        // The fast header pass reads the same wrapper.
        let h = xenrad_hl7v3::header(xml.as_bytes()).unwrap();
        prop_assert_eq!(&h.message_id, &parsed.header().message_id);
    }

    #[test]
    fn encoder_never_emits_ill_formed_xml(s in any::<String>()) {
        let rec = PatientRecord { names: vec![NameRecord { use_: Some(s.clone()), parts: vec![(NamePartKind::Family, s)] }], ..PatientRecord::default() };
        let msg = PatientMessage { transmission: TransmissionRecord { interaction: "PRPA_IN201301UV02".into(), ..TransmissionRecord::default() }, patients: vec![rec] };
        let xml = msg.encode();
        prop_assert!(xenrad_hl7v3::strict(xml.as_bytes()).is_ok(), "{}", xml);
    }
}
