//! FHIR R4 JSON: parse and serialise throughput of `xenrad-fhir-model` against `serde_json::Value`
//! and `fhirkit` (typed R4 models), measured in the same run on subsets of the official examples
//! and on generated radiology Bundles.
//!
//! `cargo bench --bench fhir -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;
use xenrad_fhir_model::builders::{ImagingStudyBuilder, PatientBuilder, Series};
use xenrad_fhir_model::bundle::{EntryMode, Paging, SearchSet};

const RADIOLOGY: &[&str] = &[
    "Patient",
    "ImagingStudy",
    "ServiceRequest",
    "Procedure",
    "DiagnosticReport",
    "Endpoint",
    "Practitioner",
    "Organization",
    "Encounter",
];

/// The FHIR R4 "Clinical" resources (the specification's module grouping).
const CLINICAL: &[&str] = &[
    "AdverseEvent",
    "AllergyIntolerance",
    "BodyStructure",
    "CarePlan",
    "CareTeam",
    "ClinicalImpression",
    "Communication",
    "CommunicationRequest",
    "Condition",
    "DetectedIssue",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "FamilyMemberHistory",
    "Goal",
    "GuidanceResponse",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MolecularSequence",
    "NutritionOrder",
    "Observation",
    "Procedure",
    "QuestionnaireResponse",
    "RequestGroup",
    "RiskAssessment",
    "ServiceRequest",
    "Specimen",
    "SupplyDelivery",
    "SupplyRequest",
    "VisionPrescription",
];

/// Unpacks the official package into the bench's temp dir (once) and returns `package/`.
fn package_dir() -> Option<PathBuf> {
    let tgz = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz"
    ));
    if !tgz.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: {} is missing",
            tgz.display()
        );
        println!("skipped: {} is absent", tgz.display());
        return None;
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fhir-r4-4.0.1");
    if !out.join(".unpacked").exists() {
        std::fs::create_dir_all(&out).expect("mkdir");
        let st = std::process::Command::new("tar")
            .arg("xzf")
            .arg(&tgz)
            .arg("-C")
            .arg(&out)
            .status()
            .expect("run tar");
        assert!(st.success(), "tar failed");
        std::fs::write(out.join(".unpacked"), b"").expect("marker");
    }
    Some(out.join("package"))
}

struct Subset {
    name: &'static str,
    docs: Vec<Vec<u8>>,
    /// fhirkit (built with foundation+base+clinical) can read every document of the subset.
    fhirkit: bool,
}

impl Subset {
    fn bytes(&self) -> u64 {
        self.docs.iter().map(|d| d.len() as u64).sum()
    }
}

fn generated() -> Vec<Subset> {
    // an ImagingStudy of 3,000 instances in 10 series
    let mut b = ImagingStudyBuilder::new("big", "available", "Patient/p1")
        .study_uid("1.2.826.0.1.3680043.8.498.1")
        .started("2026-01-02T10:00:00Z");
    for s in 0..10 {
        let mut series = Series::new(&format!("1.2.826.0.1.3680043.8.498.1.{s}"), "CT");
        for i in 0..300 {
            series = series.instance(
                &format!("1.2.826.0.1.3680043.8.498.1.{s}.{i}"),
                "1.2.840.10008.5.1.4.1.1.2",
                Some(i + 1),
            );
        }
        b = b.series(series);
    }
    let study = xenrad_fhir_model::to_json(&b.build().expect("valid study")).into_bytes();
    // a searchset of 100 Patients
    let mut set = SearchSet::new(Paging {
        base: "http://localhost/fhir/Patient?name=smith".into(),
        offset: 0,
        count: 100,
        total: Some(1000),
    });
    for i in 0..100 {
        let p = PatientBuilder::new(&format!("pat-{i}"))
            .identifier("urn:oid:1.2.36.146.595.217.0.1", &format!("MRN{i:06}"))
            .name("Smith", &["Ann", "Marie"])
            .gender(if i % 2 == 0 { "female" } else { "male" })
            .birth_date("1970-03-01")
            .build()
            .expect("valid patient");
        set.push("http://localhost/fhir", p, EntryMode::Match)
            .expect("entry");
    }
    let bundle = xenrad_fhir_model::to_json(&set.build().expect("bundle")).into_bytes();
    vec![
        Subset {
            name: "generated-imagingstudy-3000",
            docs: vec![study],
            fhirkit: true,
        },
        Subset {
            name: "generated-searchset-100-patients",
            docs: vec![bundle],
            fhirkit: true,
        },
    ]
}

