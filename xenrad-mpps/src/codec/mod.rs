//! The three wire formats mapped onto the same attribute list ([`crate::dataset::Dataset`]):
//! the seed's simple JSON, DICOM JSON (PS3.18 Annex F.2) and the DIMSE dataset (PS3.5 §7);
//! plus [`record`], the storage form of a [`crate::Record`].

pub mod dicom_json;
pub mod dimse;
pub mod record;
pub mod seed;

/// Size and nesting limits applied by the decoders (explicit and configurable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum body / dataset size in bytes (default 1 MiB).
    pub max_bytes: usize,
    /// Maximum sequence nesting depth (default 8; MPPS needs 3).
    pub max_depth: usize,
    /// Maximum number of elements in one request, all levels counted (default 100,000).
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 20,
            max_depth: 8,
            max_elements: 100_000,
        }
    }
}

/// Checks the body size against the limit.
pub(crate) fn check_size(len: usize, limits: &Limits) -> Result<(), crate::MppsError> {
    if len > limits.max_bytes {
        return Err(crate::MppsError::new(
            crate::ErrorKind::Malformed,
            format!(
                "body of {len} bytes exceeds the limit of {} bytes",
                limits.max_bytes
            ),
        ));
    }
    Ok(())
}
