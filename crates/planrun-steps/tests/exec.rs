//! The `exec` executor with real processes: foreground commands, time limits,
//! and background processes with each kind of readiness and their cleanup.

mod common;

use std::time::{Duration, Instant};

use common::{
    HANG_GUARD, MAX_BODY, config, context, eventually, group_members, run, run_step, running,
};
use planrun_steps::exec::ExecExecutor;
use serde_json::json;

#[tokio::test]
async fn cmd_output_and_exit_code() {
    let (ctx, _dir) = context();
    let doc = run(
        &ExecExecutor::new(),
        &ctx,
        "cmd = [\"echo\", \"hello\", \"world\"]",
    )
    .await
    .unwrap();
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["signal"], json!(null));
    assert_eq!(doc["stdout"], "hello world\n");
    assert_eq!(doc["stderr"], "");
    assert_eq!(doc["json"], json!(null));
    assert!(doc["pid"].as_u64().unwrap() > 0);
    assert!(doc["duration"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn shell_exit_code_and_stderr() {
    let (ctx, _dir) = context();
    let doc = run(
        &ExecExecutor::new(),
        &ctx,
        "shell = \"echo oops >&2; exit 3\"",
    )
    .await
    .unwrap();
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(doc["stderr"], "oops\n");
}

#[tokio::test]
async fn stdin_env_and_json() {
    let exec = ExecExecutor::new();
    let (ctx, _dir) = context();
    let doc = run(&exec, &ctx, "cmd = [\"cat\"]\nstdin = \"from stdin\"")
        .await
        .unwrap();
    assert_eq!(doc["stdout"], "from stdin");

    let doc = run(
        &exec,
        &ctx,
        "shell = \"echo $GREETING-$USER_ID\"\nenv = { GREETING = \"hi\", USER_ID = \"7\" }",
    )
    .await
    .unwrap();
    assert_eq!(doc["stdout"], "hi-7\n");

    let doc = run(
        &exec,
        &ctx,
        "cmd = ['printf', '{\"rows\": [1, 2], \"ok\": true}\\n']",
    )
    .await
    .unwrap();
    assert_eq!(doc["json"], json!({"rows": [1, 2], "ok": true}));
}

#[tokio::test]
async fn cwd_starts_at_the_spec_directory() {
    let exec = ExecExecutor::new();
    let (ctx, dir) = context();
    std::fs::create_dir(dir.path().join("work")).unwrap();
    common::write(&dir.path().join("work"), "data.txt", "payload");
    let doc = run(&exec, &ctx, "cmd = [\"cat\", \"data.txt\"]\ncwd = \"work\"")
        .await
        .unwrap();
    assert_eq!(doc["stdout"], "payload");

    // without `cwd`, the spec's directory
    let doc = run(&exec, &ctx, "cmd = [\"cat\", \"work/data.txt\"]")
        .await
        .unwrap();
    assert_eq!(doc["stdout"], "payload");

    let text = "cmd = [\"true\"]\ncwd = \"missing\"";
    let err = run(&exec, &ctx, text).await.unwrap_err();
    assert!(err.message.contains("does not exist"), "{}", err.message);
    assert_eq!(&text[err.span.unwrap()], "\"missing\"");
}

#[tokio::test]
async fn a_missing_program_says_so() {
    let (ctx, _dir) = context();
    let err = run(
        &ExecExecutor::new(),
        &ctx,
        "cmd = [\"planrun-no-such-program\", \"x\"]",
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.message,
        "cannot run `planrun-no-such-program`: program not found"
    );
    assert!(err.help.unwrap().contains("shell"));
}

#[tokio::test]
async fn config_mistakes_point_at_the_spec() {
    let exec = ExecExecutor::new();
    let (ctx, _dir) = context();
    let err = run(&exec, &ctx, "cmd = [\"true\"]\nshell = \"true\"")
        .await
        .unwrap_err();
    assert_eq!(err.message, "set `cmd` or `shell`, not both");
    let err = run(&exec, &ctx, "cmd = [\"true\"]\nready = { log = \"x\" }")
        .await
        .unwrap_err();
    assert!(err.message.contains("background"), "{}", err.message);
    let text = "cmd = [\"true\"]\nbackground = true\nready = { log = \"(\" }";
    let err = run(&exec, &ctx, text).await.unwrap_err();
    assert!(
        err.message.contains("regular expression"),
        "{}",
        err.message
    );
    assert_eq!(&text[err.span.unwrap()], "\"(\"");
}

#[tokio::test]
async fn output_is_capped_without_blocking_the_child() {
    let (ctx, _dir) = context();
    // 1 MB through a 1000-byte cap: the child must not stall on a full pipe
    let doc = run_step(
        &ExecExecutor::new(),
        &ctx,
        &config("shell = \"head -c 1000000 /dev/zero | tr '\\\\0' x; echo done >&2\""),
        Duration::from_secs(10),
        1000,
    )
    .await
    .unwrap();
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["stdout"].as_str().unwrap().len(), 1000);
    assert_eq!(doc["stderr"], "done\n");
}

#[tokio::test]
async fn leftovers_of_a_foreground_command_are_stopped() {
    let (ctx, _dir) = context();
    let started = Instant::now();
    // the background sleep inherits stdout; without stopping it the step
    // would wait 30s for the pipe to close
    let doc = run(&ExecExecutor::new(), &ctx, "shell = \"sleep 30 & echo $!\"")
        .await
        .unwrap();
    assert!(started.elapsed() < HANG_GUARD);
    let sleeper: u32 = doc["stdout"].as_str().unwrap().trim().parse().unwrap();
    assert!(eventually(Duration::from_secs(2), || !running(sleeper)).await);
}

#[tokio::test]
async fn the_step_timeout_kills_the_whole_group() {
    let (ctx, _dir) = context();
    let started = Instant::now();
    let err = run_step(
        &ExecExecutor::new(),
        &ctx,
        &config("shell = \"sleep 30 & echo $! $$; sleep 30\""),
        Duration::from_millis(400),
        MAX_BODY,
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < HANG_GUARD);
    assert!(
        err.message.contains(
            "did not finish within 400 ms: its process group was killed; last line on stdout: `"
        ),
        "{}",
        err.message
    );
    let pids: Vec<u32> = err
        .message
        .split('`')
        .nth(3)
        .unwrap()
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        eventually(Duration::from_secs(2), || pids.iter().all(|p| !running(*p))).await,
        "{pids:?} still running"
    );
}

