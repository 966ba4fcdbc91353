//! xenrad-mpps benchmarks, each against a peer measured in the same run:
//! - DIMSE dataset decode (Explicit VR LE) of a completed MPPS instance: ours vs dicom-object
//!   (`InMemDicomObject::read_dataset_with_ts`).
//! - DICOM JSON decode and encode of the same instance: ours vs dicom-json (`from_slice`/`to_vec`
//!   with `InMemDicomObject`).
//! - Seed JSON decode: ours (borrowed, validated) vs `serde_json::Value` parse (no validation).
//! - Whole N-CREATE + final N-SET through the service (state machine + MemoryStore), per door.
//!
//! Run: `cargo bench -p xenrad-benches --bench mpps -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dicom_core::VR;
use dicom_object::InMemDicomObject;
use std::hint::black_box;
use xenrad_mpps::codec::{Limits, dicom_json as xjson, dimse};
use xenrad_mpps::{Dataset, Element, MemoryStore, Mpps, TransferSyntaxKind, tags};

/// A completed MPPS instance as a modality sends it: 4 series × 100 images.
fn instance(series: usize, images: usize) -> Dataset {
    let s = |vr, v: &str| Element::string(vr, v);
    let step = Dataset::new()
        .with(
            tags::STUDY_INSTANCE_UID,
            s(VR::UI, "1.2.826.0.1.3680043.2.1125.1.1"),
        )
        .with(tags::ACCESSION_NUMBER, s(VR::SH, "ACC0001"))
        .with(tags::REQUESTED_PROCEDURE_ID, s(VR::SH, "RP1"))
        .with(tags::SCHEDULED_PROCEDURE_STEP_ID, s(VR::SH, "SPS1"))
        .with(tags::REFERENCED_STUDY_SEQUENCE, Element::items(vec![]));
    let series_items = (0..series)
        .map(|i| {
            let imgs = (0..images)
                .map(|j| {
                    Dataset::new()
                        .with(
                            tags::REFERENCED_SOP_CLASS_UID,
                            s(VR::UI, "1.2.840.10008.5.1.4.1.1.2"),
                        )
                        .with(
                            tags::REFERENCED_SOP_INSTANCE_UID,
                            s(VR::UI, &format!("1.2.826.0.1.3680043.2.1125.3.{i}.{j}")),
                        )
                })
                .collect();
            Dataset::new()
                .with(tags::RETRIEVE_AE_TITLE, s(VR::AE, "PACS"))
                .with(tags::SERIES_DESCRIPTION, s(VR::LO, "Axial 5mm"))
                .with(tags::PERFORMING_PHYSICIAN_NAME, s(VR::PN, "Smith^Anna"))
                .with(tags::OPERATORS_NAME, s(VR::PN, "Tech^One"))
                .with(tags::REFERENCED_IMAGE_SEQUENCE, Element::items(imgs))
                .with(tags::PROTOCOL_NAME, s(VR::LO, "HEAD ROUTINE"))
                .with(
                    tags::SERIES_INSTANCE_UID,
                    s(VR::UI, &format!("1.2.826.0.1.3680043.2.1125.2.{i}")),
                )
        })
        .collect();
    Dataset::new()
        .with(tags::MODALITY, s(VR::CS, "CT"))
        .with(tags::PATIENT_NAME, s(VR::PN, "Doe^Jane"))
        .with(tags::PATIENT_ID, s(VR::LO, "PID0001"))
        .with(tags::PATIENT_BIRTH_DATE, s(VR::DA, "19800101"))
        .with(tags::PATIENT_SEX, s(VR::CS, "F"))
        .with(tags::PERFORMED_STATION_AE_TITLE, s(VR::AE, "CT01"))
        .with(tags::PPS_START_DATE, s(VR::DA, "20250101"))
        .with(tags::PPS_START_TIME, s(VR::TM, "081500"))
        .with(tags::PPS_END_DATE, s(VR::DA, "20250101"))
        .with(tags::PPS_END_TIME, s(VR::TM, "084500"))
        .with(tags::PPS_STATUS, s(VR::CS, "COMPLETED"))
        .with(tags::PPS_ID, s(VR::SH, "PPS-1"))
        .with(
            tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
            Element::items(vec![step]),
        )
        .with(
            tags::PERFORMED_SERIES_SEQUENCE,
            Element::items(series_items),
        )
}

