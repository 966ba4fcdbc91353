//! The `xenrad` command-line tool: one subcommand module per protocol, each a thin front end
//! over a Xenrad protocol crate (all protocol logic lives in the `xenrad-*` library crates).
//!
//! The gateway (`xenrad-gateway`) is its own crate in `examples/gateway`, so this tool does not
//! compile its HTTP server, SQLite store or OpenAPI dependencies.

pub mod dicom;
pub mod dicom_query;
pub mod dicom_retrieve;
pub mod fhir;
pub mod hl7;
pub mod mllp;
pub mod mpps;
pub mod v3;

/// Result type of every subcommand: an exit code, or an error printed by `main`.
pub type CliResult = Result<std::process::ExitCode, Box<dyn std::error::Error + Send + Sync>>;

/// Reads a whole input named on the command line; `-` means standard input.
pub fn read_input(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path)
    }
}

/// An error and its causes (the `source()` chain), `: `-separated: what the tool prints.
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The README's code examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
