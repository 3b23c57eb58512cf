//! End-to-end tests of the `planrun` binary against the demo target, run as a
//! user would run it: files in, exit code and output out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod support;

use planrun_testkit::{DemoServer, Flavor};
use support::{Targets, demo_specs, root};

fn plans() -> PathBuf {
    root().join("crates/planrun/tests/plans")
}

/// A run of the binary, with a builder for arguments.
struct Test {
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Test {
    fn new() -> Test {
        Test {
            args: Vec::new(),
            envs: vec![(String::from("NO_COLOR"), String::from("1"))],
        }
    }

    fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Test {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    fn arg(self, arg: impl AsRef<Path>) -> Test {
        let s = arg.as_ref().display().to_string();
        self.args([s])
    }

    fn run(self) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_planrun"))
            .args(&self.args)
            .envs(self.envs)
            .current_dir(root())
            .output()
            .expect("planrun runs");
        Run(out)
    }
}

struct Run(Output);

impl Run {
    fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    #[track_caller]
    fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code(),
            code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("toml" | "yaml")
            )
        })
        .collect();
    out.sort();
    out
}

/// Every invalid plan exits 2 before anything runs, with a diagnostic that
/// points at the right line and column; the expected output sits beside it.
#[test]
fn invalid_plans_get_located_diagnostics() {
    let update = std::env::var_os("PLANRUN_UPDATE_EXPECTED").is_some();
    let mut mismatches = Vec::new();
    for file in files(&plans().join("invalid")) {
        let rel = file.strip_prefix(root()).expect("under root").to_path_buf();
        let run = Test::new()
            .args(["validate"])
            .arg(&rel)
            .run()
            .expect_code(2);
        let stderr = run.stderr();
        let expected_path = file.with_extension(format!(
            "{}.stderr",
            file.extension().and_then(|e| e.to_str()).unwrap_or("")
        ));
        if update {
            std::fs::write(&expected_path, &stderr).expect("write expected");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != stderr {
            mismatches.push(format!(
                "{}\n--- expected\n{expected}\n--- actual\n{stderr}",
                rel.display()
            ));
        }
        // every diagnostic names the file with a line and column: the spec,
        // or the included file the problem is in
        assert!(
            stderr.contains(&format!("{}:", rel.display())) || stderr.contains("/_include/"),
            "{stderr}"
        );
    }
    assert!(
        mismatches.is_empty(),
        "outputs differ (set PLANRUN_UPDATE_EXPECTED=1 to accept):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn ok_plans_pass() {
    let targets = Targets::start();
    let mark = tempfile::tempdir().expect("tmp");
    let run = Test::new()
        .args(["run"])
        .arg(plans().join("ok"))
        .args(targets.vars())
        .args([
            "--var".to_string(),
            format!("mark={}", mark.path().join("mark").display()),
        ])
        .run()
        .expect_code(0);
    let err = run.stderr();
    assert!(err.contains("6 specs: 6 passed"), "{err}");
    assert!(err.contains("1 warning"), "{err}");
}

#[test]
fn failed_plans_fail_with_clear_messages() {
    let targets = Targets::start();
    let dir = tempfile::tempdir().expect("tmp");
    let junit = dir.path().join("junit.xml");
    let run = Test::new()
        .args(["run", "-j", "3"])
        .arg(plans().join("failed"))
        .args(targets.vars())
        .args(["--report".to_string(), format!("junit={}", junit.display())])
        .run()
        .expect_code(1);
    let err = run.stderr();
    // expected vs actual, located in the spec
    assert!(err.contains("expected `201`, got `200`"), "{err}");
    assert!(err.contains("status.toml:7"), "{err}");
    // ... and the body that came with the wrong status
    assert!(
        err.contains("    body:\n      {\"status\":\"healthy\",\"container_type\":\"wsgi\""),
        "{err}"
    );
    // a failed process shows its last output under the failed check, stderr
    // first; a step that passed shows nothing more than its line
    assert!(err.contains("expected `0`, got `3`"), "{err}");
    assert!(
        err.contains("    stderr:\n      boom\n    stdout:\n      out\n"),
        "{err}"
    );
    assert!(!err.contains("all-quiet-here"), "{err}");
    // an unreachable server says so, and teardown still ran
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("teardown"), "{err}");
    // a step past its time limit is stopped
    assert!(err.contains("did not finish within 200 ms"), "{err}");
    // an unset environment variable is named once, at the variable
    assert_eq!(
        err.matches("`PLANRUN_TEST_UNSET_TOKEN`, which is not set")
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("missing-env.toml:5:1"), "{err}");
    // every failing check of a table is reported, at its line; a passing one
    // stays quiet
    for said in [
        "events: expected not incremental: 4 items arrived in 3 bursts",
        "every-check.toml:9:",
        "events: expected gaps of at most 10 ms, item",
        "every-check.toml:10:",
        "events: in_order: no item matches #1",
        "every-check.toml:11:",
        "json.checks: `database`: expected `\"down\"`, got `\"ok\"`",
        "json.checks: `cache`: expected `\"cold\"`, got `\"ok\"`",
    ] {
        assert!(err.contains(said), "{said}: {err}");
    }
    assert!(!err.contains("expected the first within"), "{err}");
    // documents differ by path, whatever the order of their keys
    assert!(err.contains("json: differs at `$.container_type`"), "{err}");
    assert!(
        err.contains("$.container_type: expected \"asgi\", got \"wsgi\""),
        "{err}"
    );
    assert!(!err.contains("$.status"), "{err}");
    // a JSON target on a body that is not JSON says so, as the parser does
    // (the report wraps the line before the quote)
    assert!(
        err.contains(
            "json.status: the stdout is not valid JSON: expected value at line 1 column 1; it starts"
        ),
        "{err}"
    );
    assert!(err.contains("`<html><head><title>502 Bad Gateway"), "{err}");
    // a repeated step: the count, and each failure named by its iteration;
    // a failure already shown for an earlier iteration takes one line
    for said in [
        "✗ login  http  1 of 3 iterations failed",
        "× iteration 1 (user = \"bob\"): status: expected `200`, got `401`",
        "repeat.toml:8:8",
        "✗ pages  http  7 of 20 iterations failed",
        "    × iteration 3: status: expected `200`, got `404`\n",
        "… and 2 more failed iterations",
    ] {
        assert!(err.contains(said), "{said}: {err}");
    }
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains("iteration 1 (user = &quot;bob&quot;): status: expected `200`, got `401`"),
        "{xml}"
    );
    assert!(
        xml.contains("FAIL-STATUS") && xml.contains("<failure"),
        "{xml}"
    );
    assert!(xml.contains("stderr:\n  boom\n"), "{xml}");
}

