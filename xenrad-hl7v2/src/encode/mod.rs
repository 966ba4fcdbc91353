//! Encoding layer: ACK/NAK generation.

pub mod ack;
