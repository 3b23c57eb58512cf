//! `--untrusted`: specs someone else wrote, run by the real binary. What
//! goes beyond the network is refused before anything runs, located and with
//! the flag that allows it; the allow flags and a policy file let it
//! through; templates see only the environment allowed; `insecure = true`
//! is reported.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

use planrun_testkit::FixtureServer;
use support::{Targets, demo_specs, root};

/// The fixture tree: `specs/` (the spec tree), `outside/` beside it and a
/// policy file.
fn fixtures() -> PathBuf {
    root().join("crates/planrun/tests/plans/untrusted")
}

/// The binary run in `dir` with `args` and extra environment variables.
fn planrun(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(args)
        .env("NO_COLOR", "1")
        .envs(envs.iter().copied())
        .current_dir(dir)
        .output()
        .expect("planrun runs");
    Out(out)
}

struct Out(Output);

impl Out {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    #[track_caller]
    fn code(self, code: i32) -> Out {
        assert_eq!(
            self.0.status.code(),
            Some(code),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// The text without white space and miette's gutter, so that a phrase
/// is found however the help line was wrapped.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

#[track_caller]
fn assert_says(stderr: &str, phrase: &str) {
    assert!(
        squash(stderr).contains(&squash(phrase)),
        "`{phrase}` not in\n{stderr}"
    );
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("dir");
    std::fs::write(path, text).expect("write");
}

/// Every class of refusal in one spec (and a file it includes): each is a
/// located diagnostic with the flag that allows it, all at once, exit 2;
/// the rendered output is pinned beside the fixtures.
#[test]
fn every_refusal_of_a_spec_is_shown_at_once_with_the_flag_that_allows_it() {
    let dir = fixtures();
    let run = planrun(&dir, &["validate", "--untrusted", "specs"], &[]).code(2);
    let stderr = run.stderr();
    assert!(run.stdout().is_empty(), "{}", run.stdout());
    for (location, message, help) in [
        (
            "[specs/refused.toml:4:34]",
            "the included file `outside/steps.toml` is outside the spec tree",
            "pass `--allow-read outside/steps.toml`",
        ),
        (
            "[specs/_shared/login.toml:3:73]",
            "this template reads the environment variable `API_TOKEN`, which `--untrusted` does not allow",
            "pass `--allow-env API_TOKEN`",
        ),
        (
            "[specs/refused.toml:12:1]",
            "an `exec` step starts processes on this machine, which `--untrusted` does not allow",
            "pass `--allow exec`",
        ),
        (
            "[specs/refused.toml:12:32]",
            "`cwd` names `../outside`, which is outside the spec tree",
            "pass `--allow-read outside`",
        ),
        (
            "[specs/refused.toml:16:78]",
            "`multipart.report.file` names `../outside/report.pdf`, which is outside the spec tree",
            "pass `--allow-read outside/report.pdf`",
        ),
        (
            "[specs/refused.toml:21:53]",
            "`ca_cert` names `/etc/ca.pem`, which is outside the spec tree",
            "pass `--allow-read /etc/ca.pem`",
        ),
        (
            "[specs/refused.toml:21:79]",
            "`insecure = true` turns off TLS certificate verification, which `--untrusted` does not allow",
            "pass `--allow insecure`",
        ),
        (
            "[specs/refused.toml:20:6]",
            "this template reads the environment variable `CI`",
            "pass `--allow-env CI`",
        ),
        (
            "[specs/refused.toml:7:16]",
            "variable `user` reads the environment variable `QA_USER`, which `--untrusted` does not allow",
            "pass `--allow-env QA_USER`",
        ),
        (
            "[specs/refused.toml:8:8]",
            "this template reads the environment variable `HOME`",
            "pass `--allow-env HOME`",
        ),
    ] {
        let at = stderr
            .find(location)
            .unwrap_or_else(|| panic!("no diagnostic at {location}:\n{stderr}"));
        // the message stands above its location, the help below it
        let before = stderr[..at].rfind("planrun::not-allowed").expect("a code");
        let block = &stderr[before..];
        let block = &block[..block[1..]
            .find("planrun::")
            .map_or(block.len(), |end| end + 1)];
        assert_says(block, message);
        assert_says(block, help);
    }
    assert_eq!(
        stderr.matches("planrun::not-allowed").count(),
        10,
        "{stderr}"
    );
    assert!(
        stderr.ends_with("error: 10 problems in 2 files; nothing ran\n"),
        "{stderr}"
    );

    let expected_path = dir.join("refused.stderr");
    if std::env::var_os("PLANRUN_UPDATE_EXPECTED").is_some() {
        std::fs::write(&expected_path, &stderr).expect("write expected");
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    assert_eq!(
        expected, stderr,
        "the output differs from refused.stderr (set PLANRUN_UPDATE_EXPECTED=1 to accept)"
    );

    // `run` refuses the same, the same way
    let run = planrun(&dir, &["run", "--untrusted", "specs"], &[]).code(2);
    assert_eq!(run.stderr(), stderr);
}

/// The allow flags, and a policy file with paths relative to it, let the
/// same spec through; without `--untrusted` it was never refused.
#[test]
fn allow_flags_and_a_policy_file_let_it_through() {
    let dir = fixtures();
    let valid = "1 spec valid (5 steps)\n";
    let run = planrun(
        &dir,
        &[
            "validate",
            "--untrusted",
            "specs",
            "--allow",
            "exec,insecure",
            "--allow-env",
            "QA_*",
            "--allow-env",
            "HOME",
            "--allow-env",
            "CI",
            "--allow-env",
            "API_TOKEN",
            "--allow-read",
            "outside",
            "--allow-read",
            "/etc/ca.pem",
        ],
        &[],
    )
    .code(0);
    assert_eq!(run.stdout(), valid);
    let run = planrun(&dir, &["validate", "--policy", "policy.toml", "specs"], &[]).code(0);
    assert_eq!(run.stdout(), valid);
    // from elsewhere: the policy's `read` is relative to the policy file
    let run = planrun(
        &root(),
        &[
            "validate",
            "--policy",
            "crates/planrun/tests/plans/untrusted/policy.toml",
            "crates/planrun/tests/plans/untrusted/specs",
        ],
        &[],
    )
    .code(0);
    assert_eq!(run.stdout(), valid);
    // one allowance short: only that one is refused
    let run = planrun(
        &dir,
        &[
            "validate",
            "--policy",
            "policy.toml",
            "specs",
            "--allow-env",
            "NOTHING",
        ],
        &[],
    )
    .code(0);
    assert_eq!(run.stdout(), valid);
    let run = planrun(&dir, &["validate", "specs"], &[]).code(0);
    assert_eq!(run.stdout(), valid);
}

/// A policy file is checked like a spec: its problems all at once, located.
#[test]
fn a_policy_file_with_unknown_keys_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(
        &tmp.path().join("policy.toml"),
        "alow = [\"exec\"]\nenv = [\"QA_*\"]\nread = 3\n",
    );
    write(
        &tmp.path().join("specs/a.toml"),
        "[[steps]]\nwait = \"1ms\"\n",
    );
    let run = planrun(
        tmp.path(),
        &["validate", "--policy", "policy.toml", "specs"],
        &[],
    )
    .code(2);
    let stderr = run.stderr();
    assert!(stderr.contains("planrun::unknown-key"), "{stderr}");
    assert!(
        stderr.contains("× unknown key `alow` in the policy file"),
        "{stderr}"
    );
    assert!(stderr.contains("[policy.toml:1:1]"), "{stderr}");
    assert!(stderr.contains("help: did you mean `allow`?"), "{stderr}");
    assert!(
        stderr.contains("`read` must be a list of strings, found an integer"),
        "{stderr}"
    );
    assert!(stderr.contains("[policy.toml:3:8]"), "{stderr}");
    assert!(
        stderr.ends_with("error: 2 problems in the policy file `policy.toml`; nothing ran\n"),
        "{stderr}"
    );
    write(
        &tmp.path().join("policy.toml"),
        "allow = [\"exce\", \"http\"]\n",
    );
    let run = planrun(
        tmp.path(),
        &["validate", "--policy", "policy.toml", "specs"],
        &[],
    )
    .code(2);
    let stderr = run.stderr();
    assert_says(
        &stderr,
        "unknown allowance `exce` (allowed: `exec`, `sql`, `docker`, `insecure`); did you mean `exec`?",
    );
    assert_says(
        &stderr,
        "`http` steps need no allowance: they only talk over the network",
    );
}

/// The allow flags mean nothing without `--untrusted`; an unknown allowance
/// is named.
#[test]
fn allow_flags_need_untrusted_and_known_words() {
    let dir = fixtures();
    let run = planrun(&dir, &["validate", "specs", "--allow", "exec"], &[]).code(2);
    assert!(
        run.stderr().contains(
            "error: `--allow`, `--allow-env` and `--allow-read` take effect with `--untrusted` or `--policy`"
        ),
        "{}",
        run.stderr()
    );
    let run = planrun(
        &dir,
        &["validate", "--untrusted", "specs", "--allow", "exce"],
        &[],
    )
    .code(2);
    assert_eq!(
        run.stderr(),
        "error: --allow: unknown allowance `exce` (allowed: `exec`, `sql`, `docker`, `insecure`); did you mean `exec`?\n"
    );
}

/// Nothing starts when a spec is refused, not even the steps that are
/// allowed; allowed, the same spec runs them for real.
#[test]
fn a_refused_spec_runs_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    write(
        &tmp.path().join("specs/touch.toml"),
        "[[steps]]\nexec = { cmd = [\"sh\", \"-c\", \"echo ran > marker\"] }\n\n[[steps]]\nif = \"env.HOME != ''\"\nwait = \"1ms\"\n",
    );
    let marker = tmp.path().join("specs/marker");
    let run = planrun(
        tmp.path(),
        &["run", "--untrusted", "--allow", "exec", "specs"],
        &[],
    )
    .code(2);
    assert_says(
        &run.stderr(),
        "this template reads the environment variable `HOME`",
    );
    assert!(run.stderr().ends_with("nothing ran\n"), "{}", run.stderr());
    assert!(!marker.exists(), "the exec step ran");
    planrun(
        tmp.path(),
        &[
            "run",
            "--untrusted",
            "--allow",
            "exec",
            "--allow-env",
            "HOME",
            "specs",
        ],
        &[],
    )
    .code(0);
    assert_eq!(
        std::fs::read_to_string(&marker).expect("the marker"),
        "ran\n"
    );
}

/// The seed specs only talk over the network: under `--untrusted` they run
/// against the demo target and pass, once their `planrun.toml`'s
/// environment reads are allowed or its variables given.
#[test]
fn the_seed_specs_pass_under_untrusted() {
    let targets = Targets::start();
    let base_url = format!("base_url={}", targets.wsgi.base_url());
    let asgi_url = format!("asgi_url={}", targets.asgi.base_url());
    let specs = demo_specs();
    let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
    let run = planrun(
        &root(),
        &[
            &["run", "--untrusted"][..],
            &specs,
            &[
                "--var",
                &base_url,
                "--var",
                &asgi_url,
                "--allow-env",
                "QA_*",
            ],
        ]
        .concat(),
        &[],
    )
    .code(0);
    let stderr = run.stderr();
    assert!(stderr.contains("8 specs: 8 passed"), "{stderr}");
    assert!(!stderr.contains("warning: TLS"), "{stderr}");
    // without the allowance, the variables that read the environment say so
    let run = planrun(
        &root(),
        &[
            &["validate", "--untrusted"][..],
            &specs,
            &["--var", &base_url, "--var", &asgi_url],
        ]
        .concat(),
        &[],
    )
    .code(2);
    let stderr = run.stderr();
    assert!(stderr.contains("[specs/planrun.toml:6:"), "{stderr}");
    assert_says(
        &stderr,
        "variable `qa_user` reads the environment variable `QA_USER`",
    );
    assert!(
        stderr.ends_with("error: 2 problems in 1 file; nothing ran\n"),
        "{stderr}"
    );
}

/// A name computed as the template renders cannot be checked before the
/// run: under `--untrusted` the environment templates see holds only the
/// names allowed (and those of `--env-file`), so the read finds nothing.
#[test]
fn templates_see_only_the_environment_allowed() {
    let (_runtime, server) = fixture_server();
    let tmp = tempfile::tempdir().expect("tmp");
    write(
        &tmp.path().join("specs/env.toml"),
        "id = \"ENV\"\nvars.name = \"PLANRUN_TEST_SECRET\"\n\n[[steps]]\nhttp = { get = \"{{ base_url }}/echo\", query = { v = \"{{ env[name] | default('absent') }}\" } }\nexpect.json.query.v = \"{{ want }}\"\n",
    );
    write(
        &tmp.path().join("env-file"),
        "PLANRUN_TEST_SECRET=from-the-file\n",
    );
    let base_url = format!("base_url=http://{}", server.addr);
    let run_with = |extra: &[&str], want: &str| {
        let want = format!("want={want}");
        let mut args = vec!["run", "specs", "--var", &base_url, "--var", &want];
        args.extend_from_slice(extra);
        planrun(tmp.path(), &args, &[("PLANRUN_TEST_SECRET", "leaked")]).code(0)
    };
    // trusted: the whole environment
    run_with(&[], "leaked");
    // untrusted: the name is not allowed, so it is not there
    let run = run_with(&["--untrusted"], "absent");
    assert!(
        run.stderr().contains("1 spec: 1 passed"),
        "{}",
        run.stderr()
    );
    // allowed by a pattern
    run_with(&["--untrusted", "--allow-env", "PLANRUN_TEST_*"], "leaked");
    // `--env-file` is the user's own choice
    run_with(&["--untrusted", "--env-file", "env-file"], "from-the-file");
}

/// A fixture server, served by the runtime's worker while the test runs
/// the binary.
fn fixture_server() -> (tokio::runtime::Runtime, FixtureServer) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(FixtureServer::start());
    (runtime, server)
}

/// A step with `insecure = true` is reported once per run on the terminal
/// and in the JSON report; `--untrusted` refuses it unless allowed.
#[test]
fn insecure_steps_are_reported_and_refused_unless_allowed() {
    let (_runtime, server) = fixture_server();
    let tmp = tempfile::tempdir().expect("tmp");
    write(
        &tmp.path().join("specs/insecure.toml"),
        "id = \"INSECURE\"\n\n[[steps]]\nid = \"loose\"\nhttp = { get = \"{{ base_url }}/json\", insecure = true }\nexpect.status = 200\n\n[[steps]]\nid = \"strict\"\nhttp = { get = \"{{ base_url }}/json\" }\nexpect.status = 200\n",
    );
    write(
        &tmp.path().join("specs/plain.toml"),
        "id = \"PLAIN\"\n\n[[steps]]\nid = \"plain\"\nhttp = { get = \"{{ base_url }}/json\" }\n",
    );
    let base_url = format!("base_url=http://{}", server.addr);
    let warning = "warning: TLS certificates were not verified (`insecure = true`) in 1 step: `loose` of INSECURE\n";

    let run = planrun(
        tmp.path(),
        &[
            "run",
            "specs",
            "--var",
            &base_url,
            "--report",
            "json=report.json",
        ],
        &[],
    )
    .code(0);
    let stderr = run.stderr();
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("report.json")).expect("the report"),
    )
    .expect("json");
    let steps = &report["specs"][0]["info"]["steps"];
    assert_eq!(steps[0]["id"], "loose");
    assert_eq!(steps[0]["insecure"], true, "{report}");
    assert_eq!(steps[1]["id"], "strict");
    assert!(steps[1].get("insecure").is_none(), "{report}");

    // a run without such a step says nothing of it
    let run = planrun(
        tmp.path(),
        &["run", "specs/plain.toml", "--var", &base_url],
        &[],
    )
    .code(0);
    assert!(!run.stderr().contains("warning: TLS"), "{}", run.stderr());

    let run = planrun(
        tmp.path(),
        &["run", "--untrusted", "specs", "--var", &base_url],
        &[],
    )
    .code(2);
    let stderr = run.stderr();
    assert!(stderr.contains("[specs/insecure.toml:5:50]"), "{stderr}");
    assert_says(
        &stderr,
        "`insecure = true` turns off TLS certificate verification, which `--untrusted` does not allow",
    );
    assert_says(&stderr, "pass `--allow insecure`");

    let run = planrun(
        tmp.path(),
        &[
            "run",
            "--untrusted",
            "--allow",
            "insecure",
            "specs",
            "--var",
            &base_url,
        ],
        &[],
    )
    .code(0);
    assert_eq!(run.stderr().matches(warning).count(), 1, "{}", run.stderr());
}

