//! A TOML spec through parsing, lowering and planning, as `planrun validate`
//! reads it; the same text as a `planrun.toml` too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use planrun_spec::source::Format;

fuzz_target!(|data: &[u8]| planrun_spec::fuzzing::spec(data, Format::Toml));
