//! Storage: the header peek over sequences and split input, the sink contract as the SCP
//! drives it (failures at each step, acknowledgement only after commit), the memory sink,
//! and the file sink's shared directory fsync under concurrent commits.
#![allow(
    clippy::many_single_char_names,
    clippy::trivially_copy_pass_by_ref,
    clippy::case_sensitive_file_extension_comparisons
)]

mod common;
use common::*;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use xenrad_dimse::dimse::{Command, field, status};
use xenrad_dimse::pdu::{Pdu, reader::PduReader};
use xenrad_dimse::scp::{Handler, ScpConfig, ScpSession, StoredInstance};
use xenrad_dimse::store::{
    FileMeta, FileSink, InstanceHeader, InstanceSink, InstanceStart, MemorySink, PeekOutcome,
    StorageSink, parse_part10, peek_header,
};

/// Element encoder for Explicit (`explicit`) or Implicit VR Little Endian.
struct Ds {
    explicit: bool,
    b: Vec<u8>,
}

impl Ds {
    fn new(explicit: bool) -> Self {
        Self {
            explicit,
            b: Vec::new(),
        }
    }
    fn tag(&mut self, g: u16, e: u16) {
        self.b.extend_from_slice(&g.to_le_bytes());
        self.b.extend_from_slice(&e.to_le_bytes());
    }
    fn el(&mut self, g: u16, e: u16, vr: &[u8; 2], v: &[u8]) -> &mut Self {
        let mut v = v.to_vec();
        if v.len() % 2 == 1 {
            v.push(if vr == b"UI" { 0 } else { b' ' });
        }
        self.tag(g, e);
        if self.explicit {
            self.b.extend_from_slice(vr);
            if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN") {
                self.b.extend_from_slice(&[0, 0]);
                self.b.extend_from_slice(&(v.len() as u32).to_le_bytes());
            } else {
                self.b.extend_from_slice(&(v.len() as u16).to_le_bytes());
            }
        } else {
            self.b.extend_from_slice(&(v.len() as u32).to_le_bytes());
        }
        self.b.extend_from_slice(&v);
        self
    }
    /// An undefined-length sequence whose single undefined-length item holds `inner` (raw,
    /// already encoded), followed by a defined-length item of `inner` too.
    fn seq(&mut self, g: u16, e: u16, inner: &[u8]) -> &mut Self {
        self.tag(g, e);
        if self.explicit {
            self.b.extend_from_slice(b"SQ\0\0");
        }
        self.b.extend_from_slice(&u32::MAX.to_le_bytes());
        self.tag(0xFFFE, 0xE000);
        self.b.extend_from_slice(&u32::MAX.to_le_bytes());
        self.b.extend_from_slice(inner);
        self.tag(0xFFFE, 0xE00D);
        self.b.extend_from_slice(&0u32.to_le_bytes());
        self.tag(0xFFFE, 0xE000);
        self.b
            .extend_from_slice(&(inner.len() as u32).to_le_bytes());
        self.b.extend_from_slice(inner);
        self.tag(0xFFFE, 0xE0DD);
        self.b.extend_from_slice(&0u32.to_le_bytes());
        self
    }
}

/// A CT-like header with sequences before the patient module, then pixel data.
fn header_dataset(explicit: bool, inst: &str, pixels: usize) -> Vec<u8> {
    // Item content: a UID and a nested undefined-length sequence with an item.
    let mut nested = Ds::new(explicit);
    nested.el(0x0008, 0x0100, b"SH", b"CODE");
    let mut inner = Ds::new(explicit);
    inner.el(0x0008, 0x1150, b"UI", CT.as_bytes());
    inner.seq(0x0040, 0xA043, &nested.b);
    let mut d = Ds::new(explicit);
    d.el(0x0008, 0x0005, b"CS", b"ISO_IR 100")
        .el(0x0008, 0x0016, b"UI", CT.as_bytes())
        .el(0x0008, 0x0018, b"UI", inst.as_bytes())
        .el(0x0008, 0x0020, b"DA", b"20240131")
        .el(0x0008, 0x0030, b"TM", b"101500")
        .el(0x0008, 0x0050, b"SH", b"ACC42")
        .el(0x0008, 0x0060, b"CS", b"CT")
        .el(0x0008, 0x1030, b"LO", b" Chest ")
        .seq(0x0008, 0x1140, &inner.b)
        .el(0x0009, 0x0010, b"LO", b"PRIVATE CREATOR")
        .el(0x0010, 0x0010, b"PN", b"M\xfcller^Hans")
        .el(0x0010, 0x0020, b"LO", b"PID-7")
        .el(0x0010, 0x0021, b"LO", b"HOSP")
        .el(0x0010, 0x0030, b"DA", b"19700101")
        .el(0x0010, 0x0040, b"CS", b"M")
        .el(0x0018, 0x0050, b"DS", b"1.25")
        .el(0x0020, 0x000D, b"UI", b"1.2.826.0.7")
        .el(0x0020, 0x000E, b"UI", b"1.2.826.0.7.1")
        .el(0x0020, 0x0011, b"IS", b"3")
        .el(0x0020, 0x0013, b"IS", b"17")
        .el(0x0020, 0x0032, b"DS", b"0\\0\\0");
    let px: Vec<u8> = (0..pixels).map(|i| (i * 3) as u8).collect();
    d.el(0x7FE0, 0x0010, b"OW", &px);
    d.b
}