#[test]
fn seed_specs_pass_against_the_demo_target() {
    let targets = Targets::start();
    let run = Test::new()
        .args(["run"])
        .args(
            demo_specs()
                .iter()
                .map(|p| root().join(p).display().to_string()),
        )
        .args(targets.vars())
        .run()
        .expect_code(0);
    let err = run.stderr();
    assert!(err.contains("passed"), "{err}");
    // secrets never reach the output, even in verbose mode
    let run = Test::new()
        .args(["run", "-v"])
        .arg(root().join("specs/tc-009.toml"))
        .args(targets.vars())
        .run()
        .expect_code(0);
    assert!(!run.stderr().contains("secret\""), "{}", run.stderr());
}

/// `-vv` shows what each http step sent and what came back, secrets hidden.
#[test]
fn very_verbose_shows_requests_and_responses() {
    let targets = Targets::start();
    let run = Test::new()
        .args(["run", "-vv"])
        .arg(root().join("specs/tc-009.toml"))
        .args(targets.vars())
        .args(["--secret", "qa_password=secret"])
        .run()
        .expect_code(0);
    let err = run.stderr();
    let login = format!("> POST {}/api/auth/login/", targets.wsgi.base_url());
    assert!(err.contains(&login), "{err}");
    assert!(err.contains("> content-type: application/json"), "{err}");
    assert!(err.contains(r#""password":"***""#), "{err}");
    assert!(err.contains("< HTTP/1.1 200"), "{err}");
    assert!(err.contains("< set-cookie: sessionid=***"), "{err}");
    // the captured session is a secret too, where it is sent: the header
    // that holds it is hidden whole
    assert!(err.contains("> cookie: ***"), "{err}");
    assert!(!err.contains("\"secret\""), "{err}");
    // `-v` alone shows steps, not exchanges
    let run = Test::new()
        .args(["run", "-v"])
        .arg(root().join("specs/tc-009.toml"))
        .args(targets.vars())
        .run()
        .expect_code(0);
    assert!(!run.stderr().contains("> POST"), "{}", run.stderr());
}

#[test]
fn seed_specs_fail_against_the_wrong_target() {
    let targets = Targets::start();
    // the asgi health check pointed at the wsgi flavor must fail, located
    let run = Test::new()
        .args(["run"])
        .arg(root().join("specs/tc-004.yaml"))
        .args([
            "--var".to_string(),
            format!("asgi_url={}", targets.wsgi.base_url()),
        ])
        .run()
        .expect_code(1);
    let err = run.stderr();
    assert!(err.contains("tc-004.yaml:"), "{err}");
    assert!(
        err.contains("\"asgi\"") || err.contains("`\"asgi\"`") || err.contains("asgi"),
        "{err}"
    );
}

#[test]
fn streaming_specs_fail_against_a_target_that_buffers_and_refuses_sockets() {
    let targets = Targets::start();
    let broken = targets
        .runtime
        .block_on(DemoServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            Flavor::WsgiOnly,
        ))
        .expect("wsgi-only demo");
    let run = Test::new()
        .args(["run", "--id", "TC-005", "--id", "TC-006"])
        .arg(root().join("specs"))
        .args([
            "--var".to_string(),
            format!("base_url={}", broken.base_url()),
        ])
        .run()
        .expect_code(1);
    let err = run.stderr();
    // TC-005: the stream came, but in one piece
    assert!(
        err.contains("events: expected incremental: all 10 items arrived in one burst"),
        "{err}"
    );
    assert!(err.contains("tc-005.toml:20:"), "{err}");
    // TC-006: the handshake was refused, said at the URL
    assert!(err.contains("404"), "{err}");
    assert!(err.contains("tc-006.yaml:13:"), "{err}");
    assert!(err.contains("2 specs: 0 passed, 2 failed"), "{err}");
}

#[test]
fn quickstart_runs_its_own_demo_target() {
    let run = Test::new()
        .args(["run"])
        .arg(root().join("examples/quickstart"))
        .args(["--var", "port=18799"])
        .run()
        .expect_code(0);
    assert!(run.stderr().contains("1 passed"), "{}", run.stderr());
    // the background demo was stopped at the end
    assert!(
        std::net::TcpStream::connect("127.0.0.1:18799").is_err(),
        "demo still running"
    );
}

/// `planrun demo --port 0` says on stderr where it listens, in the line that
/// specs read their address from (docs/demo.md).
#[test]
fn demo_on_port_0_says_where_it_listens() {
    use std::io::{BufRead, Read, Write};
    let mut child = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(["demo", "--port", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    let stderr = child.stderr.take().expect("stderr");
    let _ = std::io::BufReader::new(stderr).read_line(&mut line);
    let addr = line
        .strip_prefix("planrun demo (wsgi) listening on http://")
        .and_then(|rest| rest.split(' ').next())
        .map(str::to_string);
    let answer = addr.as_deref().map(|addr| {
        let mut answer = String::new();
        if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
            let _ = stream.write_all(b"GET /health/ HTTP/1.0\r\n\r\n");
            let _ = stream.read_to_string(&mut answer);
        }
        answer
    });
    // stopped before any assertion, so a failure leaves nothing running
    let _ = child.kill();
    let _ = child.wait();
    let addr = addr.unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{line}"
    );
    let answer = answer.unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
}

/// The exec and wait examples start the demo on a port the OS picks and
/// reach it at the address captured from its ready line.
#[test]
fn exec_and_wait_examples_capture_the_demo_address() {
    let run = Test::new()
        .args(["run", "-v"])
        .arg(root().join("examples/exec"))
        .arg(root().join("examples/wait"))
        .run()
        .expect_code(0);
    let err = run.stderr();
    assert!(err.contains("2 specs: 2 passed"), "{err}");
    // the http step and the waits ran after the capture
    for step in ["fetch", "port", "health"] {
        assert!(err.contains(&format!("✓ {step} ")), "{step}: {err}");
    }
}

/// The repeat example runs its iterations against the demo it starts, and
/// a repeated step takes one line.
#[test]
fn repeat_example_runs_each_iteration() {
    let run = Test::new()
        .args(["run", "-v"])
        .arg(root().join("examples/repeat"))
        .run()
        .expect_code(0);
    let err = run.stderr();
    assert!(err.contains("1 spec: 1 passed"), "{err}");
    for line in [
        "✓ requests  http  100 iterations  ",
        "✓ stream    sse   10 iterations  ",
        "✓ login     http  3 iterations  ",
    ] {
        assert!(err.contains(line), "{line}: {err}");
    }
}

#[test]
fn list_json_is_the_ci_matrix_input() {
    let run = Test::new()
        .args(["list", "--json"])
        .arg(root().join("specs"))
        .run()
        .expect_code(0);
    let items: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    let ids: Vec<_> = items
        .as_array()
        .expect("array")
        .iter()
        .map(|i| i["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        ids.contains(&String::from("TC-003")) && ids.contains(&String::from("TC-009")),
        "{ids:?}"
    );
    let run = Test::new()
        .args(["list", "--json", "--priority", "medium"])
        .arg(root().join("specs"))
        .run()
        .expect_code(0);
    assert!(!run.stdout().contains("TC-003"), "{}", run.stdout());
}

#[test]
fn schema_is_current() {
    let run = Test::new().args(["schema"]).run().expect_code(0);
    let committed =
        std::fs::read_to_string(root().join("schema/planrun.schema.json")).unwrap_or_default();
    assert_eq!(
        committed.trim_end(),
        run.stdout().trim_end(),
        "schema/planrun.schema.json is stale: run `cargo run -- schema > schema/planrun.schema.json`"
    );
}

#[test]
fn graph_prints_mermaid_and_dot() {
    let file = plans().join("ok/graph.yaml");
    let run = Test::new().args(["graph"]).arg(&file).run().expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("s0 --> s2") && out.contains("s1 --> s2"),
        "{out}"
    );
    assert_eq!(out.matches("flowchart TD").count(), 1, "{out}");
    assert!(out.starts_with("%% OK-GRAPH: "), "{out}");
    let run = Test::new()
        .args(["graph", "--format", "dot"])
        .arg(&file)
        .run()
        .expect_code(0);
    assert!(run.stdout().contains("s0 -> s2;"), "{}", run.stdout());
    assert!(!run.stdout().contains("cluster"), "{}", run.stdout());
}

/// The variables the plans of `ok/` need to be planned (not to run).
const OK_VARS: [&str; 4] = [
    "--var",
    "base_url=http://127.0.0.1:9",
    "--var",
    "mark=/nonexistent/mark",
];

/// Several specs are several graphs, not the first one alone: a Mermaid
/// block each, and in DOT one graph with a cluster each.
#[test]
fn graph_draws_every_spec() {
    let dir = plans().join("ok");
    let run = Test::new()
        .args(["graph"])
        .arg(&dir)
        .args(OK_VARS)
        .run()
        .expect_code(0);
    let out = run.stdout();
    assert_eq!(out.matches("flowchart TD").count(), 6, "{out}");
    for (id, file) in [
        ("OK-GRAPH", "graph.yaml"),
        ("OK-HEALTH", "health.toml"),
        ("OK-INCLUDE", "include.toml"),
        ("OK-REPEAT", "repeat.toml"),
        ("OK-RETRY", "retry.toml"),
        ("OK-WARN", "should-warn.toml"),
    ] {
        let heading = out
            .lines()
            .find(|l| l.starts_with(&format!("%% {id}: ")))
            .unwrap_or_else(|| panic!("no heading for {id}: {out}"));
        assert!(heading.ends_with(file), "{heading}");
    }
    // each block opens with its heading and `flowchart`
    for block in out.split("\n\n") {
        let mut lines = block.lines();
        assert!(
            lines.next().is_some_and(|l| l.starts_with("%% ")),
            "{block}"
        );
        assert_eq!(lines.next(), Some("flowchart TD"), "{block}");
    }

    let run = Test::new()
        .args(["graph", "--format", "dot"])
        .arg(&dir)
        .args(OK_VARS)
        .run()
        .expect_code(0);
    let out = run.stdout();
    assert_eq!(out.matches("digraph").count(), 1, "{out}");
    for n in 0..5 {
        assert!(out.contains(&format!("subgraph cluster_{n} {{")), "{out}");
    }
    assert!(out.contains("label=\"OK-GRAPH ("), "{out}");
    assert!(out.contains("s0_0 -> s0_2;"), "{out}");
    assert!(out.contains("s1_0 [label="), "{out}");
    assert_eq!(out.matches('{').count(), out.matches('}').count(), "{out}");

    let run = Test::new()
        .args(["graph", "--id", "OK-WARN"])
        .arg(&dir)
        .args(OK_VARS)
        .run()
        .expect_code(0);
    assert_eq!(run.stdout().matches("flowchart TD").count(), 1);
    assert!(run.stdout().starts_with("%% OK-WARN: "), "{}", run.stdout());
}

/// `validate` prints its verdict on stdout, counted in words that agree
/// with the numbers; problems go to stderr with exit code 2.
#[test]
fn validate_counts_on_stdout() {
    let one = plans().join("ok/should-warn.toml");
    let run = Test::new()
        .args(["validate", "--no-color"])
        .arg(&one)
        .run()
        .expect_code(0);
    assert_eq!(run.stdout(), "1 spec valid (1 step)\n");
    assert_eq!(run.stderr(), "");

    let run = Test::new()
        .args(["validate"])
        .arg(plans().join("ok"))
        .args(OK_VARS)
        .run()
        .expect_code(0);
    assert_eq!(
        run.stdout(),
        "6 specs valid (17 steps)
"
    );

    let run = Test::new()
        .args(["validate", "--no-color"])
        .arg(plans().join("invalid/cycle.toml"))
        .run()
        .expect_code(2);
    assert_eq!(run.stdout(), "");
    assert!(run.stderr().contains("nothing ran"), "{}", run.stderr());
    assert!(!run.stderr().contains('\u{1b}'), "{}", run.stderr());
}

/// The `list` table's columns line up however long the ids and names are.
#[test]
fn list_aligns_columns_to_the_longest_cell() {
    let dir = tempfile::tempdir().expect("tmp");
    let specs = [
        ("a.toml", "A", "high", "short"),
        (
            "b.toml",
            "A-VERY-LONG-TEST-CASE-IDENTIFIER-2024",
            "low",
            "a name that is longer than forty characters, by far",
        ),
        ("c.toml", "C", "medium", "middle"),
    ];
    for (file, id, priority, name) in specs {
        std::fs::write(
            dir.path().join(file),
            format!(
                "id = \"{id}\"\nname = \"{name}\"\npriority = \"{priority}\"\n\n[[steps]]\nid = \"w\"\nwait = \"1ms\"\n"
            ),
        )
        .expect("spec");
    }
    let run = Test::new()
        .args(["list"])
        .arg(dir.path())
        .run()
        .expect_code(0);
    let out = run.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let path = |file: &str| dir.path().join(file).display().to_string();
    for (column, cells) in [
        ("priority", ["high", "low", "medium"].map(String::from)),
        ("name", ["short", "a name that", "middle"].map(String::from)),
        ("path", ["a.toml", "b.toml", "c.toml"].map(path)),
    ] {
        let starts: Vec<Option<usize>> = lines
            .iter()
            .zip(cells)
            .map(|(line, cell)| line.find(&format!("  {cell}")))
            .collect();
        assert!(starts[0].is_some(), "{column}: {out}");
        assert!(starts.iter().all(|s| *s == starts[0]), "{column}: {out}");
    }
    assert!(lines.iter().all(|l| !l.ends_with(' ')), "{out}");
}

/// A spec for `curl` and `--step`: a body with `'`, a header with spaces,
/// steps that need others, teardown, and a step nothing needs.
const STEPS_SPEC: &str = r#"
id = "STEPS"
vars = { word = "plain" }

[[steps]]
id = "create"
http = { post = "{{ base_url }}/api/messages/", headers = { Content-Type = "application/json", X-Note = "two words here" }, body = "{\"session_id\": \"q1\", \"content\": \"it's {{ word }}\"}" }
expect.status = 201
capture.id = "json.id"

[[steps]]
id = "read"
http = { get = "{{ base_url }}/api/messages/{{ create.id }}/" }
expect.status = 200

[[steps]]
id = "unrelated"
http = { get = "{{ base_url }}/health/" }
needs = []

[[steps]]
id = "cleanup"
http = { delete = "{{ base_url }}/api/messages/{{ create.id }}/" }
needs = ["create", "read"]
if = "create is defined"
always = true
"#;

/// `planrun curl` prints a command that sends what the step would send:
/// quoted for the shell, secrets hidden unless asked for.
#[test]
fn curl_prints_a_step_as_a_command() {
    let targets = Targets::start();
    let dir = tempfile::tempdir().expect("tmp");
    let spec = dir.path().join("steps.toml");
    std::fs::write(&spec, STEPS_SPEC).expect("write");
    let run = Test::new()
        .args(["curl"])
        .arg(&spec)
        .args(["create"])
        .args(targets.vars())
        .args(["--secret", "word=sesame"])
        .run()
        .expect_code(0);
    let out = run.stdout();
    assert!(out.contains("-X POST"), "{out}");
    assert!(out.contains("-H 'X-Note: two words here'"), "{out}");
    // the body's template reads the secret: all of it is secret
    assert!(out.contains("--data-raw '***'"), "{out}");
    assert!(out.contains("# secrets are shown as ***"), "{out}");
    assert!(!out.contains("sesame"), "{out}");

    let run = Test::new()
        .args(["curl"])
        .arg(&spec)
        .args(["create", "--show-secrets"])
        .args(targets.vars())
        .args(["--secret", "word=sesame"])
        .run()
        .expect_code(0);
    let command = run.stdout();
    assert!(command.contains("it'\\''s sesame"), "{command}");
    let have_curl = Command::new("sh")
        .args(["-c", "command -v curl"])
        .output()
        .is_ok_and(|o| o.status.success());
    if have_curl {
        let sent = Command::new("sh")
            .args(["-c", &command])
            .output()
            .expect("sh runs");
        let body = String::from_utf8_lossy(&sent.stdout);
        assert!(sent.status.success(), "{command}\n{body}");
        assert!(body.contains(r#""content":"it's sesame""#), "{body}");
    }

    // a step that reads another step's capture cannot be rendered alone
    let run = Test::new()
        .args(["curl"])
        .arg(&spec)
        .args(["read"])
        .args(targets.vars())
        .run()
        .expect_code(2);
    let err = run.stderr();
    assert!(err.contains("cannot render step `read`"), "{err}");
    assert!(err.contains("--step read -vv"), "{err}");

    let run = Test::new()
        .args(["curl"])
        .arg(&spec)
        .args(["craete"])
        .args(targets.vars())
        .run()
        .expect_code(2);
    assert!(
        run.stderr().contains("did you mean `create`"),
        "{}",
        run.stderr()
    );
}

/// `--step` runs the step, what it needs and their teardown, nothing else.
#[test]
fn run_one_step_with_what_it_needs() {
    let targets = Targets::start();
    let dir = tempfile::tempdir().expect("tmp");
    let spec = dir.path().join("steps.toml");
    std::fs::write(&spec, STEPS_SPEC).expect("write");
    let run = Test::new()
        .args(["run", "-v", "--step", "read"])
        .arg(&spec)
        .args(targets.vars())
        .run()
        .expect_code(0);
    let err = run.stderr();
    for id in ["create", "read", "cleanup"] {
        assert!(err.contains(&format!("✓ {id}")), "{err}");
    }
    assert!(!err.contains("unrelated"), "{err}");
    assert!(err.contains("3 steps"), "{err}");

    // teardown follows what it needs that runs, without the rest
    let run = Test::new()
        .args(["run", "-v", "--step", "create"])
        .arg(&spec)
        .args(targets.vars())
        .run()
        .expect_code(0);
    let err = run.stderr();
    assert!(err.contains("✓ cleanup"), "{err}");
    assert!(!err.contains("read"), "{err}");

    let run = Test::new()
        .args(["run", "--step", "unrelated", "-v"])
        .arg(&spec)
        .args(targets.vars())
        .run()
        .expect_code(0);
    let err = run.stderr();
    assert!(err.contains("✓ unrelated"), "{err}");
    assert!(!err.contains("create"), "{err}");

    let run = Test::new()
        .args(["run", "--step", "reed"])
        .arg(&spec)
        .args(targets.vars())
        .run()
        .expect_code(2);
    let err = run.stderr();
    assert!(
        err.contains("no selected spec has a step `reed` (did you mean `read`?)"),
        "{err}"
    );
}

/// A refused connection names the variables the URL was built from, as the
/// spec wrote it: `asgi_url` here, not a `base_url` the spec never used.
#[test]
fn a_refused_connection_names_the_variable_of_the_url() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = dir.path().join("refused.toml");
    std::fs::write(
        &spec,
        "[[steps]]\nhttp = { get = \"{{ asgi_url }}/health/\" }\n\n[[steps]]\nneeds = []\nsse = { get = \"{{ asgi_url }}/api/stream/\" }\n\n[[steps]]\nneeds = []\nws = { url = \"http://127.0.0.1:{{ port }}/ws/\", conversation = [{ send = \"hi\" }] }\n",
    )
    .expect("spec");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let run = Test::new()
        .args(["run"])
        .arg(&spec)
        .args([
            "--var".to_string(),
            format!("asgi_url=http://127.0.0.1:{port}"),
            "--var".to_string(),
            format!("port={port}"),
        ])
        .run()
        .expect_code(1);
    let err = run.stderr();
    assert_eq!(
        err.matches("help: is the server running? check `asgi_url`")
            .count(),
        2,
        "{err}"
    );
    assert!(
        err.contains("help: is the server running and listening on that port? check `port`"),
        "{err}"
    );
    assert!(!err.contains("base_url"), "{err}");
}

/// A step of an included file that fails at run time is shown in that file,
/// in the terminal and in the JSON and Markdown reports.
#[test]
fn a_failure_in_an_included_step_points_into_its_file() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(dir.path().join("_shared")).expect("dir");
    std::fs::write(
        dir.path().join("_shared/login.toml"),
        "# shared\n\n[[steps]]\nid = \"login\"\nhttp = { post = \"{{ asgi_url }}/api/auth/login/\" }\n",
    )
    .expect("fragment");
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        "include = [\"_shared/login.toml\"]\n\n[[steps]]\nid = \"me\"\nhttp = { get = \"{{ asgi_url }}/api/auth/me/\" }\n",
    )
    .expect("spec");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let (json, markdown) = (dir.path().join("r.json"), dir.path().join("r.md"));
    let run = Test::new()
        .args(["run"])
        .arg(&spec)
        .args([
            "--var".to_string(),
            format!("asgi_url=http://127.0.0.1:{port}"),
            "--report".to_string(),
            format!("json={}", json.display()),
            "--report".to_string(),
            format!("markdown={}", markdown.display()),
        ])
        .run()
        .expect_code(1);
    let err = run.stderr();
    let place = format!("{}:5:17", dir.path().join("_shared/login.toml").display());
    assert!(err.contains(&format!("[{place}]")), "{err}");
    let json = std::fs::read_to_string(&json).expect("json report");
    assert!(json.contains("\"file\": \""), "{json}");
    let markdown = std::fs::read_to_string(&markdown).expect("markdown report");
    assert!(markdown.contains(&place), "{markdown}");
}

