//! C-FIND matching against pydicom as the oracle: pydicom writes a generated set of Part 10
//! files (several patients, studies, series, instances; names in ISO_IR 100 and ISO_IR 192;
//! three transfer syntaxes) and a worklist folder; it then computes, from those files with its
//! own decoding, which entities each query matches (PS3.4 C.2.2.2 rules, the same choices as
//! ours: PN case-insensitive, reduced-precision range bounds). Our index of the same files must
//! give the same matches and the same decoded names. Skipped unless `XENRAD_PEERS` is set
//! (`eval "$(scripts/peers.sh)"`).
#![cfg(feature = "qr")]

use dicom_dictionary_std::tags;
use std::collections::BTreeMap;
use std::path::PathBuf;
use xenrad_dimse::query::{
    FindOptions, FindQuery, InformationModel, QueryIndex, Worklist, decode_identifier,
    encode_identifier, identifier_from_pairs,
};

const ORACLE: &str = r#"
import json, random, re, sys, os
import pydicom
from pydicom.multival import MultiValue
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian
from pydicom.datadict import dictionary_VR, tag_for_keyword

out, queries_path, result_path = sys.argv[1], sys.argv[2], sys.argv[3]
qr_dir, wl_dir = os.path.join(out, "qr"), os.path.join(out, "wl")
os.makedirs(qr_dir, exist_ok=True); os.makedirs(wl_dir, exist_ok=True)
rnd = random.Random(15)
ROOT = "1.2.826.0.1.3680043.10.1500"
# (name, charset it is written in, id, birth date, sex)
PATIENTS = [
    ("Müller^Jörg", "ISO_IR 100", "P1", "19700101", "M"),
    ("Müller^Jörg", "ISO_IR 192", "P2", "19800512", "M"),
    ("Ødegård^Åse", "ISO_IR 100", "P3", "19651224", "F"),
    ("山田^太郎", "ISO_IR 192", "P4", "19901010", "M"),
    ("Иванов^Иван", "ISO_IR 192", "P5", "19551111", "M"),
    ("García^José", "ISO_IR 100", "P6", "20000229", "M"),
    ("DOE^JANE", None, "P7", "19770707", "F"),
    ("Doe^John", None, "P8", "", "O"),
]
DESCR = ["CT Thorax", "MR Knie ü", "US Abdomen", "Röntgen Hand", "CT Schädel"]
TSS = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]

def save(ds, path, ts, sop_class, sop_uid):
    fm = FileMetaDataset()
    fm.TransferSyntaxUID = ts
    fm.MediaStorageSOPClassUID = sop_class
    fm.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta = fm
    ds.save_as(path, enforce_file_format=True)

n = 0
for p, (name, cs, pid, birth, sex) in enumerate(PATIENTS):
    for s in range(rnd.randint(1, 3)):
        study = f"{ROOT}.{p}.{s}"
        date = f"{rnd.choice([2023, 2024])}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}"
        time = f"{rnd.randint(0, 23):02d}{rnd.randint(0, 59):02d}{rnd.randint(0, 59):02d}"
        descr = rnd.choice(DESCR)
        for se in range(rnd.randint(1, 3)):
            series = f"{study}.{se}"
            modality = rnd.choice(["CT", "MR", "US", "CR"])
            for i in range(rnd.randint(1, 3)):
                ds = Dataset()
                if cs:
                    ds.SpecificCharacterSet = cs
                ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
                ds.SOPInstanceUID = f"{series}.{i}"
                ds.StudyDate = date; ds.StudyTime = time
                ds.AccessionNumber = f"A{p}{s}"
                ds.Modality = modality
                ds.ReferringPhysicianName = "Weiß^Anna" if p % 2 else "Smith^Bob"
                ds.StudyDescription = descr
                ds.SeriesDescription = f"{modality} series {se}"
                ds.PatientName = name; ds.PatientID = pid
                ds.PatientBirthDate = birth; ds.PatientSex = sex
                ds.StudyInstanceUID = study; ds.SeriesInstanceUID = series
                ds.StudyID = str(s); ds.SeriesNumber = se + 1; ds.InstanceNumber = i + 1
                save(ds, os.path.join(qr_dir, f"{n:04d}.dcm"), TSS[n % 3], ds.SOPClassUID, ds.SOPInstanceUID)
                n += 1

