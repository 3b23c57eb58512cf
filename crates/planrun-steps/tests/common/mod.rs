//! Shared helpers of the executor tests: run one step the way the runner
//! does (a rendered config, a spec context, a time limit, a body cap), run a
//! whole spec through the planner and the runner, and ask
//! `/proc` whether a process is really gone (a zombie is not "running"; PID 1
//! on some machines never reaps orphans, so `kill -0` would lie).
#![allow(dead_code, reason = "each test binary uses a part of these helpers")]

use std::path::Path;
use std::time::Duration;

use planrun_runner::executor::{Observer, SpecContext, StepError, StepExecutor, StepInput};
use planrun_spec::error::Diagnostics;
use planrun_spec::parse_toml;
use planrun_spec::value::Value;

/// The cap on bodies when a test does not care.
pub(crate) const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Runs a whole spec (TOML text, written to `dir`) through the planner and
/// the runner with every executor of this build; returns the run's totals
/// and every event, in order.
pub(crate) async fn run_spec(
    dir: &Path,
    text: &str,
) -> (
    planrun_runner::events::RunSummary,
    Vec<planrun_runner::events::RunEvent>,
) {
    use std::sync::Arc;

    use planrun_runner::run::{Cancel, RunOptions, Runner};
    use planrun_spec::model::{DirConfig, Overrides};
    use planrun_spec::plan::{load_spec, plan};
    use planrun_spec::source::{Format, SourceFile};

    planrun_steps::install_crypto_provider();
    let source = Arc::new(SourceFile::new(dir.join("spec.toml"), text, Format::Toml));
    let spec = load_spec(&source).unwrap_or_else(|d| panic!("invalid spec: {d:?}"));
    let plan = plan(
        spec,
        Arc::new(DirConfig::default()),
        &Overrides::default(),
        &[],
    )
    .unwrap_or_else(|d| panic!("invalid plan: {d:?}"));
    let runner = Runner::new(planrun_steps::registry(), RunOptions::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (plans, cancel) = ([plan], Cancel::default());
    let summary = tokio::time::timeout(HANG_GUARD, runner.run(&plans, &tx, &cancel))
        .await
        .unwrap_or_else(|elapsed| panic!("the spec hung: {elapsed}"));
    drop(tx);
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        events.push(event);
    }
    (summary, events)
}

