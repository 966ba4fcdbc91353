//! Association negotiation and state machine (PS3.8 §9.2), sans-IO.

mod common;
use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xenrad_dimse::assoc::{AcceptorPolicy, AllowedCaller, Association, Event, State, Timeouts};
use xenrad_dimse::pdu::{PcResult, Pdu, abort_reason};

fn sent(a: &mut Association) -> Vec<u8> {
    let mut v = Vec::new();
    a.poll_transmit(&mut v);
    v.concat()
}

fn events(a: &mut Association) -> Vec<Event> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

fn acceptor(policy: AcceptorPolicy) -> (Association, Instant) {
    let now = Instant::now();
    (
        Association::acceptor(Arc::new(policy), Timeouts::default(), now),
        now,
    )
}

#[test]
fn negotiation_follows_acceptor_preference_and_answers_user_items() {
    let (mut a, now) = acceptor(AcceptorPolicy::default());
    let rq = associate_rq(
        &[
            (1, VERIFICATION, &[ILE]),
            (3, CT, &[ILE, ELE]),
            (5, "1.2.3.999", &[ELE]),
            (7, CT, &["1.2.840.10008.1.2.4.999"]),
        ],
        16384,
    );
    // Fed one byte at a time: the reader never needs more than what arrived.
    for b in &rq {
        a.handle_input(std::slice::from_ref(b), now);
    }
    assert_eq!(a.state(), State::Sta6);
    let out = sent(&mut a);
    let Pdu::AssociateAc(ac) = Pdu::parse(&out).unwrap() else {
        panic!("expected AC")
    };
    let r: Vec<_> = ac
        .presentation_contexts
        .iter()
        .map(|p| (p.id, p.result, p.transfer_syntax))
        .collect();
    assert_eq!(
        r,
        vec![
            (1, PcResult::Acceptance, ILE),
            (3, PcResult::Acceptance, ELE), // ours first, though the SCU listed ILE first
            (5, PcResult::AbstractSyntaxNotSupported, ILE),
            (7, PcResult::TransferSyntaxesNotSupported, ILE),
        ]
    );
    assert_eq!(ac.user.max_pdu_length, Some(128 * 1024));
    assert_eq!(ac.user.async_ops_window, Some((1, 1)));
    // PS3.7 D.3.3.7.2: no user identity policy, so the identity is not verified and no
    // server response is claimed (tests/security.rs covers the verified case).
    assert_eq!(ac.user.user_identity_ac, None);
    assert!(ac.user.implementation_class_uid.is_some());
    let ev = events(&mut a);
    let Event::Established(n) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(n.calling_ae, "TESTSCU");
    assert_eq!(n.peer_max_pdu, 16384);
    assert_eq!(n.contexts.len(), 2);
}

#[test]
fn called_ae_check_rejects() {
    let (mut a, now) = acceptor(AcceptorPolicy {
        ae_title: "OTHER".into(),
        check_called_ae: true,
        ..AcceptorPolicy::default()
    });
    a.handle_input(&associate_rq(&[(1, VERIFICATION, &[ILE])], 0), now);
    let out = sent(&mut a);
    assert_eq!(
        Pdu::parse(&out).unwrap(),
        Pdu::AssociateRj(xenrad_dimse::pdu::AssociateRj {
            result: 1,
            source: 1,
            reason: 7
        })
    );
    assert_eq!(a.state(), State::Sta13);
    // ARTIM closes the connection if the peer does not.
    a.handle_timeout(now + Duration::from_secs(31));
    assert!(a.is_closed());
}

#[test]
fn calling_ae_allow_list() {
    let (mut a, now) = acceptor(AcceptorPolicy {
        allowed_callers: Some(vec![AllowedCaller::any_host("CT1")]),
        ..AcceptorPolicy::default()
    });
    a.handle_input(&associate_rq(&[(1, VERIFICATION, &[ILE])], 0), now);
    assert!(matches!(events(&mut a)[0], Event::Rejected(r) if r.reason == 3));
}

