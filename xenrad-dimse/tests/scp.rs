//! The SCP session (C-ECHO, streaming C-STORE, N-CREATE/N-SET) driven sans-IO.
#![allow(clippy::many_single_char_names, clippy::type_complexity)]

mod common;
use bytes::Bytes;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use xenrad_dimse::assoc::Event;
use xenrad_dimse::dimse::{Assembler, Command, DimseEvent, field, status};
use xenrad_dimse::pdu::{Pdu, encode, reader::PduReader};
use xenrad_dimse::scp::{
    Handler, NRequest, NResponse, QueryFinal, QueryRequest, ScpEvent, ScpSession, StoredInstance,
    answer_with,
};
use xenrad_dimse::store::parse_part10;

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xenrad-dimse-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[derive(Default)]
struct Recorder {
    stored: Mutex<Vec<StoredInstance>>,
    n: Mutex<Vec<(String, Option<String>, Vec<u8>)>>,
}

impl Handler for Recorder {
    fn on_stored(&self, i: &StoredInstance) -> u16 {
        self.stored.lock().unwrap().push(i.clone());
        status::SUCCESS
    }
    fn n_create(&self, r: &NRequest<'_>) -> NResponse {
        self.n.lock().unwrap().push((
            r.sop_class_uid.into(),
            r.sop_instance_uid.map(Into::into),
            r.dataset.to_vec(),
        ));
        NResponse {
            status: 0,
            sop_instance_uid: Some("1.2.3.99".into()),
            dataset: Some(r.dataset.to_vec()),
            ..NResponse::default()
        }
    }
    fn n_set(&self, r: &NRequest<'_>) -> NResponse {
        self.n.lock().unwrap().push((
            r.sop_class_uid.into(),
            r.sop_instance_uid.map(Into::into),
            r.dataset.to_vec(),
        ));
        NResponse::status(0x0110)
    }
}

struct Peer {
    s: ScpSession,
    now: Instant,
    h: Arc<Recorder>,
    dir: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One response read back: the command's fields and the data set, if any.
#[derive(Debug)]
struct Rsp {
    field: u16,
    status: u16,
    responded_to: Option<u16>,
    instance: Option<String>,
    dataset: Option<Vec<u8>>,
}

impl Peer {
    fn new(name: &str) -> Self {
        Self::with_dir(&tempdir(name))
    }
    fn with_dir(dir: &Path) -> Self {
        let now = Instant::now();
        let h = Arc::new(Recorder::default());
        let mut s = ScpSession::new(Arc::new(common::small_journal_config(dir)), now);
        s.handle_input(
            &associate_rq(
                &[
                    (1, VERIFICATION, &[ILE]),
                    (3, CT, &[ELE]),
                    (5, xenrad_dimse::assoc::policy::sop::MPPS, &[ILE]),
                ],
                4096,
            ),
            now,
        );
        let mut p = Self {
            s,
            now,
            h,
            dir: dir.to_path_buf(),
        };
        let out = p.out();
        assert_eq!(out[0], 0x02, "AC expected");
        p
    }
    fn out(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        self.s.poll_transmit(&mut v);
        v.concat()
    }
    /// Feeds `bytes` and answers every event with the recording handler.
    fn send(&mut self, bytes: &[u8]) -> Vec<Rsp> {
        self.s.handle_input(bytes, self.now);
        answer_with(&mut self.s, &*self.h, self.now);
        self.responses()
    }

