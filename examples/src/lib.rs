//! Thin adapters and command-line front ends over the Xenrad protocol crates.
//!
//! The binaries are `xenrad` (one subcommand per protocol) and `xenrad-gateway`
//! (all five endpoints). Everything here is I/O glue; protocol logic lives in the
//! `xenrad-*` library crates.

pub mod cli;
pub mod gateway;

/// The README's code examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
