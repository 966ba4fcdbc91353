//! The query module: every PS3.4 C.2.2.2 matching rule, identifier round trips and errors,
//! the Q/R index at every level of both models, retrieve selection, the worklist.
#![cfg(feature = "qr")]
#![allow(clippy::many_single_char_names)]

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use xenrad_dimse::query::{
    FindOptions, FindQuery, Identifier, InformationModel, InstanceRecord, Level, QueryError,
    QueryErrorKind, QueryIndex, Worklist, WorklistItem, decode_identifier, encode_identifier,
    identifier_from_pairs, to_dicom_json,
};

const IMPLICIT: &str = "1.2.840.10008.1.2";
const EXPLICIT: &str = "1.2.840.10008.1.2.1";
const BIG: &str = "1.2.840.10008.1.2.2";

fn id(pairs: &[(&str, &str)]) -> Identifier {
    identifier_from_pairs(pairs).unwrap()
}

/// Whether a stored data set matches a query's keys (no levels), with options.
fn m_opts(query: &[(&str, &str)], stored: &[(&str, &str)], opts: &FindOptions) -> bool {
    let q = FindQuery::parse(id(query), InformationModel::ModalityWorklist).unwrap();
    q.matches(&id(stored), opts)
}

fn m(query: &[(&str, &str)], stored: &[(&str, &str)]) -> bool {
    m_opts(query, stored, &FindOptions::default())
}

fn text(o: &Identifier, t: Tag) -> Option<String> {
    o.get(t).map(|e| e.to_str().unwrap().trim_end().to_owned())
}

// ---- PS3.4 C.2.2.2.1 single value matching ------------------------------------------------

#[test]
fn single_value_is_exact_and_case_sensitive_except_pn() {
    assert!(m(&[("PatientID", "P1")], &[("PatientID", "P1")]));
    assert!(!m(&[("PatientID", "p1")], &[("PatientID", "P1")]));
    assert!(!m(&[("PatientID", "P1")], &[("PatientID", "P12")]));
    // Padding is insignificant (PS3.5 6.2): trailing and (for LO) leading spaces.
    assert!(m(&[("PatientID", "P1 ")], &[("PatientID", " P1")]));
    // PN: case-insensitive by default (C.2.2.2.1 permits it), exact when asked.
    assert!(m(
        &[("PatientName", "doe^john")],
        &[("PatientName", "DOE^JOHN")]
    ));
    let strict = FindOptions {
        pn_case_insensitive: false,
        ..FindOptions::default()
    };
    assert!(!m_opts(
        &[("PatientName", "doe^john")],
        &[("PatientName", "DOE^JOHN")],
        &strict
    ));
    assert!(m_opts(
        &[("PatientName", "DOE^JOHN")],
        &[("PatientName", "DOE^JOHN")],
        &strict
    ));
    // Non-ASCII case folding on decoded text.
    assert!(m(
        &[("PatientName", "MÜLLER^JÖRG")],
        &[("PatientName", "Müller^Jörg")]
    ));
    // Numbers compare as numbers.
    assert!(m(&[("SeriesNumber", "01")], &[("SeriesNumber", "1")]));
    // A non-universal key the entity lacks (or has empty) does not match.
    assert!(!m(&[("PatientID", "P1")], &[("PatientName", "X")]));
    assert!(!m(&[("PatientID", "P1")], &[("PatientID", "")]));
}

// ---- C.2.2.2.2 list of UID matching ---------------------------------------------------------

#[test]
fn list_of_uid_matching() {
    let q = [("StudyInstanceUID", "1.2.3\\1.2.4\\1.2.5")];
    assert!(m(&q, &[("StudyInstanceUID", "1.2.4")]));
    assert!(!m(&q, &[("StudyInstanceUID", "1.2.45")]));
    // UIDs take no wild cards: '*' is literal (C.2.2.2.4).
    assert!(!m(
        &[("StudyInstanceUID", "1.2.*")],
        &[("StudyInstanceUID", "1.2.3")]
    ));
}

// ---- C.2.2.2.3 universal matching -----------------------------------------------------------

#[test]
fn universal_matching() {
    assert!(m(&[("PatientName", "")], &[("PatientID", "P1")]));
    assert!(m(&[("PatientName", "")], &[("PatientName", "A")]));
    assert!(m(&[("StudyDate", "")], &[]));
    // "*" alone in a wild card VR is universal: it matches an absent attribute too.
    assert!(m(&[("PatientName", "*")], &[("PatientID", "P1")]));
    // A sequence key with no item is universal.
    assert!(m(
        &[("ScheduledProcedureStepSequence", "")],
        &[("PatientID", "P1")]
    ));
}

// ---- C.2.2.2.4 wild card matching -----------------------------------------------------------

#[test]
fn wild_card_matching() {
    let s = [
        ("PatientName", "Doe^John"),
        ("Modality", "CT"),
        ("StudyDescription", "Thorax"),
    ];
    assert!(m(&[("PatientName", "Doe*")], &s));
    assert!(m(&[("PatientName", "D?e^J*")], &s));
    assert!(m(&[("PatientName", "*John")], &s));
    assert!(!m(&[("PatientName", "*Jane")], &s));
    assert!(m(&[("Modality", "C?")], &s));
    assert!(!m(&[("Modality", "C??")], &s));
    assert!(m(&[("StudyDescription", "*ora*")], &s));
    // '?' is one character, not one byte.
    assert!(m(
        &[("PatientName", "M?ller*")],
        &[("PatientName", "Müller^Jörg")]
    ));
    // Not for DA/TM/DT (a malformed range), nor IS/DS (literal characters).
    let e = FindQuery::parse(
        id(&[("StudyDate", "2006*")]),
        InformationModel::ModalityWorklist,
    )
    .unwrap_err();
    assert_eq!(e.status(), 0xA900);
    assert_eq!(e.tag, Some(tags::STUDY_DATE));
    assert!(!m(&[("SeriesNumber", "1*")], &[("SeriesNumber", "12")]));
}

// ---- C.2.2.2.5 range matching ---------------------------------------------------------------

#[test]
fn date_range_matching() {
    let d = |v: &str| [("StudyDate", v.to_owned())];
    let has = |q: &str, v: &str| {
        let s = d(v);
        m(&[("StudyDate", q)], &[(s[0].0, s[0].1.as_str())])
    };
    // The standard's example forms: D1-D2, -D2, D1-, D.
    assert!(has("20060705-20060707", "20060705"));
    assert!(has("20060705-20060707", "20060707"));
    assert!(!has("20060705-20060707", "20060708"));
    assert!(has("-20060707", "19991231"));
    assert!(!has("-20060707", "20060708"));
    assert!(has("20060705-", "20991231"));
    assert!(!has("20060705-", "20060704"));
    assert!(has("20060705", "20060705"));
    assert!(!has("20060705", "20060706"));
    // Legacy ACR-NEMA dots in stored values.
    assert!(has("20060705-20060707", "2006.07.06"));
    // Malformed ranges are refused with the tag.
    for bad in ["2006-07-05", "-", "20061305", "x-y"] {
        let e = FindQuery::parse(
            id(&[("StudyDate", bad)]),
            InformationModel::ModalityWorklist,
        )
        .unwrap_err();
        assert_eq!(
            (e.status(), e.tag),
            (0xA900, Some(tags::STUDY_DATE)),
            "{bad}"
        );
    }
}

