//! Opening a WebSocket: the URL (`ws`, `wss`, or their `http`/`https`
//! spellings), the handshake request (headers, cookies, subprotocols), the
//! TCP connection, TLS and the upgrade, each failure with its own message.
//!
//! This module must not send or read messages: it returns an open socket and
//! what the handshake answered, or the answer of a server that refused the
//! upgrade (whether that is an error is the step's choice).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::header::{COOKIE, SEC_WEBSOCKET_PROTOCOL, USER_AGENT};
use http::{HeaderMap, HeaderValue};
use planrun_runner::executor::StepError;
use planrun_spec::kinds::WsConfig;
use planrun_spec::value::Span;
use reqwest::Url;
use serde_json::Map;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, tungstenite};

use super::text::{excerpt, human};
use crate::http::error::TLS_HELP;

/// An open client socket.
pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The URLs of a `ws` step.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// The socket URL (`ws://` or `wss://`).
    pub(super) ws: Url,
    /// The same URL as `http://` or `https://`, for the cookie jar.
    pub(super) http: Url,
    /// What to check when the server cannot be reached (the variables the
    /// URL was built from, or "the URL").
    pub(super) origin: String,
}

impl Target {
    /// Reads `url`; `http`/`https` mean `ws`/`wss`. `written` is the URL as
    /// the spec wrote it, before rendering.
    pub(super) fn parse(text: &str, written: Option<&str>, span: &Span) -> Result<Self, StepError> {
        let bad = |why: String| {
            StepError::new(format!("`{text}` is not a WebSocket URL: {why}"))
                .at(span.clone())
                .help("write `ws://host:port/path` or `wss://…`; `http://` and `https://` mean the same, so `{{ base_url }}/ws/…` works")
        };
        if !text.contains("://") {
            return Err(bad(String::from(
                "it does not start with `ws://`, `wss://`, `http://` or `https://`",
            )));
        }
        let url = Url::parse(text).map_err(|err| bad(err.to_string()))?;
        let (ws_scheme, http_scheme) = match url.scheme() {
            "ws" | "http" => ("ws", "http"),
            "wss" | "https" => ("wss", "https"),
            other => return Err(bad(format!("the scheme is `{other}`"))),
        };
        let mut ws = url.clone();
        let mut http = url;
        // switching between special schemes always works; the `Err` is for
        // `file:` and the like, excluded above
        ws.set_scheme(ws_scheme)
            .map_err(|()| bad(String::from("cannot use it as `ws://`")))?;
        http.set_scheme(http_scheme)
            .map_err(|()| bad(String::from("cannot use it as `http://`")))?;
        if ws.host_str().is_none_or(str::is_empty) {
            return Err(bad(String::from("it has no host")));
        }
        Ok(Self {
            ws,
            http,
            origin: crate::http::error::url_origin(written),
        })
    }

    fn is_tls(&self) -> bool {
        self.ws.scheme() == "wss"
    }

    /// `host:port`, for connecting and messages.
    fn authority(&self) -> String {
        let host = self.ws.host_str().unwrap_or_default();
        let port = self
            .ws
            .port_or_known_default()
            .unwrap_or(if self.is_tls() { 443 } else { 80 });
        format!("{host}:{port}")
    }
}

/// The answer to a successful handshake.
pub(super) type Response = tungstenite::handshake::client::Response;

/// What the handshake answered.
#[derive(Debug, Clone)]
pub(super) struct Handshake {
    /// The status (101).
    pub(super) status: u16,
    /// The response headers as `http` reports them: lowercase names, repeats
    /// joined with `, ` (`set-cookie` with a newline).
    pub(super) headers: Map<String, serde_json::Value>,
    /// The subprotocol the server chose.
    pub(super) protocol: Option<String>,
}

impl Handshake {
    /// What `response` says.
    pub(super) fn new(response: &Response) -> Self {
        Self {
            status: response.status().as_u16(),
            headers: crate::http::headers_doc(response.headers()),
            protocol: response
                .headers()
                .get(SEC_WEBSOCKET_PROTOCOL)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        }
    }
}

/// The handshake request's headers: the step's `headers`, the merged cookies
/// (jar, then a `Cookie` header of the step, then `cookies`), the offered
/// subprotocols and planrun's user agent (unless set).
pub(super) fn request_headers(
    config: &WsConfig,
    jar_cookies: Option<&str>,
    headers_span: &Span,
    cookies_span: &Span,
) -> Result<HeaderMap, StepError> {
    let (mut headers, own_cookie) = crate::http::step_headers(&config.headers, headers_span)?;
    // there is no client to add the jar's cookies: they are always merged in
    let cookie = crate::http::cookies::cookie_header(
        jar_cookies,
        own_cookie.as_deref(),
        &config.cookies,
        cookies_span,
    )?;
    if let Some(cookie) = cookie {
        headers.insert(COOKIE, cookie);
    }
    if !config.subprotocols.is_empty() {
        let mut offered: Vec<String> = headers
            .get_all(SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        offered.extend(config.subprotocols.iter().cloned());
        let value = HeaderValue::from_str(&offered.join(", ")).map_err(|_| {
            StepError::new("a subprotocol name is not valid in HTTP").at(headers_span.clone())
        })?;
        headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    if !headers.contains_key(USER_AGENT) {
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("planrun/", env!("CARGO_PKG_VERSION"))),
        );
    }
    Ok(headers)
}

