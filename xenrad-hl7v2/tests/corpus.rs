//! Table-driven conformance over the shared HL7 v2 corpus (`../shared/corpus/hl7v2/MANIFEST.tsv`).

mod common;

use common::corpus_dir;
use xenrad_hl7v2::{Message, ParseOptions, batch};

/// One manifest row.
struct Row {
    path: String,
    status: String,
    messages: usize,
    msh9: String,
    msh12: String,
}

fn rows(dir: &std::path::Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let cols = [
        col("path"),
        col("status"),
        col("messages"),
        col("msh9"),
        col("msh12"),
    ];
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                path: c[cols[0]].to_string(),
                status: c[cols[1]].to_string(),
                messages: c[cols[2]].parse().unwrap_or(0),
                msh9: c[cols[3]].to_string(),
                msh12: c[cols[4]].to_string(),
            }
        })
        .collect()
}

/// Splits and parses every message of a file; `Err` describes the first failure.
fn parse_file(data: &[u8]) -> Result<Vec<(String, String)>, String> {
    let opts = ParseOptions::default();
    let b = batch::split(data, &opts).map_err(|e| e.to_string())?;
    if let Err(e) = b.check_counts() {
        println!("count warning: {e}");
    }
    let mut out = Vec::new();
    for m in b.messages() {
        let msg = Message::parse_with(m, &opts).map_err(|e| e.to_string())?;
        // MSH-9 components 1 and 2 as written (`ACK^` keeps its empty trigger).
        let t9 = msg.msh().field(9).and_then(|f| f.repetition(1)).map(|r| {
            r.components()
                .take(2)
                .map(|c| c.text().into_owned())
                .collect::<Vec<_>>()
                .join("^")
        });
        out.push((
            t9.unwrap_or_default(),
            msg.version().unwrap_or_default().into_owned(),
        ));
    }
    Ok(out)
}

#[test]
fn manifest_ok_and_envelope_files_parse() {
    let Some(dir) = corpus_dir() else { return };
    let mut checked = 0;
    let mut failures = Vec::new();
    for row in rows(&dir) {
        if row.status != "ok" && row.status != "envelope" && row.status != "semantic" {
            continue;
        }
        let data = std::fs::read(dir.join(&row.path)).unwrap();
        match parse_file(&data) {
            Ok(msgs) => {
                if msgs.len() == row.messages {
                    // The manifest lists the distinct values, `;`-separated.
                    let types: Vec<&str> = row.msh9.split(';').collect();
                    let versions: Vec<&str> = row.msh12.split(';').collect();
                    for (t9, v) in &msgs {
                        if !row.msh9.is_empty() && !types.contains(&t9.as_str()) {
                            failures
                                .push(format!("{}: MSH-9 {t9}, manifest {}", row.path, row.msh9));
                        }
                        if !row.msh12.is_empty() && !versions.contains(&v.as_str()) {
                            failures
                                .push(format!("{}: MSH-12 {v}, manifest {}", row.path, row.msh12));
                        }
                    }
                } else {
                    failures.push(format!(
                        "{}: {} messages, manifest says {}",
                        row.path,
                        msgs.len(),
                        row.messages
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: {e}", row.path)),
        }
        checked += 1;
    }
    assert!(checked > 300, "only {checked} files checked");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn manifest_other_files_never_panic() {
    let Some(dir) = corpus_dir() else { return };
    for row in rows(&dir) {
        let data = std::fs::read(dir.join(&row.path)).unwrap();
        let r = parse_file(&data);
        println!(
            "{:<10} {:<70} {}",
            row.status,
            row.path,
            r.as_ref()
                .map_or_else(Clone::clone, |m| format!("{} msgs", m.len()))
        );
        #[cfg(feature = "fuzzing")]
        xenrad_hl7v2::fuzzing::parse(&data);
    }
}
