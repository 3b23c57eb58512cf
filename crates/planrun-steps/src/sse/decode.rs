//! Bytes of an event stream to raw event blocks.
//!
//! sse-stream does the WHATWG field parsing (BOM, CR/LF/CRLF, multi-line
//! data, bad `retry`, ids with NUL). Around it this module owns what the
//! parser does not report: invalid UTF-8 is decoded lossily before parsing
//! (the parser would stop at it), comments and ignored lines are counted, it
//! can tell whether the input stopped in the middle of an event, and it
//! bounds what the parser holds: a line, or the data of an event, longer
//! than the cap is an error before the parser sees it. It must
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

/// Why the input cannot be decoded.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Problem {
    /// The parser rejected the input.
    Parse(String),
    /// One line passed the cap without ending; its length so far.
    LongLine(usize),
    /// The data of one event passed the cap without the blank line that
    /// ends it; its length so far.
    LongEvent(usize),
}

/// Decodes one connection's bytes at a time; counts survive [`restart`](Self::restart).
pub(super) struct Decoder {
    utf8: Utf8Lossy,
    lines: LineTally,
    feed: Option<mpsc::Sender<Bytes>>,
    blocks: Blocks,
}

impl Decoder {
    /// A decoder that holds at most `cap` bytes of one line or of one
    /// event's data.
    pub(super) fn new(cap: usize) -> Self {
        let (feed, blocks) = parser();
        Self {
            utf8: Utf8Lossy::default(),
            lines: LineTally::new(cap),
            feed: Some(feed),
            blocks,
        }
    }

    /// The longest line, or data of one event, this decoder holds.
    pub(super) fn cap(&self) -> usize {
        self.lines.cap
    }

    /// Forgets the input so far (a new connection), keeping the counts.
    pub(super) fn restart(&mut self) {
        let (feed, blocks) = parser();
        self.utf8 = Utf8Lossy::default();
        self.lines = LineTally {
            comments: self.lines.comments,
            ignored: self.lines.ignored,
            ..LineTally::new(self.lines.cap)
        };
        self.feed = Some(feed);
        self.blocks = blocks;
    }

