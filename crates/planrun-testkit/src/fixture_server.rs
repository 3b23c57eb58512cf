//! [`FixtureServer`]: accepting connections, sending the raw routes to
//! [`raw`](crate::raw) and everything else, untouched, to the axum router.
//!
//! Owns the server's lifetime: it runs until the handle is dropped.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::raw::{Peeked, peek_request_line, serve_raw};
use crate::rewind::Rewind;
use crate::routes;

/// An in-process HTTP fixture server on 127.0.0.1:0 with misbehaving routes for
/// tests (see the [crate docs](crate) for the routes). It stops when dropped.
#[derive(Debug)]
pub struct FixtureServer {
    /// Where the server listens.
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
    serve: JoinHandle<()>,
}

impl FixtureServer {
    /// The event `/sse/flood` sends without pause: one byte of data.
    pub const SSE_FLOOD_EVENT: &str = routes::SSE_FLOOD_EVENT;

    /// Binds 127.0.0.1 on a free port and serves in background tasks.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound: a test cannot go on without its fixture.
    pub async fn start() -> FixtureServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|err| panic!("fixture server cannot bind 127.0.0.1:0: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("fixture server has no local address: {err}"));
        let (handoff, incoming) = mpsc::channel(64);
        let accept = tokio::spawn(accept_loop(listener, handoff));
        let serve = tokio::spawn(async move {
            let listener = Handoff { incoming, addr };
            // Serving only ends with the accept loop, i.e. when the handle is dropped.
            let _ = axum::serve(listener, routes::router()).await;
        });
        FixtureServer {
            addr,
            accept,
            serve,
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path` (a leading `/` is added if missing).
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.addr)
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.serve.abort();
    }
}

type Connection = (Rewind<TcpStream>, SocketAddr);

async fn accept_loop(listener: TcpListener, handoff: mpsc::Sender<Connection>) {
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handoff = handoff.clone();
        // Peek in a task of its own: a silent client must not block accepting.
        tokio::spawn(async move {
            match peek_request_line(&mut stream).await {
                Peeked::Raw(route, head) => serve_raw(route, head, stream).await,
                Peeked::Regular(head) => {
                    let _ = handoff.send((Rewind::new(head, stream), peer)).await;
                }
                Peeked::Gone => {}
            }
        });
    }
}

/// The router's view of the accept loop: connections that were peeked at and
/// found to be regular.
struct Handoff {
    incoming: mpsc::Receiver<Connection>,
    addr: SocketAddr,
}

impl axum::serve::Listener for Handoff {
    type Io = Rewind<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept loop is gone (the handle was dropped): nothing will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
