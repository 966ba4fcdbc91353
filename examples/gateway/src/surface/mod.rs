//! The endpoints: one module per surface, protocol glue only (decode the request, call
//! [`crate::ingest`] or read [`crate::store`], encode the answer), plus what the HTTP
//! surfaces share ([`http`], [`limits`], [`tls`]).

pub mod console;
pub mod dicom;
pub mod dicomweb;
pub mod fhir;
pub mod hl7;
pub mod http;
pub mod keys;
pub mod limits;
pub mod mllp;
pub mod mpps;
pub mod tls;
