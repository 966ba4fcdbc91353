//! Allocations and CPU time per unit of gateway work, in-process on a fresh data dir
//! (issue 14's before/after table): per ingested HL7 v2 ADT message (`ingest::v2`: parse,
//! de-duplication, Patient projection, durable commit, ACK), per projected C-STORE (the
//! instance row and its ImagingStudy refresh, `projection::record_instance`, 10 instances per
//! study), per stored instance as the C-STORE SCP hands it over (`stored`: facts from the
//! peeked header, the query/retrieve row, the durable write with the ImagingStudy refresh, the
//! in-memory Q/R index; one Part 10 file written before the measured region, each run a new
//! SOP Instance UID, 10 per study), and per 20-entry FHIR search page
//! (`GET /fhir/Patient?_count=20` through the FHIR router: SQL, Bundle assembly,
//! serialisation).
//!
//! `cargo run --release -p xenrad-gateway --example measure [N [adt|cstore|stored|search]]`:
//! all four scenarios (N ADT messages, N instances twice, N/4 pages), or one (N runs; `search`
//! stores 40 patients first). For load-independent counts run one scenario at two sizes under
//! `valgrind --tool=cachegrind` and divide the difference in instructions by the difference
//! in runs. Allocations are counted by
//! a counting global allocator (every thread, the store's writer included); CPU time is the
//! process's user + system time from `/proc/self/stat` (all threads), so it includes the
//! SQLite work and excludes time spent waiting for fsync. Prints one tab-separated line per
//! scenario. Not a test: nothing is asserted about speed.
#![allow(clippy::cast_precision_loss)] // counts and ticks far below 2^52

use std::alloc::System;
use std::time::Instant;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

// The gateway crate, under its name at this commit.
use xenrad_gateway as gateway;

/// User + system CPU time of this process so far, in seconds (`/proc/self/stat` fields 14
/// and 15, clock ticks of 1/100 s on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after_comm.split_whitespace().collect();
    // after the command: field 3 is f[0], so utime (14) is f[11] and stime (15) f[12]
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

