//! `xenrad dicom find` and `xenrad dicom scp --qr --worklist` against the real peers (issue
//! 15): DCMTK `findscu` (-P, -S, -W) and pynetdicom against our SCP, our SCU against DCMTK
//! `dcmqrscp` and `wlmscpfs`, on one generated set (`scripts/qr_fixture.py`: five patients,
//! non-ASCII names in ISO_IR 100 and ISO_IR 192). Every query's matches from our SCP equal
//! DCMTK's on the same data, whichever SCU asks.
#![allow(missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

mod common;
use common::*;

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Fixture {
    _dir: Dir,
    ours: u16,
    qrscp: u16,
    wlmscp: u16,
    _procs: Vec<Proc>,
    python: String,
    images: PathBuf,
}

fn setup(python: String, name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("xenrad-qr-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let images = dir.join("images");
    let wl_root = dir.join("worklists");
    let wl = wl_root.join("WLM");
    let store = dir.join("ours");
    let qrdb = dir.join("dcmqrscp");
    std::fs::create_dir_all(&qrdb).unwrap();
    let script = root().join("scripts/qr_fixture.py");
    for (what, to) in [("images", &images), ("worklist", &wl)] {
        let out = Command::new(&python)
            .arg(&script)
            .arg(what)
            .arg(to)
            .output()
            .unwrap();
        ok(&out, "qr_fixture.py");
    }
    let (ours, qrscp, wlmscp) = (free_port(), free_port(), free_port());
    let mut procs = Vec::new();
    // Our SCP: store, index, answer Patient Root / Study Root and worklist C-FIND.
    procs.push(Proc(
        xenrad()
            .args([
                "dicom",
                "scp",
                "--port",
                &ours.to_string(),
                "--aet",
                "XENRAD",
            ])
            .arg("--out")
            .arg(&store)
            .args(["--qr", "--no-fsync", "--quiet", "--worklist"])
            .arg(&wl)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    // DCMTK dcmqrscp (config per ../shared/notes/peers.md) and wlmscpfs.
    let cfg = dir.join("dcmqrscp.cfg");
    std::fs::write(
        &cfg,
        format!(
            "NetworkTCPPort = {qrscp}\nMaxPDUSize = 16384\nMaxAssociations = 16\n\
             HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\nDCMQR {} RW (200, 1024mb) ANY\nAETable END\n",
            qrdb.display()
        ),
    )
    .unwrap();
    procs.push(Proc(
        dcmtk("dcmqrscp")
            .arg("-c")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    procs.push(Proc(
        dcmtk("wlmscpfs")
            .arg("-dfp")
            .arg(&wl_root)
            .arg(wlmscp.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    for p in [ours, qrscp, wlmscp] {
        wait_port(p);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 40);
    let out = xenrad()
        .args([
            "dicom",
            "store",
            &format!("127.0.0.1:{ours}"),
            "--called-aet",
            "XENRAD",
        ])
        .args(&files)
        .output()
        .unwrap();
    ok(&out, "xenrad dicom store");
    let out = dcmtk("storescu")
        .args(["-aec", "DCMQR", "127.0.0.1", &qrscp.to_string()])
        .args(&files)
        .output()
        .unwrap();
    ok(&out, "storescu into dcmqrscp");
    Fixture {
        _dir: Dir(dir),
        ours,
        qrscp,
        wlmscp,
        _procs: procs,
        python,
        images,
    }
}

/// The values of `key` (a DICOM JSON tag, e.g. "0020000D") in `xenrad dicom find` output.
fn json_values(stdout: &str, key: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("one JSON object per line");
            let val = &v[key]["Value"][0];
            match val {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(o) => o["Alphabetic"].as_str().unwrap().to_owned(),
                other => panic!("{key}: {other} in {l}"),
            }
        })
        .collect()
}

/// `xenrad dicom find` against a port; returns its output lines.
fn our_find(port: u16, call: &str, args: &[&str], keys: &[&str]) -> String {
    let mut c = xenrad();
    c.args([
        "dicom",
        "find",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ])
    .args(["--aet", "FINDSCU", "--call", call])
    .args(args);
    for k in keys {
        c.args(["-k", k]);
    }
    ok(
        &c.output().unwrap(),
        &format!("xenrad dicom find {args:?} {keys:?}"),
    )
}

/// DCMTK `findscu` against a port; returns the values of `tag` (e.g. "(0020,000d)") in its
/// printed responses.
fn dcmtk_find(port: u16, call: &str, model: &str, keys: &[&str], tag: &str) -> BTreeSet<String> {
    let mut c = dcmtk("findscu");
    c.args([model, "-aec", call, "-aet", "FINDSCU"]);
    for k in keys {
        c.args(["-k", k]);
    }
    c.args(["127.0.0.1", &port.to_string()]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "findscu {keys:?}: {out:?}");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.contains(tag))
        .filter_map(|l| {
            let a = l.find('[')?;
            let b = l[a..].find(']')? + a;
            Some(l[a + 1..b].trim_end_matches(['\0', ' ']).to_owned())
        })
        .collect()
}

#[test]
fn find_matches_equal_dcmtk_in_both_directions() {
    let Some(python) = peers() else { return };
    let f = setup(python, "find");
    // (level, query keys, the unique key whose values are compared, expected count)
    let cases: &[(&str, &[&str], &str, &str, usize)] = &[
        (
            "STUDY",
            &["PatientID=P002"],
            "StudyInstanceUID",
            "0020000D",
            2,
        ),
        (
            "STUDY",
            &["PatientName=D*"],
            "StudyInstanceUID",
            "0020000D",
            2,
        ),
        (
            "STUDY",
            &["PatientName=*^Anna"],
            "StudyInstanceUID",
            "0020000D",
            2,
        ),
        (
            "STUDY",
            &["StudyDate=20240301-20240630"],
            "StudyInstanceUID",
            "0020000D",
            4,
        ),
        (
            "STUDY",
            &["StudyDate=-20240401"],
            "StudyInstanceUID",
            "0020000D",
            3,
        ),
        (
            "STUDY",
            &["PatientID=P00?"],
            "StudyInstanceUID",
            "0020000D",
            10,
        ),
        (
            "STUDY",
            &["StudyInstanceUID=1.2.826.0.1.3680043.10.1138.1.1\\1.2.826.0.1.3680043.10.1138.3.2"],
            "StudyInstanceUID",
            "0020000D",
            2,
        ),
        (
            "SERIES",
            &[
                "StudyInstanceUID=1.2.826.0.1.3680043.10.1138.4.2",
                "Modality=MR",
            ],
            "SeriesInstanceUID",
            "0020000E",
            1,
        ),
        (
            "IMAGE",
            &[
                "StudyInstanceUID=1.2.826.0.1.3680043.10.1138.5.1",
                "SeriesInstanceUID=1.2.826.0.1.3680043.10.1138.5.1.2",
            ],
            "SOPInstanceUID",
            "00080018",
            2,
        ),
    ];
    for (level, keys, unique, json_tag, n) in cases {
        let mut k: Vec<String> = keys.iter().map(|s| (*s).to_string()).collect();
        if !keys.iter().any(|k| k.starts_with(unique)) {
            k.push((*unique).to_string());
        }
        let kr: Vec<&str> = k.iter().map(String::as_str).collect();
        let ours = json_values(
            &our_find(f.ours, "XENRAD", &["--level", level], &kr),
            json_tag,
        );
        let theirs = json_values(
            &our_find(f.qrscp, "DCMQR", &["--level", level], &kr),
            json_tag,
        );
        assert_eq!(
            ours, theirs,
            "{level} {keys:?}: our SCP vs dcmqrscp, our SCU"
        );
        assert_eq!(ours.len(), *n, "{level} {keys:?}: {ours:?}");
        let mut dk = vec![format!("QueryRetrieveLevel={level}")];
        dk.extend(k.iter().cloned());
        let dk: Vec<&str> = dk.iter().map(String::as_str).collect();
        let tag = format!(
            "({},{})",
            json_tag[..4].to_ascii_lowercase(),
            json_tag[4..].to_ascii_lowercase()
        );
        let d_ours = dcmtk_find(f.ours, "XENRAD", "-S", &dk, &tag);
        assert_eq!(d_ours, ours, "{level} {keys:?}: findscu against our SCP");
    }
    // Patient Root at PATIENT level (findscu -P and our --root patient).
    let ours = json_values(
        &our_find(
            f.ours,
            "XENRAD",
            &["--root", "patient", "--level", "PATIENT"],
            &["PatientID", "PatientName"],
        ),
        "00100020",
    );
    assert_eq!(ours.len(), 5);
    let theirs = json_values(
        &our_find(
            f.qrscp,
            "DCMQR",
            &["--root", "patient", "--level", "PATIENT"],
            &["PatientID", "PatientName"],
        ),
        "00100020",
    );
    assert_eq!(ours, theirs);
    let d = dcmtk_find(
        f.ours,
        "XENRAD",
        "-P",
        &["QueryRetrieveLevel=PATIENT", "PatientID"],
        "(0010,0020)",
    );
    assert_eq!(d, ours);
    let _ = &f.images;
}

/// Non-ASCII names: a UTF-8 query (ISO_IR 192) finds the Latin-1 (ISO_IR 100) patient and the
/// UTF-8 ones, and the answers name their character set.
#[test]
fn non_ascii_names_match_across_character_sets() {
    let Some(python) = peers() else { return };
    let f = setup(python, "charset");
    for (q, want) in [
        ("Müller*", "Müller^Jörg"),
        ("Ōta*", "Ōta^Ren"),
        ("Дмитриев^Иван", "Дмитриев^Иван"),
    ] {
        let out = our_find(
            f.ours,
            "XENRAD",
            &["--level", "PATIENT", "--root", "patient"],
            &[&format!("PatientName={q}"), "PatientID"],
        );
        let names = json_values(&out, "00100010");
        assert_eq!(names, BTreeSet::from([want.to_string()]), "{q}");
    }
    // pynetdicom as SCU, the identifier in ISO_IR 192 (pydicom encodes it).
    let script = format!(
        r#"
from pydicom.dataset import Dataset
from pynetdicom import AE
ae = AE(ae_title="PYNET")
ae.add_requested_context("1.2.840.10008.5.1.4.1.2.2.1")
a = ae.associate("127.0.0.1", {port}, ae_title="XENRAD")
assert a.is_established
ds = Dataset()
ds.SpecificCharacterSet = "ISO_IR 192"
ds.QueryRetrieveLevel = "STUDY"
ds.PatientName = "Müller*"
ds.StudyInstanceUID = ""
ds.PatientID = ""
n = 0
final = None
for status, ident in a.send_c_find(ds, "1.2.840.10008.5.1.4.1.2.2.1"):
    if status.Status in (0xFF00, 0xFF01):
        assert str(ident.PatientName) == "Müller^Jörg", ident.PatientName
        n += 1
    else:
        final = status.Status
a.release()
print(n, hex(final))
"#,
        port = f.ours
    );
    let out = Command::new(&f.python)
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(ok(&out, "pynetdicom C-FIND").trim(), "2 0x0");
}

/// Modality Worklist: our SCU against wlmscpfs and DCMTK findscu -W against our SCP serving
/// the same .wl files agree, including sequence matching on the Scheduled Procedure Step.
#[test]
fn worklist_matches_equal_wlmscpfs() {
    let Some(python) = peers() else { return };
    let f = setup(python, "wl");
    let cases: &[&[&str]] = &[
        &[
            "ScheduledProcedureStepSequence[0].Modality=MR",
            "AccessionNumber",
            "PatientName",
        ],
        &[
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01",
            "AccessionNumber",
        ],
        &[
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20241201-20241205",
            "AccessionNumber",
        ],
        &[
            "PatientID=P003",
            "AccessionNumber",
            "ScheduledProcedureStepSequence",
        ],
    ];
    for keys in cases {
        let ours = json_values(
            &our_find(f.ours, "XENRAD", &["--worklist"], keys),
            "00080050",
        );
        let theirs = json_values(
            &our_find(f.wlmscp, "WLM", &["--worklist"], keys),
            "00080050",
        );
        assert!(!theirs.is_empty(), "{keys:?}: wlmscpfs found nothing");
        assert_eq!(ours, theirs, "{keys:?}: our SCP vs wlmscpfs");
        let dk: Vec<String> = keys
            .iter()
            .map(|k| k.replace("ScheduledProcedureStepSequence[0].", "(0040,0100)[0]."))
            .collect();
        let dk: Vec<&str> = dk.iter().map(String::as_str).collect();
        let d = dcmtk_find(f.ours, "XENRAD", "-W", &dk, "(0008,0050)");
        assert_eq!(d, ours, "{keys:?}: findscu -W against our SCP");
    }
}

/// Bad identifiers get 0xA900/0xC000 with an Error Comment, and C-CANCEL stops a query.
#[test]
fn bad_identifier_and_cancel() {
    let Some(python) = peers() else { return };
    let f = setup(python, "bad");
    // No Query/Retrieve Level: 0xA900 (PS3.4 C.4.1.1.4).
    let out = xenrad()
        .args([
            "dicom",
            "find",
            "--host",
            "127.0.0.1",
            "--port",
            &f.ours.to_string(),
        ])
        .args(["--call", "XENRAD", "--level", "NOSUCH", "-k", "PatientID"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0xA900"), "{err}");
    // Cancel after the first of ten study-level matches.
    let out = xenrad()
        .args([
            "dicom",
            "find",
            "--host",
            "127.0.0.1",
            "--port",
            &f.ours.to_string(),
        ])
        .args([
            "--call",
            "XENRAD",
            "--level",
            "STUDY",
            "--cancel-after",
            "1",
            "-k",
            "StudyInstanceUID",
        ])
        .output()
        .unwrap();
    let text = ok(&out, "find --cancel-after 1");
    assert_eq!(text.lines().count(), 1, "{text}");
}
