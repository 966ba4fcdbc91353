//! PS3.8 §9.2 table 9-10, table-driven: the action table itself against a transcription of
//! the standard's table, and the machine driven into every state that receives PDUs and fed
//! every kind of PDU (including an invalid one), checking next state and what was sent.

mod common;
use common::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xenrad_dimse::assoc::{
    AcceptorPolicy, Action, Association, Event, State, Timeouts, UlEvent, action,
};
use xenrad_dimse::pdu::{AssociateRj, AssociateRq, PresentationContextRq, UserInformation, encode};

/// PS3.8 table 9-10, one row per event, columns Sta1..Sta13 ("-": no entry).
const TABLE: &str = "
Evt1  AE1 -   -   -   -   -   -   -   -   -   -   -   -
Evt2  -   -   -   AE2 -   -   -   -   -   -   -   -   -
Evt3  -   AA1 AA8 -   AE3 AA8 AA8 AA8 AA8 AA8 AA8 AA8 AA6
Evt4  -   AA1 AA8 -   AE4 AA8 AA8 AA8 AA8 AA8 AA8 AA8 AA6
Evt5  AE5 -   -   -   -   -   -   -   -   -   -   -   -
Evt6  -   AE6 AA8 -   AA8 AA8 AA8 AA8 AA8 AA8 AA8 AA8 AA7
Evt7  -   -   AE7 -   -   -   -   -   -   -   -   -   -
Evt8  -   -   AE8 -   -   -   -   -   -   -   -   -   -
Evt9  -   -   -   -   -   DT1 -   AR7 -   -   -   -   -
Evt10 -   AA1 AA8 -   AA8 DT2 AR6 AA8 AA8 AA8 AA8 AA8 AA6
Evt11 -   -   -   -   -   AR1 -   -   -   -   -   -   -
Evt12 -   AA1 AA8 -   AA8 AR2 AR8 AA8 AA8 AA8 AA8 AA8 AA6
Evt13 -   AA1 AA8 -   AA8 AA8 AR3 AA8 AA8 AR10 AR3 AA8 AA6
Evt14 -   -   -   -   -   -   -   AR4 AR9 -   -   AR4 -
Evt15 -   -   AA1 AA2 AA1 AA1 AA1 AA1 AA1 AA1 AA1 AA1 -
Evt16 -   AA2 AA3 -   AA3 AA3 AA3 AA3 AA3 AA3 AA3 AA3 AA2
Evt17 -   AA5 AA4 AA4 AA4 AA4 AA4 AA4 AA4 AA4 AA4 AA4 AR5
Evt18 -   AA2 -   -   -   -   -   -   -   -   -   -   AA2
Evt19 -   AA1 AA8 -   AA8 AA8 AA8 AA8 AA8 AA8 AA8 AA8 AA7
";

fn parse_action(s: &str) -> Option<Action> {
    use Action::*;
    Some(match s {
        "-" => return None,
        "AE1" => Ae1,
        "AE2" => Ae2,
        "AE3" => Ae3,
        "AE4" => Ae4,
        "AE5" => Ae5,
        "AE6" => Ae6,
        "AE7" => Ae7,
        "AE8" => Ae8,
        "DT1" => Dt1,
        "DT2" => Dt2,
        "AR1" => Ar1,
        "AR2" => Ar2,
        "AR3" => Ar3,
        "AR4" => Ar4,
        "AR5" => Ar5,
        "AR6" => Ar6,
        "AR7" => Ar7,
        "AR8" => Ar8,
        "AR9" => Ar9,
        "AR10" => Ar10,
        "AA1" => Aa1,
        "AA2" => Aa2,
        "AA3" => Aa3,
        "AA4" => Aa4,
        "AA5" => Aa5,
        "AA6" => Aa6,
        "AA7" => Aa7,
        "AA8" => Aa8,
        other => panic!("bad cell {other}"),
    })
}

#[test]
fn action_table_matches_ps3_8_table_9_10() {
    let rows: Vec<&str> = TABLE.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(rows.len(), 19);
    for (row, event) in rows.iter().zip(UlEvent::ALL) {
        let cells: Vec<&str> = row.split_whitespace().skip(1).collect();
        assert_eq!(cells.len(), 13, "{row}");
        for (cell, state) in cells.iter().zip(State::ALL) {
            assert_eq!(
                action(state, event),
                parse_action(cell),
                "{event:?} in {state:?}"
            );
        }
    }
}

fn rq() -> AssociateRq<'static> {
    AssociateRq {
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
            max_pdu_length: Some(16384),
            ..UserInformation::default()
        },
    }
}

fn sent(a: &mut Association) -> Vec<u8> {
    let mut v = Vec::new();
    a.poll_transmit(&mut v);
    v.concat()
}

fn events(a: &mut Association) -> Vec<Event> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

