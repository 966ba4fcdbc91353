#![no_main]
//! Fuzz target `dimse_query`: the body is `xenrad_dimse::fuzzing::query`, shared with the corpus-replay test.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xenrad_dimse::fuzzing::query(data));