# Worklist: one item per patient, one or two scheduled procedure steps each.
for p, (name, cs, pid, birth, sex) in enumerate(PATIENTS):
    ds = Dataset()
    if cs:
        ds.SpecificCharacterSet = cs
    ds.PatientName = name; ds.PatientID = pid; ds.AccessionNumber = f"W{p}"
    ds.RequestedProcedureID = f"RP{p}"
    steps = []
    for k in range(1 + p % 2):
        sps = Dataset()
        sps.Modality = ["CT", "MR", "US"][(p + k) % 3]
        sps.ScheduledStationAETitle = f"{sps.Modality}{1 + k}"
        sps.ScheduledProcedureStepStartDate = f"202401{10 + p:02d}"
        sps.ScheduledProcedureStepStartTime = f"{8 + 2 * k + p % 3:02d}00"
        sps.ScheduledPerformingPhysicianName = "Weiß^Anna" if k else "Doe^John"
        steps.append(sps)
    ds.ScheduledProcedureStepSequence = Sequence(steps)
    save(ds, os.path.join(wl_dir, f"item{p}.wl"), [ExplicitVRLittleEndian, ImplicitVRLittleEndian][p % 2],
         "1.2.276.0.7230010.3.1.0.1", f"{ROOT}.9.{p}")

# ---- matching, from pydicom's decoded values (PS3.4 C.2.2.2) ----
WILD = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}

def tm_bounds(t):
    t = t.replace(":", "")
    main, _, frac = t.partition(".")
    h = int(main[0:2]); m = int(main[2:4] or 0); s = int(main[4:6] or 0)
    lo = ((h * 60 + m) * 60 + s) * 10**6
    span = {2: 3600 * 10**6, 4: 60 * 10**6}.get(len(main), 10**6)
    if frac:
        lo += int(frac) * 10 ** (6 - len(frac)); span = 10 ** (6 - len(frac))
    return lo, lo + span - 1

def in_range(vr, q, v):
    lo, sep, hi = q.partition("-")
    if not sep:
        hi = lo
    if vr == "DA":
        return (lo or "00000000") <= v <= (hi or "99999999")
    pt = tm_bounds(v)[0]
    return (not lo or tm_bounds(lo)[0] <= pt) and (not hi or pt <= tm_bounds(hi)[1])

def values(ds, kw):
    if kw not in ds:
        return []
    v = ds[kw].value
    if v is None or v == "":
        return []
    vals = list(v) if isinstance(v, (list, MultiValue)) else [v]
    return [str(x).strip(" \0") for x in vals if str(x).strip(" \0")]

def match_key(ds, kw, q, extra):
    vr = dictionary_VR(tag_for_keyword(kw))
    if isinstance(q, dict):
        if not q:
            return True
        items = ds.get(kw) or []
        return any(all(match_key(it, k, v, {}) for k, v in q.items()) for it in items)
    q = q.strip()
    if q == "" or (vr in WILD and set(q) == {"*"}):
        return True
    vals = extra[kw] if kw in extra else values(ds, kw)
    if not vals:
        return False
    # Several key values (backslash): UID list matching, and "any" for other VRs.
    return any(match_one(vr, part.strip(), vals) for part in q.split("\\"))

def match_one(vr, q, vals):
    if vr == "UI":
        return q in vals
    if vr in ("DA", "TM"):
        return any(in_range(vr, q, v) for v in vals)
    fold = (lambda s: s.lower()) if vr == "PN" else (lambda s: s)
    if vr in WILD:
        rx = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in fold(q)), re.S)
        return any(rx.fullmatch(fold(v)) for v in vals)
    if vr in ("IS", "DS", "US"):
        return any(float(v) == float(q) for v in vals)
    return any(v == q for v in vals)

def nest(keys):
    out = {}
    for k, v in keys.items():
        if "." in k:
            seq, sub = k.split(".", 1)
            out.setdefault(seq, {})[sub] = v
        elif k.endswith("Sequence") and v == "":
            out.setdefault(k, {})
        else:
            out[k] = v
    return out