/// The PDUs a peer can send, by the event they raise.
fn pdus() -> Vec<(UlEvent, Vec<u8>)> {
    let mut rq_bytes = Vec::new();
    encode::associate_rq(&mut rq_bytes, &rq());
    let mut rj = Vec::new();
    encode::associate_rj(
        &mut rj,
        AssociateRj {
            result: 1,
            source: 1,
            reason: 1,
        },
    );
    let mut pdata = Vec::new();
    encode::pdata_fragments(&mut pdata, 1, true, &[1, 2, 3, 4], 16384);
    vec![
        (UlEvent::AssociateAcPdu, ac_bytes()),
        (UlEvent::AssociateRjPdu, rj),
        (UlEvent::AssociateRqPdu, rq_bytes),
        (UlEvent::PDataPdu, pdata),
        (UlEvent::ReleaseRqPdu, release_rq()),
        (UlEvent::ReleaseRpPdu, vec![0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0]),
        (UlEvent::AbortPdu, vec![0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0]),
        // A P-DATA-TF whose PDV overruns it: parsed, invalid.
        (UlEvent::InvalidPdu, vec![0x04, 0, 0, 0, 0, 3, 0, 0, 9]),
    ]
}

/// An A-ASSOCIATE-AC for `rq()`, from an acceptor.
fn ac_bytes() -> Vec<u8> {
    let now = Instant::now();
    let mut acc = Association::acceptor(
        Arc::new(AcceptorPolicy::default()),
        Timeouts::default(),
        now,
    );
    let mut b = Vec::new();
    encode::associate_rq(&mut b, &rq());
    acc.handle_input(&b, now);
    sent(&mut acc)
}

/// An association driven into `state` with manual responses, outputs drained.
fn in_state(state: State, now: Instant) -> Association {
    let acceptor = || {
        Association::acceptor(
            Arc::new(AcceptorPolicy::default()),
            Timeouts::default(),
            now,
        )
        .with_manual_responses()
    };
    let requestor =
        || Association::requestor(&rq(), Timeouts::default(), now).with_manual_responses();
    let mut rq_bytes = Vec::new();
    encode::associate_rq(&mut rq_bytes, &rq());
    let rp = [0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0];
    let mut a = match state {
        State::Sta2 => acceptor(),
        State::Sta3 | State::Sta6 | State::Sta7 | State::Sta8 | State::Sta10 | State::Sta12 => {
            let mut a = acceptor();
            a.handle_input(&rq_bytes, now);
            if state != State::Sta3 {
                assert!(a.accept());
            }
            match state {
                State::Sta7 => assert!(a.release()),
                State::Sta8 => a.handle_input(&release_rq(), now),
                State::Sta10 | State::Sta12 => {
                    assert!(a.release());
                    a.handle_input(&release_rq(), now);
                    if state == State::Sta12 {
                        a.handle_input(&rp, now);
                    }
                }
                _ => {}
            }
            a
        }
        State::Sta5 => requestor(),
        State::Sta9 | State::Sta11 => {
            let mut a = requestor();
            a.handle_input(&ac_bytes(), now);
            assert!(a.release());
            a.handle_input(&release_rq(), now);
            if state == State::Sta11 {
                assert!(a.release_response(now));
            }
            a
        }
        State::Sta13 => {
            let mut a = acceptor();
            a.abort(now);
            a
        }
        other => panic!("not reached by PDUs: {other:?}"),
    };
    assert_eq!(a.state(), state);
    sent(&mut a);
    events(&mut a);
    a
}

