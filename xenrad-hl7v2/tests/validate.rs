//! Structure and content validation.

mod common;

use common::{for_each_corpus_message, shared};
use xenrad_hl7v2::Message;
use xenrad_hl7v2::ack::{ErrorCode, Severity};
use xenrad_hl7v2::validate::{ExtraSegments, ValidationOptions, validate, validate_with};

const ORM: &str = "MSH|^~\\&|RIS|RAD|PACS|IMG|20240907224144||ORM^O01^ORM_O01|MSG1|P|2.5.1\r\
PID|1||98847494^^^HOSP^MR||DOE^JOHN^^^^^L||20050702|F\r\
PV1|1|E\r\
ORC|NW|PL1^RIS|FL1^PACS||SC\r\
OBR|1|PL1^RIS|FL1^PACS|MG^MAMMO^L|||20250124143407\r\
NTE|1|P|note\r\
ZDS|1.2.840.99999.3.1^PACS^Application^DICOM\r";

fn msgs(s: &str) -> Vec<String> {
    let m = Message::parse(s.as_bytes()).unwrap();
    validate(&m)
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn valid_orm_with_z_segment() {
    let m = Message::parse(ORM.as_bytes()).unwrap();
    let r = validate(&m);
    assert_eq!(r.structure, Some("ORM_O01"));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let strict = {
        let mut c = ValidationOptions::default();
        c.z_segments = ExtraSegments::Error;
        c
    };
    let r = validate_with(&m, &strict);
    assert!(!r.is_valid());
    assert_eq!(r.problems[0].location.segment, "ZDS");
}

#[test]
fn reports_every_problem_with_location() {
    let bad = ORM
        .replace("20240907224144||", "2024-09-07||")
        .replace("|F\r", "|Q\r")
        .replace("ORC|NW|", "ORC|ZZ|")
        .replace("PV1|1|E", "PV1|x|E");
    let p = msgs(&bad);
    assert!(
        p.iter().any(|t| t.starts_with("E MSH-7: \"2024-09-07\"")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|t| t.contains("PID-8") && t.contains("table 0001")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|t| t.contains("ORC-1") && t.contains("table 0119")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|t| t.contains("PV1-1") && t.contains("SI")),
        "{p:?}"
    );
    assert_eq!(p.len(), 4, "{p:?}");
}

#[test]
fn structure_errors() {
    // ORC missing before OBR: OBR is out of order in ORM_O01.
    let no_orc = ORM.replace("ORC|NW|PL1^RIS|FL1^PACS||SC\r", "");
    let m = Message::parse(no_orc.as_bytes()).unwrap();
    let r = validate(&m);
    assert!(
        r.errors()
            .any(|p| p.code == ErrorCode::SegmentSequence && p.location.segment == "OBR"),
        "{:?}",
        r.problems
    );
    // ADT_A01 without EVN and PV1, and an unknown segment.
    let adt = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\rPID|1||1^^^H^MR||DOE\rXYZ|1\r";
    let r = validate(&Message::parse(adt.as_bytes()).unwrap());
    assert_eq!(r.structure, Some("ADT_A01"));
    let t: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
    assert!(
        t.iter().any(|t| t.contains("required EVN missing")),
        "{t:?}"
    );
    assert!(
        t.iter().any(|t| t.contains("required PV1 missing")),
        "{t:?}"
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.location.segment == "XYZ" && p.severity == Severity::Warning),
        "{t:?}"
    );
}

#[test]
fn obx5_typed_and_required_fields() {
    let oru = "MSH|^~\\&|A|B|C|D|20240101||ORU^R01^ORU_R01|1|P|2.5.1\rPID|1||1^^^H^MR||DOE\rOBR|1|||CT^HEAD\rOBX|1|NM|X||abc||||||F\rOBX|2|TX|Y||text\r";
    let r = validate(&Message::parse(oru.as_bytes()).unwrap());
    let t: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
    assert!(
        t.iter().any(|t| t.contains("OBX-5") && t.contains("NM")),
        "{t:?}"
    );
    assert!(
        t.iter()
            .any(|t| t.starts_with("E OBX(2)-11") && t.contains("required")),
        "{t:?}"
    );
    assert_eq!(t.len(), 2, "{t:?}");
}

#[test]
fn ack_and_unknown_types() {
    let ack = "MSH|^~\\&|A|B|C|D|20240101||ACK^O01^ACK|1|P|2.5.1\rMSA|AA|X\rERR||PID^1^3|999|Q\r";
    let r = validate(&Message::parse(ack.as_bytes()).unwrap());
    let t: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
    assert!(
        t.iter().any(|t| t.contains("ERR-3") && t.contains("0357")),
        "{t:?}"
    );
    assert!(
        t.iter().any(|t| t.contains("ERR-4") && t.contains("0516")),
        "{t:?}"
    );
    let mdm = "MSH|^~\\&|A|B|C|D|20240101||MDM^T02|1|P|2.5.1\r";
    let r = validate(&Message::parse(mdm.as_bytes()).unwrap());
    assert!(r.is_valid());
    assert_eq!(r.problems[0].code, ErrorCode::UnsupportedMessageType);
}

/// Every message of the generated v2.5.1 radiology corpus matches its structure. The only
/// findings are two slips of the corpus generator, which the validator must catch: `N` in
/// PID-29 (a TS, Patient Death Date and Time; the death indicator is PID-30), and the result
/// status `F` one field early, in OBR-24 (Diagnostic Serv Sect ID, HL7 table 0074; the result
/// status is OBR-25).
#[test]
fn generated_corpus_is_valid() {
    let Some(p) = shared("corpus/hl7v2/generated/hl7v2_gen_n10000_seed42.mllp") else {
        return;
    };
    let data = std::fs::read(p).unwrap();
    let (mut n, mut pid29, mut obr24) = (0, 0, 0);
    for frame in data.split(|&b| b == 0x1c) {
        let frame = frame.strip_prefix(b"\r").unwrap_or(frame);
        let frame = frame.strip_prefix(b"\x0b").unwrap_or(frame);
        if frame.is_empty() {
            continue;
        }
        let m = Message::parse(frame).unwrap();
        let r = validate(&m);
        assert!(r.structure.is_some());
        for p in &r.problems {
            match p.location.to_string().as_str() {
                "PID-29" => {
                    assert!(p.message.starts_with("\"N\": not a valid DTM"), "{p}");
                    pid29 += 1;
                }
                "OBR-24" => {
                    assert_eq!(p.message, "\"F\" is not in HL7 table 0074", "{p}");
                    obr24 += 1;
                }
                other => panic!("{:?}: unexpected {other}: {p}", m.control_id()),
            }
        }
        n += 1;
    }
    assert_eq!(n, 10_000);
    println!("{pid29} messages with 'N' in PID-29, {obr24} with 'F' in OBR-24");
    assert!(pid29 > 0 && obr24 > 0);
}

/// The corpus' v2.5.1 sample files of supported types: print the findings, never panic.
#[test]
fn shared_corpus_findings() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let mut checked = 0;
    for_each_corpus_message(
        &dir,
        |_| true,
        |path, _, msg| {
            let r = validate(msg);
            if let Some(structure) = r.structure {
                checked += 1;
                println!("{path}: {structure} {} problems", r.problems.len());
                for p in &r.problems {
                    println!("    {p}");
                }
            }
        },
    );
    assert!(checked > 50);
}
