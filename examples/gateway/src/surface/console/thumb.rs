//! Thumbnails of stored instances: the first frame decoded with `dicom-pixeldata` (built
//! without default features, with `native`: the uncompressed transfer syntaxes — Implicit
//! and Explicit VR Little Endian, Explicit VR Big Endian —, Deflated Explicit VR Little
//! Endian, RLE Lossless, and JPEG Baseline, Extended and Lossless through the pure-Rust
//! `jpeg-decoder`; not JPEG-LS, JPEG 2000, HTJ2K or JPEG XL), windowed (the instance's first
//! window, else its value range) to 8 bits, scaled down and written as a PNG by the small
//! encoder below (stored deflate blocks: a thumbnail is a few KiB, and it keeps the `image`
//! crate and its codecs out of the build).

use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder, VoiLutOption};

/// Longest side of a thumbnail, pixels.
pub const SIZE: u32 = 160;

/// Why there is no thumbnail.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    /// The file could not be read as DICOM.
    #[error("cannot read the file: {0}")]
    Read(String),
    /// The pixel data could not be decoded (e.g. an unsupported transfer syntax).
    #[error("cannot decode the pixel data: {0}")]
    Decode(String),
}

/// A PNG thumbnail of the first frame of the Part 10 file at `path`.
#[allow(
    clippy::many_single_char_names,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)] // pixel arithmetic on clamped, non-negative values
pub fn thumbnail(path: &std::path::Path) -> Result<Vec<u8>, ThumbError> {
    let obj = dicom_object::open_file(path).map_err(|e| ThumbError::Read(e.to_string()))?;
    let d = obj
        .decode_pixel_data_frame(0)
        .map_err(|e| ThumbError::Decode(e.to_string()))?;
    let (w, h) = (d.columns(), d.rows());
    if w == 0 || h == 0 {
        return Err(ThumbError::Decode("empty image".into()));
    }
    let spp = usize::from(d.samples_per_pixel());
    let gray = d.photometric_interpretation().is_monochrome();
    let pixels: Vec<u8> = if gray {
        let opts = ConvertOptions::new()
            .with_modality_lut(ModalityLutOption::Default)
            .with_voi_lut(VoiLutOption::Identity);
        let v: Vec<f32> = d
            .to_vec_frame_with_options(0, &opts)
            .map_err(|e| ThumbError::Decode(e.to_string()))?;
        let (lo, hi) = match d.window().ok().flatten().and_then(|w| w.first().copied()) {
            Some(wl) if wl.width > 1.0 => (
                (wl.center - wl.width / 2.0) as f32,
                (wl.center + wl.width / 2.0) as f32,
            ),
            _ => v
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x))),
        };
        let span = (hi - lo).max(f32::EPSILON);
        let invert = d.photometric_interpretation().to_string() == "MONOCHROME1";
        v.iter()
            .map(|&x| {
                let g = (((x - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8;
                if invert { 255 - g } else { g }
            })
            .collect()
    } else {
        let opts = ConvertOptions::new()
            .with_voi_lut(VoiLutOption::Identity)
            .force_8bit();
        d.to_vec_frame_with_options(0, &opts)
            .map_err(|e| ThumbError::Decode(e.to_string()))?
    };
    let channels = if gray { 1 } else { spp.min(3) };
    let src_stride = if gray { 1 } else { spp };
    let scale = (f64::from(w.max(h)) / f64::from(SIZE)).max(1.0);
    let tw = ((f64::from(w) / scale).round() as u32).max(1);
    let th = ((f64::from(h) / scale).round() as u32).max(1);
    let mut out = Vec::with_capacity((tw * th) as usize * channels);
    for y in 0..th {
        let sy = ((f64::from(y) + 0.5) * scale) as u32;
        for x in 0..tw {
            let sx = ((f64::from(x) + 0.5) * scale) as u32;
            let at = (sy.min(h - 1) * w + sx.min(w - 1)) as usize * src_stride;
            for c in 0..channels {
                out.push(pixels.get(at + c).copied().unwrap_or(0));
            }
        }
    }
    Ok(png(tw, th, channels == 1, &out))
}

fn crc32(chunks: &[&[u8]]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for bytes in chunks {
        for &b in *bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
    }
    !c
}

fn chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[&kind, data]).to_be_bytes());
}

/// An 8-bit grayscale or RGB PNG (PNG spec §11.2.2) with its image data in stored (not
/// compressed) deflate blocks (RFC 1950/1951).
#[allow(clippy::many_single_char_names)] // the PNG and zlib specifications' names
pub fn png(w: u32, h: u32, gray: bool, pixels: &[u8]) -> Vec<u8> {
    let channels = if gray { 1 } else { 3 };
    let row = w as usize * channels;
    let mut raw = Vec::with_capacity((row + 1) * h as usize);
    for y in 0..h as usize {
        raw.push(0); // filter: none
        raw.extend_from_slice(&pixels[y * row..(y + 1) * row]);
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = b.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, if gray { 0 } else { 2 }, 0, 0, 0]);
    chunk(&mut out, *b"IHDR", &ihdr);
    chunk(&mut out, *b"IDAT", &z);
    chunk(&mut out, *b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_png_check_value() {
        // CRC-32 of "123456789" (the standard check value of this CRC).
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        let p = png(2, 1, true, &[0, 255]);
        assert!(p.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(p.ends_with(&[0xAE, 0x42, 0x60, 0x82])); // the IEND chunk's CRC
    }
}
