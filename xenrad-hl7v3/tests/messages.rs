//! Patient payload views, accept acks and round trips on the IHE PIX/PDQ samples.
#![allow(clippy::many_single_char_names)]

mod common;

use xenrad_hl7v3::encode::patient::PatientMessage;
use xenrad_hl7v3::types::{AddrPartKind, NamePartKind, Precision, RootKind};
use xenrad_hl7v3::{AckBuilder, AckDetail, AckKind, Outcome, accept_ack, strict};

fn read(rel: &str) -> Option<Vec<u8>> {
    let dir = common::corpus_dir()?;
    Some(std::fs::read(dir.join(rel)).unwrap())
}

#[test]
fn pix_feed_patient_view() {
    let Some(bytes) = read("ihe-iti-examples/PIXV3__01_PatientRegistryRecordAdded1.xml") else {
        return;
    };
    let m = strict(&bytes).unwrap();
    let h = m.header();
    assert_eq!(h.interaction, "PRPA_IN201301UV02");
    assert_eq!(
        h.message_id.as_ref().unwrap().root.as_deref(),
        Some("22a0f9e0-4454-11dc-a6be-3603d6866807")
    );
    assert_eq!(
        h.message_id.as_ref().unwrap().root_kind(),
        Some(RootKind::Uuid)
    );
    assert_eq!(
        h.sender.as_ref().unwrap().root.as_deref(),
        Some("1.2.840.114350.1.13.99998.8734")
    );
    assert_eq!(
        h.receiver.as_ref().unwrap().root_kind(),
        Some(RootKind::Oid)
    );
    assert_eq!(h.accept_ack_code.as_deref(), Some("AL"));
    assert_eq!(h.control_act, Some("controlActProcess"));
    let ps = m.patients();
    assert_eq!(ps.len(), 1);
    let p = ps[0];
    let ids: Vec<_> = p.ids().collect();
    assert_eq!(ids[0].extension.as_deref(), Some("34827G234"));
    let name = p.names().next().unwrap();
    assert_eq!(name.given().collect::<Vec<_>>(), ["Jimmy"]);
    assert_eq!(name.family().collect::<Vec<_>>(), ["Dean"]);
    assert_eq!(p.gender().unwrap().code().as_deref(), Some("M"));
    let bt = p.birth_time().unwrap();
    assert_eq!(bt.precision(), Some(Precision::Day));
    assert_eq!(bt.date().unwrap().to_string(), "1957-03-23");
    let addr = p.addresses().next().unwrap();
    assert_eq!(addr.get(AddrPartKind::City).as_deref(), Some("Some City"));
    assert_eq!(
        addr.get(AddrPartKind::StreetAddressLine).as_deref(),
        Some("3443 S Beach Ave")
    );
    assert_eq!(
        p.other_ids().next().unwrap().extension.as_deref(),
        Some("38273N237")
    );
}

#[test]
fn merge_and_pdq_response_views() {
    let Some(bytes) = read("ihe-iti-examples/PIXV3__05_PatientRegistryDuplicatesResolved.xml")
    else {
        return;
    };
    let m = strict(&bytes).unwrap();
    assert_eq!(m.header().interaction, "PRPA_IN201304UV02");
    let p = m.patients()[0];
    assert!(
        p.replaced_ids().count() >= 1,
        "merge carries the obsolete id"
    );
    let bytes = read("ihe-iti-examples/PDQV3__02_PDQQuery1Response.xml").unwrap();
    let m = strict(&bytes).unwrap();
    assert_eq!(m.header().interaction, "PRPA_IN201306UV02");
    assert!(m.header().ack_type_code.is_some());
    let ca = m.control_act().unwrap();
    assert!(ca.query_ack().is_some() && ca.query_by_parameter().is_some());
    assert!(!m.patients().is_empty());
    for p in m.patients() {
        assert!(p.ids().count() >= 1);
        assert!(p.names().count() >= 1);
    }
}

