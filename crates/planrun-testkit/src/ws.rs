//! [`WsServer`]: an in-process WebSocket server for the `ws` executor's
//! tests, with one well-behaved path and several that misbehave on purpose.
//!
//! Owns the listener, the handshake (tokio-tungstenite's `accept_hdr_async`)
//! and what each path says; it runs until the handle is dropped. It must not
//! know about planrun: tests assert on what the client reports.

use std::net::{Ipv4Addr, SocketAddr};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

/// An in-process WebSocket server on 127.0.0.1:0. It stops, with every
/// connection, when dropped.
///
/// | path | behaviour |
/// |---|---|
/// | `/echo` | echoes text and binary messages; the text `handshake` is answered with JSON of the handshake (`path`, `headers` with lowercase names, `protocol`, and `cookie` when one was sent); the text `close CODE REASON` makes the server close with that code and reason; it picks the first offered subprotocol of [`WsServer::SUBPROTOCOLS`] |
/// | `/greet` | sends `greeting 1` and `greeting 2` at once, then echoes |
/// | `/set-cookie` | sets the cookies of [`WsServer::SET_COOKIES`] in its handshake answer (two `Set-Cookie` headers), then echoes |
/// | `/silent` | reads everything and never sends anything (pings and closes are still answered) |
/// | `/close-1011` | closes with 1011 and reason `boom` after the first message |
/// | `/forbidden` | refuses the handshake: 403 with [`WsServer::FORBIDDEN_BODY`] |
/// | `/flood` | sends [`WsServer::FLOOD_FRAME`] (64 bytes of text) as fast as it can until the client closes |
/// | `/ping` | sends a ping with [`WsServer::PING_PAYLOAD`]; when the pong arrives, sends `{"pong": "<its payload>"}`; then echoes |
///
/// Any other path is refused with 404.
#[derive(Debug)]
pub struct WsServer {
    /// Where the server listens.
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl WsServer {
    /// Subprotocols `/echo` supports; it picks the first the client offers.
    pub const SUBPROTOCOLS: [&str; 2] = ["chat.v1", "chat.v2"];

    /// The payload of the ping `/ping` sends.
    pub const PING_PAYLOAD: &str = "are-you-there";

    /// The `Set-Cookie` headers of `/set-cookie`'s handshake answer.
    pub const SET_COOKIES: [&str; 2] = ["ws_session=opened; Path=/", "ws_theme=dark; Path=/"];

    /// The 64-byte text frame `/flood` sends without pause.
    pub const FLOOD_FRAME: &str =
        "flood-0123456789abcdef0123456789abcdef0123456789abcdef0123456789";

    /// The body of the `403` that `/forbidden` answers.
    pub const FORBIDDEN_BODY: &str = "forbidden: no entry for tests";

    /// Binds 127.0.0.1 on a free port and serves in background tasks.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound: a test cannot go on without its fixture.
    pub async fn start() -> WsServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|err| panic!("ws fixture server cannot bind 127.0.0.1:0: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("ws fixture server has no local address: {err}"));
        let accept = tokio::spawn(accept_loop(listener));
        WsServer { addr, accept }
    }

    /// `ws://127.0.0.1:PORT` followed by `path` (a leading `/` is added if missing).
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("ws://{}{slash}{path}", self.addr)
    }
}

impl Drop for WsServer {
    fn drop(&mut self) {
        // the accept task owns the connections' JoinSet, which aborts them
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok((stream, _)) = listener.accept().await else {
            // out of file descriptors or similar: back off instead of spinning
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(serve(stream));
    }
}

/// What the client's handshake said, for `/echo`'s `handshake` answer.
#[derive(Debug, Default)]
struct Seen {
    path: String,
    headers: Map<String, Value>,
    protocol: Option<String>,
}

fn refuse(status: StatusCode, body: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(body.to_string()));
    *response.status_mut() = status;
    response
}