/// A directory whose `planrun.toml` names a setup and a teardown: each spec
/// is an `exec` step that appends its name to the file `log` (`vars.log`);
/// `shell` maps file names to the command of their step, run before the
/// append (a spec fails when that command does).
fn directory_with_setup(dir: &Path, shell: &[(&str, &str)]) {
    let log = dir.join("log");
    std::fs::create_dir_all(dir.join("sub")).expect("dir");
    std::fs::write(
        dir.join("planrun.toml"),
        format!(
            "setup = \"_setup.toml\"\nteardown = \"_teardown.toml\"\nvars.log = {:?}\n",
            log.display().to_string()
        ),
    )
    .expect("planrun.toml");
    for (file, command) in shell {
        let name = Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name");
        std::fs::write(
            dir.join(file),
            format!(
                "[[steps]]\nid = \"step\"\nexec = {{ shell = '{command} && echo {name} >> \"$LOG\"', env = {{ LOG = \"{{{{ log }}}}\" }} }}\nexpect.exit_code = 0\n"
            ),
        )
        .expect("spec");
    }
}

fn log_of(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// The setup runs before every spec of its directory and below (they wait
/// for it even side by side), the teardown after all of them; reports
/// show both as specs, in that order.
#[test]
fn a_directory_setup_runs_first_and_its_teardown_last() {
    let dir = tempfile::tempdir().expect("tmp");
    let ready = "test -f \"$LOG\"";
    directory_with_setup(
        dir.path(),
        &[
            ("_setup.toml", "sleep 0.3"),
            ("a.toml", ready),
            ("b.toml", ready),
            ("sub/c.toml", ready),
            ("_teardown.toml", "true"),
        ],
    );
    let json = dir.path().join("r.json");
    let run = Test::new()
        .args(["run", "-j", "4"])
        .arg(dir.path())
        .args(["--report".to_string(), format!("json={}", json.display())])
        .run()
        .expect_code(0);
    let err = run.stderr();
    assert!(err.contains("5 specs: 5 passed"), "{err}");
    let log = log_of(dir.path());
    assert_eq!(log.first().map(String::as_str), Some("_setup"), "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("_teardown"), "{log:?}");
    assert_eq!(log.len(), 5, "{log:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    let ids: Vec<&str> = report["specs"]
        .as_array()
        .expect("specs")
        .iter()
        .filter_map(|s| s["info"]["id"].as_str())
        .collect();
    assert_eq!(ids, ["_setup", "a", "b", "c", "_teardown"], "{report}");
    // `validate` checks them too
    let out = Test::new()
        .args(["validate"])
        .arg(dir.path())
        .run()
        .expect_code(0)
        .stdout();
    assert!(out.contains("5 specs valid"), "{out}");
}

/// A setup that fails: the directory's specs are not run, each says why,
/// the teardown still runs and the run fails.
#[test]
fn a_failing_setup_skips_the_directory_and_the_teardown_still_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    directory_with_setup(
        dir.path(),
        &[
            ("_setup.toml", "exit 1"),
            ("a.toml", "true"),
            ("sub/c.toml", "true"),
            ("_teardown.toml", "true"),
        ],
    );
    let junit = dir.path().join("junit.xml");
    let run = Test::new()
        .args(["run", "-j", "2"])
        .arg(dir.path())
        .args(["--report".to_string(), format!("junit={}", junit.display())])
        .run()
        .expect_code(1);
    let err = run.stderr();
    assert_eq!(log_of(dir.path()), ["_teardown"], "{err}");
    for said in [
        "✗ _setup failed",
        "- a (",
        "cancelled (the directory's setup `_setup.toml` failed)",
        "4 specs: 1 passed, 1 failed, 2 cancelled",
    ] {
        assert!(err.contains(said), "{said}: {err}");
    }
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(
        xml.contains("skipped: the directory&apos;s setup `_setup.toml` failed"),
        "{xml}"
    );
}

/// One spec run on its own runs with its directory's setup and teardown, as
/// in the directory run; `--no-setup` runs it alone.
#[test]
fn one_spec_runs_with_its_directory_setup_unless_no_setup() {
    let dir = tempfile::tempdir().expect("tmp");
    directory_with_setup(
        dir.path(),
        &[
            ("_setup.toml", "true"),
            ("a.toml", "true"),
            ("b.toml", "true"),
            ("_teardown.toml", "true"),
        ],
    );
    Test::new()
        .args(["run"])
        .arg(dir.path().join("a.toml"))
        .run()
        .expect_code(0);
    assert_eq!(log_of(dir.path()), ["_setup", "a", "_teardown"]);
    std::fs::remove_file(dir.path().join("log")).expect("rm");
    Test::new()
        .args(["run", "--no-setup"])
        .arg(dir.path().join("a.toml"))
        .run()
        .expect_code(0);
    assert_eq!(log_of(dir.path()), ["a"]);
}

/// A setup or teardown that does not exist is a problem located in
/// `planrun.toml`, and nothing runs.
#[test]
fn a_missing_setup_is_located_in_planrun_toml() {
    let dir = tempfile::tempdir().expect("tmp");
    directory_with_setup(dir.path(), &[("a.toml", "true")]);
    for command in ["run", "validate"] {
        let run = Test::new()
            .args([command])
            .arg(dir.path())
            .run()
            .expect_code(2);
        let err = run.stderr();
        for said in [
            format!(
                "the setup `{}` does not exist",
                dir.path().join("_setup.toml").display()
            ),
            format!("[{}:1:9]", dir.path().join("planrun.toml").display()),
            String::from("no such file"),
            format!(
                "the teardown `{}` does not exist",
                dir.path().join("_teardown.toml").display()
            ),
        ] {
            assert!(err.contains(&said), "{said}: {err}");
        }
    }
    assert!(log_of(dir.path()).is_empty());
}

/// Ctrl-C while the directory's specs run: they are stopped, the teardown
/// still runs in full.
#[test]
fn the_teardown_runs_after_an_interrupt() {
    let dir = tempfile::tempdir().expect("tmp");
    directory_with_setup(
        dir.path(),
        &[
            ("_setup.toml", "true"),
            ("a.toml", "sleep 60"),
            ("_teardown.toml", "true"),
        ],
    );
    let child = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while log_of(dir.path()).is_empty() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert_eq!(log_of(dir.path()), ["_setup", "_teardown"], "{err}");
    assert!(err.contains("✓ _teardown"), "{err}");
}

/// The open-file limit is raised to the hard limit at start: a process a
/// step starts inherits it (`prlimit` from util-linux sets a low soft limit).
#[test]
fn the_open_file_limit_is_raised_at_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = dir.path().join("nofile.toml");
    std::fs::write(
        &spec,
        "id = \"NOFILE\"\n[[steps]]\nexec = { shell = \"ulimit -n\" }\nexpect.stdout = { matches = \"^4096\" }\n",
    )
    .expect("spec");
    let out = Command::new("prlimit")
        .arg("--nofile=256:4096")
        .arg(env!("CARGO_BIN_EXE_planrun"))
        .arg("run")
        .arg(&spec)
        .env("NO_COLOR", "1")
        .output()
        .expect("prlimit (util-linux) runs planrun");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
