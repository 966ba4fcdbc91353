//! PDU encoders (PS3.8 §9.3). Each function appends one complete PDU to a `Vec<u8>`.

use super::{
    AssociateAc, AssociateRj, AssociateRq, PresentationContextAc, PresentationContextRq,
    UserInformation, code,
};

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Starts an item with a 2-byte length; returns the position to patch.
fn begin_item(out: &mut Vec<u8>, ty: u8) -> usize {
    out.extend_from_slice(&[ty, 0, 0, 0]);
    out.len()
}

fn end_item(out: &mut [u8], start: usize) {
    let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    out[start - 2..start].copy_from_slice(&len.to_be_bytes());
}

fn text_item(out: &mut Vec<u8>, ty: u8, s: &[u8]) {
    let st = begin_item(out, ty);
    out.extend_from_slice(s);
    end_item(out, st);
}

fn begin_pdu(out: &mut Vec<u8>, ty: u8) -> usize {
    out.extend_from_slice(&[ty, 0, 0, 0, 0, 0]);
    out.len()
}

fn end_pdu(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u32;
    out[start - 4..start].copy_from_slice(&len.to_be_bytes());
}

/// AE titles are 16 bytes, space padded (PS3.8 §9.3.2).
fn ae(out: &mut Vec<u8>, s: &str) {
    let mut b = [b' '; 16];
    let n = s.len().min(16);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    out.extend_from_slice(&b);
}

fn assoc_header(out: &mut Vec<u8>, version: u16, called: &str, calling: &str, app: &str) {
    put_u16(out, version);
    put_u16(out, 0);
    ae(out, called);
    ae(out, calling);
    out.extend_from_slice(&[0; 32]);
    text_item(out, code::APPLICATION_CONTEXT, app.as_bytes());
}

fn len_prefixed(out: &mut Vec<u8>, v: &[u8]) {
    put_u16(out, u16::try_from(v.len()).unwrap_or(u16::MAX));
    out.extend_from_slice(&v[..v.len().min(u16::MAX as usize)]);
}

fn user_info(out: &mut Vec<u8>, u: &UserInformation<'_>) {
    let st = begin_item(out, code::USER_INFORMATION);
    if let Some(max) = u.max_pdu_length {
        let s = begin_item(out, code::MAX_LENGTH);
        out.extend_from_slice(&max.to_be_bytes());
        end_item(out, s);
    }
    if let Some(uid) = u.implementation_class_uid {
        text_item(out, code::IMPLEMENTATION_CLASS_UID, uid.as_bytes());
    }
    if let Some((inv, perf)) = u.async_ops_window {
        let s = begin_item(out, code::ASYNC_OPS_WINDOW);
        put_u16(out, inv);
        put_u16(out, perf);
        end_item(out, s);
    }
    for r in &u.role_selections {
        let s = begin_item(out, code::ROLE_SELECTION);
        len_prefixed(out, r.sop_class_uid.as_bytes());
        out.push(u8::from(r.scu_role));
        out.push(u8::from(r.scp_role));
        end_item(out, s);
    }
    if let Some(name) = u.implementation_version_name {
        text_item(out, code::IMPLEMENTATION_VERSION_NAME, name.as_bytes());
    }
    for e in &u.sop_class_extended {
        let s = begin_item(out, code::SOP_CLASS_EXTENDED);
        len_prefixed(out, e.sop_class_uid.as_bytes());
        out.extend_from_slice(e.info);
        end_item(out, s);
    }
    for e in &u.sop_class_common_extended {
        let s = begin_item(out, code::SOP_CLASS_COMMON_EXTENDED);
        len_prefixed(out, e.sop_class_uid.as_bytes());
        len_prefixed(out, e.service_class_uid.as_bytes());
        let mut rel = Vec::new();
        for r in &e.related_general_sop_classes {
            len_prefixed(&mut rel, r.as_bytes());
        }
        len_prefixed(out, &rel);
        end_item(out, s);
    }
    if let Some(id) = &u.user_identity_rq {
        let s = begin_item(out, code::USER_IDENTITY_RQ);
        out.push(id.identity_type);
        out.push(u8::from(id.positive_response_requested));
        len_prefixed(out, id.primary);
        len_prefixed(out, id.secondary);
        end_item(out, s);
    }
    if let Some(resp) = u.user_identity_ac {
        let s = begin_item(out, code::USER_IDENTITY_AC);
        len_prefixed(out, resp);
        end_item(out, s);
    }
    for (t, v) in &u.unknown {
        text_item(out, *t, v);
    }
    end_item(out, st);
}