/// A directory's `planrun.toml`, and the setup and teardown it names, are
/// under the same policy as its specs; one above the spec tree is not read.
#[test]
fn planrun_toml_and_its_setup_are_under_the_same_policy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(
        &dir.join("specs/planrun.toml"),
        "setup = \"_setup.toml\"\nteardown = \"../_teardown.toml\"\nvars.token = { env = \"API_TOKEN\" }\n",
    );
    write(
        &dir.join("specs/_setup.toml"),
        "[[steps]]\nid = \"seed\"\nexec = { cmd = [\"true\"] }\n",
    );
    write(&dir.join("_teardown.toml"), "[[steps]]\nwait = \"1ms\"\n");
    write(
        &dir.join("specs/sub/a.toml"),
        "[[steps]]\nhttp = { get = \"http://127.0.0.1:9/{{ token }}\" }\n",
    );
    write(
        &dir.join("specs/sub/b.toml"),
        "[[steps]]\nhttp = { get = \"http://127.0.0.1:9/{{ token }}\" }\n",
    );
    let run = planrun(dir, &["validate", "--untrusted", "specs"], &[]).code(2);
    let stderr = run.stderr();
    assert!(stderr.contains("[specs/planrun.toml:3:22]"), "{stderr}");
    assert_says(
        &stderr,
        "variable `token` reads the environment variable `API_TOKEN`",
    );
    assert!(stderr.contains("[specs/planrun.toml:2:12]"), "{stderr}");
    assert_says(
        &stderr,
        "the teardown `../_teardown.toml` is outside the spec tree",
    );
    assert!(stderr.contains("[specs/_setup.toml:3:1]"), "{stderr}");
    assert_says(&stderr, "an `exec` step starts processes on this machine");
    // the `planrun.toml`'s problems once, however many specs it applies to
    assert_eq!(
        stderr.matches("planrun::not-allowed").count(),
        3,
        "{stderr}"
    );
    assert!(
        stderr.ends_with("error: 3 problems in 2 files; nothing ran\n"),
        "{stderr}"
    );

    // below it, the `planrun.toml` is outside the tree: not read
    let run = planrun(dir, &["validate", "--untrusted", "specs/sub"], &[]).code(2);
    let stderr = run.stderr();
    assert_says(
        &stderr,
        "`specs/planrun.toml` applies to the specs in `specs/sub`, but it is outside the spec tree",
    );
    assert_says(
        &stderr,
        "run planrun on `specs`, or pass `--allow-read specs/planrun.toml`",
    );
    assert_eq!(
        stderr.matches("planrun::not-allowed").count(),
        1,
        "{stderr}"
    );

    let run = planrun(
        dir,
        &[
            "validate",
            "--untrusted",
            "specs",
            "--allow",
            "exec",
            "--allow-env",
            "API_TOKEN",
            "--allow-read",
            "_teardown.toml",
        ],
        &[],
    )
    .code(0);
    assert_eq!(run.stdout(), "4 specs valid (4 steps)\n");
}