fn expected_header(inst: &str) -> InstanceHeader {
    let s = |v: &str| Some(v.to_owned());
    InstanceHeader {
        sop_class_uid: s(CT),
        sop_instance_uid: s(inst),
        study_date: s("20240131"),
        study_time: s("101500"),
        accession_number: s("ACC42"),
        modality: s("CT"),
        study_description: s("Chest"),
        patient_name: s("Müller^Hans"),
        patient_id: s("PID-7"),
        issuer_of_patient_id: s("HOSP"),
        patient_birth_date: s("19700101"),
        patient_sex: s("M"),
        study_instance_uid: s("1.2.826.0.7"),
        series_instance_uid: s("1.2.826.0.7.1"),
        series_number: s("3"),
        instance_number: s("17"),
    }
}

#[test]
fn peek_skips_sequences_and_finds_every_fact_in_both_vr_encodings() {
    for (explicit, ts) in [(true, ELE), (false, ILE)] {
        let ds = header_dataset(explicit, "1.2.3.4", 1000);
        let PeekOutcome::Done(h) = peek_header(&ds, ts, false) else {
            panic!("not done ({ts})");
        };
        assert_eq!(
            InstanceHeader::from_peeked(&h),
            expected_header("1.2.3.4"),
            "{ts}"
        );
        // Every prefix: more is needed (never a wrong "done", never a panic), and the facts
        // found so far are a subset of the final ones.
        // Up to the end of (0020,0013), i.e. the start of (0020,0032).
        let header_end = ds.windows(4).position(|w| w == [0x20, 0, 0x32, 0]).unwrap();
        for cut in 0..header_end {
            match peek_header(&ds[..cut], ts, false) {
                PeekOutcome::NeedMore(p) => {
                    let part = InstanceHeader::from_peeked(&p);
                    if let Some(pid) = part.patient_id {
                        assert_eq!(pid, "PID-7");
                    }
                }
                other => panic!("prefix {cut} of {ts}: {other:?}"),
            }
            // Taken as a whole data set, a cut inside an element is invalid, not a panic.
            let _ = peek_header(&ds[..cut], ts, true);
        }
    }
}

#[test]
fn peek_rejects_garbage_and_skips_deflate() {
    assert!(matches!(
        peek_header(&[0x08, 0, 0x16, 0, b'u', b'i', 2, 0, b'1', 0], ELE, true),
        PeekOutcome::Invalid(4)
    ));
    // A delimiter at top level is not a data set.
    let mut d = vec![0xFE, 0xFF, 0x0D, 0xE0];
    d.extend_from_slice(&[0; 4]);
    assert!(matches!(
        peek_header(&d, ILE, true),
        PeekOutcome::Invalid(0)
    ));
    assert_eq!(
        peek_header(&d, "1.2.840.10008.1.2.1.99", true),
        PeekOutcome::Unsupported
    );
}

/// A sink that records the order of calls and fails where told.
#[derive(Default)]
struct Scripted {
    log: Arc<Mutex<Vec<String>>>,
    fail_begin: bool,
    fail_write: bool,
    fail_commit: bool,
}

struct ScriptedInstance {
    log: Arc<Mutex<Vec<String>>>,
    fail_write: bool,
    fail_commit: bool,
    bytes: usize,
}

impl StorageSink for Scripted {
    fn begin(&self, start: &InstanceStart<'_>) -> io::Result<Box<dyn InstanceSink>> {
        self.log
            .lock()
            .unwrap()
            .push(format!("begin {}", start.meta.sop_instance_uid));
        if self.fail_begin {
            return Err(io::Error::other("begin"));
        }
        Ok(Box::new(ScriptedInstance {
            log: self.log.clone(),
            fail_write: self.fail_write,
            fail_commit: self.fail_commit,
            bytes: 0,
        }))
    }
    fn may_block(&self) -> bool {
        false
    }
}

