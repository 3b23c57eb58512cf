//! Fixture servers for planrun's own tests: an in-process HTTP server on
//! `127.0.0.1:0` with well-behaved and deliberately misbehaving routes, plus the
//! demo target re-exported for realistic end-to-end plans.
//!
//! This crate is test support only (`publish = false`). It must not depend on the
//! planrun crates under test, so that their tests can use it without cycles.
//!
//! ```
//! use planrun_testkit::FixtureServer;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let server = FixtureServer::start().await;
//! assert_eq!(server.url("/json"), format!("http://{}/json", server.addr));
//!
//! let mut tcp = tokio::net::TcpStream::connect(server.addr).await?;
//! tcp.write_all(b"GET /close-mid-headers HTTP/1.1\r\nhost: x\r\n\r\n").await?;
//! let mut answer = Vec::new();
//! tcp.read_to_end(&mut answer).await?;
//! assert_eq!(answer, b"HTTP/1.1 200 OK\r\nContent-Ty");
//! # Ok(())
//! # }
//! ```
//!
//! # Routes of [`FixtureServer`]
//!
//! | route | answer |
//! |---|---|
//! | `GET /json` | `{"ok":true,"n":42,"items":[1,2,3],"nested":{"name":"planrun"}}` |
//! | `ANY /status/{code}` | that status (200–599) with `{"status": code}` (no body for 204/304) |
//! | `ANY /echo[/...]` | JSON of `method`, `path`, `query`, `headers` (lowercase names), `body`, `json`, `cookies` |
//! | `ANY /reflect/{encoding}` | the request body re-encoded as a server might (`utf8`, `latin1`, `mojibake`: UTF-8 read as Latin-1, `json-ascii`: `\u` escapes, `percent`, `html`: character references), in the body and an `x-reflect` header; each request header back as `x-reflect-{name}` |
//! | `ANY /delay/{ms}` | waits `ms` milliseconds, then 200 `{"delayed_ms": ms}` |
//! | `ANY /hang` | reads the request and never answers, holding the connection |
//! | `ANY /close-mid-headers` | writes `HTTP/1.1 200 OK\r\nContent-Ty` and closes |
//! | `ANY /empty-reply` | reads the request and closes without answering |
//! | `ANY /cut-body` | declares a 100-byte JSON body, sends [`CUT_BODY`] (11 bytes) and closes |
//! | `ANY /cut-chunked` | a chunked body: one chunk of [`CUT_BODY`], then a close before the last chunk |
//! | `ANY /stall-body` | declares a 100-byte body, sends [`STALL_BODY`] (10 bytes), then nothing while the client stays |
//! | `GET /bytes?type=…&hex=…` | 200 with that `content-type` (none without `type`) and the bytes written in hex as the body |
//! | `GET /endless` | 200 with an endless chunked body of `x` |
//! | `GET /big/{bytes}` | 200 with exactly that many `x` bytes and a `Content-Length` |
//! | `ANY /redirect/{n}` | 302 to `/redirect/{n-1}`, the last hop to `/json`: `n` redirects in all (`/redirect/0` is `/json`) |
//! | `GET /set-cookie` | 200 setting `token=abc; Path=/` |
//! | `GET /needs-cookie` | 200 with cookie `token=abc`, else 401 |
//! | `ANY /flaky/{key}/{n}` | 503 for the first `n` calls with that key, then 200; `{"attempt": k}` |
//! | `GET /sse/basic` | `text/event-stream`: 3 `tick` events 20 ms apart, then the stream ends |
//! | `/sse/…` | streams that stall, burst, flood, never end a line, break the format, close mid-event or count reconnects: see `routes/sse.rs` |
//!
//! Anything else is a JSON 404. [`WsServer`] is a WebSocket fixture server
//! (echo, silent, close with 1011, refused handshakes, server pings).

mod fixture_server;
mod raw;
mod rewind;
mod routes;
mod ws;

pub use fixture_server::FixtureServer;
pub use planrun_demo::{DemoServer, Flavor};
pub use raw::{CUT_BODY, STALL_BODY};
pub use ws::WsServer;