    /// The responses queued since the last call.
    fn responses(&mut self) -> Vec<Rsp> {
        let out = self.out();
        let mut r = PduReader::new(xenrad_dimse::pdu::reader::ReaderLimits::default());
        r.push(&out);
        let mut asm = Assembler::default();
        let mut res: Vec<Rsp> = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            let Pdu::PData(p) = Pdu::parse(&f).unwrap() else {
                res.push(Rsp {
                    field: 0xFFFF,
                    status: u16::from(f[0]),
                    responded_to: None,
                    instance: None,
                    dataset: None,
                });
                continue;
            };
            for pdv in p.pdvs {
                assert!(f.len() - 6 <= 4096);
                let ev = asm
                    .push(xenrad_dimse::assoc::PdvData {
                        pc_id: pdv.pc_id,
                        is_command: pdv.is_command,
                        is_last: pdv.is_last,
                        data: Bytes::copy_from_slice(pdv.data),
                    })
                    .unwrap();
                match ev {
                    Some(DimseEvent::Command { bytes, .. }) => {
                        let c = Command::decode(&bytes).unwrap();
                        res.push(Rsp {
                            field: c.field,
                            status: c.status.unwrap(),
                            responded_to: c.responded_to,
                            instance: c.affected_sop_instance.map(Into::into),
                            dataset: None,
                        });
                    }
                    Some(DimseEvent::Data { data, .. }) => {
                        res.last_mut()
                            .unwrap()
                            .dataset
                            .get_or_insert_default()
                            .extend_from_slice(&data);
                    }
                    None => {}
                }
            }
        }
        res
    }
}

fn echo(id: u16) -> Command<'static> {
    Command {
        field: field::C_ECHO_RQ,
        message_id: Some(id),
        affected_sop_class: Some(VERIFICATION),
        ..Command::default()
    }
}

fn store_rq<'a>(id: u16, class: &'a str, inst: &'a str) -> Command<'a> {
    Command {
        field: field::C_STORE_RQ,
        message_id: Some(id),
        affected_sop_class: Some(class),
        affected_sop_instance: Some(inst),
        priority: Some(0),
        has_dataset: true,
        ..Command::default()
    }
}

/// What the storage directory holds besides the write-ahead journal's own directory
/// (stored files, and any temporary file left behind).
fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with(".xenrad-journal"))
        .collect()
}

#[test]
fn echo_answers_each_message_id() {
    let mut p = Peer::new("echo");
    for id in [1, 2, 3, 700, 65535] {
        let r = p.send(&message(1, &echo(id), None, 4096));
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].field, r[0].status, r[0].responded_to),
            (field::C_ECHO_RSP, 0, Some(id))
        );
    }
}

#[test]
fn command_split_over_many_pdvs_and_sharing_a_pdu_with_data() {
    let mut p = Peer::new("split");
    // Command fragmented into 5-byte PDVs, one PDU each.
    let r = p.send(&message(1, &echo(9), None, 11));
    assert_eq!(r[0].responded_to, Some(9));
    // Command and data set PDVs in one PDU.
    let ds = dataset_ele(CT, "1.2.3.4.1", "1.2.3", 100);
    let cmd = store_rq(10, CT, "1.2.3.4.1").encode();
    let mut body = Vec::new();
    for (is_cmd, d) in [(true, &cmd[..]), (false, &ds[..])] {
        body.extend_from_slice(&((d.len() + 2) as u32).to_be_bytes());
        body.push(3);
        body.push(u8::from(is_cmd) | 2);
        body.extend_from_slice(d);
    }
    let mut pdu = vec![4, 0];
    pdu.extend_from_slice(&(body.len() as u32).to_be_bytes());
    pdu.extend_from_slice(&body);
    let r = p.send(&pdu);
    assert_eq!(
        (r[0].field, r[0].status, r[0].responded_to),
        (field::C_STORE_RSP, 0, Some(10))
    );
}

