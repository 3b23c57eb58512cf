//! The planrun demo target: a small chat backend that stands in for the seed plan's
//! Django system (health checks, login with a session cookie, message CRUD, an SSE
//! stream and a WebSocket chat), so the quick start and planrun's own integration
//! tests have something realistic to run plans against.
//!
//! This crate owns the demo server only. It knows nothing about plans or steps and
//! must not depend on any other planrun crate.
//!
//! ```
//! use planrun_demo::{DemoServer, Flavor};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let addr = "127.0.0.1:0".parse().expect("invariant: literal address");
//! let server = DemoServer::start(addr, Flavor::Asgi).await?;
//! assert!(server.base_url().starts_with("http://127.0.0.1:"));
//! // point a plan at `server.base_url()` and `server.ws_url()` here
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Endpoints
//!
//! HTTP and WebSocket share one port. Every response carries `X-Served-By: wsgi` or
//! `asgi`; every error is JSON `{"error": "...", "status": N}`.
//!
//! | method | path | what it does |
//! |---|---|---|
//! | GET | `/` | JSON index of the endpoints |
//! | GET | `/health/` | health document of the flavor (TC-003 / TC-004) |
//! | POST | `/api/auth/login/` | JSON or form `{username, password}`; **any username with password `secret`** logs in and gets a `sessionid` cookie |
//! | GET | `/api/auth/me/` | the logged-in user, 401 without a valid `sessionid` cookie |
//! | POST | `/api/auth/logout/` | ends the session and clears the cookie |
//! | GET, POST | `/api/messages/` | list (`?session_id=` filters) / create `{session_id, content}` |
//! | GET, PUT, PATCH, DELETE | `/api/messages/{id}/` | one message |
//! | POST | `/api/messages/stream/` | SSE echo of `{session_id, message}`, one event per word (`?delay_ms=`, `?chunks=`) |
//! | GET (upgrade) | `/ws/chat/session/{id}/` | WebSocket chat room per session id |
//! | GET | `/static/{path}` | embedded files (`admin/css/base.css`, `js/app.js`, `img/logo.svg`) |
//!
//! Sessions live in a process-global store, so a `wsgi` and an `asgi` server in the
//! same process share them the way both containers share Redis in the seed plan
//! (TC-009). Messages and chat rooms belong to one server, which keeps concurrent
//! tests from seeing each other's data.

mod app;
mod auth;
mod chat;
mod error;
mod flavor;
mod messages;
mod payload;
mod server;
mod static_files;
mod store;
mod stream;

pub use flavor::{Flavor, ParseFlavorError};
pub use server::{DemoServer, serve, serve_with};
pub use store::Database;
