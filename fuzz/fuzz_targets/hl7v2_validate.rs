#![no_main]
//! Fuzz target `hl7v2_validate`: the body is `xenrad_hl7v2::fuzzing::validate`, shared with the corpus-replay test.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xenrad_hl7v2::fuzzing::validate(data));