#[test]
fn store_writes_part10_with_meta_from_the_command() {
    let mut p = Peer::new("store");
    let ds = dataset_ele(CT, "1.2.826.0.1.5", "1.2.826.0.9", 50_000);
    let r = p.send(&message(
        3,
        &store_rq(1, CT, "1.2.826.0.1.5"),
        Some(&ds),
        4096,
    ));
    assert_eq!(
        (r[0].status, r[0].instance.as_deref()),
        (0, Some("1.2.826.0.1.5"))
    );
    let stored = p.h.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 1);
    let si = &stored[0];
    assert_eq!(si.study_instance_uid.as_deref(), Some("1.2.826.0.9"));
    assert_eq!(si.calling_ae, "TESTSCU");
    assert_eq!(si.dataset_len, ds.len() as u64);
    // The handler gets the data set's first bytes (4 KiB PDVs, up to 64 KiB kept).
    assert_eq!(si.head.0, ds[..ds.len().min(64 * 1024)]);
    let file = std::fs::read(&si.path).unwrap();
    let meta = parse_part10(&file).unwrap();
    assert_eq!(meta.sop_class_uid, CT);
    assert_eq!(meta.sop_instance_uid, "1.2.826.0.1.5");
    assert_eq!(meta.transfer_syntax, ELE);
    assert_eq!(&file[meta.dataset_offset..], &ds[..]);
    // (0002,0000) group length covers exactly the rest of group 0002.
    let gl = u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
    assert_eq!(144 + gl, meta.dataset_offset);
    // No temporary file is left behind.
    let names = entries(&p.dir);
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn duplicate_instance_replaces_atomically_and_succeeds() {
    let mut p = Peer::new("dup");
    let a = dataset_ele(CT, "1.2.5", "1.2.9", 10);
    let b = dataset_ele(CT, "1.2.5", "1.2.9", 20);
    assert_eq!(
        p.send(&message(3, &store_rq(1, CT, "1.2.5"), Some(&a), 4096))[0].status,
        0
    );
    assert_eq!(
        p.send(&message(3, &store_rq(2, CT, "1.2.5"), Some(&b), 4096))[0].status,
        0
    );
    let files = entries(&p.dir);
    assert_eq!(files.len(), 1);
    let f = std::fs::read(&files[0]).unwrap();
    assert!(f.ends_with(&b));
}

#[test]
fn wrong_sop_class_is_0122_and_association_stays_usable() {
    let mut p = Peer::new("class");
    let ds = dataset_ele(MR, "1.2.6", "1.2.9", 10);
    // Context 3 was negotiated for CT; the command says MR.
    let r = p.send(&message(3, &store_rq(1, MR, "1.2.6"), Some(&ds), 4096));
    assert_eq!(r[0].status, status::SOP_CLASS_NOT_SUPPORTED);
    assert_eq!(p.send(&message(1, &echo(2), None, 4096))[0].status, 0);
    assert!(entries(&p.dir).is_empty());
}

