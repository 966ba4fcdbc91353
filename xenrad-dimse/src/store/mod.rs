//! Part 10 storage: File Meta Information built from the C-STORE command, a zero-copy peek
//! at the first bytes of the data set, and a streaming writer that lands each instance
//! with temp file + fsync + atomic rename.

pub mod meta;
pub mod peek;
pub mod writer;

pub use meta::{FileMeta, Part10, encode_file_meta, parse_part10};
pub use peek::{PeekOutcome, PeekedUids, peek_uids};
pub use writer::{DatasetUids, FsyncPolicy, InstanceWriter};
