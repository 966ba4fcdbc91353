//! PDU codec and incremental reader tests (PS3.8 §9.3).

use xenrad_dimse::pdu::{
    AssociateRq, Pdu, PduErrorKind, PresentationContextRq, RoleSelection, UserIdentityRq,
    UserInformation, encode,
    reader::{PduReader, ReaderLimits},
};

fn sample_rq() -> AssociateRq<'static> {
    AssociateRq {
        protocol_version: 1,
        called_ae: "XENRAD",
        calling_ae: "MODALITY1",
        application_context: "1.2.840.10008.3.1.1.1",
        presentation_contexts: vec![
            PresentationContextRq {
                id: 1,
                abstract_syntax: "1.2.840.10008.1.1",
                transfer_syntaxes: vec!["1.2.840.10008.1.2"],
            },
            PresentationContextRq {
                id: 3,
                abstract_syntax: "1.2.840.10008.5.1.4.1.1.2",
                transfer_syntaxes: vec!["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"],
            },
        ],
        user: UserInformation {
            max_pdu_length: Some(16384),
            implementation_class_uid: Some("1.2.3.4"),
            implementation_version_name: Some("TEST_1"),
            async_ops_window: Some((4, 4)),
            role_selections: vec![RoleSelection {
                sop_class_uid: "1.2.840.10008.5.1.4.1.1.2",
                scu_role: true,
                scp_role: true,
            }],
            user_identity_rq: Some(UserIdentityRq {
                identity_type: 2,
                positive_response_requested: true,
                primary: b"alice",
                secondary: b"secret",
            }),
            ..UserInformation::default()
        },
    }
}

#[test]
fn associate_rq_round_trip() {
    let rq = sample_rq();
    let mut buf = Vec::new();
    encode::associate_rq(&mut buf, &rq);
    assert_eq!(buf[0], 0x01);
    assert_eq!(
        u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize,
        buf.len() - 6
    );
    // AE titles are 16-byte space-padded fields at fixed offsets.
    assert_eq!(&buf[10..26], b"XENRAD          ");
    let parsed = Pdu::parse(&buf).unwrap();
    assert_eq!(parsed, Pdu::AssociateRq(rq));
}

#[test]
fn parsed_strings_borrow_the_input() {
    let mut buf = Vec::new();
    encode::associate_rq(&mut buf, &sample_rq());
    let Pdu::AssociateRq(rq) = Pdu::parse(&buf).unwrap() else {
        panic!("not an RQ")
    };
    let range = buf.as_ptr_range();
    assert!(range.contains(&rq.calling_ae.as_ptr()));
    assert!(range.contains(&rq.presentation_contexts[1].transfer_syntaxes[1].as_ptr()));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let mut buf = Vec::new();
    encode::associate_rq(&mut buf, &sample_rq());
    for n in 0..buf.len() {
        let e = Pdu::parse(&buf[..n]).unwrap_err();
        assert!(matches!(e.kind, PduErrorKind::Truncated { .. }), "{n}: {e}");
    }
    // A body shortened with a consistent PDU length: never a panic; cuts inside the last
    // item (the user information) are errors.
    let mut errors = 0;
    for cut in 1..buf.len() - 74 {
        let mut b = buf[..buf.len() - cut].to_vec();
        let l = (b.len() - 6) as u32;
        b[2..6].copy_from_slice(&l.to_be_bytes());
        let r = Pdu::parse(&b);
        if cut <= 8 {
            assert!(r.is_err(), "cut {cut}");
        }
        errors += usize::from(r.is_err());
    }
    assert!(errors > 50, "{errors}");
}

#[test]
fn unknown_item_type_is_reported_with_offset() {
    let mut buf = Vec::new();
    encode::associate_rq(&mut buf, &sample_rq());
    // The first variable item (application context) starts at byte 74.
    assert_eq!(buf[74], 0x10);
    buf[74] = 0x7E;
    let e = Pdu::parse(&buf).unwrap_err();
    assert_eq!(e.kind, PduErrorKind::UnexpectedItem(0x7E));
    assert_eq!(e.offset, 74);
}

