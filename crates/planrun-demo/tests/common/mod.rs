//! A minimal real HTTP/1.1 client for the demo's tests (hyper's connection API over
//! a fresh TCP connection per request) and helpers to start servers.
//!
//! It must stay a thin client: no retries, no redirects, no cookie jar, so the tests
//! see exactly what the server sent.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use planrun_demo::{DemoServer, Flavor};
use serde_json::Value;
use tokio::net::TcpStream;

pub async fn start(flavor: Flavor) -> DemoServer {
    DemoServer::start("127.0.0.1:0".parse().expect("literal address"), flavor)
        .await
        .expect("demo server starts")
}

/// A fully read response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("ascii header"))
    }

    /// `name=value` of the first `Set-Cookie`.
    pub fn cookie_pair(&self) -> String {
        let cookie = self.header("set-cookie").expect("a set-cookie header");
        cookie
            .split(';')
            .next()
            .expect("split yields one item")
            .to_owned()
    }
}

/// Builder for one request to a server.
pub struct Call {
    addr: SocketAddr,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

pub fn call(addr: SocketAddr, method: &str, path: &str) -> Call {
    Call {
        addr,
        method: method.parse().expect("method"),
        path: path.to_owned(),
        headers: Vec::new(),
        body: Bytes::new(),
    }
}

impl Call {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(self, value: &Value) -> Self {
        let mut call = self.header("content-type", "application/json");
        call.body = Bytes::from(value.to_string());
        call
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends and returns the response with its body still streaming.
    pub async fn open(self) -> Response<Incoming> {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("http handshake");
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(self.method)
            .uri(&self.path)
            .header("host", self.addr.to_string());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(self.body)).expect("valid request");
        sender.send_request(request).await.expect("response")
    }

    /// Sends and reads the whole body.
    pub async fn send(self) -> Reply {
        let response = self.open().await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// Writes `request` as is and reads until the server closes (at most 5 s).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .expect("server closes within 5 s")
        .expect("read response");
    String::from_utf8(response).expect("utf-8 response")
}

/// Reads a streaming body frame by frame, noting when each data frame arrived.
pub async fn timed_frames(response: Response<Incoming>) -> Vec<(Duration, Bytes)> {
    let start = Instant::now();
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("body frame");
        if let Ok(data) = frame.into_data() {
            frames.push((start.elapsed(), data));
        }
    }
    frames
}

/// One parsed Server-Sent Event (only the fields the demo emits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: String,
}

/// Splits an SSE text into events (LF line endings, as the demo writes them).
pub fn parse_events(text: &str) -> Vec<SseEvent> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = SseEvent {
                id: String::new(),
                event: String::new(),
                data: String::new(),
            };
            for line in block.lines() {
                let (field, value) = line.split_once(": ").expect("field: value");
                match field {
                    "id" => value.clone_into(&mut event.id),
                    "event" => value.clone_into(&mut event.event),
                    "data" => value.clone_into(&mut event.data),
                    other => panic!("unexpected field {other}"),
                }
            }
            event
        })
        .collect()
}
