//! Helpers shared by the integration tests: a requestor-side byte builder.
#![allow(dead_code)]

use xenrad_dimse::dimse::Command;
use xenrad_dimse::pdu::{
    AssociateRq, PresentationContextRq, UserIdentityRq, UserInformation, encode,
};

pub const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const MR: &str = "1.2.840.10008.5.1.4.1.1.4";
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
pub const ELE: &str = "1.2.840.10008.1.2.1";
pub const ILE: &str = "1.2.840.10008.1.2";

/// An A-ASSOCIATE-RQ proposing (id, abstract, [ts]) contexts.
pub fn associate_rq(contexts: &[(u8, &str, &[&str])], max_pdu: u32) -> Vec<u8> {
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: "XENRAD",
        calling_ae: "TESTSCU",
        application_context: "1.2.840.10008.3.1.1.1",
        presentation_contexts: contexts
            .iter()
            .map(|(id, a, t)| PresentationContextRq {
                id: *id,
                abstract_syntax: a,
                transfer_syntaxes: t.to_vec(),
            })
            .collect(),
        user: UserInformation {
            max_pdu_length: Some(max_pdu),
            implementation_class_uid: Some("1.2.3.4.5"),
            async_ops_window: Some((8, 8)),
            user_identity_rq: Some(UserIdentityRq {
                identity_type: 1,
                positive_response_requested: true,
                primary: b"tech",
                secondary: b"",
            }),
            ..UserInformation::default()
        },
    };
    let mut b = Vec::new();
    encode::associate_rq(&mut b, &rq);
    b
}

/// A minimal Explicit VR Little Endian data set with SOP class/instance and study UIDs
/// plus `pixels` bytes of pixel data.
pub fn dataset_ele(class: &str, inst: &str, study: &str, pixels: usize) -> Vec<u8> {
    let mut d = Vec::new();
    let mut put = |g: u16, e: u16, vr: &[u8; 2], v: &[u8]| {
        let mut v = v.to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        d.extend_from_slice(&g.to_le_bytes());
        d.extend_from_slice(&e.to_le_bytes());
        d.extend_from_slice(vr);
        if matches!(vr, b"OB" | b"OW") {
            d.extend_from_slice(&[0, 0]);
            d.extend_from_slice(&(v.len() as u32).to_le_bytes());
        } else {
            d.extend_from_slice(&(v.len() as u16).to_le_bytes());
        }
        d.extend_from_slice(&v);
    };
    put(0x0008, 0x0016, b"UI", class.as_bytes());
    put(0x0008, 0x0018, b"UI", inst.as_bytes());
    put(0x0010, 0x0010, b"PN", b"DOE^JANE");
    put(0x0020, 0x000D, b"UI", study.as_bytes());
    let px: Vec<u8> = (0..pixels).map(|i| (i * 7) as u8).collect();
    put(0x7FE0, 0x0010, b"OW", &px);
    d
}

/// P-DATA-TF PDUs carrying a command (fragmented into `cmd_frag`-byte PDVs) then a data set.
pub fn message(pc: u8, cmd: &Command<'_>, dataset: Option<&[u8]>, max_pdu: u32) -> Vec<u8> {
    let mut b = Vec::new();
    encode::pdata_fragments(&mut b, pc, true, &cmd.encode(), max_pdu);
    if let Some(ds) = dataset {
        encode::pdata_fragments(&mut b, pc, false, ds, max_pdu);
    }
    b
}

pub fn release_rq() -> Vec<u8> {
    let mut b = Vec::new();
    encode::release_rq(&mut b);
    b
}

/// An SCP configuration storing into `dir` through a small journal (the default journal
/// preallocates 4 x 128 MiB, too much for a test).
pub fn small_journal_config(dir: &std::path::Path) -> xenrad_dimse::scp::ScpConfig {
    let sink = xenrad_dimse::store::FileSink::new(dir)
        .with_journal_options(xenrad_dimse::store::journal::JournalOptions::small());
    xenrad_dimse::scp::ScpConfig::with_sink(std::sync::Arc::new(sink))
}
