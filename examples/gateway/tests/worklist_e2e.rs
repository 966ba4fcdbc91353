//! The scheduled workflow (issue 16) end to end on one running gateway, with real peers:
//! ADT^A04 and ORM^O01 over MLLP → DCMTK `findscu -W` and pynetdicom get the worklist item
//! (accession, patient, Study Instance UID) → pynetdicom MPPS N-CREATE IN PROGRESS → DCMTK
//! `storescu` sends an image with that Study Instance UID → MPPS N-SET COMPLETED → FHIR shows
//! the chain (ServiceRequest completed with its accession typed ACSN, ImagingStudy and
//! Procedure based on it) and the worklist no longer lists the step. Then: a cancel (ORM CA)
//! removes an item, a restart keeps the worklist, and bad input (an order without accession,
//! a malformed date range) gets a clear status with nothing written.
//!
//! Peers come from `scripts/peers.sh` (`XENRAD_PEERS=1`, `XENRAD_PYTHON`,
//! `XENRAD_PYDICOM_DATA`); without it the test prints why it is skipped.
#![allow(missing_docs)]

mod common;

use common::{Gateway, KEY, msa, peers};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

impl Gateway {
    fn start() -> Gateway {
        Gateway::launch("worklist-e2e", Vec::new())
    }
}

/// One HL7 v2 message over MLLP; the ACK's text.
fn mllp(g: &Gateway, msg: &str) -> String {
    common::mllp(g.mllp, msg)
}

fn fhir_get(g: &Gateway, path: &str) -> Value {
    let out = Command::new("curl")
        .args(["-s", "-H", &format!("X-API-Key: {KEY}")])
        .arg(format!("http://{}{path}", g.fhir))
        .output()
        .expect("curl");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `findscu -W` with these keys; its stderr (the responses, -v) and whether it succeeded.
fn findscu(g: &Gateway, keys: &[&str]) -> (String, bool) {
    let mut c = Command::new("findscu");
    c.args(["-v", "-W", "-aec", "XENRAD", "127.0.0.1", &g.port()]);
    for k in keys {
        c.args(["-k", k]);
    }
    let out = c.output().expect("findscu");
    (
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
        out.status.success(),
    )
}

/// The values of one attribute in `findscu -v` output (`(0020,000d) UI [..]`).
fn values(out: &str, tag: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.contains(tag))
        .filter_map(|l| {
            let a = l.find('[')?;
            let b = l[a..].find(']')?;
            Some(l[a + 1..a + b].trim_matches(['\0', ' ']).to_owned())
        })
        .collect()
}

const WL_KEYS: &[&str] = &[
    "PatientName",
    "PatientID",
    "AccessionNumber",
    "StudyInstanceUID",
    "RequestedProcedureID",
    "ScheduledProcedureStepSequence[0].Modality=CT",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20250101-20251231",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus",
];