#[test]
fn storage_failure_is_a700_and_association_stays_usable() {
    let dir = tempdir("fail").join("missing");
    let mut p = Peer::with_dir(&dir);
    let ds = dataset_ele(CT, "1.2.7", "1.2.9", 10);
    let r = p.send(&message(3, &store_rq(1, CT, "1.2.7"), Some(&ds), 4096));
    assert_eq!(r[0].status, status::OUT_OF_RESOURCES);
    assert_eq!(p.send(&message(1, &echo(2), None, 4096))[0].status, 0);
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn unreadable_dataset_is_c000_and_mismatched_uid_a900() {
    let mut p = Peer::new("bad");
    let garbage = vec![0x08, 0x00, 0x16, 0x00, b'u', b'i', 0xFF, 0xFF, 1, 2];
    let r = p.send(&message(3, &store_rq(1, CT, "1.2.8"), Some(&garbage), 4096));
    assert_eq!(r[0].status, status::CANNOT_UNDERSTAND);
    let ds = dataset_ele(CT, "1.2.8.1", "1.2.9", 10);
    let r = p.send(&message(3, &store_rq(2, CT, "1.2.8.2"), Some(&ds), 4096));
    assert_eq!(r[0].status, status::DATASET_MISMATCH);
    assert!(entries(&p.dir).is_empty());
    assert_eq!(p.send(&message(1, &echo(3), None, 4096))[0].status, 0);
}

#[test]
fn n_create_and_n_set_reach_the_handler() {
    let mpps = xenrad_dimse::assoc::policy::sop::MPPS;
    let mut p = Peer::new("mpps");
    let c = Command {
        field: field::N_CREATE_RQ,
        message_id: Some(4),
        affected_sop_class: Some(mpps),
        affected_sop_instance: Some("1.2.3.50"),
        has_dataset: true,
        ..Command::default()
    };
    let r = p.send(&message(
        5,
        &c,
        Some(b"\x08\x00\x20\x00\x02\x00\x00\x00AB"),
        4096,
    ));
    assert_eq!(
        (r[0].field, r[0].status, r[0].responded_to),
        (field::N_CREATE_RSP, 0, Some(4))
    );
    assert_eq!(r[0].instance.as_deref(), Some("1.2.3.99"));
    assert_eq!(
        r[0].dataset.as_deref(),
        Some(&b"\x08\x00\x20\x00\x02\x00\x00\x00AB"[..])
    );
    let s = Command {
        field: field::N_SET_RQ,
        message_id: Some(5),
        requested_sop_class: Some(mpps),
        requested_sop_instance: Some("1.2.3.50"),
        has_dataset: true,
        ..Command::default()
    };
    let r = p.send(&message(
        5,
        &s,
        Some(b"\x08\x00\x20\x00\x00\x00\x00\x00"),
        4096,
    ));
    assert_eq!(
        (r[0].field, r[0].status, r[0].instance.as_deref()),
        (field::N_SET_RSP, 0x0110, Some("1.2.3.50"))
    );
    let n = p.h.n.lock().unwrap();
    assert_eq!(n.len(), 2);
    assert_eq!(n[0].1.as_deref(), Some("1.2.3.50"));
}

#[test]
fn unknown_operation_is_refused_and_data_before_command_aborts() {
    let mut p = Peer::new("unk");
    let c = Command {
        field: field::C_FIND_RQ,
        message_id: Some(1),
        affected_sop_class: Some(CT),
        has_dataset: true,
        ..Command::default()
    };
    let r = p.send(&message(
        3,
        &c,
        Some(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY "),
        4096,
    ));
    assert_eq!(r[0].status, status::SOP_CLASS_NOT_SUPPORTED);
    let c = Command {
        field: 0x0110, // N-GET-RQ: not served
        message_id: Some(2),
        requested_sop_class: Some(CT),
        ..Command::default()
    };
    assert_eq!(
        p.send(&message(3, &c, None, 4096))[0].status,
        status::UNRECOGNIZED_OPERATION
    );
    let mut stray = Vec::new();
    encode::pdata_fragments(&mut stray, 3, false, b"abcd", 4096);
    let r = p.send(&stray);
    assert_eq!(r[0].status, 0x07, "A-ABORT expected");
    let ev: Vec<_> = std::iter::from_fn(|| p.s.association().poll_event()).collect();
    assert!(!ev.iter().any(|e| matches!(e, Event::Data(_))));
}

/// No commit runs inside `process`: a complete C-STORE becomes an event, nothing is answered
/// or processed after it until the application answers, so responses keep their order
/// (PS3.7 §9.1: one answer per request, what follows a C-STORE waits for its answer).
#[test]
fn store_events_answer_in_order() {
    let mut p = Peer::new("events");
    let a = dataset_ele(CT, "1.2.31", "1.2.9", 10_000);
    let b = dataset_ele(CT, "1.2.32", "1.2.9", 10_000);
    let mut wire = message(3, &store_rq(1, CT, "1.2.31"), Some(&a), 4096);
    wire.extend(message(3, &store_rq(2, CT, "1.2.32"), Some(&b), 4096));
    wire.extend(message(1, &echo(3), None, 4096));
    p.s.handle_input(&wire, p.now);
    assert!(
        !p.s.wants_input(),
        "no more input while a commit is awaited"
    );
    let Some(ScpEvent::Store(c1)) = p.s.poll_event() else {
        panic!("store event expected")
    };
    assert!(p.s.poll_event().is_none(), "the second C-STORE waits");
    assert!(
        p.responses().is_empty(),
        "nothing answered before the commit"
    );
    assert!(
        entries(&p.dir).iter().all(|e| e
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".xenrad-")),
        "only temporary files before the commit: {:?}",
        entries(&p.dir)
    );
    assert_eq!(c1.instance().sop_instance_uid, "1.2.31");
    let id = c1.id();
    let inst = c1.commit().unwrap();
    p.s.answer_store(id, 0, Some(inst), p.now);
    let r = p.responses();
    assert_eq!(
        r.iter().map(|r| r.responded_to).collect::<Vec<_>>(),
        [Some(1)]
    );
    let Some(ScpEvent::Store(c2)) = p.s.poll_event() else {
        panic!("second store event expected")
    };
    let id = c2.id();
    let inst = c2.commit().unwrap();
    p.s.answer_store(id, 0, Some(inst), p.now);
    let r = p.responses();
    assert_eq!(
        r.iter()
            .map(|r| (r.responded_to, r.status))
            .collect::<Vec<_>>(),
        [(Some(2), 0), (Some(3), 0)]
    );
    assert!(!p.s.is_waiting());
    assert_eq!(entries(&p.dir).len(), 2);
    // A stale answer is ignored.
    p.s.answer_store(id, 0, None, p.now);
    assert!(p.responses().is_empty());
}

/// A C-STORE whose event was not taken when the transport closes is not stored, and leaves
/// no temporary file; one the application aborts leaves nothing either.
#[test]
fn transport_closed_before_the_commit_stores_nothing() {
    let mut p = Peer::new("events-closed");
    let a = dataset_ele(CT, "1.2.41", "1.2.9", 10_000);
    p.s.handle_input(
        &message(3, &store_rq(1, CT, "1.2.41"), Some(&a), 4096),
        p.now,
    );
    p.s.handle_transport_closed(p.now);
    assert!(p.s.poll_event().is_none());
    assert!(p.h.stored.lock().unwrap().is_empty());
    assert!(entries(&p.dir).is_empty(), "{:?}", entries(&p.dir));

    let mut p = Peer::new("events-aborted");
    p.s.handle_input(
        &message(3, &store_rq(1, CT, "1.2.41"), Some(&a), 4096),
        p.now,
    );
    let Some(ScpEvent::Store(c)) = p.s.poll_event() else {
        panic!("store event expected")
    };
    p.s.handle_transport_closed(p.now);
    c.abort();
    assert!(entries(&p.dir).is_empty(), "{:?}", entries(&p.dir));
}

/// Issue 15: a C-STORE whose data set is random bytes is refused with an Error Comment and
/// leaves nothing behind (it was answered 0x0000 and stored before).
#[test]
fn random_bytes_data_set_is_refused_and_nothing_is_stored() {
    let mut p = Peer::new("random");
    // xorshift: deterministic pseudo-random bytes.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for seed in 0..8u64 {
        x ^= seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let garbage: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let r = p.send(&message(
            3,
            &store_rq(1, CT, "1.2.826.0.1.77"),
            Some(&garbage),
            4096,
        ));
        assert!(
            r[0].status == status::CANNOT_UNDERSTAND || r[0].status == status::DATASET_MISMATCH,
            "status {:04X}",
            r[0].status
        );
    }
    assert!(entries(&p.dir).is_empty(), "{:?}", entries(&p.dir));
    assert!(p.h.stored.lock().unwrap().is_empty());
    assert_eq!(p.send(&message(1, &echo(3), None, 4096))[0].status, 0);
}

