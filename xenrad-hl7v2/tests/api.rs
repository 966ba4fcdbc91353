//! Behaviour of the public parse/path/ACK API on hand-written messages.

use std::borrow::Cow;
use xenrad_hl7v2::ack::{
    AckCode, AckOptions, ErrorCode, ErrorDetail, ErrorLocation, ack, ack_unparseable, ack_with,
};
use xenrad_hl7v2::{Message, ParseErrorKind, ParseOptions, Parser, Terminators};

const ORM: &[u8] = b"MSH|^~\\&|RIS|RADIOLOGY^1.2.3^ISO|PACS|IMAGING|20240907224144||ORM^O01^ORM_O01|MSG0001|P|2.5.1|||AL|NE|USA|UNICODE UTF-8\r\
PID|1||111^^^HOSP^MR~222^^^HOSP^AN||FRAN\\XC387\\OIS^BJ\xc3\x96RN^E||20050702|F\r\
ORC|NW|PL1^RIS\r\
OBR|1|PL1^RIS|FL1^PACS|MG^MAMMO^L\r\
OBX|1|TX|IMP||first obs\r\
OBX|2|TX|IMP||a \\F\\ b \\S\\ c \\T\\ d \\R\\ e \\E\\ f~second rep\r\
ZDS|1.2.840.99999.3.1^PACS^Application^DICOM\r";

#[test]
fn msh_numbering_is_hl7_numbering() {
    let m = Message::parse(ORM).unwrap();
    assert_eq!(m.get("MSH-1").as_deref(), Some("|"));
    assert_eq!(m.get("MSH-2").as_deref(), Some("^~\\&"));
    assert_eq!(m.get("MSH-3").as_deref(), Some("RIS"));
    assert_eq!(m.get("MSH-4-2").as_deref(), Some("1.2.3"));
    assert_eq!(m.get("MSH-9").as_deref(), Some("ORM"));
    assert_eq!(m.get("MSH-9-3").as_deref(), Some("ORM_O01"));
    assert_eq!(m.get("MSH-10").as_deref(), Some("MSG0001"));
    assert_eq!(m.control_id().as_deref(), Some("MSG0001"));
    let t = m.message_type().unwrap();
    assert_eq!(
        (&*t.code, &*t.trigger_event, &*t.structure),
        ("ORM", "O01", "ORM_O01")
    );
    assert_eq!(m.sending_application().unwrap().text(), "RIS");
    assert_eq!(m.sending_facility().unwrap().raw(), b"RADIOLOGY^1.2.3^ISO");
    assert_eq!(m.receiving_application().unwrap().text(), "PACS");
    assert_eq!(m.receiving_facility().unwrap().text(), "IMAGING");
    assert_eq!(
        m.accept_ack_type(),
        Some(xenrad_hl7v2::AckCondition::Always)
    );
    assert_eq!(
        m.application_ack_type(),
        Some(xenrad_hl7v2::AckCondition::Never)
    );
    assert!(m.is_enhanced_mode());
    assert_eq!(m.version().as_deref(), Some("2.5.1"));
    assert_eq!(m.msh().field_count(), 18);
    let fields: Vec<_> = m.msh().fields().map(|f| f.raw().to_vec()).collect();
    assert_eq!(fields[0], b"|");
    assert_eq!(fields[1], b"^~\\&");
    assert_eq!(fields[8], b"ORM^O01^ORM_O01");
}

#[test]
fn paths_repetitions_and_segment_occurrences() {
    let m = Message::parse(ORM).unwrap();
    assert_eq!(m.get("PID-3-1").as_deref(), Some("111"));
    assert_eq!(m.get("PID-3(2)-1").as_deref(), Some("222"));
    assert_eq!(m.get("PID-3(2)-5").as_deref(), Some("AN"));
    assert_eq!(m.get("PID-3(3)-1"), None);
    assert_eq!(m.get("OBX(2)-5").as_deref(), Some("a | b ^ c & d ~ e \\ f"));
    assert_eq!(m.get("OBX(2)-5(2)").as_deref(), Some("second rep"));
    assert_eq!(m.get("OBX(3)-5"), None);
    assert_eq!(m.get("PID-99"), None);
    assert!(m.try_get("PID-x").is_err());
    assert_eq!(m.segment_count(), 7);
    assert_eq!(m.segments_named("OBX").count(), 2);
    assert_eq!(m.get("ZDS-1-1").as_deref(), Some("1.2.840.99999.3.1"));
}

