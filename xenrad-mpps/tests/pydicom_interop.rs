//! Interop with pydicom (real peer): datasets pydicom writes for N-CREATE / N-SET (Implicit and
//! Explicit VR LE, Latin-1 text) and its DICOM JSON go through our DIMSE and MPPS-RS doors; our
//! encodings of the stored instance are read back by pydicom with the same values.

use std::io::Write;
use std::process::{Command, Stdio};
use xenrad_mpps::codec::{dicom_json, dimse};
use xenrad_mpps::{MemoryStore, Mpps, PpsStatus, TransferSyntaxKind};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pydicom_datasets.py");

fn python() -> Option<String> {
    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!("skipped: XENRAD_PEERS unset (run `eval \"$(scripts/peers.sh)\"`)");
        return None;
    }
    Some(std::env::var("XENRAD_PYTHON").expect("XENRAD_PEERS is set but XENRAD_PYTHON is not"))
}

fn run(py: &str, arg: &str, stdin: &[u8]) -> serde_json::Value {
    let mut child = Command::new(py)
        .args([SCRIPT, arg])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the pydicom helper");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "pydicom helper failed");
    serde_json::from_slice(&out.stdout).expect("helper prints JSON")
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn hex(s: &serde_json::Value) -> Vec<u8> {
    let s = s.as_str().unwrap();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn pydicom_datasets_through_every_door_and_back() {
    let Some(py) = python() else { return };
    let generated = run(&py, "gen", b"");
    let doors = [
        ("implicit", Some(TransferSyntaxKind::ImplicitVrLittleEndian)),
        ("explicit", Some(TransferSyntaxKind::ExplicitVrLittleEndian)),
        ("json", None),
    ];
    let mut stored = Vec::new();
    for (door, ts) in doors {
        let mpps = Mpps::new(MemoryStore::new());
        let uid = "1.2.826.0.1.3680043.2.1125.1";
        for step in ["create", "set"] {
            let body = &generated[step][door];
            if let Some(ts) = ts {
                let bytes = hex(body);
                let rsp = if step == "create" {
                    mpps.n_create_dataset(uid, &bytes, ts)
                } else {
                    mpps.n_set_dataset(uid, &bytes, ts)
                };
                assert_eq!(rsp.status, 0, "{door} {step}: {rsp:?}");
                // Our response dataset decodes with our own decoder too.
                dimse::decode(
                    rsp.dataset.as_deref().unwrap(),
                    ts,
                    &xenrad_mpps::Limits::default(),
                )
                .unwrap();
            } else {
                let json = body.as_str().unwrap().as_bytes();
                let r = if step == "create" {
                    mpps.create_dicom_json(uid, json)
                } else {
                    mpps.update_dicom_json(uid, json)
                };
                assert!(r.is_ok(), "{door} {step}: {r:?}");
            }
        }
        let inst = mpps.get(uid).unwrap();
        assert_eq!(inst.status(), Some(PpsStatus::Completed));
        assert_eq!(
            inst.performed_series()[0].referenced_images[0].sop_instance_uid,
            "1.2.3.4.5.6.7.1"
        );
        assert_eq!(
            inst.attributes.str(xenrad_mpps::tags::PATIENT_NAME),
            Some("Müller^Jörg")
        );
        stored.push(inst);
    }
    // Same state whichever door the pydicom-written requests came through (Specific Character Set
    // aside: the DIMSE doors saw ISO_IR 100 bytes, the JSON door saw Unicode).
    let strip = |i: &xenrad_mpps::MppsInstance| {
        let mut a = i.attributes.clone();
        a.remove(xenrad_mpps::tags::SPECIFIC_CHARACTER_SET);
        a
    };
    assert_eq!(strip(&stored[0]), strip(&stored[1]));
    assert_eq!(strip(&stored[0]), strip(&stored[2]));

    // Our encodings read back by pydicom.
    let inst = &stored[0];
    let ours = serde_json::json!({
        "implicit": to_hex(&dimse::encode(&inst.attributes, TransferSyntaxKind::ImplicitVrLittleEndian).unwrap()),
        "explicit": to_hex(&dimse::encode(&inst.attributes, TransferSyntaxKind::ExplicitVrLittleEndian).unwrap()),
        "json": String::from_utf8(dicom_json::encode_instance(inst)).unwrap(),
    });
    let back = run(&py, "check", ours.to_string().as_bytes());
    for door in ["implicit", "explicit", "json"] {
        let b = &back[door];
        assert_eq!(b["status"], "COMPLETED", "{door}: {b}");
        assert_eq!(b["study"], "1.2.3.4.5.6", "{door}");
        assert_eq!(b["patient"], "Müller^Jörg", "{door}");
        assert_eq!(b["end_date"], "20250101", "{door}");
        assert_eq!(b["series"], "1.2.3.4.5.6.7", "{door}");
        assert_eq!(b["image"], "1.2.3.4.5.6.7.1", "{door}");
        assert_eq!(b["empty_birth_date"], true, "{door}");
    }
}