#[tokio::test]
async fn dropping_the_step_kills_the_whole_group() {
    let (ctx, dir) = context();
    let pids = dir.path().join("pids");
    let text = format!(
        "shell = \"echo $$ > '{}'; sleep 30 & echo $! >> '{}'; wait\"",
        pids.display(),
        pids.display()
    );
    let cfg = config(&text);
    let exec = ExecExecutor::new();
    // the runner enforces its limit by dropping the future, as done here
    let dropped = tokio::time::timeout(
        Duration::from_millis(500),
        run_step(&exec, &ctx, &cfg, Duration::from_mins(1), MAX_BODY),
    )
    .await;
    assert!(dropped.is_err(), "the step should still be running");
    let pids: Vec<u32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(
        eventually(Duration::from_secs(3), || pids.iter().all(|p| !running(*p))).await,
        "still running: {pids:?}"
    );
}

#[tokio::test]
async fn background_ready_on_a_log_line_and_stopped_at_cleanup() {
    let (ctx, _dir) = context();
    let doc = run(
        &ExecExecutor::new(),
        &ctx,
        "shell = \"echo booting; sleep 0.3; echo 'listening on 8080' >&2; sleep 30 & wait\"\nbackground = true\nready = { log = 'listening on \\d+' }",
    )
    .await
    .unwrap();
    assert_eq!(doc["ready"], true);
    let ready_after = doc["ready_after"].as_f64().unwrap();
    assert!(ready_after >= 250.0, "{ready_after}");
    let pid = u32::try_from(doc["pid"].as_u64().unwrap()).unwrap();
    assert!(running(pid));
    // the shell forks its `sleep` just after the ready line: on a busy
    // machine the line can be read first
    assert!(
        eventually(Duration::from_secs(3), || group_members(pid).len() == 2).await,
        "the shell and its sleep: {:?}",
        group_members(pid)
    );

    let started = Instant::now();
    let stopped = ctx.cleanup().await;
    assert_eq!(stopped.len(), 1);
    assert!(stopped[0].contains(&format!("pid {pid}")), "{stopped:?}");
    assert!(started.elapsed() < HANG_GUARD);
    assert!(group_members(pid).is_empty(), "{:?}", group_members(pid));
}

/// What `capture.NAME = "SOURCE"` would keep from `doc`, read the way
/// planning parses a capture source.
fn capture(doc: &serde_json::Value, source: &str) -> Option<serde_json::Value> {
    let target = planrun_spec::parse_target(source, &(0..source.len())).unwrap();
    let planrun_spec::model::Target::Path { path, .. } = target else {
        panic!("`{source}` is not a path");
    };
    path.query(doc).all().first().map(|v| (*v).clone())
}

