//! # xenrad-dimse
//!
//! DICOM Upper Layer (PS3.8) and DIMSE (PS3.7) as sans-IO building blocks, with a
//! streaming C-STORE SCP and an optional tokio transport adapter.
//!
//! Layers, bottom up:
//! - [`pdu`]: zero-copy PDU codec and the incremental [`pdu::reader::PduReader`].
//! - [`assoc`]: acceptor policy (negotiation) and the PS3.8 §9.2 association state machine
//!   (Sta1–Sta13, table-driven: [`assoc::action`]).
//! - [`dimse`]: command sets, message assembly from PDVs, message fragmentation.
//! - [`store`]: Part 10 File Meta, the zero-copy header peek, the [`store::StorageSink`]
//!   trait instances stream into, and (feature `fs`, default) its durable file adapter
//!   [`store::FileSink`].
//! - `net` (feature `tokio`): TCP server and client over the layers above.
//! - [`query`] (feature `qr`, default): C-FIND identifiers and matching, the Q/R instance
//!   index, Modality Worklist.
//!
//! Everything that touches files sits behind feature `fs` (default): [`store::FileSink`],
//! and the readers of Part 10 files and folders (`scp::retrieve::Part10Source`,
//! `InstanceRecord::from_part10_file`, `QueryIndex::index_dir`, `Worklist::load_dir`). The
//! protocol core (PDUs, association, DIMSE, the SCP session, matching) does no I/O.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![allow(clippy::many_single_char_names)]