#[test]
fn time_and_datetime_range_matching() {
    let t = |q: &str, v: &str| m(&[("StudyTime", q)], &[("StudyTime", v)]);
    assert!(t("1000-1100", "103000"));
    assert!(t("1000-1100", "1000"));
    // Reduced precision upper bound covers its whole minute.
    assert!(t("1000-1100", "110030.5"));
    assert!(!t("1000-1100", "110100"));
    assert!(t("-0930", "000000"));
    assert!(t("0930-", "235959.999999"));
    assert!(t("10", "105959"));
    assert!(!t("10", "110000"));
    assert!(t("1000-1100", "10:30:00"));
    let dt = |q: &str, v: &str| m(&[("AcquisitionDateTime", q)], &[("AcquisitionDateTime", v)]);
    assert!(dt("20060705-20060707", "20060707235959"));
    assert!(dt("2006-", "20060101000000"));
    assert!(!dt("200607051000-200607051800", "20060705180100"));
    assert!(dt("200607051000-200607051800", "20060705180059.9"));
    assert!(dt("20060705-0500-20060706-0500", "20060706120000-0500"));
    // Not a DT: trailing garbage after the date, a bad offset.
    assert!(!dt("2006-", "20060101é"));
    assert!(!dt("2006-", "20060101+05"));
    assert!(
        FindQuery::parse(
            id(&[("AcquisitionDateTime", "20060101x")]),
            InformationModel::ModalityWorklist
        )
        .is_err()
    );
}

fn at<'a>(d: &'a str, t: &'a str) -> [(&'static str, &'a str); 2] {
    [("StudyDate", d), ("StudyTime", t)]
}

#[test]
fn combined_date_time_range_matching() {
    // PS3.4 C.2.2.2.5: Study Date 20060705-20060707 and Study Time 1000-1800 are 2006-07-05
    // 10:00 through 2006-07-07 18:00 with combined matching, each day 10:00-18:00 without.
    let q = [
        ("StudyDate", "20060705-20060707"),
        ("StudyTime", "1000-1800"),
    ];
    let combined = FindOptions {
        combined_date_time: true,
        ..FindOptions::default()
    };
    assert!(m_opts(&q, &at("20060706", "0800"), &combined));
    assert!(!m(&q, &at("20060706", "0800")));
    assert!(!m_opts(&q, &at("20060705", "0900"), &combined));
    assert!(m_opts(&q, &at("20060705", "1000"), &combined));
    assert!(m_opts(&q, &at("20060707", "1700"), &combined));
    assert!(!m_opts(&q, &at("20060707", "1900"), &combined));
    // Without a stored time the date alone decides.
    assert!(m_opts(&q, &[("StudyDate", "20060707")], &combined));
    // Open ends.
    let open = [("StudyDate", "20060705-"), ("StudyTime", "1000-")];
    assert!(!m_opts(&open, &at("20060705", "0959"), &combined));
    assert!(m_opts(&open, &at("20060706", "0100"), &combined));
}

// ---- C.2.2.2.6 sequence matching ------------------------------------------------------------

fn worklist_item() -> Identifier {
    // Two Scheduled Procedure Steps: CT at STATION1 on the 5th, MR at STATION2 on the 6th.
    let mut item = id(&[
        ("SpecificCharacterSet", "ISO_IR 192"),
        ("PatientName", "Müller^Jörg"),
        ("PatientID", "P1"),
        ("AccessionNumber", "A1"),
        ("ScheduledProcedureStepSequence.Modality", "CT"),
        (
            "ScheduledProcedureStepSequence.ScheduledStationAETitle",
            "STATION1",
        ),
        (
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
            "20240105",
        ),
        (
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime",
            "0900",
        ),
    ]);
    let second = id(&[
        ("Modality", "MR"),
        ("ScheduledStationAETitle", "STATION2"),
        ("ScheduledProcedureStepStartDate", "20240106"),
        ("ScheduledProcedureStepStartTime", "1400"),
    ]);
    let sps = tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE;
    let mut items = item.get(sps).unwrap().items().unwrap().to_vec();
    items.push(second);
    item.put(dicom_core::DataElement::new(
        sps,
        dicom_core::VR::SQ,
        dicom_core::value::DataSetSequence::from(items),
    ));
    item
}

#[test]
fn sequence_matching() {
    let mut wl = Worklist::new();
    wl.insert(WorklistItem {
        source: "mem".into(),
        attributes: worklist_item(),
    });
    let find = |pairs: &[(&str, &str)]| -> Vec<Identifier> {
        let q = FindQuery::parse(id(pairs), InformationModel::ModalityWorklist).unwrap();
        wl.find(&q, &FindOptions::default()).collect()
    };
    let sps = tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE;
    // Matches on the second item; the response holds only that item with the query's keys.
    let r = find(&[
        ("PatientName", ""),
        ("ScheduledProcedureStepSequence.Modality", "MR"),
        ("ScheduledProcedureStepSequence.ScheduledStationAETitle", ""),
    ]);
    assert_eq!(r.len(), 1);
    let items = r[0].get(sps).unwrap().items().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        text(&items[0], tags::SCHEDULED_STATION_AE_TITLE).unwrap(),
        "STATION2"
    );
    assert!(
        items[0]
            .get(tags::SCHEDULED_PROCEDURE_STEP_START_DATE)
            .is_none()
    );
    assert_eq!(text(&r[0], tags::PATIENT_NAME).unwrap(), "Müller^Jörg");
    // Every key of the query item must match the same item.
    assert!(
        find(&[
            ("ScheduledProcedureStepSequence.Modality", "MR"),
            (
                "ScheduledProcedureStepSequence.ScheduledStationAETitle",
                "STATION1"
            ),
        ])
        .is_empty()
    );
    // Station AE with a wild card, date range and time range inside the item.
    let r = find(&[
        (
            "ScheduledProcedureStepSequence.ScheduledStationAETitle",
            "STATION*",
        ),
        (
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
            "20240101-20240105",
        ),
        (
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime",
            "-1000",
        ),
    ]);
    assert_eq!(r[0].get(sps).unwrap().items().unwrap().len(), 1);
    assert!(
        find(&[(
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
            "20240107-"
        )])
        .is_empty()
    );
    // Zero items: universal, and the entity's items come back whole.
    let r = find(&[("ScheduledProcedureStepSequence", "")]);
    let items = r[0].get(sps).unwrap().items().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items[1]
            .get(tags::SCHEDULED_PROCEDURE_STEP_START_TIME)
            .is_some()
    );
    // An entity without the sequence does not match a non-universal sequence key.
    let mut other = Worklist::new();
    other.insert(WorklistItem {
        source: "mem".into(),
        attributes: id(&[("PatientID", "P9")]),
    });
    let q = FindQuery::parse(
        id(&[("ScheduledProcedureStepSequence.Modality", "MR")]),
        InformationModel::ModalityWorklist,
    )
    .unwrap();
    assert_eq!(other.find(&q, &FindOptions::default()).count(), 0);
}

