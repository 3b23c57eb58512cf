//! The specs that need PostgreSQL (`specs/postgres/`), run by the real binary
//! against two demo servers, WSGI and ASGI, that keep their messages in the
//! PostgreSQL `scripts/test` starts (`PLANRUN_TEST_POSTGRES`): TC-008 passes
//! with small pools and fails, located, when the pools take most of
//! `max_connections`. A test whose server is not there fails, saying how to
//! start it.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Output, Stdio};

mod support;

use support::root;

fn postgres() -> String {
    std::env::var("PLANRUN_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "PLANRUN_TEST_POSTGRES is not set: run the tests with scripts/test, which starts \
             PostgreSQL (or `eval \"$(scripts/services start)\"` in this shell)"
        )
    })
}

/// The password of `scheme://user:password@host…`.
fn password_of(url: &str) -> String {
    planrun_spec::kinds::password_of(url)
        .expect("a password in the URL")
        .to_string()
}

/// A `planrun demo` process, stopped when dropped.
struct Demo {
    child: Child,
    base_url: String,
}

impl Demo {
    /// Starts `planrun demo` of `flavor` on a free port, its messages in
    /// PostgreSQL over `pool` connections; returns once it listens.
    fn start(flavor: &str, pool: u32) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_planrun"))
            .args(["demo", "--port", "0", "--flavor", flavor, "--database"])
            .arg(postgres())
            .args(["--pool", &pool.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("planrun demo starts");
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let base_url = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("the demo ended before it listened: {seen:#?}");
            };
            if let Some(rest) = line.split_once("listening on ").map(|(_, r)| r) {
                assert!(
                    line.contains(&format!("messages in PostgreSQL over {pool} connections")),
                    "{line}"
                );
                break rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .to_string();
            }
            seen.push(line);
        };
        // the rest of its output is not read: keep the pipe drained
        std::thread::spawn(move || lines.for_each(drop));
        Demo { child, base_url }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `planrun run` of `args` against the two demos, with the database URL
/// in the environment.
fn run(wsgi: &Demo, asgi: &Demo, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_planrun"))
        .arg("run")
        .args(args)
        .args(["--var", &format!("base_url={}", wsgi.base_url)])
        .args(["--var", &format!("asgi_url={}", asgi.base_url)])
        .env("DATABASE_URL", postgres())
        .env("NO_COLOR", "1")
        .current_dir(root())
        .output()
        .expect("planrun runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// TC-008 as the seed plan writes it: 100 requests to each side, then the
/// database's connections under 80% of `max_connections`. With pools of
/// ten it passes; with pools that take most of the server's connections it
/// fails, the expectation underlined in the spec and the share it saw.
#[test]
fn tc_008_passes_with_small_pools_and_fails_located_with_large_ones() {
    let password = password_of(&postgres());
    {
        let (wsgi, asgi) = (Demo::start("wsgi", 10), Demo::start("asgi", 10));
        let out = run(&wsgi, &asgi, &["-v", "specs/postgres/tc-008.toml"]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("TC-008"), "{text}");
        assert!(
            !text.contains(&password),
            "the database's password is secret:\n{text}"
        );
    }
    // 2 x 42 connections of the 100 the test server allows
    let (wsgi, asgi) = (Demo::start("wsgi", 42), Demo::start("asgi", 42));
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("report.json");
    let out = run(
        &wsgi,
        &asgi,
        &[
            "specs/postgres/tc-008.toml",
            "--report",
            &format!("json={}", json.display()),
        ],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("specs/postgres/tc-008.toml:"),
        "located: {text}"
    );
    assert!(text.contains("rows[0].percent_used"), "{text}");
    assert!(text.contains("expected lt `80`"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("JSON");
    let step = &report["specs"][0]["report"]["steps"][2];
    assert_eq!(step["id"], "connections");
    assert_eq!(step["status"], "failed");
    let seen = step["expectations"][0]["actual"]
        .as_i64()
        .expect("the share seen");
    assert!(seen >= 80, "{step:#}");
    assert!(!text.contains(&password));
}

/// The demo's PostgreSQL store holds what the API writes, shared by both
/// sides, and the sql step reads it back.
#[test]
fn messages_written_through_one_side_are_in_the_database_and_read_by_the_other() {
    let (wsgi, asgi) = (Demo::start("wsgi", 2), Demo::start("asgi", 2));
    let dir = tempfile::tempdir().expect("tmp");
    let session = format!("store-{}", std::process::id());
    let spec = dir.path().join("store.toml");
    std::fs::write(
        &spec,
        format!(
            r#"id = "STORE"
vars.db = {{ env = "DATABASE_URL", secret = true }}
vars.base_url = "http://127.0.0.1:1"
vars.asgi_url = "http://127.0.0.1:1"

[[steps]]
id = "write"
http = {{ post = "{{{{ base_url }}}}/api/messages/", json = {{ session_id = "{session}", content = "kept in PostgreSQL" }} }}
expect.status = 201
capture.id = "json.id"

[[steps]]
id = "read-other-side"
http = {{ get = "{{{{ asgi_url }}}}/api/messages/{{{{ write.id }}}}/" }}
expect.status = 200
expect.json.content = "kept in PostgreSQL"

[[steps]]
id = "row"
sql = {{ url = "{{{{ db }}}}", query = "SELECT content FROM planrun_demo_messages WHERE id = $1", params = ["{{{{ write.id }}}}"] }}
expect."rows[0].content" = "kept in PostgreSQL"

[[steps]]
id = "delete"
always = true
if = "write is defined"
http = {{ delete = "{{{{ base_url }}}}/api/messages/{{{{ write.id }}}}/" }}
expect.status = 204
"#
        ),
    )
    .expect("write the spec");
    let out = run(&wsgi, &asgi, &[spec.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The database's password, and a wrong one tried on purpose, appear in no
/// output: not in the terminal (verbose), not in the JSON, JUnit or
/// Markdown report, whether the step passes, fails its expectation, or
/// cannot connect. The URL shows with `***` where the password was.
#[test]
fn database_passwords_are_hidden_in_every_output() {
    let url = postgres();
    let password = password_of(&url);
    let canary = "Wr0ng-canary-pass";
    let wrong = url.replacen(&format!(":{password}@"), &format!(":{canary}@"), 1);
    let dir = tempfile::tempdir().expect("tmp");
    let spec = dir.path().join("secret.toml");
    std::fs::write(
        &spec,
        r#"id = "DB-SECRETS"
defaults.needs = []
vars.db = { env = "DATABASE_URL", secret = true }
vars.wrong = { env = "WRONG_URL", secret = true }

[[steps]]
id = "passes"
sql = { url = "{{ db }}", query = "SELECT current_user AS who, $1::text AS echoed", params = ["{{ db }}"] }
expect."rows[0].who" = "planrun"

[[steps]]
id = "fails"
sql = { url = "{{ db }}", query = "SELECT $1::text AS url", params = ["{{ db }}"] }
expect."rows[0].url" = "something else"

[[steps]]
id = "refused"
sql = { url = "{{ wrong }}", query = "SELECT 1" }
"#,
    )
    .expect("write the spec");
    let reports = [
        ("json", dir.path().join("r.json")),
        ("junit", dir.path().join("r.xml")),
        ("markdown", dir.path().join("r.md")),
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_planrun"));
    command
        .args(["run", "-vv"])
        .arg(&spec)
        .env("DATABASE_URL", &url)
        .env("WRONG_URL", &wrong)
        .env("NO_COLOR", "1");
    for (kind, path) in &reports {
        command.args(["--report", &format!("{kind}={}", path.display())]);
    }
    let out = command.output().expect("planrun runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let mut outputs = vec![
        ("stderr", stderr(&out)),
        ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
    ];
    for (kind, path) in &reports {
        outputs.push((kind, std::fs::read_to_string(path).expect("a report")));
    }
    for (what, text) in &outputs {
        assert!(
            !text.contains(&password),
            "the password is in {what}:\n{text}"
        );
        assert!(
            !text.contains(canary),
            "the wrong password is in {what}:\n{text}"
        );
    }
    let terminal = &outputs[0].1;
    assert!(
        terminal.contains("password authentication failed"),
        "{terminal}"
    );
    assert!(terminal.contains(":***@127.0.0.1:"), "{terminal}");
}