fn subsets(dir: &std::path::Path) -> Vec<Subset> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("package dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n != "package.json")
        })
        .collect();
    files.sort();
    let (mut clinical, mut radiology, mut all) = (Vec::new(), Vec::new(), Vec::new());
    for f in files {
        let data = std::fs::read(&f).expect("read");
        let Ok(r) = xenrad_fhir_model::from_json(&data) else {
            continue;
        };
        let t = r.resource_type.as_str();
        if CLINICAL.contains(&t) && data.len() < 1 << 20 {
            clinical.push(data.clone());
        }
        if RADIOLOGY.contains(&t) {
            radiology.push(data.clone());
        }
        all.push(data);
    }
    let mut v = vec![
        Subset {
            name: "clinical-under-1MB",
            docs: clinical,
            fhirkit: true,
        },
        Subset {
            name: "radiology",
            docs: radiology,
            fhirkit: true,
        },
        Subset {
            name: "all",
            docs: all,
            fhirkit: false,
        },
    ];
    v.extend(generated());
    v
}

fn bench(c: &mut Criterion) {
    let sets = match package_dir() {
        Some(dir) => subsets(&dir),
        None => generated(),
    };
    for s in &sets {
        // correctness first: every peer must read every document
        let kit: Vec<fhirkit::r4::Resource> = if s.fhirkit {
            s.docs
                .iter()
                .map(|d| {
                    let text = std::str::from_utf8(d).expect("utf-8");
                    fhirkit::from_json::<fhirkit::r4::Resource>(text)
                        .expect("json")
                        .0
                        .expect("fhirkit reads it")
                })
                .collect()
        } else {
            Vec::new()
        };
        let ours: Vec<_> = s
            .docs
            .iter()
            .map(|d| xenrad_fhir_model::from_json(d).expect("reads"))
            .collect();
        let values: Vec<serde_json::Value> = s
            .docs
            .iter()
            .map(|d| serde_json::from_slice(d).expect("serde_json reads"))
            .collect();

        let mut g = c.benchmark_group(format!("fhir-parse/{}", s.name));
        g.throughput(Throughput::Bytes(s.bytes()));
        if s.name == "all" {
            g.sample_size(10);
        }
        g.bench_function(BenchmarkId::new("xenrad-borrowed", s.docs.len()), |b| {
            b.iter(|| {
                for d in &s.docs {
                    black_box(xenrad_fhir_model::from_json(black_box(d)).expect("reads"));
                }
            });
        });
        g.bench_function(BenchmarkId::new("serde_json-Value", s.docs.len()), |b| {
            b.iter(|| {
                for d in &s.docs {
                    black_box(
                        serde_json::from_slice::<serde_json::Value>(black_box(d)).expect("reads"),
                    );
                }
            });
        });
        if s.fhirkit {
            g.bench_function(BenchmarkId::new("fhirkit", s.docs.len()), |b| {
                b.iter(|| {
                    for d in &s.docs {
                        let text = std::str::from_utf8(black_box(d)).expect("utf-8");
                        black_box(fhirkit::from_json::<fhirkit::r4::Resource>(text).expect("json"));
                    }
                });
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("fhir-serialise/{}", s.name));
        g.throughput(Throughput::Bytes(s.bytes()));
        if s.name == "all" {
            g.sample_size(10);
        }
        g.bench_function(BenchmarkId::new("xenrad", s.docs.len()), |b| {
            b.iter(|| {
                for r in &ours {
                    black_box(xenrad_fhir_model::to_json(black_box(r)));
                }
            });
        });
        g.bench_function(BenchmarkId::new("serde_json-Value", s.docs.len()), |b| {
            b.iter(|| {
                for v in &values {
                    black_box(serde_json::to_string(black_box(v)).expect("writes"));
                }
            });
        });
        if s.fhirkit {
            g.bench_function(BenchmarkId::new("fhirkit", s.docs.len()), |b| {
                b.iter(|| {
                    for r in &kit {
                        black_box(fhirkit::to_json(black_box(r)));
                    }
                });
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
