//! Entry point for fuzzing and property tests, not part of the API: the
//! bytes of an event stream through the decoder and the event source, as a
//! step reads them. The cargo-fuzz target in `fuzz/` and the property tests
//! below call the same function.
//!
//! Built for this crate's tests and with the `fuzzing` feature.

use std::time::Duration;

use serde_json::Value as Json;

use super::decode::Decoder;
use super::source::Source;
use crate::kept::Caps;

/// What a stream decodes to.
#[derive(Debug, PartialEq)]
struct Decoded {
    events: Vec<Json>,
    last_event_id: Option<String>,
    retry: Option<u64>,
    text: String,
    comments: u64,
    ignored: u64,
    mid_event: bool,
}

/// Decodes `data` after its first byte as one event stream, twice: in
/// chunks whose sizes the first byte seeds, and in one piece. Both must
/// give the same events and counts: how the bytes arrive changes nothing.
pub fn decode(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = run(std::iter::once(stream));
    let chunked = run(Chunks {
        rest: stream,
        state: u32::from(seed) | 0x100,
    });
    assert_eq!(whole, chunked, "the same stream in other chunks");
}

fn run<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Decoded {
    let mut decoder = Decoder::new(usize::MAX);
    let mut source = Source::new(Caps::new(u64::MAX));
    let mut blocks = Vec::new();
    for chunk in chunks {
        blocks.extend(decoder.push(chunk).expect("decoded text parses"));
    }
    let mid_event = decoder.mid_event();
    blocks.extend(decoder.finish().expect("decoded text parses"));
    for block in blocks {
        source.apply(block, Duration::ZERO);
    }
    let doc = source.into_doc();
    Decoded {
        events: doc.events,
        last_event_id: doc.last_event_id,
        retry: doc.retry,
        text: doc.text,
        comments: decoder.comments(),
        ignored: decoder.ignored_lines(),
        mid_event,
    }
}

/// Pieces of 1 to 16 bytes, their sizes from a xorshift of the seed.
struct Chunks<'a> {
    rest: &'a [u8],
    state: u32,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        let len = (self.state % 16 + 1) as usize;
        let (chunk, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    //! The fuzz target as property tests, for a bounded number of cases:
    //! streams made of the lines the format knows (fields, comments, blank
    //! lines, each ending in LF, CR or CR LF), with a BOM, invalid UTF-8 and
    //! NUL among them.

    use proptest::prelude::*;

    use super::*;

    fn stream() -> impl Strategy<Value = Vec<u8>> {
        const LINES: &[&[u8]] = &[
            b"data: hello",
            b"data:{\"a\": 1}",
            b"data",
            b"data:",
            b"event: delta",
            b"event:",
            b"id: 7",
            b"id: a\x00b",
            b"id",
            b"retry: 1500",
            b"retry: x",
            b": keep-alive",
            b":",
            b"bogus: 1",
            b"no colon",
            b"",
            b"data: caf\xc3\xa9",
            b"data: \xff\xfe\xc3",
            b"\xef\xbb\xbfdata: bom",
            b"data:  two spaces",
        ];
        const ENDS: &[&[u8]] = &[b"\n", b"\r", b"\r\n"];
        let line = (prop::sample::select(LINES), prop::sample::select(ENDS));
        (any::<bool>(), proptest::collection::vec(line, 0..40), any::<bool>()).prop_map(
            |(bom, lines, cut)| {
                let mut out = Vec::new();
                if bom {
                    out.extend_from_slice(b"\xef\xbb\xbf");
                }
                for (text, end) in &lines {
                    out.extend_from_slice(text);
                    out.extend_from_slice(end);
                }
                if cut {
                    out.pop();
                }
                out
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 1024,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn a_stream_decodes_the_same_in_any_chunks(seed in any::<u8>(), bytes in stream()) {
            let mut data = vec![seed];
            data.extend(bytes);
            decode(&data);
        }

        #[test]
        fn any_bytes_decode_the_same_in_any_chunks(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode(&data);
        }
    }
}
