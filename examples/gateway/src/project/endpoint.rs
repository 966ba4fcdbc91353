//! The FHIR `Endpoint` of the gateway's DICOMweb service (FHIR R4 §8.15 Endpoint), which every
//! ImagingStudy references (`ImagingStudy.endpoint`, FHIR R4 §5.2.5.x: "the network service
//! providing access for the study"), so a viewer that finds a study through FHIR knows where
//! to fetch its images with WADO-RS.

use xenrad_fhir_model::ResourceType;
use xenrad_fhir_model::builders::{Builder, coding};

use super::{Invalid, Resource};

/// The logical id of the DICOMweb Endpoint.
pub const ENDPOINT_ID: &str = "dicomweb";

/// `Endpoint/dicomweb`: what `ImagingStudy.endpoint` references.
pub const ENDPOINT_REFERENCE: &str = "Endpoint/dicomweb";

/// The Endpoint resource, built and validated with xenrad-fhir-model: status `active`,
/// connectionType `dicom-wado-rs` (CodeSystem endpoint-connection-type), payload DICOM
/// (`application/dicom`, `application/dicom+json`), address the DICOMweb base URL.
pub fn endpoint(url: &str) -> Result<Resource, Invalid> {
    Builder::new(ResourceType::Endpoint, ENDPOINT_ID)
        .str("status", "active")
        .node("connectionType", |n| {
            coding(
                n,
                "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                "dicom-wado-rs",
                Some("DICOM WADO-RS"),
            )
        })
        .str("name", "Xenrad DICOMweb (QIDO-RS, WADO-RS, STOW-RS)")
        .concept(
            "payloadType",
            "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
            "any",
            Some("Any"),
        )
        .str("payloadMimeType", "application/dicom")
        .str("payloadMimeType", "application/dicom+json")
        .str("address", url)
        .build()
        .map_err(|oo| {
            Invalid(format!(
                "the DICOMweb Endpoint is not valid: {}",
                oo.to_json()
            ))
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_endpoint_is_valid_r4_with_the_wado_rs_connection_type() {
        let j = xenrad_fhir_model::to_json(
            &super::endpoint("http://127.0.0.1:8080/dicomweb").expect("valid"),
        );
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["resourceType"], "Endpoint");
        assert_eq!(v["connectionType"]["code"], "dicom-wado-rs");
        assert_eq!(v["address"], "http://127.0.0.1:8080/dicomweb");
        assert_eq!(v["payloadMimeType"][0], "application/dicom");
    }
}