#[test]
fn combined_date_time_inside_a_sequence_item() {
    let mut wl = Worklist::new();
    wl.insert(WorklistItem {
        source: "mem".into(),
        attributes: worklist_item(),
    });
    let q = FindQuery::parse(
        id(&[
            (
                "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
                "20240105-20240106",
            ),
            (
                "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime",
                "1000-1200",
            ),
        ]),
        InformationModel::ModalityWorklist,
    )
    .unwrap();
    // Separately: neither item is between 10:00 and 12:00.
    assert_eq!(wl.find(&q, &FindOptions::default()).count(), 0);
    // Combined: 2024-01-05 10:00 .. 2024-01-06 12:00 excludes both (09:00 on the 5th, 14:00
    // on the 6th); widen the end time and the second item is in.
    let combined = FindOptions {
        combined_date_time: true,
        ..FindOptions::default()
    };
    assert_eq!(wl.find(&q, &combined).count(), 0);
    let q2 = FindQuery::parse(
        id(&[
            (
                "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
                "20240105-20240106",
            ),
            (
                "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime",
                "1000-1500",
            ),
        ]),
        InformationModel::ModalityWorklist,
    )
    .unwrap();
    let r: Vec<_> = wl.find(&q2, &combined).collect();
    assert_eq!(r.len(), 1);
    let items = r[0]
        .get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .unwrap()
        .items()
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        text(&items[0], tags::SCHEDULED_PROCEDURE_STEP_START_TIME).unwrap(),
        "1400"
    );
}

#[test]
fn empty_value_matching() {
    assert!(m(&[("PatientBirthDate", "\"\"")], &[("PatientID", "P1")]));
    assert!(m(
        &[("PatientBirthDate", "\"\"")],
        &[("PatientBirthDate", "")]
    ));
    assert!(!m(
        &[("PatientBirthDate", "\"\"")],
        &[("PatientBirthDate", "19700101")]
    ));
}

// ---- Specific Character Set ------------------------------------------------------------------

#[test]
fn latin1_query_matches_utf8_record_as_decoded_text() {
    let q = id(&[
        ("SpecificCharacterSet", "ISO_IR 100"),
        ("PatientName", "Müller*"),
    ]);
    let bytes = encode_identifier(&q, EXPLICIT).unwrap();
    // Latin-1 on the wire: ü is one byte 0xFC.
    assert!(bytes.windows(2).any(|w| w == b"M\xFC"));
    let decoded = decode_identifier(&bytes, EXPLICIT).unwrap();
    let stored_bytes = encode_identifier(
        &id(&[
            ("SpecificCharacterSet", "ISO_IR 192"),
            ("PatientName", "Müller^Jörg"),
        ]),
        EXPLICIT,
    )
    .unwrap();
    assert!(stored_bytes.windows(3).any(|w| w == b"M\xC3\xBC"));
    let stored = decode_identifier(&stored_bytes, EXPLICIT).unwrap();
    let fq = FindQuery::parse(decoded, InformationModel::ModalityWorklist).unwrap();
    assert!(fq.matches(&stored, &FindOptions::default()));
    // The response stays in the query's character set when it can carry the values...
    let r = fq.response(&stored, &FindOptions::default());
    assert_eq!(
        text(&r, tags::SPECIFIC_CHARACTER_SET).unwrap(),
        "ISO_IR 100"
    );
    let rb = encode_identifier(&r, EXPLICIT).unwrap();
    assert!(rb.windows(2).any(|w| w == b"M\xFC"));
    // ...and switches to UTF-8 when it cannot.
    let jp = id(&[
        ("SpecificCharacterSet", "ISO_IR 192"),
        ("PatientName", "山田^太郎"),
    ]);
    let fq = FindQuery::parse(
        id(&[("SpecificCharacterSet", "ISO_IR 100"), ("PatientName", "")]),
        InformationModel::ModalityWorklist,
    )
    .unwrap();
    let r = fq.response(&jp, &FindOptions::default());
    assert_eq!(
        text(&r, tags::SPECIFIC_CHARACTER_SET).unwrap(),
        "ISO_IR 192"
    );
    let back = decode_identifier(&encode_identifier(&r, BIG).unwrap(), BIG).unwrap();
    assert_eq!(text(&back, tags::PATIENT_NAME).unwrap(), "山田^太郎");
    // ASCII values and no character set in the query: none in the response.
    let fq =
        FindQuery::parse(id(&[("PatientID", "")]), InformationModel::ModalityWorklist).unwrap();
    let r = fq.response(&id(&[("PatientID", "P1")]), &FindOptions::default());
    assert!(r.get(tags::SPECIFIC_CHARACTER_SET).is_none());
}

#[test]
fn unsupported_character_set_is_refused() {
    let mut bytes = encode_identifier(
        &id(&[("SpecificCharacterSet", "ISO_IR 100"), ("PatientName", "X")]),
        EXPLICIT,
    )
    .unwrap();
    // Rewrite the value "ISO_IR 100" into "ISO_IR 999".
    let pos = bytes.windows(10).position(|w| w == b"ISO_IR 100").unwrap();
    bytes[pos + 7..pos + 10].copy_from_slice(b"999");
    let e = decode_identifier(&bytes, EXPLICIT).unwrap_err();
    assert_eq!(e.kind, QueryErrorKind::Unsupported);
    assert_eq!(e.tag, Some(tags::SPECIFIC_CHARACTER_SET));
    assert_eq!(e.status(), 0xC000);
    // ISO 2022 code extensions (several values): refused, not mis-decoded.
    let two = encode_identifier(
        &id(&[
            ("SpecificCharacterSet", "\\ISO 2022 IR 87"),
            ("PatientName", "X"),
        ]),
        EXPLICIT,
    )
    .unwrap();
    let e = decode_identifier(&two, EXPLICIT).unwrap_err();
    assert_eq!(
        (&e.kind, e.tag),
        (
            &QueryErrorKind::Unsupported,
            Some(tags::SPECIFIC_CHARACTER_SET)
        )
    );
    assert!(
        e.error_comment().contains("code extensions"),
        "{}",
        e.error_comment()
    );
    // A stored record with such a set is still indexed (its UIDs stay queryable).
    let rec = id(&[
        ("SpecificCharacterSet", "\\ISO 2022 IR 87"),
        ("StudyInstanceUID", "1.2"),
        ("SeriesInstanceUID", "1.2.1"),
        ("SOPInstanceUID", "1.2.1.1"),
    ]);
    let b = encode_identifier(&rec, EXPLICIT).unwrap();
    assert!(InstanceRecord::from_dataset_bytes(&b, EXPLICIT, "1.2.3", "1.2.1.1", "/x").is_ok());
}

// ---- identifiers ---------------------------------------------------------------------------

