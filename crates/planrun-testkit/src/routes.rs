//! The fixture server's regular routes, served by axum: well-behaved answers,
//! slow ones, huge and endless bodies, redirects, cookies, a flaky route and
//! Server-Sent Events streams, tidy and quirky (see [`sse`]).
//!
//! Owns only what hyper can express; broken framing lives in [`raw`](crate::raw).

mod sse;

pub(crate) use sse::FLOOD_EVENT as SSE_FLOOD_EVENT;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{any, get};
use futures_util::stream;
use serde_json::{Map, Value, json};

/// Longest `/delay/{ms}` wait, so a typo cannot stall a test run for hours.
const MAX_DELAY_MS: u64 = 60_000;

/// Largest body `/echo` reads.
const MAX_ECHO_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Default)]
struct Fixtures {
    /// Calls seen per `/flaky/{key}/...` key.
    flaky: Arc<Mutex<HashMap<String, u64>>>,
    /// Connections seen per `/sse/resume/{key}` key.
    resume: Arc<Mutex<HashMap<String, u64>>>,
}

pub(crate) fn router() -> Router {
    Router::new()
        .route("/json", get(json_document))
        .route("/status/{code}", any(status))
        .route("/echo", any(echo))
        .route("/echo/{*rest}", any(echo))
        .route("/reflect/{encoding}", any(reflect))
        .route("/delay/{ms}", any(delay))
        .route("/endless", get(endless))
        .route("/big/{bytes}", get(big))
        .route("/bytes", get(bytes))
        .route("/redirect/{n}", any(redirect))
        .route("/set-cookie", get(set_cookie))
        .route("/needs-cookie", get(needs_cookie))
        .route("/flaky/{key}/{n}", any(flaky))
        .route("/sse/basic", get(sse_basic))
        .merge(sse::routes())
        .fallback(not_found)
        .with_state(Fixtures::default())
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": message.into(), "status": status.as_u16()})),
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no fixture at `{}`", uri.path()),
    )
}

async fn json_document() -> Json<Value> {
    Json(json!({"ok": true, "n": 42, "items": [1, 2, 3], "nested": {"name": "planrun"}}))
}

async fn status(Path(code): Path<String>) -> Response {
    let Some(status) = code
        .parse::<u16>()
        .ok()
        .filter(|code| (200..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{code}` is not a status from 200 to 599"),
        );
    };
    if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
        return status.into_response();
    }
    (status, Json(json!({"status": status.as_u16()}))).into_response()
}

fn cookies(headers: &HeaderMap) -> Map<String, Value> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.to_owned(), Value::String(value.to_owned())))
        .collect()
}

/// Repeated keys (query parameters, headers) become arrays; single ones strings.
fn push_multi(map: &mut Map<String, Value>, key: String, value: String) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, Value::String(value));
        }
        Some(Value::Array(values)) => values.push(Value::String(value)),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, Value::String(value)]);
        }
    }
}

async fn echo(
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(body) = axum::body::to_bytes(body, MAX_ECHO_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("echo reads at most {MAX_ECHO_BYTES} bytes"),
        );
    };
    let mut query_map = Map::new();
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    for (key, value) in pairs {
        push_multi(&mut query_map, key, value);
    }
    let mut header_map = Map::new();
    for (name, value) in &headers {
        // `HeaderName`s are lowercase already.
        push_multi(
            &mut header_map,
            name.as_str().to_owned(),
            String::from_utf8_lossy(value.as_bytes()).into_owned(),
        );
    }
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": query_map,
        "headers": header_map,
        "body": String::from_utf8_lossy(&body),
        "json": serde_json::from_slice::<Value>(&body).ok(),
        "cookies": cookies(&headers),
    }))
    .into_response()
}

/// The request body sent back re-encoded the way a server might: in the
/// body and in an `x-reflect` header, with every request header copied as
/// `x-reflect-{name}`.
async fn reflect(Path(encoding): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let Ok(body) = axum::body::to_bytes(body, MAX_ECHO_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("reflect reads at most {MAX_ECHO_BYTES} bytes"),
        );
    };
    let text = String::from_utf8_lossy(&body);
    let (encoded, content_type): (Vec<u8>, &str) = match encoding.as_str() {
        "utf8" => (text.as_bytes().to_vec(), "text/plain; charset=utf-8"),
        // one byte per character, `?` where Latin-1 has none
        "latin1" => (
            text.chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
            "text/plain; charset=iso-8859-1",
        ),
        // the UTF-8 bytes taken for Latin-1 characters, sent as UTF-8
        "mojibake" => (
            text.bytes()
                .map(char::from)
                .collect::<String>()
                .into_bytes(),
            "text/plain; charset=utf-8",
        ),
        "json-ascii" => (
            format!("{{\"echo\":\"{}\"}}", ascii_json(&text)).into_bytes(),
            "application/json",
        ),
        "percent" => (
            text.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
                .into_bytes(),
            "text/plain",
        ),
        "html" => (
            text.chars()
                .map(|c| match c {
                    '&' => String::from("&amp;"),
                    '<' => String::from("&lt;"),
                    '>' => String::from("&gt;"),
                    '"' => String::from("&quot;"),
                    c if c.is_ascii() => c.to_string(),
                    c => format!("&#{};", u32::from(c)),
                })
                .collect::<String>()
                .into_bytes(),
            "text/html; charset=utf-8",
        ),
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "no encoding `{other}` (utf8, latin1, mojibake, json-ascii, percent, html)"
                ),
            );
        }
    };
    let mut response = Response::new(Body::from(encoded.clone()));
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // header values take any byte but controls
    if let Ok(value) = HeaderValue::from_bytes(&encoded) {
        out.insert("x-reflect", value);
    }
    for (name, value) in &headers {
        if let Ok(name) = axum::http::HeaderName::from_bytes(format!("x-reflect-{name}").as_bytes())
        {
            out.append(name, value.clone());
        }
    }
    response
}

/// A JSON string's content with every non-ASCII character escaped.
fn ascii_json(text: &str) -> String {
    use std::fmt::Write as _;
    let quoted = serde_json::to_string(text).unwrap_or_default();
    let inner = &quoted[1..quoted.len() - 1];
    let mut out = String::with_capacity(inner.len());
    for c in inner.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

async fn delay(Path(ms): Path<String>) -> Response {
    let Some(ms) = ms.parse::<u64>().ok().filter(|ms| *ms <= MAX_DELAY_MS) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{ms}` is not a delay from 0 to {MAX_DELAY_MS} ms"),
        );
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Json(json!({"delayed_ms": ms})).into_response()
}

const X_CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];

