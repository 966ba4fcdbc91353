//! MLLP block characters and frame kinds (HL7 v2.5.1 ch. 2 appendix C, "MLLP release 1 and 2").
//!
//! A block is `<VT> payload <FS><CR>`: start block `0x0B`, end block `0x1C 0x0D`.
//! MLLP release 2 adds commit acknowledgement blocks whose payload is one byte:
//! `<ACK>` (`0x06`) for a positive and `<NAK>` (`0x15`) for a negative commit acknowledgement.

use bytes::Bytes;

/// Start block character `<VT>` (`0x0B`).
pub const START_BLOCK: u8 = 0x0B;
/// First end block character `<FS>` (`0x1C`).
pub const END_BLOCK: u8 = 0x1C;
/// Second end block character `<CR>` (`0x0D`).
pub const CARRIAGE_RETURN: u8 = 0x0D;
/// Release 2 positive commit acknowledgement payload byte `<ACK>` (`0x06`).
pub const COMMIT_ACK_BYTE: u8 = 0x06;
/// Release 2 negative commit acknowledgement payload byte `<NAK>` (`0x15`).
pub const COMMIT_NAK_BYTE: u8 = 0x15;

/// Bytes added around a payload by framing: `<VT>` before, `<FS><CR>` after.
pub const FRAMING_OVERHEAD: usize = 3;

/// The complete release 2 positive commit acknowledgement block.
pub const COMMIT_ACK_BLOCK: [u8; 4] = [START_BLOCK, COMMIT_ACK_BYTE, END_BLOCK, CARRIAGE_RETURN];
/// The complete release 2 negative commit acknowledgement block.
pub const COMMIT_NAK_BLOCK: [u8; 4] = [START_BLOCK, COMMIT_NAK_BYTE, END_BLOCK, CARRIAGE_RETURN];

/// One decoded MLLP block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A content block: the payload between `<VT>` and `<FS><CR>` (an HL7 message, usually).
    Message(Bytes),
    /// MLLP release 2 positive commit acknowledgement (`<VT><ACK><FS><CR>`).
    CommitAck,
    /// MLLP release 2 negative commit acknowledgement (`<VT><NAK><FS><CR>`).
    CommitNak,
}

impl Frame {
    /// Classifies a payload: a one-byte `0x06`/`0x15` payload is a release 2 commit block.
    pub fn from_payload(payload: Bytes) -> Self {
        match payload.as_ref() {
            [COMMIT_ACK_BYTE] => Frame::CommitAck,
            [COMMIT_NAK_BYTE] => Frame::CommitNak,
            _ => Frame::Message(payload),
        }
    }

    /// The payload bytes this frame carries on the wire.
    pub fn payload(&self) -> &[u8] {
        match self {
            Frame::Message(b) => b,
            Frame::CommitAck => &[COMMIT_ACK_BYTE],
            Frame::CommitNak => &[COMMIT_NAK_BYTE],
        }
    }

    /// The message payload, or `None` for a commit block.
    pub fn into_message(self) -> Option<Bytes> {
        match self {
            Frame::Message(b) => Some(b),
            Frame::CommitAck | Frame::CommitNak => None,
        }
    }
}
