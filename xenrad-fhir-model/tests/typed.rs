//! The typed views over the official examples: every accessor of every view (called by the
//! generated `typed/walk.rs`) reaches exactly the values of the generic model, every
//! `Observation.value[x]` decodes to the variant its JSON member names, and typed radiology
//! accessors agree with `serde_json`.

mod common;
#[rustfmt::skip]
#[path = "typed/walk.rs"]
mod walk;

use serde_json::Value as J;
use xenrad_fhir_model::from_json;
use xenrad_fhir_model::typed::{
    AnyResourceKind, ImagingStudy, Observation, ObservationValue, Patient, ResourceView,
};

#[test]
fn every_view_accessor_reaches_every_value() {
    let files = common::example_files();
    let (mut resources, mut values) = (0, 0);
    let mut bad = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        let Ok(r) = from_json(&bytes) else { continue };
        let mut walked = 0;
        walk::walk_any(r.view(), &mut walked);
        let generic = common::count_values(&r.node);
        if walked != generic {
            bad.push(format!(
                "{}: walked {walked}, model {generic}",
                common::file_name(f)
            ));
        }
        resources += 1;
        values += generic;
    }
    if files.is_empty() {
        return;
    }
    println!("{resources} resources, {values} values reached through the views");
    assert_eq!(resources, 5291);
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The `value[x]` member of an Observation (or component) in JSON, as its type suffix.
fn json_value_suffix(o: &serde_json::Map<String, J>) -> Option<String> {
    o.keys()
        .find(|k| k.starts_with("value") && k.len() > 5)
        .map(|k| k[5..].to_owned())
}

/// The variant name of a decoded `ObservationValue`, with the value checked against the JSON.
fn variant(v: ObservationValue<'_>, json: &J) -> String {
    match v {
        ObservationValue::Quantity(q) => {
            assert_eq!(
                q.value().and_then(|d| d.to_f64()),
                json.get("value").and_then(J::as_f64)
            );
            "Quantity"
        }
        ObservationValue::CodeableConcept(c) => {
            assert_eq!(
                c.coding().len(),
                json.get("coding")
                    .map_or(0, |a| a.as_array().unwrap().len())
            );
            "CodeableConcept"
        }
        ObservationValue::String(s) => {
            assert_eq!(s.value(), json.as_str());
            "String"
        }
        ObservationValue::Boolean(b) => {
            assert_eq!(b.value(), json.as_bool());
            "Boolean"
        }
        ObservationValue::Integer(i) => {
            assert_eq!(i.value().map(i64::from), json.as_i64());
            "Integer"
        }
        ObservationValue::Range(_) => "Range",
        ObservationValue::Ratio(_) => "Ratio",
        ObservationValue::SampledData(s) => {
            assert_eq!(s.data().and_then(|d| d.value()), json["data"].as_str());
            "SampledData"
        }
        ObservationValue::Time(t) => {
            assert_eq!(t.value(), json.as_str());
            "Time"
        }
        ObservationValue::DateTime(t) => {
            assert_eq!(t.value(), json.as_str());
            "DateTime"
        }
        ObservationValue::Period(p) => {
            assert_eq!(p.start().and_then(|s| s.value()), json["start"].as_str());
            "Period"
        }
    }
    .to_owned()
}

#[test]
fn every_observation_value_decodes_to_its_variant() {
    let files = common::example_files();
    let (mut observations, mut with_value, mut components) = (0, 0, 0);
    for f in files
        .iter()
        .filter(|f| common::file_name(f).starts_with("Observation-"))
    {
        let bytes = std::fs::read(f).expect("read");
        let Ok(r) = from_json(&bytes) else { continue };
        let json: J = serde_json::from_slice(&bytes).expect("json");
        let obs = Observation::from_resource(&r).expect("an Observation");
        observations += 1;
        let name = common::file_name(f);
        let expected = json_value_suffix(json.as_object().unwrap());
        let got = obs.value().map(|v| {
            let key = format!("value{}", expected.as_deref().unwrap_or("?"));
            variant(v, &json[key.as_str()])
        });
        assert_eq!(got, expected, "{name}");
        with_value += usize::from(got.is_some());
        // components carry their own value[x]
        let jc = json["component"].as_array().cloned().unwrap_or_default();
        assert_eq!(obs.component().len(), jc.len(), "{name}");
        for (c, j) in obs.component().zip(&jc) {
            let expected = json_value_suffix(j.as_object().unwrap());
            let got = c
                .value()
                .map(|v| format!("{v:?}").split('(').next().unwrap().to_owned());
            assert_eq!(got, expected, "{name} component");
            components += 1;
        }
    }
    if files.is_empty() {
        return;
    }
    println!("{observations} Observations ({with_value} with value[x]), {components} components");
    assert!(observations >= 60 && with_value >= 50 && components >= 50);
}

