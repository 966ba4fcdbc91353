//! Strict-pass conformance on the public HL7 v3 / CDA corpus (`../shared/corpus/hl7v3`).

mod common;

use xenrad_hl7v3::{ErrorKind, header, strict};

#[test]
fn all_well_formed_files_pass_strict() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let (good, _) = common::corpus_files(&dir);
    assert_eq!(good.len(), 287, "expected 287 well-formed files");
    let mut failures = Vec::new();
    let mut hl7 = 0;
    for p in &good {
        let bytes = std::fs::read(p).unwrap();
        match strict(&bytes) {
            Ok(m) => {
                if m.is_hl7() {
                    hl7 += 1;
                } else {
                    println!(
                        "not in urn:hl7-org:v3: {} <{}> ns {:?}",
                        p.display(),
                        m.root().local_name(),
                        m.root().namespace()
                    );
                }
                assert!(!m.header().interaction.is_empty(), "{}", p.display());
            }
            Err(e) => failures.push(format!("{}: {e}", p.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // All but XCPDPatientLocationQueryResponse (urn:ihe:iti:xcpd:2009) are HL7 v3 messages or CDA.
    assert_eq!(hl7, 286);
}

#[test]
fn all_malformed_files_rejected_with_position() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let (_, bad) = common::corpus_files(&dir);
    assert_eq!(bad.len(), 5);
    for p in &bad {
        let bytes = std::fs::read(p).unwrap();
        let e = strict(&bytes).expect_err(&p.display().to_string());
        assert!(e.line >= 1 && e.column >= 1);
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("line {}, column {}: ", e.line, e.column)),
            "{text}"
        );
        // The reported position is inside the document and on the reported line.
        let line = String::from_utf8_lossy(&bytes)
            .lines()
            .nth(e.line as usize - 1)
            .map(str::len);
        assert!(
            line.is_some(),
            "{}: line {} out of range",
            p.display(),
            e.line
        );
        assert!(
            matches!(e.kind, ErrorKind::Syntax(_) | ErrorKind::UnboundPrefix(_)),
            "{}: unexpected {:?}",
            p.display(),
            e.kind
        );
        println!("{}: {text}", p.file_name().unwrap().to_string_lossy());
    }
}

#[test]
fn header_pass_agrees_with_strict_pass() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let (good, _) = common::corpus_files(&dir);
    let mut with_ids = 0;
    for p in &good {
        let bytes = std::fs::read(p).unwrap();
        let m = strict(&bytes).unwrap();
        let fast = header(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let s = m.header();
        let name = p.display();
        assert_eq!(fast.interaction, s.interaction, "{name}");
        assert_eq!(fast.message_id, s.message_id, "{name}");
        assert_eq!(fast.creation_time, s.creation_time, "{name}");
        assert_eq!(fast.interaction_id, s.interaction_id, "{name}");
        assert_eq!(fast.processing_code, s.processing_code, "{name}");
        assert_eq!(fast.accept_ack_code, s.accept_ack_code, "{name}");
        assert_eq!(fast.sender, s.sender, "{name}");
        assert_eq!(fast.receiver, s.receiver, "{name}");
        assert_eq!(fast.control_act, s.control_act, "{name}");
        assert_eq!(fast.soap, s.soap, "{name}");
        with_ids += usize::from(s.message_id.is_some() && s.sender.is_some());
    }
    assert!(
        with_ids >= 200,
        "only {with_ids} files with message id and sender"
    );
}
