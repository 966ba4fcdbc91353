//! Batch/file splitting (FHS/BHS/BTS/FTS) and count checks.

use xenrad_hl7v2::batch::{BatchError, split};
use xenrad_hl7v2::{Message, ParseOptions};

const M1: &str = "MSH|^~\\&|A||||||ADT^A01|1|P|2.5.1\rPID|1\r";
const M2: &str = "MSH|^~\\&|A||||||ADT^A08|2|P|2.5.1\rPID|2\r";

#[test]
fn file_with_batch_and_counts() {
    let input = format!("FHS|^~\\&\rBHS|^~\\&\r{M1}{M2}BTS|2\rFTS|1\r");
    let b = split(input.as_bytes(), &ParseOptions::default()).unwrap();
    assert!(b.file_header.is_some() && b.file_trailer.is_some());
    assert_eq!(b.batches.len(), 1);
    let msgs: Vec<&[u8]> = b.messages().collect();
    assert_eq!(msgs, [M1.as_bytes(), M2.as_bytes()]);
    assert!(b.check_counts().is_ok());
    assert_eq!(
        Message::parse(msgs[1]).unwrap().control_id().as_deref(),
        Some("2")
    );
}

#[test]
fn wrong_counts_are_reported() {
    let input = format!("BHS|^~\\&\r{M1}BTS|3\rFTS|2\r");
    let b = split(input.as_bytes(), &ParseOptions::default()).unwrap();
    assert_eq!(b.message_count(), 1);
    assert_eq!(b.count_errors.len(), 2);
    assert!(matches!(
        b.check_counts(),
        Err(BatchError::BatchCount {
            declared: 3,
            actual: 1,
            ..
        })
    ));
    assert!(matches!(
        b.count_errors[1],
        BatchError::FileCount {
            declared: 2,
            actual: 1,
            ..
        }
    ));
}

#[test]
fn bare_messages_and_lf() {
    let input = format!("{M1}\n\n{M2}").replace('\r', "\n");
    let b = split(input.as_bytes(), &ParseOptions::default()).unwrap();
    assert_eq!(b.message_count(), 2);
    for m in b.messages() {
        assert!(Message::parse(m).is_ok());
    }
}

#[test]
fn structural_errors() {
    let o = ParseOptions::default();
    assert!(matches!(
        split(b"BHS|^~\\&\rEVN|A01\rBTS|0\r", &o),
        Err(BatchError::OutsideMessage { .. })
    ));
    let twice = format!("FHS|^~\\&\r{M1}FHS|^~\\&\r");
    assert!(matches!(
        split(twice.as_bytes(), &o),
        Err(BatchError::SecondFileHeader { .. })
    ));
    assert!(matches!(split(b"", &o), Err(BatchError::NoMessage)));
    // An envelope with no message is a valid (empty) file.
    assert_eq!(
        split(b"FHS|^~\\&\rBHS|^~\\&\rBTS|0\rFTS|1\r", &o)
            .unwrap()
            .message_count(),
        0
    );
}

#[test]
fn mllp_framed_file() {
    let input = format!("\x0b{M1}\x1c\r\x0b{M2}\x1c\r");
    let b = split(input.as_bytes(), &ParseOptions::default()).unwrap();
    let msgs: Vec<&[u8]> = b.messages().collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        Message::parse(msgs[1]).unwrap().control_id().as_deref(),
        Some("2")
    );
}
