//! Parsing layer: the one-pass scanner, the segment index ([`Message`](crate::Message)), the
//! lazy borrowed views and the parse errors.

pub mod element;
pub mod error;
pub mod message;
pub mod options;
pub mod scan;