fn pc_rq(out: &mut Vec<u8>, pc: &PresentationContextRq<'_>) {
    let st = begin_item(out, code::PRESENTATION_CONTEXT_RQ);
    out.extend_from_slice(&[pc.id, 0, 0, 0]);
    text_item(out, code::ABSTRACT_SYNTAX, pc.abstract_syntax.as_bytes());
    for ts in &pc.transfer_syntaxes {
        text_item(out, code::TRANSFER_SYNTAX, ts.as_bytes());
    }
    end_item(out, st);
}

fn pc_ac(out: &mut Vec<u8>, pc: &PresentationContextAc<'_>) {
    let st = begin_item(out, code::PRESENTATION_CONTEXT_AC);
    out.extend_from_slice(&[pc.id, 0, pc.result.to_byte(), 0]);
    text_item(out, code::TRANSFER_SYNTAX, pc.transfer_syntax.as_bytes());
    end_item(out, st);
}

/// Appends an A-ASSOCIATE-RQ PDU (PS3.8 §9.3.2).
pub fn associate_rq(out: &mut Vec<u8>, rq: &AssociateRq<'_>) {
    let st = begin_pdu(out, code::ASSOCIATE_RQ);
    assoc_header(
        out,
        rq.protocol_version,
        rq.called_ae,
        rq.calling_ae,
        rq.application_context,
    );
    for pc in &rq.presentation_contexts {
        pc_rq(out, pc);
    }
    user_info(out, &rq.user);
    end_pdu(out, st);
}

/// Appends an A-ASSOCIATE-AC PDU (PS3.8 §9.3.3).
pub fn associate_ac(out: &mut Vec<u8>, ac: &AssociateAc<'_>) {
    let st = begin_pdu(out, code::ASSOCIATE_AC);
    assoc_header(
        out,
        ac.protocol_version,
        ac.called_ae,
        ac.calling_ae,
        ac.application_context,
    );
    for pc in &ac.presentation_contexts {
        pc_ac(out, pc);
    }
    user_info(out, &ac.user);
    end_pdu(out, st);
}

/// Appends an A-ASSOCIATE-RJ PDU (PS3.8 §9.3.4).
pub fn associate_rj(out: &mut Vec<u8>, rj: AssociateRj) {
    out.extend_from_slice(&[
        code::ASSOCIATE_RJ,
        0,
        0,
        0,
        0,
        4,
        0,
        rj.result,
        rj.source,
        rj.reason,
    ]);
}

/// Appends an A-RELEASE-RQ PDU (PS3.8 §9.3.6).
pub fn release_rq(out: &mut Vec<u8>) {
    out.extend_from_slice(&[code::RELEASE_RQ, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
}

/// Appends an A-RELEASE-RP PDU (PS3.8 §9.3.7).
pub fn release_rp(out: &mut Vec<u8>) {
    out.extend_from_slice(&[code::RELEASE_RP, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
}

/// Appends an A-ABORT PDU (PS3.8 §9.3.8).
pub fn abort(out: &mut Vec<u8>, source: u8, reason: u8) {
    out.extend_from_slice(&[code::ABORT, 0, 0, 0, 0, 4, 0, 0, source, reason]);
}

/// Header of a P-DATA-TF PDU holding a single PDV of `data_len` bytes: PDU header and PDV
/// header (12 bytes). Send it followed by the data, e.g. with one vectored write.
pub fn pdata_header(pc_id: u8, is_command: bool, is_last: bool, data_len: u32) -> [u8; 12] {
    let pdu_len = data_len + 6;
    let pdv_len = data_len + 2;
    let mut h = [0u8; 12];
    h[0] = code::P_DATA_TF;
    h[2..6].copy_from_slice(&pdu_len.to_be_bytes());
    h[6..10].copy_from_slice(&pdv_len.to_be_bytes());
    h[10] = pc_id;
    h[11] = u8::from(is_command) | (u8::from(is_last) << 1);
    h
}

/// Appends P-DATA-TF PDUs carrying one message part (command or data set), fragmented so
/// that no PDU exceeds `max_pdu` (the peer's maximum length receivable; 0 = unlimited).
/// PS3.8 §9.3.5 and annex E: each fragment is one PDV; the last has bit 1 set.
pub fn pdata_fragments(out: &mut Vec<u8>, pc_id: u8, is_command: bool, data: &[u8], max_pdu: u32) {
    let max_frag = max_fragment(max_pdu);
    if data.is_empty() {
        out.extend_from_slice(&pdata_header(pc_id, is_command, true, 0));
        return;
    }
    let mut chunks = data.chunks(max_frag).peekable();
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        out.extend_from_slice(&pdata_header(pc_id, is_command, last, chunk.len() as u32));
        out.extend_from_slice(chunk);
    }
}

/// Largest PDV payload for a peer maximum PDU length (0 = unlimited, capped at 1 MiB).
pub fn max_fragment(max_pdu: u32) -> usize {
    if max_pdu == 0 {
        1 << 20
    } else {
        (max_pdu.saturating_sub(6) as usize).max(1)
    }
}
