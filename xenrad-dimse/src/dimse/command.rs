//! Command sets (PS3.7 §9.3, §10.3 and annex E): group 0000, always Implicit VR Little Endian.
//!
//! Element headers are read and written with `dicom-encoding`'s Implicit VR Little Endian
//! codec; values are borrowed from the input.

use dicom_core::{DataElementHeader, Length, Tag, VR};
use dicom_encoding::decode::Decode;
use dicom_encoding::decode::implicit_le::ImplicitVRLittleEndianDecoder;
use dicom_encoding::encode::Encode;
use dicom_encoding::encode::implicit_le::ImplicitVRLittleEndianEncoder;

/// Command Field values (PS3.7 annex E.1).
pub mod field {
    /// C-STORE-RQ.
    pub const C_STORE_RQ: u16 = 0x0001;
    /// C-STORE-RSP.
    pub const C_STORE_RSP: u16 = 0x8001;
    /// C-GET-RQ.
    pub const C_GET_RQ: u16 = 0x0010;
    /// C-FIND-RQ.
    pub const C_FIND_RQ: u16 = 0x0020;
    /// C-MOVE-RQ.
    pub const C_MOVE_RQ: u16 = 0x0021;
    /// C-ECHO-RQ.
    pub const C_ECHO_RQ: u16 = 0x0030;
    /// C-ECHO-RSP.
    pub const C_ECHO_RSP: u16 = 0x8030;
    /// N-EVENT-REPORT-RQ.
    pub const N_EVENT_REPORT_RQ: u16 = 0x0100;
    /// N-GET-RQ.
    pub const N_GET_RQ: u16 = 0x0110;
    /// N-SET-RQ.
    pub const N_SET_RQ: u16 = 0x0120;
    /// N-SET-RSP.
    pub const N_SET_RSP: u16 = 0x8120;
    /// N-ACTION-RQ.
    pub const N_ACTION_RQ: u16 = 0x0130;
    /// N-CREATE-RQ.
    pub const N_CREATE_RQ: u16 = 0x0140;
    /// N-CREATE-RSP.
    pub const N_CREATE_RSP: u16 = 0x8140;
    /// N-DELETE-RQ.
    pub const N_DELETE_RQ: u16 = 0x0150;
    /// C-CANCEL-RQ.
    pub const C_CANCEL_RQ: u16 = 0x0FFF;
}

/// DIMSE status codes used here (PS3.7 annex C, PS3.4 B.2.3).
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Unrecognized operation.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
    /// Processing failure.
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    /// No such SOP class.
    pub const NO_SUCH_SOP_CLASS: u16 = 0x0118;
    /// Refused: out of resources (storage, PS3.4 B.2.3).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: data set does not match SOP class (storage).
    pub const DATASET_MISMATCH: u16 = 0xA900;
    /// Error: cannot understand (storage); unable to process (query/retrieve, PS3.4 C.4.1.1.4).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Failed: identifier does not match SOP class (query/retrieve, PS3.4 C.4.1.1.4).
    pub const IDENTIFIER_MISMATCH: u16 = 0xA900;
    /// Refused: move destination unknown (PS3.4 C.4.2.1.5).
    pub const MOVE_DESTINATION_UNKNOWN: u16 = 0xA801;
    /// Refused: out of resources, unable to perform sub-operations (PS3.4 C.4.2.1.5).
    pub const OUT_OF_RESOURCES_SUBOPS: u16 = 0xA702;
    /// Warning: sub-operations complete, one or more failures (PS3.4 C.4.2.1.5).
    pub const SUBOPS_WARNING: u16 = 0xB000;
    /// Cancel: matching or sub-operations terminated by a C-CANCEL (PS3.4 C.4.1.1.4).
    pub const CANCEL: u16 = 0xFE00;
    /// Pending: matches are continuing (PS3.4 C.4.1.1.4).
    pub const PENDING: u16 = 0xFF00;
    /// Pending: matches continue, optional keys not supported (PS3.4 C.4.1.1.4).
    pub const PENDING_WARNING: u16 = 0xFF01;
}

/// (0000,0800) value meaning "no data set" (PS3.7 E.1).
pub const NO_DATASET: u16 = 0x0101;

