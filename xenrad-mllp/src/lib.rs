//! xenrad-mllp (first slice pending).

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[doc(hidden)]
pub mod fuzzing {
    /// Fuzz entry point `decode` (placeholder until the crate's issue lands).
    pub fn decode(_data: &[u8]) {}
}
