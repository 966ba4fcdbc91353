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

/// The malformed public samples the lenient parser used to accept (issue 20), each decided by
/// the HL7 v2.5.1 chapter 2 rule that applies (README, "Malformed samples"): `Err` with the
/// parser's or the syntax check's position, or `Ok` where the standard makes the message
/// acceptable to a receiver.
#[test]
fn malformed_samples_decided_by_chapter_2() {
    let Some(dir) = corpus_dir() else { return };
    let cases: &[(&str, Option<&str>)] = &[
        // §2.12 receiver rules: unexpected segments (MSA in an ORU) and extra fields (the OBX
        // text glued onto the OBR line after a space) are ignored: acceptable.
        ("hapi-hl7v2/util-messages__01_ORU_R01.hl7", None),
        // One line: MSH-15 reads " EVN", not a table 0155 code.
        (
            "node-hl7-complete/healthcare-it-systems__adt-example.hl7",
            Some("MSH-15"),
        ),
        // A stray MLLP start block after the last segment.
        ("ruby-hl7/adt_a01.hl7", Some("byte 545 (segment 10)")),
        ("ruby-hl7/lotsunknowns.hl7", Some("byte 1083 (segment 54)")),
        ("ruby-hl7/rqi_r04.hl7", Some("byte 347 (segment 6)")),
        ("ruby-hl7/test.hl7", Some("byte 250 (segment 8)")),
        ("ruby-hl7/test2.hl7", Some("byte 683 (segment 6)")),
        // MSH-2 "^~&" makes '&' the escape character; SFT-2 uses it as a subcomponent
        // separator, leaving an escape sequence open.
        ("ruby-hl7/realm__realm-animal-rabies.hl7", Some("SFT-2-6")),
        (
            "ruby-hl7/realm__realm-campylobacter-jejuni.hl7",
            Some("SFT-2-6"),
        ),
        (
            "ruby-hl7/realm__realm-hepatitis-c-virus.hl7",
            Some("SFT-2-6"),
        ),
        ("ruby-hl7/realm__realm-minimal-message.hl7", Some("SFT-2-6")),
    ];
    for (path, want) in cases {
        let data = std::fs::read(dir.join(path)).unwrap();
        let got = match Message::parse(&data) {
            Err(e) => Err(e.to_string()),
            Ok(m) => xenrad_hl7v2::validate::well_formed(&m).map_err(|p| p.to_string()),
        };
        match (want, &got) {
            (None, Ok(())) => {}
            (Some(w), Err(e)) if e.contains(w) => {}
            _ => panic!("{path}: expected {want:?}, got {got:?}"),
        }
    }
    // Every sample the manifest calls ok passes the same checks.
    for row in rows(&dir) {
        if row.status != "ok" || row.messages != 1 {
            continue;
        }
        let data = std::fs::read(dir.join(&row.path)).unwrap();
        if let Ok(m) = Message::parse(&data)
            && let Err(p) = xenrad_hl7v2::validate::well_formed(&m)
        {
            panic!("{}: {p}", row.path);
        }
    }
}