/// A directory walk that meets a link out of the tree does not read it.
#[cfg(unix)]
#[test]
fn a_link_out_of_the_tree_is_not_read() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    write(&dir.join("elsewhere.toml"), "[[steps]]\nwait = \"1ms\"\n");
    write(&dir.join("specs/a.toml"), "[[steps]]\nwait = \"1ms\"\n");
    std::os::unix::fs::symlink(dir.join("elsewhere.toml"), dir.join("specs/b.toml")).expect("link");
    let run = planrun(dir, &["validate", "--untrusted", "specs"], &[]).code(2);
    assert_says(
        &run.stderr(),
        "`specs/b.toml` leads outside the spec tree, to `elsewhere.toml`",
    );
    planrun(dir, &["validate", "specs"], &[]).code(0);
}

/// An `sql` step that talks to a server written out is allowed; one that
/// may open a file here (an `sqlite:` URL, or a URL a template makes,
/// which could be one) needs `--allow sql`: SQLite creates files, and
/// `ATTACH` in the SQL text can name any.
#[test]
fn sql_steps_that_may_open_local_files_need_an_allowance() {
    let dir = tempfile::tempdir().expect("tmp");
    let spec = dir.path().join("db.toml");
    write(
        &spec,
        "id = \"DB\"\nvars.db = \"sqlite::memory:\"\n\n\
         [[steps]]\nid = \"server\"\nsql = { url = \"postgres://qa@127.0.0.1:1/app\", query = \"SELECT 1\" }\n\n\
         [[steps]]\nid = \"file\"\nneeds = []\nsql = { url = \"sqlite:app.db?mode=rwc\", query = \"SELECT 1\" }\n\n\
         [[steps]]\nid = \"template\"\nneeds = []\nsql = { url = \"{{ db }}\", query = \"SELECT 1 AS one\" }\nexpect.\"rows[0].one\" = 1\n",
    );
    let out = planrun(dir.path(), &["validate", "--untrusted", "db.toml"], &[]).code(2);
    let stderr = out.stderr();
    assert_eq!(
        stderr.matches("planrun::not-allowed").count(),
        2,
        "the server's step is allowed, the other two are not:\n{stderr}"
    );
    assert_says(
        &stderr,
        "an `sql` step may open and create files on this machine (an `sqlite:` URL, or a URL from a template), which `--untrusted` does not allow",
    );
    assert_says(&stderr, "pass `--allow sql`");
    planrun(
        dir.path(),
        &["validate", "--untrusted", "--allow", "sql", "db.toml"],
        &[],
    )
    .code(0);
}

