//! Server-Sent Events routes for the `sse` executor's tests: streams that
//! stall, burst, resume, break off, and bend the format every way the WHATWG
//! parsing rules allow. Streams cut at the TCP level without chunked framing
//! live in [`raw`](crate::raw).
//!
//! | route | answer |
//! |---|---|
//! | `GET /sse/stall/{n}` | `n` `tick` events (`id: i`, `data: {"n":i}`) in one write, then stays open, silent |
//! | `GET /sse/burst/{n}` | `n` `tick` events in one write, then the stream ends |
//! | `GET /sse/endless` | `tick` events without pause, forever |
//! | `GET /sse/flood` | [`FixtureServer::SSE_FLOOD_EVENT`](crate::FixtureServer::SSE_FLOOD_EVENT) (an event with one byte of data) without pause, forever, many to a write |
//! | `GET /sse/endless-line` | `data: ` and then `x` without pause, forever: one line that never ends |
//! | `GET /sse/keep-alive-flood` | `:` comment lines without pause, forever: never an event |
//! | `GET /sse/words` | `message` events `{"chunk": w, "index": i}` for `alpha beta gamma` with ids, then `event: done` / `data: [DONE]`, all in one write, then stays open |
//! | `GET /sse/quirks/{lf,crlf,cr}` | [`QUIRKS`] with that line ending; `?bytewise` sends one byte per chunk |
//! | `GET /sse/invalid-utf8` | `data: a\xFFb`, then `café` with `é` split over two chunks, then `end` plus a cut-off sequence |
//! | `ANY /sse/echo` | one `echo` event whose data is the request as JSON (`method`, `headers`, `cookies`, `body`, `json`), then the stream ends |
//! | `GET /sse/resume/{key}` | `retry: 10`, then two events after the `Last-Event-ID` sent (`{"n", "connection", "last_event_id"}`), then the stream ends, all in one write; after event 6 comes `event: done`; `?connections=N`: 204 from connection N+1 on |
//! | `GET /sse/abort/{between,mid}` | two events, then the chunked body is cut by an error between events or in the middle of a third |
//! | `ANY /sse/close` (raw) | no length, no chunking: events `one` and `two` (ids 1, 2), then the connection closes |
//! | `ANY /sse/close-mid-event` (raw) | no length, no chunking: event `k+1` (`k`: the `Last-Event-ID` sent, else 0) with data `{"n": k+1, "last_event_id": <sent or null>}`, then half of event `k+2`, then the connection closes |
//!
//! Streams that a test counts at a time limit (`stall`, `words`, `resume`)
//! send what is counted in one write before going silent or closing, so the
//! count does not depend on how loaded the machine is.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures_util::stream::{self, StreamExt};
use serde_json::{Map, Value, json};

use super::{Fixtures, cookies, error};

/// Pause before `/sse/abort` cuts its stream.
const PACE: Duration = Duration::from_millis(10);

/// Most events a numbered route sends, so a typo cannot flood a test.
const MAX_EVENTS: u32 = 10_000;

/// The quirky stream of `/sse/quirks/{ending}`, written with `\n` (replaced
/// by the route's line ending). Read per WHATWG it holds six events:
///
/// | type | data | last event id |
/// |---|---|---|
/// | `message` | `first` | none |
/// | `update` | `multi\nline` | `7` |
/// | `message` | `no space` | none (a bare `id` line clears it) |
/// | `message` | empty (a bare `data` line) | `8` (set by an id-only block) |
/// | `message` | ` two spaces` (an empty `event:` means `message`) | `8` |
/// | `message` | `ünïcödé ✓` | `8` |
///
/// plus 2 comments, 3 ignored lines (`bogus:`, `no colon here`,
/// `retry: soon`), `retry` 250 ms and a BOM in front.
const QUIRKS: &str = "\u{feff}: a comment before anything\n\
retry: 250\n\
\n\
data: first\n\
\n\
event: update\n\
data: multi\n\
data: line\n\
id: 7\n\
\n\
: keep-alive\n\
bogus: an unknown field\n\
no colon here\n\
data:no space\n\
id\n\
\n\
id: 8\n\
\n\
retry: soon\n\
data\n\
\n\
event:\n\
data:  two spaces\n\
\n\
data: ünïcödé ✓\n\
\n";

/// The event `/sse/flood` sends: one byte of data, the smallest event with
/// data there is but one.
pub(crate) const FLOOD_EVENT: &str = "data: x\n\n";

/// Bytes of one write of the flooding routes.
const FLOOD_WRITE: usize = 64 * 1024;

pub(super) fn routes() -> Router<Fixtures> {
    Router::new()
        .route("/sse/stall/{n}", get(stall))
        .route("/sse/burst/{n}", get(burst))
        .route("/sse/endless", get(endless))
        .route("/sse/flood", get(flood))
        .route("/sse/endless-line", get(endless_line))
        .route("/sse/keep-alive-flood", get(keep_alive_flood))
        .route("/sse/words", get(words))
        .route("/sse/quirks/{ending}", get(quirks))
        .route("/sse/invalid-utf8", get(invalid_utf8))
        .route("/sse/echo", any(echo))
        .route("/sse/resume/{key}", get(resume))
        .route("/sse/abort/{place}", get(abort))
}

fn event_stream(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn tick(n: u32) -> Bytes {
    Bytes::from(format!("id: {n}\nevent: tick\ndata: {{\"n\":{n}}}\n\n"))
}

fn count(n: &str) -> Result<u32, Response> {
    n.parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_EVENTS)
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                format!("`{n}` is not an event count from 0 to {MAX_EVENTS}"),
            )
        })
}

