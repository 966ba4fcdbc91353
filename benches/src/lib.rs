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

/// Every well-formed file of the shared HL7 v3 corpus (`../shared/corpus/hl7v3`, the
/// `malformed` folder left out); empty when the corpus is absent.
pub fn load_hl7v3_corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/hl7v3"
    ));
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "malformed") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "xml")
                && let Ok(bytes) = std::fs::read(&p)
            {
                out.push(bytes);
            }
        }
    }
    out
}

/// Strict pass plus the typed extraction the gateway does on an HL7 v3 message (header,
/// patient ids, names, gender, birth time, city); returns a checksum of what it read.
pub fn hl7v3_strict_typed(bytes: &[u8], t: xenrad_hl7v3::Tokenizer) -> usize {
    use xenrad_hl7v3::types::AddrPartKind;
    use xenrad_hl7v3::xml::{Document, Limits};
    let doc = Document::parse_using(bytes, &Limits::default(), t).expect("well-formed corpus");
    let m = xenrad_hl7v3::Message::from_document(doc).expect("an HL7 v3 message");
    let h = m.header();
    let mut n =
        h.interaction.len() + usize::from(h.message_id.is_some()) + usize::from(h.sender.is_some());
    for p in m.patients() {
        n += p.ids().filter(|i| i.extension.is_some()).count();
        for name in p.names() {
            n += name.given().map(|g| g.len()).sum::<usize>()
                + name.family().map(|f| f.len()).sum::<usize>();
        }
        n += p.gender().and_then(|g| g.code()).map_or(0, |c| c.len());
        n += p.birth_time().and_then(|t| t.date()).map_or(0, |_| 1);
        n += p
            .addresses()
            .filter_map(|a| a.get(AddrPartKind::City))
            .count();
    }
    n
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
