//! The expectation language: a matcher lowered and tested against a JSON
//! value, and a target parsed and queried (input layout:
//! `planrun_runner::fuzzing::matcher`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| planrun_runner::fuzzing::matcher(data));
