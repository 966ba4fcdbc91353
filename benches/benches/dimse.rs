//! xenrad-dimse benches: PDU parse/encode against dicom-ul (dicom-rs) in the same run, and
//! command-set decode/encode.
//!
//! `cargo bench -p xenrad-benches --bench dimse -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use xenrad_dimse::dimse::{Command, field};
use xenrad_dimse::pdu::{
    AssociateRq, Pdu, PresentationContextRq, UserInformation, encode,
    reader::{PduReader, ReaderLimits},
};

/// An A-ASSOCIATE-RQ like DCMTK storescu's default: 120 storage contexts x 3 transfer syntaxes.
fn associate_rq_bytes() -> Vec<u8> {
    let uids: Vec<String> = (1..=120)
        .map(|i| format!("1.2.840.10008.5.1.4.1.1.{i}"))
        .collect();
    let ts = vec![
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
        "1.2.840.10008.1.2",
    ];
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: "XENRAD",
        calling_ae: "STORESCU",
        application_context: "1.2.840.10008.3.1.1.1",
        presentation_contexts: uids
            .iter()
            .enumerate()
            .map(|(i, u)| PresentationContextRq {
                id: (i * 2 + 1) as u8,
                abstract_syntax: u,
                transfer_syntaxes: ts.clone(),
            })
            .collect(),
        user: UserInformation {
            max_pdu_length: Some(16384),
            implementation_class_uid: Some("1.2.276.0.7230010.3.0.3.6.7"),
            implementation_version_name: Some("OFFIS_DCMTK_367"),
            ..UserInformation::default()
        },
    };
    let mut b = Vec::new();
    encode::associate_rq(&mut b, &rq);
    b
}

fn pdata_bytes(len: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let mut b = Vec::new();
    encode::pdata_fragments(&mut b, 1, false, &data, 0);
    b
}

fn store_rq() -> Vec<u8> {
    Command {
        field: field::C_STORE_RQ,
        message_id: Some(42),
        affected_sop_class: Some("1.2.840.10008.5.1.4.1.1.2"),
        affected_sop_instance: Some("1.2.826.0.1.3680043.10.1395.1.123"),
        priority: Some(0),
        has_dataset: true,
        ..Command::default()
    }
    .encode()
}

fn pdu_parse(c: &mut Criterion) {
    let rq = associate_rq_bytes();
    let mut g = c.benchmark_group("pdu_parse");
    for (name, bytes) in [
        ("associate_rq_120pc", rq.clone()),
        ("pdata_16k", pdata_bytes(16 * 1024 - 6)),
        ("pdata_128k", pdata_bytes(128 * 1024 - 6)),
    ] {
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::new("xenrad", name), &bytes, |b, bytes| {
            b.iter(|| Pdu::parse(black_box(bytes)).unwrap());
        });
        g.bench_with_input(BenchmarkId::new("dicom-ul", name), &bytes, |b, bytes| {
            b.iter(|| {
                dicom_ul::read_pdu(black_box(&bytes[..]), 256 * 1024, false)
                    .unwrap()
                    .unwrap()
            });
        });
    }
    g.finish();
}

fn pdu_framing(c: &mut Criterion) {
    // A 1 MiB stream of 16 KiB P-DATA-TF PDUs, fed in 64 KiB reads.
    let one = pdata_bytes(16 * 1024 - 6);
    let stream: Vec<u8> = one.iter().copied().cycle().take(one.len() * 64).collect();
    let mut g = c.benchmark_group("pdu_framing");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("xenrad_reader_1MiB", |b| {
        b.iter(|| {
            let mut r = PduReader::new(ReaderLimits::default());
            let mut n = 0;
            for chunk in stream.chunks(64 * 1024) {
                r.push(chunk);
                while let Some(f) = r.next_frame().unwrap() {
                    n += Pdu::parse(&f).is_ok() as usize;
                }
            }
            n
        });
    });
    g.bench_function("dicom-ul_read_pdu_1MiB", |b| {
        b.iter(|| {
            let mut buf = &stream[..];
            let mut n = 0;
            while let Some(p) = dicom_ul::read_pdu(&mut buf, 256 * 1024, false).unwrap() {
                n += matches!(p, dicom_ul::Pdu::PData { .. }) as usize;
            }
            n
        });
    });
    g.finish();
}

fn pdu_encode(c: &mut Criterion) {
    let rq = associate_rq_bytes();
    let Pdu::AssociateRq(parsed) = Pdu::parse(&rq).unwrap() else {
        unreachable!()
    };
    let peer = dicom_ul::read_pdu(&rq[..], 256 * 1024, false)
        .unwrap()
        .unwrap();
    let mut g = c.benchmark_group("pdu_encode");
    g.throughput(Throughput::Bytes(rq.len() as u64));
    g.bench_function("xenrad/associate_rq_120pc", |b| {
        let mut out = Vec::with_capacity(rq.len());
        b.iter(|| {
            out.clear();
            encode::associate_rq(&mut out, black_box(&parsed));
            out.len()
        });
    });
    g.bench_function("dicom-ul/associate_rq_120pc", |b| {
        let mut out = Vec::with_capacity(rq.len());
        b.iter(|| {
            out.clear();
            dicom_ul::write_pdu(&mut out, black_box(&peer)).unwrap();
            out.len()
        });
    });
    g.finish();
}

fn command(c: &mut Criterion) {
    let bytes = store_rq();
    let mut g = c.benchmark_group("command");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("xenrad_decode/c_store_rq", |b| {
        b.iter(|| Command::decode(black_box(&bytes)).unwrap());
    });
    let cmd = Command::decode(&bytes).unwrap();
    g.bench_function("xenrad_encode/c_store_rsp", |b| {
        b.iter(|| black_box(&cmd).response(0).encode());
    });
    g.finish();
}

criterion_group!(benches, pdu_parse, pdu_framing, pdu_encode, command);
criterion_main!(benches);