async fn stall(Path(n): Path<String>) -> Response {
    let n = match count(&n) {
        Ok(n) => n,
        Err(response) => return response,
    };
    let all: Vec<u8> = (1..=n).flat_map(|i| tick(i).to_vec()).collect();
    let events = (!all.is_empty()).then(|| Ok::<_, Infallible>(Bytes::from(all)));
    // then silence, with the connection open, until the client leaves
    event_stream(Body::from_stream(
        stream::iter(events).chain(stream::pending()),
    ))
}

async fn burst(Path(n): Path<String>) -> Response {
    let n = match count(&n) {
        Ok(n) => n,
        Err(response) => return response,
    };
    let all: Vec<u8> = (1..=n).flat_map(|i| tick(i).to_vec()).collect();
    event_stream(Body::from(all))
}

async fn endless() -> Response {
    let events = stream::iter((1u32..).map(|i| Ok::<_, Infallible>(tick(i))));
    event_stream(Body::from_stream(events))
}

/// `piece` repeated to fill one write.
fn repeated(piece: &str) -> Bytes {
    Bytes::from(piece.repeat(FLOOD_WRITE / piece.len()))
}

/// `first`, then `write` again and again, forever, without pause.
fn forever(first: &'static str, write: Bytes) -> Response {
    let first =
        stream::once(async move { Ok::<_, Infallible>(Bytes::from_static(first.as_bytes())) });
    let rest = stream::repeat_with(move || Ok::<_, Infallible>(write.clone()));
    event_stream(Body::from_stream(first.chain(rest)))
}

async fn flood() -> Response {
    forever("", repeated(FLOOD_EVENT))
}

async fn endless_line() -> Response {
    forever("data: ", repeated("x"))
}

async fn keep_alive_flood() -> Response {
    forever("", repeated(":\n"))
}

async fn words() -> Response {
    const WORDS: [&str; 3] = ["alpha", "beta", "gamma"];
    let mut text = String::new();
    for (i, word) in WORDS.iter().enumerate() {
        let data = json!({"chunk": word, "index": i});
        let _ = write!(text, "id: {i}\nevent: message\ndata: {data}\n\n");
    }
    let _ = write!(text, "id: {}\nevent: done\ndata: [DONE]\n\n", WORDS.len());
    let events = stream::once(async { Ok::<_, Infallible>(Bytes::from(text)) });
    event_stream(Body::from_stream(events.chain(stream::pending())))
}

async fn quirks(Path(ending): Path<String>, RawQuery(query): RawQuery) -> Response {
    let ending = match ending.as_str() {
        "lf" => "\n",
        "crlf" => "\r\n",
        "cr" => "\r",
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("`{other}` is not a line ending: use `lf`, `crlf` or `cr`"),
            );
        }
    };
    let text = QUIRKS.replace('\n', ending).into_bytes();
    let bytewise = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "bytewise"));
    if bytewise {
        // one chunk per byte: splits CRLF pairs, the BOM and every multi-byte
        // character across reads
        let bytes = stream::iter(
            text.into_iter()
                .map(|b| Ok::<_, Infallible>(Bytes::from(vec![b]))),
        );
        event_stream(Body::from_stream(bytes))
    } else {
        event_stream(Body::from(text))
    }
}

async fn invalid_utf8() -> Response {
    let chunks: [&'static [u8]; 4] = [
        b"data: a\xFFb\n\n",
        b"data: caf\xC3",
        b"\xA9\n\n",
        b"data: end\xE2\x82\n\n",
    ];
    let bytes = stream::iter(chunks.map(|c| Ok::<_, Infallible>(Bytes::from_static(c))));
    event_stream(Body::from_stream(bytes))
}

async fn echo(method: Method, headers: HeaderMap, body: Body) -> Response {
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "echo reads at most 1 MiB");
    };
    let header_map: Map<String, Value> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
    let data = json!({
        "method": method.as_str(),
        "headers": header_map,
        "cookies": cookies(&headers),
        "body": String::from_utf8_lossy(&body),
        "json": serde_json::from_slice::<Value>(&body).ok(),
    });
    event_stream(Body::from(format!("event: echo\ndata: {data}\n\n")))
}

async fn resume(
    State(fixtures): State<Fixtures>,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let connection = {
        let mut counts = fixtures
            .resume
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(key).or_insert(0);
        *count += 1;
        *count
    };
    let limit = query.as_deref().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("connections="))
            .and_then(|n| n.parse::<u64>().ok())
    });
    if limit.is_some_and(|limit| connection > limit) {
        return StatusCode::NO_CONTENT.into_response();
    }
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let after = last
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut text = String::from("retry: 10\n\n");
    for n in after.saturating_add(1)..=after.saturating_add(2) {
        let data = json!({"n": n, "connection": connection, "last_event_id": last});
        let _ = write!(text, "id: {n}\ndata: {data}\n\n");
        if n == 6 {
            text.push_str("event: done\ndata: [DONE]\n\n");
            break;
        }
    }
    event_stream(Body::from(text))
}

#[derive(Debug)]
struct Cut;

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the fixture cuts the stream")
    }
}

impl std::error::Error for Cut {}

async fn abort(Path(place): Path<String>) -> Response {
    let tail: &'static [u8] = match place.as_str() {
        "between" => b"",
        "mid" => b"id: 3\ndata: thr",
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("`{other}` is not a place: use `between` or `mid`"),
            );
        }
    };
    let parts = [
        Ok(tick(1)),
        Ok(tick(2)),
        Ok(Bytes::from_static(tail)),
        Err(Cut),
    ];
    // pause before the cut so the events arrive before the error does
    let body = stream::iter(parts).then(|part| async move {
        if part.is_err() {
            tokio::time::sleep(PACE).await;
        }
        part
    });
    event_stream(Body::from_stream(body))
}