/// Issue 20 (bad input through the gateway's doors): a data set cut off inside an element
/// (pydicom's MR_truncated.dcm, a CT cut at 10-99.9 %) was committed and answered 0x0000.
/// Every cut inside an element is refused 0xC000 and nothing is stored; a cut on an element
/// boundary is a smaller, well-formed data set and is stored.
#[test]
fn truncated_data_set_is_c000_and_nothing_is_stored() {
    let mut p = Peer::new("truncated");
    let ds = dataset_ele(CT, "1.2.826.0.1.88", "1.2.9", 5000);
    for (i, cut) in [ds.len() - 1, ds.len() - 100, ds.len() / 2 + 3, 200]
        .into_iter()
        .enumerate()
    {
        let id = u16::try_from(i + 1).unwrap();
        let r = p.send(&message(
            3,
            &store_rq(id, CT, "1.2.826.0.1.88"),
            Some(&ds[..cut]),
            4096,
        ));
        assert_eq!(r[0].status, status::CANNOT_UNDERSTAND, "cut at {cut}");
    }
    assert!(entries(&p.dir).is_empty(), "{:?}", entries(&p.dir));
    assert!(p.h.stored.lock().unwrap().is_empty());
    let r = p.send(&message(
        3,
        &store_rq(9, CT, "1.2.826.0.1.88"),
        Some(&ds),
        4096,
    ));
    assert_eq!(r[0].status, 0);
}

