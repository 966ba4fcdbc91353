//! xenrad-hl7v3 (first slice pending).

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[doc(hidden)]
pub mod fuzzing {
    /// Fuzz entry point `strict` (placeholder until the crate's issue lands).
    pub fn strict(_data: &[u8]) {}
}
