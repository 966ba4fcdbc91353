//! `xenrad`: command-line tools for HL7 v2, MLLP, DICOM, MPPS, HL7 v3 and FHIR.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use xenrad_cli as cli;

/// Xenrad protocol tools.
#[derive(Debug, Parser)]
#[command(
    name = "xenrad",
    version,
    about = "Xenrad protocol tools: HL7 v2, MLLP, DICOM (DIMSE), MPPS, HL7 v3 and FHIR R4"
)]
struct Cli {
    #[command(subcommand)]
    protocol: Protocol,
}

#[derive(Debug, Subcommand)]
enum Protocol {
    /// HL7 v2 messages: convert to JSON, build ACKs, validate.
    #[command(subcommand)]
    Hl7(cli::hl7::Command),
    /// MLLP: send messages to a listener, or run one.
    #[command(subcommand)]
    Mllp(cli::mllp::Command),
    /// DICOM networking: storage SCP, C-ECHO and C-STORE SCU.
    #[command(subcommand)]
    Dicom(cli::dicom::Command),
    /// Modality Performed Procedure Step tools.
    #[command(subcommand)]
    Mpps(cli::mpps::Command),
    /// HL7 v3 XML messages: JSON summary and accept acks.
    #[command(subcommand)]
    V3(cli::v3::Command),
    /// FHIR R4 resources: round trip and validation.
    #[command(subcommand)]
    Fhir(cli::fhir::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.protocol {
        Protocol::Hl7(c) => cli::hl7::run(c),
        Protocol::Mllp(c) => cli::mllp::run(c),
        Protocol::Dicom(c) => cli::dicom::run(c),
        Protocol::Mpps(c) => cli::mpps::run(c),
        Protocol::V3(c) => cli::v3::run(c),
        Protocol::Fhir(c) => cli::fhir::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xenrad: {}", cli::with_causes(&*e));
            ExitCode::from(2)
        }
    }
}