#[test]
fn canadian_control_act_event() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let (good, _) = common::corpus_files(&dir.join("infoway-ca-r020402"));
    let mut n = 0;
    for p in good {
        let bytes = std::fs::read(&p).unwrap();
        let m = strict(&bytes).unwrap();
        if let Some(ca) = m.control_act() {
            n += usize::from(ca.element().local_name() == "controlActEvent");
            assert_eq!(m.header().control_act, Some(ca.element().local_name()));
        }
    }
    assert!(n > 100, "{n} controlActEvent messages");
}

/// IHE PIX/PDQ samples: view → owned record → encode → strict parse → record is equal.
#[test]
fn patient_messages_round_trip() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let (good, _) = common::corpus_files(&dir);
    let mut done = 0;
    for p in good {
        let bytes = std::fs::read(&p).unwrap();
        let m = strict(&bytes).unwrap();
        if !m.header().interaction.starts_with("PRPA_IN2013") || m.patients().is_empty() {
            continue;
        }
        let before = PatientMessage::from_message(&m);
        let encoded = before.encode();
        let again = strict(encoded.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}\n{encoded}", p.display()));
        let after = PatientMessage::from_message(&again);
        assert_eq!(before, after, "{}", p.display());
        assert_eq!(encoded, after.encode(), "encoding is deterministic");
        done += 1;
    }
    assert!(done >= 20, "only {done} patient messages round-tripped");
}

#[test]
fn accept_ack_codes_and_rules() {
    let Some(bytes) = read("ihe-iti-examples/PIXV3__01_PatientRegistryRecordAdded1.xml") else {
        return;
    };
    let m = strict(&bytes).unwrap();
    let h = m.header();
    let ack = AckBuilder::new(h, Outcome::Accept)
        .creation_time("20240102030405")
        .build();
    let a = strict(ack.as_bytes()).unwrap();
    let ah = a.header();
    assert_eq!(ah.interaction, "MCCI_IN000002UV01");
    assert_eq!(ah.ack_type_code.as_deref(), Some("CA"));
    assert_eq!(ah.ack_target, h.message_id);
    assert_eq!(ah.receiver, h.sender, "ack goes back to the sender");
    assert_eq!(ah.sender, h.receiver);
    assert_eq!(ah.creation_time.as_deref(), Some("20240102030405"));
    assert_eq!(ah.accept_ack_code.as_deref(), Some("NE"));
    // Same shape as the IHE sample ack.
    let sample = read("ihe-iti-examples/PIXV3__02_PatientRegistryRecordAdded1Ack.xml").unwrap();
    let s = strict(&sample).unwrap();
    assert_eq!(s.header().ack_type_code, ah.ack_type_code);
    assert_eq!(s.header().ack_target, ah.ack_target);
    assert_eq!(s.header().receiver, ah.receiver);

    let detail = AckDetail::error("PID missing <&>").with_code("SYN105");
    let nack = AckBuilder::new(h, Outcome::Error)
        .kind(AckKind::Application)
        .detail(detail)
        .build();
    let n = strict(nack.as_bytes()).unwrap();
    assert_eq!(n.header().ack_type_code.as_deref(), Some("AE"));
    let d = n
        .root()
        .path(&["acknowledgement", "acknowledgementDetail"])
        .unwrap();
    assert_eq!(d.attr("typeCode").as_deref(), Some("E"));
    assert_eq!(d.child("text").unwrap().text(), "PID missing <&>");
    assert_eq!(
        d.child("code").unwrap().attr("code").as_deref(),
        Some("SYN105")
    );

    for (code, outcome, sent) in [
        ("AL", Outcome::Accept, true),
        ("AL", Outcome::Reject, true),
        ("ER", Outcome::Accept, false),
        ("ER", Outcome::Error, true),
        ("NE", Outcome::Error, false),
    ] {
        let mut h2 = h.clone();
        h2.accept_ack_code = Some(code.into());
        assert_eq!(
            accept_ack(&h2, outcome, None).is_some(),
            sent,
            "{code} {outcome:?}"
        );
    }
    assert_eq!(AckKind::Commit.code(Outcome::Reject), "CR");
    assert_eq!(AckKind::Application.code(Outcome::Accept), "AA");
}

