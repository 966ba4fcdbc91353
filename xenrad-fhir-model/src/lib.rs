//! # xenrad-fhir-model
//!
//! The FHIR R4 (4.0.1) model for all 146 resources and every data type, generated from the
//! official StructureDefinitions into compact descriptor tables that one generic reader, writer and
//! validator run on (so the crate compiles in seconds, not tens of minutes).
//!
//! - [`from_json`] reads a resource in one pass, borrowing every string that needs no unescaping,
//!   dispatching on `resourceType`, merging `_name` primitive-extension siblings, keeping decimal
//!   text exactly, reporting unknown elements with their JSON pointer ([`ReadOptions`]).
//! - [`to_json`] writes it back in specification order; the model is lossless.
//! - [`Resource::new`]/[`Node::add_str`]/[`Node::add_node`] build owned resources, checked
//!   against the definitions; [`builders`] has typed helpers for the radiology resources.
//! - [`typed`] has a typed, borrowed view of every resource, data type and backbone element
//!   (`typed::Patient`, choice elements as enums such as `typed::ObservationValue`).
//! - [`validate()`] checks cardinality and required bindings and returns an [`OperationOutcome`](outcome).
//! - [`xml::to_xml`]/[`xml::from_xml`] read and write FHIR's XML format for the same model.
//! - [`search`] parses search query strings over the 1,375 generated SearchParameters;
//!   [`outcome`], [`bundle`] and [`capability`] build OperationOutcome, searchset Bundles and
//!   CapabilityStatements for a FHIR server; [`index`] evaluates the parameters' FHIRPath
//!   expressions on a resource to extract its search index values; [`subset`] cuts resources
//!   down for `_summary`/`_elements`, [`patch`] applies JSON Patch, [`transaction`] plans
//!   transaction and batch Bundles, [`bundle::BundleWriter`] writes Bundles around
//!   already-serialised resources.
//!
//! Layers (one module each): `generated` (tables) → [`schema`] (descriptor types) → [`json`]
//! (borrowed lexer) → [`model`] → `read`/`write` → [`validate`](mod@validate) → gateway helpers.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod builders;
pub mod bundle;
pub mod capability;
mod error;
pub mod generated;
pub mod index;
pub mod json;
pub mod model;
pub mod outcome;
pub mod patch;
mod read;
pub mod schema;
pub mod search;
pub mod subset;
pub mod transaction;
pub mod typed;
pub mod validate;
mod write;
pub mod xml;

pub use error::{Error, ErrorKind};
pub use generated::ResourceType;
pub use model::{Field, Node, PrimValue, Primitive, Resource, Value, Values};
pub use read::{ReadOptions, UnknownPolicy, check_primitive, from_json, from_json_with};
pub use schema::{PrimKind, TypeId};
pub use validate::validate;
pub use write::{to_json, to_json_pretty, write_node, write_resource};

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[cfg(any(fuzzing, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing {
    /// Reads any bytes as a resource in strict and lenient mode; whatever reads must write back
    /// and read again to the same model, and validate, view and index without panicking.
    pub fn json(data: &[u8]) {
        for opts in [
            crate::ReadOptions::default(),
            crate::ReadOptions {
                unknown: crate::UnknownPolicy::Lenient,
                max_depth: 64,
                ..Default::default()
            },
        ] {
            if let Ok((r, issues)) = crate::from_json_with(data, &opts) {
                let out = crate::to_json(&r);
                let again = crate::from_json_with(out.as_bytes(), &opts).map(|(r, _)| r);
                assert_eq!(again.as_ref(), Ok(&r), "re-read differs: {out}");
                let _ = crate::validate(&r);
                // typed views and search indexing see any model without panicking
                let _ = r.view().kind();
                let _ = crate::index::index(&r);
                if issues.is_empty() && crate::xml::xml_representable(&r) {
                    // XML carries the same model (unknown members have no XML form)
                    let xml = crate::xml::to_xml(&r);
                    let back = crate::xml::from_xml(&xml);
                    assert_eq!(back.as_ref(), Ok(&r), "XML round trip differs: {xml}");
                }
            }
        }
        if let Ok(q) = std::str::from_utf8(data) {
            let _ = crate::search::parse_query(crate::ResourceType::Patient, q);
            let _ = crate::xml::from_xml(q);
        }
    }
}

/// The README's example, run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
