//! Stopping a real planrun with signals: SIGINT and SIGTERM stop the run and
//! still run teardown; a second one gives teardown up but still kills every
//! process the run started; reports are written either way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Waits until `path` exists (a process wrote it), up to a minute.
fn wait_for_file(path: &Path, child: &mut Child) {
    let started = Instant::now();
    while !path.exists() {
        if child.try_wait().expect("try_wait").is_some() {
            let mut err = String::new();
            if let Some(stderr) = child.stderr.as_mut() {
                let _ = std::io::Read::read_to_string(stderr, &mut err);
            }
            panic!("planrun ended before {} was written: {err}", path.display());
        }
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "{} was never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // the line is written before the process goes on: let it finish writing
    std::thread::sleep(Duration::from_millis(200));
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name}");
}

/// Waits for planrun to end, up to two minutes (a guard against a hang, not
/// a measure of speed).
fn wait_for_exit(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > Duration::from_mins(2) {
            let _ = child.kill();
            panic!("planrun did not end after being interrupted");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn pid_in(path: &Path) -> String {
    std::fs::read_to_string(path)
        .expect("pid file")
        .trim()
        .to_string()
}

/// Whether a process is alive (a zombie not reaped yet counts as gone).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Starts `planrun run SPEC` with `dir` as the `dir` variable and a JUnit
/// report at `dir/junit.xml`.
fn start(dir: &Path, spec: &str) -> (Child, PathBuf) {
    let path = dir.join("spec.toml");
    std::fs::write(&path, spec).expect("spec");
    let junit = dir.join("junit.xml");
    let child = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .arg("run")
        .arg(&path)
        .arg("--var")
        .arg(format!("dir={}", dir.display()))
        .arg("--report")
        .arg(format!("junit={}", junit.display()))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn planrun");
    (child, junit)
}

/// A background server, a long step, and a teardown step.
const STOPPED_SPEC: &str = r#"id = "STOP"
[[steps]]
id = "server"
exec = { shell = "echo $$ > '{{ dir }}/server'; echo ready; exec sleep 300", background = true, ready = { log = "ready" } }

[[steps]]
id = "long"
wait = "300s"

[[steps]]
id = "teardown"
always = true
exec = { shell = "echo done > '{{ dir }}/teardown'" }
"#;

fn stopped_by(name: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut child, junit) = start(dir.path(), STOPPED_SPEC);
    wait_for_file(&dir.path().join("server"), &mut child);
    let server = pid_in(&dir.path().join("server"));
    signal(&child, name);
    let out = wait_for_exit(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted: stopping"), "{err}");
    assert!(
        dir.path().join("teardown").exists(),
        "teardown did not run: {err}"
    );
    assert!(
        !alive(&server),
        "the background process {server} still runs"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report is written");
    assert!(xml.contains("the run was stopped while it ran"), "{xml}");
}

#[test]
fn sigint_stops_the_run_and_teardown_still_runs() {
    stopped_by("INT");
}

#[test]
fn sigterm_stops_the_run_like_ctrl_c() {
    stopped_by("TERM");
}

/// A second interrupt while teardown hangs: teardown is given up, the
/// teardown's own process and a background process that ignores SIGTERM
/// (with a long `stop_timeout`) are killed, and the report is written.
#[test]
fn a_second_interrupt_gives_teardown_up_and_kills_what_the_run_started() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut child, junit) = start(
        dir.path(),
        r#"id = "TWICE"
[[steps]]
id = "server"
exec = { shell = "trap '' TERM; echo $$ > '{{ dir }}/server'; echo ready; while true; do sleep 1; done", background = true, ready = { log = "ready" }, stop_timeout = "300s" }

[[steps]]
id = "long"
wait = "300s"

[[steps]]
id = "teardown"
always = true
timeout = "300s"
exec = { shell = "echo $$ > '{{ dir }}/teardown'; exec sleep 300" }
"#,
    );
    wait_for_file(&dir.path().join("server"), &mut child);
    signal(&child, "INT");
    wait_for_file(&dir.path().join("teardown"), &mut child);
    let server = pid_in(&dir.path().join("server"));
    let teardown = pid_in(&dir.path().join("teardown"));
    signal(&child, "INT");
    let out = wait_for_exit(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted again"), "{err}");
    assert!(
        !alive(&server),
        "the background process {server} still runs: {err}"
    );
    assert!(
        !alive(&teardown),
        "the teardown's process {teardown} still runs: {err}"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report is written");
    assert!(xml.contains("teardown was given up"), "{xml}");
}

/// An interrupt while a background process is still starting (it never
/// becomes ready) stops it.
#[test]
fn an_interrupt_while_a_background_process_starts_stops_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut child, junit) = start(
        dir.path(),
        r#"id = "STARTING"
[[steps]]
id = "server"
exec = { shell = "echo $$ > '{{ dir }}/server'; exec sleep 300", background = true, ready = { log = "never printed" }, ready_timeout = "300s" }
"#,
    );
    wait_for_file(&dir.path().join("server"), &mut child);
    let server = pid_in(&dir.path().join("server"));
    signal(&child, "INT");
    let out = wait_for_exit(child);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        !alive(&server),
        "the starting process {server} still runs: {err}"
    );
    assert!(junit.exists(), "the JUnit report is written");
}
