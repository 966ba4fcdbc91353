//! Incremental PDU framing: bytes in any number of reads, complete PDUs out.
//!
//! The header (6 bytes) is checked as soon as it arrives: an unknown PDU type or a length
//! above the limit is reported before any of the body is buffered (PS3.8 §9.3.1, annex D.1).
//! A frame is returned as [`bytes::Bytes`] split off the receive buffer without copying.

use super::{PDU_HEADER_LEN, PduError, PduErrorKind, code, peek_header};
use bytes::{Bytes, BytesMut};

/// Limits applied by a [`PduReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Largest P-DATA-TF length accepted (our Maximum Length Receivable; 0 = no limit, not advised).
    pub max_pdata_len: u32,
    /// Largest length of any other PDU (association negotiation).
    pub max_other_len: u32,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        Self {
            max_pdata_len: 1 << 20,
            max_other_len: 1 << 16,
        }
    }
}

/// Cuts a byte stream into complete PDUs.
///
/// ```
/// use xenrad_dimse::pdu::{Pdu, reader::{PduReader, ReaderLimits}};
/// let mut r = PduReader::new(ReaderLimits::default());
/// r.push(&[0x05, 0, 0, 0]);
/// assert!(r.next_frame().unwrap().is_none()); // partial
/// r.push(&[0, 4, 0, 0, 0, 0]);
/// let frame = r.next_frame().unwrap().unwrap();
/// assert_eq!(Pdu::parse(&frame).unwrap(), Pdu::ReleaseRq);
/// ```
#[derive(Debug)]
pub struct PduReader {
    limits: ReaderLimits,
    buf: BytesMut,
    /// Total length (header + body) of the PDU being received, once its header was checked.
    pending: Option<usize>,
    /// Bytes consumed before the start of `buf`, for error offsets.
    consumed: u64,
}

impl PduReader {
    /// A reader with the given limits.
    pub fn new(limits: ReaderLimits) -> Self {
        Self {
            limits,
            buf: BytesMut::new(),
            pending: None,
            consumed: 0,
        }
    }

    /// Changes the limits (e.g. once negotiation fixed the maximum PDU length).
    pub fn set_limits(&mut self, limits: ReaderLimits) {
        self.limits = limits;
    }

    /// The limits in force.
    pub fn limits(&self) -> ReaderLimits {
        self.limits
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer, for transports that read straight into it (`read_buf`). At least
    /// 64 KiB (or the rest of the current PDU, up to 256 KiB) of spare capacity is reserved
    /// so one read drains the socket: an emptied receive queue lets the kernel ACK at once,
    /// which keeps a Nagle-enabled sender from stalling on its last segment. Memory stays
    /// bounded by the PDU limit plus that read-ahead.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        let rest = self
            .pending
            .map_or(0, |total| total.saturating_sub(self.buf.len()));
        let want = rest.clamp(64 << 10, 256 << 10);
        if self.buf.capacity() - self.buf.len() < want {
            self.buf.reserve(want);
        }
        &mut self.buf
    }

    /// Number of buffered bytes not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete PDU (header included), `Ok(None)` if more bytes are needed,
    /// or an error for an unknown PDU type or an oversized length. After an error the stream
    /// cannot be resynchronised; the association must be aborted.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, PduError> {
        let total = if let Some(t) = self.pending {
            t
        } else {
            let Some((ty, len)) = peek_header(&self.buf) else {
                return Ok(None);
            };
            let limit = match ty {
                code::P_DATA_TF => self.limits.max_pdata_len,
                code::ASSOCIATE_RQ | code::ASSOCIATE_AC => self.limits.max_other_len,
                code::ASSOCIATE_RJ | code::RELEASE_RQ | code::RELEASE_RP | code::ABORT => 4,
                other => {
                    return Err(PduError {
                        offset: 0,
                        kind: PduErrorKind::UnknownPduType(other),
                    });
                }
            };
            if limit != 0 && len > limit {
                return Err(PduError {
                    offset: 2,
                    kind: PduErrorKind::TooLong { length: len, limit },
                });
            }
            let t = PDU_HEADER_LEN + len as usize;
            self.pending = Some(t);
            t
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        self.pending = None;
        self.consumed += total as u64;
        Ok(Some(self.buf.split_to(total).freeze()))
    }

    /// Total bytes returned as frames so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }
}
