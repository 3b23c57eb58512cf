//! Starting and stopping: `serve` on a caller's listener until its future resolves,
//! `DemoServer::shutdown` ending in-flight streams early, and drop stopping the
//! server.

mod common;

use std::time::{Duration, Instant};

use common::{call, parse_events, start};
use http_body_util::BodyExt;
use planrun_demo::{DemoServer, Flavor, serve};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

async fn refuses_connections(addr: std::net::SocketAddr) -> bool {
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn serve_runs_until_its_future_resolves() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, Flavor::Asgi, async move {
        let _ = stopped.await;
    }));
    let reply = call(addr, "GET", "/health/").send().await;
    assert_eq!(reply.json()["container_type"], "asgi");
    stop.send(()).expect("server listening for stop");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve returns after the signal")
        .expect("task")
        .expect("serve result");
    assert!(refuses_connections(addr).await);
}

#[tokio::test]
async fn shutdown_ends_a_slow_stream_early() {
    let server = start(Flavor::Asgi).await;
    let addr = server.addr;
    let response = call(addr, "POST", "/api/messages/stream/?delay_ms=5000")
        .json(&json!({"session_id": "s", "message": "a b c d e f"}))
        .open()
        .await;
    assert_eq!(response.status(), 200);
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        response
            .into_body()
            .collect()
            .await
            .map(|body| String::from_utf8(body.to_bytes().to_vec()).expect("utf-8"))
    });
    // Let the first event go out, then stop in the middle of the 5 s pause.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let text = reader.await.expect("task").expect("body ends cleanly");
    let events = parse_events(&text);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event, "message");
    assert!(refuses_connections(addr).await);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let server = DemoServer::start("127.0.0.1:0".parse().expect("addr"), Flavor::Wsgi)
        .await
        .expect("start");
    let addr = server.addr;
    assert_eq!(call(addr, "GET", "/health/").send().await.status, 200);
    drop(server);
    assert!(refuses_connections(addr).await);
}

#[tokio::test]
async fn binding_a_taken_port_is_an_error() {
    let server = start(Flavor::Wsgi).await;
    let err = DemoServer::start(server.addr, Flavor::Asgi)
        .await
        .expect_err("port in use");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    server.shutdown().await;
}
