//! `xenrad hl7 …` subcommands over `xenrad-hl7v2`: `json`, `ack`, `validate`.
//!
//! Every command reads a file (or `-` for stdin) holding one message, several messages,
//! an FHS/BHS batch file or MLLP-framed messages, and handles each message in turn.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};
use xenrad_hl7v2::ack::{AckCode, ErrorDetail, Outcome, ack, ack_unparseable};
use xenrad_hl7v2::validate::validate;
use xenrad_hl7v2::{Message, ParseOptions, Segment, batch};

use super::{CliResult, read_input};

/// Subcommands of `xenrad hl7`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Prints one JSON line per message, escapes and charset (MSH-18) decoded to UTF-8.
    Json {
        /// Full structure: `{"segments": [[name, field1, ...], ...]}`, every field an array of
        /// repetitions, each an array of components, each an array of subcomponent strings.
        #[arg(long)]
        nested: bool,
        /// Input file, `-` for stdin.
        input: PathBuf,
    },
    /// Prints the ACK for each message (AA, or CA in enhanced mode; AR/CR with an ERR
    /// segment when the message cannot be parsed; with `--validate`, AE/CE listing every
    /// validation error). Segments end with CR, each ACK with a newline.
    Ack {
        /// Validate each message and answer AE/CE with one ERR per problem.
        #[arg(long)]
        validate: bool,
        /// Input file, `-` for stdin.
        input: PathBuf,
    },
    /// Validates each message against the v2.5.1 structure, field and table rules; prints
    /// every problem with its location and exits 1 if any message is invalid.
    Validate {
        /// Input file, `-` for stdin.
        input: PathBuf,
    },
}

/// Runs one `xenrad hl7` subcommand.
pub fn run(cmd: Command) -> CliResult {
    match cmd {
        Command::Json { nested, input } => json_cmd(&read_input(&input)?, nested),
        Command::Ack { validate, input } => ack_cmd(&read_input(&input)?, validate),
        Command::Validate { input } => validate_cmd(&read_input(&input)?),
    }
}

/// Message slices of the input (batch envelopes and MLLP framing removed).
fn messages(data: &[u8]) -> Result<Vec<&[u8]>, Box<dyn std::error::Error + Send + Sync>> {
    let b = batch::split(data, &ParseOptions::default())?;
    for e in &b.count_errors {
        eprintln!("xenrad: warning: {e}");
    }
    Ok(b.messages().collect())
}

fn nested_segment(seg: &Segment<'_>) -> Value {
    let mut out = vec![Value::String(seg.name().to_owned())];
    for f in seg.fields() {
        let reps: Vec<Value> = f
            .repetitions()
            .map(|r| {
                Value::Array(
                    r.components()
                        .map(|c| {
                            Value::Array(
                                c.subcomponents()
                                    .map(|s| Value::String(s.text().into_owned()))
                                    .collect(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        out.push(Value::Array(reps));
    }
    Value::Array(out)
}

/// Readable form: a field is a string when it has one repetition of one component of one
/// subcomponent, otherwise the smallest nesting of arrays that holds it.
fn flat_segment(seg: &Segment<'_>) -> Value {
    fn collapse(mut v: Vec<Value>) -> Value {
        if v.len() == 1 {
            v.pop().unwrap_or(Value::Null)
        } else {
            Value::Array(v)
        }
    }
    let mut out = vec![Value::String(seg.name().to_owned())];
    for f in seg.fields() {
        let reps: Vec<Value> = f
            .repetitions()
            .map(|r| {
                collapse(
                    r.components()
                        .map(|c| {
                            collapse(
                                c.subcomponents()
                                    .map(|s| Value::String(s.text().into_owned()))
                                    .collect(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        out.push(collapse(reps));
    }
    Value::Array(out)
}

fn json_cmd(data: &[u8], nested: bool) -> CliResult {
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for m in messages(data)? {
        let line = match Message::parse(m) {
            Ok(msg) => {
                if nested {
                    json!({ "segments": msg.segments().map(|s| nested_segment(&s)).collect::<Vec<_>>() })
                } else {
                    let t = msg.message_type();
                    json!({
                        "message_type": t.as_ref().map(|t| format!("{}^{}^{}", t.code, t.trigger_event, t.structure).trim_end_matches('^').to_owned()),
                        "control_id": msg.control_id(),
                        "version": msg.version(),
                        "charset": msg.encoding().name(),
                        "segments": msg.segments().map(|s| flat_segment(&s)).collect::<Vec<_>>(),
                    })
                }
            }
            Err(e) => {
                failed = true;
                json!({ "error": e.to_string(), "offset": e.offset, "segment": e.segment })
            }
        };
        writeln!(out, "{line}")?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn ack_cmd(data: &[u8], check: bool) -> CliResult {
    let mut out = std::io::stdout().lock();
    for m in messages(data)? {
        let reply = match Message::parse(m) {
            Ok(msg) => {
                let errors: Vec<ErrorDetail> = if check {
                    validate(&msg)
                        .errors()
                        .map(xenrad_hl7v2::validate::Problem::to_error_detail)
                        .collect()
                } else {
                    Vec::new()
                };
                if errors.is_empty() {
                    ack(&msg, AckCode::for_message(&msg, Outcome::Accept), None)
                } else {
                    let code = AckCode::for_message(&msg, Outcome::Error);
                    xenrad_hl7v2::ack::ack_with(
                        &msg,
                        code,
                        &errors,
                        &xenrad_hl7v2::ack::AckOptions::default(),
                    )
                }
            }
            Err(_) => ack_unparseable(m, None),
        };
        out.write_all(&reply)?;
        out.write_all(b"\n")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn validate_cmd(data: &[u8]) -> CliResult {
    let mut out = std::io::stdout().lock();
    let mut invalid = 0usize;
    let all = messages(data)?;
    for (i, m) in all.iter().enumerate() {
        let n = i + 1;
        match Message::parse(m) {
            Ok(msg) => {
                let report = validate(&msg);
                let id = msg.control_id().unwrap_or_default().into_owned();
                let structure = report.structure.unwrap_or("unknown structure");
                if !report.is_valid() {
                    invalid += 1;
                }
                let status = if report.is_valid() {
                    "valid"
                } else {
                    "INVALID"
                };
                writeln!(out, "message {n} (MSH-10 {id:?}, {structure}): {status}")?;
                for p in &report.problems {
                    writeln!(out, "  {p}")?;
                }
            }
            Err(e) => {
                invalid += 1;
                writeln!(out, "message {n}: INVALID: cannot parse: {e}")?;
            }
        }
    }
    writeln!(out, "{} messages, {invalid} invalid", all.len())?;
    Ok(if invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
