//! End-to-end tests of images going back out of `xenrad-gateway` (issue 17) with real
//! clients: DCMTK `findscu` (Patient and Study Root), `movescu` to a DCMTK `storescp` the test
//! starts, `getscu`, and pynetdicom for Storage Commitment; every retrieved instance is
//! compared byte for byte with the stored one, and a restart keeps everything.
//!
//! Peers come from `scripts/peers.sh` (`XENRAD_PEERS=1`, `XENRAD_PYTHON`,
//! `XENRAD_PYDICOM_DATA`); without it the tests print why they are skipped.
#![allow(missing_docs)]

mod common;

use common::{Gateway, KEY, free_port, peers, wait_port};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

impl Gateway {
    fn start(args: Vec<String>) -> Gateway {
        Gateway::launch("images-e2e", args)
    }
}

/// A child process killed when dropped (DCMTK's storescp).
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().expect("run a peer");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if p.is_dir() && !hidden {
                out.extend(files(&p));
            } else if p.is_file() && !hidden {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The data set bytes of a Part 10 file: what follows the File Meta group, whose length is
/// (0002,0000) (PS3.10 7.1), so files written by different programs compare on the instance
/// itself.
fn dataset_bytes(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[128..132], b"DICM", "{} is not Part 10", path.display());
    assert_eq!(
        &b[132..136],
        &[2, 0, 0, 0],
        "{}: no group length",
        path.display()
    );
    let len = u32::from_le_bytes(b[140..144].try_into().unwrap()) as usize;
    b[144 + len..].to_vec()
}

/// `(study, series, sop instance, patient id)` of a file, read with pydicom.
fn uids(py: &str, f: &Path) -> [String; 4] {
    let (out, text) = run(Command::new(py).arg("-c").arg(
        "import pydicom,sys; d=pydicom.dcmread(sys.argv[1]); print(d.StudyInstanceUID, d.SeriesInstanceUID, d.SOPInstanceUID, d.PatientID)",
    ).arg(f));
    assert!(out.status.success(), "{text}");
    let v: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    [v[0].clone(), v[1].clone(), v[2].clone(), v[3].clone()]
}

fn findscu(g: &Gateway, root: &str, keys: &[&str]) -> String {
    let mut c = Command::new("findscu");
    c.args(["-v", root, "-aec", "XENRAD", "127.0.0.1", &g.port()]);
    for k in keys {
        c.args(["-k", k]);
    }
    let (out, text) = run(&mut c);
    assert!(out.status.success(), "findscu: {text}");
    text
}

fn pending(find_log: &str) -> usize {
    find_log.matches("(Pending)").count()
}

