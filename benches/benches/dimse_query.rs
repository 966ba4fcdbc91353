//! xenrad-dimse query benches: C-FIND matching over a 10,000-instance Q/R index (500 patients ×
//! 2 studies × 2 series × 5 instances), to compare later with DCMTK dcmqrscp on the same data.
//!
//! `cargo bench -p xenrad-benches --bench dimse_query -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use xenrad_dimse::query::{
    FindOptions, FindQuery, InformationModel, InstanceRecord, QueryIndex, encode_identifier,
    identifier_from_pairs,
};

const EXPLICIT: &str = "1.2.840.10008.1.2.1";
const FAMILY: [&str; 10] = [
    "Smith",
    "Müller",
    "Garcia",
    "Smythe",
    "Jones",
    "Ødegård",
    "Brown",
    "Schmidt",
    "Taylor",
    "Sánchez",
];

fn index() -> QueryIndex {
    let mut ix = QueryIndex::new();
    for p in 0..500 {
        let name = format!("{}^Patient{p}", FAMILY[p % FAMILY.len()]);
        let pid = format!("PID{p:05}");
        for s in 0..2 {
            let study = format!("1.2.826.0.1.3680043.10.1501.{p}.{s}");
            // Dates spread over 2023–2024.
            let day = (p * 7 + s * 180) % 730;
            let date = format!(
                "{}{:02}{:02}",
                2023 + day / 365,
                (day % 365) / 31 % 12 + 1,
                day % 28 + 1
            );
            for se in 0..2 {
                let series = format!("{study}.{se}");
                for i in 0..5 {
                    let sop = format!("{series}.{i}");
                    let rec = identifier_from_pairs(&[
                        ("SpecificCharacterSet", "ISO_IR 192"),
                        ("PatientName", &name),
                        ("PatientID", &pid),
                        ("PatientBirthDate", "19700101"),
                        ("PatientSex", if p % 2 == 0 { "F" } else { "M" }),
                        ("StudyDate", &date),
                        ("StudyTime", "101500"),
                        ("AccessionNumber", &format!("ACC{p}{s}")),
                        ("StudyDescription", "CT Thorax"),
                        ("ReferringPhysicianName", "Doe^John"),
                        ("StudyInstanceUID", &study),
                        ("StudyID", &s.to_string()),
                        ("SeriesInstanceUID", &series),
                        ("Modality", ["CT", "MR"][se]),
                        ("SeriesNumber", &(se + 1).to_string()),
                        ("SeriesDescription", "Axial"),
                        ("SOPInstanceUID", &sop),
                        ("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2"),
                        ("InstanceNumber", &(i + 1).to_string()),
                    ])
                    .unwrap();
                    let rec =
                        InstanceRecord::from_object(rec, EXPLICIT, format!("/data/{sop}.dcm"))
                            .unwrap();
                    ix.insert(rec).unwrap();
                }
            }
        }
    }
    ix
}

fn study_query() -> FindQuery {
    // A viewer's study search: wild card name, date range, the usual return keys.
    FindQuery::parse(
        identifier_from_pairs(&[
            ("SpecificCharacterSet", "ISO_IR 192"),
            ("QueryRetrieveLevel", "STUDY"),
            ("PatientName", "Sm*"),
            ("PatientID", ""),
            ("PatientBirthDate", ""),
            ("StudyDate", "20230301-20240630"),
            ("StudyTime", ""),
            ("AccessionNumber", ""),
            ("StudyDescription", ""),
            ("StudyInstanceUID", ""),
            ("ModalitiesInStudy", ""),
            ("NumberOfStudyRelatedInstances", ""),
        ])
        .unwrap(),
        InformationModel::StudyRoot,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let ix = index();
    assert_eq!(ix.len(), 10_000);
    let q = study_query();
    let opts = FindOptions::default();
    let n = ix.find(&q, &opts).count();
    assert!(n > 50, "{n} matches");
    let mut g = c.benchmark_group("dimse_query_10k");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("study_find", |b| {
        b.iter(|| black_box(ix.find(black_box(&q), &opts).count()));
    });
    // What the SCP does per match: the response identifier encoded for the wire.
    g.bench_function("study_find_encode", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for r in ix.find(black_box(&q), &opts) {
                bytes += encode_identifier(&r, EXPLICIT).unwrap().len();
            }
            black_box(bytes)
        });
    });
    // Worst case: an IMAGE-level scan of all 10,000 instances with a wild card.
    let img = FindQuery::parse(
        identifier_from_pairs(&[
            ("QueryRetrieveLevel", "IMAGE"),
            ("PatientName", "*ller*"),
            ("InstanceNumber", "3"),
            ("SOPInstanceUID", ""),
        ])
        .unwrap(),
        InformationModel::StudyRoot,
    )
    .unwrap();
    let n_img = ix.find(&img, &opts).count();
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("image_scan_wildcard", |b| {
        b.iter(|| black_box(ix.find(black_box(&img), &opts).count()));
    });
    g.finish();
    println!("study query: {n} matches; image scan: {n_img} matches");
}

criterion_group!(benches, bench);
criterion_main!(benches);
