#![no_main]
//! Fuzz target `fhir_json`: the body is `xenrad_fhir_model::fuzzing::json`, shared with the corpus-replay test.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xenrad_fhir_model::fuzzing::json(data));
