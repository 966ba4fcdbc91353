//! Acceptor security rules, sans-IO: the calling AE allow-list (optionally bound to a peer
//! host), the called AE check and User Identity Negotiation (PS3.7 D.3.3.7), with the
//! A-ASSOCIATE-RJ each refusal sends (PS3.8 table 9-21).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;
use xenrad_dimse::assoc::{
    AcceptorPolicy, AllowedCaller, Association, Event, RefusalReason, State, Timeouts,
    UserCredential, UserIdentityPolicy,
};
use xenrad_dimse::pdu::{
    AssociateRj, AssociateRq, Pdu, PresentationContextRq, UserIdentityRq, UserInformation, encode,
};
use xenrad_dimse::scp::{Completed, ScpConfig, ScpSession};

const VERIFICATION: &str = "1.2.840.10008.1.1";
const ILE: &str = "1.2.840.10008.1.2";

fn rq<'a>(calling: &'a str, called: &'a str, id: Option<UserIdentityRq<'a>>) -> AssociateRq<'a> {
    AssociateRq {
        protocol_version: 1,
        called_ae: called,
        calling_ae: calling,
        application_context: "1.2.840.10008.3.1.1.1",
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: VERIFICATION,
            transfer_syntaxes: vec![ILE],
        }],
        user: UserInformation {
            max_pdu_length: Some(16384),
            implementation_class_uid: Some("1.2.3.4"),
            user_identity_rq: id,
            ..UserInformation::default()
        },
    }
}

#[allow(clippy::unnecessary_wraps)] // fills an Option field
fn ident<'a>(t: u8, user: &'a [u8], pass: &'a [u8], positive: bool) -> Option<UserIdentityRq<'a>> {
    Some(UserIdentityRq {
        identity_type: t,
        positive_response_requested: positive,
        primary: user,
        secondary: pass,
    })
}

#[allow(clippy::unnecessary_wraps)] // compared with Option<IpAddr>
fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

const CALLING_AE_NOT_RECOGNIZED: AssociateRj = AssociateRj {
    result: 1,
    source: 1,
    reason: 3,
};
const CALLED_AE_NOT_RECOGNIZED: AssociateRj = AssociateRj {
    result: 1,
    source: 1,
    reason: 7,
};
const NO_REASON_GIVEN: AssociateRj = AssociateRj {
    result: 1,
    source: 1,
    reason: 1,
};

fn no_resolve(h: &str) -> Result<Vec<IpAddr>, String> {
    Err(format!("no resolver for {h}"))
}

fn allow(specs: &[&str]) -> AcceptorPolicy {
    AcceptorPolicy {
        allowed_callers: Some(
            specs
                .iter()
                .map(|s| {
                    AllowedCaller::parse(s, |h| {
                        if h == "modality.test" {
                            Ok(vec![
                                "10.0.0.7".parse().unwrap(),
                                "::ffff:10.0.0.8".parse().unwrap(),
                            ])
                        } else {
                            no_resolve(h)
                        }
                    })
                    .unwrap()
                })
                .collect(),
        ),
        ..AcceptorPolicy::default()
    }
}

fn users(required: bool) -> AcceptorPolicy {
    AcceptorPolicy {
        user_identity: Some(UserIdentityPolicy {
            users: UserIdentityPolicy::parse_users(
                "# technologists\ntech\n\nalice:s3cret:with:colons\r\nbob:pw\n",
            )
            .unwrap(),
            required,
        }),
        ..AcceptorPolicy::default()
    }
}

#[test]
fn allowed_caller_parsing() {
    let a = AllowedCaller::parse("CT1", no_resolve).unwrap();
    assert_eq!(a, AllowedCaller::any_host("CT1"));
    let a = AllowedCaller::parse("CT1@192.168.1.9", no_resolve).unwrap();
    assert_eq!(a.hosts, Some(vec!["192.168.1.9".parse().unwrap()]));
    let a = AllowedCaller::parse("MR@[::1]", no_resolve).unwrap();
    assert_eq!(a.hosts, Some(vec!["::1".parse().unwrap()]));
    assert_eq!(a.to_string(), "MR@::1");
    // A name goes to the resolver (configuration time); its failure is an error.
    let e = AllowedCaller::parse("CT1@nowhere.invalid", no_resolve).unwrap_err();
    assert!(e.contains("no resolver for nowhere.invalid"), "{e}");
    let e = AllowedCaller::parse("CT1@empty.test", |_| Ok::<_, String>(vec![])).unwrap_err();
    assert!(e.contains("no address"), "{e}");
    for bad in ["", "@1.2.3.4", "SEVENTEEN_CHARS_X", "A\\B", "CT1@"] {
        assert!(AllowedCaller::parse(bad, no_resolve).is_err(), "{bad:?}");
    }
}

