//! MLLP framing of outgoing payloads (HL7 v2.5.1 ch. 2 appendix C.4.1 block format).

use bytes::{BufMut, Bytes, BytesMut};
use memchr::memchr2;

use crate::decoder::DEFAULT_MAX_FRAME_SIZE;
use crate::error::EncodeError;
use crate::frame::{
    CARRIAGE_RETURN, COMMIT_ACK_BLOCK, COMMIT_NAK_BLOCK, END_BLOCK, FRAMING_OVERHEAD, Frame,
    START_BLOCK,
};

/// Frames payloads, refusing any payload that the receiving side would split or cut short.
///
/// ```
/// use bytes::BytesMut;
/// use xenrad_mllp::Encoder;
///
/// let mut out = BytesMut::new();
/// Encoder::default().encode(b"MSH|^~\\&|A\r", &mut out).unwrap();
/// assert_eq!(&out[..], b"\x0bMSH|^~\\&|A\r\x1c\r");
/// assert!(Encoder::default().encode(b"bad\x1c\rpayload", &mut out).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoder {
    max_frame_size: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

impl Encoder {
    /// An encoder refusing payloads larger than `max_frame_size` bytes.
    pub fn new(max_frame_size: usize) -> Self {
        Self { max_frame_size }
    }

    /// Appends `<VT> payload <FS><CR>` to `dst` after checking the payload.
    pub fn encode(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), EncodeError> {
        check_payload(payload, self.max_frame_size)?;
        dst.reserve(payload.len() + FRAMING_OVERHEAD);
        dst.put_u8(START_BLOCK);
        dst.put_slice(payload);
        dst.put_slice(&[END_BLOCK, CARRIAGE_RETURN]);
        Ok(())
    }

    /// Appends a [`Frame`] (message or release 2 commit block) to `dst`.
    pub fn encode_frame(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match frame {
            Frame::Message(p) => self.encode(p, dst),
            Frame::CommitAck => {
                dst.put_slice(&COMMIT_ACK_BLOCK);
                Ok(())
            }
            Frame::CommitNak => {
                dst.put_slice(&COMMIT_NAK_BLOCK);
                Ok(())
            }
        }
    }

    /// Frames one payload into a new buffer.
    pub fn to_bytes(&self, payload: &[u8]) -> Result<Bytes, EncodeError> {
        let mut dst = BytesMut::with_capacity(payload.len() + FRAMING_OVERHEAD);
        self.encode(payload, &mut dst)?;
        Ok(dst.freeze())
    }
}

/// Checks that `payload` can be framed: no start block byte, no `<FS><CR>` pair, size within
/// `limit`. A lone `<FS>` is allowed (the decoder treats it as data).
pub fn check_payload(payload: &[u8], limit: usize) -> Result<(), EncodeError> {
    if payload.len() > limit {
        return Err(EncodeError::TooLarge {
            len: payload.len(),
            limit,
        });
    }
    let mut from = 0;
    while let Some(i) = memchr2(START_BLOCK, END_BLOCK, &payload[from..]) {
        let pos = from + i;
        if payload[pos] == START_BLOCK {
            return Err(EncodeError::ContainsStartBlock { offset: pos });
        }
        if payload.get(pos + 1) == Some(&CARRIAGE_RETURN) {
            return Err(EncodeError::ContainsEndBlock { offset: pos });
        }
        from = pos + 1;
    }
    Ok(())
}