fn order(control: &str, n: u32, acc: &str) -> String {
    format!(
        "MSH|^~\\&|RIS|RAD|XENRAD|GW|20250124120000||ORM^O01^ORM_O01|ORM{n}{control}|P|2.3.1\n\
PID|1||P100^^^HOSP^MR||WORK^LIST||19700101|F\n\
PV1|1|O|RADWARD\n\
ORC|{control}|PL{n}^RIS|FL{n}^DSS^1.2.840.99^ISO||SC||^^^202501241430\n\
OBR|1|PL{n}^RIS|FL{n}^DSS|CTH^CT HEAD^L||||||||||||||{acc}|RP{n}|SPS{n}||||CT\n"
    )
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(std::env::var("XENRAD_PYTHON").unwrap())
        .args(["-c", script])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PY_FIND_AND_CREATE: &str = r#"
import sys
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind as MWL, ModalityPerformedProcedureStep as MPPS
port, mpps_uid, ct, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ae = AE(ae_title="CT1")
ae.add_requested_context(MWL)
ae.add_requested_context(MPPS)
a = ae.associate("127.0.0.1", port, ae_title="XENRAD")
assert a.is_established
q = Dataset()
q.PatientName = ""; q.PatientID = "P100"; q.IssuerOfPatientID = ""; q.AccessionNumber = ""; q.StudyInstanceUID = ""
sps = Dataset(); sps.Modality = "CT"; sps.ScheduledProcedureStepStartDate = ""; sps.ScheduledProcedureStepID = ""
q.ScheduledProcedureStepSequence = Sequence([sps])
items = []
for st, ident in a.send_c_find(q, MWL):
    if st and st.Status in (0xFF00, 0xFF01):
        items.append(ident)
assert len(items) == 1, items
it = items[0]
print("FOUND", it.AccessionNumber, it.PatientID, str(it.PatientName), it.StudyInstanceUID)
ds = Dataset()
ds.PerformedProcedureStepStatus = "IN PROGRESS"
ds.PerformedProcedureStepID = "PPS1"
ds.PerformedStationAETitle = "CT1"
ds.PerformedProcedureStepStartDate = "20250124"
ds.PerformedProcedureStepStartTime = "143000"
ds.Modality = "CT"
ds.PatientName = it.PatientName
ds.PatientID = it.PatientID
ssa = Dataset()
ssa.StudyInstanceUID = it.StudyInstanceUID
ssa.AccessionNumber = it.AccessionNumber
ssa.ScheduledProcedureStepID = it.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID
ds.ScheduledStepAttributesSequence = Sequence([ssa])
for k in ["PatientBirthDate","PatientSex","ReferencedPatientSequence","PerformedProcedureStepDescription","PerformedProcedureTypeDescription","ProcedureCodeSequence","PerformedProcedureStepEndDate","PerformedProcedureStepEndTime","PerformedStationName","PerformedLocation","PerformedSeriesSequence"]:
    setattr(ds, k, Sequence([]) if k.endswith("Sequence") else "")
st, _ = a.send_n_create(ds, MPPS, mpps_uid)
print("NCREATE", hex(st.Status))
a.release()
# The image the modality acquires for this step: its Study Instance UID and accession.
d = dcmread(ct)
d.StudyInstanceUID = it.StudyInstanceUID
d.AccessionNumber = it.AccessionNumber
d.PatientID = it.PatientID
d.IssuerOfPatientID = it.IssuerOfPatientID
d.PatientName = it.PatientName
d.SeriesInstanceUID = generate_uid()
d.SOPInstanceUID = generate_uid()
d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
d.save_as(out)
print("IMAGE", d.SeriesInstanceUID, d.SOPInstanceUID)
"#;

const PY_COMPLETE: &str = r#"
import sys
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS
port, mpps_uid, series, sop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ae = AE(ae_title="CT1")
ae.add_requested_context(MPPS)
a = ae.associate("127.0.0.1", port, ae_title="XENRAD")
assert a.is_established
upd = Dataset()
upd.PerformedProcedureStepStatus = "COMPLETED"
upd.PerformedProcedureStepEndDate = "20250124"
upd.PerformedProcedureStepEndTime = "144500"
ser = Dataset(); ser.SeriesInstanceUID = series; ser.RetrieveAETitle = ""; ser.SeriesDescription = ""
ser.PerformingPhysicianName = ""; ser.OperatorsName = ""; ser.ProtocolName = "HEAD"
img = Dataset(); img.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"; img.ReferencedSOPInstanceUID = sop
ser.ReferencedImageSequence = Sequence([img]); ser.ReferencedNonImageCompositeSOPInstanceSequence = Sequence([])
upd.PerformedSeriesSequence = Sequence([ser])
st, _ = a.send_n_set(upd, MPPS, mpps_uid)
print("NSET", hex(st.Status))
a.release()
"#;

#[test]
fn scheduled_workflow_end_to_end_with_dcmtk_and_pynetdicom() {
    if !peers() {
        return;
    }
    let mut g = Gateway::start();

    // ADT^A04 registers the patient; ORM^O01 NW schedules the step.
    let adt = "MSH|^~\\&|ADT|HOSP|XENRAD|GW|20250124110000||ADT^A04^ADT_A01|ADT1|P|2.5.1\n\
EVN|A04\nPID|1||P100^^^HOSP^MR||WORK^LIST||19700101|F\nPV1|1|O|RADWARD\n";
    assert_eq!(msa(&mllp(&g, adt)), "AA");
    let ack = mllp(&g, &order("NW", 1, "ACC1"));
    assert_eq!(msa(&ack), "AA", "{ack}");

    // DCMTK findscu -W: the item with its accession, patient and a Study Instance UID.
    let (out, ok) = findscu(&g, WL_KEYS);
    assert!(ok, "{out}");
    assert_eq!(values(&out, "(0008,0050)"), ["ACC1"], "{out}");
    assert_eq!(values(&out, "(0010,0020)"), ["P100"]);
    assert_eq!(values(&out, "(0010,0010)"), ["WORK^LIST"]);
    assert_eq!(values(&out, "(0040,1001)"), ["RP1"]);
    assert_eq!(values(&out, "(0040,0009)"), ["SPS1"]);
    assert_eq!(values(&out, "(0040,0020)"), ["SCHEDULED"]);
    let study_uid = values(&out, "(0020,000d)")
        .pop()
        .expect("a Study Instance UID");
    assert!(study_uid.starts_with("2.25."), "{study_uid}");

    // pynetdicom finds the same item, then starts the step (MPPS N-CREATE IN PROGRESS).
    let mpps_uid = "1.2.826.0.1.3680043.10.1616.1";
    let ct = PathBuf::from(std::env::var("XENRAD_PYDICOM_DATA").unwrap()).join("CT_small.dcm");
    let image = g.dir.join("image.dcm");
    let py = python(
        PY_FIND_AND_CREATE,
        &[
            &g.port(),
            mpps_uid,
            ct.to_str().unwrap(),
            image.to_str().unwrap(),
        ],
    );
    assert!(
        py.contains(&format!("FOUND ACC1 P100 WORK^LIST {study_uid}")),
        "{py}"
    );
    assert!(py.contains("NCREATE 0x0"), "{py}");
    let img = py
        .lines()
        .find_map(|l| l.strip_prefix("IMAGE "))
        .expect("image written");
    let (series_uid, sop_uid) = img.split_once(' ').unwrap();

    // The order is active, carries the accession typed ACSN under its filler's authority and
    // names the study.
    let sr = fhir_get(
        &g,
        "/fhir/ServiceRequest?identifier=urn:oid:1.2.840.99|ACC1",
    );
    assert_eq!(sr["total"], 1, "{sr}");
    let sr = &sr["entry"][0]["resource"];
    let sr_id = sr["id"].as_str().unwrap().to_owned();
    assert_eq!(sr["status"], "active", "{sr}");
    let ids = sr["identifier"].as_array().unwrap();
    assert!(
        ids.iter().any(|i| i["type"]["coding"][0]["code"] == "ACSN"
            && i["value"] == "ACC1"
            && i["system"] == "urn:oid:1.2.840.99"),
        "{sr}"
    );
    assert!(
        ids.iter()
            .any(|i| i["value"] == format!("urn:oid:{study_uid}").as_str()),
        "{sr}"
    );
    // Still on the worklist, started.
    let (out, _) = findscu(&g, WL_KEYS);
    assert_eq!(values(&out, "(0040,0020)"), ["STARTED"], "{out}");

    // DCMTK storescu sends the image with the order's Study Instance UID.
    let st = Command::new("storescu")
        .args(["-aec", "XENRAD", "127.0.0.1", &g.port()])
        .arg(&image)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    // MPPS N-SET COMPLETED.
    let py = python(PY_COMPLETE, &[&g.port(), mpps_uid, series_uid, sop_uid]);
    assert!(py.contains("NSET 0x0"), "{py}");

    // FHIR shows the chain.
    let sr_ref = format!("ServiceRequest/{sr_id}");
    let sr = fhir_get(&g, &format!("/fhir/{sr_ref}"));
    assert_eq!(sr["status"], "completed", "{sr}");
    let st = fhir_get(&g, &format!("/fhir/ImagingStudy?identifier={study_uid}"));
    assert_eq!(st["total"], 1, "{st}");
    let study = &st["entry"][0]["resource"];
    assert_eq!(study["basedOn"][0]["reference"], sr_ref.as_str(), "{study}");
    assert_eq!(study["status"], "available");
    assert_eq!(study["numberOfInstances"], 1);
    let pr = fhir_get(
        &g,
        &format!("/fhir/Procedure?identifier=urn:dicom:uid|urn:oid:{mpps_uid}"),
    );
    assert_eq!(pr["total"], 1, "{pr}");
    let proc = &pr["entry"][0]["resource"];
    assert_eq!(proc["status"], "completed");
    assert_eq!(proc["basedOn"][0]["reference"], sr_ref.as_str(), "{proc}");
    assert_eq!(
        study["subject"], sr["subject"],
        "one patient across the chain"
    );

    // The radiologist's report (ORU^R01) for the order: a DiagnosticReport with its
    // observations, based on the order and naming the study.
    let oru = "MSH|^~\\&|RIS|RAD|XENRAD|GW|20250124150000||ORU^R01^ORU_R01|ORU1|P|2.5.1\n\
PID|1||P100^^^HOSP^MR||WORK^LIST\n\
ORC|RE|PL1^RIS|FL1^DSS\n\
OBR|1|PL1^RIS|FL1^DSS|CTH^CT HEAD^L|||20250124143000|||||||||||ACC1||||20250124150000+0100|||F\n\
OBX|1|TX|GDT^Findings^L||No bleed.~No mass.||||||F\n\
OBX|2|TX|IMP^Impression^L||Normal CT head.||||||F\n";
    let ack = mllp(&g, oru);
    assert_eq!(msa(&ack), "AA", "{ack}");
    let dr = fhir_get(&g, &format!("/fhir/DiagnosticReport?based-on={sr_ref}"));
    assert_eq!(dr["total"], 1, "{dr}");
    let dr = &dr["entry"][0]["resource"];
    assert_eq!(dr["status"], "final");
    assert_eq!(dr["conclusion"], "Normal CT head.");
    assert_eq!(dr["subject"], sr["subject"]);
    let study_id = study["id"].as_str().unwrap();
    assert_eq!(
        dr["imagingStudy"][0]["reference"],
        format!("ImagingStudy/{study_id}").as_str(),
        "{dr}"
    );
    assert_eq!(dr["result"].as_array().map(Vec::len), Some(2), "{dr}");
    let obs_ref = dr["result"][0]["reference"].as_str().unwrap();
    let obs = fhir_get(&g, &format!("/fhir/{obs_ref}"));
    assert_eq!(obs["valueString"], "No bleed.\nNo mass.", "{obs}");
    // The appointment (SIU^S12) for the order.
    let siu = "MSH|^~\\&|RIS|RAD|XENRAD|GW|20250120120000||SIU^S12^SIU_S12|SIU1|P|2.5.1\n\
SCH|AP1^RIS|AF1^DSS|||||^CT head||||^^^20250124143000^20250124150000||||||||||||||Booked|PL1^RIS|FL1^DSS\n\
PID|1||P100^^^HOSP^MR||WORK^LIST\nRGS|1\nAIS|1||CTH^CT HEAD^L|20250124143000|||20|MIN\n";
    assert_eq!(msa(&mllp(&g, siu)), "AA");
    let ap = fhir_get(&g, &format!("/fhir/Appointment?based-on={sr_ref}"));
    assert_eq!(ap["total"], 1, "{ap}");
    assert_eq!(ap["entry"][0]["resource"]["status"], "booked");
    assert_eq!(
        ap["entry"][0]["resource"]["participant"][0]["actor"],
        sr["subject"]
    );

    // A report for an unknown order: AE 204 at OBR-3, nothing written.
    let unknown = oru
        .replace("ORU1", "ORU2")
        .replace("PL1^RIS", "PL9^RIS")
        .replace("FL1^DSS", "FL9^DSS")
        .replace("|ACC1|", "|ACC9|");
    let ack = mllp(&g, &unknown);
    assert_eq!(msa(&ack), "AE", "{ack}");
    assert!(ack.contains("204") && ack.contains("OBR^1^3"), "{ack}");
    let all = fhir_get(&g, "/fhir/DiagnosticReport");
    assert_eq!(all["total"], 1, "{all}");

    // The completed step left the worklist.
    let (out, ok) = findscu(&g, WL_KEYS);
    assert!(ok);
    assert!(values(&out, "(0008,0050)").is_empty(), "{out}");

    // A second order, cancelled (ORM CA): scheduled, then gone.
    assert_eq!(msa(&mllp(&g, &order("NW", 2, "ACC2"))), "AA");
    let (out, _) = findscu(&g, WL_KEYS);
    assert_eq!(values(&out, "(0008,0050)"), ["ACC2"], "{out}");
    assert_eq!(msa(&mllp(&g, &order("CA", 2, "ACC2"))), "AA");
    let (out, _) = findscu(&g, WL_KEYS);
    assert!(values(&out, "(0008,0050)").is_empty(), "{out}");
    let sr = fhir_get(
        &g,
        "/fhir/ServiceRequest?identifier=urn:oid:1.2.840.99|ACC2",
    );
    assert_eq!(sr["entry"][0]["resource"]["status"], "revoked", "{sr}");

    // A third, and a restart keeps it (and its Study Instance UID).
    assert_eq!(msa(&mllp(&g, &order("NW", 3, "ACC3"))), "AA");
    let (before, _) = findscu(&g, WL_KEYS);
    g.stop();
    g.spawn();
    let (after, _) = findscu(&g, WL_KEYS);
    assert_eq!(values(&after, "(0008,0050)"), ["ACC3"], "{after}");
    assert_eq!(
        values(&after, "(0020,000d)"),
        values(&before, "(0020,000d)")
    );
    // A redelivery of the same NW (same MSH-10) changes nothing; a new NW message for the
    // same step keeps its Study Instance UID.
    assert_eq!(msa(&mllp(&g, &order("NW", 3, "ACC3"))), "AA");
    let again = order("NW", 3, "ACC3").replace("ORM3NW", "ORM3NWb");
    assert_eq!(msa(&mllp(&g, &again)), "AA");
    let (again, _) = findscu(&g, WL_KEYS);
    assert_eq!(
        values(&again, "(0020,000d)"),
        values(&before, "(0020,000d)")
    );

    // A merge (ADT^A40: P200 survives, P100 retired) moves the orders, the study, the
    // procedure, the report and the worklist step to the survivor; both sides linked.
    let a40 = "MSH|^~\\&|ADT|HOSP|XENRAD|GW|20250125090000||ADT^A40^ADT_A39|A40-1|P|2.5.1\n\
EVN|A40\nPID|1||P200^^^HOSP^MR||MERGED^PAT||19700101|F\nMRG|P100^^^HOSP^MR\n";
    assert_eq!(msa(&mllp(&g, a40)), "AA");
    let old = fhir_get(&g, "/fhir/Patient?identifier=HOSP|P100");
    let old_ref = format!(
        "Patient/{}",
        old["entry"][0]["resource"]["id"].as_str().unwrap()
    );
    let old = fhir_get(&g, &format!("/fhir/{old_ref}"));
    assert_eq!(old["link"][0]["type"], "replaced-by", "{old}");
    let new_ref = old["link"][0]["other"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let new = fhir_get(&g, &format!("/fhir/{new_ref}"));
    assert_eq!(new["link"][0]["type"], "replaces", "{new}");
    assert_eq!(new["link"][0]["other"]["reference"], old_ref.as_str());
    for t in [
        "ServiceRequest",
        "ImagingStudy",
        "Procedure",
        "DiagnosticReport",
        "Observation",
    ] {
        let left = fhir_get(&g, &format!("/fhir/{t}?subject={old_ref}"));
        assert_eq!(left["total"], 0, "{t} left on the retired patient: {left}");
        let moved = fhir_get(&g, &format!("/fhir/{t}?subject={new_ref}"));
        assert!(moved["total"].as_u64().unwrap() >= 1, "{t}: {moved}");
    }
    let (out, _) = findscu(&g, WL_KEYS);
    assert_eq!(values(&out, "(0010,0020)"), ["P200"], "{out}");
    assert_eq!(values(&out, "(0010,0010)"), ["MERGED^PAT"], "{out}");

    // Bad input. An order without an accession: AE naming OBR-18, nothing written.
    let ack = mllp(&g, &order("NW", 4, ""));
    assert_eq!(msa(&ack), "AE", "{ack}");
    assert!(ack.contains("OBR^1^18"), "{ack}");
    let sr = fhir_get(
        &g,
        "/fhir/ServiceRequest?identifier=urn:xenrad:placer:RIS|PL4",
    );
    assert_eq!(sr["total"], 0, "{sr}");
    // A malformed date range: refused with 0xA900 and a comment.
    let (out, _) = findscu(
        &g,
        &[
            "AccessionNumber",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=2025-01-01",
        ],
    );
    assert!(out.contains("DataSetDoesNotMatchSOPClass"), "{out}");
    g.stop();
}