#[test]
fn ack_for_a_strict_error_names_the_position() {
    let bad = b"<PRPA_IN201301UV02 xmlns='urn:hl7-org:v3'>\n<id root='1.2' extension='9'/>\n<x:y/></PRPA_IN201301UV02>";
    let e = strict(bad).unwrap_err();
    let h = xenrad_hl7v3::header(bad).unwrap();
    let ack = accept_ack(&h, Outcome::Reject, Some(&AckDetail::from_error(&e))).unwrap();
    let a = strict(ack.as_bytes()).unwrap();
    let loc = a
        .root()
        .path(&["acknowledgement", "acknowledgementDetail", "location"])
        .unwrap()
        .text();
    assert_eq!(loc, "line 3, column 1");
    assert_eq!(
        a.header().ack_target.as_ref().unwrap().extension.as_deref(),
        Some("9")
    );
}

#[test]
fn names_keep_part_order_and_text() {
    let xml = "<n xmlns='urn:hl7-org:v3'><name use='L'><family>Lee</family>, <given qualifier='CL'>Ann</given><given>B.</given></name></n>";
    let m = strict(xml.as_bytes()).unwrap();
    let pn = xenrad_hl7v3::types::Pn::new(m.root().child("name").unwrap());
    let parts: Vec<_> = pn.parts().map(|p| (p.kind, p.value.into_owned())).collect();
    assert_eq!(
        parts,
        [
            (NamePartKind::Family, "Lee".into()),
            (NamePartKind::Text, ",".into()),
            (NamePartKind::Given, "Ann".into()),
            (NamePartKind::Given, "B.".into())
        ]
    );
    assert_eq!(pn.parts().nth(2).unwrap().qualifier.as_deref(), Some("CL"));
}

#[test]
fn header_pass_does_not_read_the_payload() {
    let mut msg = xenrad_hl7v3::testgen::message(1, 0).encode().into_bytes();
    // Corrupt the payload far behind the control act's trigger event code: the strict pass
    // rejects it, the header pass never gets there.
    let pad = "<!-- padding -->".repeat(200);
    let at = msg.windows(9).position(|w| w == b"<subject ").unwrap();
    msg.splice(at..at, pad.bytes());
    let strict_ok = strict(&msg).is_ok();
    let n = msg.len();
    msg[n - 40] = 0xFF;
    msg.extend_from_slice(b"<<<not xml");
    assert!(strict_ok && strict(&msg).is_err());
    let h = xenrad_hl7v3::header(&msg).unwrap();
    assert_eq!(h.interaction, "PRPA_IN201301UV02");
    assert_eq!(h.trigger_event.as_deref(), Some("PRPA_TE201301UV02"));
    assert_eq!(
        h.message_id.unwrap().extension.as_deref(),
        Some("MSG00000000")
    );
}