async fn serve(stream: TcpStream) {
    let mut seen = Seen::default();
    let callback = |request: &Request, mut response: Response| {
        let path = request.uri().path().to_string();
        match path.as_str() {
            "/forbidden" => return Err(refuse(StatusCode::FORBIDDEN, WsServer::FORBIDDEN_BODY)),
            "/echo" | "/greet" | "/silent" | "/close-1011" | "/ping" | "/flood" => {}
            "/set-cookie" => {
                for cookie in WsServer::SET_COOKIES {
                    response
                        .headers_mut()
                        .append(header::SET_COOKIE, HeaderValue::from_static(cookie));
                }
            }
            _ => return Err(refuse(StatusCode::NOT_FOUND, "no such WebSocket path")),
        }
        for (name, value) in request.headers() {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            seen.headers
                .entry(name.as_str().to_string())
                .and_modify(|v| {
                    if let Value::String(s) = v {
                        s.push_str(", ");
                        s.push_str(&text);
                    }
                })
                .or_insert(Value::String(text));
        }
        let offered: Vec<String> = request
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_string())
            .collect();
        if path == "/echo"
            && let Some(chosen) = offered
                .iter()
                .find(|p| WsServer::SUBPROTOCOLS.contains(&p.as_str()))
            && let Ok(value) = HeaderValue::from_str(chosen)
        {
            response
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
            seen.protocol = Some(chosen.clone());
        }
        seen.path = path;
        Ok(response)
    };
    let Ok(socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    match seen.path.as_str() {
        "/silent" => silent(socket).await,
        "/close-1011" => close_after_first(socket).await,
        "/ping" => ping_first(socket, &seen).await,
        "/flood" => flood(socket).await,
        "/greet" => {
            let mut socket = socket;
            for n in 1..=2 {
                if socket
                    .send(Message::text(format!("greeting {n}")))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            echo(socket, &seen).await;
        }
        _ => echo(socket, &seen).await,
    }
}

/// Reads until the end; tungstenite answers pings and the close on the way.
async fn drain(mut socket: WebSocketStream<TcpStream>) {
    while let Some(Ok(_)) = socket.next().await {}
}

async fn silent(socket: WebSocketStream<TcpStream>) {
    drain(socket).await;
}

async fn close_with(mut socket: WebSocketStream<TcpStream>, code: u16, reason: String) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason),
    };
    if socket.close(Some(frame)).await.is_ok() {
        drain(socket).await;
    }
}

/// Sends [`WsServer::FLOOD_FRAME`] without pause while reading until the
/// client's close, then answers it.
async fn flood(socket: WebSocketStream<TcpStream>) {
    let (mut sink, mut stream) = socket.split();
    let send = async {
        let frame = Message::text(WsServer::FLOOD_FRAME);
        // `feed` queues without flushing; tungstenite writes out as its
        // buffer fills, so the frames leave in large writes
        while sink.feed(frame.clone()).await.is_ok() {}
    };
    let read = async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    futures_util::future::select(std::pin::pin!(send), std::pin::pin!(read)).await;
    if let Ok(mut socket) = sink.reunite(stream) {
        // sends the queued answer to the client's close
        let _ = socket.close(None).await;
    }
}

async fn close_after_first(mut socket: WebSocketStream<TcpStream>) {
    while let Some(Ok(message)) = socket.next().await {
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            close_with(socket, 1011, String::from("boom")).await;
            return;
        }
    }
}

async fn ping_first(mut socket: WebSocketStream<TcpStream>, seen: &Seen) {
    if socket
        .send(Message::Ping(Bytes::from_static(
            WsServer::PING_PAYLOAD.as_bytes(),
        )))
        .await
        .is_err()
    {
        return;
    }
    while let Some(Ok(message)) = socket.next().await {
        if let Message::Pong(payload) = message {
            let answer = json!({"pong": String::from_utf8_lossy(&payload)});
            if socket
                .send(Message::text(answer.to_string()))
                .await
                .is_err()
            {
                return;
            }
            break;
        }
    }
    echo(socket, seen).await;
}

async fn echo(mut socket: WebSocketStream<TcpStream>, seen: &Seen) {
    while let Some(Ok(message)) = socket.next().await {
        let reply = match message {
            Message::Text(text) if text.as_str() == "handshake" => {
                let mut report = json!({
                    "path": seen.path,
                    "headers": seen.headers,
                    "protocol": seen.protocol,
                });
                if let Some(cookie) = seen.headers.get("cookie") {
                    report["cookie"] = cookie.clone();
                }
                Message::text(report.to_string())
            }
            Message::Text(text) if text.as_str().starts_with("close ") => {
                let mut parts = text.as_str()["close ".len()..].splitn(2, ' ');
                let code = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1000);
                let reason = parts.next().unwrap_or_default().to_string();
                close_with(socket, code, reason).await;
                return;
            }
            Message::Text(text) => Message::Text(text),
            Message::Binary(bytes) => Message::Binary(bytes),
            // pings and the close are answered by tungstenite on the next read
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}