/// How a handshake ended, when the server answered it.
pub(super) enum Opened {
    /// Upgraded: the socket and the 101 answer.
    Open(Box<Socket>, Response),
    /// The server answered with another status.
    Refused(Refusal),
}

/// The answer of a server that did not switch protocols.
#[derive(Debug)]
pub(super) struct Refusal {
    /// The status, not 101.
    pub(super) status: http::StatusCode,
    /// The answer's headers.
    pub(super) headers: HeaderMap,
    /// The body bytes that arrived with the headers (the handshake reads no
    /// further): a short body is whole.
    pub(super) body: Vec<u8>,
}

impl Refusal {
    fn new(response: tungstenite::http::Response<Option<Vec<u8>>>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: body.unwrap_or_default(),
        }
    }

    /// The body as text (invalid UTF-8 replaced), at most `cap` bytes of it.
    pub(super) fn body_text(&self, cap: usize) -> String {
        let bytes = &self.body[..self.body.len().min(cap)];
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// The refusal as the step's error, when the step does not allow it.
    pub(super) fn error(&self, url: &str) -> StepError {
        let status = self.status;
        let reason = status.canonical_reason().unwrap_or("");
        let body = self.body_text(self.body.len());
        let body = body.trim();
        let body = if body.is_empty() {
            String::from(" (no body)")
        } else {
            format!(": {}", excerpt(body, 200))
        };
        let help = match status.as_u16() {
            401 | 403 => {
                "the server wants credentials: log in with an `http` step first (its cookies are sent), or set `headers`/`cookies`; to check the refusal itself, set `allow_refusal = true` and expect its `status`"
            }
            404 => {
                "check the socket's path (a server without WebSocket routing, a WSGI-only deployment, answers 404 here); to check the refusal itself, set `allow_refusal = true` and expect its `status`"
            }
            426 => "the server wants a different protocol version or an upgrade it did not get",
            _ => "check the URL and what the server expects in the handshake",
        };
        let message = if status.is_success() {
            format!(
                "`{url}` is not a WebSocket endpoint: it answered the handshake with {} {reason} instead of 101 Switching Protocols{body}",
                status.as_u16()
            )
        } else {
            format!(
                "the server refused the WebSocket handshake of `{url}` with {} {reason}{body}",
                status.as_u16()
            )
        };
        StepError::new(message).help(help)
    }
}

