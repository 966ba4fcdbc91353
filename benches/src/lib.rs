//! Shared helpers for the Xenrad criterion benches (corpus loading).

/// The shared 10,000-message v2.5.1 radiology corpus, MLLP-framed (`../shared` beside the
/// workspace).
pub const HL7V2_CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/corpus/hl7v2/generated/hl7v2_gen_n10000_seed42.mllp"
);

/// Reads the HL7 v2 bench corpus; `None` (with a note on stderr) when it is missing outside
/// CI, a panic in CI, where the corpus must be there.
pub fn load_hl7v2_corpus() -> Option<Vec<u8>> {
    match std::fs::read(HL7V2_CORPUS) {
        Ok(d) => Some(d),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "bench corpus {HL7V2_CORPUS} missing: {e}"
            );
            eprintln!("skipped corpus benches: {HL7V2_CORPUS}: {e}");
            None
        }
    }
}

/// Strips MLLP framing: `<VT> message <FS><CR>` → the message slices.
pub fn deframe(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == 0x1c)
        .map(|f| {
            let f = f.strip_prefix(b"\r").unwrap_or(f);
            f.strip_prefix(b"\x0b").unwrap_or(f)
        })
        .filter(|f| !f.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deframes_mllp() {
        let framed = b"\x0bMSH|1\r\x1c\r\x0bMSH|2\r\x1c\r";
        assert_eq!(deframe(framed), vec![&b"MSH|1\r"[..], &b"MSH|2\r"[..]]);
    }
}