#[test]
fn text_is_decoded_and_borrowed_when_plain() {
    let m = Message::parse(ORM).unwrap();
    assert_eq!(m.get("PID-5-1").as_deref(), Some("FRANÇOIS"));
    assert_eq!(m.get("PID-5-2").as_deref(), Some("BJÖRN"));
    assert!(matches!(m.get("PID-5-2"), Some(Cow::Borrowed(_))));
    assert!(matches!(m.get("PID-5-1"), Some(Cow::Owned(_))));
}

#[test]
fn charset_from_msh18() {
    let raw =
        b"MSH|^~\\&|A|B|C|D|||ADT^A08|1|P|2.5.1||||||8859/1\rPID|1||1||M\xfcller^J\\XE9\\r\xf4me\r";
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.get("PID-5-1").as_deref(), Some("Müller"));
    assert_eq!(m.get("PID-5-2").as_deref(), Some("Jérôme"));
    let bad = b"MSH|^~\\&|A|B|C|D|||ADT^A08|1|P|2.5.1||||||EBCDIC\r";
    let e = Message::parse(bad).unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::UnsupportedCharset(_)));
    assert_eq!(e.field, Some(18));
    let opts = {
        let mut c = ParseOptions::default();
        c.charset_aliases = vec![("EBCDIC".into(), encoding_rs::WINDOWS_1252)];
        c
    };
    assert!(Message::parse_with(bad, &opts).is_ok());
}

#[test]
fn custom_delimiters() {
    let raw = b"MSH$%~\\&$APP$FAC$$$$$ADT%A01$7$P$2.5.1\rPID$1$$X%Y~Z$$A\\F\\B\r";
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.delimiters().field, b'$');
    assert_eq!(m.get("MSH-9-2").as_deref(), Some("A01"));
    assert_eq!(m.get("PID-3-2").as_deref(), Some("Y"));
    assert_eq!(m.get("PID-3(2)").as_deref(), Some("Z"));
    assert_eq!(m.get("PID-5").as_deref(), Some("A$B"));
}

#[test]
fn terminators() {
    let lf = b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5.1\nPID|1||9\r\nPV1|1|O\n\n";
    let m = Message::parse(lf).unwrap();
    assert_eq!(m.segment_count(), 3);
    assert_eq!(m.get("PV1-2").as_deref(), Some("O"));
    let strict = {
        let mut c = ParseOptions::default();
        c.terminators = Terminators::CrOnly;
        c
    };
    // With CR only, LF is data: the segment after the first LF is glued into MSH-12.
    let m =
        Message::parse_with(b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5.1\nPID|1\r", &strict).unwrap();
    assert_eq!(m.segment_count(), 1);
    assert_eq!(m.get("MSH-12").as_deref(), Some("2.5.1\nPID"));
}

#[test]
fn framing_and_bom_are_skipped() {
    let raw = b"\xEF\xBB\xBF\x0bMSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5.1\rPID|1\r\x1c\r";
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.segment_count(), 2);
}

#[test]
fn errors_carry_positions() {
    let e = Message::parse(b"").unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::Empty);
    let e = Message::parse(b"PID|1\r").unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::NotMsh);
    let e = Message::parse(b"BHS|^~\\&\r").unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::BatchEnvelope);
    let e = Message::parse(b"MSH|\r").unwrap_err();
    assert!(matches!(e.kind, ParseErrorKind::Delimiters(_)));
    let raw = b"MSH|^~\\&|A\rPID|1\rA0KJSVFT0YNCg==|||\r";
    let e = Message::parse(raw).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::InvalidSegmentId);
    assert_eq!(e.offset, 17);
    assert_eq!(e.segment, Some(3));
    assert!(e.to_string().contains("byte 17"));
    let e = Message::parse(b"MSH|^~\\&|A\rMSH|^~\\&|B\r").unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::SecondMsh);
    let small = {
        let mut c = ParseOptions::default();
        c.max_len = 10;
        c
    };
    assert!(matches!(
        Message::parse_with(ORM, &small).unwrap_err().kind,
        ParseErrorKind::TooLarge { .. }
    ));
    let few = {
        let mut c = ParseOptions::default();
        c.max_segments = 3;
        c
    };
    assert!(matches!(
        Message::parse_with(ORM, &few).unwrap_err().kind,
        ParseErrorKind::TooManySegments { .. }
    ));
}

