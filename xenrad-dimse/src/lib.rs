//! xenrad-dimse (first slice pending).

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[doc(hidden)]
pub mod fuzzing {
    /// Fuzz entry point `pdu` (placeholder until the crate's issue lands).
    pub fn pdu(_data: &[u8]) {}
    /// Fuzz entry point `command` (placeholder until the crate's issue lands).
    pub fn command(_data: &[u8]) {}
}