/// A command set view; strings borrow the encoded bytes (trailing padding removed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command<'a> {
    /// (0000,0100) Command Field.
    pub field: u16,
    /// (0000,0110) Message ID.
    pub message_id: Option<u16>,
    /// (0000,0120) Message ID Being Responded To.
    pub responded_to: Option<u16>,
    /// (0000,0002) Affected SOP Class UID.
    pub affected_sop_class: Option<&'a str>,
    /// (0000,1000) Affected SOP Instance UID.
    pub affected_sop_instance: Option<&'a str>,
    /// (0000,0003) Requested SOP Class UID.
    pub requested_sop_class: Option<&'a str>,
    /// (0000,1001) Requested SOP Instance UID.
    pub requested_sop_instance: Option<&'a str>,
    /// (0000,0700) Priority.
    pub priority: Option<u16>,
    /// (0000,0800) Command Data Set Type != 0x0101.
    pub has_dataset: bool,
    /// (0000,0900) Status.
    pub status: Option<u16>,
    /// (0000,0902) Error Comment.
    pub error_comment: Option<&'a str>,
    /// (0000,0903) Error ID (PS3.7 C.4), e.g. 0xA710 for an MPPS that may no longer be updated.
    pub error_id: Option<u16>,
    /// (0000,1030) Move Originator Application Entity Title.
    pub move_originator_ae: Option<&'a str>,
    /// (0000,1031) Move Originator Message ID.
    pub move_originator_id: Option<u16>,
    /// (0000,0600) Move Destination (C-MOVE-RQ).
    pub move_destination: Option<&'a str>,
    /// (0000,1002) Event Type ID (N-EVENT-REPORT).
    pub event_type_id: Option<u16>,
    /// (0000,1008) Action Type ID (N-ACTION).
    pub action_type_id: Option<u16>,
    /// (0000,1020) Number of Remaining Sub-operations (C-MOVE/C-GET responses).
    pub remaining: Option<u16>,
    /// (0000,1021) Number of Completed Sub-operations.
    pub completed: Option<u16>,
    /// (0000,1022) Number of Failed Sub-operations.
    pub failed: Option<u16>,
    /// (0000,1023) Number of Warning Sub-operations.
    pub warning: Option<u16>,
}

/// A command set that could not be decoded, with the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid command set at byte {offset}: {reason}")]
pub struct CommandError {
    /// Byte offset into the command set.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

fn cerr(offset: usize, reason: &'static str) -> CommandError {
    CommandError { offset, reason }
}

fn us(v: &[u8], off: usize) -> Result<u16, CommandError> {
    match v {
        [a, b] => Ok(u16::from_le_bytes([*a, *b])),
        _ => Err(cerr(off, "US value is not 2 bytes")),
    }
}

fn text(v: &[u8], off: usize) -> Result<&str, CommandError> {
    let s = std::str::from_utf8(v).map_err(|_| cerr(off, "text value is not UTF-8"))?;
    Ok(s.trim_end_matches(['\0', ' ']).trim_start_matches(' '))
}

impl<'a> Command<'a> {
    /// Decodes a command set (PS3.7 §6.3.1, annex E). Unknown group-0000 elements are skipped;
    /// a wrong group length, an element outside group 0000, a truncated element or a
    /// missing Command Field is an error.
    pub fn decode(data: &'a [u8]) -> Result<Self, CommandError> {
        let dec = ImplicitVRLittleEndianDecoder::default();
        let mut cmd = Command::default();
        let mut have_field = false;
        let mut pos = 0usize;
        let mut group_end: Option<usize> = None;
        while pos < data.len() {
            let mut src = &data[pos..];
            let (hdr, hlen) = dec
                .decode_header(&mut src)
                .map_err(|_| cerr(pos, "truncated element header"))?;
            let tag = hdr.tag;
            if tag.group() != 0 {
                return Err(cerr(pos, "element outside group 0000"));
            }
            let len = hdr
                .len
                .get()
                .ok_or(cerr(pos, "undefined length in a command set"))?
                as usize;
            let vstart = pos + hlen;
            if data.len() - vstart < len {
                return Err(cerr(pos, "element value runs past the end"));
            }
            let v = &data[vstart..vstart + len];
            match tag.element() {
                0x0000 => {
                    let gl = match v {
                        [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]) as usize,
                        _ => return Err(cerr(pos, "group length is not 4 bytes")),
                    };
                    group_end = Some(vstart + len + gl);
                }
                0x0002 => cmd.affected_sop_class = Some(text(v, vstart)?),
                0x0003 => cmd.requested_sop_class = Some(text(v, vstart)?),
                0x0100 => {
                    cmd.field = us(v, vstart)?;
                    have_field = true;
                }
                0x0110 => cmd.message_id = Some(us(v, vstart)?),
                0x0120 => cmd.responded_to = Some(us(v, vstart)?),
                0x0700 => cmd.priority = Some(us(v, vstart)?),
                0x0800 => cmd.has_dataset = us(v, vstart)? != NO_DATASET,
                0x0900 => cmd.status = Some(us(v, vstart)?),
                0x0902 => cmd.error_comment = Some(text(v, vstart)?),
                0x0903 => cmd.error_id = Some(us(v, vstart)?),
                0x1000 => cmd.affected_sop_instance = Some(text(v, vstart)?),
                0x1001 => cmd.requested_sop_instance = Some(text(v, vstart)?),
                0x1030 => cmd.move_originator_ae = Some(text(v, vstart)?),
                0x1031 => cmd.move_originator_id = Some(us(v, vstart)?),
                0x0600 => cmd.move_destination = Some(text(v, vstart)?),
                0x1002 => cmd.event_type_id = Some(us(v, vstart)?),
                0x1008 => cmd.action_type_id = Some(us(v, vstart)?),
                0x1020 => cmd.remaining = Some(us(v, vstart)?),
                0x1021 => cmd.completed = Some(us(v, vstart)?),
                0x1022 => cmd.failed = Some(us(v, vstart)?),
                0x1023 => cmd.warning = Some(us(v, vstart)?),
                _ => {}
            }
            pos = vstart + len;
        }
        if let Some(end) = group_end
            && end != data.len()
        {
            return Err(cerr(
                0,
                "command group length does not match the command set",
            ));
        }
        if !have_field {
            return Err(cerr(0, "missing Command Field (0000,0100)"));
        }
        Ok(cmd)
    }