#[test]
fn users_file_parsing_and_redaction() {
    let u = UserIdentityPolicy::parse_users("tech\nalice:a:b\n#x:y\n\n").unwrap();
    assert_eq!(
        u,
        vec![
            UserCredential {
                username: b"tech".to_vec(),
                passcode: None
            },
            UserCredential {
                username: b"alice".to_vec(),
                passcode: Some(b"a:b".to_vec())
            },
        ]
    );
    // The passcode never reaches Debug output.
    let dbg = format!("{u:?}");
    assert!(!dbg.contains("a:b") && dbg.contains("redacted"), "{dbg}");
    let e = UserIdentityPolicy::parse_users("ok\n:secret\n").unwrap_err();
    assert_eq!(e, "line 2: empty or too long user name or passcode");
}

#[test]
fn calling_ae_allowed_and_refused() {
    let p = allow(&["CT1", "MR1"]);
    let (_, n) = p.negotiate(&rq("CT1", "XENRAD", None), None).unwrap();
    assert_eq!(n.calling_ae, "CT1");
    let r = p
        .negotiate(&rq("US1", "XENRAD", None), ip("127.0.0.1"))
        .unwrap_err();
    assert_eq!(r.reason, RefusalReason::CallingAe);
    assert_eq!(r.rj(), CALLING_AE_NOT_RECOGNIZED);
    assert_eq!((r.calling_ae.as_str(), r.peer), ("US1", ip("127.0.0.1")));
    assert_eq!(
        r.to_string(),
        "association from \"US1\" at 127.0.0.1 to \"XENRAD\" refused: calling AE title not \
         allowed (A-ASSOCIATE-RJ result 1 source 1 reason 3)"
    );
    // AE titles are compared exactly (case matters).
    let r = p.negotiate(&rq("ct1", "XENRAD", None), None).unwrap_err();
    assert_eq!(r.reason, RefusalReason::CallingAe);
    // No allow-list: anyone.
    assert!(
        AcceptorPolicy::default()
            .negotiate(&rq("ANY", "XENRAD", None), None)
            .is_ok()
    );
}

#[test]
fn calling_ae_bound_to_host() {
    let p = allow(&["CT1@10.0.0.5", "CT1@modality.test", "MR1"]);
    for ok in ["10.0.0.5", "10.0.0.7", "10.0.0.8", "::ffff:10.0.0.5"] {
        let (_, n) = p
            .negotiate(&rq("CT1", "XENRAD", None), ip(ok))
            .unwrap_or_else(|r| panic!("{ok}: {r}"));
        assert_eq!(n.peer, ip(ok));
    }
    // The right AE title from another host: refused as calling AE not recognized.
    let r = p
        .negotiate(&rq("CT1", "XENRAD", None), ip("10.0.0.6"))
        .unwrap_err();
    assert_eq!(r.reason, RefusalReason::PeerHost);
    assert_eq!(r.rj(), CALLING_AE_NOT_RECOGNIZED);
    assert!(r.to_string().contains("not allowed from this host"), "{r}");
    // Bound to a host but no address handed in: refused.
    let r = p.negotiate(&rq("CT1", "XENRAD", None), None).unwrap_err();
    assert_eq!(r.reason, RefusalReason::PeerHost);
    // MR1 has no host binding.
    assert!(
        p.negotiate(&rq("MR1", "XENRAD", None), ip("192.0.2.1"))
            .is_ok()
    );
}

