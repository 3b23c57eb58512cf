//! Reading a child's stdout and stderr without ever blocking it.
//!
//! A foreground step keeps the first `max_body` bytes of each stream; a
//! background process keeps the last lines of both in a bounded tail and
//! matches its `ready.log` pattern line by line, keeping the first line that
//! matched and its groups. Either way the pipes are read to the end, so a
//! chatty child never stalls on a full pipe. This module must not signal or
//! wait for processes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use regex::Regex;

use crate::probe::ReadyMatch;
use tokio::io::{AsyncRead, AsyncReadExt};

const CHUNK: usize = 8 * 1024;
/// How much of a background process's output is kept for error messages.
const TAIL_BYTES: usize = 64 * 1024;
/// A line longer than this is matched and kept in pieces.
const MAX_LINE: usize = 16 * 1024;

/// The start of a stream, up to a cap.
#[derive(Debug)]
pub(crate) struct Capture {
    data: Vec<u8>,
    cap: usize,
    total: u64,
}

impl Capture {
    /// An empty capture keeping at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            data: Vec::new(),
            cap,
            total: 0,
        }
    }

    /// Reads `reader` to its end, keeping what fits under the cap.
    pub(crate) async fn read_all<R: AsyncRead + Unpin>(&mut self, reader: Option<R>) {
        let Some(mut reader) = reader else {
            return;
        };
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    self.total += n as u64;
                    let room = self.cap.saturating_sub(self.data.len());
                    self.data.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
    }

    /// The kept bytes as text (invalid UTF-8 replaced).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// Whether bytes were dropped at the cap.
    pub(crate) fn truncated(&self) -> bool {
        self.total > self.data.len() as u64
    }
}

/// The recent output of a background process, shared by its drain tasks.
#[derive(Debug)]
pub(crate) struct OutputLog {
    tail: Mutex<VecDeque<u8>>,
    pattern: Option<Regex>,
    ready: OnceLock<ReadyMatch>,
}

impl OutputLog {
    /// A log that watches for `pattern`, if any.
    pub(crate) fn new(pattern: Option<Regex>) -> Arc<Self> {
        Arc::new(Self {
            tail: Mutex::new(VecDeque::with_capacity(TAIL_BYTES)),
            pattern,
            ready: OnceLock::new(),
        })
    }

    /// The first line that matched the pattern, once one did.
    pub(crate) fn ready_match(&self) -> Option<&ReadyMatch> {
        self.ready.get()
    }

    fn line(&self, line: &[u8]) {
        if let Some(pattern) = &self.pattern
            && self.ready.get().is_none()
            && let Some(found) = ReadyMatch::find(pattern, &String::from_utf8_lossy(line))
        {
            // stdout and stderr race here; the first to set it wins
            let _ = self.ready.set(found);
        }
        let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.extend(line);
        tail.push_back(b'\n');
        let excess = tail.len().saturating_sub(TAIL_BYTES);
        tail.drain(..excess);
    }

    /// The last `n` lines, for error messages.
    pub(crate) fn last_lines(&self, n: usize) -> Vec<String> {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes: Vec<u8> = tail.iter().copied().collect();
        drop(tail);
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| (*l).to_string())
            .collect()
    }
}

/// Reads `reader` to its end, line by line, into `log`.
pub(crate) async fn drain<R: AsyncRead + Unpin>(mut reader: R, log: Arc<OutputLog>) {
    let mut buf = vec![0u8; CHUNK];
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for piece in buf[..n].split_inclusive(|b| *b == b'\n') {
            if let Some(line) = piece.strip_suffix(b"\n") {
                partial.extend_from_slice(line);
                let line = partial.strip_suffix(b"\r").unwrap_or(&partial);
                log.line(line);
                partial.clear();
            } else {
                partial.extend_from_slice(piece);
                if partial.len() >= MAX_LINE {
                    log.line(&partial);
                    partial.clear();
                }
            }
        }
    }
    if !partial.is_empty() {
        log.line(&partial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capture_keeps_the_start_and_reads_on() {
        let data = vec![b'x'; 100_000];
        let mut capture = Capture::new(10);
        capture.read_all(Some(&data[..])).await;
        assert_eq!(capture.text(), "xxxxxxxxxx");
        assert!(capture.truncated());
        assert_eq!(capture.total, 100_000);
    }

    #[tokio::test]
    async fn drain_matches_lines_split_across_reads() {
        let log = OutputLog::new(Some(Regex::new("^listening on \\d+$").unwrap()));
        let (mut tx, rx) = tokio::io::duplex(4);
        let task = tokio::spawn(drain(rx, Arc::clone(&log)));
        tokio::io::AsyncWriteExt::write_all(&mut tx, b"boot\r\nlistening on 8080\nlast")
            .await
            .unwrap();
        drop(tx);
        task.await.unwrap();
        assert_eq!(log.ready_match().unwrap().line, "listening on 8080");
        assert_eq!(log.last_lines(2), ["listening on 8080", "last"]);
    }

    #[test]
    fn the_first_matching_line_keeps_its_groups() {
        let pattern = Regex::new(r"on (?P<host>[^:]+):(\d+)(?: \((?P<tls>tls)\))?").unwrap();
        let log = OutputLog::new(Some(pattern));
        log.line(b"starting");
        assert!(log.ready_match().is_none());
        log.line(b"listening on 127.0.0.1:4321 now");
        log.line(b"listening on 10.0.0.1:1 (tls)");
        let found = log.ready_match().unwrap();
        assert_eq!(found.line, "listening on 127.0.0.1:4321 now");
        assert_eq!(
            serde_json::Value::Object(found.groups.clone()),
            serde_json::json!({
                "0": "on 127.0.0.1:4321",
                "1": "127.0.0.1",
                "host": "127.0.0.1",
                "2": "4321",
                "3": null,
                "tls": null,
            })
        );
    }

    #[test]
    fn tail_is_bounded() {
        let log = OutputLog::new(None);
        for i in 0..20_000 {
            log.line(format!("line {i}").as_bytes());
        }
        assert!(log.tail.lock().unwrap().len() <= TAIL_BYTES);
        assert_eq!(log.last_lines(1), ["line 19999"]);
    }
}