fn established(max_pdu: u32) -> (Association, Instant) {
    let (mut a, now) = acceptor(AcceptorPolicy {
        max_pdu,
        ..AcceptorPolicy::default()
    });
    a.handle_input(
        &associate_rq(&[(1, VERIFICATION, &[ILE]), (3, CT, &[ELE])], 4096),
        now,
    );
    sent(&mut a);
    events(&mut a);
    (a, now)
}

#[test]
fn oversized_pdu_is_aborted_without_buffering() {
    let (mut a, now) = established(16384);
    // A P-DATA-TF announcing 4 GiB: abort with invalid-PDU-parameter at the header.
    a.handle_input(&[0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0], now);
    let out = sent(&mut a);
    assert_eq!(
        out,
        vec![
            0x07,
            0,
            0,
            0,
            0,
            4,
            0,
            0,
            2,
            abort_reason::INVALID_PDU_PARAMETER
        ]
    );
    assert!(a.buffer_mut().capacity() < 1 << 20);
    assert_eq!(a.state(), State::Sta13);
    // Just above our limit is refused too.
    let (mut a, now) = established(16384);
    let mut hdr = vec![0x04, 0];
    hdr.extend_from_slice(&16385u32.to_be_bytes());
    a.handle_input(&hdr, now);
    assert!(matches!(
        events(&mut a)[0],
        Event::Aborted { reason: 6, .. }
    ));
}

#[test]
fn we_never_send_above_the_peer_maximum() {
    let (mut a, _) = established(16384);
    let data = bytes::Bytes::from(vec![7u8; 20_000]);
    assert!(a.send_pdata(3, false, &data));
    let out = sent(&mut a);
    let mut r = xenrad_dimse::pdu::reader::PduReader::new(
        xenrad_dimse::pdu::reader::ReaderLimits::default(),
    );
    r.push(&out);
    let mut total = 0;
    while let Some(f) = r.next_frame().unwrap() {
        assert!(f.len() - 6 <= 4096, "PDU of {} bytes", f.len() - 6);
        total += f.len() - 12;
    }
    assert_eq!(total, 20_000);
}

#[test]
fn artim_closes_when_no_request_arrives() {
    let (mut a, now) = acceptor(AcceptorPolicy::default());
    assert_eq!(a.poll_timeout(), Some(now + Duration::from_secs(30)));
    a.handle_timeout(now + Duration::from_secs(29));
    assert_eq!(a.state(), State::Sta2);
    a.handle_timeout(now + Duration::from_secs(30));
    assert!(a.is_closed());
}

#[test]
fn peer_stopping_mid_pdu_is_aborted() {
    let (mut a, now) = established(16384);
    a.handle_input(&[0x04, 0, 0, 0, 0x10, 0, 0, 0], now); // 8 of 4102 bytes
    let deadline = a.poll_timeout().expect("stall timer armed");
    assert_eq!(deadline, now + Duration::from_secs(60));
    a.handle_timeout(deadline);
    assert!(matches!(events(&mut a)[0], Event::Aborted { .. }));
    assert_eq!(sent(&mut a)[0], 0x07);
    a.handle_timeout(deadline + Duration::from_secs(30));
    assert!(a.is_closed());
}

/// Issue 20 (slowloris on the DICOM port): a PDU dribbled a byte at a time reset the stall
/// timer with every byte and never ended. The timer now runs from the PDU's first byte.
#[test]
fn pdu_dribbled_a_byte_at_a_time_is_aborted_at_the_pdu_timeout() {
    let (mut a, now) = established(16384);
    let pdu = [0x04u8, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0];
    let mut aborted_at = None;
    for (i, b) in pdu.iter().enumerate() {
        let t = now + Duration::from_secs(10 * u64::try_from(i).unwrap());
        a.handle_timeout(t);
        if events(&mut a)
            .iter()
            .any(|e| matches!(e, Event::Aborted { .. }))
        {
            aborted_at = Some(t);
            break;
        }
        a.handle_input(std::slice::from_ref(b), t);
    }
    // First byte at `now`, one every 10 s: aborted 60 s after the first byte (the timer
    // used to restart with every byte, so this PDU was never aborted).
    assert_eq!(aborted_at, Some(now + Duration::from_secs(60)));
}

