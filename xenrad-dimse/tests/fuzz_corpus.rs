//! Replays every committed fuzz seed through the same functions the fuzz targets call.
#![cfg(feature = "fuzzing")]
#![allow(clippy::many_single_char_names)]

fn replay(target: &str, f: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        f(&std::fs::read(&p).unwrap());
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn dimse_pdu_corpus() {
    replay("dimse_pdu", xenrad_dimse::fuzzing::pdu);
}

#[test]
fn dimse_command_corpus() {
    replay("dimse_command", xenrad_dimse::fuzzing::command);
}

#[cfg(target_os = "linux")]
#[test]
fn dimse_journal_corpus() {
    replay("dimse_journal", xenrad_dimse::fuzzing::journal);
}

/// The journal seeds: lane images that recovery reads back as written.
#[cfg(target_os = "linux")]
#[test]
fn journal_seeds_scan_as_written() {
    use xenrad_dimse::store::journal::{lane_image, scan_lane_image};
    let big = vec![7u8; 5000];
    let img = lane_image(32768, &[("1.2.3.dcm", b"DICM"), ("1.2.4.dcm", &big)]);
    assert_eq!(
        scan_lane_image(&img),
        vec![
            ("1.2.3.dcm".to_string(), 4),
            ("1.2.4.dcm".to_string(), 5000)
        ]
    );
    // A flipped payload byte ends the scan at that record.
    let mut torn = img.clone();
    torn[4096 + 8192 + 4096 + 10] ^= 1;
    assert_eq!(scan_lane_image(&torn), vec![("1.2.3.dcm".to_string(), 4)]);
    // The seeds committed under fuzz/corpus/dimse_journal are these images.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dimse_journal");
    if std::env::var_os("XENRAD_WRITE_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("two_records"), &img).unwrap();
        std::fs::write(dir.join("torn_second"), &torn).unwrap();
        std::fs::write(dir.join("empty_ring"), lane_image(8192, &[])).unwrap();
    }
}

#[test]
fn dimse_assoc_corpus() {
    replay("dimse_assoc", xenrad_dimse::fuzzing::assoc);
}

/// Regenerates the seed files (run with `-- --ignored` after format changes).
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_seeds() {
    use xenrad_dimse::dimse::{Command, field};
    use xenrad_dimse::pdu::{
        AssociateRq, PresentationContextRq, RoleSelection, UserIdentityRq, UserInformation, encode,
    };
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let w = |t: &str, name: &str, b: &[u8]| std::fs::write(base.join(t).join(name), b).unwrap();
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: "XENRAD",
        calling_ae: "CT1",
        application_context: "1.2.840.10008.3.1.1.1",
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: "1.2.840.10008.1.1",
            transfer_syntaxes: vec!["1.2.840.10008.1.2"],
        }],
        user: UserInformation {
            max_pdu_length: Some(16384),
            implementation_class_uid: Some("1.2.3"),
            implementation_version_name: Some("V1"),
            async_ops_window: Some((2, 2)),
            role_selections: vec![RoleSelection {
                sop_class_uid: "1.2.840.10008.1.1",
                scu_role: true,
                scp_role: false,
            }],
            user_identity_rq: Some(UserIdentityRq {
                identity_type: 2,
                positive_response_requested: true,
                primary: b"u",
                secondary: b"p",
            }),
            unknown: vec![(0x7F, b"x")],
            ..UserInformation::default()
        },
    };
    let mut b = Vec::new();
    encode::associate_rq(&mut b, &rq);
    w("dimse_pdu", "associate_rq", &b);
    let mut ac = Vec::new();
    let policy = xenrad_dimse::assoc::AcceptorPolicy::default();
    let (a, _) = policy.negotiate(&rq, None).unwrap();
    encode::associate_ac(&mut ac, &a);
    w("dimse_pdu", "associate_ac", &ac);
    let echo = Command {
        field: field::C_ECHO_RQ,
        message_id: Some(1),
        affected_sop_class: Some("1.2.840.10008.1.1"),
        ..Command::default()
    }
    .encode();
    let mut p = Vec::new();
    encode::pdata_fragments(&mut p, 1, true, &echo, 16);
    w("dimse_pdu", "pdata_fragmented_echo", &p);
    let mut s = Vec::new();
    encode::associate_rq(&mut s, &rq);
    encode::pdata_fragments(&mut s, 1, true, &echo, 0);
    encode::release_rq(&mut s);
    encode::release_rp(&mut s);
    encode::abort(&mut s, 2, 6);
    w("dimse_pdu", "stream", &s);
    std::fs::create_dir_all(base.join("dimse_assoc")).unwrap();
    // First byte 0x01 doubles as the chunk size selector (2-byte reads).
    w("dimse_assoc", "echo_session", &s);
    let mut one = Vec::new();
    encode::associate_rq(&mut one, &rq);
    encode::pdata_fragments(&mut one, 1, true, &echo, 7);
    encode::pdata_fragments(
        &mut one,
        1,
        false,
        b"\x08\x00\x18\x00\x04\x00\x00\x001.2\0",
        5,
    );
    encode::abort(&mut one, 0, 0);
    w("dimse_assoc", "fragmented_then_abort", &one);
    let mut big = Vec::new();
    encode::associate_rq(&mut big, &rq);
    big.extend_from_slice(&[4, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
    w("dimse_assoc", "oversized_pdata", &big);
    let mut rj = Vec::new();
    encode::associate_rj(
        &mut rj,
        xenrad_dimse::pdu::AssociateRj {
            result: 1,
            source: 1,
            reason: 7,
        },
    );
    w("dimse_pdu", "associate_rj", &rj);
    w(
        "dimse_pdu",
        "huge_length",
        &[4, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0],
    );
    w("dimse_command", "echo_rq", &echo);
    let store = Command {
        field: field::C_STORE_RQ,
        message_id: Some(7),
        affected_sop_class: Some("1.2.840.10008.5.1.4.1.1.2"),
        affected_sop_instance: Some("1.2.3.4.5.6"),
        priority: Some(0),
        has_dataset: true,
        move_originator_ae: Some("MOVER"),
        move_originator_id: Some(3),
        ..Command::default()
    };
    w("dimse_command", "store_rq", &store.encode());
    let rsp = store.response(0xA700);
    let mut r = rsp.clone();
    r.error_comment = Some("disk full");
    w("dimse_command", "store_rsp", &r.encode());
    let nset = Command {
        field: field::N_SET_RQ,
        message_id: Some(2),
        requested_sop_class: Some("1.2.840.10008.3.1.2.3.3"),
        requested_sop_instance: Some("1.2.9"),
        has_dataset: true,
        ..Command::default()
    };
    w("dimse_command", "n_set_rq", &nset.encode());
    let mut bad = store.encode();
    bad[8] ^= 0x40;
    w("dimse_command", "bad_group_length", &bad);
}

#[cfg(feature = "qr")]
#[test]
fn dimse_query_corpus() {
    replay("dimse_query", xenrad_dimse::fuzzing::query);
}

/// The `dimse_query` seeds: a selector byte (transfer syntax = (b & 3) % 3, model = (b >> 2 & 3) % 3,
/// 0x10 combined date-time, 0x20 PN case-insensitive) then an identifier in that syntax.
/// Every seed decodes, and a valid query finds something in the fixture.
#[cfg(feature = "qr")]
#[test]
fn query_seeds() {
    use xenrad_dimse::query::{
        FindOptions, FindQuery, InformationModel, decode_identifier, encode_identifier,
        identifier_from_pairs,
    };
    const TS: [&str; 3] = [
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
    ];
    type Seed<'a> = (&'a str, u8, Vec<(&'a str, &'a str)>);
    let seeds: Vec<Seed> = vec![
        (
            "study_root_study_wildcard_range",
            0x20 + 4 + 1,
            vec![
                ("SpecificCharacterSet", "ISO_IR 192"),
                ("QueryRetrieveLevel", "STUDY"),
                ("PatientName", "müller*"),
                ("StudyDate", "20240101-20240131"),
                ("StudyInstanceUID", ""),
                ("ModalitiesInStudy", ""),
            ],
        ),
        (
            "patient_root_patient_latin1",
            0x20,
            vec![
                ("SpecificCharacterSet", "ISO_IR 100"),
                ("QueryRetrieveLevel", "PATIENT"),
                ("PatientName", "M?ller^*"),
                ("PatientID", ""),
                ("NumberOfPatientRelatedStudies", ""),
            ],
        ),
        (
            "patient_root_image_uid_list_be",
            2,
            vec![
                ("QueryRetrieveLevel", "IMAGE"),
                ("PatientID", "P1"),
                ("StudyInstanceUID", "1.2.826.0.1.0.0"),
                ("SeriesInstanceUID", "1.2.826.0.1.0.0.0\\1.2.826.0.1.0.0.1"),
                ("SOPInstanceUID", ""),
                ("InstanceNumber", ""),
            ],
        ),
        (
            "study_root_series_combined_datetime",
            0x10 + 4 + 2,
            vec![
                ("QueryRetrieveLevel", "SERIES"),
                ("StudyInstanceUID", "1.2.826.0.1.1.0"),
                ("StudyDate", "20240102-20240104"),
                ("StudyTime", "1000-"),
                ("Modality", "MR"),
                ("SeriesInstanceUID", ""),
            ],
        ),
        (
            "worklist_sequence_implicit",
            8,
            vec![
                ("SpecificCharacterSet", "ISO_IR 192"),
                ("PatientName", ""),
                ("AccessionNumber", ""),
                ("ScheduledProcedureStepSequence.Modality", "MR"),
                (
                    "ScheduledProcedureStepSequence.ScheduledStationAETitle",
                    "STATION*",
                ),
                (
                    "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
                    "20240105",
                ),
                (
                    "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime",
                    "-1000",
                ),
            ],
        ),
        (
            "worklist_empty_value_explicit",
            8 + 1,
            vec![
                ("PatientName", "\"\""),
                ("PatientID", ""),
                ("ScheduledProcedureStepSequence", ""),
            ],
        ),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dimse_query");
    for (name, sel, pairs) in &seeds {
        let id = identifier_from_pairs(pairs).unwrap();
        let ts = TS[usize::from(sel & 3) % 3];
        let mut bytes = vec![*sel];
        bytes.extend(encode_identifier(&id, ts).unwrap());
        let model = [
            InformationModel::PatientRoot,
            InformationModel::StudyRoot,
            InformationModel::ModalityWorklist,
        ][usize::from((sel >> 2) & 3) % 3];
        let q = FindQuery::parse(decode_identifier(&bytes[1..], ts).unwrap(), model).unwrap();
        let (index, wl) = xenrad_dimse::fuzzing::query_fixture();
        let opts = FindOptions {
            combined_date_time: sel & 0x10 != 0,
            ..FindOptions::default()
        };
        let n = if model == InformationModel::ModalityWorklist {
            wl.find(&q, &opts).count()
        } else {
            index.find(&q, &opts).count()
        };
        assert!(
            n > 0 || *name == "worklist_empty_value_explicit",
            "{name}: no match"
        );
        if std::env::var_os("XENRAD_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), &bytes).unwrap();
        }
    }
}

#[test]
fn dimse_retrieve_corpus() {
    replay("dimse_retrieve", xenrad_dimse::fuzzing::scp_retrieve);
}

/// Writes the `dimse_retrieve` seeds (run with `-- --ignored` after format changes): after
/// the two selector bytes (even first byte: the harness associates first), a C-GET with
/// its sub-operation's C-STORE-RSP, a C-GET cancelled, a C-MOVE, a Storage Commitment
/// N-ACTION and the N-EVENT-REPORT-RSP, then release.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn write_retrieve_seeds() {
    use xenrad_dimse::assoc::policy::{sop, ts};
    use xenrad_dimse::dimse::{Command, field};
    use xenrad_dimse::pdu::encode;
    use xenrad_dimse::scp::commitment::{CommitmentRequest, SopRef};
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/dimse_retrieve");
    std::fs::create_dir_all(&dir).unwrap();
    let msg = |b: &mut Vec<u8>, pc: u8, c: &Command<'_>, ds: Option<&[u8]>| {
        encode::pdata_fragments(b, pc, true, &c.encode(), 4096);
        if let Some(d) = ds {
            encode::pdata_fragments(b, pc, false, d, 4096);
        }
    };
    // (0008,0052) CS "STUDY " and (0020,000D) UI in Implicit VR LE.
    let mut ident = vec![0x08, 0, 0x52, 0, 6, 0, 0, 0];
    ident.extend_from_slice(b"STUDY ");
    ident.extend_from_slice(&[0x20, 0, 0x0D, 0, 6, 0, 0, 0]);
    ident.extend_from_slice(b"1.2.3\0");
    let get = Command {
        field: field::C_GET_RQ,
        message_id: Some(7),
        affected_sop_class: Some(sop::STUDY_ROOT_GET),
        priority: Some(0),
        has_dataset: true,
        ..Command::default()
    };
    let store_rsp = |status: u16| Command {
        field: field::C_STORE_RSP,
        responded_to: Some(1),
        affected_sop_class: Some("1.2.840.10008.5.1.4.1.1.2"),
        affected_sop_instance: Some("1.2.3.4"),
        status: Some(status),
        ..Command::default()
    };
    let mut b = vec![0u8, 7];
    msg(&mut b, 1, &get, Some(&ident));
    msg(&mut b, 7, &store_rsp(0xA700), None);
    encode::release_rq(&mut b);
    std::fs::write(dir.join("get_failed_subop"), &b).unwrap();

    let mut b = vec![2u8, 63];
    msg(&mut b, 1, &get, Some(&ident));
    let cancel = Command {
        field: field::C_CANCEL_RQ,
        responded_to: Some(7),
        ..Command::default()
    };
    msg(&mut b, 1, &cancel, None);
    msg(&mut b, 7, &store_rsp(0), None);
    std::fs::write(dir.join("get_cancelled"), &b).unwrap();

    let mut b = vec![4u8, 3];
    let mv = Command {
        field: field::C_MOVE_RQ,
        message_id: Some(9),
        affected_sop_class: Some(sop::STUDY_ROOT_MOVE),
        move_destination: Some("DEST"),
        priority: Some(0),
        has_dataset: true,
        ..Command::default()
    };
    msg(&mut b, 3, &mv, Some(&ident));
    let req = CommitmentRequest {
        transaction_uid: "2.25.1".into(),
        references: vec![SopRef {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: "1.2.3.4".into(),
        }],
    };
    let action = Command {
        field: field::N_ACTION_RQ,
        message_id: Some(10),
        requested_sop_class: Some(sop::STORAGE_COMMITMENT_PUSH),
        requested_sop_instance: Some(sop::STORAGE_COMMITMENT_PUSH_INSTANCE),
        action_type_id: Some(1),
        has_dataset: true,
        ..Command::default()
    };
    msg(
        &mut b,
        5,
        &action,
        Some(&req.encode(ts::IMPLICIT_VR_LE).unwrap()),
    );
    let report_rsp = Command {
        field: field::N_EVENT_REPORT_RQ | 0x8000,
        responded_to: Some(1),
        status: Some(0),
        event_type_id: Some(2),
        ..Command::default()
    };
    msg(&mut b, 5, &report_rsp, None);
    encode::release_rq(&mut b);
    std::fs::write(dir.join("move_and_commitment"), &b).unwrap();
    // The commitment data set alone (the decoders' path).
    std::fs::write(
        dir.join("commitment_dataset"),
        req.encode(ts::IMPLICIT_VR_LE).unwrap(),
    )
    .unwrap();
}