/// Runs a spec as [`run_spec`] does, with a reporter that takes the events
/// as they come, as planrun's does: a task on the same thread. Returns the
/// summary, how many observations came, and the most that ever waited in
/// the channel for the reporter. Run it on a current-thread runtime, where
/// the reporter only runs when the step lets it.
#[allow(dead_code, reason = "not every test file watches observations")]
pub(crate) async fn run_spec_live(
    dir: &Path,
    text: &str,
) -> (planrun_runner::events::RunSummary, usize, usize) {
    use std::sync::Arc;

    use planrun_runner::events::RunEvent;
    use planrun_runner::run::{Cancel, RunOptions, Runner};
    use planrun_spec::model::{DirConfig, Overrides};
    use planrun_spec::plan::{load_spec, plan};
    use planrun_spec::source::{Format, SourceFile};

    planrun_steps::install_crypto_provider();
    let source = Arc::new(SourceFile::new(dir.join("spec.toml"), text, Format::Toml));
    let spec = load_spec(&source).unwrap_or_else(|d| panic!("invalid spec: {d:?}"));
    let plan = plan(
        spec,
        Arc::new(DirConfig::default()),
        &Overrides::default(),
        &[],
    )
    .unwrap_or_else(|d| panic!("invalid plan: {d:?}"));
    let runner = Runner::new(planrun_steps::registry(), RunOptions::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RunEvent>();
    let reporter = tokio::spawn(async move {
        let (mut observed, mut backlog) = (0, 0);
        while let Some(event) = rx.recv().await {
            backlog = backlog.max(rx.len() + 1);
            if matches!(event, RunEvent::StepObserved { .. }) {
                observed += 1;
            }
        }
        (observed, backlog)
    });
    let (plans, cancel) = ([plan], Cancel::default());
    let summary = tokio::time::timeout(HANG_GUARD, runner.run(&plans, &tx, &cancel))
        .await
        .unwrap_or_else(|elapsed| panic!("the spec hung: {elapsed}"));
    drop(tx);
    let (observed, backlog) = reporter.await.expect("the reporter task");
    (summary, observed, backlog)
}

/// A step config from the TOML of its table (`get = "…"`, `cmd = [...]`).
pub(crate) fn config(toml: &str) -> Value {
    match parse_toml(toml) {
        Ok(value) => value,
        Err(diagnostic) => panic!("bad test TOML `{toml}`: {diagnostic:?}"),
    }
}

/// Runs one attempt of a step: its configuration lowered as planning does
/// (short forms expanded, matchers lowered; a problem found then is returned
/// as the error), then executed.
pub(crate) async fn run_step(
    executor: &dyn StepExecutor,
    ctx: &SpecContext,
    config: &Value,
    timeout: Duration,
    max_body: u64,
) -> Result<serde_json::Value, StepError> {
    let mut problems = Diagnostics::default();
    let lowered = executor.kind().lower_config(config, &mut problems);
    if let Some(problem) = problems.0.into_iter().next() {
        return Err(StepError::invalid(problem));
    }
    executor
        .execute(StepInput {
            config: &lowered.value,
            raw: &lowered.value,
            matchers: &lowered.matchers,
            ctx,
            step_id: "test-step",
            timeout,
            max_body,
            observer: Observer::none(),
        })
        .await
}

/// Runs a step with a 10s limit and the default body cap.
pub(crate) async fn run(
    executor: &dyn StepExecutor,
    ctx: &SpecContext,
    toml: &str,
) -> Result<serde_json::Value, StepError> {
    run_step(
        executor,
        ctx,
        &config(toml),
        Duration::from_secs(10),
        MAX_BODY,
    )
    .await
}

/// The state letter and process group of a process, when it exists.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Whether `pid` is a live (not zombie) process.
pub(crate) fn running(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X' | 'x'))
}

/// The live processes of group `pgid`.
pub(crate) fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        panic!("these tests need /proc");
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            stat(*pid)
                .is_some_and(|(state, group)| group == pgid && !matches!(state, 'Z' | 'X' | 'x'))
        })
        .collect()
}

/// Waits up to `limit` for `gone()` to hold.
pub(crate) async fn eventually(limit: Duration, mut gone: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if gone() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gone()
}

/// A spec context whose base directory is a fresh temporary directory.
pub(crate) fn context() -> (SpecContext, tempfile::TempDir) {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("no temp dir: {err}"),
    };
    (SpecContext::new(dir.path()), dir)
}

/// Writes `text` to `dir/name`.
pub(crate) fn write(dir: &Path, name: &str, text: &str) {
    if let Err(err) = std::fs::write(dir.join(name), text) {
        panic!("cannot write {name}: {err}");
    }
}

/// An upper bound that only catches a hang: far above what the operation takes
/// and below the 30 s the tests' processes would otherwise run. Not a speed
/// check (speed is measured in bench/, never asserted).
#[allow(dead_code)]
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(20);

/// The test CA, its `localhost`/`127.0.0.1` server certificate and key.
#[cfg(feature = "http")]
pub(crate) const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");

/// A threaded TLS server on 127.0.0.1 with the test CA's server certificate;
/// `serve` runs, on a thread of its own, for each connection.
#[cfg(feature = "http")]
pub(crate) fn start_tls<F>(serve: F) -> std::net::SocketAddr
where
    F: Fn(rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>)
        + Send
        + Sync
        + 'static,
{
    start_tls_as("server", serve)
}

/// [`start_tls`] with the certificate `TLS_DIR/{name}.pem` (and its key).
#[cfg(feature = "http")]
pub(crate) fn start_tls_as<F>(name: &str, serve: F) -> std::net::SocketAddr
where
    F: Fn(rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>)
        + Send
        + Sync
        + 'static,
{
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{TLS_DIR}/{name}.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{TLS_DIR}/{name}.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let config = Arc::new(config);
    let serve = Arc::new(serve);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let config = Arc::clone(&config);
            let serve = Arc::clone(&serve);
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                serve(rustls::StreamOwned::new(conn, stream));
            });
        }
    });
    addr
}

/// Reads a request's head, writes `answer`, and ends the TLS session.
#[cfg(feature = "http")]
pub(crate) fn answer_once(
    mut tls: rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>,
    answer: &[u8],
) {
    use std::io::{Read, Write};

    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = tls.write_all(answer);
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
