//! DIMSE (PS3.7): command sets and message assembly from PDVs.

pub mod assembler;
pub mod command;

pub use assembler::{Assembler, DimseEvent};
pub use command::{Command, CommandError, field, status};
