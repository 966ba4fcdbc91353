#![no_main]
//! Fuzz target `mllp_decode`: the body is `xenrad_mllp::fuzzing::decode`, shared with the corpus-replay test.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xenrad_mllp::fuzzing::decode(data));
