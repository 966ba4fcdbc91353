//! Interoperability with real peers (DCMTK, pynetdicom, pydicom), installed by
//! `scripts/peers.sh`. Skipped unless `XENRAD_PEERS` is set; when it is, the peers must be there.
#![cfg(feature = "tokio")]
#![allow(clippy::many_single_char_names)]

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::Command as Proc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xenrad_dimse::assoc::policy::sop;
use xenrad_dimse::assoc::{AcceptorPolicy, UserIdentityPolicy};
use xenrad_dimse::net::Server;
use xenrad_dimse::scp::{Handler, NRequest, NResponse, ScpConfig, StoredInstance};
use xenrad_dimse::store::parse_part10;

struct Peers {
    python: String,
    data: PathBuf,
}

fn peers(test: &str) -> Option<Peers> {
    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!("skipped: {test} needs real peers (eval \"$(scripts/peers.sh)\")");
        return None;
    }
    let python = std::env::var("XENRAD_PYTHON").expect("XENRAD_PYTHON set with XENRAD_PEERS");
    let data = PathBuf::from(std::env::var("XENRAD_PYDICOM_DATA").expect("XENRAD_PYDICOM_DATA"));
    assert!(
        data.join("CT_small.dcm").is_file(),
        "pydicom test files missing"
    );
    Some(Peers { python, data })
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xenrad-interop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[derive(Default)]
struct Recorder {
    stored: Mutex<Vec<StoredInstance>>,
    n: Mutex<Vec<(u16, String, usize)>>,
}

impl Handler for Recorder {
    fn on_stored(&self, i: &StoredInstance) -> u16 {
        self.stored.lock().unwrap().push(i.clone());
        0
    }
    fn n_create(&self, r: &NRequest<'_>) -> NResponse {
        self.n.lock().unwrap().push((
            0x0140,
            r.sop_instance_uid.unwrap_or("").into(),
            r.dataset.len(),
        ));
        NResponse::status(0)
    }
    fn n_set(&self, r: &NRequest<'_>) -> NResponse {
        self.n.lock().unwrap().push((
            0x0120,
            r.sop_instance_uid.unwrap_or("").into(),
            r.dataset.len(),
        ));
        NResponse::status(0)
    }
}

struct TestServer {
    port: u16,
    dir: PathBuf,
    handler: Arc<Recorder>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_server(name: &str) -> TestServer {
    start_server_with(name, |_| {})
}

/// A server whose acceptor policy `f` adjusts (allow-lists, user identity).
fn start_server_with(name: &str, f: impl FnOnce(&mut AcceptorPolicy)) -> TestServer {
    let dir = tempdir(name);
    let handler = Arc::new(Recorder::default());
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (h, d) = (handler.clone(), dir.clone());
    let mut policy = AcceptorPolicy::default();
    f(&mut policy);
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let sink = xenrad_dimse::store::FileSink::new(&d)
                .with_journal_options(xenrad_dimse::store::journal::JournalOptions::small());
            let mut cfg = ScpConfig::with_sink(Arc::new(sink));
            cfg.policy = Arc::new(policy);
            let server = Server::new(cfg, h);
            server
                .run(listener, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
    });
    TestServer {
        port,
        dir,
        handler,
        stop: Some(tx),
        thread: Some(thread),
    }
}

fn run(cmd: &mut Proc) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn dcmtk_echoscu_repeat_5() {
    let Some(_) = peers("dcmtk_echoscu_repeat_5") else {
        return;
    };
    let srv = start_server("echo");
    let (ok, out) = run(Proc::new("echoscu")
        .args(["-v", "--repeat", "5", "-aec", "XENRAD", "127.0.0.1"])
        .arg(srv.port.to_string()));
    assert!(ok, "{out}");
    assert_eq!(
        out.matches("Received Echo Response (Success)").count(),
        5,
        "{out}"
    );
}

/// storescu option proposing a file's transfer syntax (as its own presentation context).
fn storescu_option(ts: &str) -> Option<&'static str> {
    Some(match ts {
        "1.2.840.10008.1.2" => "-xi",
        "1.2.840.10008.1.2.1" => "-xe",
        "1.2.840.10008.1.2.2" => "-xb",
        "1.2.840.10008.1.2.1.99" => "-xd",
        "1.2.840.10008.1.2.4.50" => "-xy",
        "1.2.840.10008.1.2.4.51" => "-xx",
        "1.2.840.10008.1.2.4.70" => "-xs",
        "1.2.840.10008.1.2.4.80" => "-xt",
        "1.2.840.10008.1.2.4.81" => "-xu",
        "1.2.840.10008.1.2.4.90" => "-xv",
        "1.2.840.10008.1.2.4.91" => "-xw",
        "1.2.840.10008.1.2.5" => "-xr",
        _ => return None,
    })
}

