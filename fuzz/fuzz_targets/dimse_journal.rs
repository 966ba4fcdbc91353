#![no_main]
//! Fuzz target `dimse_journal`: the body is `xenrad_dimse::fuzzing::journal` (recovery's scan
//! of a crashed journal lane), shared with the corpus-replay test.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| xenrad_dimse::fuzzing::journal(data));
