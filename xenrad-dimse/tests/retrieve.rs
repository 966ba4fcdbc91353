//! C-GET sub-operations, C-CANCEL and Storage Commitment reports driven sans-IO through the
//! SCP session, plus the retrieve/commitment data sets.
#![allow(clippy::many_single_char_names)]

mod common;
use bytes::Bytes;
use common::*;
use std::sync::Arc;
use std::time::Instant;
use xenrad_dimse::assoc::AcceptorPolicy;
use xenrad_dimse::assoc::policy::sop;
use xenrad_dimse::dimse::{Assembler, Command, DimseEvent, field, status};
use xenrad_dimse::pdu::{
    AssociateRq, Pdu, PresentationContextRq, RoleSelection, UserInformation, encode,
    reader::{PduReader, ReaderLimits},
};
use xenrad_dimse::scp::commitment::{CommitmentRequest, CommitmentResult, SopRef, reason};
use xenrad_dimse::scp::retrieve::{RetrieveTally, failed_uid_list};
use xenrad_dimse::scp::{
    QueryKind, ScpConfig, ScpEvent, ScpSession, SendError, SubOperations, SubStore,
};
use xenrad_dimse::store::MemorySink;

/// What the session sent, message by message: (pc, command) or (pc, data set, fragments).
#[derive(Debug)]
enum Out {
    Cmd(u8, Vec<u8>),
    Data(u8, Vec<u8>),
}

struct Rig {
    s: ScpSession,
    now: Instant,
    asm: Assembler,
    data: Vec<u8>,
    ac_roles: Vec<(String, bool, bool)>,
}

impl Rig {
    fn new(pcs: &[(u8, &str, &[&str])], roles: &[(&str, bool, bool)], max_pdu: u32) -> Self {
        let now = Instant::now();
        let policy = AcceptorPolicy {
            abstract_syntaxes: vec![
                sop::STUDY_ROOT_GET.into(),
                sop::STORAGE_COMMITMENT_PUSH.into(),
            ],
            ..AcceptorPolicy::default()
        };
        let mut cfg = ScpConfig::with_sink(Arc::new(MemorySink::new(1 << 20, 1 << 24)));
        cfg.policy = Arc::new(policy);
        let mut s = ScpSession::new(Arc::new(cfg), now);
        let rq = AssociateRq {
            protocol_version: 1,
            called_ae: "XENRAD",
            calling_ae: "GETSCU",
            application_context: "1.2.840.10008.3.1.1.1",
            presentation_contexts: pcs
                .iter()
                .map(|(id, a, t)| PresentationContextRq {
                    id: *id,
                    abstract_syntax: a,
                    transfer_syntaxes: t.to_vec(),
                })
                .collect(),
            user: UserInformation {
                max_pdu_length: Some(max_pdu),
                implementation_class_uid: Some("1.2.3.4.5"),
                role_selections: roles
                    .iter()
                    .map(|(c, u, p)| RoleSelection {
                        sop_class_uid: c,
                        scu_role: *u,
                        scp_role: *p,
                    })
                    .collect(),
                ..UserInformation::default()
            },
        };
        let mut b = Vec::new();
        encode::associate_rq(&mut b, &rq);
        s.handle_input(&b, now);
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        let ac = out.concat();
        let Pdu::AssociateAc(ac) = Pdu::parse(&ac).unwrap() else {
            panic!("AC expected")
        };
        let ac_roles = ac
            .user
            .role_selections
            .iter()
            .map(|r| (r.sop_class_uid.to_string(), r.scu_role, r.scp_role))
            .collect();
        Self {
            s,
            now,
            asm: Assembler::default(),
            data: Vec::new(),
            ac_roles,
        }
    }

