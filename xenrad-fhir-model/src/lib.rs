//! xenrad-fhir-model (first slice pending).

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[doc(hidden)]
pub mod fuzzing {
    /// Fuzz entry point `json` (placeholder until the crate's issue lands).
    pub fn json(_data: &[u8]) {}
}
