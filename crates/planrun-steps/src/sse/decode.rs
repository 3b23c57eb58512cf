//! Bytes of an event stream to raw event blocks.
//!
//! sse-stream does the WHATWG field parsing (BOM, CR/LF/CRLF, multi-line
//! data, bad `retry`, ids with NUL). Around it this module owns what the
//! parser does not report: invalid UTF-8 is decoded lossily before parsing
//! (the parser would stop at it), comments and ignored lines are counted, and
//! it can tell whether the input stopped in the middle of an event. It must
//! not give blocks a meaning (default type, last event id, retry): that is
//! [`super::source`].

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::Poll;

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use sse_stream::{Sse, SseByteStream};

type Blocks = Pin<Box<dyn Stream<Item = Result<Sse, sse_stream::Error>> + Send>>;

/// Decodes one connection's bytes at a time; counts survive [`restart`](Self::restart).
pub(super) struct Decoder {
    utf8: Utf8Lossy,
    lines: LineTally,
    feed: Option<mpsc::Sender<Bytes>>,
    blocks: Blocks,
}

impl Decoder {
    pub(super) fn new() -> Self {
        let (feed, blocks) = parser();
        Self {
            utf8: Utf8Lossy::default(),
            lines: LineTally::default(),
            feed: Some(feed),
            blocks,
        }
    }

    /// Forgets the input so far (a new connection), keeping the counts.
    pub(super) fn restart(&mut self) {
        let (feed, blocks) = parser();
        self.utf8 = Utf8Lossy::default();
        self.lines = LineTally {
            comments: self.lines.comments,
            ignored: self.lines.ignored,
            ..LineTally::default()
        };
        self.feed = Some(feed);
        self.blocks = blocks;
    }

    /// Takes the next bytes; returns the blocks they complete.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Sse>, String> {
        let text = self.utf8.decode(bytes);
        self.parse(text)
    }

    /// Ends the input; returns the blocks it completes (an unfinished last
    /// block is dropped, as WHATWG says).
    pub(super) fn finish(&mut self) -> Result<Vec<Sse>, String> {
        let text = self.utf8.finish();
        let mut blocks = self.parse(text)?;
        self.feed = None;
        blocks.extend(self.drain()?);
        Ok(blocks)
    }

    /// Whether the input so far stops inside an event: a field line since the
    /// last blank line, or an unfinished line that is not a comment.
    pub(super) fn mid_event(&self) -> bool {
        self.lines.open || self.lines.line.first().is_some_and(|b| *b != b':')
    }

    /// Comment lines seen (`: keep-alive`).
    pub(super) fn comments(&self) -> u64 {
        self.lines.comments
    }

    /// Lines the parser ignored: unknown fields (also lines without a colon
    /// that name none), `retry` values that are not a number, ids with NUL.
    pub(super) fn ignored_lines(&self) -> u64 {
        self.lines.ignored
    }

    fn parse(&mut self, text: String) -> Result<Vec<Sse>, String> {
        if !text.is_empty() {
            self.lines.push(text.as_bytes());
            if let Some(feed) = &self.feed {
                // the receiver lives in `self.blocks`, so sending cannot fail
                let _ = feed.send(Bytes::from(text));
            }
        }
        self.drain()
    }

    /// Every block the parser can make of the input fed so far.
    fn drain(&mut self) -> Result<Vec<Sse>, String> {
        let mut out = Vec::new();
        // the feed is a plain queue: a poll that finds it empty means "all
        // parsed", so polling without a waker is sound here
        while let Some(Some(block)) = self.blocks.next().now_or_never() {
            out.push(block.map_err(|err| format!("cannot parse the event stream: {err}"))?);
        }
        Ok(out)
    }
}

/// A parser fed by hand: what is sent on the sender is parsed when the
/// stream is polled; dropping the sender ends the input.
fn parser() -> (mpsc::Sender<Bytes>, Blocks) {
    let (feed, queue) = mpsc::channel::<Bytes>();
    let input = futures_util::stream::poll_fn(move |_| match queue.try_recv() {
        Ok(bytes) => Poll::Ready(Some(Ok::<_, Infallible>(bytes))),
        Err(mpsc::TryRecvError::Empty) => Poll::Pending,
        Err(mpsc::TryRecvError::Disconnected) => Poll::Ready(None),
    });
    (feed, Box::pin(SseByteStream::new(input)))
}

/// Incremental lossy UTF-8 decoding: a character split between reads is
/// joined, an invalid sequence becomes U+FFFD.
#[derive(Default)]
struct Utf8Lossy {
    /// The start of a character whose end has not arrived yet.
    pending: Vec<u8>,
}

