//! `xenrad dicom get`, `move` and `commit` against `xenrad dicom scp --qr --peer` (issue
//! 15), on `scripts/qr_fixture.py`'s set, with DCMTK `storescp` as the move destination and
//! DCMTK `getscu` as a second C-GET SCU. Retrieved instances equal the sent files byte for
//! byte after the File Meta (our receivers) or element for element (DCMTK's, which rewrites).
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use xenrad_dimse::store::parse_part10;

mod common;
use common::*;

fn text(out: &Output) -> String {
    format!(
        "{}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// SOP Instance UID → data set bytes of every Part 10 file under `dir`.
fn datasets(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p)
                && let Some(x) = parse_part10(&b)
            {
                m.insert(
                    x.sop_instance_uid.to_string(),
                    b[x.dataset_offset..].to_vec(),
                );
            }
        }
    }
    m
}

/// (study UID, SOP instance UIDs) of the fixture, read with pydicom.
fn studies(python: &str, images: &Path) -> BTreeMap<String, Vec<String>> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sys,os,pydicom\n\
             for n in sorted(os.listdir(sys.argv[1])):\n\
             \x20   d=pydicom.dcmread(os.path.join(sys.argv[1],n),stop_before_pixels=True)\n\
             \x20   print(d.StudyInstanceUID, d.SOPInstanceUID)",
        ])
        .arg(images)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let (s, i) = l.split_once(' ').unwrap();
        m.entry(s.into()).or_default().push(i.into());
    }
    m
}

#[test]
fn get_move_and_commit_through_xenrad_scp() {
    let Some(python) = peers() else { return };
    let dir = std::env::temp_dir().join(format!("xenrad-rt-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = Dir(dir.clone());
    let images = dir.join("images");
    let out = Command::new(&python)
        .arg(root().join("scripts/qr_fixture.py"))
        .arg("images")
        .arg(&images)
        .output()
        .unwrap();
    assert!(out.status.success(), "qr_fixture.py: {}", text(&out));
    let sent = datasets(&images);
    let by_study = studies(&python, &images);
    let (ours, dest) = (free_port(), free_port());
    let dest_dir = dir.join("storescp");
    std::fs::create_dir_all(&dest_dir).unwrap();
    let _storescp = Proc(
        dcmtk("storescp")
            .args(["-aet", "STORESCP", "-od"])
            .arg(&dest_dir)
            .arg(dest.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _scp = Proc(
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
            .arg(dir.join("ours"))
            .args(["--qr", "--no-fsync", "--quiet"])
            .args(["--peer", &format!("STORESCP=127.0.0.1:{dest}")])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(ours);
    wait_port(dest);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
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
    assert!(out.status.success(), "store: {}", text(&out));

    let peer = [
        "--port",
        &ours.to_string(),
        "--call",
        "XENRAD",
        "--aet",
        "CLI",
    ];
    let peer: Vec<String> = peer.iter().map(|s| (*s).to_string()).collect();
    let (study, uids) = by_study.iter().next().unwrap();

    // C-GET of one study into a folder: exactly its instances, byte for byte.
    let got = dir.join("got");
    let out = xenrad()
        .args(["dicom", "get"])
        .args(&peer)
        .args(["-k", &format!("StudyInstanceUID={study}")])
        .arg("--out")
        .arg(&got)
        .output()
        .unwrap();
    assert!(out.status.success(), "get: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "0x0000", "{stdout}");
    assert_eq!(last["completed"], uids.len(), "{stdout}");
    let received = datasets(&got);
    assert_eq!(received.keys().collect::<Vec<_>>(), {
        let mut u: Vec<&String> = uids.iter().collect();
        u.sort();
        u
    });
    for (uid, ds) in &received {
        assert!(sent[uid] == *ds, "{uid} differs from the sent file");
    }

    // C-MOVE of every study to DCMTK storescp: counts as one JSON line.
    let mut moved = 0;
    for s in by_study.keys() {
        let out = xenrad()
            .args(["dicom", "move"])
            .args(&peer)
            .args(["--dest", "STORESCP", "-k", &format!("StudyInstanceUID={s}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "move: {}", text(&out));
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        assert_eq!(v["failed"], 0);
        moved += v["completed"].as_u64().unwrap();
    }
    assert_eq!(moved as usize, sent.len());
    assert_eq!(datasets(&dest_dir).len(), sent.len());
    // Unknown destination: 0xA801, exit 1.
    let out = xenrad()
        .args(["dicom", "move"])
        .args(&peer)
        .args([
            "--dest",
            "NOWHERE",
            "-k",
            &format!("StudyInstanceUID={study}"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"status\":\"0xA801\""),
        "{}",
        text(&out)
    );

    // Storage commitment: the stored files are committed, an instance never sent is not.
    let stray = dir.join("stray.dcm");
    let mut b = std::fs::read(&files[0]).unwrap();
    let m = parse_part10(&b).unwrap();
    let old = m.sop_instance_uid.to_string();
    let new = format!("{}9", &old[..old.len() - 1]);
    let at = b
        .windows(old.len())
        .position(|w| w == old.as_bytes())
        .unwrap();
    b[at..at + old.len()].copy_from_slice(new.as_bytes());
    std::fs::write(&stray, &b).unwrap();
    let out = xenrad()
        .args([
            "dicom",
            "commit",
            "--port",
            &ours.to_string(),
            "--call",
            "XENRAD",
        ])
        .args(&files[..3])
        .arg(&stray)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "one failed: exit 1");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    for (l, f) in lines.iter().zip(&files[..3]) {
        let bytes = std::fs::read(f).unwrap();
        let uid = parse_part10(&bytes).unwrap().sop_instance_uid.to_string();
        assert_eq!(*l, format!("committed {uid}"));
    }
    assert_eq!(lines[3], format!("failed {new} 0x0112"));

    // DCMTK getscu against the same SCP: every instance of the study comes back.
    let dg = dir.join("getscu");
    std::fs::create_dir_all(&dg).unwrap();
    let out = dcmtk("getscu")
        .args(["-aet", "GETSCU", "-aec", "XENRAD", "-S"])
        .args([
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &format!("StudyInstanceUID={study}"),
        ])
        .arg("-od")
        .arg(&dg)
        .args(["127.0.0.1", &ours.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "getscu: {}", text(&out));
    assert_eq!(datasets(&dg).len(), uids.len());
}