files = sorted(os.path.join(qr_dir, f) for f in os.listdir(qr_dir))
dsets = [pydicom.dcmread(f) for f in files]
UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}
wl = [pydicom.dcmread(os.path.join(wl_dir, f)) for f in sorted(os.listdir(wl_dir))]
results = []
for q in json.load(open(queries_path)):
    keys = nest(q["keys"])
    if q["model"] == "worklist":
        res = []
        for ds in wl:
            if all(match_key(ds, k, v, {}) for k, v in keys.items()):
                sps = keys.get("ScheduledProcedureStepSequence")
                stations = []
                if sps is not None:
                    stations = [str(it.ScheduledStationAETitle) for it in ds.ScheduledProcedureStepSequence
                                if all(match_key(it, k, v, {}) for k, v in sps.items())]
                res.append([str(ds.AccessionNumber), str(ds.PatientName), stations])
        results.append(sorted(res))
        continue
    level = q["level"]; ukey = UNIQUE[level]
    groups = {}
    for ds in dsets:
        groups.setdefault(str(ds[ukey].value), []).append(ds)
    res = []
    for uid, members in groups.items():
        extra = {}
        if level == "STUDY":
            extra["ModalitiesInStudy"] = sorted({str(d.Modality) for d in members})
        if all(match_key(members[0], k, v, extra) for k, v in keys.items()):
            res.append([uid, str(members[0].PatientName)])
    results.append(sorted(res))
json.dump(results, open(result_path, "w"), ensure_ascii=False)
print(n)
"#;

struct Q {
    model: &'static str,
    level: &'static str,
    charset: &'static str,
    keys: Vec<(&'static str, &'static str)>,
}

fn q(
    model: &'static str,
    level: &'static str,
    charset: &'static str,
    keys: &[(&'static str, &'static str)],
) -> Q {
    Q {
        model,
        level,
        charset,
        keys: keys.to_vec(),
    }
}

