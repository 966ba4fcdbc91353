//! `xenrad dicom …` subcommands.

use super::CliResult;

/// Subcommands of `xenrad dicom`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Prints the library version (placeholder until the crate's issue lands).
    Version,
}

/// Runs one `xenrad dicom` subcommand.
pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Version => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
