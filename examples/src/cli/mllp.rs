//! `xenrad mllp …` subcommands.

use super::CliResult;

/// Subcommands of `xenrad mllp`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Prints the library version (placeholder until the crate's issue lands).
    Version,
}

/// Runs one `xenrad mllp` subcommand.
pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Version => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
