//! Part 10 storage: File Meta Information built from the C-STORE command, a zero-copy peek
//! at the first bytes of the data set for its header facts, and the [`StorageSink`] trait
//! the SCP streams instances into. The file adapter ([`FileSink`]: temp file + atomic rename,
//! made durable through the write-ahead [`journal`] or per file) is behind feature `fs`.

#[cfg(feature = "fs")]
pub mod fs;
#[cfg(feature = "fs")]
mod group;
#[cfg(all(feature = "fs", target_os = "linux"))]
pub mod journal;
pub mod meta;
pub mod peek;
pub mod sink;

#[cfg(feature = "fs")]
pub use fs::{FileSink, FsyncPolicy, file_name_for};
pub use meta::{FileMeta, Part10, encode_file_meta, parse_part10};
pub use peek::{InstanceHeader, LAST_PEEKED_TAG, PeekOutcome, PeekedHeader, peek_header};
pub use sink::{InstanceSink, InstanceStart, MemoryInstance, MemorySink, StorageSink};
