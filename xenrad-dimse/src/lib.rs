//! # xenrad-dimse
//!
//! DICOM Upper Layer (PS3.8) and DIMSE (PS3.7) as sans-IO building blocks, with a
//! streaming C-STORE SCP and an optional tokio transport adapter.
//!
//! Layers, bottom up:
//! - [`pdu`]: zero-copy PDU codec and the incremental [`pdu::reader::PduReader`].
//! - [`assoc`]: acceptor policy (negotiation) and the PS3.8 §9.2 association state machine
//!   (Sta1–Sta13, table-driven: [`assoc::action`]).
//! - [`dimse`]: command sets, message assembly from PDVs, message fragmentation.
//! - [`store`]: Part 10 File Meta, the zero-copy header peek, the [`store::StorageSink`]
//!   trait instances stream into, and (feature `fs`, default) its durable file adapter
//!   [`store::FileSink`].
//! - `net` (feature `tokio`): TCP server and client over the layers above.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![allow(clippy::many_single_char_names)]

pub mod assoc;
pub mod dimse;
#[cfg(feature = "tokio")]
pub mod net;
pub mod pdu;
pub mod scp;
pub mod store;

/// Fuzzing entry points shared by `fuzz/` targets and corpus-replay tests.
#[doc(hidden)]
pub mod fuzzing {
    /// Fuzz entry point `pdu`: frames the input with a small-limit reader, parses every
    /// frame and re-encodes what parsed; never panics.
    pub fn pdu(data: &[u8]) {
        use crate::pdu::{
            Pdu, encode,
            reader::{PduReader, ReaderLimits},
        };
        let mut r = PduReader::new(ReaderLimits {
            max_pdata_len: 1 << 16,
            max_other_len: 1 << 16,
        });
        let mut out = Vec::new();
        for chunk in data.chunks(7) {
            r.push(chunk);
            while let Ok(Some(frame)) = r.next_frame() {
                if let Ok(pdu) = Pdu::parse(&frame) {
                    out.clear();
                    match &pdu {
                        Pdu::AssociateRq(rq) => encode::associate_rq(&mut out, rq),
                        Pdu::AssociateAc(ac) => encode::associate_ac(&mut out, ac),
                        _ => {}
                    }
                    if !out.is_empty() {
                        let again = Pdu::parse(&out).expect("re-encoded PDU parses");
                        assert_eq!(again, pdu, "PDU round trip");
                    }
                }
            }
        }
        let _ = Pdu::parse(data);
    }
    /// Fuzz entry point `command`: decodes a command set from the input, fed as PDV
    /// fragments through the assembler; a decoded command must survive encode → decode.
    pub fn command(data: &[u8]) {
        use crate::assoc::PdvData;
        use crate::dimse::{Assembler, Command, DimseEvent};
        if let Ok(cmd) = Command::decode(data) {
            let enc = cmd.encode();
            let again = Command::decode(&enc).expect("re-encoded command decodes");
            assert_eq!(again.field, cmd.field);
            assert_eq!(again.message_id, cmd.message_id);
            assert_eq!(again.affected_sop_instance, cmd.affected_sop_instance);
        }
        let split = data.first().map_or(1, |b| usize::from(*b).max(1));
        let mut asm = Assembler::new(4096);
        let bytes = bytes::Bytes::copy_from_slice(data);
        let mut pos = 0;
        while pos < bytes.len() {
            let end = (pos + split).min(bytes.len());
            let pdv = PdvData {
                pc_id: 1,
                is_command: true,
                is_last: end == bytes.len(),
                data: bytes.slice(pos..end),
            };
            if let Ok(Some(DimseEvent::Command { bytes: b, .. })) = asm.push(pdv) {
                assert_eq!(Command::decode(&b).is_ok(), Command::decode(data).is_ok());
            }
            pos = end;
        }
    }

    /// Fuzz entry point `journal`: the input is a journal lane file as recovery finds it
    /// after a crash (superblock slots, then records); recovery's scan of it never panics,
    /// and what it accepts is consecutive, inside the ring, with sane names.
    #[cfg(all(feature = "fs", target_os = "linux"))]
    pub fn journal(data: &[u8]) {
        for (name, _) in crate::store::journal::scan_lane_image(data) {
            assert!(!name.is_empty() && !name.contains('/') && !name.starts_with('.'));
        }
    }

    /// Fuzz entry point `assoc`: the input is a byte stream from a peer, fed in chunks to an
    /// acceptor; every PDV goes through the assembler and every command through the decoder,
    /// and timers are fired at the end. Never panics.
    pub fn assoc(data: &[u8]) {
        use crate::assoc::{AcceptorPolicy, Association, Event, Timeouts};
        use crate::dimse::{Assembler, Command, DimseEvent};
        use std::time::{Duration, Instant};
        let now = Instant::now();
        let policy = std::sync::Arc::new(AcceptorPolicy {
            max_pdu: 4096,
            ..AcceptorPolicy::default()
        });
        let mut a = Association::acceptor(policy, Timeouts::default(), now);
        let mut asm = Assembler::new(1024);
        let step = data.first().map_or(1, |b| usize::from(*b % 64) + 1);
        let mut out = Vec::new();
        for chunk in data.chunks(step) {
            a.handle_input(chunk, now);
            while let Some(ev) = a.poll_event() {
                if let Event::Data(pdv) = ev
                    && let Ok(Some(DimseEvent::Command { bytes, .. })) = asm.push(pdv)
                    && let Ok(c) = Command::decode(&bytes)
                {
                    let rsp = bytes::Bytes::from(c.response(0).encode());
                    a.send_pdata(1, true, &rsp);
                }
            }
            a.poll_transmit(&mut out);
            for c in &out {
                // Nothing we send exceeds the peer's maximum (or 1 MiB when unlimited).
                assert!(c.len() <= (1 << 20) + 12);
            }
            out.clear();
            if a.is_closed() {
                break;
            }
        }
        a.handle_timeout(now + Duration::from_secs(3600));
        while a.poll_event().is_some() {}
    }
}