fn bench(c: &mut Criterion) {
    let ds = instance(4, 100);
    let limits = Limits::default();
    let ts = TransferSyntaxKind::ExplicitVrLittleEndian;
    let bytes = dimse::encode(&ds, ts).unwrap();
    let peer_ts = dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased();
    // Both sides must read the same thing.
    let peer = InMemDicomObject::read_dataset_with_ts(&bytes[..], &peer_ts).unwrap();
    assert_eq!(
        peer.element(tags::PERFORMED_SERIES_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()
            .len(),
        4
    );

    let mut g = c.benchmark_group("mpps_dataset_decode");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(BenchmarkId::new("xenrad", bytes.len()), |b| {
        b.iter(|| dimse::decode(black_box(&bytes), ts, &limits).unwrap());
    });
    g.bench_function(BenchmarkId::new("dicom-object", bytes.len()), |b| {
        b.iter(|| InMemDicomObject::read_dataset_with_ts(black_box(&bytes[..]), &peer_ts).unwrap());
    });
    g.finish();

    let json = xjson::encode_dataset(&ds);
    let peer_obj = dicom_json_peer(&json);
    assert_eq!(xjson::decode(&json, &limits).unwrap().len(), ds.len());
    let mut g = c.benchmark_group("mpps_dicom_json_decode");
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function(BenchmarkId::new("xenrad", json.len()), |b| {
        b.iter(|| xjson::decode(black_box(&json), &limits).unwrap());
    });
    g.bench_function(BenchmarkId::new("dicom-json", json.len()), |b| {
        b.iter(|| dicom_json_peer(black_box(&json)));
    });
    g.finish();

    let mut g = c.benchmark_group("mpps_dicom_json_encode");
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function(BenchmarkId::new("xenrad", json.len()), |b| {
        b.iter(|| xjson::encode_dataset(black_box(&ds)));
    });
    g.bench_function(BenchmarkId::new("dicom-json", json.len()), |b| {
        b.iter(|| dicom_json::to_vec(black_box(&peer_obj)).unwrap());
    });
    g.finish();

    let seed = br#"{"sop_instance_uid":"1.2.826.0.1.3680043.2.1125.9","study_uid":"1.2.826.0.1.3680043.2.1125.1.1","status":"IN PROGRESS"}"#;
    let mut g = c.benchmark_group("mpps_seed_decode");
    g.bench_function("xenrad", |b| {
        b.iter(|| xenrad_mpps::codec::seed::decode(black_box(seed), &limits).unwrap());
    });
    g.bench_function("serde_json-Value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(seed)).unwrap());
    });
    g.finish();

    // The whole lifecycle through each door: N-CREATE (IN PROGRESS) then final N-SET, fresh store.
    let mut create = ds.clone();
    for t in [
        tags::PPS_END_DATE,
        tags::PPS_END_TIME,
        tags::PERFORMED_SERIES_SEQUENCE,
        tags::PPS_STATUS,
    ] {
        create.remove(t);
    }
    create.insert(tags::PPS_STATUS, Element::string(VR::CS, "IN PROGRESS"));
    let mut set = Dataset::new();
    for t in [
        tags::PPS_END_DATE,
        tags::PPS_END_TIME,
        tags::PERFORMED_SERIES_SEQUENCE,
        tags::PPS_STATUS,
    ] {
        set.insert(t, ds.get(t).unwrap().clone());
    }
    let (cj, sj) = (xjson::encode_dataset(&create), xjson::encode_dataset(&set));
    let (cd, sd) = (
        dimse::encode(&create, ts).unwrap(),
        dimse::encode(&set, ts).unwrap(),
    );
    let uid = "1.2.826.0.1.3680043.2.1125.9";
    let mut g = c.benchmark_group("mpps_lifecycle");
    g.bench_function("dicom_json", |b| {
        b.iter(|| {
            let m = Mpps::new(MemoryStore::new());
            m.create_dicom_json(uid, &cj).unwrap();
            m.update_dicom_json(uid, &sj).unwrap()
        });
    });
    g.bench_function("dimse_explicit", |b| {
        b.iter(|| {
            let m = Mpps::new(MemoryStore::new());
            assert_eq!(m.n_create_dataset(uid, &cd, ts).status, 0);
            m.n_set_dataset(uid, &sd, ts)
        });
    });
    g.finish();
}

fn dicom_json_peer(json: &[u8]) -> InMemDicomObject {
    dicom_json::from_slice(json).unwrap()
}

criterion_group!(benches, bench);
criterion_main!(benches);