/// A handler answering C-FIND with `n` matches, each a copy of the identifier.
struct Finder(usize);
impl Handler for Finder {
    fn find(&self, req: &QueryRequest, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> QueryFinal {
        for _ in 0..self.0 {
            if !emit(req.identifier.to_vec()) {
                return xenrad_dimse::scp::QueryOutcome::cancelled();
            }
        }
        QueryFinal::status(0)
    }
}

fn find_rq(id: u16) -> Command<'static> {
    Command {
        field: field::C_FIND_RQ,
        message_id: Some(id),
        affected_sop_class: Some(STUDY_FIND),
        priority: Some(0),
        has_dataset: true,
        ..Command::default()
    }
}

const STUDY_FIND: &str = xenrad_dimse::assoc::policy::sop::STUDY_ROOT_FIND;
const QUERY: &[u8] = b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ";

fn qr_peer(name: &str) -> Peer {
    let dir = tempdir(name);
    let mut cfg = common::small_journal_config(&dir);
    let mut policy = (*cfg.policy).clone();
    policy.abstract_syntaxes.push(STUDY_FIND.into());
    cfg.policy = Arc::new(policy);
    let now = Instant::now();
    let mut s = ScpSession::new(Arc::new(cfg), now);
    s.handle_input(
        &associate_rq(&[(1, VERIFICATION, &[ILE]), (7, STUDY_FIND, &[ILE])], 4096),
        now,
    );
    let mut p = Peer {
        s,
        now,
        h: Arc::new(Recorder::default()),
        dir,
    };
    assert_eq!(p.out()[0], 0x02, "AC expected");
    p
}

/// C-FIND: every match is a pending response (0xFF00) with its identifier, then the final
/// 0x0000 without a data set (PS3.4 C.4.1.2.2, PS3.7 §9.1.2).
#[test]
fn find_streams_pending_matches_then_success() {
    let mut p = qr_peer("find");
    p.s.handle_input(&message(7, &find_rq(11), Some(QUERY), 4096), p.now);
    answer_with(&mut p.s, &Finder(3), p.now);
    let r = p.responses();
    assert_eq!(
        r.iter()
            .map(|r| (r.field, r.status, r.responded_to, r.dataset.is_some()))
            .collect::<Vec<_>>(),
        [
            (0x8020, status::PENDING, Some(11), true),
            (0x8020, status::PENDING, Some(11), true),
            (0x8020, status::PENDING, Some(11), true),
            (0x8020, 0, Some(11), false),
        ]
    );
    assert_eq!(r[0].dataset.as_deref(), Some(QUERY));
}

/// C-CANCEL-RQ during a C-FIND (PS3.7 §9.3.2.3): the application is told, further matches
/// are refused, and the final status is 0xFE00; a C-ECHO sent during the query is answered
/// after it.
#[test]
fn cancel_stops_a_find_with_fe00() {
    let mut p = qr_peer("cancel");
    p.s.handle_input(&message(7, &find_rq(12), Some(QUERY), 4096), p.now);
    let Some(ScpEvent::Query(q)) = p.s.poll_event() else {
        panic!("query event expected")
    };
    assert!(p.s.wants_input(), "a query keeps reading for its C-CANCEL");
    assert!(p.s.query_match(q.id, QUERY));
    let cancel = Command {
        field: field::C_CANCEL_RQ,
        responded_to: Some(12),
        ..Command::default()
    };
    let mut wire = message(7, &cancel, None, 4096);
    wire.extend(message(1, &echo(13), None, 4096));
    p.s.handle_input(&wire, p.now);
    assert!(matches!(p.s.poll_event(), Some(ScpEvent::Cancel(id)) if id == q.id));
    assert!(p.s.is_cancelled(q.id));
    assert!(!p.s.query_match(q.id, QUERY), "no match after the cancel");
    p.s.query_done(q.id, xenrad_dimse::scp::QueryOutcome::cancelled(), p.now);
    let r = p.responses();
    assert_eq!(
        r.iter()
            .map(|r| (r.field, r.status, r.responded_to))
            .collect::<Vec<_>>(),
        [
            (0x8020, status::PENDING, Some(12)),
            (0x8020, status::CANCEL, Some(12)),
            (field::C_ECHO_RSP, 0, Some(13)),
        ]
    );
}
