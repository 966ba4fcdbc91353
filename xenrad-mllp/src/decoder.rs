//! Incremental, linear-time MLLP deframer (sans-IO).
//!
//! The decoder is fed a growing [`BytesMut`]; it consumes bytes from the front as it goes and
//! remembers how far it has scanned inside an open frame, so every byte is examined once no
//! matter how the stream is split into reads (O(n) total). Payloads are split off the buffer
//! without copying.
//!
//! Rules (HL7 v2.5.1 ch. 2 appendix C.4, MLLP release 1 block format):
//! - a frame is `<VT> payload <FS><CR>`; only the pair `<FS><CR>` ends it, so a lone `<FS>`
//!   or a `<CR>` inside the payload is data;
//! - bytes before a start block (NULs, CR/LF keep-alives, stray bytes) are discarded and
//!   counted as garbage;
//! - a start block inside an open frame ends the partial frame as an error
//!   ([`DecodeError::Interrupted`]) and opens the next frame;
//! - a frame whose payload exceeds [`DecoderConfig::max_frame_size`] is reported
//!   ([`DecodeError::FrameTooLarge`]) as soon as the limit is crossed, and its remaining bytes
//!   are dropped as they arrive, so the buffer never holds more than the limit plus one read.

use bytes::{Buf, BytesMut};
use memchr::{memchr, memchr2};

use crate::error::DecodeError;
use crate::frame::{CARRIAGE_RETURN, END_BLOCK, Frame, START_BLOCK};

/// Default maximum payload size: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// Decoder limits and tolerances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// Largest accepted payload in bytes (framing bytes not included). Default 16 MiB.
    pub max_frame_size: usize,
    /// Accept a frame whose end block lacks the final `<CR>` when `<FS>` is directly followed
    /// by the next start block or by the end of the stream. Off by default (strict).
    pub allow_missing_final_cr: bool,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            allow_missing_final_cr: false,
        }
    }
}

impl DecoderConfig {
    /// Sets [`max_frame_size`](Self::max_frame_size).
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`allow_missing_final_cr`](Self::allow_missing_final_cr).
    #[must_use]
    pub fn allow_missing_final_cr(mut self, allow: bool) -> Self {
        self.allow_missing_final_cr = allow;
        self
    }
}

/// Counters kept by a [`Decoder`] over its lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames yielded (messages and commit blocks).
    pub frames: u64,
    /// Payload bytes yielded.
    pub payload_bytes: u64,
    /// Bytes consumed from the input in total.
    pub bytes_consumed: u64,
    /// Bytes discarded outside any frame (before a start block).
    pub garbage_bytes: u64,
    /// Bytes discarded from broken frames (interrupted, oversized, truncated).
    pub discarded_bytes: u64,
    /// Errors returned.
    pub errors: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between frames, looking for a start block.
    Idle,
    /// Inside a frame: the buffer starts at the payload; `scan` bytes of it are known to hold
    /// no terminator; `start` is the stream offset of the start block.
    InFrame { scan: usize, start: u64 },
    /// Dropping the rest of an oversized frame up to its end block or the next start block.
    Discarding,
}

/// Incremental MLLP deframer. See the [module documentation](self) for the rules.
///
/// ```
/// use bytes::BytesMut;
/// use xenrad_mllp::{Decoder, Frame};
///
/// let mut dec = Decoder::default();
/// let mut buf = BytesMut::from(&b"\r\n\x0bMSH|^~\\&|A\x1c"[..]);
/// assert_eq!(dec.decode(&mut buf), Ok(None)); // end block not complete yet
/// buf.extend_from_slice(b"\r\x0b\x06\x1c\r");
/// assert_eq!(dec.decode(&mut buf), Ok(Some(Frame::Message("MSH|^~\\&|A".into()))));
/// assert_eq!(dec.decode(&mut buf), Ok(Some(Frame::CommitAck)));
/// assert_eq!(dec.stats().garbage_bytes, 2);
/// ```
#[derive(Debug, Clone)]
pub struct Decoder {
    config: DecoderConfig,
    state: State,
    stats: DecoderStats,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DecoderConfig::default())
    }
}