#[test]
fn called_ae_check() {
    let p = AcceptorPolicy {
        check_called_ae: true,
        ..AcceptorPolicy::default()
    };
    assert!(p.negotiate(&rq("CT1", "XENRAD", None), None).is_ok());
    let r = p.negotiate(&rq("CT1", "OTHER", None), None).unwrap_err();
    assert_eq!(r.reason, RefusalReason::CalledAe);
    assert_eq!(r.rj(), CALLED_AE_NOT_RECOGNIZED);
    // Unchecked: any called AE title.
    assert!(
        AcceptorPolicy::default()
            .negotiate(&rq("CT1", "OTHER", None), None)
            .is_ok()
    );
}

#[test]
fn identity_missing_when_required() {
    let r = users(true)
        .negotiate(&rq("CT1", "XENRAD", None), None)
        .unwrap_err();
    assert_eq!(r.reason, RefusalReason::IdentityMissing);
    assert_eq!(r.rj(), NO_REASON_GIVEN);
    // Not required: a request without identity is accepted, unverified.
    let p = users(false);
    let r = rq("CT1", "XENRAD", None);
    let (ac, n) = p.negotiate(&r, None).unwrap();
    assert!(!n.user_identity_verified);
    assert_eq!(ac.user.user_identity_ac, None);
}

#[test]
fn identity_wrong_is_refused() {
    for required in [true, false] {
        let p = users(required);
        for (t, u, pw, why) in [
            (1, &b"mallory"[..], &b""[..], "unknown user"),
            (2, b"bob", b"PW", "wrong passcode"),
            (2, b"bob", b"pw ", "passcode with a trailing space"),
            (2, b"bob", b"", "empty passcode"),
            (1, b"bob", b"", "username only for a user with a passcode"),
            (2, b"alice", b"s3cret", "passcode prefix"),
            (2, b"Tech", b"", "user names are case sensitive"),
        ] {
            let r = p
                .negotiate(&rq("CT1", "XENRAD", ident(t, u, pw, true)), None)
                .unwrap_err();
            assert_eq!(
                r.reason,
                RefusalReason::IdentityRejected {
                    identity_type: t,
                    username: String::from_utf8_lossy(u).into_owned()
                },
                "{why}"
            );
            assert_eq!(r.rj(), NO_REASON_GIVEN, "{why}");
            // The log line names the user, never the passcode.
            let line = r.to_string();
            assert!(!pw.is_empty() || !line.contains("passcode"), "{line}");
            if !pw.is_empty() {
                assert!(
                    !line.contains(std::str::from_utf8(pw).unwrap().trim()),
                    "{line}"
                );
            }
        }
        // Kerberos, SAML and JWT cannot be verified here.
        for t in [3, 4, 5, 9] {
            let r = p
                .negotiate(&rq("CT1", "XENRAD", ident(t, b"token", b"", false)), None)
                .unwrap_err();
            assert_eq!(
                r.reason,
                RefusalReason::IdentityTypeUnsupported { identity_type: t }
            );
            assert_eq!(r.rj(), NO_REASON_GIVEN);
        }
    }
}

#[test]
fn identity_right_with_response_only_when_requested() {
    let p = users(true);
    for (t, u, pw) in [
        (1, &b"tech"[..], &b""[..]),
        // A user configured without passcode: type 2 with any passcode.
        (2, b"tech", b"anything"),
        (2, b"alice", b"s3cret:with:colons"),
        (2, b"bob", b"pw"),
    ] {
        for positive in [true, false] {
            let (ac, n) = p
                .negotiate(&rq("CT1", "XENRAD", ident(t, u, pw, positive)), None)
                .unwrap_or_else(|r| panic!("{r}"));
            assert!(n.user_identity_verified);
            assert_eq!(n.user_identity.as_deref(), Some(u));
            assert_eq!(n.user_identity_type, Some(t));
            // PS3.7 D.3.3.7.2: an (empty, for types 1 and 2) server response, only when
            // a positive response was requested.
            let want: Option<&[u8]> = if positive { Some(&[]) } else { None };
            assert_eq!(ac.user.user_identity_ac, want);
            // And it is on the wire.
            let mut b = Vec::new();
            encode::associate_ac(&mut b, &ac);
            let Pdu::AssociateAc(back) = Pdu::parse(&b).unwrap() else {
                panic!("AC")
            };
            assert_eq!(back.user.user_identity_ac, want);
        }
    }
    // Identity not configured: recorded, not verified, no server response claimed.
    let p = AcceptorPolicy::default();
    let r = rq("CT1", "XENRAD", ident(2, b"x", b"y", true));
    let (ac, n) = p.negotiate(&r, None).unwrap();
    assert!(!n.user_identity_verified);
    assert_eq!(n.user_identity.as_deref(), Some(&b"x"[..]));
    assert_eq!(ac.user.user_identity_ac, None);
}