#[test]
fn lazy_views() {
    let m = Message::parse(ORM).unwrap();
    let pid = m.segment("PID").unwrap();
    assert_eq!(pid.index(), 2);
    let f3 = pid.field(3).unwrap();
    let ids: Vec<String> = f3.repetitions().map(|r| r.text().into_owned()).collect();
    assert_eq!(ids, ["111", "222"]);
    let comps: Vec<_> = f3
        .repetition(1)
        .unwrap()
        .components()
        .map(|c| c.raw().to_vec())
        .collect();
    assert_eq!(comps, [&b"111"[..], b"", b"", b"HOSP", b"MR"]);
    assert!(pid.field(0).is_none());
    let null = Message::parse(b"MSH|^~\\&|A\rPID|1|\"\"\r").unwrap();
    assert!(null.segment("PID").unwrap().field(2).unwrap().is_null());
}

#[test]
fn parser_reuses_its_buffer() {
    let mut p = Parser::new(ParseOptions::default());
    for _ in 0..3 {
        let m = p.parse(ORM).unwrap();
        assert_eq!(m.segment_count(), 7);
    }
    assert!(p.parse(b"nope").is_err());
}

fn fixed() -> AckOptions {
    AckOptions {
        timestamp: Some("20240101120000".into()),
        control_id: Some("ACK1".into()),
    }
}

#[test]
fn ack_original_mode() {
    let raw = b"MSH|^~\\&|RIS|RAD|PACS|IMG|20240101||ADT^A08^ADT_A01|C1|P|2.5.1\rPID|1\r";
    let m = Message::parse(raw).unwrap();
    let out = ack_with(&m, AckCode::AA, &[], &fixed());
    assert_eq!(
        out,
        b"MSH|^~\\&|PACS|IMG|RIS|RAD|20240101120000||ACK^A08^ACK|ACK1|P|2.5.1\rMSA|AA|C1\r"
    );
    assert!(Message::parse(&ack(&m, AckCode::AA, None)).is_ok());
}

#[test]
fn ack_enhanced_mode_with_err() {
    let raw =
        b"MSH#*~!@#RIS#RAD#PACS#IMG#20240101##ORM*O01*ORM_O01#C2#P#2.5.1###AL#AL##8859/1\rPID#1\r";
    let m = Message::parse(raw).unwrap();
    assert_eq!(
        AckCode::for_message(&m, xenrad_hl7v2::ack::Outcome::Error),
        AckCode::CE
    );
    let err = ErrorDetail::new(
        ErrorCode::RequiredFieldMissing,
        "PID-3 missing: Müller # here",
    )
    .at(ErrorLocation {
        segment: "PID".into(),
        sequence: 1,
        field: Some(3),
        ..ErrorLocation::default()
    });
    let out = ack_with(&m, AckCode::CE, &[err], &fixed());
    let expected: &[u8] = b"MSH#*~!@#PACS#IMG#RIS#RAD#20240101120000##ACK*O01*ACK#ACK1#P#2.5.1######8859/1\rMSA#CE#C2\rERR##PID*1*3#101*Required field missing*HL70357#E####PID-3 missing: M\xfcller !F! here\r";
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(expected)
    );
    let reply = Message::parse(&out).unwrap();
    assert_eq!(
        reply.get("ERR-8").as_deref(),
        Some("PID-3 missing: Müller # here")
    );
    assert_eq!(reply.get("ERR-3-1").as_deref(), Some("101"));
}

#[test]
fn best_effort_reject() {
    // Broken delimiters: fall back to |^~\& and still answer.
    let out = ack_unparseable(b"MSH|^~\\\\&|A|B|C|D|||ADT^A01|X|P|2.5.1\r", None);
    let reply = Message::parse(&out).unwrap();
    assert_eq!(reply.get("MSA-1").as_deref(), Some("AR"));
    assert_eq!(reply.get("ERR-3-1").as_deref(), Some("102"));
    // Garbage.
    let out = ack_unparseable(b"\x00\xff garbage", None);
    let reply = Message::parse(&out).unwrap();
    assert_eq!(reply.get("MSA-1").as_deref(), Some("AR"));
    assert_eq!(reply.get("ERR-3-1").as_deref(), Some("100"));
    // Readable MSH, broken body, enhanced mode requested.
    let out = ack_unparseable(
        b"MSH|^~\\&|A|B|C|D|||ADT^A01|X7|P|2.5.1|||AL|NE\rbad line\r",
        None,
    );
    let reply = Message::parse(&out).unwrap();
    assert_eq!(reply.get("MSA-1").as_deref(), Some("CR"));
    assert_eq!(reply.get("MSA-2").as_deref(), Some("X7"));
    assert_eq!(reply.get("MSH-5").as_deref(), Some("A"));
}