#[tokio::test]
async fn background_ready_line_and_its_groups_can_be_captured() {
    let (ctx, _dir) = context();
    let doc = run(
        &ExecExecutor::new(),
        &ctx,
        "cmd = [\"sh\", \"-c\", \"echo booting; echo 'listening on 127.0.0.1:4321 (v2)' >&2; sleep 30\"]\nbackground = true\nready = { log = 'listening on (?P<addr>[^ ]+) \\((v\\d)\\)(?P<tls> tls)?' }",
    )
    .await
    .unwrap();
    assert_eq!(doc["ready_line"], "listening on 127.0.0.1:4321 (v2)");
    assert_eq!(
        doc["ready_match"],
        json!({
            "0": "listening on 127.0.0.1:4321 (v2)",
            "1": "127.0.0.1:4321",
            "addr": "127.0.0.1:4321",
            "2": "v2",
            "3": null,
            "tls": null,
        })
    );
    assert_eq!(
        capture(&doc, "ready_match.addr"),
        Some(json!("127.0.0.1:4321"))
    );
    assert_eq!(capture(&doc, "ready_match.2"), Some(json!("v2")));
    assert_eq!(capture(&doc, "ready_match.tls"), Some(json!(null)));
    assert_eq!(capture(&doc, "ready_match.nope"), None);
    ctx.cleanup().await;
}

#[tokio::test]
async fn background_without_a_log_pattern_has_no_ready_line() {
    let (ctx, _dir) = context();
    let doc = run(
        &ExecExecutor::new(),
        &ctx,
        "shell = \"echo listening; sleep 30\"\nbackground = true",
    )
    .await
    .unwrap();
    assert_eq!(doc["ready_line"], json!(null));
    assert_eq!(doc["ready_match"], json!(null));
    ctx.cleanup().await;
}

#[tokio::test]
async fn background_ready_on_tcp_and_http() {
    let exec = ExecExecutor::new();
    let (ctx, dir) = context();
    common::write(dir.path(), "index.html", "hello from python");
    for ready in [
        "tcp = \"127.0.0.1:{port}\"",
        "http = \"http://127.0.0.1:{port}/index.html\"",
    ] {
        let port = free_port();
        let ready = ready.replace("{port}", &port.to_string());
        let doc = run(
            &exec,
            &ctx,
            &format!(
                "cmd = [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\nbackground = true\nready = {{ {ready}, interval = \"50ms\" }}"
            ),
        )
        .await
        .unwrap();
        assert_eq!(doc["ready"], true, "{ready}");
        assert_eq!(doc["ready_line"], json!(null), "{ready}");
        // it answers for real
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut stream, b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
        assert!(answer.ends_with("hello from python"), "{answer}");
    }
    ctx.cleanup().await;
}

#[tokio::test]
async fn background_exit_before_ready_shows_the_output() {
    let (ctx, _dir) = context();
    let err = run(
        &ExecExecutor::new(),
        &ctx,
        "shell = \"echo starting; echo 'config not found' >&2; exit 4\"\nbackground = true\nready = { log = 'ready' }",
    )
    .await
    .unwrap_err();
    assert!(
        err.message
            .contains("exited with exit code 4 before it was ready"),
        "{}",
        err.message
    );
    assert!(err.message.contains("config not found"), "{}", err.message);
    assert!(err.span.is_some());
    assert!(ctx.cleanup().await.is_empty());
}

#[tokio::test]
async fn background_not_ready_in_time_is_stopped() {
    let (ctx, dir) = context();
    let pidfile = dir.path().join("pid");
    let started = Instant::now();
    let err = run(
        &ExecExecutor::new(),
        &ctx,
        &format!(
            "shell = \"echo $$ > '{}'; echo still booting; sleep 30\"\nbackground = true\nready = {{ log = 'ready' }}\nready_timeout = \"400ms\"",
            pidfile.display()
        ),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < HANG_GUARD);
    assert!(
        err.message.contains("was not ready after 400 ms"),
        "{}",
        err.message
    );
    assert!(err.message.contains("still booting"), "{}", err.message);
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(eventually(Duration::from_secs(2), || group_members(pid).is_empty()).await);
}

#[tokio::test]
async fn cleanup_escalates_to_sigkill() {
    let (ctx, _dir) = context();
    let doc = run(
        &ExecExecutor::new(),
        &ctx,
        "shell = \"trap '' TERM; echo ready; while true; do sleep 0.1; done\"\nbackground = true\nready = { log = '^ready$' }\nstop_timeout = \"300ms\"",
    )
    .await
    .unwrap();
    let pid = u32::try_from(doc["pid"].as_u64().unwrap()).unwrap();
    let started = Instant::now();
    ctx.cleanup().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(eventually(Duration::from_secs(1), || group_members(pid).is_empty()).await);
}

#[tokio::test]
async fn a_dropped_context_kills_its_background_processes() {
    let (ctx, _dir) = context();
    let doc = run(
        &ExecExecutor::new(),
        &ctx,
        "shell = \"sleep 30 & sleep 30\"\nbackground = true",
    )
    .await
    .unwrap();
    let pid = u32::try_from(doc["pid"].as_u64().unwrap()).unwrap();
    assert!(running(pid));
    // no cleanup: planrun went away abruptly
    drop(ctx);
    assert!(
        eventually(Duration::from_secs(3), || group_members(pid).is_empty()).await,
        "{:?}",
        group_members(pid)
    );
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