    /// Everything sent since the last call, reassembled; checks every PDU against `max_pdu`.
    fn out(&mut self, max_pdu: usize) -> Vec<Out> {
        let mut v = Vec::new();
        self.s.poll_transmit(&mut v);
        let mut r = PduReader::new(ReaderLimits::default());
        r.push(&v.concat());
        let mut res = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            assert!(f.len() - 6 <= max_pdu, "PDU of {} bytes", f.len() - 6);
            let Pdu::PData(_) = Pdu::parse(&f).unwrap() else {
                continue;
            };
            for pdv in xenrad_dimse::pdu::pdv_iter(&f[6..], 6).flatten() {
                let pdv = xenrad_dimse::assoc::PdvData {
                    pc_id: pdv.pc_id,
                    is_command: pdv.is_command,
                    is_last: pdv.is_last,
                    data: Bytes::copy_from_slice(pdv.data),
                };
                match self.asm.push(pdv).unwrap() {
                    Some(DimseEvent::Command { pc_id, bytes }) => {
                        res.push(Out::Cmd(pc_id, bytes.to_vec()));
                    }
                    Some(DimseEvent::Data { pc_id, data, last }) => {
                        self.data.extend_from_slice(&data);
                        if last {
                            res.push(Out::Data(pc_id, std::mem::take(&mut self.data)));
                        }
                    }
                    None => {}
                }
            }
        }
        res
    }

    fn feed(&mut self, pc: u8, cmd: &Command<'_>, ds: Option<&[u8]>) {
        let wire = message(pc, cmd, ds, 16384);
        self.s.handle_input(&wire, self.now);
    }
}

const GET_PC: u8 = 1;
const CT_PC: u8 = 3;
const MR_PC: u8 = 5;

fn get_rig() -> Rig {
    Rig::new(
        &[
            (GET_PC, sop::STUDY_ROOT_GET, &[ILE]),
            (CT_PC, CT, &[ELE]),
            (MR_PC, MR, &[ELE]),
        ],
        // The requestor takes the SCP role for CT only (PS3.7 D.3.3.4).
        &[(CT, false, true)],
        4096,
    )
}