pub mod assoc;
pub mod dimse;
#[cfg(feature = "tokio")]
pub mod net;
pub mod pdu;
#[cfg(feature = "qr")]
pub mod query;
pub mod scp;
pub mod store;

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[cfg(any(fuzzing, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing {
    /// Fuzz entry point `pdu`: frames the input with a small-limit reader, parses every
    /// frame and re-encodes what parsed; never panics.
    pub fn pdu(data: &[u8]) {
        use crate::pdu::{
            Pdu, encode,
            reader::{PduReader, ReaderLimits},
        };
        let mut r = PduReader::new(ReaderLimits {
            max_pdata_len: 1 << 16,
            max_other_len: 1 << 16,
        });
        let mut out = Vec::new();
        for chunk in data.chunks(7) {
            r.push(chunk);
            while let Ok(Some(frame)) = r.next_frame() {
                if let Ok(pdu) = Pdu::parse(&frame) {
                    out.clear();
                    match &pdu {
                        Pdu::AssociateRq(rq) => encode::associate_rq(&mut out, rq),
                        Pdu::AssociateAc(ac) => encode::associate_ac(&mut out, ac),
                        _ => {}
                    }
                    if !out.is_empty() {
                        let again = Pdu::parse(&out).expect("re-encoded PDU parses");
                        assert_eq!(again, pdu, "PDU round trip");
                    }
                }
            }
        }
        let _ = Pdu::parse(data);
    }
    /// Fuzz entry point `command`: decodes a command set from the input, fed as PDV
    /// fragments through the assembler; a decoded command must survive encode → decode.
    pub fn command(data: &[u8]) {
        use crate::assoc::PdvData;
        use crate::dimse::{Assembler, Command, DimseEvent};
        if let Ok(cmd) = Command::decode(data) {
            let enc = cmd.encode();
            let again = Command::decode(&enc).expect("re-encoded command decodes");
            assert_eq!(again.field, cmd.field);
            assert_eq!(again.message_id, cmd.message_id);
            assert_eq!(again.affected_sop_instance, cmd.affected_sop_instance);
        }
        let split = data.first().map_or(1, |b| usize::from(*b).max(1));
        let mut asm = Assembler::new(4096);
        let bytes = bytes::Bytes::copy_from_slice(data);
        let mut pos = 0;
        while pos < bytes.len() {
            let end = (pos + split).min(bytes.len());
            let pdv = PdvData {
                pc_id: 1,
                is_command: true,
                is_last: end == bytes.len(),
                data: bytes.slice(pos..end),
            };
            if let Ok(Some(DimseEvent::Command { bytes: b, .. })) = asm.push(pdv) {
                assert_eq!(Command::decode(&b).is_ok(), Command::decode(data).is_ok());
            }
            pos = end;
        }
    }

    /// Fuzz entry point `journal`: the input is a journal lane file as recovery finds it
    /// after a crash (superblock slots, then records); recovery's scan of it never panics,
    /// and what it accepts is consecutive, inside the ring, with sane names.
    #[cfg(all(feature = "fs", target_os = "linux"))]
    pub fn journal(data: &[u8]) {
        for (name, _) in crate::store::journal::scan_lane_image(data) {
            assert!(!name.is_empty() && !name.contains('/') && !name.starts_with('.'));
        }
    }

    /// Fuzz entry point `query`: the first byte picks the transfer syntax, information model
    /// and options; the rest is an identifier. Decoding never panics, errors map to 0xA900 or
    /// 0xC000 with a ≤ 64-character comment; a decoded identifier re-encodes and decodes again;
    /// a valid query runs against a small fixed index and worklist, and every response encodes
    /// in the transfer syntax and has a DICOM JSON form.
    #[cfg(feature = "qr")]
    pub fn query(data: &[u8]) {
        use crate::query::{
            FindOptions, FindQuery, InformationModel, InstanceRecord, decode_identifier,
            encode_identifier, to_dicom_json,
        };
        let Some((&sel, rest)) = data.split_first() else {
            return;
        };
        let ts = [
            "1.2.840.10008.1.2",
            "1.2.840.10008.1.2.1",
            "1.2.840.10008.1.2.2",
        ][usize::from(sel & 3) % 3];
        let model = [
            InformationModel::PatientRoot,
            InformationModel::StudyRoot,
            InformationModel::ModalityWorklist,
        ][usize::from((sel >> 2) & 3) % 3];
        let opts = FindOptions {
            max_matches: Some(20),
            combined_date_time: sel & 0x10 != 0,
            pn_case_insensitive: sel & 0x20 != 0,
        };
        let check = |e: &crate::query::QueryError| {
            assert!(matches!(e.status(), 0xA900 | 0xC000));
            let c = e.error_comment();
            assert!(c.len() <= 64 && c.bytes().all(|b| (0x20..0x7F).contains(&b) && b != b'\\'));
        };
        let _ = InstanceRecord::from_dataset_bytes(rest, ts, "1.2.3", "1.2.3.4", "fuzz.dcm");
        let id = match decode_identifier(rest, ts) {
            Ok(id) => id,
            Err(e) => return check(&e),
        };
        if let Ok(again) = encode_identifier(&id, ts) {
            decode_identifier(&again, ts).expect("a re-encoded identifier decodes");
        }
        let _ = to_dicom_json(&id);
        let (index, worklist) = query_fixture();
        if let Err(e) = index.retrieve(&id, model) {
            check(&e);
        }
        let q = match FindQuery::parse(id, model) {
            Ok(q) => q,
            Err(e) => return check(&e),
        };
        let responses: Vec<_> = if model == InformationModel::ModalityWorklist {
            worklist.find(&q, &opts).collect()
        } else {
            index.find(&q, &opts).collect()
        };
        assert!(responses.len() <= 20);
        for r in &responses {
            encode_identifier(r, ts).expect("a response encodes");
            to_dicom_json(r).expect("a response has a DICOM JSON form");
        }
    }

    /// The fixed index and worklist the `query` target searches (non-ASCII names, two
    /// patients, sequences), built once.
    #[cfg(feature = "qr")]
    pub fn query_fixture() -> &'static (crate::query::QueryIndex, crate::query::Worklist) {
        use crate::query::{
            InstanceRecord, QueryIndex, Worklist, WorklistItem, identifier_from_pairs,
        };
        static FIXTURE: std::sync::OnceLock<(QueryIndex, Worklist)> = std::sync::OnceLock::new();
        FIXTURE.get_or_init(|| {
            let mut index = QueryIndex::new();
            let mut worklist = Worklist::new();
            let people = [
                ("Müller^Jörg", "P1", "19700101", "M"),
                ("山田^太郎", "P2", "19851231", "F"),
                ("DOE^JOHN", "P3", "", "O"),
            ];
            for (pi, (name, pid, birth, sex)) in people.iter().enumerate() {
                for st in 0..2 {
                    let study = format!("1.2.826.0.1.{pi}.{st}");
                    let date = format!("2024010{}", pi * 2 + st + 1);
                    for se in 0..2 {
                        let series = format!("{study}.{se}");
                        let modality = ["CT", "MR"][se];
                        for i in 0..2 {
                            let sop = format!("{series}.{i}");
                            let id = identifier_from_pairs(&[
                                ("PatientName", name),
                                ("PatientID", pid),
                                ("PatientBirthDate", birth),
                                ("PatientSex", sex),
                                ("StudyDate", &date),
                                ("StudyTime", "101530.25"),
                                ("AccessionNumber", &format!("A{pi}{st}")),
                                ("StudyDescription", "Thorax ü"),
                                ("StudyInstanceUID", &study),
                                ("SeriesInstanceUID", &series),
                                ("Modality", modality),
                                ("SeriesNumber", &se.to_string()),
                                ("SOPInstanceUID", &sop),
                                ("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2"),
                                ("InstanceNumber", &i.to_string()),
                                ("ReferencedStudySequence.ReferencedSOPInstanceUID", "1.2.9"),
                            ])
                            .expect("fixture identifier");
                            let rec = InstanceRecord::from_object(
                                id,
                                "1.2.840.10008.1.2.1",
                                format!("/fuzz/{sop}.dcm"),
                            )
                            .expect("fixture record");
                            index.insert(rec).expect("fixture insert");
                        }
                    }
                }
                let item = identifier_from_pairs(&[
                    ("PatientName", name),
                    ("PatientID", pid),
                    ("AccessionNumber", &format!("W{pi}")),
                    ("RequestedProcedureID", "RP1"),
                    (
                        "ScheduledProcedureStepSequence.Modality",
                        ["CT", "MR", "US"][pi],
                    ),
                    (
                        "ScheduledProcedureStepSequence.ScheduledStationAETitle",
                        "STATION1",
                    ),
                    (
                        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate",
                        "20240105",
                    ),
                    (
                        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime",
                        "0930",
                    ),
                ])
                .expect("fixture item");
                worklist.insert(WorklistItem {
                    source: "fixture".into(),
                    attributes: item,
                });
            }
            (index, worklist)
        })
    }

    /// Fuzz entry point `assoc`: the input is a byte stream from a peer, fed in chunks to an
    /// acceptor; every PDV goes through the assembler and every command through the decoder,
    /// and timers are fired at the end. Never panics.
    pub fn assoc(data: &[u8]) {
        use crate::assoc::{AcceptorPolicy, Association, Event, Timeouts};
        use crate::dimse::{Assembler, Command, DimseEvent};
        use std::time::{Duration, Instant};
        let now = Instant::now();
        let policy = std::sync::Arc::new(AcceptorPolicy {
            max_pdu: 4096,
            ..AcceptorPolicy::default()
        });
        let mut a = Association::acceptor(policy, Timeouts::default(), now);
        let mut asm = Assembler::new(1024);
        let step = data.first().map_or(1, |b| usize::from(*b % 64) + 1);
        let mut out = Vec::new();
        for chunk in data.chunks(step) {
            a.handle_input(chunk, now);
            while let Some(ev) = a.poll_event() {
                if let Event::Data(pdv) = ev
                    && let Ok(Some(DimseEvent::Command { bytes, .. })) = asm.push(pdv)
                    && let Ok(c) = Command::decode(&bytes)
                {
                    let rsp = bytes::Bytes::from(c.response(0).encode());
                    a.send_pdata(1, true, &rsp);
                }
            }
            a.poll_transmit(&mut out);
            for c in &out {
                // Nothing we send exceeds the peer's maximum (or 1 MiB when unlimited).
                assert!(c.len() <= (1 << 20) + 12);
            }
            out.clear();
            if a.is_closed() {
                break;
            }
        }
        a.handle_timeout(now + Duration::from_secs(3600));
        while a.poll_event().is_some() {}
    }

    /// Fuzz entry point `dimse_retrieve`: the input is a peer's byte stream to an SCP that
    /// serves C-GET (its C-STORE sub-operations), C-MOVE/C-FIND answers and Storage
    /// Commitment (N-ACTION, N-EVENT-REPORT), fed in chunks. When the first byte is even a
    /// canned A-ASSOCIATE-RQ (GET, MOVE, commitment and CT with the SCP role) goes first, so
    /// the input reaches the DIMSE paths. Every event is answered: a C-GET sends two
    /// sub-operations (one refused for want of a context), responses are tallied, the final
    /// response carries the failed-UID list, commitment requests are decoded and reported.
    /// Also decodes the input as commitment and failed-list data sets. Never panics.
    #[cfg(feature = "retrieve")]
    pub fn scp_retrieve(data: &[u8]) {
        use crate::assoc::AcceptorPolicy;
        use crate::assoc::policy::{sop, ts};
        use crate::pdu::{AssociateRq, PresentationContextRq, RoleSelection, UserInformation};
        use crate::scp::commitment::{CommitmentRequest, CommitmentResult};
        use crate::scp::retrieve::{RetrieveTally, failed_uid_list};
        use crate::scp::{ScpConfig, ScpEvent, ScpSession, SubStore, commitment_result};
        use crate::scp::{StoreOnly, n_answer, send_commitment_report, store_with};
        use std::sync::Arc;
        use std::time::{Duration, Instant};
        const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
        for t in [ts::IMPLICIT_VR_LE, ts::EXPLICIT_VR_LE] {
            let _ = CommitmentRequest::decode(data, t);
            let _ = CommitmentResult::decode(data, t);
            let _ = failed_uid_list(data, t);
        }
        let now = Instant::now();
        let mut cfg =
            ScpConfig::with_sink(Arc::new(crate::store::MemorySink::new(1 << 16, 1 << 20)));
        cfg.policy = Arc::new(AcceptorPolicy {
            max_pdu: 4096,
            abstract_syntaxes: vec![
                sop::STUDY_ROOT_GET.into(),
                sop::STUDY_ROOT_MOVE.into(),
                sop::STUDY_ROOT_FIND.into(),
                sop::STORAGE_COMMITMENT_PUSH.into(),
            ],
            ..AcceptorPolicy::default()
        });
        cfg.max_n_dataset = 1 << 16;
        let mut s = ScpSession::new(Arc::new(cfg), now);
        if data.first().is_some_and(|b| b & 1 == 0) {
            let pcs: [(u8, &str); 4] = [
                (1, sop::STUDY_ROOT_GET),
                (3, sop::STUDY_ROOT_MOVE),
                (5, sop::STORAGE_COMMITMENT_PUSH),
                (7, CT),
            ];
            let rq = AssociateRq {
                protocol_version: 1,
                called_ae: "XENRAD",
                calling_ae: "FUZZ",
                application_context: crate::pdu::DICOM_APPLICATION_CONTEXT,
                presentation_contexts: pcs
                    .iter()
                    .map(|(id, a)| PresentationContextRq {
                        id: *id,
                        abstract_syntax: a,
                        transfer_syntaxes: vec![ts::IMPLICIT_VR_LE],
                    })
                    .collect(),
                user: UserInformation {
                    max_pdu_length: Some(4096),
                    role_selections: vec![RoleSelection {
                        sop_class_uid: CT,
                        scu_role: false,
                        scp_role: true,
                    }],
                    ..UserInformation::default()
                },
            };
            let mut b = Vec::new();
            crate::pdu::encode::associate_rq(&mut b, &rq);
            s.handle_input(&b, now);
        }
        let step = data.get(1).map_or(1, |b| usize::from(*b % 64) + 1);
        let mut out = Vec::new();
        let mut tally: Option<(crate::scp::RequestId, RetrieveTally, String)> = None;
        for chunk in data.get(2..).unwrap_or(&[]).chunks(step) {
            s.handle_input(chunk, now);
            while let Some(ev) = s.poll_event() {
                match ev {
                    ScpEvent::Store(c) => {
                        let (id, st, inst) = store_with(&StoreOnly, c);
                        s.answer_store(id, st, inst, now);
                    }
                    ScpEvent::N(op) => {
                        let (resp, req) = n_answer(&StoreOnly, &op);
                        s.answer_n(op.id, resp, now);
                        if let Some(req) = req {
                            let r = commitment_result(&StoreOnly, &op.calling_ae, &req);
                            let _ = send_commitment_report(&mut s, &r);
                        }
                    }
                    ScpEvent::Query(q) => {
                        let mut t = RetrieveTally::new(2);
                        let op = SubStore {
                            sop_class_uid: CT,
                            sop_instance_uid: "1.2.3.4",
                            transfer_syntax: ts::IMPLICIT_VR_LE,
                        };
                        if s.sub_store_begin(q.id, &op).is_ok() {
                            let ds =
                                bytes::Bytes::from_static(b"\x08\x00\x18\x00\x08\x00\x001.2.3.4");
                            let _ = s.sub_store_data(&ds.slice(..5), false);
                            let _ = s.sub_store_data(&ds.slice(5..), true);
                        } else {
                            t.record("1.2.3.4", crate::scp::retrieve::SubOutcome::Failed);
                        }
                        let other = SubStore {
                            sop_class_uid: "1.2.840.10008.5.1.4.1.1.4",
                            ..op
                        };
                        if s.sub_store_begin(q.id, &other).is_err() {
                            t.record("1.2.3.5", crate::scp::retrieve::SubOutcome::Failed);
                        }
                        let _ = s.query_progress(q.id, t.counts());
                        tally = Some((q.id, t, q.transfer_syntax));
                    }
                    ScpEvent::Response(r) => {
                        if let (Some(q), Some((id, t, ts_uid))) = (r.query, tally.as_mut())
                            && q == *id
                        {
                            t.record_status("1.2.3.4", r.status);
                            let fin = t.finish(s.is_cancelled(q), ts_uid);
                            s.query_done(q, fin, now);
                            tally = None;
                        }
                    }
                    ScpEvent::Cancel(id) => {
                        if let Some((q, t, ts_uid)) = tally.take()
                            && q == id
                        {
                            s.query_done(q, t.finish(true, &ts_uid), now);
                        }
                    }
                }
            }
            s.poll_transmit(&mut out);
            for c in &out {
                assert!(c.len() <= 4096 + 6, "chunk beyond the peer's maximum");
            }
            out.clear();
            if s.is_closed() {
                break;
            }
        }
        s.handle_timeout(now + Duration::from_secs(3600));
        while s.poll_event().is_some() {}
    }
}