#[test]
fn typed_radiology_views() {
    let raw = b"MSH|^~\\&|RIS|RAD|PACS|IMG|20240907224144||ORM^O01^ORM_O01|MSG1|P|2.5.1\r\
PID|1||98847494^^^HOSP^MR~A726^^^HOSP^AN||FRAN\\XC387\\OIS^BJORN^E||20050702|F\r\
PV1|1|E|||||||||||||||||V80801587^^^HOSP^VN|||||||||||||||||||||||||20240425100605\r\
ORC|NW|PL1^RIS|FL1^PACS||SC||||20250124143407\r\
OBR|1|PL1^RIS|FL1^PACS|MG^MAMMO SCREENING^L|||20250124143407|||||||||||ACC64|RP1|||||MG|F\r\
OBX|1|TX|IMP^Impression||line one~line two||||||F|||20250124150000\r\
ZDS|1.2.840.99999.3.1^PACS^Application^DICOM\r";
    let m = Message::parse(raw).unwrap();
    let pid = m.pid().unwrap();
    assert_eq!(pid.identifiers().len(), 2);
    assert_eq!(pid.identifier_of_type("AN").unwrap().id, "A726");
    let name = pid.name().unwrap();
    assert_eq!(
        (&*name.family, &*name.given, &*name.middle),
        ("FRANÇOIS", "BJORN", "E")
    );
    let dob = pid.birth_date().unwrap();
    assert_eq!(dob.precision, xenrad_hl7v2::datetime::Precision::Day);
    assert_eq!(dob.value.date().to_string(), "2005-07-02");
    assert_eq!(pid.sex().as_deref(), Some("F"));
    let pv1 = m.pv1().unwrap();
    assert_eq!(pv1.patient_class().as_deref(), Some("E"));
    assert_eq!(pv1.visit_number().as_deref(), Some("V80801587"));
    assert_eq!(
        pv1.admit_time().unwrap().value.to_string(),
        "2024-04-25 10:06:05"
    );
    let orc = m.orcs()[0];
    assert_eq!(orc.order_control().as_deref(), Some("NW"));
    assert_eq!(orc.order_status().as_deref(), Some("SC"));
    let obr = m.obrs()[0];
    assert_eq!(obr.procedure().unwrap().1, "MAMMO SCREENING");
    assert_eq!(obr.accession_number().as_deref(), Some("ACC64"));
    assert_eq!(obr.requested_procedure_id().as_deref(), Some("RP1"));
    assert_eq!(obr.modality().as_deref(), Some("MG"));
    assert_eq!(obr.result_status().as_deref(), Some("F"));
    let obx = m.obxs()[0];
    assert_eq!(obx.values(), ["line one", "line two"]);
    assert_eq!(obx.status().as_deref(), Some("F"));
    assert!(obx.observation_time().is_some());
    assert_eq!(m.study_instance_uid().as_deref(), Some("1.2.840.99999.3.1"));
    assert_eq!(m.accession_number().as_deref(), Some("ACC64"));
    let omi =
        b"MSH|^~\\&|A|B|C|D|2024||OMI^O23^OMI_O23|1|P|2.5.1\rIPC|ACC9^X|RP9|1.2.3.4|SPS9|CT\r";
    let m = Message::parse(omi).unwrap();
    assert_eq!(m.study_instance_uid().as_deref(), Some("1.2.3.4"));
    assert_eq!(m.accession_number().as_deref(), Some("ACC9"));
}

