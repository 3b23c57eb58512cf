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
    /// An event stream without chunked framing: one event after the
    /// `Last-Event-ID` sent, half of the next, then a close.
    SseCloseMidEvent,
    /// Read the request and close without a byte of answer.
    EmptyReply,
    /// Headers declaring a 100-byte JSON body, [`CUT_BODY`] (11 bytes), then a close.
    CutBody,
    /// A chunked body: one chunk of [`CUT_BODY`], then a close before the last chunk.
    CutChunked,
    /// Headers declaring a 100-byte body, [`STALL_BODY`] (10 bytes), then
    /// nothing more while the client stays.
    StallBody,
}

/// What `/cut-body` and `/cut-chunked` send of their bodies.
pub const CUT_BODY: &[u8] = b"{\"ok\": true";

/// What `/stall-body` sends of its body.
pub const STALL_BODY: &[u8] = b"first part";

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
            "/empty-reply" => Some(Self::EmptyReply),
            "/cut-body" => Some(Self::CutBody),
            "/cut-chunked" => Some(Self::CutChunked),
            "/stall-body" => Some(Self::StallBody),
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
            if read_request(&mut head, &mut stream).await {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Ty").await;
                let _ = stream.shutdown().await;
            }
        }
        RawRoute::EmptyReply => {
            if read_request(&mut head, &mut stream).await {
                let _ = stream.shutdown().await;
            }
        }
        RawRoute::CutBody | RawRoute::CutChunked | RawRoute::StallBody => {
            if !read_request(&mut head, &mut stream).await {
                return;
            }
            let answer = match route {
                RawRoute::CutBody => [
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n".as_slice(),
                    CUT_BODY,
                ]
                .concat(),
                RawRoute::CutChunked => [
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".as_slice(),
                    format!("{:x}\r\n", CUT_BODY.len()).as_bytes(),
                    CUT_BODY,
                    b"\r\n",
                ]
                .concat(),
                _ => [
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n".as_slice(),
                    STALL_BODY,
                ]
                .concat(),
            };
            let _ = stream.write_all(&answer).await;
            if route == RawRoute::StallBody {
                // hold the connection until the client gives up
                let _ = tokio::io::copy(&mut stream, &mut tokio::io::sink()).await;
            } else {
                let _ = stream.shutdown().await;
            }
        }
        RawRoute::SseClose | RawRoute::SseCloseMidEvent => {
            if !read_request(&mut head, &mut stream).await {
                return;
            }
            // no length and no chunking: the body ends where the connection does
            let body = if route == RawRoute::SseClose {
                String::from("id: 1\ndata: one\n\nid: 2\ndata: two\n\n")
            } else {
                resumed_then_cut(header(&head, "last-event-id"))
            };
            let mut answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                cache-control: no-cache\r\nconnection: close\r\n\r\n"
                .to_vec();
            answer.extend_from_slice(body.as_bytes());
            let _ = stream.write_all(&answer).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// The body of `/sse/close-mid-event` for a request with this
/// `Last-Event-ID`: event `k + 1` (`k` is the id sent, else 0), whose data
/// says which id was sent, then half of event `k + 2`.
fn resumed_then_cut(last_event_id: Option<String>) -> String {
    let after = last_event_id
        .as_deref()
        .and_then(|id| id.parse::<u64>().ok())
        .unwrap_or(0);
    let (whole, half) = (after.saturating_add(1), after.saturating_add(2));
    let sent = serde_json::Value::from(last_event_id);
    format!(
        "id: {whole}\ndata: {{\"n\":{whole},\"last_event_id\":{sent}}}\n\nid: {half}\ndata: {{\"n\":"
    )
}

/// Reads the rest of the request: the header block, then a body of
/// `Content-Length` bytes (discarded); `false` when the client left first.
///
/// Closing with unread input, a request body above all, turns the close into
/// a reset and the client might miss the answer, so raw routes read the whole
/// request before answering. Chunked request bodies are not read: the clients
/// of these routes send lengths.
async fn read_request<S: AsyncRead + Unpin>(head: &mut Vec<u8>, stream: &mut S) -> bool {
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(at) = find(head, b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() >= MAX_HEAD_BYTES {
            // an oversized head: answer anyway
            return true;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    };
    let length = header(&head[..end], "content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut left = length.saturating_sub((head.len() - end) as u64);
    while left > 0 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
    true
}

/// The value of a request header (the first of its name) in a head.
fn header(head: &[u8], name: &str) -> Option<String> {
    let end = find(head, b"\r\n\r\n").unwrap_or(head.len());
    String::from_utf8_lossy(&head[..end])
        .split("\r\n")
        .skip(1)
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
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
        assert_eq!(
            RawRoute::for_request_line(b"GET /cut-body HTTP/1.1"),
            Some(RawRoute::CutBody)
        );
        assert_eq!(RawRoute::for_request_line(b"GET /hanger HTTP/1.1"), None);
        assert_eq!(RawRoute::for_request_line(b"garbage"), None);
    }

    #[tokio::test]
    async fn the_whole_request_is_read_before_answering() {
        // the body comes partly with the head, partly after it
        let mut head =
            b"POST /sse/close HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123".to_vec();
        let mut rest: &[u8] = b"456789";
        assert!(read_request(&mut head, &mut rest).await);
        assert!(rest.is_empty());
        // a client that leaves before its body is complete
        let mut head = b"POST /sse/close HTTP/1.1\r\ncontent-length: 10\r\n\r\n".to_vec();
        let mut rest: &[u8] = b"0123";
        assert!(!read_request(&mut head, &mut rest).await);
        let mut head = b"GET /sse/close HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        let mut rest: &[u8] = b"";
        assert!(read_request(&mut head, &mut rest).await);
    }

    #[test]
    fn a_cut_stream_resumes_after_the_last_event_id() {
        assert_eq!(
            resumed_then_cut(None),
            "id: 1\ndata: {\"n\":1,\"last_event_id\":null}\n\nid: 2\ndata: {\"n\":"
        );
        assert_eq!(
            resumed_then_cut(Some(String::from("4"))),
            "id: 5\ndata: {\"n\":5,\"last_event_id\":\"4\"}\n\nid: 6\ndata: {\"n\":"
        );
        let head = b"GET / HTTP/1.1\r\nLast-Event-ID:  7 \r\n\r\nLast-Event-ID: 9";
        assert_eq!(header(head, "last-event-id").as_deref(), Some("7"));
        assert!(
            resumed_then_cut(Some(u64::MAX.to_string())).starts_with(&format!("id: {}", u64::MAX))
        );
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