#[test]
fn idle_association_is_aborted_when_an_idle_limit_is_set() {
    let now = Instant::now();
    let timeouts = Timeouts {
        idle: Some(Duration::from_secs(5)),
        ..Timeouts::default()
    };
    let mut a = Association::acceptor(Arc::new(AcceptorPolicy::default()), timeouts, now);
    a.handle_input(&associate_rq(&[(1, VERIFICATION, &[ILE])], 16384), now);
    assert_eq!(a.state(), State::Sta6);
    let _ = sent(&mut a);
    a.handle_timeout(now + Duration::from_secs(4));
    assert_eq!(a.state(), State::Sta6);
    a.handle_timeout(now + Duration::from_secs(5));
    assert!(matches!(events(&mut a).last(), Some(Event::Aborted { .. })));
}

#[test]
fn unexpected_and_unknown_pdus_abort() {
    let (mut a, now) = established(16384);
    a.handle_input(&associate_rq(&[(1, VERIFICATION, &[ILE])], 0), now);
    assert!(matches!(
        events(&mut a)[0],
        Event::Aborted { reason: 2, .. }
    ));

    let (mut a, now) = established(16384);
    a.handle_input(&[0x0A, 0, 0, 0, 0, 0], now);
    assert!(matches!(
        events(&mut a)[0],
        Event::Aborted { reason: 1, .. }
    ));

    let (mut a, now) = established(16384);
    a.handle_input(&[0x04, 0, 0, 0, 0, 3, 0, 0, 9], now); // PDV item length overruns
    assert!(matches!(
        events(&mut a)[0],
        Event::Aborted { reason: 6, .. }
    ));
}

#[test]
fn release_and_peer_abort() {
    let (mut a, now) = established(16384);
    a.handle_input(&release_rq(), now);
    assert_eq!(events(&mut a), vec![Event::ReleaseRequested]);
    assert_eq!(sent(&mut a), vec![0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    a.handle_transport_closed();
    assert!(a.is_closed());

    let (mut a, now) = established(16384);
    a.handle_input(&[0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0], now);
    assert!(matches!(events(&mut a)[0], Event::PeerAborted(_)));
    assert!(a.is_closed());
}

#[test]
fn requestor_side_negotiates_with_acceptor() {
    use xenrad_dimse::pdu::{AssociateRq, PresentationContextRq, UserInformation};
    let now = Instant::now();
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: "XENRAD",
        calling_ae: "SCU",
        application_context: "1.2.840.10008.3.1.1.1",
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: VERIFICATION,
            transfer_syntaxes: vec![ILE],
        }],
        user: UserInformation {
            max_pdu_length: Some(32768),
            ..UserInformation::default()
        },
    };
    let mut req = Association::requestor(&rq, Timeouts::default(), now);
    let (mut acc, _) = acceptor(AcceptorPolicy::default());
    acc.handle_input(&sent(&mut req), now);
    req.handle_input(&sent(&mut acc), now);
    assert_eq!(req.state(), State::Sta6);
    assert_eq!(req.negotiated().unwrap().peer_max_pdu, 128 * 1024);
    req.release();
    acc.handle_input(&sent(&mut req), now);
    req.handle_input(&sent(&mut acc), now);
    assert!(req.is_closed());
    assert!(events(&mut req).contains(&Event::Released));
}

