//! tokio-util [`Decoder`](tokio_util::codec::Decoder)/[`Encoder`](tokio_util::codec::Encoder)
//! over the sans-IO core, for use with `Framed`, `FramedRead` and `FramedWrite`.

use bytes::{Bytes, BytesMut};

use crate::{DecodeError, Decoder, DecoderConfig, EncodeError, Encoder, Frame};

/// Error of [`MllpCodec`]: framing errors plus the I/O errors `Framed` passes through.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Bad framing on input.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A payload that cannot be framed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Transport error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// MLLP codec yielding [`Frame`]s and framing [`Frame`]s, [`Bytes`] or byte slices.
///
/// A `Framed` stream ends at the first error it sees; since the sans-IO [`Decoder`] has
/// already resynchronised, a caller that wants to keep going after an
/// [`DecodeError::Interrupted`] can drive [`Decoder`] directly (as the `server` module does).
#[derive(Debug, Clone, Default)]
pub struct MllpCodec {
    decoder: Decoder,
    encoder: Encoder,
}

impl MllpCodec {
    /// A codec with the given decoder limits; the encoder uses the same frame size limit.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            decoder: Decoder::new(config),
            encoder: Encoder::new(config.max_frame_size),
        }
    }

    /// The underlying decoder (for its counters).
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }
}

impl tokio_util::codec::Decoder for MllpCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.decoder.decode(src)?)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        Ok(self.decoder.decode_eof(src)?)
    }
}

impl tokio_util::codec::Encoder<Frame> for MllpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encoder.encode_frame(&item, dst)?)
    }
}

impl tokio_util::codec::Encoder<Bytes> for MllpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encoder.encode(&item, dst)?)
    }
}

impl tokio_util::codec::Encoder<&[u8]> for MllpCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.encoder.encode(item, dst)?)
    }
}