#[test]
fn pdq_query_continuation_and_pix_query_views() {
    let Some(bytes) = read("ihe-iti-examples/PDQV3__01_PDQQuery1.xml") else {
        return;
    };
    let m = strict(&bytes).unwrap();
    assert_eq!(m.header().interaction, "PRPA_IN201305UV02");
    let q = m.query().unwrap();
    assert!(q.query_id().unwrap().extension.is_some());
    let name = q.names().next().unwrap();
    assert_eq!(name.family().count() + name.given().count(), 2);
    assert!(q.gender().unwrap().code().is_some());
    assert!(q.birth_time().is_some());
    assert_eq!(q.other_ids_scoping_organizations().count(), 3);

    let bytes = read("ihe-iti-examples/PDQV3__03_PDQQuery1Continuation.xml").unwrap();
    let m = strict(&bytes).unwrap();
    assert_eq!(m.header().interaction, "QUQI_IN000003UV01");
    let c = m.query_continuation().unwrap();
    assert_eq!(c.quantity.as_deref(), Some("1"));
    assert_eq!(c.status_code.as_deref(), Some("waitContinuedQueryResponse"));
    assert_eq!(c.query_id.unwrap().extension.as_deref(), Some("18204"));

    let bytes = read("ihe-iti-examples/PIXV3__06_PIXQuery1.xml").unwrap();
    let m = strict(&bytes).unwrap();
    assert_eq!(m.header().interaction, "PRPA_IN201309UV02");
    assert_eq!(m.query().unwrap().patient_ids().count(), 1);

    let bytes = read("ihe-iti-examples/PIXV3__07_PIXQuery1Response.xml").unwrap();
    let m = strict(&bytes).unwrap();
    assert_eq!(m.header().interaction, "PRPA_IN201310UV02");
    assert_eq!(m.query_ack().unwrap().response_code.as_deref(), Some("OK"));
    assert!(m.patients()[0].ids().count() >= 1);
}

/// PDQ/PIX queries and responses (PRPA_IN201305/201306/201309/201310UV02) of the corpus, SOAP
/// envelopes included: view → owned record → encode → strict parse → record is equal.
#[test]
fn query_messages_round_trip() {
    use xenrad_hl7v3::encode::query::QueryMessage;
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let (good, _) = common::corpus_files(&dir);
    let mut done = std::collections::BTreeMap::<String, usize>::new();
    let (mut with_params, mut with_patients, mut with_acks) = (0, 0, 0);
    for p in good {
        let bytes = std::fs::read(&p).unwrap();
        let m = strict(&bytes).unwrap();
        let interaction = m.header().interaction;
        if !matches!(
            interaction,
            "PRPA_IN201305UV02" | "PRPA_IN201306UV02" | "PRPA_IN201309UV02" | "PRPA_IN201310UV02"
        ) {
            continue;
        }
        let before = QueryMessage::from_message(&m);
        let q = before
            .query
            .as_ref()
            .expect("query messages echo queryByParameter");
        with_params += usize::from(
            !q.names.is_empty()
                || !q.patient_identifiers.is_empty()
                || !q.living_subject_ids.is_empty(),
        );
        with_patients += usize::from(!before.patients.is_empty());
        with_acks += usize::from(before.query_ack.is_some() && before.ack_type_code.is_some());
        let encoded = before.encode();
        let again = strict(encoded.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}\n{encoded}", p.display()));
        assert_eq!(again.header().interaction, interaction);
        let after = QueryMessage::from_message(&again);
        assert_eq!(before, after, "{}", p.display());
        assert_eq!(encoded, after.encode(), "encoding is deterministic");
        *done.entry(interaction.to_owned()).or_default() += 1;
    }
    println!("round-tripped: {done:?}");
    for i in [
        "PRPA_IN201305UV02",
        "PRPA_IN201306UV02",
        "PRPA_IN201309UV02",
        "PRPA_IN201310UV02",
    ] {
        assert!(done.get(i).copied().unwrap_or(0) >= 3, "{i}: {done:?}");
    }
    assert!(with_params >= 15, "{with_params} queries with parameters");
    assert!(
        with_patients >= 10,
        "{with_patients} responses with patients"
    );
    assert!(
        with_acks >= 10,
        "{with_acks} responses with acknowledgement and queryAck"
    );
}

