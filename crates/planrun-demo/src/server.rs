//! Starting and stopping a demo server: the public [`DemoServer`] handle and
//! [`serve`] for callers that own the listener (such as `planrun demo`).
//!
//! Owns the listener and shutdown sequence: stop accepting, let HTTP responses and
//! SSE streams end, close WebSockets with "going away", then return.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::app::{AppState, router};
use crate::flavor::Flavor;
use crate::store::{Database, Store};

/// How long [`serve`] waits for WebSocket tasks after the HTTP side stopped.
const WEBSOCKET_DRAIN: Duration = Duration::from_secs(3);

/// How long [`DemoServer::shutdown`] waits before it gives up and aborts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A demo server running in a background tokio task. Dropping it stops the server
/// without waiting; [`DemoServer::shutdown`] stops it and waits.
#[derive(Debug)]
pub struct DemoServer {
    /// The bound address (the real port when started on port 0).
    pub addr: SocketAddr,
    flavor: Flavor,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl DemoServer {
    /// Binds `addr` (use port 0 for any) and serves in a background tokio task.
    pub async fn start(addr: SocketAddr, flavor: Flavor) -> io::Result<DemoServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, flavor, async move {
            // Sent or dropped: both mean stop.
            let _ = stopped.await;
        }));
        Ok(DemoServer {
            addr,
            flavor,
            stop,
            task,
        })
    }

    /// The flavor this server was started with.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// `http://HOST:PORT`, with a loopback host when bound to an unspecified address.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.reachable_addr())
    }

    /// `ws://HOST:PORT`, for `/ws/chat/session/{id}/`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.reachable_addr())
    }

    fn reachable_addr(&self) -> SocketAddr {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.addr.port())
    }

    /// Stops accepting, lets in-flight requests finish (streams end early), closes
    /// WebSockets, and waits for all of it (aborting after a grace period).
    pub async fn shutdown(self) {
        let DemoServer { stop, mut task, .. } = self;
        let _ = stop.send(());
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Serve until the future `shutdown` resolves, messages kept in memory.
pub async fn serve(
    listener: TcpListener,
    flavor: Flavor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, flavor, None, shutdown).await
}

/// Serve until the future `shutdown` resolves (used by `planrun demo`),
/// messages kept in `database` when there is one, else in memory.
pub async fn serve_with(
    listener: TcpListener,
    flavor: Flavor,
    database: Option<Database>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (signal, signal_rx) = watch::channel(false);
    let (tasks, mut tasks_done) = mpsc::channel::<()>(1);
    let store = database.clone().map_or_else(Store::memory, Store::Postgres);
    let app = router(AppState::new(flavor, store, signal_rx, tasks));
    // Small SSE events must leave at once, not wait for Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = signal.send(true);
        })
        .await?;
    // The router (and its token) is gone; WebSocket tasks hold the others.
    let _ = tokio::time::timeout(WEBSOCKET_DRAIN, tasks_done.recv()).await;
    if let Some(database) = database {
        database.close().await;
    }
    Ok(())
}
