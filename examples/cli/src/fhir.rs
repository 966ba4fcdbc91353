//! `xenrad fhir …` subcommands.

use super::{CliResult, read_input};
use std::path::PathBuf;
use std::process::ExitCode;
use xenrad_fhir_model::outcome::OperationOutcome;
use xenrad_fhir_model::{ReadOptions, ResourceType, UnknownPolicy};

/// Subcommands of `xenrad fhir`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Reads a FHIR R4 JSON resource and prints it re-serialised (specification order, decimals
    /// kept); on error prints the OperationOutcome and exits 1.
    Roundtrip {
        /// Input file, or `-` for standard input.
        file: PathBuf,
        /// Keep and report unknown elements instead of failing on them.
        #[arg(long)]
        lenient: bool,
        /// Indent the output.
        #[arg(long)]
        pretty: bool,
    },
    /// Reads and validates a resource (cardinality, required bindings, invariants) and prints the
    /// OperationOutcome; exits 1 when it has errors.
    Validate {
        /// Input file, or `-` for standard input.
        file: PathBuf,
    },
    /// Converts a JSON resource to FHIR XML (exit 1 with the OperationOutcome on error).
    ToXml {
        /// Input file, or `-` for standard input.
        file: PathBuf,
    },
    /// Converts a FHIR XML resource to JSON (exit 1 with the OperationOutcome on error).
    FromXml {
        /// Input file, or `-` for standard input.
        file: PathBuf,
    },
    /// Parses a search query string for a resource type and prints the typed parameters, or the
    /// OperationOutcome (exit 1).
    Search {
        /// Resource type, e.g. `Patient`.
        resource_type: String,
        /// Query string, e.g. `name=smith&birthdate=ge1980-01-01`.
        query: String,
    },
    /// Reads a resource and prints the values its search parameters index (the parameters'
    /// FHIRPath expressions evaluated on it), one `code (type) = value` line each; exit 1 with
    /// the OperationOutcome when it does not read.
    Index {
        /// Input file, or `-` for standard input.
        file: PathBuf,
    },
}

fn outcome_exit(oo: &OperationOutcome) -> ExitCode {
    println!("{}", xenrad_fhir_model::to_json_pretty(&oo.to_resource()));
    ExitCode::from(1)
}

/// Runs one `xenrad fhir` subcommand.
pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Roundtrip {
            file,
            lenient,
            pretty,
        } => {
            let data = read_input(&file)?;
            let opts = {
                let mut c = ReadOptions::default();
                c.unknown = if lenient {
                    UnknownPolicy::Lenient
                } else {
                    UnknownPolicy::Strict
                };
                c
            };
            match xenrad_fhir_model::from_json_with(&data, &opts) {
                Ok((r, issues)) => {
                    let out = if pretty {
                        xenrad_fhir_model::to_json_pretty(&r)
                    } else {
                        xenrad_fhir_model::to_json(&r)
                    };
                    println!("{out}");
                    for i in &issues {
                        eprintln!("warning: {i}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(outcome_exit(&OperationOutcome::from_error(&e, None))),
            }
        }
        Command::Validate { file } => {
            let data = read_input(&file)?;
            let opts = {
                let mut c = ReadOptions::default();
                c.check_cardinality = false;
                c
            };
            let oo = match xenrad_fhir_model::from_json_with(&data, &opts) {
                Ok((r, _)) => xenrad_fhir_model::validate(&r),
                Err(e) => OperationOutcome::from_error(&e, None),
            };
            if oo.has_errors() {
                Ok(outcome_exit(&oo))
            } else {
                println!("{}", xenrad_fhir_model::to_json_pretty(&oo.to_resource()));
                Ok(ExitCode::SUCCESS)
            }
        }
        Command::ToXml { file } => {
            let data = read_input(&file)?;
            match xenrad_fhir_model::from_json(&data) {
                Ok(r) if xenrad_fhir_model::xml::xml_representable(&r) => {
                    println!("{}", xenrad_fhir_model::xml::to_xml(&r));
                    Ok(ExitCode::SUCCESS)
                }
                Ok(_) => Ok(outcome_exit(&OperationOutcome::single(
                    xenrad_fhir_model::outcome::Severity::Error,
                    "value",
                    "a Narrative.div is not a well-formed XHTML div: no XML form",
                ))),
                Err(e) => Ok(outcome_exit(&OperationOutcome::from_error(&e, None))),
            }
        }
        Command::FromXml { file } => {
            let data = read_input(&file)?;
            let text = String::from_utf8(data)?;
            match xenrad_fhir_model::xml::from_xml(&text) {
                Ok(r) => {
                    println!("{}", xenrad_fhir_model::to_json(&r));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(outcome_exit(&OperationOutcome::from_error(&e, None))),
            }
        }
        Command::Search {
            resource_type,
            query,
        } => {
            let Some(rt) = ResourceType::from_name(&resource_type) else {
                return Ok(outcome_exit(&OperationOutcome::single(
                    xenrad_fhir_model::outcome::Severity::Error,
                    "not-supported",
                    format!("unknown resource type {resource_type:?}"),
                )));
            };
            match xenrad_fhir_model::search::parse_query(rt, &query) {
                Ok(q) => {
                    for p in &q.params {
                        let m = p
                            .modifier
                            .as_ref()
                            .map(|m| format!(":{m:?}"))
                            .unwrap_or_default();
                        println!(
                            "{}{m} ({:?}, {}) = {:?}",
                            p.def.code, p.def.kind, p.def.expression, p.values
                        );
                    }
                    println!(
                        "_count={:?} _offset={:?} _sort={:?} _include={:?} _revinclude={:?}",
                        q.count, q.offset, q.sort, q.include, q.revinclude
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(oo) => Ok(outcome_exit(&oo)),
            }
        }
        Command::Index { file } => {
            let data = read_input(&file)?;
            match xenrad_fhir_model::from_json(&data) {
                Ok(r) => {
                    let (found, unsupported) = xenrad_fhir_model::index::index(&r);
                    for (p, values) in &found {
                        for v in values {
                            println!("{} ({:?}) = {v:?}", p.code, p.kind);
                        }
                    }
                    for u in &unsupported {
                        eprintln!("warning: {u}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(outcome_exit(&OperationOutcome::from_error(&e, None))),
            }
        }
    }
}
