#![no_main]
//! Fuzz target `dimse_assoc`: the body is `xenrad_dimse::fuzzing::assoc`, shared with the corpus-replay test.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xenrad_dimse::fuzzing::assoc(data));
