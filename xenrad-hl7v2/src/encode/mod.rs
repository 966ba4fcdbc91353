//! Encoding layer: owned model and encoder, ACK/NAK generation.

pub mod ack;
pub mod owned;