impl Decoder {
    /// Creates a decoder with the given limits.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            stats: DecoderStats::default(),
        }
    }

    /// The decoder's configuration.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Counters since creation.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// True while a frame has been started but not finished (useful for a
    /// frame-completion timeout).
    pub fn in_frame(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// A hint for batching replies: true if, between frames, `buf` already holds a start
    /// block followed later by an end block, so the next [`decode`](Self::decode) call
    /// finishes a frame (or reports a broken one) without more input. Always false inside an
    /// open frame. Scans `buf` without consuming it or changing the decoder.
    ///
    /// ```
    /// use xenrad_mllp::Decoder;
    /// let dec = Decoder::default();
    /// assert!(dec.frame_ready(b"\x0bMSH|\x1c\r"));
    /// assert!(!dec.frame_ready(b"\x0bMSH|\x1c"));
    /// ```
    pub fn frame_ready(&self, buf: &[u8]) -> bool {
        if self.state != State::Idle {
            return false;
        }
        memchr(START_BLOCK, buf).is_some_and(|i| {
            memchr::memmem::find(&buf[i + 1..], &[END_BLOCK, CARRIAGE_RETURN]).is_some()
        })
    }

    /// Stream offset of the next byte the decoder will consume.
    pub fn position(&self) -> u64 {
        self.stats.bytes_consumed
    }

    fn consume(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n);
        self.stats.bytes_consumed += n as u64;
    }

    /// Drops the first `drop` buffered bytes of an oversized frame (the caller keeps any
    /// `<FS>`/`<VT>` that follows them for the discarding state to judge).
    fn too_large(&mut self, buf: &mut BytesMut, start: u64, drop: usize) -> DecodeError {
        self.consume(buf, drop);
        // +1 for the start block already consumed.
        self.stats.discarded_bytes += drop as u64 + 1;
        self.stats.errors += 1;
        self.state = State::Discarding;
        DecodeError::FrameTooLarge {
            offset: start,
            limit: self.config.max_frame_size,
        }
    }

    fn finish_frame(&mut self, buf: &mut BytesMut, len: usize, end_len: usize) -> Frame {
        let payload = buf.split_to(len).freeze();
        self.stats.bytes_consumed += len as u64;
        self.consume(buf, end_len);
        self.stats.frames += 1;
        self.stats.payload_bytes += len as u64;
        self.state = State::Idle;
        Frame::from_payload(payload)
    }

    /// Decodes the next frame from the front of `buf`, consuming its bytes.
    ///
    /// Returns `Ok(None)` when more input is needed (everything in `buf` that can be judged
    /// has been consumed or scanned). After an `Err`, the decoder has resynchronised: call
    /// again to continue with the rest of the buffer.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        loop {
            match self.state {
                State::Idle => match memchr(START_BLOCK, buf) {
                    None => {
                        self.stats.garbage_bytes += buf.len() as u64;
                        let n = buf.len();
                        self.consume(buf, n);
                        return Ok(None);
                    }
                    Some(i) => {
                        self.stats.garbage_bytes += i as u64;
                        let start = self.stats.bytes_consumed + i as u64;
                        self.consume(buf, i + 1);
                        self.state = State::InFrame { scan: 0, start };
                    }
                },
                State::InFrame { scan, start } => {
                    let max = self.config.max_frame_size;
                    let Some(j) = memchr2(END_BLOCK, START_BLOCK, &buf[scan..]) else {
                        if buf.len() > max {
                            let n = buf.len();
                            return Err(self.too_large(buf, start, n));
                        }
                        self.state = State::InFrame {
                            scan: buf.len(),
                            start,
                        };
                        return Ok(None);
                    };
                    let pos = scan + j;
                    if pos > max {
                        return Err(self.too_large(buf, start, pos));
                    }
                    if buf[pos] == START_BLOCK {
                        // A new start block inside an open frame (appendix C.4.2: the
                        // receiver discards the partial block).
                        self.consume(buf, pos);
                        self.stats.discarded_bytes += pos as u64 + 1;
                        self.stats.errors += 1;
                        self.state = State::Idle;
                        return Err(DecodeError::Interrupted {
                            offset: start,
                            len: pos,
                        });
                    }
                    match buf.get(pos + 1) {
                        None => {
                            // <FS> is the last byte: re-examine it when more arrives.
                            self.state = State::InFrame { scan: pos, start };
                            return Ok(None);
                        }
                        Some(&CARRIAGE_RETURN) => return Ok(Some(self.finish_frame(buf, pos, 2))),
                        Some(&START_BLOCK) if self.config.allow_missing_final_cr => {
                            return Ok(Some(self.finish_frame(buf, pos, 1)));
                        }
                        Some(_) => {
                            // A lone <FS> is payload data.
                            self.state = State::InFrame {
                                scan: pos + 1,
                                start,
                            };
                        }
                    }
                }
                State::Discarding => match memchr2(END_BLOCK, START_BLOCK, buf) {
                    None => {
                        let n = buf.len();
                        self.stats.discarded_bytes += n as u64;
                        self.consume(buf, n);
                        return Ok(None);
                    }
                    Some(pos) if buf[pos] == START_BLOCK => {
                        self.stats.discarded_bytes += pos as u64;
                        self.consume(buf, pos);
                        self.state = State::Idle;
                    }
                    Some(pos) => match buf.get(pos + 1) {
                        None => {
                            self.stats.discarded_bytes += pos as u64;
                            self.consume(buf, pos);
                            return Ok(None);
                        }
                        Some(&CARRIAGE_RETURN) => {
                            self.stats.discarded_bytes += pos as u64 + 2;
                            self.consume(buf, pos + 2);
                            self.state = State::Idle;
                        }
                        Some(_) => {
                            self.stats.discarded_bytes += pos as u64 + 1;
                            self.consume(buf, pos + 1);
                        }
                    },
                },
            }
        }
    }

    /// Like [`decode`](Self::decode), for the end of the stream: a frame still open is
    /// reported as [`DecodeError::Truncated`] (or yielded, when it ends in `<FS>` and
    /// [`DecoderConfig::allow_missing_final_cr`] is set), and the buffer is emptied.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        match self.state {
            State::Idle => Ok(None),
            State::Discarding => {
                let n = buf.len();
                self.stats.discarded_bytes += n as u64;
                self.consume(buf, n);
                self.state = State::Idle;
                Ok(None)
            }
            State::InFrame { start, .. } => {
                let n = buf.len();
                if self.config.allow_missing_final_cr && buf.last() == Some(&END_BLOCK) {
                    return Ok(Some(self.finish_frame(buf, n - 1, 1)));
                }
                self.stats.discarded_bytes += n as u64 + 1;
                self.stats.errors += 1;
                self.consume(buf, n);
                self.state = State::Idle;
                Err(DecodeError::Truncated {
                    offset: start,
                    len: n,
                })
            }
        }
    }
}