/// The order views the worklist reads: ORC/OBR entity identifiers with their assigning
/// application, providers, coded procedure, TQ (v2.3) and TQ1 (v2.5) start times, the IPC
/// scheduling fields (OMI^O23, HL7 v2.5.1 4.5.6) and PV1's location and referring doctor.
#[test]
fn typed_order_views() {
    let raw = b"MSH|^~\\&|RIS|RAD|PACS|IMG|2024||OMI^O23^OMI_O23|M1|P|2.5.1\r\
PID|1||P1^^^HOSP^MR||DOE^JANE\r\
PV1|1|O|RAD^R1^B2|||||D7^HOUSE^GREG|||||||||||V9^^^HOSP^VN\r\
ORC|NW|PL1^RIS^1.2.3^ISO|FL1^PACS||SC||^^^20250124143000|||||O5^WHO^OLIVIA\r\
TQ1|1||||||20250124150000|20250124153000|R\r\
OBR|1|PL1^RIS|FL1^PACS|CTH^CT HEAD^L||||||||||||O5^WHO^OLIVIA||ACC1|RP1|SPS1||||CT|||^^^20250124160000||||HEADACHE^Headache|||||20250124170000||||||||P1^Head protocol^LN\r\
IPC|ACC1|RP1|1.2.3.4|SPS1|CT|PR1^Plain head^L|STATION1|ROOM 3|CT_AE\r";
    let m = Message::parse(raw).unwrap();
    let pv1 = m.pv1().unwrap();
    assert_eq!(pv1.assigned_location().as_deref(), Some("RAD"));
    let doc = pv1.referring_doctor().unwrap();
    assert_eq!(
        (&*doc.id, &*doc.family, &*doc.given),
        ("D7", "HOUSE", "GREG")
    );
    let visit = pv1.visit_identifier().unwrap();
    assert_eq!((&*visit.id, &*visit.authority), ("V9", "HOSP"));
    let orc = m.orcs()[0];
    let placer = orc.placer_order().unwrap();
    assert_eq!(
        (
            &*placer.id,
            &*placer.namespace,
            &*placer.universal_id,
            &*placer.universal_id_type
        ),
        ("PL1", "RIS", "1.2.3", "ISO")
    );
    assert_eq!(orc.filler_order().unwrap().namespace, "PACS");
    assert_eq!(
        orc.quantity_timing_start().unwrap().value.to_string(),
        "2025-01-24 14:30:00"
    );
    assert_eq!(orc.ordering_provider().unwrap().family, "WHO");
    let tq1 = m.tq1s()[0];
    assert_eq!(
        tq1.start().unwrap().value.to_string(),
        "2025-01-24 15:00:00"
    );
    assert_eq!(tq1.end().unwrap().value.to_string(), "2025-01-24 15:30:00");
    assert_eq!(tq1.priority().as_deref(), Some("R"));
    let obr = m.obrs()[0];
    assert_eq!(obr.placer_order().unwrap().id, "PL1");
    assert_eq!(obr.filler_order().unwrap().id, "FL1");
    let svc = obr.service().unwrap();
    assert_eq!(
        (&*svc.code, &*svc.text, &*svc.system),
        ("CTH", "CT HEAD", "L")
    );
    assert_eq!(obr.ordering_provider().unwrap().id, "O5");
    assert_eq!(obr.scheduled_procedure_step_id().as_deref(), Some("SPS1"));
    assert_eq!(
        obr.quantity_timing_start().unwrap().value.to_string(),
        "2025-01-24 16:00:00"
    );
    assert_eq!(obr.reason_for_study().as_deref(), Some("Headache"));
    assert_eq!(
        obr.scheduled_time().unwrap().value.to_string(),
        "2025-01-24 17:00:00"
    );
    assert_eq!(obr.procedure_code().unwrap().text, "Head protocol");
    let ipc = m.ipcs()[0];
    assert_eq!(ipc.protocol_code().unwrap().code, "PR1");
    assert_eq!(ipc.scheduled_station_name().as_deref(), Some("STATION1"));
    assert_eq!(ipc.scheduled_location().as_deref(), Some("ROOM 3"));
    assert_eq!(ipc.scheduled_station_ae_title().as_deref(), Some("CT_AE"));
    assert_eq!(ipc.scheduled_procedure_step_id().as_deref(), Some("SPS1"));
}

/// Character-set escapes (HL7 v2.5.1 ch. 2, 2.7): a Japanese name with MSH-18 listing the
/// ISO 2022 sets the message switches to, read through a path; `Preserve` keeps the escapes.
#[test]
fn charset_switching_escapes() {
    use xenrad_hl7v2::escape::{CharsetEscapes, EscapePolicy};
    let raw = b"MSH|^~\\&|A|B|C|D|2024||ADT^A08|1|P|2.5.1|||||JPN|ISO IR6~ISO IR87\r\
PID|1||1^^^H^MR||\\M2442\\;3ED\\C2842\\^\\M2442\\B@O:\\C2842\\~YAMADA^TARO\r";
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.get("PID-5-1").as_deref(), Some("山田"));
    assert_eq!(m.get("PID-5-2").as_deref(), Some("太郎"));
    assert_eq!(m.get("PID-5(2)-1").as_deref(), Some("YAMADA"));
    let opts = {
        let mut c = ParseOptions::default();
        c.escapes = EscapePolicy {
            charsets: CharsetEscapes::Preserve,
            ..EscapePolicy::default()
        };
        c
    };
    let m = Message::parse_with(raw, &opts).unwrap();
    assert_eq!(m.get("PID-5-1").as_deref(), Some("\\M2442\\;3ED\\C2842\\"));
}