#[test]
fn query_retrieve_and_commitment_with_dcmtk_and_pynetdicom() {
    if !peers() {
        return;
    }
    let py = std::env::var("XENRAD_PYTHON").unwrap();
    let data = PathBuf::from(std::env::var("XENRAD_PYDICOM_DATA").unwrap());
    let sources = [data.join("CT_small.dcm"), data.join("MR_small.dcm")];
    let scp_port = free_port();
    let mut g = Gateway::start(vec![
        "--dicom-peer".into(),
        format!("STORESCP=127.0.0.1:{scp_port}"),
    ]);
    for f in &sources {
        let (out, text) = run(Command::new("storescu")
            .args(["-aec", "XENRAD", "127.0.0.1", &g.port()])
            .arg(f));
        assert!(out.status.success(), "storescu: {text}");
    }
    let ct = uids(&py, &sources[0]);
    let mr = uids(&py, &sources[1]);
    assert_ne!(ct[0], mr[0], "two studies expected");

    // C-FIND, Study Root, STUDY level: both studies, with their UIDs (PS3.4 C.6.2).
    let log = findscu(
        &g,
        "-S",
        &["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientID"],
    );
    assert_eq!(pending(&log), 2, "{log}");
    assert!(log.contains(&ct[0]) && log.contains(&mr[0]), "{log}");
    // Patient Root, PATIENT level with a Patient ID key: only that patient.
    let key = format!("PatientID={}", ct[3]);
    let log = findscu(
        &g,
        "-P",
        &["QueryRetrieveLevel=PATIENT", &key, "PatientName"],
    );
    assert_eq!(pending(&log), 1, "{log}");
    assert!(log.contains(&ct[3]), "{log}");
    // Study Root, IMAGE level under a study and series: the one instance.
    let (k1, k2) = (
        format!("StudyInstanceUID={}", ct[0]),
        format!("SeriesInstanceUID={}", ct[1]),
    );
    let log = findscu(
        &g,
        "-S",
        &["QueryRetrieveLevel=IMAGE", &k1, &k2, "SOPInstanceUID"],
    );
    assert_eq!(pending(&log), 1, "{log}");
    assert!(log.contains(&ct[2]), "{log}");
    // Patient Root, SERIES level: the series of the MR study.
    let (k1, k2) = (
        format!("PatientID={}", mr[3]),
        format!("StudyInstanceUID={}", mr[0]),
    );
    let log = findscu(
        &g,
        "-P",
        &[
            "QueryRetrieveLevel=SERIES",
            &k1,
            &k2,
            "SeriesInstanceUID",
            "Modality",
        ],
    );
    assert_eq!(pending(&log), 1, "{log}");
    assert!(log.contains(&mr[1]) && log.contains("MR"), "{log}");

    // What the gateway stored, by SOP Instance UID.
    let stored: Vec<(PathBuf, [String; 4])> = files(&g.dir.join("dicom"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .map(|p| {
            let u = uids(&py, &p);
            (p, u)
        })
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    let stored_bytes = |sop: &str| {
        let (p, _) = stored.iter().find(|(_, u)| u[2] == sop).expect("stored");
        dataset_bytes(p)
    };

    // C-MOVE of the CT study to DCMTK's storescp (bit-preserving): the same bytes arrive.
    let moved = g.dir.with_extension("moved");
    std::fs::create_dir_all(&moved).unwrap();
    let _scp = Killed(
        Command::new("storescp")
            .args(["+B", "-aet", "STORESCP", "-od"])
            .arg(&moved)
            .arg(scp_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start storescp"),
    );
    wait_port(SocketAddr::from(([127, 0, 0, 1], scp_port)), "storescp");
    let k = format!("StudyInstanceUID={}", ct[0]);
    let (out, text) = run(Command::new("movescu")
        .args(["-v", "-S", "-aec", "XENRAD", "-aem", "STORESCP"])
        .args(["-k", "QueryRetrieveLevel=STUDY", "-k", &k])
        .args(["127.0.0.1", &g.port()]));
    assert!(out.status.success(), "movescu: {text}");
    let got = files(&moved);
    assert_eq!(got.len(), 1, "moved: {got:?}\n{text}");
    assert!(
        dataset_bytes(&got[0]) == stored_bytes(&ct[2]),
        "moved instance differs from the stored one"
    );

    // C-MOVE to an AE the gateway does not know: 0xA801 (PS3.4 C.4.2.1.5), nothing sent.
    let (_, text) = run(Command::new("movescu")
        .args(["-v", "-S", "-aec", "XENRAD", "-aem", "NOBODY"])
        .args(["-k", "QueryRetrieveLevel=STUDY", "-k", &k])
        .args(["127.0.0.1", &g.port()]));
    assert!(
        text.contains("Final Move Response (Refused: MoveDestinationUnknown)"),
        "movescu to an unknown AE: {text}"
    );
    assert_eq!(files(&moved).len(), 1);

    // C-GET of the MR series on the same association.
    let got_dir = g.dir.with_extension("got");
    std::fs::create_dir_all(&got_dir).unwrap();
    let (k1, k2) = (
        format!("StudyInstanceUID={}", mr[0]),
        format!("SeriesInstanceUID={}", mr[1]),
    );
    let (out, text) = run(Command::new("getscu")
        .args(["-v", "-S", "+B", "-aec", "XENRAD", "-od"])
        .arg(&got_dir)
        .args(["-k", "QueryRetrieveLevel=SERIES", "-k", &k1, "-k", &k2])
        .args(["127.0.0.1", &g.port()]));
    assert!(out.status.success(), "getscu: {text}");
    let got = files(&got_dir);
    assert_eq!(got.len(), 1, "got: {got:?}\n{text}");
    assert!(
        dataset_bytes(&got[0]) == stored_bytes(&mr[2]),
        "C-GET instance differs from the stored one"
    );

    // Storage Commitment from pynetdicom: the CT committed, an unknown instance failed 0x0112.
    let commit = r"
import sys, time
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel
port, klass, sop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
got = []
lines = []
def on_report(event):
    # Lines are printed by the main thread once the report is in: prints from the reactor
    # thread interleave with the main thread's.
    ds = event.event_information
    for it in ds.get('ReferencedSOPSequence', []):
        lines.append('committed %s' % it.ReferencedSOPInstanceUID)
    for it in ds.get('FailedSOPSequence', []):
        lines.append('failed %s 0x%04X' % (it.ReferencedSOPInstanceUID, it.FailureReason))
    lines.append('event %d' % event.event_type)
    got.append(True)
    return 0x0000, None
ae = AE(ae_title='COMMITSCU')
ae.add_requested_context(StorageCommitmentPushModel)
a = ae.associate('127.0.0.1', port, ae_title='XENRAD', evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
assert a.is_established
req = Dataset()
req.TransactionUID = generate_uid()
ok = Dataset(); ok.ReferencedSOPClassUID = klass; ok.ReferencedSOPInstanceUID = sop
bad = Dataset(); bad.ReferencedSOPClassUID = klass; bad.ReferencedSOPInstanceUID = '1.2.3.4.5.6.7.8.9'
req.ReferencedSOPSequence = [ok, bad]
status, _ = a.send_n_action(req, 1, StorageCommitmentPushModel, '1.2.840.10008.1.20.1.1')
print('action 0x%04X' % status.Status)
deadline = time.time() + 20
while not got and time.time() < deadline:
    time.sleep(0.05)
# Let the reactor send the N-EVENT-REPORT-RSP before releasing.
time.sleep(0.3)
print('\n'.join(lines))
a.release()
";
    let (_, class_log) = run(Command::new(&py)
        .arg("-c")
        .arg("import pydicom,sys; print(pydicom.dcmread(sys.argv[1]).SOPClassUID)")
        .arg(&sources[0]));
    let (out, text) = run(Command::new(&py).arg("-c").arg(commit).args([
        g.port(),
        class_log.trim().to_owned(),
        ct[2].clone(),
    ]));
    assert!(out.status.success(), "commitment: {text}");
    assert!(text.contains("action 0x0000"), "{text}");
    assert!(text.contains(&format!("committed {}", ct[2])), "{text}");
    assert!(text.contains("failed 1.2.3.4.5.6.7.8.9 0x0112"), "{text}");
    assert!(text.contains("event 2"), "{text}");

    // A restart keeps everything: the index is rebuilt from the store.
    g.stop();
    g.spawn();
    let log = findscu(
        &g,
        "-S",
        &[
            "QueryRetrieveLevel=STUDY",
            "StudyInstanceUID",
            "NumberOfStudyRelatedInstances",
        ],
    );
    assert_eq!(pending(&log), 2, "{log}");
    assert!(log.contains(&ct[0]) && log.contains(&mr[0]), "{log}");
    let _ = std::fs::remove_dir_all(&moved);
    let _ = std::fs::remove_dir_all(&got_dir);
}

/// The DICOMweb client script: STOW, QIDO, WADO and metadata through `dicomweb-client`,
/// bad input through `requests`; prints one `key value` line per fact the test checks and
/// writes each WADO-RS part into the output folder as received.
const DICOMWEB_PY: &str = r#"
import sys, os, json, requests, pydicom
from dicomweb_client.api import DICOMwebClient
base, key, out = sys.argv[1], sys.argv[2], sys.argv[3]
files = sys.argv[4:]
h = {'X-API-Key': key}
c = DICOMwebClient(base, headers=h)
ds = [pydicom.dcmread(f) for f in files]
r = c.store_instances(ds)
print('stow_referenced', len(r.ReferencedSOPSequence))
print('stow_failed', len(r.get('FailedSOPSequence', [])))
# Idempotent: the same instances again.
r = c.store_instances(ds)
print('stow_again', len(r.ReferencedSOPSequence))
# A part that is not DICOM: 409, a failed item with 0xC000, nothing stored.
body = b'--xyz\r\nContent-Type: application/dicom\r\n\r\nnot dicom at all\r\n--xyz--\r\n'
r = requests.post(base + '/studies', data=body, headers={**h, 'Content-Type': 'multipart/related; type="application/dicom"; boundary=xyz'})
j = r.json()
print('stow_bad', r.status_code, j['00081198']['Value'][0]['00081197']['Value'][0], 'warning' if r.headers.get('Warning') else 'no-warning')
r = requests.post(base + '/studies', data=b'{}', headers={**h, 'Content-Type': 'application/json'})
print('stow_json', r.status_code)
studies = c.search_for_studies()
print('qido_studies', len(studies))
for s in studies:
    print('study', s['0020000D']['Value'][0], s['00201208']['Value'][0], s['00081190']['Value'][0].endswith('/dicomweb/studies/' + s['0020000D']['Value'][0]), s['00081190']['Value'][0])
pid = ds[0].PatientID
print('qido_pid', len(c.search_for_studies(search_filters={'PatientID': pid})))
print('qido_tag', len(c.search_for_studies(search_filters={'00100020': pid})))
print('qido_page', len(c.search_for_studies(limit=1)), len(c.search_for_studies(offset=1)), len(c.search_for_studies(offset=2)))
st, se = ds[0].StudyInstanceUID, ds[0].SeriesInstanceUID
print('qido_series', len(c.search_for_series(study_instance_uid=st)), len(c.search_for_series()))
inst = c.search_for_instances(study_instance_uid=st, series_instance_uid=se)
print('qido_instances', len(inst), inst[0]['00080018']['Value'][0] == ds[0].SOPInstanceUID, len(c.search_for_instances()))
print('qido_include', 'InstitutionName' if '00080080' in c.search_for_studies(fields=['00080080'])[0] else 'missing')
r = requests.get(base + '/studies?NoSuchKeyword=1', headers=h)
print('qido_unknown', r.status_code)
# WADO-RS through the client, then raw to keep the bytes.
got = c.retrieve_study(st)
print('wado_client', len(got), got[0].SOPInstanceUID == ds[0].SOPInstanceUID)
one = c.retrieve_instance(st, se, ds[0].SOPInstanceUID)
print('wado_instance', one.SOPInstanceUID == ds[0].SOPInstanceUID)
for d in ds:
    r = requests.get(base + '/studies/' + d.StudyInstanceUID, headers={**h, 'Accept': 'multipart/related; type="application/dicom"'})
    ct = r.headers['Content-Type']
    b = ct.split('boundary=')[1].strip('"').encode()
    parts = r.content.split(b'--' + b)[1:-1]
    for i, p in enumerate(parts):
        body = p.split(b'\r\n\r\n', 1)[1][:-2]
        open(os.path.join(out, d.SOPInstanceUID + '.dcm'), 'wb').write(body)
r = requests.get(base + '/studies/1.2.3.4.5.999', headers=h)
print('wado_unknown', r.status_code)
r = requests.get(base + '/studies/' + st + '/series/1.2.3.999/instances/1.2.3.998', headers=h)
print('wado_unknown_instance', r.status_code)
m = c.retrieve_study_metadata(st)
print('metadata', len(m), m[0]['0020000D']['Value'][0] == st, m[0]['00080018']['Value'][0] == ds[0].SOPInstanceUID)
r = requests.get(base + '/studies/1.2.3.4.5.999/metadata', headers=h)
print('metadata_unknown', r.status_code)
r = requests.get(base + '/studies', headers={})
print('no_key', r.status_code)
# FHIR: the ImagingStudy references the DICOMweb Endpoint, whose address serves QIDO-RS.
fhir = base[:-len('/dicomweb')] + '/fhir'
b = requests.get(fhir + '/ImagingStudy?identifier=' + st, headers=h).json()
ref = b['entry'][0]['resource']['endpoint'][0]['reference']
e = requests.get(fhir + '/' + ref, headers=h).json()
print('endpoint', ref, e['connectionType']['code'], e['status'])
print('endpoint_qido', len(DICOMwebClient(e['address'], headers=h).search_for_studies()))
"#;

fn facts(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn dicomweb_stow_qido_wado_with_dicomweb_client() {
    if !peers() {
        return;
    }
    let py = std::env::var("XENRAD_PYTHON").unwrap();
    let data = PathBuf::from(std::env::var("XENRAD_PYDICOM_DATA").unwrap());
    let sources = [data.join("CT_small.dcm"), data.join("MR_small.dcm")];
    let mut g = Gateway::start(Vec::new());
    let out = g.dir.with_extension("wado");
    std::fs::create_dir_all(&out).unwrap();
    let base = format!("http://{}/dicomweb", g.fhir);
    let (o, text) = run(Command::new(&py)
        .arg("-c")
        .arg(DICOMWEB_PY)
        .args([&base, KEY])
        .arg(&out)
        .args(&sources));
    assert!(o.status.success(), "dicomweb-client: {text}");
    let f = facts(&text);
    let fact = |k: &str| f.get(k).map_or("", String::as_str);
    assert_eq!(fact("stow_referenced"), "2", "{text}");
    assert_eq!(fact("stow_failed"), "0", "{text}");
    assert_eq!(fact("stow_again"), "2", "{text}");
    assert_eq!(fact("stow_bad"), "409 49152 warning", "{text}");
    assert_eq!(fact("stow_json"), "415", "{text}");
    assert_eq!(fact("qido_studies"), "2", "{text}");
    // One instance per study although each was stored twice. (The Retrieve URL follows the
    // Host header, which dicomweb-client sends without the port, hence `endswith`.)
    assert_eq!(text.matches(" 1 True http").count(), 2, "{text}");
    assert_eq!(fact("qido_pid"), "1", "{text}");
    assert_eq!(fact("qido_tag"), "1", "{text}");
    assert_eq!(fact("qido_page"), "1 1 0", "{text}");
    assert_eq!(fact("qido_series"), "1 2", "{text}");
    assert_eq!(fact("qido_instances"), "1 True 2", "{text}");
    assert_eq!(fact("qido_include"), "InstitutionName", "{text}");
    assert_eq!(fact("qido_unknown"), "400", "{text}");
    assert_eq!(fact("wado_client"), "1 True", "{text}");
    assert_eq!(fact("wado_instance"), "True", "{text}");
    assert_eq!(fact("wado_unknown"), "404", "{text}");
    assert_eq!(fact("wado_unknown_instance"), "404", "{text}");
    assert_eq!(fact("metadata"), "1 True True", "{text}");
    assert_eq!(fact("metadata_unknown"), "404", "{text}");
    assert_eq!(fact("no_key"), "401", "{text}");
    assert_eq!(
        fact("endpoint"),
        "Endpoint/dicomweb dicom-wado-rs active",
        "{text}"
    );
    assert_eq!(fact("endpoint_qido"), "2", "{text}");
    // WADO-RS parts are the stored files, byte for byte; the data sets are the sources'.
    let stored: Vec<PathBuf> = files(&g.dir.join("dicom"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    for s in &stored {
        let sop = uids(&py, s)[2].clone();
        let got = std::fs::read(out.join(format!("{sop}.dcm"))).expect("WADO part");
        assert!(
            got == std::fs::read(s).unwrap(),
            "WADO-RS part differs from {}",
            s.display()
        );
        let src = sources
            .iter()
            .find(|p| uids(&py, p)[2] == sop)
            .expect("source");
        assert!(
            dataset_bytes(s) == dataset_bytes(src),
            "STOW-RS changed the data set of {sop}"
        );
    }
    // A restart keeps everything.
    g.stop();
    g.spawn();
    let (o, text) = run(Command::new(&py).arg("-c").arg(
        "import sys; from dicomweb_client.api import DICOMwebClient as C; print(len(C(sys.argv[1], headers={'X-API-Key': sys.argv[2]}).search_for_instances()))",
    ).args([&base, KEY]));
    assert!(o.status.success(), "{text}");
    assert_eq!(text.trim(), "2", "{text}");
    let _ = std::fs::remove_dir_all(&out);
}