impl Utf8Lossy {
    fn decode(&mut self, bytes: &[u8]) -> String {
        let mut input = std::mem::take(&mut self.pending);
        input.extend_from_slice(bytes);
        let mut out = String::with_capacity(input.len());
        let mut rest = input.as_slice();
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    out.push_str(valid);
                    return out;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    out.push_str(&String::from_utf8_lossy(valid));
                    let Some(len) = err.error_len() else {
                        // the input ends inside a character: wait for its end
                        self.pending = after.to_vec();
                        return out;
                    };
                    out.push(char::REPLACEMENT_CHARACTER);
                    rest = &after[len..];
                }
            }
        }
    }

    /// The end of the input: a character left unfinished is invalid.
    fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

/// Splits decoded text into lines as WHATWG does, to count what the parser
/// drops without a word and to know where an event starts and ends.
#[derive(Default)]
struct LineTally {
    /// The current line, not yet ended.
    line: Vec<u8>,
    /// The last input ended with CR: a leading LF belongs to it.
    after_cr: bool,
    /// Some text arrived (a BOM is only skipped in front of the stream).
    started: bool,
    /// A field line arrived since the last blank line.
    open: bool,
    comments: u64,
    ignored: u64,
}

impl LineTally {
    fn push(&mut self, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        let mut rest = text;
        if !self.started {
            self.started = true;
            rest = rest.strip_prefix("\u{feff}".as_bytes()).unwrap_or(rest);
        }
        if self.after_cr {
            self.after_cr = false;
            rest = rest.strip_prefix(b"\n").unwrap_or(rest);
        }
        while let Some(end) = rest.iter().position(|b| matches!(b, b'\r' | b'\n')) {
            self.line.extend_from_slice(&rest[..end]);
            self.end_line();
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            rest = &rest[next..];
        }
        self.line.extend_from_slice(rest);
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let Some(first) = line.first() else {
            self.open = false;
            return;
        };
        if *first == b':' {
            self.comments += 1;
            return;
        }
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line.as_slice(), &[][..]),
        };
        let used = match name {
            b"data" | b"event" => true,
            b"id" => !value.contains(&0),
            b"retry" => {
                value.iter().all(u8::is_ascii_digit)
                    && std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok())
                        .is_some()
            }
            _ => false,
        };
        if matches!(name, b"data" | b"event" | b"id" | b"retry") {
            self.open = true;
        }
        if !used {
            self.ignored += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> (Vec<Sse>, Decoder) {
        let mut decoder = Decoder::new();
        let mut blocks = Vec::new();
        for chunk in chunks {
            blocks.extend(decoder.push(chunk).unwrap());
        }
        (blocks, decoder)
    }

    #[test]
    fn split_characters_are_joined_and_invalid_bytes_replaced() {
        let mut utf8 = Utf8Lossy::default();
        assert_eq!(utf8.decode(b"caf\xC3"), "caf");
        assert_eq!(utf8.decode(b"\xA9 a\xFFb"), "é a\u{fffd}b");
        assert_eq!(utf8.decode(b"\xE2\x82"), "");
        assert_eq!(utf8.finish(), "\u{fffd}");
        assert_eq!(utf8.finish(), "");
    }

    #[test]
    fn blocks_come_out_as_soon_as_their_blank_line_arrives() {
        let mut decoder = Decoder::new();
        assert!(decoder.push(b"data: a\n").unwrap().is_empty());
        assert!(decoder.mid_event());
        let blocks = decoder.push(b"\ndata: b").unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].data.as_deref(), Some("a"));
        assert!(decoder.mid_event());
        assert!(decoder.finish().unwrap().is_empty());
    }

    #[test]
    fn comments_and_ignored_lines_are_counted_across_splits() {
        let text =
            b"\xEF\xBB\xBF: hi\r\nbogus: 1\r\nno colon\r\nretry: x\r\nid: a\0b\r\ndata\r\n\r\n:\r";
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        let (blocks, decoder) = decode_all(&chunks);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].data.as_deref(), Some(""));
        assert_eq!(decoder.comments(), 2);
        assert_eq!(decoder.ignored_lines(), 4);
        assert!(!decoder.mid_event());
    }

    #[test]
    fn a_bom_counts_only_in_front() {
        let (_, decoder) = decode_all(&[b"\xEF\xBB\xBF:c\n", b"\xEF\xBB\xBF:c\n\n"]);
        assert_eq!(decoder.comments(), 1);
        assert_eq!(decoder.ignored_lines(), 1);
    }

    #[test]
    fn restart_forgets_the_input_and_keeps_the_counts() {
        let (_, mut decoder) = decode_all(&[b": one\ndata: cut"]);
        assert!(decoder.mid_event());
        decoder.restart();
        assert!(!decoder.mid_event());
        let blocks = decoder.push(b"data: fresh\n\n").unwrap();
        assert_eq!(blocks[0].data.as_deref(), Some("fresh"));
        assert_eq!(decoder.comments(), 1);
    }
}
