//! Fuzzing entry points shared by `fuzz/` targets and the corpus-replay test. Never panic.

use crate::codec::dimse::TransferSyntaxKind;
use crate::{MemoryStore, Mpps};

/// Fuzz target `mpps_json`: the first byte picks the door, the rest is the body. Every decoder
/// (seed JSON, DICOM JSON, DIMSE dataset in both transfer syntaxes) and the state machine run on it;
/// successful decodes are re-encoded and decoded again, which must give the same attribute list.
pub fn json(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let mpps = Mpps::new(MemoryStore::new());
    let uid = "1.2.3.4.5";
    match sel % 4 {
        0 => {
            let _ = mpps.ingest_seed_json(body);
            let _ = mpps.ingest_seed_json(body);
            let _ = mpps.seed_set(body);
        }
        1 => {
            if let Ok(ds) = crate::codec::dicom_json::decode(body, &crate::Limits::default()) {
                let again = crate::codec::dicom_json::encode_dataset(&ds);
                let back = crate::codec::dicom_json::decode(&again, &crate::Limits::default());
                assert_eq!(
                    back.as_ref().ok(),
                    Some(&ds),
                    "DICOM JSON re-encode changed the dataset"
                );
            }
            let _ = mpps.create_dicom_json(uid, body);
            let _ = mpps.update_dicom_json(uid, body);
            let _ = mpps.get_dicom_json(uid);
        }
        _ => {
            let ts = if sel % 4 == 2 {
                TransferSyntaxKind::ExplicitVrLittleEndian
            } else {
                TransferSyntaxKind::ImplicitVrLittleEndian
            };
            if let Ok(mut ds) = crate::codec::dimse::decode(body, ts, &crate::Limits::default())
                && let Ok(again) = crate::codec::dimse::encode(&ds, ts)
            {
                let mut back = crate::codec::dimse::decode(&again, ts, &crate::Limits::default())
                    .expect("our own encoding decodes");
                // The encoder may switch the character set to ISO_IR 192 (UTF-8).
                ds.remove(crate::tags::SPECIFIC_CHARACTER_SET);
                back.remove(crate::tags::SPECIFIC_CHARACTER_SET);
                assert_eq!(back, ds, "DIMSE re-encode changed the dataset");
            }
            let _ = mpps.n_create_dataset(uid, body, ts);
            let _ = mpps.n_set_dataset(uid, body, ts);
        }
    }
}