/// A `docker` step is refused unless allowed, and its build context and
/// mounts must lie in the spec tree even then.
#[test]
fn docker_steps_are_refused_unless_allowed_and_read_only_the_spec_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("image")).expect("mkdir");
    write(
        &dir.path().join("docker.toml"),
        "[[steps]]\ndocker = { build = { context = \"image\", tag = \"x:1\" } }\n\n[[steps]]\ndocker = { run = { image = \"x:1\", mounts = { \"/data\" = \"./image:ro\", \"/host\" = \"/etc\" } } }\n",
    );
    let run = planrun(dir.path(), &["validate", "--untrusted", "docker.toml"], &[]).code(2);
    let stderr = run.stderr();
    assert_says(
        &stderr,
        "a `docker` step talks to the Docker engine, which starts containers and reads files on this machine, which `--untrusted` does not allow",
    );
    assert_says(&stderr, "pass `--allow docker`");
    assert_says(
        &stderr,
        "`run.mounts./host` names `/etc`, which is outside the spec tree",
    );
    assert_eq!(
        stderr.matches("planrun::not-allowed").count(),
        3,
        "{stderr}"
    );
    let run = planrun(
        dir.path(),
        &[
            "validate",
            "--untrusted",
            "--allow",
            "docker",
            "docker.toml",
        ],
        &[],
    )
    .code(2);
    assert_eq!(run.stderr().matches("planrun::not-allowed").count(), 1);
    planrun(
        dir.path(),
        &[
            "validate",
            "--untrusted",
            "--allow",
            "docker",
            "--allow-read",
            "/etc",
            "docker.toml",
        ],
        &[],
    )
    .code(0);
}
