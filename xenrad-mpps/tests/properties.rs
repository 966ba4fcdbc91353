//! Properties over random request sequences: the DICOM JSON door and the DIMSE door (both transfer
//! syntaxes) give the same answers and end in the same state; a final status never changes; a
//! replay never writes; every error maps to a defined HTTP and DIMSE status.

use dicom_core::VR;
use proptest::prelude::*;
use xenrad_mpps::codec::{dicom_json, dimse};
use xenrad_mpps::{
    Dataset, DuplicatePolicy, Element, MemoryStore, Mpps, PpsStatus, TransferSyntaxKind, tags,
};

#[derive(Debug, Clone)]
enum Op {
    Create {
        uid: u8,
        status: u8,
        study: u8,
        with_station: bool,
    },
    Set {
        uid: u8,
        status: Option<u8>,
        end: bool,
        series: bool,
        modality: bool,
        description: u8,
    },
}

const STATUSES: [&str; 5] = ["IN PROGRESS", "COMPLETED", "DISCONTINUED", "SCHEDULED", ""];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3, 0u8..5, 0u8..2, any::<bool>()).prop_map(|(uid, status, study, with_station)| {
            Op::Create {
                uid,
                status,
                study,
                with_station,
            }
        }),
        (
            0u8..3,
            proptest::option::of(0u8..5),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0u8..3
        )
            .prop_map(
                |(uid, status, end, series, modality, description)| Op::Set {
                    uid,
                    status,
                    end,
                    series,
                    modality,
                    description
                }
            ),
    ]
}

fn s(vr: VR, v: &str) -> Element {
    if v.is_empty() {
        Element::empty(vr)
    } else {
        Element::string(vr, v)
    }
}

fn uid(n: u8) -> String {
    format!("1.2.3.{}", u32::from(n) + 1)
}

fn dataset(op: &Op) -> Dataset {
    match *op {
        Op::Create {
            status,
            study,
            with_station,
            ..
        } => {
            let mut ds = Dataset::new()
                .with(tags::PPS_STATUS, s(VR::CS, STATUSES[status as usize]))
                .with(tags::MODALITY, s(VR::CS, "CT"))
                .with(tags::PPS_ID, s(VR::SH, "P1"))
                .with(tags::PPS_START_DATE, s(VR::DA, "20250101"))
                .with(tags::PPS_START_TIME, s(VR::TM, "0800"))
                .with(
                    tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
                    Element::items(vec![Dataset::new().with(
                        tags::STUDY_INSTANCE_UID,
                        s(VR::UI, &format!("1.2.9.{study}")),
                    )]),
                );
            if with_station {
                ds.insert(tags::PERFORMED_STATION_AE_TITLE, s(VR::AE, "CT01"));
            }
            ds
        }
        Op::Set {
            status,
            end,
            series,
            modality,
            description,
            ..
        } => {
            let mut ds = Dataset::new();
            if let Some(st) = status {
                ds.insert(tags::PPS_STATUS, s(VR::CS, STATUSES[st as usize]));
            }
            if end {
                ds.insert(tags::PPS_END_DATE, s(VR::DA, "20250101"));
                ds.insert(tags::PPS_END_TIME, s(VR::TM, "0900"));
            }
            if series {
                let item = Dataset::new()
                    .with(tags::SERIES_INSTANCE_UID, s(VR::UI, "1.2.9.9"))
                    .with(tags::PROTOCOL_NAME, s(VR::LO, "P"));
                ds.insert(tags::PERFORMED_SERIES_SEQUENCE, Element::items(vec![item]));
            }
            if modality {
                ds.insert(tags::MODALITY, s(VR::CS, "MR"));
            }
            if description > 0 {
                ds.insert(tags::PPS_DESCRIPTION, s(VR::LO, &format!("d{description}")));
            }
            ds
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn doors_agree_and_final_is_final(ops in proptest::collection::vec(op(), 1..12), strict in any::<bool>()) {
        let policy = if strict { DuplicatePolicy::Strict } else { DuplicatePolicy::Idempotent };
        let doors: Vec<_> = (0..3).map(|_| Mpps::new(MemoryStore::new()).with_policy(policy)).collect();
        let tss = [TransferSyntaxKind::ImplicitVrLittleEndian, TransferSyntaxKind::ExplicitVrLittleEndian];
        for op in &ops {
            let ds = dataset(op);
            let (create, u) = match op { Op::Create { uid: u, .. } => (true, uid(*u)), Op::Set { uid: u, .. } => (false, uid(*u)) };
            let before = doors[0].get(&u).ok();
            let json = dicom_json::encode_dataset(&ds);
            let r = if create { doors[0].create_dicom_json(&u, &json) } else { doors[0].update_dicom_json(&u, &json) };
            let want = match &r {
                Ok(o) => (0u16, None, o.replay),
                Err(e) => {
                    prop_assert!([400, 404, 409].contains(&e.http_status()), "{e}");
                    (e.dimse_status(), e.error_id(), false)
                }
            };
            for (k, ts) in tss.into_iter().enumerate() {
                let bytes = dimse::encode(&ds, ts).unwrap();
                let d = &doors[k + 1];
                let rsp = if create { d.n_create_dataset(&u, &bytes, ts) } else { d.n_set_dataset(&u, &bytes, ts) };
                prop_assert_eq!((rsp.status, rsp.error_id, rsp.replay), want, "{:?} {:?}", ts, op);
                // A success carries the instance as stored; a failure none.
                let stored = if rsp.status == 0 { d.get(&u).ok() } else { None };
                prop_assert_eq!(rsp.instance.as_ref(), stored.as_ref());
            }
            let after = doors[0].get(&u).ok();
            if let Some(b) = &before
                && b.status().is_some_and(PpsStatus::is_final)
            {
                prop_assert_eq!(after.as_ref(), Some(b), "final instance changed");
            }
            if let Ok(o) = &r
                && o.replay
            {
                prop_assert_eq!(after.as_ref(), before.as_ref(), "replay wrote");
            }
            for d in &doors[1..] {
                prop_assert_eq!(d.get(&u).ok(), after.clone());
            }
        }
    }
}