/// Runs `work` `n` times and prints allocations and CPU µs per run.
fn measure(label: &str, n: usize, mut work: impl FnMut(usize)) {
    let region = Region::new(GLOBAL);
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    for i in 0..n {
        work(i);
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    let s = region.change();
    println!(
        "{label}\t{n} runs\t{:.1} allocations/run\t{:.0} bytes allocated/run\t{:.0} µs CPU/run\t{:.0} µs wall/run",
        s.allocations as f64 / n as f64,
        s.bytes_allocated as f64 / n as f64,
        cpu * 1e6 / n as f64,
        wall * 1e6 / n as f64,
    );
}

fn adt(i: usize) -> Vec<u8> {
    format!(
        "MSH|^~\\&|RIS|HOSP|XEN|FAC|20240101120000||ADT^A08^ADT_A01|ADT-{i}|P|2.5.1\r\
         EVN|A08|20240101120000\r\
         PID|1||PAT{i}^^^HOSP^MR||Doe{i}^John^Q||19800101|M|||1 Main St^^Springfield^IL^62701^USA\r\
         PV1|1|O\r"
    )
    .into_bytes()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let only = std::env::args().nth(2).unwrap_or_default();
    let run = |s: &str| only.is_empty() || only == s;
    let dir = std::env::temp_dir().join(format!("xenrad-measure-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = <gateway::Config as clap::Parser>::parse_from([
        "xenrad-gateway",
        "--data-dir",
        dir.to_str().unwrap_or("xenrad-measure"),
        "--api-key",
        "measure",
    ]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let gw = gateway_for(config);

    // Warm-up outside the measured regions (schema, statement caches, lazy statics).
    rt.block_on(gateway::ingest::v2(&gw, adt(usize::MAX).into()));

    if run("adt") {
        measure("ADT^A08 ingest (ingest::v2)", n, |i| {
            let out = rt.block_on(gateway::ingest::v2(&gw, adt(i).into()));
            assert_eq!(out.http_status, 200);
        });
    } else if run("search") {
        for i in 0..40 {
            rt.block_on(gateway::ingest::v2(&gw, adt(i).into()));
        }
    }

    let cstore = |i: usize| {
        let (study, series) = (format!("1.2.826.0.1.3680043.10.99.{}", i / 10), i / 10);
        let facts = gateway::map::InstanceFacts {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".to_owned(),
            sop_instance_uid: format!("1.2.826.0.1.3680043.10.98.{i}"),
            study_uid: study.clone(),
            series_uid: format!("1.2.826.0.1.3680043.10.97.{series}"),
            modality: "CT".to_owned(),
            accession: String::new(),
            patient: Some(gateway::map::PatientFacts {
                identifiers: vec![("urn:oid:1.2.3".to_owned(), format!("DCM{}", i / 10))],
                family: Some(format!("Scan{}", i / 10)),
                given: vec!["Ann".to_owned()],
                source: "DICOM C-STORE".to_owned(),
                ..Default::default()
            }),
        };
        let row = gateway::store::InstanceRow {
            sop_instance_uid: facts.sop_instance_uid.clone(),
            sop_class_uid: facts.sop_class_uid.clone(),
            study_uid: study,
            series_uid: facts.series_uid.clone(),
            transfer_syntax: "1.2.840.10008.1.2.1".to_owned(),
            path: format!("/nonexistent/{i}.dcm"),
            size: 1024,
            calling_ae: "MEASURE".to_owned(),
        };
        let new = gw
            .store
            .write_blocking(move |tx| gateway::ingest::resources::record_instance(tx, &facts, &row))
            .expect("record_instance");
        assert!(new);
    };
    if run("cstore") {
        measure("projected C-STORE (record_instance)", n, cstore);
    }

    if run("stored") {
        let template = stored_template(&gw);
        let stored = |i: usize| {
            let mut inst = template.clone();
            inst.sop_instance_uid = format!("1.2.826.0.1.3680043.10.96.{i}");
            inst.study_instance_uid = Some(format!("1.2.826.0.1.3680043.10.95.{}", i / 10));
            assert_eq!(on_stored(&gw, &inst), 0);
        };
        measure("stored instance (on_stored)", n, stored);
    }

    let router = gateway::surface::fhir::router(gw.clone());
    let search = || {
        let req = axum::http::Request::get("/fhir/Patient?_count=20")
            .header("x-api-key", "measure")
            .body(axum::body::Body::empty())
            .expect("request");
        let resp = rt
            .block_on(tower::ServiceExt::oneshot(router.clone(), req))
            .expect("infallible");
        assert_eq!(resp.status(), 200);
        let body = rt
            .block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
            .expect("body");
        assert!(body.len() > 1000);
    };
    if run("search") {
        search();
        let pages = if only.is_empty() { n / 4 } else { n };
        measure("FHIR search page, 20 entries", pages, |_| search());
    }
    gw.store.close();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The gateway's shared state for `config` (what `run` builds before binding listeners).
fn gateway_for(config: gateway::Config) -> gateway::Gateway {
    let keys = gateway::load_keys(&config).expect("keys");
    let store = gateway::store::Store::open(&config.data_dir).expect("store");
    let metrics = gateway::metrics::Metrics::default();
    let (images, _report) = gateway::store::qr::Images::load(&store).expect("query/retrieve index");
    let dicom_sink =
        std::sync::Arc::new(gateway::surface::dicom::open_sink(&config).expect("DICOM sink"));
    gateway::Gateway {
        audit: gateway::audit::Audit::disabled(),
        images: std::sync::Arc::new(images),
        dicom_sink,
        hl7v2: std::sync::Arc::new(gateway::ingest::v2_handler(&store, &metrics, &config)),
        hl7v3: std::sync::Arc::new(gateway::ingest::v3_handler(&store, &metrics)),
        config: std::sync::Arc::new(config),
        store,
        metrics,
        keys,
        console: gateway::ingest::log::Tap::default(),
    }
}

/// One CT header data set (Explicit VR Little Endian, no pixel data) stored as a Part 10 file
/// through the gateway's sink, and the `StoredInstance` the SCP would hand over for it.
fn stored_template(gw: &gateway::Gateway) -> xenrad_dimse::scp::StoredInstance {
    use xenrad_dimse::store::{FileMeta, InstanceHeader, InstanceStart, PeekOutcome, StorageSink};
    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
    const ELE: &str = "1.2.840.10008.1.2.1";
    let obj = xenrad_dimse::query::identifier_from_pairs(&[
        ("SOPClassUID", CT),
        ("SOPInstanceUID", "1.2.826.0.1.3680043.10.96.0"),
        ("StudyDate", "20240101"),
        ("StudyTime", "101500"),
        ("AccessionNumber", "ACC1"),
        ("Modality", "CT"),
        ("StudyDescription", "CT chest"),
        ("PatientName", "Doe^John"),
        ("PatientID", "DCM1"),
        ("IssuerOfPatientID", "HOSP"),
        ("PatientBirthDate", "19800101"),
        ("PatientSex", "M"),
        ("StudyInstanceUID", "1.2.826.0.1.3680043.10.95.0"),
        ("SeriesInstanceUID", "1.2.826.0.1.3680043.10.94.0"),
        ("SeriesNumber", "1"),
        ("InstanceNumber", "1"),
    ])
    .expect("header");
    let dataset = xenrad_dimse::query::encode_identifier(&obj, ELE).expect("encode");
    let start = InstanceStart {
        meta: FileMeta {
            sop_class_uid: CT,
            sop_instance_uid: "1.2.826.0.1.3680043.10.96.0",
            transfer_syntax: ELE,
            implementation_class_uid: "1.2.826.0.1.3680043.10.1",
            implementation_version_name: "MEASURE",
            source_ae: None,
        },
        message_id: None,
    };
    let mut w = gw.dicom_sink.begin(&start).expect("sink");
    w.write(&dataset).expect("write");
    let path = w.commit().expect("commit");
    let header = match xenrad_dimse::store::peek_header(&dataset, ELE, true) {
        PeekOutcome::Done(h) | PeekOutcome::NeedMore(h) => Some(InstanceHeader::from_peeked(&h)),
        _ => None,
    };
    xenrad_dimse::scp::StoredInstance {
        sop_class_uid: CT.to_owned(),
        sop_instance_uid: String::new(),
        study_instance_uid: None,
        header,
        transfer_syntax: ELE.to_owned(),
        path,
        calling_ae: "MEASURE".to_owned(),
        dataset_len: dataset.len() as u64,
        head: xenrad_dimse::scp::DatasetHead(dataset.clone()),
    }
}

/// What the SCP calls for a committed instance.
fn on_stored(gw: &gateway::Gateway, inst: &xenrad_dimse::scp::StoredInstance) -> u16 {
    gateway::ingest::dicom::stored(gw, inst)
}