const COMPARE_PY: &str = r"
import sys, pydicom
from pydicom.tag import Tag
src, dst, ts = sys.argv[1], sys.argv[2], sys.argv[3]
a = pydicom.dcmread(src, force=True)
b = pydicom.dcmread(dst)
m = b.file_meta
errs = []
raw = open(dst, 'rb').read()
import struct
assert raw[128:132] == b'DICM'
gl = struct.unpack('<I', raw[140:144])[0]
pos = 144
while pos < len(raw) and struct.unpack('<H', raw[pos:pos+2])[0] == 2:
    vr = raw[pos+4:pos+6]
    if vr in (b'OB', b'OW', b'UN', b'UT', b'SQ'):
        pos += 12 + struct.unpack('<I', raw[pos+8:pos+12])[0]
    else:
        pos += 8 + struct.unpack('<H', raw[pos+6:pos+8])[0]
if pos - 144 != gl: errs.append('group length %d != %d' % (gl, pos - 144))
if m.FileMetaInformationVersion != b'\x00\x01': errs.append('version')
if m.MediaStorageSOPClassUID != b.SOPClassUID: errs.append('media SOP class')
if m.MediaStorageSOPInstanceUID != b.SOPInstanceUID: errs.append('media SOP instance')
if m.TransferSyntaxUID != ts: errs.append('transfer syntax %s != %s' % (m.TransferSyntaxUID, ts))
n = 0
# Trailing padding and the retired group lengths (gggg,0000) are rewritten by DCMTK's sender.
skip = lambda t: t == Tag(0xFFFC, 0xFFFC) or t.element == 0
for e in a:
    if skip(e.tag): continue
    n += 1
    if e.tag not in b: errs.append('missing %s' % e.tag); continue
    if b[e.tag].value != e.value: errs.append('differs %s' % e.tag)
for e in b:
    if e.tag not in a and not skip(e.tag): errs.append('extra %s' % e.tag)
if errs:
    print('MISMATCH', src, errs[:5]); sys.exit(1)
print('OK', n)
";

/// Appends `path \t keyword \t value` lines (value `-` when absent) for pydicom to check.
fn header_facts(out: &mut String, src: &Path, h: &xenrad_dimse::store::InstanceHeader) {
    use std::fmt::Write as _;
    let fields: [(&str, &Option<String>); 16] = [
        ("SOPClassUID", &h.sop_class_uid),
        ("SOPInstanceUID", &h.sop_instance_uid),
        ("StudyDate", &h.study_date),
        ("StudyTime", &h.study_time),
        ("AccessionNumber", &h.accession_number),
        ("Modality", &h.modality),
        ("StudyDescription", &h.study_description),
        ("PatientName", &h.patient_name),
        ("PatientID", &h.patient_id),
        ("IssuerOfPatientID", &h.issuer_of_patient_id),
        ("PatientBirthDate", &h.patient_birth_date),
        ("PatientSex", &h.patient_sex),
        ("StudyInstanceUID", &h.study_instance_uid),
        ("SeriesInstanceUID", &h.series_instance_uid),
        ("SeriesNumber", &h.series_number),
        ("InstanceNumber", &h.instance_number),
    ];
    for (k, v) in fields {
        let v = v
            .as_deref()
            .map_or_else(|| "-".to_string(), |v| v.replace(['\t', '\n'], " "));
        let _ = writeln!(out, "{}\t{k}\t{v}", src.display());
    }
}

/// Checks `header_facts` lines against pydicom's raw top-level values (decoded per (0008,0005)
/// for the default repertoire, ISO_IR 100 and ISO_IR 192; values pydicom cannot decode that
/// way are not compared).
const FACTS_PY: &str = r"
import sys
from pydicom import dcmread
from pydicom.datadict import tag_for_keyword
bad, n, present, cache = [], 0, 0, {}
for line in open(sys.argv[1], encoding='utf-8'):
    path, kw, got = line.rstrip('\n').split('\t')
    if path not in cache:
        cache[path] = dcmread(path, stop_before_pixels=True)
    ds = cache[path]
    cs = ds.get_item(0x00080005)
    cs = (cs.value if isinstance(cs.value, bytes) else str(cs.value).encode()) if cs is not None else b''
    cs = cs.strip(b' \0').upper()
    el = ds.get_item(tag_for_keyword(kw))
    raw = el.value if el is not None else None
    if raw is not None and not isinstance(raw, bytes):
        raw = None if el.VR == 'SQ' else str(raw).encode()
    want = '-'
    if raw is not None:
        raw = raw.rstrip(b'\0 ').lstrip(b' ')
        if raw:
            want = raw.decode('latin-1') if cs == b'ISO_IR 100' else raw.decode('utf-8', 'replace')
            want = want.replace('\t', ' ').replace('\n', ' ')
    if cs not in (b'', b'ISO_IR 100', b'ISO_IR 192', b'ISO_IR 6') and '\ufffd' in want + got:
        continue
    n += 1
    present += want != '-'
    if want != got:
        bad.append(f'{path} {kw}: scanned {got!r}, pydicom {want!r}')