fn sample_identifier() -> Identifier {
    id(&[
        ("SpecificCharacterSet", "ISO_IR 192"),
        ("QueryRetrieveLevel", "STUDY"),
        ("PatientName", "Müller^Jörg"),
        ("PatientID", "P1\\P2"),
        ("StudyDate", "20240101-"),
        ("StudyInstanceUID", ""),
        ("NumberOfStudyRelatedInstances", ""),
        ("ScheduledProcedureStepSequence.Modality", "MR"),
        (
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
            "20240105",
        ),
        ("ReferencedStudySequence", ""),
    ])
}

#[test]
fn identifier_round_trips_in_three_transfer_syntaxes() {
    let orig = sample_identifier();
    let json = to_dicom_json(&orig).unwrap();
    for ts in [IMPLICIT, EXPLICIT, BIG] {
        let bytes = encode_identifier(&orig, ts).unwrap();
        let back = decode_identifier(&bytes, ts).unwrap();
        assert_eq!(to_dicom_json(&back).unwrap(), json, "{ts}");
        // Byte-stable: encoding the decoded form gives the same bytes.
        assert_eq!(encode_identifier(&back, ts).unwrap(), bytes, "{ts}");
    }
    // Big endian really is big endian: (0008,0005) starts 00 08 00 05.
    let be = encode_identifier(&orig, BIG).unwrap();
    assert_eq!(&be[..4], &[0, 8, 0, 5]);
}

#[test]
fn dicom_json_output() {
    let j = to_dicom_json(&id(&[
        ("PatientName", "Müller^Jörg"),
        ("StudyDate", "20240105"),
        ("ScheduledProcedureStepSequence.Modality", "MR"),
    ]))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    // PS3.18 F.2.2: PN as an object with Alphabetic; sequences as arrays of objects.
    assert_eq!(v["00100010"]["vr"], "PN");
    assert_eq!(v["00100010"]["Value"][0]["Alphabetic"], "Müller^Jörg");
    assert_eq!(v["00080020"]["Value"][0], "20240105");
    assert_eq!(v["00400100"]["Value"][0]["00080060"]["Value"][0], "MR");
    assert!(!j.contains('\n'));
}

#[test]
fn malformed_identifiers_are_errors_with_offsets() {
    let good = encode_identifier(&sample_identifier(), EXPLICIT).unwrap();
    // Every truncation is an error (0xC000, with an offset), never a panic.
    for n in 1..good.len() {
        let r = decode_identifier(&good[..n], EXPLICIT);
        if let Err(e) = r {
            assert_eq!(e.status(), 0xC000, "cut at {n}");
            assert!(e.offset.is_some(), "cut at {n}: {e}");
            assert!(e.error_comment().len() <= 64);
        }
    }
    // A value length beyond the end: 4 GiB - 2 in an explicit OB.
    let mut big = b"\x09\x00\x10\x00OB\0\0".to_vec();
    big.extend_from_slice(&0xFFFF_FFFEu32.to_le_bytes());
    let e = decode_identifier(&big, EXPLICIT).unwrap_err();
    assert_eq!((e.offset, e.tag), (Some(0), Some(Tag(0x0009, 0x0010))));
    assert!(e.to_string().contains("(0009,0010) at byte 0"), "{e}");
    // An item tag at top level, unknown VR, descending tags.
    let e = decode_identifier(b"\xFE\xFF\x00\xE0\x00\x00\x00\x00", EXPLICIT).unwrap_err();
    assert_eq!(e.tag, Some(Tag(0xFFFE, 0xE000)));
    let e = decode_identifier(b"\x10\x00\x10\x00ZZ\x00\x00", EXPLICIT).unwrap_err();
    assert_eq!(e.offset, Some(4));
    let e = decode_identifier(
        b"\x10\x00\x20\x00LO\x02\x00P1\x10\x00\x10\x00PN\x00\x00",
        EXPLICIT,
    )
    .unwrap_err();
    assert_eq!((e.offset, e.tag), (Some(10), Some(tags::PATIENT_NAME)));
    // Fuzz finding: a binary value whose length is not a multiple of its VR's size (implicit
    // VR, (0008,0428) is UV: 14 bytes) shifted the parser's view of the next header, which
    // then declared 560 MB and was allocated before the read failed. Refused up front now.
    let mut uv = b"\x08\x00\x28\x04\x0e\x00\x00\x00ISOzIR\x15\0I\xe0\0\0\0\0".to_vec();
    uv.extend_from_slice(b"\xfc\x22\x00\x22\x00\x00\x00\x00");
    let e = decode_identifier(&uv, IMPLICIT).unwrap_err();
    assert_eq!((e.offset, e.tag), (Some(0), Some(Tag(0x0008, 0x0428))));
    assert!(e.message.contains("multiple"), "{e}");
    let e = decode_identifier(b"\x28\x00\x10\x00US\x03\x00\x01\x02\x03", EXPLICIT).unwrap_err();
    assert_eq!(e.tag, Some(Tag(0x0028, 0x0010)));
    // Runaway nesting (implicit VR, undefined lengths).
    let mut deep = Vec::new();
    for _ in 0..40 {
        deep.extend_from_slice(b"\x40\x00\x00\x01\xFF\xFF\xFF\xFF\xFE\xFF\x00\xE0\xFF\xFF\xFF\xFF");
    }
    let e = decode_identifier(&deep, IMPLICIT).unwrap_err();
    assert!(e.message.contains("nested"), "{e}");
    // Unknown and deflated transfer syntaxes.
    assert_eq!(
        decode_identifier(&good, "1.2.3").unwrap_err().kind,
        QueryErrorKind::Unsupported
    );
    assert_eq!(
        decode_identifier(&good, "1.2.840.10008.1.2.1.99")
            .unwrap_err()
            .status(),
        0xC000
    );
    // Empty identifier decodes (and then lacks a level).
    let e = FindQuery::parse(
        decode_identifier(b"", EXPLICIT).unwrap(),
        InformationModel::StudyRoot,
    )
    .unwrap_err();
    assert_eq!(
        (e.status(), e.tag),
        (0xA900, Some(tags::QUERY_RETRIEVE_LEVEL))
    );
}

#[test]
fn levels_are_checked_against_the_model() {
    let parse = |lvl: &str, model| FindQuery::parse(id(&[("QueryRetrieveLevel", lvl)]), model);
    assert_eq!(
        parse("STUDY", InformationModel::StudyRoot).unwrap().level(),
        Some(Level::Study)
    );
    let e = parse("PATIENT", InformationModel::StudyRoot).unwrap_err();
    assert_eq!(e.status(), 0xA900);
    assert_eq!(
        e.error_comment(),
        "(0008,0052) no PATIENT level in this model"
    );
    assert!(parse("FRAME", InformationModel::PatientRoot).is_err());
    assert!(parse("PATIENT", InformationModel::PatientRoot).is_ok());
    assert_eq!(
        InformationModel::from_sop_class("1.2.840.10008.5.1.4.1.2.2.3\0"),
        Some(InformationModel::StudyRoot)
    );
    assert_eq!(
        InformationModel::from_sop_class("1.2.840.10008.5.1.4.31"),
        Some(InformationModel::ModalityWorklist)
    );
    assert_eq!(InformationModel::from_sop_class("1.2.840.10008.1.1"), None);
    let long = QueryError {
        kind: QueryErrorKind::Malformed,
        tag: None,
        offset: Some(1),
        message: "ä\\".repeat(80),
    };
    let c = long.error_comment();
    assert!(c.len() == 64 && c.ends_with("...") && c.is_ascii() && !c.contains('\\'));
}