    /// Takes the next bytes; returns the blocks they complete.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Sse>, Problem> {
        let text = self.utf8.decode(bytes);
        self.parse(text)
    }

    /// Ends the input; returns the blocks it completes (an unfinished last
    /// block is dropped, as WHATWG says).
    pub(super) fn finish(&mut self) -> Result<Vec<Sse>, Problem> {
        let text = self.utf8.finish();
        let mut blocks = self.parse(text)?;
        self.feed = None;
        blocks.extend(self.drain()?);
        Ok(blocks)
    }

    /// Whether the input so far stops inside an event: a field line since the
    /// last blank line, or an unfinished line that is not a comment.
    pub(super) fn mid_event(&self) -> bool {
        self.lines.open || self.lines.line.first.is_some_and(|b| b != b':')
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

    fn parse(&mut self, text: String) -> Result<Vec<Sse>, Problem> {
        if !text.is_empty() {
            // checked before the parser holds the text
            self.lines.push(text.as_bytes())?;
            if let Some(feed) = &self.feed {
                // the receiver lives in `self.blocks`, so sending cannot fail
                let _ = feed.send(Bytes::from(text));
            }
        }
        self.drain()
    }

    /// Every block the parser can make of the input fed so far.
    fn drain(&mut self) -> Result<Vec<Sse>, Problem> {
        let mut out = Vec::new();
        // the feed is a plain queue: a poll that finds it empty means "all
        // parsed", so polling without a waker is sound here
        while let Some(Some(block)) = self.blocks.next().now_or_never() {
            out.push(block.map_err(|err| Problem::Parse(format!("cannot parse the event stream: {err}")))?);
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
/// drops without a word, to know where an event starts and ends, and to
/// stop a line or an event that passes the cap. A line is read as it comes
/// and not kept: only what tells its field and whether the parser uses it.
struct LineTally {
    /// The longest line, and data of one event, let through.
    cap: usize,
    /// The current line, not yet ended.
    line: Line,
    /// The last input ended with CR: a leading LF belongs to it.
    after_cr: bool,
    /// Some text arrived (a BOM is only skipped in front of the stream).
    started: bool,
    /// A field line arrived since the last blank line.
    open: bool,
    /// Bytes of the `data` lines since the last blank line: what the parser
    /// holds for the event.
    event: usize,
    comments: u64,
    ignored: u64,
}

impl LineTally {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            line: Line::default(),
            after_cr: false,
            started: false,
            open: false,
            event: 0,
            comments: 0,
            ignored: 0,
        }
    }

    fn push(&mut self, text: &[u8]) -> Result<(), Problem> {
        if text.is_empty() {
            return Ok(());
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
            self.line.extend(&rest[..end]);
            self.end_line()?;
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
        self.line.extend(rest);
        self.check(self.line.len)
    }

    /// Whether the current line, `len` bytes long, and its event fit the cap.
    fn check(&self, len: usize) -> Result<(), Problem> {
        if len > self.cap {
            return Err(Problem::LongLine(len));
        }
        let event = if self.line.may_be(b"data") {
            self.event + len
        } else {
            self.event
        };
        if event > self.cap {
            return Err(Problem::LongEvent(event));
        }
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), Problem> {
        self.check(self.line.len)?;
        let line = std::mem::take(&mut self.line);
        let Some(first) = line.first else {
            self.open = false;
            self.event = 0;
            return Ok(());
        };
        if first == b':' {
            self.comments += 1;
            return Ok(());
        }
        let name = line.name.as_deref().unwrap_or_default();
        let used = match name {
            b"data" => {
                // the parser joins data lines with a newline
                self.event += line.len + 1;
                true
            }
            b"event" => true,
            b"id" => !line.nul,
            b"retry" => line.retry.is_some() && line.value_len > 0,
            _ => false,
        };
        if matches!(name, b"data" | b"event" | b"id" | b"retry") {
            self.open = true;
        }
        if !used {
            self.ignored += 1;
        }
        Ok(())
    }
}

/// What a line tells, read piece by piece without keeping it.
struct Line {
    len: usize,
    first: Option<u8>,
    /// The field name while it may still be one the parser knows (`None`
    /// once it is longer than any).
    name: Option<Vec<u8>>,
    /// The colon after the name arrived.
    colon: bool,
    /// Bytes of the value (after the colon and one optional space).
    value_len: usize,
    /// The value is still to start: a leading space is skipped.
    value_start: bool,
    /// The value holds a NUL (an `id` with one is ignored).
    nul: bool,
    /// The value as a `retry` number: `None` once a byte is no digit or it
    /// overflows.
    retry: Option<u64>,
}

/// The longest field name the parser knows (`retry`).
const LONGEST_NAME: usize = 5;

impl Default for Line {
    fn default() -> Self {
        Self {
            len: 0,
            first: None,
            name: Some(Vec::new()),
            colon: false,
            value_len: 0,
            value_start: true,
            nul: false,
            retry: Some(0),
        }
    }
}

impl Line {
    fn extend(&mut self, bytes: &[u8]) {
        let Some(&first) = bytes.first() else {
            return;
        };
        self.len += bytes.len();
        self.first.get_or_insert(first);
        let mut value = bytes;
        if !self.colon {
            let (name, rest) = match bytes.iter().position(|b| *b == b':') {
                Some(colon) => {
                    self.colon = true;
                    (&bytes[..colon], &bytes[colon + 1..])
                }
                None => (bytes, &[][..]),
            };
            if let Some(known) = &mut self.name {
                if known.len() + name.len() > LONGEST_NAME {
                    self.name = None;
                } else {
                    known.extend_from_slice(name);
                }
            }
            value = rest;
        }
        if !self.colon || value.is_empty() {
            return;
        }
        if self.value_start {
            self.value_start = false;
            value = value.strip_prefix(b" ").unwrap_or(value);
        }
        self.value_len += value.len();
        match self.name.as_deref() {
            Some(b"id") => self.nul |= value.contains(&0),
            Some(b"retry") => {
                for byte in value {
                    self.retry = self.retry.and_then(|n| {
                        let digit = char::from(*byte).to_digit(10)?;
                        n.checked_mul(10)?.checked_add(u64::from(digit))
                    });
                }
            }
            _ => {}
        }
    }

    /// Whether the line is, or may still turn out to be, the field `name`.
    fn may_be(&self, name: &[u8]) -> bool {
        self.name.as_deref().is_some_and(|known| {
            if self.colon {
                known == name
            } else {
                name.starts_with(known)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> (Vec<Sse>, Decoder) {
        let mut decoder = Decoder::new(usize::MAX);
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
        let mut decoder = Decoder::new(usize::MAX);
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

    #[test]
    fn a_line_past_the_cap_is_stopped_before_the_parser_holds_it() {
        let mut decoder = Decoder::new(100);
        assert!(decoder.push(b"data: ").unwrap().is_empty());
        assert_eq!(decoder.push(&[b'x'; 200]), Err(Problem::LongLine(206)));
        let mut decoder = Decoder::new(100);
        let comment = [b':'; 101];
        assert_eq!(decoder.push(&comment), Err(Problem::LongLine(101)));
    }

    #[test]
    fn an_event_past_the_cap_is_stopped() {
        let mut decoder = Decoder::new(100);
        let line = b"data: 0123456789012345678901234567890123456789\n";
        assert!(decoder.push(line).unwrap().is_empty());
        assert!(decoder.push(line).unwrap().is_empty());
        assert_eq!(decoder.push(line), Err(Problem::LongEvent(140)));
        // a blank line starts the count again
        let mut decoder = Decoder::new(100);
        for _ in 0..10 {
            assert_eq!(decoder.push(line).unwrap().len(), 0);
            assert_eq!(decoder.push(b"\n").unwrap().len(), 1);
        }
    }

    #[test]
    fn ids_and_retries_are_judged_across_splits() {
        let text = b"retry: 12\nretry: 99999999999999999999999\nretry:\nid: a\0b\nid: fine\ndata: x\n\n";
        for size in [1, 2, 3, 7, text.len()] {
            let chunks: Vec<&[u8]> = text.chunks(size).collect();
            let (blocks, decoder) = decode_all(&chunks);
            assert_eq!(blocks.len(), 1, "chunks of {size}");
            assert_eq!(blocks[0].retry, Some(12), "chunks of {size}");
            assert_eq!(blocks[0].id.as_deref(), Some("fine"), "chunks of {size}");
            assert_eq!(decoder.ignored_lines(), 3, "chunks of {size}");
        }
    }
}