print(f'header facts: {n} values compared with pydicom ({present} present), {len(bad)} differ')
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
";

fn compare(py: &str, src: &Path, dst: &Path, ts: &str) -> Result<(), String> {
    let (ok, out) = run(Proc::new(py)
        .arg("-c")
        .arg(COMPARE_PY)
        .arg(src)
        .arg(dst)
        .arg(ts));
    if ok { Ok(()) } else { Err(out) }
}

#[test]
fn dcmtk_storescu_pydicom_files_with_4k_pdu_equal_their_source() {
    let Some(p) = peers("dcmtk_storescu_pydicom_files") else {
        return;
    };
    let srv = start_server("storescu");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&p.data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|e| e == "dcm"))
        .collect();
    files.sort();
    let (mut sent, mut failures, mut skipped) = (0, Vec::new(), Vec::new());
    let mut facts = String::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let Some(meta) = parse_part10(&bytes) else {
            skipped.push(format!("{} (no File Meta)", f.display()));
            continue;
        };
        let Some(opt) = storescu_option(meta.transfer_syntax) else {
            skipped.push(format!(
                "{} (transfer syntax {})",
                f.display(),
                meta.transfer_syntax
            ));
            continue;
        };
        let before = srv.handler.stored.lock().unwrap().len();
        let (ok, out) = run(Proc::new("storescu")
            .args([opt, "-pdu", "4096", "-aec", "XENRAD", "127.0.0.1"])
            .arg(srv.port.to_string())
            .arg(f));
        let stored = srv.handler.stored.lock().unwrap();
        if stored.len() == before {
            // DCMTK itself refuses some deliberately broken files; those are not ours to judge.
            assert!(
                !ok || out.contains("missing SOP class"),
                "{}: sent but not stored:\n{out}",
                f.display()
            );
            skipped.push(format!(
                "{} (storescu: {})",
                f.display(),
                out.lines()
                    .find(|l| l.starts_with("E:"))
                    .unwrap_or("refused")
            ));
            continue;
        }
        let last = stored.last().unwrap().clone();
        drop(stored);
        sent += 1;
        if let Err(e) = compare(&p.python, f, &last.path, &last.transfer_syntax) {
            failures.push(e);
        }
        if let Some(h) = &last.header {
            header_facts(&mut facts, f, h);
        }
    }
    // The header facts scanned while streaming equal pydicom's reading of the source file.
    let list = srv.dir.join("facts.tsv");
    std::fs::write(&list, &facts).unwrap();
    let (ok, out) = run(Proc::new(&p.python).arg("-c").arg(FACTS_PY).arg(&list));
    assert!(ok, "header facts differ from pydicom:\n{out}");
    println!("{}", out.trim());
    println!(
        "stored and compared {sent} files; skipped {}:",
        skipped.len()
    );
    for s in &skipped {
        println!("  {s}");
    }
    assert!(sent >= 40, "only {sent} files went through");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let leftovers: Vec<_> = std::fs::read_dir(&srv.dir)
        .unwrap()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty());
}

struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "peer did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn our_scu_to_dcmtk_storescp() {
    let Some(p) = peers("our_scu_to_dcmtk_storescp") else {
        return;
    };
    let dir = tempdir("storescp");
    let port = free_port();
    let mut child = Proc::new("storescp")
        .args(["-od"])
        .arg(&dir)
        .args(["-aet", "DCMTK", port.to_string().as_str()])
        .spawn()
        .expect("storescp");
    wait_port(port);
    // (rtplan.dcm and rtdose.dcm are not used: their File Meta and data set disagree on the
    // SOP Instance UID, which DCMTK answers with 0xA900, as we do.)
    let names = [
        "CT_small.dcm",
        "MR_small_implicit.dcm",
        "SC_rgb_small_odd.dcm",
        "waveform_ecg.dcm",
    ];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        use xenrad_dimse::net::{ClientConfig, ScuAssociation};
        let mut items = Vec::new();
        for n in names {
            let data = bytes::Bytes::from(std::fs::read(p.data.join(n)).unwrap());
            let m = parse_part10(&data).unwrap();
            let (c, i, t, o) = (
                m.sop_class_uid.to_string(),
                m.sop_instance_uid.to_string(),
                m.transfer_syntax.to_string(),
                m.dataset_offset,
            );
            items.push((n, data, c, i, t, o));
        }
        let contexts = items
            .iter()
            .map(|(_, _, c, _, t, _)| (c.clone(), vec![t.clone()]))
            .collect();
        let cfg = ClientConfig {
            calling_ae: "XENRAD".into(),
            called_ae: "DCMTK".into(),
            contexts,
            max_pdu: 16384,
            timeouts: xenrad_dimse::assoc::Timeouts::default(),
        };
        let mut a = ScuAssociation::connect(("127.0.0.1", port), &cfg)
            .await
            .unwrap();
        assert_eq!(
            a.echo().await.map(|r| r.status).ok(),
            None,
            "echo not proposed, must fail locally"
        );
        let mut statuses = Vec::new();
        for (_, data, c, i, t, o) in &items {
            let r = a.store(c, i, t, data.slice(*o..)).await.unwrap();
            statuses.push(r.status);
        }
        a.release().await.unwrap();
        (items, statuses)
    });
    let _ = child.kill();
    let _ = child.wait();
    let (items, statuses) = result;
    let _cleanup = Cleanup(dir.clone());
    assert!(statuses.iter().all(|s| *s == 0), "{statuses:?}");
    let received: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(received.len(), names.len(), "{received:?}");
    for (n, _, _, inst, ts, _) in &items {
        let dst = received
            .iter()
            .find(|r| {
                r.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .ends_with(inst.as_str())
            })
            .expect("received file");
        compare(&p.python, &p.data.join(n), dst, ts).unwrap();
    }
}