fn queries() -> Vec<Q> {
    let root = "1.2.826.0.1.3680043.10.1500";
    let _ = root;
    vec![
        q(
            "study",
            "STUDY",
            "ISO_IR 100",
            &[("PatientName", "müller*")],
        ),
        q(
            "study",
            "STUDY",
            "ISO_IR 192",
            &[("PatientName", "MÜLLER^JÖRG")],
        ),
        q("study", "STUDY", "", &[("StudyDate", "20240101-20240630")]),
        q("study", "STUDY", "", &[("StudyDate", "-20230630")]),
        q("study", "STUDY", "", &[("StudyDate", "20240701-")]),
        q(
            "study",
            "STUDY",
            "ISO_IR 192",
            &[("PatientName", "*a*"), ("StudyDate", "-20231231")],
        ),
        q("study", "STUDY", "", &[("ModalitiesInStudy", "MR")]),
        q("study", "STUDY", "", &[("StudyTime", "0800-1200")]),
        q("study", "STUDY", "", &[("StudyTime", "-0930")]),
        q(
            "study",
            "STUDY",
            "ISO_IR 100",
            &[("StudyDescription", "*ü*")],
        ),
        q(
            "study",
            "STUDY",
            "ISO_IR 100",
            &[("StudyDescription", "CT Sch?del")],
        ),
        q(
            "study",
            "STUDY",
            "ISO_IR 192",
            &[("PatientName", "GARCÍA*")],
        ),
        q(
            "study",
            "STUDY",
            "ISO_IR 192",
            &[("PatientName", "Иванов^Иван")],
        ),
        q(
            "study",
            "STUDY",
            "ISO_IR 192",
            &[
                ("ReferringPhysicianName", "weiß*"),
                ("AccessionNumber", "A?0"),
            ],
        ),
        q(
            "study",
            "STUDY",
            "",
            &[(
                "StudyInstanceUID",
                "1.2.826.0.1.3680043.10.1500.0.0\\1.2.826.0.1.3680043.10.1500.3.0\\1.2.826.0.1.3680043.10.1500.7.0",
            )],
        ),
        q(
            "study",
            "SERIES",
            "",
            &[("Modality", "CT"), ("StudyDate", "20230601-")],
        ),
        q(
            "study",
            "SERIES",
            "",
            &[("StudyInstanceUID", "1.2.826.0.1.3680043.10.1500.1.0")],
        ),
        q(
            "study",
            "SERIES",
            "",
            &[("SeriesDescription", "MR*"), ("PatientID", "P?")],
        ),
        q(
            "study",
            "IMAGE",
            "",
            &[("SeriesInstanceUID", "1.2.826.0.1.3680043.10.1500.2.0.0")],
        ),
        q(
            "study",
            "IMAGE",
            "",
            &[("InstanceNumber", "2"), ("Modality", "MR")],
        ),
        q(
            "patient",
            "PATIENT",
            "ISO_IR 192",
            &[("PatientName", "山*")],
        ),
        q(
            "patient",
            "PATIENT",
            "",
            &[("PatientBirthDate", "19600101-19851231")],
        ),
        q("patient", "PATIENT", "", &[("PatientSex", "F")]),
        q(
            "patient",
            "PATIENT",
            "ISO_IR 100",
            &[("PatientName", "*ø*")],
        ),
        q(
            "patient",
            "STUDY",
            "",
            &[("PatientID", "P2"), ("AccessionNumber", "A*")],
        ),
        q(
            "patient",
            "SERIES",
            "",
            &[("PatientID", "P4"), ("Modality", "US\\CT")],
        ),
        q(
            "patient",
            "IMAGE",
            "",
            &[("PatientID", "P1"), ("SOPInstanceUID", "")],
        ),
        q(
            "worklist",
            "",
            "",
            &[("ScheduledProcedureStepSequence.Modality", "MR")],
        ),
        q(
            "worklist",
            "",
            "",
            &[(
                "ScheduledProcedureStepSequence.ScheduledStationAETitle",
                "C*",
            )],
        ),
        q(
            "worklist",
            "",
            "",
            &[
                (
                    "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
                    "20240112-20240115",
                ),
                ("ScheduledProcedureStepSequence.ScheduledStationAETitle", ""),
            ],
        ),
        q(
            "worklist",
            "",
            "",
            &[
                ("ScheduledProcedureStepSequence.Modality", "US"),
                (
                    "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime",
                    "1000-",
                ),
            ],
        ),
        q(
            "worklist",
            "",
            "ISO_IR 192",
            &[
                ("PatientName", "*^j*"),
                (
                    "ScheduledProcedureStepSequence.ScheduledPerformingPhysicianName",
                    "WEISS*\\weiß*",
                ),
            ],
        ),
        q(
            "worklist",
            "",
            "ISO_IR 100",
            &[
                ("PatientName", "ødegård*"),
                ("ScheduledProcedureStepSequence", ""),
            ],
        ),
    ]
}

