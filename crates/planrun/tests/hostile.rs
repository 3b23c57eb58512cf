//! The `planrun` binary against servers that flood or never end a line, run
//! under an address-space limit (`prlimit --as`), so that a step that stops
//! bounding what it holds fails its test instead of filling the machine's
//! memory.
//!
//! The servers are the testkit's, in this process; only the binary is
//! limited. Each case checks how the step ended (its result fields, or its
//! error), never how long it took.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use planrun_testkit::{FixtureServer, WsServer};
use serde_json::Value;

/// The address space the binary may reserve. A run needs about 100 MiB;
/// before events were kept within a cap, a one-byte-event flood took
/// 1.6 GiB.
const ADDRESS_SPACE: u64 = 512 * 1024 * 1024;

/// The most documents a step keeps (planrun-steps' `KEPT_DOCS`).
const KEPT: usize = 10_000;

/// How long a run may take before it counts as hung: a guard against a
/// test that never ends, not a measure.
const HANG_GUARD: Duration = Duration::from_mins(2);

/// One flood at a time: the cases that read for a fixed time must see more
/// than the caps in that time, which a machine busy with the others might
/// not give.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The fixture servers, served by a runtime of their own.
struct Servers {
    http: FixtureServer,
    ws: WsServer,
    _runtime: tokio::runtime::Runtime,
    _turn: MutexGuard<'static, ()>,
}

impl Servers {
    fn start() -> Servers {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (http, ws) =
            runtime.block_on(async { (FixtureServer::start().await, WsServer::start().await) });
        Servers {
            http,
            ws,
            _runtime: runtime,
            _turn: turn,
        }
    }
}

/// How a run of one step ended.
struct Run {
    status: ExitStatus,
    stderr: String,
    /// The step's report: `status`, `result`, `error`.
    step: Value,
}

impl Run {
    fn result(&self) -> &Value {
        &self.step["result"]
    }

    fn error(&self) -> &str {
        self.step["error"]["message"].as_str().unwrap_or_else(|| {
            panic!(
                "the step has no error: {:#}\nstderr: {}",
                self.step, self.stderr
            )
        })
    }
}

/// Runs a spec of one step under the address-space limit and reads its
/// JSON report.
fn run(step: &str) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = dir.path().join("hostile.toml");
    std::fs::write(&spec, format!("[[steps]]\nid = \"hostile\"\n{step}\n")).expect("spec");
    let report = dir.path().join("report.json");
    let mut child = Command::new("prlimit")
        .arg(format!("--as={ADDRESS_SPACE}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_planrun"))
        .arg("run")
        .arg(&spec)
        .arg("--report")
        .arg(format!("json={}", report.display()))
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux) runs planrun under a memory limit; is it installed?");
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for planrun") {
            break status;
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("planrun hung on: {step}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().unwrap_or_default();
    let step = read_step(&report).unwrap_or_else(|| {
        panic!("planrun ended with {status} and no report (out of memory?): {stderr}")
    });
    Run {
        status,
        stderr,
        step,
    }
}

fn read_step(report: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(report).ok()?;
    let report: Value = serde_json::from_str(&text).ok()?;
    Some(report["specs"][0]["report"]["steps"][0].clone())
}

#[test]
fn a_ws_flood_read_by_wait_keeps_the_first_and_last_messages() {
    let servers = Servers::start();
    let url = servers.ws.url("/flood");
    // a step that passed keeps a brief of its result in reports: what it
    // kept is checked by the step itself
    let run = run(&format!(
        "ws = {{ url = \"{url}\", conversation = [{{ wait = \"2s\" }}] }}\n\
         expect.received = {{ len = {KEPT}, all = {{ text = \"{}\" }} }}",
        WsServer::FLOOD_FRAME
    ));
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    let result = run.result();
    assert!(
        result["dropped"]["received"].as_u64() > Some(0),
        "{}",
        result["dropped"]
    );
}

#[test]
fn a_ws_flood_read_by_expect_fails_at_the_cap() {
    let servers = Servers::start();
    let url = servers.ws.url("/flood");
    let run = run(&format!(
        "ws = {{ url = \"{url}\", conversation = [{{ expect = \"never\", skip = true, timeout = \"1m\" }}] }}\ntimeout = \"1m\""
    ));
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert_eq!(
        run.error(),
        "conversation item 0 (`expect`): the transcript passed its cap of 10000 frames after 10001 frames in this step (the server sends more than a step keeps)"
    );
}

#[test]
fn an_sse_flood_read_by_listen_keeps_the_first_and_last_events() {
    let servers = Servers::start();
    let url = servers.http.url("/sse/flood");
    // a step that passed keeps a brief of its result in reports: what it
    // kept is checked by the step itself
    let run = run(&format!(
        "sse = {{ get = \"{url}\", listen = \"2s\" }}\nexpect.end = \"listen\"\n\
         expect.events = {{ len = {KEPT}, all = {{ data = \"x\" }} }}\n\
         expect.text = {{ len = {KEPT} }}"
    ));
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    let result = run.result();
    assert!(
        result["dropped"].as_u64() > Some(0),
        "{}",
        result["dropped"]
    );
}

#[test]
fn an_sse_flood_read_to_its_end_fails_at_the_cap() {
    let servers = Servers::start();
    let url = servers.http.url("/sse/flood");
    let run = run(&format!("sse = {{ get = \"{url}\" }}\ntimeout = \"1m\""));
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert_eq!(
        run.error(),
        format!(
            "the event stream of `{url}` passed the cap on what a step keeps, 10000 events, after 10001 events"
        )
    );
    assert!(
        run.step["error"]["help"]
            .as_str()
            .is_some_and(|h| h.contains("`listen"))
    );
}

#[test]
fn an_sse_line_that_never_ends_fails_at_max_body() {
    let servers = Servers::start();
    let url = servers.http.url("/sse/endless-line");
    for listen in ["", ", listen = \"50s\""] {
        let run = run(&format!(
            "sse = {{ get = \"{url}\"{listen} }}\ntimeout = \"1m\""
        ));
        assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
        let start =
            format!("one line of the event stream of `{url}` passed 16 MiB without ending (");
        assert!(run.error().starts_with(&start), "{}", run.error());
        assert!(
            run.error().ends_with(" received, 0 events)"),
            "{}",
            run.error()
        );
    }
}