/// Connects, sets up TLS and performs the upgrade, all before `deadline`.
/// An answer other than 101 is [`Opened::Refused`], not an error.
pub(super) async fn open(
    target: &Target,
    headers: HeaderMap,
    tls: Option<Arc<rustls::ClientConfig>>,
    max_message: usize,
    deadline: Instant,
    limit: Duration,
) -> Result<Opened, StepError> {
    let url = target.ws.as_str();
    let authority = target.authority();
    let mut request = url.into_client_request().map_err(|err| {
        StepError::new(format!(
            "cannot build the handshake request for `{url}`: {err}"
        ))
    })?;
    request.headers_mut().extend(headers);

    let tcp = match timeout_at(deadline, TcpStream::connect(&authority)).await {
        Err(_) => {
            return Err(StepError::new(format!(
                "no TCP connection to `{authority}` (for `{url}`) within {} (the step's time limit)",
                human(limit)
            ))
            .help("is the host reachable from here? a firewall that drops packets looks like this"));
        }
        Ok(Err(err)) => return Err(connect_error(&err, url, &authority, &target.origin)),
        Ok(Ok(tcp)) => tcp,
    };
    // messages are small and latencies are measured: send frames at once
    let _ = tcp.set_nodelay(true);

    let connector = match tls {
        Some(config) => Connector::Rustls(config),
        None => Connector::Plain,
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let handshake = tokio_tungstenite::client_async_tls_with_config(
        request,
        tcp,
        Some(config),
        Some(connector),
    );
    let (socket, response) = match timeout_at(deadline, handshake).await {
        Err(_) => {
            let what = if target.is_tls() {
                "the TLS and WebSocket handshakes"
            } else {
                "the WebSocket handshake"
            };
            return Err(StepError::new(format!(
                "`{authority}` accepted the TCP connection but did not finish {what} for `{url}` within {} (the step's time limit)",
                human(limit)
            ))
            .help("is it a WebSocket endpoint? a server that waits for more of the request looks like this"));
        }
        Ok(Err(tungstenite::Error::Http(response))) => {
            return Ok(Opened::Refused(Refusal::new(*response)));
        }
        Ok(Err(err)) => return Err(handshake_error(err, url, target.is_tls())),
        Ok(Ok(done)) => done,
    };
    Ok(Opened::Open(Box::new(socket), response))
}

fn connect_error(err: &io::Error, url: &str, authority: &str, origin: &str) -> StepError {
    if err.kind() == io::ErrorKind::ConnectionRefused {
        return StepError::new(format!(
            "cannot connect to `{authority}` (for `{url}`): connection refused"
        ))
        .help(format!(
            "is the server running and listening on that port? check {origin}"
        ));
    }
    let text = err.to_string();
    if text.contains("lookup") || text.contains("resolve") || text.contains("not known") {
        StepError::new(format!(
            "cannot connect to `{authority}` (for `{url}`): the host name does not resolve ({text})"
        ))
        .help(format!("check the host name in {origin}"))
    } else {
        StepError::new(format!(
            "cannot connect to `{authority}` (for `{url}`): {text}"
        ))
        .help(format!(
            "is the server running and reachable from here? check {origin}"
        ))
    }
}

/// The rustls error inside an I/O error, when TLS is what failed.
fn tls_cause(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

fn handshake_error(err: tungstenite::Error, url: &str, tls: bool) -> StepError {
    use tungstenite::Error as E;
    match err {
        E::Io(io) if tls && tls_cause(&io).is_some() => {
            let cause = tls_cause(&io).expect("invariant: the guard found a TLS cause");
            crate::http::error::tls_failure(url, cause)
        }
        E::Tls(tls_err) => {
            StepError::new(format!("TLS handshake with `{url}` failed: {tls_err}")).help(TLS_HELP)
        }
        E::Protocol(ProtocolError::SecWebSocketSubProtocolError(sub)) => {
            let why = match sub {
                SubProtocolError::NoSubProtocol => {
                    "the server chose none of the offered `subprotocols`"
                }
                SubProtocolError::InvalidSubProtocol => {
                    "the server chose a subprotocol that was not offered"
                }
                SubProtocolError::ServerSentSubProtocolNoneRequested => {
                    "the server chose a subprotocol although none was offered"
                }
            };
            StepError::new(format!("the WebSocket handshake of `{url}` failed: {why}"))
                .help("check `subprotocols` against what the server supports")
        }
        E::Protocol(p) => StepError::new(format!(
            "`{url}` did not answer with a valid WebSocket upgrade: {p}"
        ))
        .help("is it a WebSocket endpoint? a proxy in between may strip the `Upgrade` header"),
        E::Io(io) => {
            let phase = if io.kind() == io::ErrorKind::UnexpectedEof
                || io.kind() == io::ErrorKind::ConnectionReset
            {
                "the server closed the connection during the WebSocket handshake"
            } else {
                "the WebSocket handshake failed"
            };
            StepError::new(format!("{phase} of `{url}`: {io}"))
        }
        other => StepError::new(format!(
            "the WebSocket handshake of `{url}` failed: {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn http_urls_mean_websocket_urls() {
        let t = Target::parse("http://127.0.0.1:8000/ws/chat/", None, &(0..0)).unwrap();
        assert_eq!(t.ws.as_str(), "ws://127.0.0.1:8000/ws/chat/");
        assert_eq!(t.http.as_str(), "http://127.0.0.1:8000/ws/chat/");
        let t = Target::parse("wss://example.com/s?x=1", None, &(0..0)).unwrap();
        assert_eq!(t.http.as_str(), "https://example.com/s?x=1");
        assert_eq!(t.authority(), "example.com:443");
        let err = Target::parse("ftp://h/", None, &(0..0)).unwrap_err();
        assert!(
            err.message.contains("the scheme is `ftp`"),
            "{}",
            err.message
        );
        let err = Target::parse("localhost:8000", None, &(0..0)).unwrap_err();
        assert!(
            err.message.contains("does not start with"),
            "{}",
            err.message
        );
    }

    #[test]
    fn cookies_merge_jar_header_then_step_cookies() {
        let config = WsConfig {
            headers: BTreeMap::from([
                (String::from("Cookie"), String::from("extra=1; session=hdr")),
                (String::from("X-Token"), String::from("t")),
            ]),
            cookies: BTreeMap::from([(String::from("session"), String::from("mine"))]),
            subprotocols: vec![String::from("chat.v1"), String::from("chat.v2")],
            ..WsConfig::default()
        };
        let headers =
            request_headers(&config, Some("session=jar; theme=dark"), &(0..0), &(0..0)).unwrap();
        assert_eq!(
            headers[COOKIE].to_str().unwrap(),
            "session=mine; theme=dark; extra=1"
        );
        assert_eq!(headers["x-token"], "t");
        assert_eq!(headers[SEC_WEBSOCKET_PROTOCOL], "chat.v1, chat.v2");
        assert!(headers.contains_key(USER_AGENT));
    }
}
