//! `POST /api/messages/stream/`: the seed's streaming reply (TC-005, TC-007) as
//! Server-Sent Events that really arrive one by one.
//!
//! Owns chunking the message and pacing the events; it stops early (without the
//! `done` event) when the server shuts down.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::json;
use tokio::sync::watch;

use crate::app::{AppState, stopping};
use crate::error::{ApiError, FieldErrors};
use crate::payload::{query_pairs, read_object, required_text};

const DEFAULT_DELAY_MS: u64 = 50;
const MAX_DELAY_MS: u64 = 5_000;
const MAX_CHUNKS: usize = 1_000;

/// How the reply is paced, from the query string.
#[derive(Debug, PartialEq, Eq)]
struct Pacing {
    delay: Duration,
    chunks: Option<usize>,
}

fn pacing(uri: &Uri) -> Result<Pacing, ApiError> {
    let mut delay_ms = DEFAULT_DELAY_MS;
    let mut chunks = None;
    for (key, value) in query_pairs(uri.query())? {
        match key.as_str() {
            "delay_ms" => {
                delay_ms = value
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms <= MAX_DELAY_MS)
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "`delay_ms` must be a whole number from 0 to {MAX_DELAY_MS}, got `{value}`"
                        ))
                    })?;
            }
            "chunks" => {
                chunks = Some(
                    value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_CHUNKS).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "`chunks` must be a whole number from 1 to {MAX_CHUNKS}, got `{value}`"
                            ))
                        })?,
                );
            }
            _ => {}
        }
    }
    Ok(Pacing {
        delay: Duration::from_millis(delay_ms),
        chunks,
    })
}

/// Splits the message into the chunks to send: one per word by default. With a
/// forced count, words are grouped evenly when there are more words than chunks
/// and repeated in turn when there are fewer.
fn chunk_message(message: &str, forced: Option<usize>) -> Vec<String> {
    let words: Vec<&str> = message.split_whitespace().collect();
    let Some(count) = forced else {
        return words.into_iter().map(str::to_owned).collect();
    };
    if words.len() <= count {
        return (0..count)
            .map(|i| words[i % words.len()].to_owned())
            .collect();
    }
    let (base, extra) = (words.len() / count, words.len() % count);
    let mut rest = words.as_slice();
    (0..count)
        .map(|i| {
            let take = base + usize::from(i < extra);
            let (group, tail) = rest.split_at(take);
            rest = tail;
            group.join(" ")
        })
        .collect()
}

fn message_event(index: usize, chunk: &str) -> Bytes {
    let data = json!({"chunk": chunk, "index": index});
    Bytes::from(format!("id: {index}\nevent: message\ndata: {data}\n\n"))
}

fn done_event(id: usize) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: done\ndata: [DONE]\n\n"))
}

struct Progress {
    chunks: Vec<String>,
    next: usize,
    delay: Duration,
    shutdown: watch::Receiver<bool>,
}

/// `POST /api/messages/stream/` with `{session_id, message}`.
pub(crate) async fn stream(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let pacing = pacing(&uri)?;
    let object = read_object(&headers, body).await?;
    let mut errors = FieldErrors::default();
    let session_id = required_text(&object, "session_id", &mut errors);
    let message = required_text(&object, "message", &mut errors);
    let (Some(_session_id), Some(message)) = (session_id, message) else {
        return Err(ApiError::fields(errors));
    };
    if !state.flavor().streams() {
        return Ok(buffered(&chunk_message(&message, pacing.chunks), pacing.delay).await);
    }
    let progress = Progress {
        chunks: chunk_message(&message, pacing.chunks),
        next: 0,
        delay: pacing.delay,
        shutdown: state.shutdown_signal(),
    };
    let events = stream::unfold(progress, |mut progress| async move {
        let index = progress.next;
        if index > progress.chunks.len() {
            return None;
        }
        if index > 0 && index < progress.chunks.len() {
            tokio::select! {
                () = tokio::time::sleep(progress.delay) => {}
                () = stopping(&mut progress.shutdown) => return None,
            }
        }
        progress.next += 1;
        let event = match progress.chunks.get(index) {
            Some(chunk) => message_event(index, chunk),
            None => done_event(index),
        };
        Some((Ok::<_, std::convert::Infallible>(event), progress))
    });
    Ok((
        stream_headers(),
        // Tells a fronting nginx (as in the seed) not to buffer the stream.
        [(
            header::HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        Body::from_stream(events),
    )
        .into_response())
}

fn stream_headers() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ]
}

/// What a WSGI worker behind a buffering proxy delivers: the same events, all
/// at once when the last is made.
async fn buffered(chunks: &[String], delay: Duration) -> Response {
    let pauses = u32::try_from(chunks.len().saturating_sub(1)).unwrap_or(u32::MAX);
    tokio::time::sleep(delay.saturating_mul(pauses)).await;
    let mut body = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        body.extend_from_slice(&message_event(index, chunk));
    }
    body.extend_from_slice(&done_event(chunks.len()));
    (stream_headers(), body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(query: &str) -> Uri {
        format!("/api/messages/stream/?{query}")
            .parse()
            .expect("test uri")
    }

    #[test]
    fn pacing_defaults_and_limits() {
        assert_eq!(
            pacing(&uri("")).expect("defaults"),
            Pacing {
                delay: Duration::from_millis(50),
                chunks: None
            }
        );
        assert_eq!(
            pacing(&uri("delay_ms=0&chunks=3")).expect("valid"),
            Pacing {
                delay: Duration::ZERO,
                chunks: Some(3)
            }
        );
        for bad in [
            "delay_ms=5001",
            "delay_ms=-1",
            "chunks=0",
            "chunks=1001",
            "chunks=x",
        ] {
            assert!(pacing(&uri(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunks_are_words_grouped_or_repeated() {
        assert_eq!(chunk_message(" a  b c ", None), ["a", "b", "c"]);
        assert_eq!(chunk_message("a b c d e", Some(2)), ["a b c", "d e"]);
        assert_eq!(chunk_message("a b", Some(5)), ["a", "b", "a", "b", "a"]);
        assert_eq!(chunk_message("a b", Some(2)), ["a", "b"]);
    }

    #[test]
    fn events_are_framed_with_ids() {
        assert_eq!(
            message_event(2, "hi \"x\""),
            "id: 2\nevent: message\ndata: {\"chunk\":\"hi \\\"x\\\"\",\"index\":2}\n\n"
        );
        assert_eq!(done_event(3), "id: 3\nevent: done\ndata: [DONE]\n\n");
    }
}
