//! # xenrad-mpps
//!
//! Modality Performed Procedure Step (DICOM PS3.4 Annex F.7, IHE RAD-6/RAD-7) as a sans-IO state
//! machine behind three doors that all land on the same model and the same rules:
//!
//! | door | entry points | format |
//! |---|---|---|
//! | seed JSON (`POST /ingest`) | [`Mpps::ingest_seed_json`] | [`codec::seed`] (lossy profile) |
//! | MPPS-RS (PS3.18 §15) | [`Mpps::create_dicom_json`], [`Mpps::update_dicom_json`], [`Mpps::get_dicom_json`] | [`codec::dicom_json`] |
//! | DIMSE N-CREATE / N-SET | [`Mpps::n_create_dataset`], [`Mpps::n_set_dataset`] | [`codec::dimse`] |
//!
//! Layers: [`uid`] (PS3.5 §9.1) → [`dataset`] (attribute tree, VR checks) → [`codec`] (three formats)
//! → [`attributes`] + [`state`] (Table F.7.2-1 and the transitions) → [`store`] (compare-and-set
//! storage trait, [`MemoryStore`]) → [`service`] (the facade). Errors ([`MppsError`]) carry the
//! offending attribute path and map to DIMSE statuses and HTTP codes.
//!
//! ```
//! use xenrad_mpps::{Mpps, MemoryStore, TransferSyntaxKind};
//! let mpps = Mpps::new(MemoryStore::new());
//! let create = br#"{
//!   "00080060":{"vr":"CS","Value":["CT"]},
//!   "00400241":{"vr":"AE","Value":["CT01"]},
//!   "00400244":{"vr":"DA","Value":["20250101"]},
//!   "00400245":{"vr":"TM","Value":["081500"]},
//!   "00400252":{"vr":"CS","Value":["IN PROGRESS"]},
//!   "00400253":{"vr":"SH","Value":["PPS-1"]},
//!   "00400270":{"vr":"SQ","Value":[{"0020000D":{"vr":"UI","Value":["1.2.3.4.5.6"]}}]}
//! }"#;
//! let out = mpps.create_dicom_json("1.2.3.4.5", create).unwrap();
//! assert_eq!(out.http_status(), 201);
//! // The same instance is reachable from the DIMSE door: going final with the end date still empty
//! // (recorded as an empty Type 2 value at creation) is refused with 0x0121 Missing Attribute Value.
//! let set = xenrad_mpps::Dataset::new().with(
//!     xenrad_mpps::tags::PPS_STATUS,
//!     xenrad_mpps::Element::string(dicom_core::VR::CS, "COMPLETED"),
//! );
//! let bytes = xenrad_mpps::codec::dimse::encode(&set, TransferSyntaxKind::ImplicitVrLittleEndian).unwrap();
//! let rsp = mpps.n_set_dataset("1.2.3.4.5\0", &bytes, TransferSyntaxKind::ImplicitVrLittleEndian);
//! assert_eq!(rsp.status, 0x0121);
//! assert_eq!(rsp.offending_attribute, Some(xenrad_mpps::tags::PPS_END_DATE));
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod attributes;
pub mod codec;
pub mod dataset;
pub mod error;
pub mod model;
pub mod service;
pub mod state;
pub mod store;
pub mod uid;

#[cfg(any(fuzzing, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

pub use attributes::tags;
pub use codec::Limits;
pub use codec::dimse::TransferSyntaxKind;
pub use dataset::{Dataset, Element, Value};
pub use error::{ErrorKind, MppsError};
pub use model::{MPPS_SOP_CLASS_UID, MppsInstance, PerformedSeries, PpsStatus};
pub use service::{Action, DimseResponse, DuplicatePolicy, Mpps, Outcome};
pub use state::Profile;
pub use store::{MemoryStore, Record, Store, StoreError};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
