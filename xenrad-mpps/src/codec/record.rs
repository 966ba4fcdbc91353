//! The storage form of a [`Record`]: what a [`Store`](crate::Store) backed by a database or a
//! file keeps for one instance, written and read back without an intermediate JSON tree.
//!
//! The form is one JSON object (UTF-8 text, readable in a database shell) with three members,
//! in this order, each a DICOM JSON dataset (PS3.18 Annex F.2, as [`super::dicom_json`] writes
//! it):
//!
//! ```text
//! {"attributes":{…},"create_request":{…},"final_request":{…} | null}
//! ```
//!
//! The SOP Instance UID and the version are not part of it: a store keeps them as its key and
//! its compare-and-set column, and passes them back to [`decode`].
//!
//! ```
//! use xenrad_mpps::{Dataset, Element, Limits, Record, codec::record, tags};
//! let ds = Dataset::new().with(tags::PPS_STATUS, Element::string(dicom_core::VR::CS, "IN PROGRESS"));
//! let rec = Record {
//!     sop_instance_uid: "1.2.3".into(),
//!     attributes: ds.clone(),
//!     create_request: ds,
//!     final_request: None,
//!     version: 1,
//! };
//! let text = record::encode(&rec);
//! assert!(text.starts_with(r#"{"attributes":{"00400252":{"vr":"CS","Value":["IN PROGRESS"]}}"#));
//! assert_eq!(record::decode(text.as_bytes(), "1.2.3", 1, &Limits::default()).unwrap(), rec);
//! ```

use super::Limits;
use super::dicom_json::{J, decode_dataset, write_dataset};
use crate::error::ErrorKind;
use crate::{MppsError, Record};

/// Writes `record` in the storage form (see the [module documentation](self)).
pub fn encode(record: &Record) -> String {
    let mut out = String::with_capacity(512);
    out.push_str("{\"attributes\":");
    write_dataset(&mut out, &record.attributes);
    out.push_str(",\"create_request\":");
    write_dataset(&mut out, &record.create_request);
    out.push_str(",\"final_request\":");
    match &record.final_request {
        Some(ds) => write_dataset(&mut out, ds),
        None => out.push_str("null"),
    }
    out.push('}');
    out
}

/// Reads a record written by [`encode`] (one parse of `bytes`), for the instance
/// `sop_instance_uid` at `version`.
///
/// Limits: each of the three datasets passed `limits` when it was received, so each is checked
/// against `limits` again (nesting depth, element count); the whole record may be up to three
/// times `limits.max_bytes` (plus its 64-byte frame). A record that does not meet them, or is
/// not in the storage form, is an [`ErrorKind::Malformed`] error; nothing panics.
pub fn decode(
    bytes: &[u8],
    sop_instance_uid: &str,
    version: u64,
    limits: &Limits,
) -> Result<Record, MppsError> {
    let whole = Limits {
        max_bytes: limits.max_bytes.saturating_mul(3).saturating_add(64),
        ..*limits
    };
    super::check_size(bytes.len(), &whole)?;
    let json: J<'_> = serde_json::from_slice(bytes)
        .map_err(|e| MppsError::new(ErrorKind::Malformed, format!("stored MPPS record: {e}")))?;
    let J::Object(obj) = &json else {
        return Err(MppsError::new(
            ErrorKind::Malformed,
            "stored MPPS record: not a JSON object",
        ));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(&***k, "attributes" | "create_request" | "final_request"))
    {
        return Err(MppsError::new(
            ErrorKind::Malformed,
            format!("stored MPPS record: unknown member {k:?}"),
        ));
    }
    let dataset = |name: &str| {
        let v = obj.get(name).ok_or_else(|| {
            MppsError::new(
                ErrorKind::Malformed,
                format!("stored MPPS record: no {name:?}"),
            )
        })?;
        if matches!(v, J::Null) {
            return Ok(None);
        }
        decode_dataset(v, limits, 0, &mut 0, &mut Vec::new()).map(Some)
    };
    let required = |name: &str| {
        dataset(name)?.ok_or_else(|| {
            MppsError::new(
                ErrorKind::Malformed,
                format!("stored MPPS record: {name:?} is null"),
            )
        })
    };
    Ok(Record {
        sop_instance_uid: sop_instance_uid.to_owned(),
        attributes: required("attributes")?,
        create_request: required("create_request")?,
        final_request: dataset("final_request")?,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dataset, Element, tags};
    use dicom_core::VR;

    fn sample(final_request: bool) -> Record {
        let item = Dataset::new().with(
            tags::STUDY_INSTANCE_UID,
            Element::string(VR::UI, "1.2.3.4.5.6"),
        );
        let attributes = Dataset::new()
            .with(tags::PPS_STATUS, Element::string(VR::CS, "COMPLETED"))
            .with(tags::PATIENT_NAME, Element::string(VR::PN, "Doe^Jane"))
            .with(
                tags::SCHEDULED_STEP_ATTRIBUTES_SEQUENCE,
                Element::items(vec![item]),
            );
        Record {
            sop_instance_uid: "1.2.3".into(),
            create_request: attributes.clone(),
            final_request: final_request.then(|| attributes.clone()),
            attributes,
            version: 7,
        }
    }

    #[test]
    fn round_trips_with_and_without_final_request() {
        for with_final in [false, true] {
            let r = sample(with_final);
            let text = encode(&r);
            assert_eq!(
                decode(text.as_bytes(), "1.2.3", 7, &Limits::default()).unwrap(),
                r
            );
        }
    }

    #[test]
    fn reads_what_serde_json_wrote_before() {
        // The layout the gateway wrote through serde_json::Value (members sorted, so `Value`
        // before `vr`): records stored by earlier releases still load.
        fn sorted(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    m.sort_keys();
                    m.values_mut().for_each(sorted);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(sorted),
                _ => {}
            }
        }
        let r = sample(false);
        // serde_json keeps insertion order when a crate in the build enables its
        // `preserve_order` feature: sort explicitly, as the old layout was.
        let mut legacy = serde_json::json!({
            "attributes": serde_json::from_slice::<serde_json::Value>(
                &crate::codec::dicom_json::encode_dataset(&r.attributes)).unwrap(),
            "create_request": serde_json::from_slice::<serde_json::Value>(
                &crate::codec::dicom_json::encode_dataset(&r.create_request)).unwrap(),
            "final_request": null,
        });
        sorted(&mut legacy);
        let legacy = legacy.to_string();
        assert_ne!(legacy, encode(&r)); // not the same bytes …
        assert_eq!(
            decode(legacy.as_bytes(), "1.2.3", 7, &Limits::default()).unwrap(),
            r // … but the same record
        );
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let good = encode(&sample(true));
        for bad in [
            String::new(),
            "[]".to_owned(),
            "{}".to_owned(),
            r#"{"attributes":null,"create_request":{},"final_request":null}"#.to_owned(),
            r#"{"attributes":{},"create_request":{},"final_request":null,"x":1}"#.to_owned(),
            good[..good.len() / 2].to_owned(),
            good.replace("00400252", "0040025"),
        ] {
            let e = decode(bad.as_bytes(), "1.2.3", 1, &Limits::default()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Malformed, "{bad}");
        }
        let tiny = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert!(decode(good.as_bytes(), "1.2.3", 1, &tiny).is_err());
        let shallow = Limits {
            max_depth: 0,
            ..Limits::default()
        };
        assert!(decode(good.as_bytes(), "1.2.3", 1, &shallow).is_err());
    }
}