impl InstanceSink for ScriptedInstance {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.bytes += chunk.len();
        if self.fail_write {
            return Err(io::ErrorKind::StorageFull.into());
        }
        Ok(())
    }
    fn commit(self: Box<Self>) -> io::Result<PathBuf> {
        self.log
            .lock()
            .unwrap()
            .push(format!("commit {}", self.bytes));
        if self.fail_commit {
            return Err(io::Error::other("commit"));
        }
        Ok(PathBuf::from("key"))
    }
    fn abort(self: Box<Self>) {
        self.log.lock().unwrap().push("abort".into());
    }
}

struct LogHandler(Arc<Mutex<Vec<String>>>, Mutex<Vec<StoredInstance>>);
impl Handler for LogHandler {
    fn on_stored(&self, i: &StoredInstance) -> u16 {
        self.0.lock().unwrap().push("on_stored".into());
        self.1.lock().unwrap().push(i.clone());
        status::SUCCESS
    }
}

/// Runs one C-STORE of `ds` (4 KiB PDUs) through a session with `sink`; returns the
/// response status, the call log (with "rsp" where the response left) and what the handler
/// got.
fn store_with(
    sink: Arc<dyn StorageSink>,
    log: &Arc<Mutex<Vec<String>>>,
    inst: &str,
    ds: &[u8],
) -> (u16, Vec<String>, Vec<StoredInstance>) {
    let now = Instant::now();
    let h = Arc::new(LogHandler(log.clone(), Mutex::default()));
    let mut s = ScpSession::new(Arc::new(ScpConfig::with_sink(sink)), now);
    s.handle_input(&associate_rq(&[(3, CT, &[ELE])], 4096), now);
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    out.clear();
    let cmd = Command {
        field: field::C_STORE_RQ,
        message_id: Some(1),
        affected_sop_class: Some(CT),
        affected_sop_instance: Some(inst),
        priority: Some(0),
        has_dataset: true,
        ..Command::default()
    };
    let bytes = message(3, &cmd, Some(ds), 4096);
    let mut st = None;
    for chunk in bytes.chunks(1000) {
        s.handle_input(chunk, now);
        xenrad_dimse::scp::answer_with(&mut s, &*h, now);
        s.poll_transmit(&mut out);
        if !out.is_empty() {
            log.lock().unwrap().push("rsp".into());
            let mut r = PduReader::new(xenrad_dimse::pdu::reader::ReaderLimits::default());
            r.push(&out.concat());
            let f = r.next_frame().unwrap().unwrap();
            let Pdu::PData(p) = Pdu::parse(&f).unwrap() else {
                panic!("not P-DATA")
            };
            st = Command::decode(p.pdvs[0].data).unwrap().status;
            out.clear();
        }
    }
    let stored = h.1.lock().unwrap().clone();
    (st.expect("a response"), log.lock().unwrap().clone(), stored)
}

#[test]
fn sink_contract_ack_after_commit_and_failures_answer_a700() {
    let ds = header_dataset(true, "1.2.5.1", 20_000);
    let log = Arc::new(Mutex::new(Vec::new()));
    let ok = Scripted {
        log: log.clone(),
        ..Scripted::default()
    };
    let (st, calls, stored) = store_with(Arc::new(ok), &log, "1.2.5.1", &ds);
    assert_eq!(st, status::SUCCESS);
    assert_eq!(
        calls,
        [
            "begin 1.2.5.1".to_owned(),
            format!("commit {}", ds.len()),
            "on_stored".into(),
            "rsp".into()
        ]
    );
    // Header facts collected over 4 KiB PDVs reach the handler.
    assert_eq!(stored[0].header, Some(expected_header("1.2.5.1")));
    assert_eq!(stored[0].study_instance_uid.as_deref(), Some("1.2.826.0.7"));
    assert_eq!(stored[0].path, PathBuf::from("key"));

    for (which, expect) in [
        ("begin", &["begin 1.2.5.1", "rsp"][..]),
        ("write", &["begin 1.2.5.1", "abort", "rsp"][..]),
        ("commit", &["begin 1.2.5.1", "commit 20000", "rsp"][..]),
    ] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Scripted {
            log: log.clone(),
            fail_begin: which == "begin",
            fail_write: which == "write",
            fail_commit: which == "commit",
        };
        let (st, calls, stored) = store_with(Arc::new(sink), &log, "1.2.5.1", &ds);
        assert_eq!(st, status::OUT_OF_RESOURCES, "{which}");
        let expect: Vec<String> = expect
            .iter()
            .map(|s| {
                if s.starts_with("commit") {
                    format!("commit {}", ds.len())
                } else {
                    (*s).to_owned()
                }
            })
            .collect();
        assert_eq!(calls, expect, "{which}");
        assert!(stored.is_empty());
    }
    // Mismatched SOP Instance UID: aborted, 0xA900, never committed.
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Scripted {
        log: log.clone(),
        ..Scripted::default()
    };
    let (st, calls, _) = store_with(Arc::new(sink), &log, "1.2.5.2", &ds);
    assert_eq!(st, status::DATASET_MISMATCH);
    assert_eq!(calls, ["begin 1.2.5.2", "abort", "rsp"]);
}

