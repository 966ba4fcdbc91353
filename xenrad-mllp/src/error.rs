//! Error values of the codec. Every decode error names the stream byte offset where the
//! offending frame started, so a log line can point at the exact place in a capture.

/// A framing error found while decoding. The decoder has already resynchronised when it
/// returns one of these: call [`Decoder::decode`](crate::Decoder::decode) again to go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A frame grew past the configured maximum payload size. Its bytes are discarded
    /// (never buffered past the limit) up to its end block or the next start block.
    #[error("MLLP frame starting at byte {offset} exceeds the limit of {limit} payload bytes")]
    FrameTooLarge {
        /// Stream offset of the frame's start block.
        offset: u64,
        /// The configured maximum payload size.
        limit: usize,
    },
    /// A start block arrived inside an open frame: the partial frame is dropped and the
    /// new start block opens the next frame.
    #[error(
        "MLLP frame starting at byte {offset} was interrupted by a new start block after {len} payload bytes"
    )]
    Interrupted {
        /// Stream offset of the interrupted frame's start block.
        offset: u64,
        /// Payload bytes of the interrupted frame that were discarded.
        len: usize,
    },
    /// The stream ended inside a frame.
    #[error(
        "MLLP stream ended inside the frame starting at byte {offset} after {len} payload bytes"
    )]
    Truncated {
        /// Stream offset of the truncated frame's start block.
        offset: u64,
        /// Payload bytes received before the end of the stream.
        len: usize,
    },
}

/// A payload that cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The payload contains a start block byte `0x0B`, which would open a new frame.
    #[error("payload contains a start block byte 0x0B at offset {offset}")]
    ContainsStartBlock {
        /// Offset of the byte in the payload.
        offset: usize,
    },
    /// The payload contains the end block sequence `0x1C 0x0D`, which would end the frame early.
    #[error("payload contains the end block sequence 0x1C 0x0D at offset {offset}")]
    ContainsEndBlock {
        /// Offset of the `0x1C` in the payload.
        offset: usize,
    },
    /// The payload is larger than the configured maximum.
    #[error("payload of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// The configured maximum payload size.
        limit: usize,
    },
}
