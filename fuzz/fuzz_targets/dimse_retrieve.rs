#![no_main]
//! Fuzz target `dimse_retrieve`: the body is `xenrad_dimse::fuzzing::scp_retrieve`, shared with the corpus-replay test.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xenrad_dimse::fuzzing::scp_retrieve(data));