#[test]
fn release_collision_is_answered() {
    use xenrad_dimse::pdu::{AssociateRq, PresentationContextRq, UserInformation};
    let now = Instant::now();
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: "XENRAD",
        calling_ae: "SCU",
        application_context: "1.2.840.10008.3.1.1.1",
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: VERIFICATION,
            transfer_syntaxes: vec![ILE],
        }],
        user: UserInformation::default(),
    };
    let mut req = Association::requestor(&rq, Timeouts::default(), now);
    let (mut acc, _) = acceptor(AcceptorPolicy::default());
    acc.handle_input(&sent(&mut req), now);
    req.handle_input(&sent(&mut acc), now);
    req.release();
    assert_eq!(sent(&mut req), release_rq());
    // The peer's A-RELEASE-RQ crosses ours (AR-8 → Sta9): as requestor we answer it at
    // once (AR-9 → Sta11), then its RP closes us (AR-3).
    req.handle_input(&release_rq(), now);
    assert_eq!(sent(&mut req), vec![0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    assert_eq!(req.state(), State::Sta11);
    req.handle_input(&[0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0], now);
    assert!(req.is_closed());
}

#[test]
fn sop_class_extended_negotiation_is_answered_for_accepted_classes_only() {
    use xenrad_dimse::assoc::policy::STORAGE_EXTENDED_INFO;
    use xenrad_dimse::pdu::{
        AssociateRq, PresentationContextRq, SopClassExtended, UserInformation, encode,
    };
    const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: "XENRAD",
        calling_ae: "SCU",
        application_context: "1.2.840.10008.3.1.1.1",
        presentation_contexts: vec![
            PresentationContextRq {
                id: 1,
                abstract_syntax: VERIFICATION,
                transfer_syntaxes: vec![ILE],
            },
            PresentationContextRq {
                id: 3,
                abstract_syntax: CT,
                transfer_syntaxes: vec![ILE],
            },
            PresentationContextRq {
                id: 5,
                abstract_syntax: "1.2.3.999",
                transfer_syntaxes: vec![ILE],
            },
        ],
        user: UserInformation {
            max_pdu_length: Some(16384),
            sop_class_extended: vec![
                // Storage, accepted: answered with our level of support.
                SopClassExtended {
                    sop_class_uid: CT,
                    info: &[2, 0, 0, 0, 0, 0],
                },
                // Not proposed as a context: not answered.
                SopClassExtended {
                    sop_class_uid: MR,
                    info: &[2],
                },
                // Rejected context: not answered.
                SopClassExtended {
                    sop_class_uid: "1.2.3.999",
                    info: &[1],
                },
                // Accepted, but no answer configured for Verification.
                SopClassExtended {
                    sop_class_uid: VERIFICATION,
                    info: &[1],
                },
            ],
            ..UserInformation::default()
        },
    };
    let mut bytes = Vec::new();
    encode::associate_rq(&mut bytes, &rq);
    for (policy, expect) in [
        (
            AcceptorPolicy::default(),
            vec![(CT, STORAGE_EXTENDED_INFO.to_vec())],
        ),
        (
            AcceptorPolicy {
                storage_extended_info: None,
                extended_info: vec![(VERIFICATION.into(), vec![7, 7])],
                ..AcceptorPolicy::default()
            },
            vec![(VERIFICATION, vec![7, 7])],
        ),
    ] {
        let (mut a, now) = acceptor(policy);
        a.handle_input(&bytes, now);
        let out = sent(&mut a);
        let Pdu::AssociateAc(ac) = Pdu::parse(&out).unwrap() else {
            panic!("expected AC")
        };
        let got: Vec<(&str, Vec<u8>)> = ac
            .user
            .sop_class_extended
            .iter()
            .map(|e| (e.sop_class_uid, e.info.to_vec()))
            .collect();
        assert_eq!(got, expect);
        // No user identity was requested: none is answered.
        assert_eq!(ac.user.user_identity_ac, None);
        let ev = events(&mut a);
        let Event::Established(n) = &ev[0] else {
            panic!("{ev:?}")
        };
        let neg: Vec<(&str, Vec<u8>)> = n
            .extended
            .iter()
            .map(|(c, i)| (c.as_str(), i.clone()))
            .collect();
        assert_eq!(neg, expect);
    }
}
