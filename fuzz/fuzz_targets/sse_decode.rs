//! Bytes of an event stream through the decoder and the event source, in
//! chunks the first byte seeds and in one piece: both give the same events.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| planrun_steps::sse::fuzzing::decode(data));