#[test]
fn every_pdu_in_every_state_follows_the_table() {
    let now = Instant::now();
    let receiving = [
        State::Sta2,
        State::Sta3,
        State::Sta5,
        State::Sta6,
        State::Sta7,
        State::Sta8,
        State::Sta9,
        State::Sta10,
        State::Sta11,
        State::Sta12,
        State::Sta13,
    ];
    let mut seen: HashMap<Action, usize> = HashMap::new();
    for state in receiving {
        for (event, bytes) in pdus() {
            let mut a = in_state(state, now);
            a.handle_input(&bytes, now);
            let out = sent(&mut a);
            let ev = events(&mut a);
            let act = action(state, event).expect("PDUs have an entry in every open state");
            *seen.entry(act).or_default() += 1;
            let ctx = format!("{event:?} in {state:?} ({act:?}): {ev:?}");
            let (next, sends) = match act {
                // A-ABORT sent: AA-1 with service-user source, AA-7/AA-8 service provider.
                Action::Aa1 => {
                    assert_eq!(out.get(7), Some(&0), "{ctx}");
                    (State::Sta13, Some(0x07))
                }
                Action::Aa7 | Action::Aa8 => {
                    assert_eq!(out.get(8), Some(&2), "{ctx}");
                    (State::Sta13, Some(0x07))
                }
                Action::Aa6 => (State::Sta13, None),
                Action::Aa2 | Action::Aa3 | Action::Ae4 | Action::Ar3 => (State::Sta1, None),
                Action::Ae3 => (State::Sta6, None),
                Action::Ae6 => (State::Sta3, None), // manual: waits for accept/reject
                Action::Dt2 | Action::Ar6 => {
                    assert!(matches!(ev[0], Event::Data(_)), "{ctx}");
                    (state, None)
                }
                Action::Ar2 => (State::Sta8, None),
                Action::Ar8 => (State::Sta10, None), // an acceptor that asked to release
                Action::Ar10 => (State::Sta12, None),
                other => panic!("unexpected action {other:?}"),
            };
            assert_eq!(a.state(), next, "{ctx}");
            assert_eq!(out.first().copied(), sends, "{ctx}");
            if act == Action::Aa8 {
                assert!(
                    ev.iter().any(|e| matches!(e, Event::Aborted { .. })),
                    "{ctx}"
                );
            }
        }
    }
    // Sta9 is reached by AR-8 on the requestor side (checked in `in_state`).
    for a in [
        Action::Aa1,
        Action::Aa2,
        Action::Aa3,
        Action::Aa6,
        Action::Aa7,
        Action::Aa8,
        Action::Ae3,
        Action::Ae4,
        Action::Ae6,
        Action::Dt2,
        Action::Ar2,
        Action::Ar3,
        Action::Ar6,
        Action::Ar8,
        Action::Ar10,
    ] {
        assert!(seen.contains_key(&a), "{a:?} never exercised");
    }
}

#[test]
fn local_primitives_follow_the_table() {
    let now = Instant::now();
    // Sta3: accept → Sta6 (AC sent), reject → Sta13 (RJ sent).
    let mut a = in_state(State::Sta3, now);
    assert!(a.accept());
    assert_eq!(sent(&mut a)[0], 0x02);
    assert!(matches!(events(&mut a)[0], Event::Established(_)));
    let mut a = in_state(State::Sta3, now);
    let rj = AssociateRj {
        result: 1,
        source: 1,
        reason: 1,
    };
    assert!(a.reject(rj, now));
    assert_eq!(sent(&mut a)[0], 0x03);
    assert_eq!(a.state(), State::Sta13);
    // Sta8: P-DATA may still be sent (AR-7), then the release response (AR-4).
    let mut a = in_state(State::Sta8, now);
    assert!(a.can_send_data());
    assert!(a.send_pdata(1, true, &bytes::Bytes::from_static(&[1, 2])));
    assert!(a.release_response(now));
    let out = sent(&mut a);
    assert_eq!(out[0], 0x04);
    assert_eq!(&out[out.len() - 10..], &[0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    assert_eq!(a.state(), State::Sta13);
    // Release collision, acceptor side: Sta10 → RP → Sta12 → response → Sta13.
    let mut a = in_state(State::Sta12, now);
    assert!(a.release_response(now));
    assert_eq!(sent(&mut a), vec![0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    assert_eq!(a.state(), State::Sta13);
    // Requestor side: Sta9 → response (AR-9) → Sta11 → RP (AR-3) → Sta1.
    let mut a = in_state(State::Sta9, now);
    assert!(!a.send_pdata(1, true, &bytes::Bytes::from_static(&[1])));
    assert!(a.release_response(now));
    assert_eq!(a.state(), State::Sta11);
    a.handle_input(&[0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0], now);
    assert!(a.is_closed());
    assert!(events(&mut a).contains(&Event::Released));
    // Primitives outside their states do nothing.
    let mut a = in_state(State::Sta6, now);
    assert!(!a.accept() && !a.release_response(now));
    assert!(sent(&mut a).is_empty());
    // Sta4: connecting; abort closes (AA-2); connection sends the RQ (AE-2).
    let mut c = Association::connecting(&rq(), Timeouts::default(), now);
    assert_eq!(c.state(), State::Sta4);
    assert!(sent(&mut c).is_empty());
    c.transport_connected(now);
    assert_eq!(c.state(), State::Sta5);
    assert_eq!(sent(&mut c)[0], 0x01);
    let mut c = Association::connecting(&rq(), Timeouts::default(), now);
    c.abort(now);
    assert!(c.is_closed() && sent(&mut c).is_empty());
    // Transport closed anywhere (AA-4/AA-5/AR-5) → Sta1; ARTIM in Sta13 (AA-2) → Sta1.
    for s in [State::Sta2, State::Sta6, State::Sta10, State::Sta13] {
        let mut a = in_state(s, now);
        a.handle_transport_closed();
        assert!(a.is_closed(), "{s:?}");
    }
    let mut a = in_state(State::Sta13, now);
    a.handle_timeout(now + Duration::from_secs(31));
    assert!(a.is_closed());
}