async fn endless() -> Response {
    let body = stream::repeat_with(|| Ok::<_, Infallible>(Bytes::from_static(&X_CHUNK)));
    (
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(body),
    )
        .into_response()
}

async fn big(Path(bytes): Path<String>) -> Response {
    let Ok(total) = bytes.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{bytes}` is not a byte count"),
        );
    };
    // Streamed, so `/big/10000000000` costs no memory; the length is declared.
    let body = stream::unfold(total, |left| async move {
        if left == 0 {
            return None;
        }
        let n = left.min(X_CHUNK.len() as u64);
        let chunk = Bytes::from_static(&X_CHUNK[..n as usize]);
        Some((Ok::<_, Infallible>(chunk), left - n))
    });
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
            (header::CONTENT_LENGTH, HeaderValue::from(total)),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// `/bytes?type=…&hex=…`: any body, bytes that are no text included.
async fn bytes(RawQuery(query): RawQuery) -> Response {
    let pairs: HashMap<String, String> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let hex = pairs.get("hex").map_or("", String::as_str);
    let Some(body) = from_hex(hex) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{hex}` is not an even number of hex digits"),
        );
    };
    let mut response = Body::from(body).into_response();
    if let Some(value) = pairs
        .get("type")
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// The bytes written as hex digits (`"e9ff"`), or `None`.
fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect()
}

async fn redirect(Path(n): Path<String>) -> Response {
    let Ok(n) = n.parse::<u32>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{n}` is not a redirect count"),
        );
    };
    let location = match n {
        0 => return json_document().await.into_response(),
        1 => "/json".to_owned(),
        n => format!("/redirect/{}", n - 1),
    };
    (
        StatusCode::FOUND,
        [(header::LOCATION, location)],
        Json(json!({"redirects_left": n})),
    )
        .into_response()
}

async fn set_cookie() -> Response {
    (
        [(header::SET_COOKIE, "token=abc; Path=/")],
        Json(json!({"set": {"token": "abc"}})),
    )
        .into_response()
}

async fn needs_cookie(headers: HeaderMap) -> Response {
    if cookies(&headers).get("token").and_then(Value::as_str) == Some("abc") {
        Json(json!({"ok": true})).into_response()
    } else {
        error(StatusCode::UNAUTHORIZED, "cookie `token=abc` required")
    }
}

async fn flaky(
    State(fixtures): State<Fixtures>,
    Path((key, n)): Path<(String, String)>,
) -> Response {
    let Ok(failures) = n.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{n}` is not a failure count"),
        );
    };
    let attempt = {
        let mut counts = fixtures
            .flaky
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(key).or_insert(0);
        *count += 1;
        *count
    };
    if attempt <= failures {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "0")],
            Json(json!({"attempt": attempt, "ok": false})),
        )
            .into_response()
    } else {
        Json(json!({"attempt": attempt, "ok": true})).into_response()
    }
}

async fn sse_basic() -> Response {
    let events = stream::unfold(1u32, |n| async move {
        if n > 3 {
            return None;
        }
        if n > 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let event = format!("id: {n}\nevent: tick\ndata: {{\"n\":{n}}}\n\n");
        Some((Ok::<_, Infallible>(Bytes::from(event)), n + 1))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_becomes_bytes() {
        assert_eq!(from_hex("00e9FF"), Some(vec![0, 0xe9, 0xff]));
        assert_eq!(from_hex(""), Some(vec![]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn repeated_keys_become_arrays() {
        let mut map = Map::new();
        push_multi(&mut map, "a".into(), "1".into());
        push_multi(&mut map, "b".into(), "1".into());
        push_multi(&mut map, "a".into(), "2".into());
        push_multi(&mut map, "a".into(), "3".into());
        assert_eq!(Value::Object(map), json!({"a": ["1", "2", "3"], "b": "1"}));
    }
}