const PYNETDICOM_PY: &str = r"
import sys, os
from pynetdicom import AE
from pynetdicom.sop_class import Verification, CTImageStorage, ModalityPerformedProcedureStep
from pydicom import dcmread
from pydicom.dataset import Dataset
port, ct = int(sys.argv[1]), sys.argv[2]
ae = AE(ae_title='PYNET')
ae.add_requested_context(Verification)
ae.add_requested_context(CTImageStorage)
ae.add_requested_context(ModalityPerformedProcedureStep)
from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation, UserIdentityNegotiation
ext = SOPClassExtendedNegotiation()
ext.sop_class_uid = CTImageStorage
ext.service_class_application_information = b'\x02\x00\x00\x00\x00\x00'
who = UserIdentityNegotiation()
who.user_identity_type = 1
who.primary_field = b'tech'
who.positive_response_requested = True
assoc = ae.associate('127.0.0.1', port, ae_title='XENRAD', max_pdu=8192, ext_neg=[ext, who])
assert assoc.is_established, 'not established'
# PS3.7 D.3.3.5 / PS3.4 B.3.1: storage level 2, signature level 2, no coercion.
got = dict(assoc.acceptor.sop_class_extended)
assert got == {CTImageStorage: b'\x02\x00\x02\x00\x00\x00'}, got
assert assoc.acceptor.user_identity is not None, 'no user identity response'
for i in range(3):
    st = assoc.send_c_echo()
    assert st.Status == 0, st
ds = dcmread(ct)
st = assoc.send_c_store(ds)
assert st.Status == 0, st
mpps = Dataset()
mpps.PerformedProcedureStepStatus = 'IN PROGRESS'
mpps.PerformedStationAETitle = 'CT1'
st, attrs = assoc.send_n_create(mpps, ModalityPerformedProcedureStep, '1.2.826.0.1.3680043.9.7.1')
assert st.Status == 0, st
upd = Dataset()
upd.PerformedProcedureStepStatus = 'COMPLETED'
st, attrs = assoc.send_n_set(upd, ModalityPerformedProcedureStep, '1.2.826.0.1.3680043.9.7.1')
assert st.Status == 0, st
assoc.release()
print('PYNETDICOM OK')
";

#[test]
fn pynetdicom_echo_store_ncreate_nset() {
    let Some(p) = peers("pynetdicom_echo_store_ncreate_nset") else {
        return;
    };
    // User "tech" (type 1) is verified, so the requested positive response is sent.
    let srv = start_server_with("pynetdicom", |p| {
        p.user_identity = Some(UserIdentityPolicy {
            users: UserIdentityPolicy::parse_users("tech\n").unwrap(),
            required: true,
        });
    });
    let (ok, out) = run(Proc::new(&p.python)
        .arg("-c")
        .arg(PYNETDICOM_PY)
        .arg(srv.port.to_string())
        .arg(p.data.join("CT_small.dcm")));
    assert!(ok && out.contains("PYNETDICOM OK"), "{out}");
    let stored = srv.handler.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].calling_ae, "PYNET");
    compare(
        &p.python,
        &p.data.join("CT_small.dcm"),
        &stored[0].path,
        &stored[0].transfer_syntax,
    )
    .unwrap();
    let n = srv.handler.n.lock().unwrap().clone();
    assert_eq!(n.len(), 2);
    assert_eq!(n[0].0, 0x0140);
    assert_eq!(n[0].1, "1.2.826.0.1.3680043.9.7.1");
    assert!(n[0].2 > 0 && n[1].2 > 0);
    let _ = sop::MPPS;
}
