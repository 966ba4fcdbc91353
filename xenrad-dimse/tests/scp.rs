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
use xenrad_dimse::scp::{Handler, NRequest, NResponse, ScpSession, StoredInstance};
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
        let mut s = ScpSession::new(Arc::new(common::small_journal_config(dir)), h.clone(), now);
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
    fn send(&mut self, bytes: &[u8]) -> Vec<Rsp> {
        self.s.handle_input(bytes, self.now);
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
    assert_eq!(r[0].status, status::UNRECOGNIZED_OPERATION);
    let mut stray = Vec::new();
    encode::pdata_fragments(&mut stray, 3, false, b"abcd", 4096);
    let r = p.send(&stray);
    assert_eq!(r[0].status, 0x07, "A-ABORT expected");
    let ev: Vec<_> = std::iter::from_fn(|| p.s.association().poll_event()).collect();
    assert!(!ev.iter().any(|e| matches!(e, Event::Data(_))));
}

/// With deferred commits, processing stops before each C-STORE's commit; `commit_ready`
/// commits, answers and goes on, so responses keep their order (PS3.7 §9.1.1: one answer per
/// request, and what follows a C-STORE is processed after it was answered).
#[test]
fn deferred_commits_answer_in_order() {
    let mut p = Peer::new("defer");
    p.s.set_defer_commits(true);
    let a = dataset_ele(CT, "1.2.31", "1.2.9", 10_000);
    let b = dataset_ele(CT, "1.2.32", "1.2.9", 10_000);
    let mut wire = message(3, &store_rq(1, CT, "1.2.31"), Some(&a), 4096);
    wire.extend(message(3, &store_rq(2, CT, "1.2.32"), Some(&b), 4096));
    wire.extend(message(1, &echo(3), None, 4096));
    p.s.handle_input(&wire, p.now);
    assert!(p.s.has_ready_commit());
    assert!(
        p.responses().is_empty(),
        "nothing answered before the commit"
    );
    assert!(p.h.stored.lock().unwrap().is_empty());
    p.s.commit_ready(p.now);
    let r = p.responses();
    assert_eq!(
        r.iter().map(|r| r.responded_to).collect::<Vec<_>>(),
        [Some(1)]
    );
    assert!(
        p.s.has_ready_commit(),
        "stopped again at the second C-STORE"
    );
    p.s.commit_ready(p.now);
    let r = p.responses();
    assert_eq!(
        r.iter()
            .map(|r| (r.responded_to, r.status))
            .collect::<Vec<_>>(),
        [(Some(2), 0), (Some(3), 0)]
    );
    assert!(!p.s.has_ready_commit());
    assert_eq!(p.h.stored.lock().unwrap().len(), 2);
    assert_eq!(entries(&p.dir).len(), 2);
}

/// A C-STORE waiting for its deferred commit when the transport closes is not stored, and
/// leaves no temporary file.
#[test]
fn transport_closed_before_a_deferred_commit_stores_nothing() {
    let mut p = Peer::new("defer-closed");
    p.s.set_defer_commits(true);
    let a = dataset_ele(CT, "1.2.41", "1.2.9", 10_000);
    p.s.handle_input(
        &message(3, &store_rq(1, CT, "1.2.41"), Some(&a), 4096),
        p.now,
    );
    assert!(p.s.has_ready_commit());
    p.s.handle_transport_closed(p.now);
    assert!(!p.s.has_ready_commit());
    assert!(p.h.stored.lock().unwrap().is_empty());
    assert!(entries(&p.dir).is_empty(), "{:?}", entries(&p.dir));
}