#[test]
fn unknown_user_sub_items_are_kept() {
    let mut rq = sample_rq();
    rq.user.unknown.push((0x7F, b"abc"));
    let mut buf = Vec::new();
    encode::associate_rq(&mut buf, &rq);
    let Pdu::AssociateRq(back) = Pdu::parse(&buf).unwrap() else {
        panic!()
    };
    assert_eq!(back.user.unknown, vec![(0x7F, &b"abc"[..])]);
}

#[test]
fn pdata_fragments_respect_the_peer_maximum() {
    let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let mut out = Vec::new();
    encode::pdata_fragments(&mut out, 5, false, &data, 4096);
    let mut r = PduReader::new(ReaderLimits {
        max_pdata_len: 4096,
        max_other_len: 4096,
    });
    r.push(&out);
    let mut got = Vec::new();
    let mut lasts = 0;
    while let Some(frame) = r.next_frame().unwrap() {
        assert!(frame.len() - 6 <= 4096);
        let Pdu::PData(p) = Pdu::parse(&frame).unwrap() else {
            panic!()
        };
        for pdv in &p.pdvs {
            assert_eq!(pdv.pc_id, 5);
            assert!(!pdv.is_command);
            lasts += usize::from(pdv.is_last);
            got.extend_from_slice(pdv.data);
        }
    }
    assert_eq!(lasts, 1);
    assert_eq!(got, data);
}

#[test]
fn reader_accepts_any_split() {
    let mut stream = Vec::new();
    encode::associate_rq(&mut stream, &sample_rq());
    encode::pdata_fragments(&mut stream, 1, true, b"hello world", 0);
    encode::release_rq(&mut stream);
    encode::abort(&mut stream, 2, 6);
    for step in [1, 2, 3, 7, 64, 1000] {
        let mut r = PduReader::new(ReaderLimits::default());
        let mut kinds = Vec::new();
        for chunk in stream.chunks(step) {
            r.push(chunk);
            while let Some(f) = r.next_frame().unwrap() {
                kinds.push(f[0]);
                Pdu::parse(&f).unwrap();
            }
        }
        assert_eq!(kinds, vec![1, 4, 5, 7], "step {step}");
        assert_eq!(r.consumed() as usize, stream.len());
    }
}

#[test]
fn announced_4gib_is_refused_before_buffering() {
    let mut r = PduReader::new(ReaderLimits::default());
    r.push(&[0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
    let e = r.next_frame().unwrap_err();
    assert!(matches!(
        e.kind,
        PduErrorKind::TooLong {
            length: u32::MAX,
            ..
        }
    ));
    // Nothing beyond the header was reserved for the body.
    assert!(r.buffer_mut().capacity() < 1 << 20);
    // And a direct parse of such a header reports truncation without allocating.
    let e = Pdu::parse(&[0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap_err();
    assert!(matches!(e.kind, PduErrorKind::Truncated { .. }));
}

#[test]
fn unknown_pdu_type_is_refused() {
    let mut r = PduReader::new(ReaderLimits::default());
    r.push(&[0x09, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    assert_eq!(
        r.next_frame().unwrap_err().kind,
        PduErrorKind::UnknownPduType(9)
    );
}

#[test]
fn fixed_size_pdus() {
    let mut b = Vec::new();
    encode::abort(&mut b, 2, 6);
    assert_eq!(
        Pdu::parse(&b).unwrap(),
        Pdu::Abort(xenrad_dimse::pdu::Abort {
            source: 2,
            reason: 6
        })
    );
    b[5] = 5;
    b.push(0);
    assert!(matches!(
        Pdu::parse(&b).unwrap_err().kind,
        PduErrorKind::BadLength(5)
    ));
}