// ---- the index -----------------------------------------------------------------------------

/// Two patients; P1 has studies S1 (CT+MR series) and S2 (CT); P2 has S3 (US). Two
/// instances per series.
fn index() -> QueryIndex {
    let mut ix = QueryIndex::new();
    let studies = [
        (
            "Müller^Jörg",
            "P1",
            "S1",
            "20240105",
            "101500",
            &["CT", "MR"][..],
        ),
        ("Müller^Jörg", "P1", "S2", "20240210", "080000", &["CT"][..]),
        ("山田^太郎", "P2", "S3", "20231231", "235900", &["US"][..]),
    ];
    for (name, pid, st, date, time, mods) in studies {
        for (se, modality) in mods.iter().enumerate() {
            for i in 0..2 {
                let sop = format!("{st}.{se}.{i}");
                let series = format!("{st}.{se}");
                let rec = id(&[
                    ("PatientName", name),
                    ("PatientID", pid),
                    ("PatientBirthDate", "19700101"),
                    ("StudyInstanceUID", st),
                    ("StudyDate", date),
                    ("StudyTime", time),
                    ("AccessionNumber", &format!("A-{st}")),
                    ("SeriesInstanceUID", &series),
                    ("Modality", modality),
                    ("SeriesNumber", &(se + 1).to_string()),
                    ("SOPInstanceUID", &sop),
                    ("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2"),
                    ("InstanceNumber", &(i + 1).to_string()),
                ]);
                ix.insert(
                    InstanceRecord::from_object(rec, EXPLICIT, format!("/d/{sop}.dcm")).unwrap(),
                )
                .unwrap();
            }
        }
    }
    ix
}

fn find(ix: &QueryIndex, model: InformationModel, pairs: &[(&str, &str)]) -> Vec<Identifier> {
    let q = FindQuery::parse(id(pairs), model).unwrap();
    ix.find(&q, &FindOptions::default()).collect()
}

fn col(r: &[Identifier], t: Tag) -> Vec<String> {
    r.iter().map(|o| text(o, t).unwrap_or_default()).collect()
}

#[test]
fn patient_root_every_level() {
    let ix = index();
    assert_eq!(ix.len(), 8);
    let pr = InformationModel::PatientRoot;
    let r = find(
        &ix,
        pr,
        &[
            ("QueryRetrieveLevel", "PATIENT"),
            ("PatientName", "müller*"),
            ("PatientID", ""),
            ("NumberOfPatientRelatedStudies", ""),
            ("NumberOfPatientRelatedInstances", ""),
        ],
    );
    assert_eq!(col(&r, tags::PATIENT_ID), ["P1"]);
    assert_eq!(col(&r, tags::NUMBER_OF_PATIENT_RELATED_STUDIES), ["2"]);
    assert_eq!(col(&r, tags::NUMBER_OF_PATIENT_RELATED_INSTANCES), ["6"]);
    assert_eq!(col(&r, tags::QUERY_RETRIEVE_LEVEL), ["PATIENT"]);
    assert_eq!(col(&r, tags::SPECIFIC_CHARACTER_SET), ["ISO_IR 192"]);
    // A study-level key at PATIENT level is not matched, and comes back zero-length.
    let r = find(
        &ix,
        pr,
        &[("QueryRetrieveLevel", "PATIENT"), ("StudyDate", "19000101")],
    );
    assert_eq!(r.len(), 2);
    assert_eq!(col(&r, tags::STUDY_DATE), ["", ""]);
    // STUDY level under a patient (the higher level's unique key constrains).
    let r = find(
        &ix,
        pr,
        &[
            ("QueryRetrieveLevel", "STUDY"),
            ("PatientID", "P1"),
            ("StudyInstanceUID", ""),
            ("ModalitiesInStudy", ""),
        ],
    );
    assert_eq!(col(&r, tags::STUDY_INSTANCE_UID), ["S1", "S2"]);
    assert_eq!(
        r[0].get(tags::MODALITIES_IN_STUDY)
            .unwrap()
            .to_multi_str()
            .unwrap()
            .len(),
        2
    );
    // SERIES and IMAGE: unique keys of the level and above are in every response.
    let r = find(
        &ix,
        pr,
        &[
            ("QueryRetrieveLevel", "SERIES"),
            ("PatientID", "P1"),
            ("StudyInstanceUID", "S1"),
            ("Modality", "MR"),
        ],
    );
    assert_eq!(col(&r, tags::SERIES_INSTANCE_UID), ["S1.1"]);
    assert_eq!(col(&r, tags::PATIENT_ID), ["P1"]);
    assert_eq!(col(&r, tags::STUDY_INSTANCE_UID), ["S1"]);
    let r = find(
        &ix,
        pr,
        &[
            ("QueryRetrieveLevel", "IMAGE"),
            ("PatientID", "P1"),
            ("StudyInstanceUID", "S1"),
            ("SeriesInstanceUID", "S1.0"),
            ("InstanceNumber", "2"),
        ],
    );
    assert_eq!(col(&r, tags::SOP_INSTANCE_UID), ["S1.0.1"]);
    assert_eq!(col(&r, tags::SERIES_INSTANCE_UID), ["S1.0"]);
}

#[test]
fn study_root_every_level() {
    let ix = index();
    let sr = InformationModel::StudyRoot;
    // Patient attributes are study-level keys in Study Root; wild card + date range.
    let r = find(
        &ix,
        sr,
        &[
            ("QueryRetrieveLevel", "STUDY"),
            ("PatientName", "*jörg"),
            ("StudyDate", "20240101-20241231"),
            ("NumberOfStudyRelatedSeries", ""),
        ],
    );
    assert_eq!(col(&r, tags::STUDY_INSTANCE_UID), ["S1", "S2"]);
    assert_eq!(col(&r, tags::NUMBER_OF_STUDY_RELATED_SERIES), ["2", "1"]);
    assert!(
        r[0].get(tags::PATIENT_ID).is_none(),
        "no Patient ID unique key in Study Root"
    );
    // ModalitiesInStudy matches when any modality of the study does.
    let r = find(
        &ix,
        sr,
        &[("QueryRetrieveLevel", "STUDY"), ("ModalitiesInStudy", "MR")],
    );
    assert_eq!(col(&r, tags::STUDY_INSTANCE_UID), ["S1"]);
    // UID list at the level.
    let r = find(
        &ix,
        sr,
        &[
            ("QueryRetrieveLevel", "STUDY"),
            ("StudyInstanceUID", "S3\\S1\\S9"),
        ],
    );
    assert_eq!(col(&r, tags::STUDY_INSTANCE_UID), ["S1", "S3"]);
    let r = find(
        &ix,
        sr,
        &[
            ("QueryRetrieveLevel", "SERIES"),
            ("Modality", "CT"),
            ("NumberOfSeriesRelatedInstances", ""),
        ],
    );
    assert_eq!(col(&r, tags::SERIES_INSTANCE_UID), ["S1.0", "S2.0"]);
    assert_eq!(
        col(&r, tags::NUMBER_OF_SERIES_RELATED_INSTANCES),
        ["2", "2"]
    );
    let r = find(
        &ix,
        sr,
        &[("QueryRetrieveLevel", "IMAGE"), ("StudyInstanceUID", "S3")],
    );
    assert_eq!(col(&r, tags::SOP_INSTANCE_UID), ["S3.0.0", "S3.0.1"]);
    let r = find(
        &ix,
        sr,
        &[
            ("QueryRetrieveLevel", "IMAGE"),
            ("SOPInstanceUID", "S2.0.1"),
        ],
    );
    assert_eq!(col(&r, tags::STUDY_INSTANCE_UID), ["S2"]);
    // Time range at study level.
    let r = find(
        &ix,
        sr,
        &[("QueryRetrieveLevel", "STUDY"), ("StudyTime", "2300-")],
    );
    assert_eq!(col(&r, tags::STUDY_INSTANCE_UID), ["S3"]);
}