/// The PDQ sample query's parameters, read through the view and kept by the record.
#[test]
fn pdq_query_parameters() {
    use xenrad_hl7v3::encode::query::QueryMessage;
    let Some(bytes) = read("ipf/translation__pdq__v3__PDQ_Maximal_Query.xml") else {
        return;
    };
    let m = strict(&bytes).unwrap();
    let q = m.query().unwrap();
    assert_eq!(q.minimum_degree_match().as_deref(), Some("75"));
    assert_eq!(q.response_priority_code().as_deref(), Some("I"));
    assert_eq!(q.gender().unwrap().code().as_deref(), Some("F"));
    assert_eq!(q.birth_time().unwrap().value.as_deref(), Some("19400101"));
    let name = q.names().next().unwrap();
    assert_eq!(name.given().collect::<Vec<_>>(), ["MARY", "Annemarie"]);
    assert_eq!(name.family().collect::<Vec<_>>(), ["Wurm", "Heidi"]);
    assert_eq!(
        q.addresses()
            .next()
            .unwrap()
            .get(AddrPartKind::City)
            .as_deref(),
        Some("Some City")
    );
    let rec = QueryMessage::from_message(&m).query.unwrap();
    assert_eq!(rec.other_ids_scoping_organizations.len(), 1);
    assert_eq!(rec.names[0].family().collect::<Vec<_>>(), ["Wurm", "Heidi"]);
}

/// Canadian client registry (pan-Canadian R02.04.02): `identifiedEntity/identifiedPerson`
/// payloads and `personName`/`personBirthtime`/`clientIDBus` query parameters.
#[test]
fn canadian_client_registry_views() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let ca = dir.join("infoway-ca-r020402");
    let load = |prefix: &str| {
        let (good, _) = common::corpus_files(&ca);
        let p = good
            .into_iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            .unwrap();
        std::fs::read(p).unwrap()
    };
    // New person added (PRPA_IN101201CA): registrationRequest/subject/identifiedEntity.
    let bytes = load("CR 01.07");
    let m = strict(&bytes).unwrap();
    assert_eq!(m.header().interaction, "PRPA_IN101201CA");
    let ps = m.patients();
    assert_eq!(ps.len(), 1);
    let p = ps[0];
    assert_eq!(p.element().local_name(), "identifiedEntity");
    assert_eq!(
        p.ids().next().unwrap().extension.as_deref(),
        Some("444114567")
    );
    let name = p.names().next().unwrap();
    assert_eq!(name.family().collect::<Vec<_>>(), ["Nuclear"]);
    assert_eq!(name.given().collect::<Vec<_>>(), ["Nancy", "D."]);
    assert_eq!(p.gender().unwrap().code().as_deref(), Some("F"));
    assert_eq!(
        p.birth_time().unwrap().date().unwrap().to_string(),
        "1990-12-05"
    );
    assert_eq!(
        p.addresses()
            .next()
            .unwrap()
            .get(AddrPartKind::City)
            .as_deref(),
        Some("Ann Arbor")
    );
    assert_eq!(p.other_ids().count(), 2);
    let rec = p.to_record();
    assert_eq!(rec.other_ids[1].extension.as_deref(), Some("ABCDE"));
    // Query responses (registrationEvent/subject/identifiedEntity) and their queries.
    let mut responses = 0;
    for prefix in ["CR 01.02", "CR 01.04", "CR 01.06", "CR 01.15"] {
        let bytes = load(prefix);
        let m = strict(&bytes).unwrap();
        let ps = m.patients();
        assert!(!ps.is_empty(), "{prefix}");
        assert!(ps.iter().all(|p| p.ids().count() >= 1), "{prefix}");
        responses += usize::from(m.query_ack().is_some());
    }
    assert_eq!(responses, 3);
    let bytes = load("CR 01.01");
    let m = strict(&bytes).unwrap();
    let q = m.query().unwrap();
    assert!(q.names().next().unwrap().family().count() >= 1);
    assert!(q.birth_time().unwrap().value.is_some());
    let bytes = load("CR 01.05");
    let m = strict(&bytes).unwrap();
    assert!(m.query().unwrap().living_subject_ids().count() >= 1);
}
