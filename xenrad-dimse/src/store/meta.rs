//! File Meta Information (PS3.10 §7.1): preamble, `DICM`, group 0002 in Explicit VR Little Endian.

use dicom_core::{DataElementHeader, Length, Tag, VR};
use dicom_encoding::encode::Encode;
use dicom_encoding::encode::explicit_le::ExplicitVRLittleEndianEncoder;

/// The values a File Meta group is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta<'a> {
    /// (0002,0002) Media Storage SOP Class UID (the command's Affected SOP Class UID).
    pub sop_class_uid: &'a str,
    /// (0002,0003) Media Storage SOP Instance UID (the command's Affected SOP Instance UID).
    pub sop_instance_uid: &'a str,
    /// (0002,0010) Transfer Syntax UID (the presentation context's).
    pub transfer_syntax: &'a str,
    /// (0002,0012) Implementation Class UID.
    pub implementation_class_uid: &'a str,
    /// (0002,0013) Implementation Version Name.
    pub implementation_version_name: &'a str,
    /// (0002,0016) Source Application Entity Title (the calling AE), if known.
    pub source_ae: Option<&'a str>,
}

/// Encodes the 128-byte preamble, `DICM` and the File Meta group with its group length.
///
/// ```
/// use xenrad_dimse::store::{FileMeta, encode_file_meta};
/// let b = encode_file_meta(&FileMeta {
///     sop_class_uid: "1.2.840.10008.5.1.4.1.1.2",
///     sop_instance_uid: "1.2.3.4",
///     transfer_syntax: "1.2.840.10008.1.2.1",
///     implementation_class_uid: "1.2.3",
///     implementation_version_name: "X",
///     source_ae: Some("CT1"),
/// });
/// assert_eq!(&b[128..132], b"DICM");
/// ```
pub fn encode_file_meta(m: &FileMeta<'_>) -> Vec<u8> {
    let enc = ExplicitVRLittleEndianEncoder::default();
    let mut body = Vec::with_capacity(256);
    let mut put = |el: u16, vr: VR, v: &[u8], pad: u8| {
        let padded = v.len() + (v.len() & 1);
        let hdr = DataElementHeader::new(Tag(0x0002, el), vr, Length(padded as u32));
        let _ = enc.encode_element_header(&mut body, hdr);
        body.extend_from_slice(v);
        if v.len() & 1 == 1 {
            body.push(pad);
        }
    };
    put(0x0001, VR::OB, &[0, 1], 0);
    put(0x0002, VR::UI, m.sop_class_uid.as_bytes(), 0);
    put(0x0003, VR::UI, m.sop_instance_uid.as_bytes(), 0);
    put(0x0010, VR::UI, m.transfer_syntax.as_bytes(), 0);
    put(0x0012, VR::UI, m.implementation_class_uid.as_bytes(), 0);
    put(
        0x0013,
        VR::SH,
        m.implementation_version_name.as_bytes(),
        b' ',
    );
    if let Some(ae) = m.source_ae.filter(|a| !a.is_empty()) {
        put(0x0016, VR::AE, ae.as_bytes(), b' ');
    }
    let mut out = Vec::with_capacity(132 + 12 + body.len());
    out.resize(128, 0);
    out.extend_from_slice(b"DICM");
    let hdr = DataElementHeader::new(Tag(0x0002, 0x0000), VR::UL, Length(4));
    let _ = enc.encode_element_header(&mut out, hdr);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A Part 10 file split into its File Meta values and the data set (PS3.10 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part10<'a> {
    /// (0002,0002) Media Storage SOP Class UID.
    pub sop_class_uid: &'a str,
    /// (0002,0003) Media Storage SOP Instance UID.
    pub sop_instance_uid: &'a str,
    /// (0002,0010) Transfer Syntax UID.
    pub transfer_syntax: &'a str,
    /// Byte offset of the data set in the file.
    pub dataset_offset: usize,
}

/// Reads the File Meta group of a Part 10 file; `None` if it is not one (no `DICM`, no
/// group 0002, or a missing UID).
pub fn parse_part10(file: &[u8]) -> Option<Part10<'_>> {
    if file.len() < 132 || &file[128..132] != b"DICM" {
        return None;
    }
    let mut pos = 132;
    let (mut class, mut inst, mut ts) = (None, None, None);
    while file.len() >= pos + 8 {
        let group = u16::from_le_bytes([file[pos], file[pos + 1]]);
        if group != 0x0002 {
            break;
        }
        let elem = u16::from_le_bytes([file[pos + 2], file[pos + 3]]);
        let vr = [file[pos + 4], file[pos + 5]];
        let (h, len) = if matches!(&vr, b"OB" | b"OW" | b"UN" | b"UT" | b"SQ" | b"UC" | b"UR") {
            if file.len() < pos + 12 {
                return None;
            }
            let l =
                u32::from_le_bytes([file[pos + 8], file[pos + 9], file[pos + 10], file[pos + 11]]);
            (12, l as usize)
        } else {
            (
                8,
                u16::from_le_bytes([file[pos + 6], file[pos + 7]]) as usize,
            )
        };
        let end = pos.checked_add(h)?.checked_add(len)?;
        if end > file.len() {
            return None;
        }
        let v = std::str::from_utf8(&file[pos + h..end])
            .ok()
            .map(|s| s.trim_end_matches(['\0', ' ']));
        match elem {
            0x0002 => class = v,
            0x0003 => inst = v,
            0x0010 => ts = v,
            _ => {}
        }
        pos = end;
    }
    Some(Part10 {
        sop_class_uid: class?,
        sop_instance_uid: inst?,
        transfer_syntax: ts?,
        dataset_offset: pos,
    })
}
