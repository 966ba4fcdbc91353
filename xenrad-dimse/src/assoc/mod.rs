//! Associations: acceptor policy and the PS3.8 §9.2 state machine, sans-IO.

pub mod machine;
pub mod policy;

pub use machine::{Action, Association, Event, PdvData, State, Timeouts, UlEvent, action};
pub use policy::{
    AcceptedContext, AcceptorPolicy, AllowedCaller, Negotiated, Refusal, RefusalReason,
    UserCredential, UserIdentityPolicy,
};