#[test]
fn limit_cursor_and_updates() {
    let mut ix = index();
    let q = FindQuery::parse(
        id(&[("QueryRetrieveLevel", "IMAGE"), ("SOPInstanceUID", "")]),
        InformationModel::StudyRoot,
    )
    .unwrap();
    let opts = FindOptions {
        max_matches: Some(3),
        ..FindOptions::default()
    };
    let mut it = ix.find(&q, &opts);
    assert_eq!(it.by_ref().count(), 3);
    assert!(it.truncated());
    let mut exact = ix.find(
        &q,
        &FindOptions {
            max_matches: Some(8),
            ..FindOptions::default()
        },
    );
    assert_eq!(exact.by_ref().count(), 8);
    assert!(!exact.truncated());
    // A cursor survives inserts and removals between its steps.
    let mut c = ix.find_cursor(q.clone(), FindOptions::default());
    let first = c.next_match(&ix).unwrap();
    assert_eq!(text(&first, tags::SOP_INSTANCE_UID).unwrap(), "S1.0.0");
    assert!(ix.remove("S1.0.1"));
    assert!(!ix.remove("S1.0.1"));
    let rec = id(&[
        ("StudyInstanceUID", "S4"),
        ("SeriesInstanceUID", "S4.0"),
        ("SOPInstanceUID", "S4.0.0"),
    ]);
    ix.insert(InstanceRecord::from_object(rec, EXPLICIT, "/d/new").unwrap())
        .unwrap();
    let mut rest = Vec::new();
    while let Some(r) = c.next_match(&ix) {
        rest.push(text(&r, tags::SOP_INSTANCE_UID).unwrap());
    }
    assert_eq!(rest.len(), 7);
    assert!(!rest.contains(&"S1.0.1".to_owned()) && rest.contains(&"S4.0.0".to_owned()));
    assert_eq!(c.emitted(), 8);
    // Removing a whole study's instances removes the study and, last, the patient.
    for s in ["S3.0.0", "S3.0.1"] {
        assert!(ix.remove(s));
    }
    let r = find(
        &ix,
        InformationModel::PatientRoot,
        &[("QueryRetrieveLevel", "PATIENT"), ("PatientID", "")],
    );
    assert_eq!(col(&r, tags::PATIENT_ID), ["P1", ""]);
    // Re-inserting a UID in the same series replaces its record in place.
    let again = id(&[
        ("StudyInstanceUID", "S1"),
        ("SeriesInstanceUID", "S1.0"),
        ("SOPInstanceUID", "S1.0.0"),
        ("InstanceNumber", "99"),
    ]);
    ix.insert(InstanceRecord::from_object(again, EXPLICIT, "/d/again").unwrap())
        .unwrap();
    let r = find(
        &ix,
        InformationModel::StudyRoot,
        &[("QueryRetrieveLevel", "IMAGE"), ("InstanceNumber", "99")],
    );
    assert_eq!(col(&r, tags::SOP_INSTANCE_UID), ["S1.0.0"]);
    let items = ix
        .retrieve(
            &id(&[
                ("QueryRetrieveLevel", "IMAGE"),
                ("SOPInstanceUID", "S1.0.0"),
            ]),
            InformationModel::StudyRoot,
        )
        .unwrap();
    assert_eq!(items[0].path, std::path::PathBuf::from("/d/again"));
    // A record without the unique keys is refused and changes nothing.
    let mut bad = InstanceRecord::from_object(
        id(&[
            ("StudyInstanceUID", "S1"),
            ("SeriesInstanceUID", "S1.0"),
            ("SOPInstanceUID", "S1.0.0"),
        ]),
        EXPLICIT,
        "/d/bad",
    )
    .unwrap();
    bad.attributes.remove_element(tags::SERIES_INSTANCE_UID);
    assert_eq!(
        ix.insert(bad).unwrap_err().tag,
        Some(tags::SERIES_INSTANCE_UID)
    );
    assert_eq!(ix.len(), 6);
    let still = id(&[
        ("QueryRetrieveLevel", "IMAGE"),
        ("SOPInstanceUID", "S1.0.0"),
    ]);
    assert_eq!(
        ix.retrieve(&still, InformationModel::StudyRoot)
            .unwrap()
            .len(),
        1
    );
    // Re-inserting a UID replaces it (moved to another series here).
    let moved = id(&[
        ("StudyInstanceUID", "S4"),
        ("SeriesInstanceUID", "S4.1"),
        ("SOPInstanceUID", "S4.0.0"),
    ]);
    ix.insert(InstanceRecord::from_object(moved, EXPLICIT, "/d/moved").unwrap())
        .unwrap();
    let r = find(
        &ix,
        InformationModel::StudyRoot,
        &[("QueryRetrieveLevel", "SERIES"), ("StudyInstanceUID", "S4")],
    );
    assert_eq!(col(&r, tags::SERIES_INSTANCE_UID), ["S4.1"]);
    // A record without unique keys is refused.
    let e = InstanceRecord::from_object(id(&[("PatientID", "X")]), EXPLICIT, "/x").unwrap_err();
    assert_eq!(e.tag, Some(tags::STUDY_INSTANCE_UID));
}