#[test]
fn radiology_accessors_agree_with_serde_json() {
    let files = common::example_files();
    let (mut studies, mut instances, mut patients) = (0, 0, 0);
    for f in &files {
        let name = common::file_name(f);
        let bytes = std::fs::read(f).expect("read");
        let Ok(r) = from_json(&bytes) else { continue };
        let json: J = serde_json::from_slice(&bytes).expect("json");
        match r.view().kind() {
            AnyResourceKind::ImagingStudy(s) => {
                studies += 1;
                let js = json["series"].as_array().cloned().unwrap_or_default();
                assert_eq!(s.series().len(), js.len(), "{name}");
                for (se, j) in s.series().zip(&js) {
                    assert_eq!(se.uid().and_then(|u| u.value()), j["uid"].as_str());
                    assert_eq!(
                        se.modality().and_then(|m| m.code()).and_then(|c| c.value()),
                        j["modality"]["code"].as_str()
                    );
                    let ji = j["instance"].as_array().cloned().unwrap_or_default();
                    for (i, ji) in se.instance().zip(&ji) {
                        assert_eq!(i.uid().and_then(|u| u.value()), ji["uid"].as_str());
                        assert_eq!(
                            i.number().and_then(|n| n.value()).map(u64::from),
                            ji["number"].as_u64()
                        );
                        instances += 1;
                    }
                }
                assert_eq!(
                    s.subject()
                        .and_then(|r| r.reference())
                        .and_then(|r| r.value()),
                    json["subject"]["reference"].as_str()
                );
            }
            AnyResourceKind::Patient(p) => {
                patients += 1;
                let jn = json["name"].as_array().cloned().unwrap_or_default();
                for (n, j) in p.name().zip(&jn) {
                    assert_eq!(n.family().and_then(|f| f.value()), j["family"].as_str());
                    // given with nulls and `_given` extensions keep their positions
                    let given: Vec<Option<&str>> = n.given().map(|g| g.value()).collect();
                    let jg: Vec<Option<&str>> = j["given"]
                        .as_array()
                        .map(|a| a.iter().map(J::as_str).collect())
                        .unwrap_or_default();
                    assert_eq!(given, jg, "{name}");
                }
                assert_eq!(
                    p.birth_date().and_then(|b| b.value()),
                    json["birthDate"].as_str()
                );
                assert_eq!(p.active().and_then(|a| a.value()), json["active"].as_bool());
                assert!(Patient::from_resource(&r).is_some());
                assert!(ImagingStudy::from_resource(&r).is_none());
            }
            _ => {}
        }
    }
    if files.is_empty() {
        return;
    }
    println!("{studies} ImagingStudies ({instances} instances), {patients} Patients");
    assert!(studies >= 2 && instances >= 3 && patients >= 20);
}

#[test]
fn primitive_extensions_in_arrays_with_nulls() {
    let r = from_json(br#"{"resourceType":"Patient","name":[{"given":["Ann",null],"_given":[null,{"id":"g2","extension":[{"url":"http://x","valueString":"y"}]}]}],
        "contained":[{"resourceType":"Practitioner","id":"pr"}],"deceasedBoolean":false}"#).unwrap();
    let p = Patient::from_resource(&r).unwrap();
    let name = p.name().next().unwrap();
    let given: Vec<_> = name.given().collect();
    assert_eq!(given.len(), 2);
    assert_eq!((given[0].value(), given[0].id()), (Some("Ann"), None));
    assert_eq!((given[1].value(), given[1].id()), (None, Some("g2")));
    let ext = given[1].extension().next().unwrap();
    assert_eq!(ext.url(), Some("http://x"));
    assert!(matches!(
        ext.value(),
        Some(xenrad_fhir_model::typed::ExtensionValue::String(s)) if s.value() == Some("y")
    ));
    let contained = p.contained().next().unwrap();
    assert_eq!(contained.id(), Some("pr"));
    assert!(matches!(contained.kind(), AnyResourceKind::Practitioner(_)));
    assert!(matches!(
        p.deceased(),
        Some(xenrad_fhir_model::typed::PatientDeceased::Boolean(b)) if b.value() == Some(false)
    ));
}
