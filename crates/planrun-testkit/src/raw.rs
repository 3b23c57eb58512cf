//! Routes that break HTTP on purpose, answered straight on the TCP socket: hyper
//! would never send a cut-off header block, nor end an event stream by closing
//! the connection. Also the peek at the request line that decides whether a
//! connection goes here or to the regular router.
//!
//! Owns the raw routes only; everything it does not recognise goes back untouched.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest request line (and, for raw routes, header block) read before giving up.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How long a client may take to send its request line.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A route served on the raw socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawRoute {
    /// Read the request, never answer, hold the connection until the client leaves.
    Hang,
    /// Write half a header block and close.
    CloseMidHeaders,
    /// An event stream without chunked framing: two events, then a clean close.
    SseClose,
    /// An event stream without chunked framing: one event, half of another, then a close.
    SseCloseMidEvent,
}

impl RawRoute {
    fn for_request_line(line: &[u8]) -> Option<Self> {
        let line = std::str::from_utf8(line).ok()?;
        let target = line.split(' ').nth(1)?;
        let path = target.split(['?', '#']).next()?;
        match path {
            "/hang" => Some(Self::Hang),
            "/close-mid-headers" => Some(Self::CloseMidHeaders),
            "/sse/close" => Some(Self::SseClose),
            "/sse/close-mid-event" => Some(Self::SseCloseMidEvent),
            _ => None,
        }
    }
}

/// What the first bytes of a connection asked for.
pub(crate) enum Peeked {
    /// A raw route; `head` holds the bytes read so far.
    Raw(RawRoute, Vec<u8>),
    /// Anything else; hand `head` and the socket to the router.
    Regular(Vec<u8>),
    /// The client sent nothing usable in time.
    Gone,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Reads until the request line is complete.
pub(crate) async fn peek_request_line<S: AsyncRead + Unpin>(stream: &mut S) -> Peeked {
    let read = async {
        let mut head = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(end) = find(&head, b"\r\n") {
                return match RawRoute::for_request_line(&head[..end]) {
                    Some(route) => Peeked::Raw(route, head),
                    None => Peeked::Regular(head),
                };
            }
            if head.len() >= MAX_HEAD_BYTES {
                // Let hyper reject the oversized line properly.
                return Peeked::Regular(head);
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Peeked::Gone,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(HEAD_TIMEOUT, read)
        .await
        .unwrap_or(Peeked::Gone)
}

/// Serves a raw route; returns when the connection is done with.
pub(crate) async fn serve_raw<S>(route: RawRoute, mut head: Vec<u8>, mut stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match route {
        RawRoute::Hang => {
            // Keep reading so the task ends when the client gives up.
            let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
        }
        RawRoute::CloseMidHeaders => {
            if read_head(&mut head, &mut stream).await {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Ty").await;
                let _ = stream.shutdown().await;
            }
        }
        RawRoute::SseClose | RawRoute::SseCloseMidEvent => {
            if !read_head(&mut head, &mut stream).await {
                return;
            }
            // no length and no chunking: the body ends where the connection does
            let body: &[u8] = if route == RawRoute::SseClose {
                b"id: 1\ndata: one\n\nid: 2\ndata: two\n\n"
            } else {
                b"id: 1\ndata: one\n\nid: 2\ndata: tw"
            };
            let _ = stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                      cache-control: no-cache\r\nconnection: close\r\n\r\n",
                )
                .await;
            let _ = stream.write_all(body).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// Reads the whole header block; `false` when the client left first.
///
/// Closing with unread input would turn the close into a reset and the client
/// might miss the bytes, so raw routes read the head before answering.
async fn read_head<S: AsyncRead + Unpin>(head: &mut Vec<u8>, stream: &mut S) -> bool {
    let mut chunk = [0u8; 1024];
    while find(head, b"\r\n\r\n").is_none() && head.len() < MAX_HEAD_BYTES {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_pick_raw_routes_by_path_only() {
        assert_eq!(
            RawRoute::for_request_line(b"GET /hang HTTP/1.1"),
            Some(RawRoute::Hang)
        );
        assert_eq!(
            RawRoute::for_request_line(b"POST /close-mid-headers?x=1 HTTP/1.1"),
            Some(RawRoute::CloseMidHeaders)
        );
        assert_eq!(
            RawRoute::for_request_line(b"GET /sse/close-mid-event HTTP/1.1"),
            Some(RawRoute::SseCloseMidEvent)
        );
        assert_eq!(RawRoute::for_request_line(b"GET /hanger HTTP/1.1"), None);
        assert_eq!(RawRoute::for_request_line(b"garbage"), None);
    }

    #[tokio::test]
    async fn peek_keeps_every_byte_it_read() {
        let mut input: &[u8] = b"GET /json HTTP/1.1\r\nhost: x\r\n\r\n";
        let Peeked::Regular(head) = peek_request_line(&mut input).await else {
            panic!("a regular request");
        };
        assert!(head.starts_with(b"GET /json HTTP/1.1\r\n"));
        let mut input: &[u8] = b"GET /hang";
        assert!(matches!(peek_request_line(&mut input).await, Peeked::Gone));
    }
}
