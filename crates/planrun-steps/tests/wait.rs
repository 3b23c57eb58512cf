//! The `wait` executor: a plain pause, and polling real TCP and HTTP servers.

mod common;

use std::time::{Duration, Instant};

use common::{HANG_GUARD, MAX_BODY, config, context, run, run_step};
use planrun_steps::wait::WaitExecutor;
use planrun_testkit::FixtureServer;

#[tokio::test]
async fn short_form_pauses() {
    let (ctx, _dir) = context();
    let step = config("wait = \"150ms\"");
    let value = step.get("wait").unwrap();
    let started = Instant::now();
    let doc = run_step(
        &WaitExecutor::new(),
        &ctx,
        value,
        Duration::from_secs(5),
        MAX_BODY,
    )
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(doc["waited"].as_f64().unwrap() >= 150.0);
    assert_eq!(doc["duration"], doc["waited"]);
    assert_eq!(doc["attempts"], 0);
    assert_eq!(doc["ready"], true);
}

#[tokio::test]
async fn table_form_pauses() {
    let (ctx, _dir) = context();
    let doc = run(&WaitExecutor::new(), &ctx, "duration = \"50ms\"")
        .await
        .unwrap();
    assert!(doc["waited"].as_f64().unwrap() >= 50.0);
}

#[tokio::test]
async fn tcp_waits_until_a_port_opens() {
    let (ctx, _dir) = context();
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let opener = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        // keep accepting until the test ends
        loop {
            let _ = listener.accept().await;
        }
    });
    let doc = run(
        &WaitExecutor::new(),
        &ctx,
        &format!("tcp = \"{addr}\"\ninterval = \"50ms\""),
    )
    .await
    .unwrap();
    assert!(doc["attempts"].as_u64().unwrap() >= 2, "{doc}");
    assert!(doc["waited"].as_f64().unwrap() >= 250.0, "{doc}");
    opener.abort();
}

#[tokio::test]
async fn http_waits_for_a_2xx() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = run(
        &WaitExecutor::new(),
        &ctx,
        &format!(
            "http = \"{}\"\ninterval = \"20ms\"",
            server.url("/flaky/wait-test/2")
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["attempts"], 3);
    assert_eq!(doc["ready"], true);
}

#[tokio::test]
async fn giving_up_says_what_was_tried() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let started = Instant::now();
    let err = run_step(
        &WaitExecutor::new(),
        &ctx,
        &config(&format!(
            "http = \"{}\"\ninterval = \"50ms\"",
            server.url("/status/503")
        )),
        Duration::from_millis(400),
        MAX_BODY,
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < HANG_GUARD);
    assert!(
        err.message.starts_with("gave up waiting for `"),
        "{}",
        err.message
    );
    assert!(
        err.message.ends_with("answered with status 503"),
        "{}",
        err.message
    );
    assert!(err.span.is_some());
}
