//! Layer 0: descriptor tables generated from the official FHIR R4 package by `codegen/gen.rs`.

#[rustfmt::skip]
mod defs;
pub use defs::*;