fn start_get(r: &mut Rig) -> xenrad_dimse::scp::QueryRequest {
    let rq = Command {
        field: field::C_GET_RQ,
        message_id: Some(7),
        affected_sop_class: Some(sop::STUDY_ROOT_GET),
        priority: Some(0),
        has_dataset: true,
        ..Command::default()
    };
    r.feed(GET_PC, &rq, Some(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "));
    let Some(ScpEvent::Query(q)) = r.s.poll_event() else {
        panic!("C-GET event expected")
    };
    assert_eq!(q.kind, QueryKind::Get);
    q
}

#[test]
fn role_selection_accepts_the_requestor_as_storage_scp_only() {
    let r = Rig::new(
        &[(GET_PC, sop::STUDY_ROOT_GET, &[ILE]), (CT_PC, CT, &[ELE])],
        &[(CT, false, true), (sop::STUDY_ROOT_GET, true, true)],
        4096,
    );
    assert!(r.ac_roles.contains(&(CT.to_string(), false, true)));
    // Not a storage class: the SCP role is refused (we are the Q/R SCP).
    assert!(
        r.ac_roles
            .contains(&(sop::STUDY_ROOT_GET.to_string(), true, false))
    );
    assert!(r.s.negotiated().unwrap().requestor_is_scp(CT));
    assert!(
        !r.s.negotiated()
            .unwrap()
            .requestor_is_scp(sop::STUDY_ROOT_GET)
    );
}

#[test]
fn c_get_sends_sub_operations_in_pieces_and_counts_them() {
    let mut r = get_rig();
    let q = start_get(&mut r);
    let ds = dataset_ele(CT, "1.2.3.1", "1.2.3", 10_000);
    let st =
        r.s.sub_store_begin(
            q.id,
            &SubStore {
                sop_class_uid: CT,
                sop_instance_uid: "1.2.3.1",
                transfer_syntax: ELE,
            },
        )
        .unwrap();
    assert_eq!(st.pc_id, CT_PC);
    assert_eq!(st.chunk_size, 4096 - 6);
    // A second sub-operation before the first is answered: one outstanding operation.
    assert_eq!(
        r.s.sub_store_begin(
            q.id,
            &SubStore {
                sop_class_uid: CT,
                sop_instance_uid: "1.2.3.2",
                transfer_syntax: ELE,
            },
        ),
        Err(SendError::Busy)
    );
    // The data set goes out in three pieces of odd sizes; PDUs stay within 4096 bytes.
    let b = Bytes::from(ds.clone());
    r.s.sub_store_data(&b.slice(..1000), false).unwrap();
    r.s.sub_store_data(&b.slice(1000..7001), false).unwrap();
    let partial = r.out(4096);
    assert_eq!(
        partial.len(),
        1,
        "only the command is complete: {partial:?}"
    );
    r.s.sub_store_data(&b.slice(7001..), true).unwrap();
    assert_eq!(
        r.s.sub_store_data(&Bytes::from_static(b"x"), true),
        Err(SendError::NotStarted)
    );
    let mut out = partial;
    out.extend(r.out(4096));
    let (Out::Cmd(pc, cmd), Out::Data(dpc, data)) = (&out[0], &out[1]) else {
        panic!("command then data set expected: {out:?}")
    };
    assert_eq!((*pc, *dpc), (CT_PC, CT_PC));
    let c = Command::decode(cmd).unwrap();
    assert_eq!(c.field, field::C_STORE_RQ);
    assert_eq!(c.affected_sop_instance, Some("1.2.3.1"));
    assert_eq!(c.move_originator_ae, None);
    assert_eq!(data, &ds, "the data set arrives byte for byte");
    // The C-STORE-RSP comes back as an event for this C-GET.
    let rsp = Command {
        field: field::C_STORE_RSP,
        responded_to: c.message_id,
        affected_sop_class: Some(CT),
        affected_sop_instance: Some("1.2.3.1"),
        status: Some(0),
        ..Command::default()
    };
    r.feed(CT_PC, &rsp, None);
    let Some(ScpEvent::Response(pr)) = r.s.poll_event() else {
        panic!("response event expected")
    };
    assert_eq!(pr.query, Some(q.id));
    assert_eq!(pr.status, 0);
    assert_eq!(pr.message_id, c.message_id.unwrap());
    assert!(!r.s.sub_store_in_flight());
    // MR: no context with the requestor as SCP → a failed sub-operation, nothing sent.
    assert!(matches!(
        r.s.sub_store_begin(
            q.id,
            &SubStore {
                sop_class_uid: MR,
                sop_instance_uid: "1.2.3.2",
                transfer_syntax: ELE,
            },
        ),
        Err(SendError::NoContext { .. })
    ));
    // Implicit VR data for an Explicit VR context: not re-encoded, refused the same way.
    assert!(matches!(
        r.s.sub_store_begin(
            q.id,
            &SubStore {
                sop_class_uid: CT,
                sop_instance_uid: "1.2.3.3",
                transfer_syntax: ILE,
            },
        ),
        Err(SendError::NoContext { .. })
    ));
    let mut tally = RetrieveTally::new(3);
    tally.record_status("1.2.3.1", pr.status);
    assert!(r.s.query_progress(q.id, tally.counts()));
    tally.record_status("1.2.3.2", 0xA700);
    tally.record_status("1.2.3.3", 0xB000);
    r.s.query_done(q.id, tally.finish(false, ILE), r.now);
    let out = r.out(4096);
    let cmds: Vec<Command<'_>> = out
        .iter()
        .filter_map(|o| match o {
            Out::Cmd(_, c) => Some(Command::decode(c).unwrap()),
            Out::Data(..) => None,
        })
        .collect();
    assert_eq!(cmds.len(), 2);
    assert_eq!(cmds[0].status, Some(status::PENDING));
    assert_eq!(
        (cmds[0].remaining, cmds[0].completed, cmds[0].failed),
        (Some(2), Some(1), Some(0))
    );
    assert_eq!(cmds[1].field, field::C_GET_RQ | 0x8000);
    assert_eq!(cmds[1].status, Some(status::SUBOPS_WARNING));
    assert_eq!(cmds[1].responded_to, Some(7));
    assert_eq!(
        (
            cmds[1].remaining,
            cmds[1].completed,
            cmds[1].failed,
            cmds[1].warning
        ),
        (None, Some(1), Some(1), Some(1))
    );
    let Some(Out::Data(_, ds)) = out.last() else {
        panic!("final data set expected")
    };
    assert_eq!(
        failed_uid_list(ds, ILE).unwrap(),
        vec!["1.2.3.2".to_string()]
    );
}

#[test]
fn c_cancel_during_a_c_get_ends_fe00_with_counts_after_the_running_sub_operation() {
    let mut r = get_rig();
    let q = start_get(&mut r);
    let ds = Bytes::from(dataset_ele(CT, "1.2.3.1", "1.2.3", 100));
    let st =
        r.s.sub_store_begin(
            q.id,
            &SubStore {
                sop_class_uid: CT,
                sop_instance_uid: "1.2.3.1",
                transfer_syntax: ELE,
            },
        )
        .unwrap();
    r.s.sub_store_data(&ds, true).unwrap();
    let _ = r.out(4096);
    // C-CANCEL-RQ, then the C-STORE-RSP of the running sub-operation.
    let cancel = Command {
        field: field::C_CANCEL_RQ,
        responded_to: Some(7),
        ..Command::default()
    };
    r.feed(GET_PC, &cancel, None);
    let rsp = Command {
        field: field::C_STORE_RSP,
        responded_to: Some(st.message_id),
        affected_sop_instance: Some("1.2.3.1"),
        status: Some(0),
        ..Command::default()
    };
    r.feed(CT_PC, &rsp, None);
    assert!(matches!(r.s.poll_event(), Some(ScpEvent::Cancel(id)) if id == q.id));
    assert!(matches!(r.s.poll_event(), Some(ScpEvent::Response(p)) if p.query == Some(q.id)));
    assert!(r.s.is_cancelled(q.id));
    assert!(!r.s.query_progress(q.id, SubOperations::default()));
    let mut tally = RetrieveTally::new(5);
    tally.record_status("1.2.3.1", 0);
    r.s.query_done(q.id, tally.finish(true, ILE), r.now);
    let out = r.out(4096);
    let Out::Cmd(_, c) = &out[0] else {
        panic!("final response expected")
    };
    let c = Command::decode(c).unwrap();
    assert_eq!(c.status, Some(status::CANCEL));
    assert_eq!(
        (c.remaining, c.completed, c.failed, c.warning),
        (Some(4), Some(1), Some(0), Some(0))
    );
    assert!(!c.has_dataset, "nothing failed: no failed-UID list");
    // The session serves the next request afterwards.
    let echo = Command {
        field: field::C_ECHO_RQ,
        message_id: Some(9),
        affected_sop_class: Some(VERIFICATION),
        ..Command::default()
    };
    r.feed(GET_PC, &echo, None);
    assert!(r.s.poll_event().is_none());
}

#[test]
fn early_store_response_is_reported_after_the_data_set_is_complete() {
    let mut r = get_rig();
    let q = start_get(&mut r);
    let st =
        r.s.sub_store_begin(
            q.id,
            &SubStore {
                sop_class_uid: CT,
                sop_instance_uid: "1.2.3.1",
                transfer_syntax: ELE,
            },
        )
        .unwrap();
    r.s.sub_store_data(&Bytes::from_static(b"\x08\x00"), false)
        .unwrap();
    let rsp = Command {
        field: field::C_STORE_RSP,
        responded_to: Some(st.message_id),
        status: Some(0xA700),
        ..Command::default()
    };
    r.feed(CT_PC, &rsp, None);
    assert!(
        r.s.poll_event().is_none(),
        "held until the data set is complete"
    );
    r.s.sub_store_data(&Bytes::from_static(b"\x16\x00"), true)
        .unwrap();
    assert!(matches!(r.s.poll_event(), Some(ScpEvent::Response(p)) if p.status == 0xA700));
    assert!(!r.s.sub_store_in_flight());
}

#[test]
fn sub_operations_only_for_the_outstanding_c_get() {
    let mut r = get_rig();
    let q = start_get(&mut r);
    r.s.query_done(q.id, RetrieveTally::new(0).finish(false, ILE), r.now);
    assert_eq!(
        r.s.sub_store_begin(
            q.id,
            &SubStore {
                sop_class_uid: CT,
                sop_instance_uid: "1.2.3.1",
                transfer_syntax: ELE,
            },
        ),
        Err(SendError::NoSuchQuery)
    );
}

#[test]
fn tally_final_statuses() {
    let mut t = RetrieveTally::new(2);
    t.record_status("1", 0);
    t.record_status("2", 0);
    let f = t.finish(false, ELE);
    assert_eq!((f.status, f.dataset), (0, None));
    let mut t = RetrieveTally::new(2);
    t.record_status("1", 0xA700);
    t.record_status("2", 0xC000);
    let f = t.finish(false, ELE);
    assert_eq!(f.status, status::OUT_OF_RESOURCES_SUBOPS);
    assert_eq!(
        failed_uid_list(&f.dataset.unwrap(), ELE).unwrap(),
        vec!["1".to_string(), "2".to_string()]
    );
    let mut t = RetrieveTally::new(70_000);
    t.record_status("1", 0xB007);
    assert_eq!(t.counts().remaining, u16::MAX);
    assert_eq!(t.counts().warning, 1);
    assert_eq!(t.finish(false, ELE).status, status::SUBOPS_WARNING);
}

fn refs(n: usize) -> Vec<SopRef> {
    (0..n)
        .map(|i| SopRef {
            sop_class_uid: CT.into(),
            sop_instance_uid: format!("1.2.3.{i}"),
        })
        .collect()
}

#[test]
fn commitment_data_sets_round_trip_in_both_little_endian_syntaxes() {
    for ts in [ILE, ELE] {
        let req = CommitmentRequest {
            transaction_uid: "2.25.1234".into(),
            references: refs(3),
        };
        let enc = req.encode(ts).unwrap();
        assert_eq!(CommitmentRequest::decode(&enc, ts).unwrap(), req);
        let res = CommitmentResult {
            transaction_uid: "2.25.1234".into(),
            committed: refs(2),
            failed: vec![(refs(3)[2].clone(), reason::NO_SUCH_OBJECT_INSTANCE)],
        };
        assert_eq!(res.event_type_id(), 2);
        let enc = res.encode(ts).unwrap();
        assert_eq!(CommitmentResult::decode(&enc, ts).unwrap(), res);
    }
    // No references: refused with context.
    let empty = CommitmentRequest {
        transaction_uid: "2.25.1".into(),
        references: Vec::new(),
    };
    let e = CommitmentRequest::decode(&empty.encode(ILE).unwrap(), ILE).unwrap_err();
    assert!(e.to_string().contains("no referenced instance"), "{e}");
    assert!(CommitmentRequest::decode(b"\x01\x02\x03", ILE).is_err());
}

#[test]
fn storage_commitment_report_goes_out_on_the_same_association() {
    let mut r = Rig::new(&[(1, sop::STORAGE_COMMITMENT_PUSH, &[ILE])], &[], 16384);
    let res = CommitmentResult {
        transaction_uid: "2.25.99".into(),
        committed: refs(1),
        failed: Vec::new(),
    };
    let mid = xenrad_dimse::scp::send_commitment_report(&mut r.s, &res).unwrap();
    let out = r.out(16384);
    let (Out::Cmd(_, c), Out::Data(_, d)) = (&out[0], &out[1]) else {
        panic!("{out:?}")
    };
    let c = Command::decode(c).unwrap();
    assert_eq!(c.field, field::N_EVENT_REPORT_RQ);
    assert_eq!(c.event_type_id, Some(1));
    assert_eq!(c.message_id, Some(mid));
    assert_eq!(
        c.affected_sop_instance,
        Some(sop::STORAGE_COMMITMENT_PUSH_INSTANCE)
    );
    assert_eq!(CommitmentResult::decode(d, ILE).unwrap(), res);
    let rsp = Command {
        field: field::N_EVENT_REPORT_RQ | 0x8000,
        responded_to: Some(mid),
        status: Some(0),
        ..Command::default()
    };
    r.feed(1, &rsp, None);
    assert!(
        matches!(r.s.poll_event(), Some(ScpEvent::Response(p)) if p.message_id == mid && p.query.is_none())
    );
    // A response to nothing we sent is ignored.
    r.feed(1, &rsp, None);
    assert!(r.s.poll_event().is_none());
}

/// A request other than C-CANCEL while a C-GET is outstanding would wait behind the C-GET,
/// whose C-STORE-RSPs would queue behind it: the association is aborted instead of hanging
/// (PS3.7 D.3.3.3, one outstanding operation by default).
#[test]
fn a_request_during_a_c_get_aborts_instead_of_hanging() {
    let mut r = get_rig();
    let _q = start_get(&mut r);
    let echo = Command {
        field: field::C_ECHO_RQ,
        message_id: Some(8),
        affected_sop_class: Some(sop::VERIFICATION),
        ..Command::default()
    };
    r.feed(GET_PC, &echo, None);
    let mut v = Vec::new();
    r.s.poll_transmit(&mut v);
    let out = v.concat();
    assert_eq!(out.first(), Some(&0x07), "A-ABORT expected");
    assert!(r.s.is_closed() || !r.s.is_waiting());
}