#[test]
fn retrieve_selects_instances_by_unique_keys() {
    let ix = index();
    let sr = InformationModel::StudyRoot;
    let pr = InformationModel::PatientRoot;
    let uids = |model, pairs: &[(&str, &str)]| -> Vec<String> {
        ix.retrieve(&id(pairs), model)
            .unwrap()
            .into_iter()
            .map(|r| r.sop_instance_uid)
            .collect()
    };
    assert_eq!(
        uids(
            pr,
            &[("QueryRetrieveLevel", "PATIENT"), ("PatientID", "P2")]
        ),
        ["S3.0.0", "S3.0.1"]
    );
    assert_eq!(
        uids(
            sr,
            &[
                ("QueryRetrieveLevel", "STUDY"),
                ("StudyInstanceUID", "S2\\S3")
            ]
        )
        .len(),
        4
    );
    assert_eq!(
        uids(
            sr,
            &[
                ("QueryRetrieveLevel", "SERIES"),
                ("StudyInstanceUID", "S1"),
                ("SeriesInstanceUID", "S1.1")
            ]
        ),
        ["S1.1.0", "S1.1.1"]
    );
    // A higher unique key that disagrees selects nothing.
    assert!(
        uids(
            sr,
            &[
                ("QueryRetrieveLevel", "SERIES"),
                ("StudyInstanceUID", "S2"),
                ("SeriesInstanceUID", "S1.1")
            ]
        )
        .is_empty()
    );
    let items = ix
        .retrieve(
            &id(&[
                ("QueryRetrieveLevel", "IMAGE"),
                ("SOPInstanceUID", "S1.0.1\\S3.0.0"),
            ]),
            sr,
        )
        .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].path, std::path::PathBuf::from("/d/S1.0.1.dcm"));
    assert_eq!(items[0].transfer_syntax_uid, EXPLICIT);
    assert_eq!(items[0].sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
    // Non-unique keys are ignored.
    assert_eq!(
        uids(
            sr,
            &[
                ("QueryRetrieveLevel", "STUDY"),
                ("StudyInstanceUID", "S3"),
                ("PatientName", "nobody")
            ]
        )
        .len(),
        2
    );
    // Errors: no unique key at the level, a wild card, a level the model lacks.
    let e = ix
        .retrieve(
            &id(&[("QueryRetrieveLevel", "SERIES"), ("StudyInstanceUID", "S1")]),
            sr,
        )
        .unwrap_err();
    assert_eq!(
        (e.status(), e.tag),
        (0xA900, Some(tags::SERIES_INSTANCE_UID))
    );
    let e = ix
        .retrieve(
            &id(&[("QueryRetrieveLevel", "PATIENT"), ("PatientID", "P*")]),
            pr,
        )
        .unwrap_err();
    assert_eq!(e.status(), 0xA900);
    assert!(
        ix.retrieve(
            &id(&[("QueryRetrieveLevel", "PATIENT"), ("PatientID", "P1")]),
            sr
        )
        .is_err()
    );
}

// ---- files ---------------------------------------------------------------------------------

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("xenrad-query-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_part10(path: &std::path::Path, obj: Identifier, ts: &str) {
    use dicom_object::meta::FileMetaTableBuilder;
    let sop_class =
        text(&obj, tags::SOP_CLASS_UID).unwrap_or_else(|| "1.2.840.10008.5.1.4.31".into());
    let sop = text(&obj, tags::SOP_INSTANCE_UID).unwrap_or_else(|| "1.2.3.999".into());
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(ts)
                .media_storage_sop_class_uid(sop_class)
                .media_storage_sop_instance_uid(sop),
        )
        .unwrap();
    file.write_to_file(path).unwrap();
}