#[test]
fn memory_sink_keeps_instances_within_its_bounds() {
    let ds = header_dataset(false, "1.2.6.1", 5000);
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::new(MemorySink::new(64 << 10, 1 << 20));
    // ILE data on an ELE context is unreadable: 0xC000, nothing kept.
    let (st, _, _) = store_with(sink.clone(), &log, "1.2.6.1", &ds);
    assert_eq!(st, status::CANNOT_UNDERSTAND);
    assert!(sink.take().is_empty());
    let ds = header_dataset(true, "1.2.6.1", 5000);
    let (st, _, stored) = store_with(sink.clone(), &log, "1.2.6.1", &ds);
    assert_eq!(st, status::SUCCESS);
    assert_eq!(stored[0].dataset_len, ds.len() as u64);
    let kept = sink.take();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].dataset, ds);
    assert_eq!(kept[0].transfer_syntax, ELE);
    // Over the per-instance bound: 0xA700.
    let big = header_dataset(true, "1.2.6.2", 70_000);
    let (st, _, _) = store_with(sink.clone(), &log, "1.2.6.2", &big);
    assert_eq!(st, status::OUT_OF_RESOURCES);
    assert!(sink.take().is_empty());
}

#[test]
fn file_sink_commits_concurrently_with_a_shared_directory_fsync() {
    let dir = std::env::temp_dir().join(format!("xenrad-dimse-fsink-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Writeback every 4 KiB so the early-writeback path runs too.
    let sink = Arc::new(
        FileSink::new(&dir)
            .with_fsync(xenrad_dimse::store::FsyncPolicy::Durable)
            .with_buffer(4096)
            .with_writeback_every(4096),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    let inst = format!("1.2.7.{t}.{i}");
                    let ds = dataset_ele(CT, &inst, "1.2.7", 20_000);
                    let mut w = sink
                        .begin(&InstanceStart {
                            meta: FileMeta {
                                sop_class_uid: CT,
                                sop_instance_uid: &inst,
                                transfer_syntax: ELE,
                                implementation_class_uid: "1.2.3",
                                implementation_version_name: "T",
                                source_ae: None,
                            },
                            message_id: Some(1),
                        })
                        .unwrap();
                    for c in ds.chunks(3000) {
                        w.write(c).unwrap();
                    }
                    let path = w.commit().unwrap();
                    let f = std::fs::read(&path).unwrap();
                    let m = parse_part10(&f).unwrap();
                    assert_eq!(m.sop_instance_uid, inst);
                    assert_eq!(&f[m.dataset_offset..], &ds[..]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 40);
    assert!(names.iter().all(|n| n.ends_with(".dcm")), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn peek_never_panics_on_mutated_headers() {
    // Deterministic xorshift mutations of a valid header (bytes flipped, lengths broken,
    // delimiters moved), in both VR encodings, each as a prefix and as a whole data set.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (explicit, ts) in [(true, ELE), (false, ILE), (true, "1.2.840.10008.1.2.2")] {
        let base = header_dataset(explicit, "1.2.3.4", 64);
        for _ in 0..3000 {
            let mut d = base.clone();
            for _ in 0..=(next() % 4) {
                let i = (next() as usize) % d.len();
                d[i] = next() as u8;
            }
            let cut = (next() as usize) % (d.len() + 1);
            for complete in [false, true] {
                if let PeekOutcome::Done(h) = peek_header(&d[..cut], ts, complete) {
                    let _ = InstanceHeader::from_peeked(&h);
                }
            }
        }
    }
}