    /// Encodes the command set with its group length (PS3.7 §6.3.1): elements in tag order,
    /// UIDs padded with NUL and text with spaces to even length.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(192);
        let enc = ImplicitVRLittleEndianEncoder::default();
        let mut put = |el: u16, vr: VR, v: &[u8], pad: u8| {
            let padded = v.len() + (v.len() & 1);
            let hdr = DataElementHeader::new(Tag(0, el), vr, Length(padded as u32));
            let _ = enc.encode_element_header(&mut body, hdr);
            body.extend_from_slice(v);
            if v.len() & 1 == 1 {
                body.push(pad);
            }
        };
        if let Some(s) = self.affected_sop_class {
            put(0x0002, VR::UI, s.as_bytes(), 0);
        }
        if let Some(s) = self.requested_sop_class {
            put(0x0003, VR::UI, s.as_bytes(), 0);
        }
        put(0x0100, VR::US, &self.field.to_le_bytes(), 0);
        if let Some(id) = self.message_id {
            put(0x0110, VR::US, &id.to_le_bytes(), 0);
        }
        if let Some(id) = self.responded_to {
            put(0x0120, VR::US, &id.to_le_bytes(), 0);
        }
        if let Some(s) = self.move_destination {
            put(0x0600, VR::AE, s.as_bytes(), b' ');
        }
        if let Some(p) = self.priority {
            put(0x0700, VR::US, &p.to_le_bytes(), 0);
        }
        // PS3.7 E.1: 0x0101 = no data set; any other value means one follows.
        let dst = if self.has_dataset {
            0x0001u16
        } else {
            NO_DATASET
        };
        put(0x0800, VR::US, &dst.to_le_bytes(), 0);
        if let Some(s) = self.status {
            put(0x0900, VR::US, &s.to_le_bytes(), 0);
        }
        if let Some(s) = self.error_comment {
            put(0x0902, VR::LO, s.as_bytes(), b' ');
        }
        if let Some(id) = self.error_id {
            put(0x0903, VR::US, &id.to_le_bytes(), 0);
        }
        if let Some(s) = self.affected_sop_instance {
            put(0x1000, VR::UI, s.as_bytes(), 0);
        }
        if let Some(s) = self.requested_sop_instance {
            put(0x1001, VR::UI, s.as_bytes(), 0);
        }
        if let Some(id) = self.event_type_id {
            put(0x1002, VR::US, &id.to_le_bytes(), 0);
        }
        if let Some(id) = self.action_type_id {
            put(0x1008, VR::US, &id.to_le_bytes(), 0);
        }
        for (el, n) in [
            (0x1020, self.remaining),
            (0x1021, self.completed),
            (0x1022, self.failed),
            (0x1023, self.warning),
        ] {
            if let Some(n) = n {
                put(el, VR::US, &n.to_le_bytes(), 0);
            }
        }
        if let Some(s) = self.move_originator_ae {
            put(0x1030, VR::AE, s.as_bytes(), b' ');
        }
        if let Some(id) = self.move_originator_id {
            put(0x1031, VR::US, &id.to_le_bytes(), 0);
        }
        let mut out = Vec::with_capacity(body.len() + 12);
        let hdr = DataElementHeader::new(Tag(0, 0), VR::UL, Length(4));
        let _ = enc.encode_element_header(&mut out, hdr);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// The response to this request (PS3.7 §9.3): field | 0x8000, the request's Message ID
    /// as Message ID Being Responded To, the affected SOP class/instance echoed.
    #[must_use]
    pub fn response(&self, status: u16) -> Command<'a> {
        Command {
            field: self.field | 0x8000,
            responded_to: self.message_id,
            affected_sop_class: self.affected_sop_class.or(self.requested_sop_class),
            affected_sop_instance: self.affected_sop_instance.or(self.requested_sop_instance),
            status: Some(status),
            ..Command::default()
        }
    }

    /// True for a request (Command Field bit 15 clear).
    pub fn is_request(&self) -> bool {
        self.field & 0x8000 == 0
    }
}
