#![no_main]
//! Fuzz target `mpps_json`: the body is `xenrad_mpps::fuzzing::json`, shared with the corpus-replay test.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xenrad_mpps::fuzzing::json(data));
