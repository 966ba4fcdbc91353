//! Associations: acceptor policy and the PS3.8 §9.2 state machine, sans-IO.

pub mod machine;
pub mod policy;

pub use machine::{Association, Event, PdvData, State, Timeouts};
pub use policy::{AcceptedContext, AcceptorPolicy, Negotiated};
