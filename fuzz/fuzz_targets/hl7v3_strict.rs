#![no_main]
//! Fuzz target `hl7v3_strict`: the body is `xenrad_hl7v3::fuzzing::strict`, shared with the corpus-replay test.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xenrad_hl7v3::fuzzing::strict(data));