#[test]
fn checks_apply_in_order() {
    // Called AE before calling AE before identity.
    let p = AcceptorPolicy {
        check_called_ae: true,
        ..allow(&["CT1@10.0.0.5"])
    };
    let p = AcceptorPolicy {
        user_identity: users(true).user_identity,
        ..p
    };
    let r = p.negotiate(&rq("US1", "OTHER", None), None).unwrap_err();
    assert_eq!(r.reason, RefusalReason::CalledAe);
    let r = p.negotiate(&rq("US1", "XENRAD", None), None).unwrap_err();
    assert_eq!(r.reason, RefusalReason::CallingAe);
    let r = p
        .negotiate(&rq("CT1", "XENRAD", None), ip("10.0.0.5"))
        .unwrap_err();
    assert_eq!(r.reason, RefusalReason::IdentityMissing);
    let ok = p.negotiate(
        &rq("CT1", "XENRAD", ident(2, b"bob", b"pw", true)),
        ip("10.0.0.5"),
    );
    assert!(ok.is_ok());
}

/// Through the state machine: the peer address set by the adapter reaches negotiation, the
/// A-ASSOCIATE-RJ goes on the wire, and the refusal is kept for the application.
#[test]
fn state_machine_sends_rj_and_keeps_the_refusal() {
    let now = Instant::now();
    let p = Arc::new(allow(&["CT1@10.0.0.5"]));
    let mut bytes = Vec::new();
    encode::associate_rq(&mut bytes, &rq("CT1", "XENRAD", None));
    for (peer, accepted) in [("10.0.0.5", true), ("10.0.0.9", false)] {
        let mut a = Association::acceptor(p.clone(), Timeouts::default(), now);
        a.set_peer_addr(peer.parse().unwrap());
        a.handle_input(&bytes, now);
        let mut out = Vec::new();
        a.poll_transmit(&mut out);
        let wire: Vec<u8> = out.concat();
        let pdu = Pdu::parse(&wire).unwrap();
        let ev = a.poll_event();
        if accepted {
            assert!(matches!(pdu, Pdu::AssociateAc(_)), "{pdu:?}");
            assert!(matches!(ev, Some(Event::Established(_))), "{ev:?}");
            assert_eq!(a.state(), State::Sta6);
            assert!(a.refusal().is_none());
        } else {
            assert_eq!(pdu, Pdu::AssociateRj(CALLING_AE_NOT_RECOGNIZED));
            assert_eq!(ev, Some(Event::Rejected(CALLING_AE_NOT_RECOGNIZED)));
            assert_eq!(a.state(), State::Sta13);
            let r = a.refusal().unwrap();
            assert_eq!(
                (r.reason.clone(), r.peer),
                (RefusalReason::PeerHost, ip(peer))
            );
        }
    }
}

/// The SCP session reports the refusal as a value the application logs.
#[test]
fn scp_session_reports_refusal() {
    let dir = std::env::temp_dir().join(format!("xenrad-security-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = ScpConfig::new(&dir);
    cfg.policy = Arc::new(users(true));
    let now = Instant::now();
    let mut s = ScpSession::new(Arc::new(cfg), now);
    s.set_peer_addr("192.0.2.4".parse().unwrap());
    let mut bytes = Vec::new();
    encode::associate_rq(
        &mut bytes,
        &rq("CT1", "XENRAD", ident(2, b"bob", b"hunter2", true)),
    );
    s.handle_input(&bytes, now);
    let done = s.take_completed();
    let refused: Vec<_> = done
        .iter()
        .filter_map(|c| match c {
            Completed::Refused(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "{done:?}");
    assert_eq!(refused[0].peer, ip("192.0.2.4"));
    assert!(
        matches!(&refused[0].reason, RefusalReason::IdentityRejected { username, .. } if username == "bob")
    );
    assert!(!format!("{done:?}").contains("hunter2"));
    let _ = std::fs::remove_dir_all(&dir);
}
