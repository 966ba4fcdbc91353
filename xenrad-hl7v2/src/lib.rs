//! xenrad-hl7v2 (first slice pending).

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[doc(hidden)]
pub mod fuzzing {
    /// Fuzz entry point `parse` (placeholder until the crate's issue lands).
    pub fn parse(_data: &[u8]) {}
    /// Fuzz entry point `escape` (placeholder until the crate's issue lands).
    pub fn escape(_data: &[u8]) {}
}