#[test]
fn matches_equal_pydicom() {
    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!("skipped: matches_equal_pydicom needs pydicom (eval \"$(scripts/peers.sh)\")");
        return;
    }
    let python = std::env::var("XENRAD_PYTHON").expect("XENRAD_PYTHON set with XENRAD_PEERS");
    let dir = std::env::temp_dir().join(format!("xenrad-query-pydicom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let qs = queries();
    let qjson: Vec<serde_json::Value> = qs
        .iter()
        .map(|q| {
            serde_json::json!({
                "model": q.model, "level": q.level,
                "keys": q.keys.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    let script = dir.join("oracle.py");
    std::fs::write(&script, ORACLE).unwrap();
    std::fs::write(
        dir.join("queries.json"),
        serde_json::to_string(&qjson).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .arg(dir.join("queries.json"))
        .arg(dir.join("results.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "oracle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n_files: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let expected: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();

    let mut index = QueryIndex::new();
    let rep = index.index_dir(&dir.join("qr"));
    assert_eq!(
        (rep.indexed, rep.failed.len()),
        (n_files, 0),
        "{:?}",
        rep.failed
    );
    let (wl, failed) = Worklist::load_dir(&dir.join("wl")).unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(wl.len(), 8);

    let ts = [
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
    ];
    let mut nonempty = 0;
    for (i, (q, want)) in qs.iter().zip(&expected).enumerate() {
        let mut pairs: Vec<(&str, &str)> = q.keys.clone();
        if !q.charset.is_empty() {
            pairs.push(("SpecificCharacterSet", q.charset));
        }
        if !q.level.is_empty() {
            pairs.push(("QueryRetrieveLevel", q.level));
        }
        pairs.push(("PatientName", ""));
        if q.model == "worklist" {
            // Response items carry only the query item's keys: ask for the station too.
            pairs.push(("ScheduledProcedureStepSequence.ScheduledStationAETitle", ""));
        }
        let unique = match q.level {
            "PATIENT" => "PatientID",
            "STUDY" => "StudyInstanceUID",
            "SERIES" => "SeriesInstanceUID",
            "IMAGE" => "SOPInstanceUID",
            _ => "AccessionNumber",
        };
        if !q.keys.iter().any(|(k, _)| *k == unique) {
            pairs.push((unique, ""));
        }
        // Keep the query's own value when it names the key twice (PatientName).
        let mut seen = std::collections::HashSet::new();
        pairs.retain(|(k, _)| seen.insert(*k));
        // Through the wire: encode in a transfer syntax, decode, parse.
        let t = ts[i % 3];
        let bytes = encode_identifier(&identifier_from_pairs(&pairs).unwrap(), t).unwrap();
        let model = match q.model {
            "study" => InformationModel::StudyRoot,
            "patient" => InformationModel::PatientRoot,
            _ => InformationModel::ModalityWorklist,
        };
        let query = FindQuery::parse(decode_identifier(&bytes, t).unwrap(), model).unwrap();
        let opts = FindOptions::default();
        let got: Vec<serde_json::Value> = if model == InformationModel::ModalityWorklist {
            wl.find(&query, &opts)
                .map(|r| {
                    // Each response encodes in the query's transfer syntax.
                    encode_identifier(&r, t).unwrap();
                    let acc = r
                        .get(tags::ACCESSION_NUMBER)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .trim()
                        .to_owned();
                    let name = r
                        .get(tags::PATIENT_NAME)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .trim()
                        .to_owned();
                    let stations: Vec<String> = if q
                        .keys
                        .iter()
                        .any(|(k, _)| k.starts_with("ScheduledProcedureStepSequence"))
                    {
                        r.get(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
                            .and_then(|e| e.items())
                            .unwrap_or(&[])
                            .iter()
                            .map(|it| {
                                it.get(tags::SCHEDULED_STATION_AE_TITLE)
                                    .map(|e| e.to_str().unwrap().trim().to_owned())
                                    .unwrap_or_default()
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    serde_json::json!([acc, name, stations])
                })
                .collect()
        } else {
            let ut = match q.level {
                "PATIENT" => tags::PATIENT_ID,
                "STUDY" => tags::STUDY_INSTANCE_UID,
                "SERIES" => tags::SERIES_INSTANCE_UID,
                _ => tags::SOP_INSTANCE_UID,
            };
            index
                .find(&query, &opts)
                .map(|r| {
                    encode_identifier(&r, t).unwrap();
                    let uid = r
                        .get(ut)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .trim_end_matches(['\0', ' '])
                        .to_owned();
                    let name = r
                        .get(tags::PATIENT_NAME)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .trim()
                        .to_owned();
                    serde_json::json!([uid, name])
                })
                .collect()
        };
        let mut got = got;
        got.sort_by_key(ToString::to_string);
        let mut want_sorted = want.as_array().unwrap().clone();
        want_sorted.sort_by_key(ToString::to_string);
        assert_eq!(got, want_sorted, "query {i} {:?} {:?}", q.level, q.keys);
        if !got.is_empty() {
            nonempty += 1;
        }
    }
    // The generated set makes most queries find something (the oracle is not vacuous).
    assert!(
        nonempty * 4 >= qs.len() * 3,
        "only {nonempty} of {} queries matched",
        qs.len()
    );
    let summary: BTreeMap<&str, usize> = [
        ("files", n_files),
        ("queries", qs.len()),
        ("with matches", nonempty),
    ]
    .into();
    println!("pydicom oracle: {summary:?}");
    let _ = std::fs::remove_dir_all(&dir);
    let _: PathBuf = dir;
}