#[test]
fn index_a_directory_and_header_bytes() {
    let dir = tempdir("index");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::create_dir_all(dir.join(".xenrad-journal")).unwrap();
    let rec = |sop: &str, cs: &str, name: &str| {
        id(&[
            ("SpecificCharacterSet", cs),
            ("PatientName", name),
            ("PatientID", "P1"),
            ("StudyInstanceUID", "1.2.3"),
            ("SeriesInstanceUID", "1.2.3.4"),
            ("SOPInstanceUID", sop),
            ("SOPClassUID", "1.2.840.10008.5.1.4.1.1.7"),
            ("InstanceNumber", "7"),
        ])
    };
    write_part10(
        &dir.join("a.dcm"),
        rec("1.2.3.4.1", "ISO_IR 100", "Müller^Jörg"),
        EXPLICIT,
    );
    write_part10(
        &dir.join("sub/b"),
        rec("1.2.3.4.2", "ISO_IR 192", "Müller^Jörg"),
        IMPLICIT,
    );
    write_part10(
        &dir.join(".xenrad-journal/c.dcm"),
        rec("1.2.3.4.3", "", "X"),
        EXPLICIT,
    );
    std::fs::write(dir.join("notes.txt"), "not dicom").unwrap();
    write_part10(
        &dir.join("nouid.dcm"),
        id(&[("PatientID", "P1"), ("SOPInstanceUID", "1.9")]),
        EXPLICIT,
    );
    let mut ix = QueryIndex::new();
    let rep = ix.index_dir(&dir);
    assert_eq!(
        (rep.indexed, rep.skipped, rep.failed.len()),
        (2, 1, 1),
        "{:?}",
        rep.failed
    );
    assert!(rep.failed[0].0.ends_with("nouid.dcm"));
    // Latin-1 and UTF-8 files hold the same decoded name.
    let r = find(
        &ix,
        InformationModel::StudyRoot,
        &[
            ("QueryRetrieveLevel", "IMAGE"),
            ("SpecificCharacterSet", "ISO_IR 100"),
            ("PatientName", "Müller^Jörg"),
            ("SOPInstanceUID", ""),
        ],
    );
    assert_eq!(col(&r, tags::SOP_INSTANCE_UID), ["1.2.3.4.1", "1.2.3.4.2"]);
    let items = ix
        .retrieve(
            &id(&[
                ("QueryRetrieveLevel", "STUDY"),
                ("StudyInstanceUID", "1.2.3"),
            ]),
            InformationModel::StudyRoot,
        )
        .unwrap();
    let mut ts: Vec<_> = items
        .iter()
        .map(|i| i.transfer_syntax_uid.as_str())
        .collect();
    ts.sort_unstable();
    assert_eq!(ts, [IMPLICIT, EXPLICIT]);
    assert!(items.iter().any(|i| i.path.ends_with("sub/b")));

    // From the first bytes of a data set (what the SCP peeked), cut inside an element.
    let full = encode_identifier(&rec("1.2.3.4.9", "ISO_IR 192", "山田^太郎"), EXPLICIT).unwrap();
    let cut = &full[..full.len() - 3];
    let r = InstanceRecord::from_dataset_bytes(
        cut,
        EXPLICIT,
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.3.4.9",
        "/in/x.dcm",
    );
    // The last element (Instance Number) was cut off, everything before it is kept.
    let r = r.unwrap();
    assert!(r.attributes.get(tags::INSTANCE_NUMBER).is_none());
    assert_eq!(
        text(&r.attributes, tags::SERIES_INSTANCE_UID).unwrap(),
        "1.2.3.4"
    );
    assert_eq!(r.sop_instance_uid, "1.2.3.4.9");
    assert_eq!(
        text(&r.attributes, tags::PATIENT_NAME).unwrap(),
        "山田^太郎"
    );
    ix.insert(r).unwrap();
    assert_eq!(ix.len(), 3);
    // A JPEG-compressed instance: the data set is Explicit VR LE up to its encapsulated Pixel
    // Data (undefined length, fragments), which is left out.
    let mut jpeg = encode_identifier(&rec("1.2.3.4.10", "", "Doe^John"), EXPLICIT).unwrap();
    jpeg.extend_from_slice(b"\xe0\x7f\x10\x00OB\0\0\xff\xff\xff\xff");
    jpeg.extend_from_slice(
        b"\xfe\xff\x00\xe0\x00\x00\x00\x00\xfe\xff\x00\xe0\x04\x00\x00\x00\xff\xd8\xff\xd9",
    );
    jpeg.extend_from_slice(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00");
    let r = InstanceRecord::from_dataset_bytes(
        &jpeg,
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.5.1.4.1.1.7",
        "1.2.3.4.10",
        "/in/j.dcm",
    )
    .unwrap();
    assert!(r.attributes.get(tags::PIXEL_DATA).is_none());
    assert_eq!(r.transfer_syntax_uid, "1.2.840.10008.1.2.4.50");
    assert_eq!(text(&r.attributes, tags::INSTANCE_NUMBER).unwrap(), "7");
    // The whole thing also decodes as a data set (the walker follows the fragments).
    assert!(decode_identifier(&jpeg, EXPLICIT).is_ok());
    // From the head an SCP kept: a head that reaches Pixel Data, or is the whole data set,
    // is the header; one cut before either is not (the caller reads the file instead).
    let jpeg_ts = "1.2.840.10008.1.2.4.50";
    let class = "1.2.840.10008.5.1.4.1.1.7";
    let head = &jpeg[..jpeg.len() - 20];
    let r = InstanceRecord::from_dataset_head(
        head,
        jpeg.len() as u64,
        jpeg_ts,
        class,
        "1.2.3.4.10",
        "/j",
    )
    .unwrap()
    .expect("the head reaches Pixel Data");
    assert_eq!(text(&r.attributes, tags::INSTANCE_NUMBER).unwrap(), "7");
    let r = InstanceRecord::from_dataset_head(
        &full,
        full.len() as u64,
        EXPLICIT,
        class,
        "1.2.3.4.9",
        "/x",
    )
    .unwrap()
    .expect("the whole data set");
    assert_eq!(text(&r.attributes, tags::INSTANCE_NUMBER).unwrap(), "7");
    assert!(
        InstanceRecord::from_dataset_head(
            cut,
            full.len() as u64,
            EXPLICIT,
            class,
            "1.2.3.4.9",
            "/x"
        )
        .unwrap()
        .is_none()
    );
    assert!(
        InstanceRecord::from_dataset_head(
            &full,
            full.len() as u64 + 100,
            EXPLICIT,
            class,
            "1.2.3.4.9",
            "/x"
        )
        .unwrap()
        .is_none()
    );
    assert!(
        InstanceRecord::from_dataset_head(
            &full,
            full.len() as u64,
            "1.2.840.10008.1.2.1.99",
            class,
            "1.2.3.4.9",
            "/x"
        )
        .unwrap()
        .is_none()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn worklist_from_json_and_part10_files() {
    let dir = tempdir("worklist");
    // PS3.18 F.2: one file with an array of two items, one with a single object.
    std::fs::write(
        dir.join("two.json"),
        r#"[
 {"00080005":{"vr":"CS","Value":["ISO_IR 192"]},
  "00100010":{"vr":"PN","Value":[{"Alphabetic":"Müller^Jörg"}]},
  "00100020":{"vr":"LO","Value":["P1"]},
  "00400100":{"vr":"SQ","Value":[{"00080060":{"vr":"CS","Value":["MR"]},
     "00400001":{"vr":"AE","Value":["MR1"]},"00400002":{"vr":"DA","Value":["20240105"]}}]}},
 {"00100010":{"vr":"PN","Value":[{"Alphabetic":"Doe^Jane"}]},
  "00100020":{"vr":"LO","Value":["P2"]},
  "00400100":{"vr":"SQ","Value":[{"00080060":{"vr":"CS","Value":["CT"]},
     "00400001":{"vr":"AE","Value":["CT1"]},"00400002":{"vr":"DA","Value":["20240106"]}}]}}
]"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("one.json"),
        r#"{"00100010":{"vr":"PN","Value":[{"Alphabetic":"Roe^Richard"}]},"00100020":{"vr":"LO","Value":["P3"]}}"#,
    )
    .unwrap();
    write_part10(
        &dir.join("item.wl"),
        id(&[
            ("SpecificCharacterSet", "ISO_IR 100"),
            ("PatientName", "Ødegård^Åse"),
            ("PatientID", "P4"),
            ("ScheduledProcedureStepSequence.Modality", "MR"),
            (
                "ScheduledProcedureStepSequence.ScheduledStationAETitle",
                "MR2",
            ),
            (
                "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
                "20240107",
            ),
        ]),
        EXPLICIT,
    );
    // A bare data set, as dump2dcm writes without +F.
    std::fs::write(
        dir.join("bare.dcm"),
        encode_identifier(
            &id(&[("PatientName", "Bare^Item"), ("PatientID", "P5")]),
            EXPLICIT,
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("broken.json"), "{not json").unwrap();
    std::fs::write(dir.join("ignored.txt"), "x").unwrap();
    let (wl, failed) = Worklist::load_dir(&dir).unwrap();
    assert_eq!(wl.len(), 5);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].0.ends_with("broken.json"));
    let q = FindQuery::parse(
        id(&[
            ("SpecificCharacterSet", "ISO_IR 192"),
            ("PatientName", ""),
            ("PatientID", ""),
            ("ScheduledProcedureStepSequence.Modality", "MR"),
            (
                "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
                "20240101-20240131",
            ),
            ("ScheduledProcedureStepSequence.ScheduledStationAETitle", ""),
        ]),
        InformationModel::ModalityWorklist,
    )
    .unwrap();
    let r: Vec<_> = wl.find(&q, &FindOptions::default()).collect();
    let mut names = col(&r, tags::PATIENT_NAME);
    names.sort();
    assert_eq!(names, ["Müller^Jörg", "Ødegård^Åse"]);
    for resp in &r {
        assert!(resp.get(tags::QUERY_RETRIEVE_LEVEL).is_none());
        let back =
            decode_identifier(&encode_identifier(resp, IMPLICIT).unwrap(), IMPLICIT).unwrap();
        assert_eq!(to_dicom_json(&back).unwrap(), to_dicom_json(resp).unwrap());
    }
    // Limit.
    let q = FindQuery::parse(id(&[("PatientID", "")]), InformationModel::ModalityWorklist).unwrap();
    let mut it = wl.find(
        &q,
        &FindOptions {
            max_matches: Some(2),
            ..FindOptions::default()
        },
    );
    assert_eq!(it.by_ref().count(), 2);
    assert!(it.truncated());
    // A Q/R query matches nothing in a worklist.
    let q = FindQuery::parse(
        id(&[("QueryRetrieveLevel", "STUDY")]),
        InformationModel::StudyRoot,
    )
    .unwrap();
    assert_eq!(wl.find(&q, &FindOptions::default()).count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
