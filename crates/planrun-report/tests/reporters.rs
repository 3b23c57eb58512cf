//! Reporter output from canned events: snapshots of the terminal view (no
//! colour), JUnit XML and Markdown, and checks that the machine-readable
//! outputs read back with the right counts, interrupted runs included.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use planrun_report::{
    FileFormat, FileReports, JsonReporter, JunitReporter, MarkdownReporter, Reporter,
    TerminalOptions, TerminalReporter, redact_for_snapshot, render_failure,
};
use planrun_runner::events::{
    Evidence, ExpectationOutcome, RunEvent, RunSummary, SpecInfo, SpecReport, SpecStatus,
    StepCounts, StepFailure, StepInfo, StepReport, StepStatus, StepTally,
};
use planrun_runner::executor::StepErrorKind;
use planrun_spec::model::{Priority, StepKind};
use planrun_spec::source::{Format, SourceFile};
use serde_json::json;

const LOGIN_TOML: &str = r#"id = "TC-001"
name = "Login works"
priority = "high"

[[steps]]
id = "login"
http = { post = "{{ base_url }}/api/auth/login/", json = { username = "qa", password = "{{ env.QA_PASSWORD }}" } }
expect.status = 200
capture.token = "json.$.token"

[[steps]]
id = "me"
http = { get = "{{ base_url }}/api/me/" }
expect.status = 200
"#;

const HEALTH_TOML: &str = r#"id = "TC-003"
name = "WSGI health check"
priority = "high"
tags = ["wsgi", "health"]

[[steps]]
id = "login"
http = { post = "{{ base_url }}/api/auth/login/" }
expect.status = 200

[[steps]]
id = "health"
http = { get = "{{ base_url }}/health/" }
retry = { attempts = 2 }
expect.status = 200
should.json."$.checks" = { database = "ok", cache = "ok" }

[[steps]]
id = "db"
exec = { cmd = ["pg_isready", "-d", "{{ env.DATABASE_URL }}"] }

[[steps]]
id = "cleanup"
exec = { run = "rm -rf tmp/" }
"#;

const MIGRATE_TOML: &str = r#"id = "TC-007"
name = "Migrations apply"

[[steps]]
id = "check"
exec = { shell = "./manage.py check" }
expect.exit_code = 0

[[steps]]
id = "migrate"
exec = { shell = "./manage.py migrate --noinput" }
expect.exit_code = 0

[[steps]]
id = "schema"
needs = []
http = { get = "{{ base_url }}/api/schema/" }
expect.status = 200
"#;

/// The byte range of the `nth` (0-based) occurrence of `needle`.
fn span_of(text: &str, needle: &str, nth: usize) -> std::ops::Range<usize> {
    let start = text
        .match_indices(needle)
        .nth(nth)
        .map(|(i, _)| i)
        .expect("the fixture contains the needle");
    start..start + needle.len()
}

fn step_info(id: &str, kind: StepKind) -> StepInfo {
    StepInfo {
        id: id.to_owned(),
        name: None,
        kind,
        always: false,
        insecure: false,
        source: None,
    }
}

fn spec_info(
    index: usize,
    id: &str,
    name: &str,
    path: &str,
    text: &str,
    steps: Vec<StepInfo>,
) -> SpecInfo {
    SpecInfo {
        index,
        id: id.to_owned(),
        name: Some(name.to_owned()),
        objective: None,
        path: PathBuf::from(path),
        source: Arc::new(SourceFile::new(path, text, Format::Toml)),
        priority: Priority::High,
        tags: Vec::new(),
        phase: None,
        steps,
    }
}

fn step(
    index: usize,
    id: &str,
    kind: StepKind,
    status: StepStatus,
    started_ms: u64,
    ms: u64,
) -> StepReport {
    StepReport {
        index,
        id: id.to_owned(),
        name: None,
        kind,
        status,
        attempts: u32::from(!matches!(
            status,
            StepStatus::Skipped | StepStatus::Cancelled
        )),
        started: Duration::from_millis(started_ms),
        duration: Duration::from_millis(ms),
        expectations: Vec::new(),
        error: None,
        evidence: Vec::new(),
        skip_reason: None,
        result: None,
        captures: Vec::new(),
        always: false,
        iterations: None,
    }
}

fn passed_status(span: std::ops::Range<usize>) -> ExpectationOutcome {
    ExpectationOutcome {
        target: "status".to_owned(),
        span,
        blocking: true,
        passed: true,
        message: "status is `200`".to_owned(),
        expected: "200".to_owned(),
        actual: Some(json!(200)),
        diff: None,
    }
}

fn specs() -> Vec<SpecInfo> {
    let mut login = spec_info(
        0,
        "TC-001",
        "Login works",
        "specs/tc-001.toml",
        LOGIN_TOML,
        vec![
            step_info("login", StepKind::Http),
            step_info("me", StepKind::Http),
        ],
    );
    login.tags = vec!["auth".to_owned()];
    let mut health = spec_info(
        1,
        "TC-003",
        "WSGI health check",
        "specs/tc-003.toml",
        HEALTH_TOML,
        vec![
            step_info("login", StepKind::Http),
            step_info("health", StepKind::Http),
            step_info("db", StepKind::Exec),
            step_info("cleanup", StepKind::Exec),
        ],
    );
    health.tags = vec!["wsgi".to_owned(), "health".to_owned()];
    health.phase = Some("phase-1".to_owned());
    vec![login, health]
}

fn login_steps() -> Vec<Arc<StepReport>> {
    let mut login = step(0, "login", StepKind::Http, StepStatus::Passed, 0, 45);
    login.expectations = vec![passed_status(span_of(LOGIN_TOML, "expect.status = 200", 0))];
    login.result = Some(json!({
        "status": 200,
        "headers": { "content-type": "application/json" },
        "json": { "token": "***" },
        "duration": 45.1,
    }));
    login.captures = vec![("token".to_owned(), json!("***"))];
    let mut me = step(1, "me", StepKind::Http, StepStatus::Passed, 45, 12);
    me.expectations = vec![passed_status(span_of(LOGIN_TOML, "expect.status = 200", 1))];
    vec![Arc::new(login), Arc::new(me)]
}

fn health_steps() -> Vec<Arc<StepReport>> {
    let mut login = step(0, "login", StepKind::Http, StepStatus::Passed, 0, 31);
    login.expectations = vec![passed_status(span_of(
        HEALTH_TOML,
        "expect.status = 200",
        0,
    ))];

    let mut health = step(1, "health", StepKind::Http, StepStatus::Failed, 31, 1234);
    health.attempts = 2;
    health.expectations = vec![
        ExpectationOutcome {
            target: "status".to_owned(),
            span: span_of(HEALTH_TOML, "expect.status = 200", 1),
            blocking: true,
            passed: false,
            message: "expected status `200`, got `503`".to_owned(),
            expected: "200".to_owned(),
            actual: Some(json!(503)),
            diff: None,
        },
        ExpectationOutcome {
            target: "json $.checks".to_owned(),
            span: span_of(
                HEALTH_TOML,
                r#"should.json."$.checks" = { database = "ok", cache = "ok" }"#,
                0,
            ),
            blocking: false,
            passed: false,
            message: "`$.checks` differs from the expected value".to_owned(),
            expected: "{\n  \"database\": \"ok\",\n  \"cache\": \"ok\"\n}".to_owned(),
            actual: Some(json!({ "database": "ok", "cache": "down" })),
            diff: Some("$.cache: expected \"ok\", got \"down\"".to_owned()),
        },
    ];
    health.result = Some(json!({
        "status": 503,
        "headers": { "content-type": "application/json", "retry-after": "5" },
        "body": "{\"checks\":{\"database\":\"ok\",\"cache\":\"down\"}}",
        "json": { "checks": { "database": "ok", "cache": "down" } },
        "duration": 34.2,
        "timings": { "ttfb": 30.1, "total": 34.2 },
    }));
    health.evidence = vec![Evidence {
        field: "body".to_owned(),
        shown: None,
        text: "{\"checks\":{\"database\":\"ok\",\"cache\":\"down\"}}".to_owned(),
    }];

    let mut db = step(2, "db", StepKind::Exec, StepStatus::Errored, 1265, 3);
    db.error = Some(StepFailure {
        kind: StepErrorKind::Executor,
        message: "cannot run `pg_isready`: no such file or directory".to_owned(),
        span: Some(span_of(
            HEALTH_TOML,
            r#"{ cmd = ["pg_isready", "-d", "{{ env.DATABASE_URL }}"] }"#,
            0,
        )),
        help: Some("install PostgreSQL's client tools, or put `pg_isready` on the PATH".to_owned()),
    });

    let mut cleanup = step(3, "cleanup", StepKind::Exec, StepStatus::Skipped, 1268, 0);
    cleanup.skip_reason = Some("needs `db`, which errored".to_owned());
    vec![
        Arc::new(login),
        Arc::new(health),
        Arc::new(db),
        Arc::new(cleanup),
    ]
}

/// How `steps` ended, counted as the runner does.
fn counts(steps: &[Arc<StepReport>]) -> StepCounts {
    let mut tally = StepTally::default();
    for step in steps {
        tally.record(step);
    }
    tally.counts()
}

/// A whole run: TC-001 passes, TC-003 fails (a failed expectation after a
/// retry, a warning, an errored step, a skipped step).
fn run_events() -> Vec<RunEvent> {
    let login = login_steps();
    let health = health_steps();
    let mut events = vec![RunEvent::RunStarted {
        specs: specs().into(),
    }];

    events.push(RunEvent::SpecStarted { spec: 0 });
    for (i, report) in login.iter().enumerate() {
        events.push(RunEvent::StepStarted {
            spec: 0,
            step: i,
            attempt: 1,
        });
        events.push(RunEvent::StepFinished {
            spec: 0,
            report: report.clone(),
            result: None,
        });
    }
    events.push(RunEvent::SpecFinished {
        spec: 0,
        report: SpecReport {
            index: 0,
            id: "TC-001".to_owned(),
            status: SpecStatus::Passed,
            duration: Duration::from_millis(57),
            counts: counts(&login),
            error: None,
        },
    });

    events.push(RunEvent::SpecStarted { spec: 1 });
    for (i, report) in health.iter().enumerate() {
        if report.status == StepStatus::Skipped {
            events.push(RunEvent::StepFinished {
                spec: 1,
                report: report.clone(),
                result: None,
            });
            continue;
        }
        events.push(RunEvent::StepStarted {
            spec: 1,
            step: i,
            attempt: 1,
        });
        if report.id == "health" {
            events.push(RunEvent::StepRetrying {
                spec: 1,
                step: i,
                attempt: 1,
                reason: "expected status `200`, got `503`".to_owned(),
                delay: Duration::from_millis(500),
            });
            events.push(RunEvent::StepStarted {
                spec: 1,
                step: i,
                attempt: 2,
            });
        }
        events.push(RunEvent::StepFinished {
            spec: 1,
            report: report.clone(),
            result: None,
        });
    }
    events.push(RunEvent::SpecFinished {
        spec: 1,
        report: SpecReport {
            index: 1,
            id: "TC-003".to_owned(),
            status: SpecStatus::Failed,
            duration: Duration::from_millis(1268),
            counts: counts(&health),
            error: None,
        },
    });

    events.push(RunEvent::RunFinished {
        report: RunSummary {
            passed: 1,
            failed: 1,
            cancelled: 0,
            warnings: 1,
            internal_errors: 0,
            duration: Duration::from_millis(1330),
            interrupted: false,
        },
    });
    events
}

/// A writer the test can read afterwards.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .expect("the buffer lock is not poisoned")
            .clone();
        String::from_utf8(bytes).expect("reporters write UTF-8")
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("the buffer lock is not poisoned")
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn feed(reporter: &mut dyn Reporter, events: &[RunEvent]) {
    for event in events {
        reporter.on_event(event).expect("reporting succeeds");
    }
    reporter.finish().expect("finishing succeeds");
}

fn terminal(events: &[RunEvent], opts: TerminalOptions) -> String {
    let buffer = Buffer::default();
    let mut reporter = TerminalReporter::new(Box::new(buffer.clone()), opts);
    feed(&mut reporter, events);
    buffer.text()
}

fn plain(verbose: bool) -> TerminalOptions {
    TerminalOptions {
        color: false,
        verbose,
        width: 100,
        live: false,
    }
}

fn junit(events: &[RunEvent]) -> String {
    let buffer = Buffer::default();
    let mut reporter = JunitReporter::with_writer(Box::new(buffer.clone()));
    feed(&mut reporter, events);
    buffer.text()
}

#[test]
fn terminal_default() {
    let out = terminal(&run_events(), plain(false));
    insta::assert_snapshot!(redact_for_snapshot(&out));
}

#[test]
fn terminal_verbose() {
    let out = terminal(&run_events(), plain(true));
    insta::assert_snapshot!(redact_for_snapshot(&out));
}

#[test]
fn terminal_colour_is_optional() {
    let plain_out = terminal(&run_events(), plain(false));
    assert!(
        !plain_out.contains('\u{1b}'),
        "no escape codes without colour"
    );
    let coloured = terminal(
        &run_events(),
        TerminalOptions {
            color: true,
            ..plain(false)
        },
    );
    assert!(coloured.contains("\u{1b}[31m✗\u{1b}[0m"), "{coloured}");
}

#[test]
fn terminal_live_line_is_cleared() {
    let out = terminal(
        &run_events(),
        TerminalOptions {
            live: true,
            ..plain(false)
        },
    );
    assert!(
        out.contains("running TC-003 › health (step 2/4, attempt 2)"),
        "{out}"
    );
    // Once the live text is removed, what is left is the plain output.
    let mut cleaned = String::new();
    for piece in out.split("\r\u{1b}[2K") {
        // A live line is whatever follows a clear up to the next clear
        // without a newline; written output always ends in one.
        if let Some(end) = piece.rfind('\n') {
            cleaned.push_str(&piece[..=end]);
        }
    }
    assert_eq!(cleaned, terminal(&run_events(), plain(false)));
}

#[test]
fn terminal_live_line_counts_stream_events() {
    let mut events = run_events();
    let at = events
        .iter()
        .position(|e| {
            matches!(
                e,
                RunEvent::StepStarted {
                    spec: 0,
                    step: 0,
                    ..
                }
            )
        })
        .expect("a step starts");
    events.insert(
        at + 1,
        RunEvent::StepObserved {
            spec: 0,
            step: 0,
            observation: serde_json::json!({"event": 0, "type": "message", "offset": 3.5}),
        },
    );
    let out = terminal(
        &events,
        TerminalOptions {
            live: true,
            ..plain(false)
        },
    );
    assert!(out.contains(", 1 event)"), "{out}");
    // without a live line, observations change nothing
    assert_eq!(
        terminal(&events, plain(false)),
        terminal(&run_events(), plain(false))
    );
}

#[test]
fn terminal_never_interleaves_concurrent_specs() {
    let login = login_steps();
    let health = health_steps();
    let events = vec![
        RunEvent::RunStarted {
            specs: specs().into(),
        },
        RunEvent::SpecStarted { spec: 0 },
        RunEvent::SpecStarted { spec: 1 },
        RunEvent::StepFinished {
            spec: 1,
            report: health[0].clone(),
            result: None,
        },
        RunEvent::StepFinished {
            spec: 0,
            report: login[0].clone(),
            result: None,
        },
        RunEvent::StepFinished {
            spec: 1,
            report: health[1].clone(),
            result: None,
        },
        RunEvent::StepFinished {
            spec: 0,
            report: login[1].clone(),
            result: None,
        },
        RunEvent::SpecFinished {
            spec: 0,
            report: SpecReport {
                index: 0,
                id: "TC-001".to_owned(),
                status: SpecStatus::Passed,
                duration: Duration::from_millis(57),
                counts: counts(&login),
                error: None,
            },
        },
        RunEvent::RunFinished {
            report: RunSummary {
                interrupted: true,
                passed: 1,
                cancelled: 1,
                ..RunSummary::default()
            },
        },
    ];
    let out = terminal(&events, plain(true));
    let tc1_end = out.find("✓ TC-001 passed").expect("TC-001 has a footer");
    let tc3_start = out.find("▶ TC-003").expect("TC-003 has a header");
    assert!(tc1_end < tc3_start, "TC-003 waits for TC-001:\n{out}");
    assert!(out.contains("- TC-003 cancelled"), "{out}");
    insta::assert_snapshot!(redact_for_snapshot(&out));
}

#[test]
fn junit_report() {
    let xml = junit(&run_events());
    insta::assert_snapshot!(redact_for_snapshot(&xml));

    let report = quick_junit::Report::deserialize_from_str(&xml).expect("the JUnit file parses");
    assert_eq!(report.tests, 6);
    assert_eq!(report.failures, 1);
    assert_eq!(report.errors, 1);
    assert_eq!(report.skipped, 1);
    let suites: Vec<&str> = report.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(suites, ["TC-001 Login works", "TC-003 WSGI health check"]);
    let health = &report.test_suites[1];
    assert_eq!(
        (health.tests, health.failures, health.errors, health.skipped),
        (4, 1, 1, 1)
    );
}

#[test]
fn junit_survives_an_interrupted_run() {
    // TC-003 stops after its first step: no SpecFinished, no RunFinished.
    let mut events = run_events();
    let cut = events
        .iter()
        .position(
            |e| matches!(e, RunEvent::StepFinished { spec: 1, report, .. } if report.index == 0),
        )
        .expect("TC-003 has a first step");
    events.truncate(cut + 1);

    let xml = junit(&events);
    let report = quick_junit::Report::deserialize_from_str(&xml).expect("the JUnit file parses");
    assert_eq!(report.tests, 6);
    assert_eq!((report.failures, report.errors, report.skipped), (0, 0, 3));
    assert!(xml.contains("cancelled: the run was interrupted"), "{xml}");

    // The terminal reporter also says what became of the unfinished spec.
    let out = terminal(
        &[
            events,
            vec![RunEvent::RunFinished {
                report: RunSummary {
                    passed: 1,
                    cancelled: 1,
                    interrupted: true,
                    ..RunSummary::default()
                },
            }],
        ]
        .concat(),
        plain(false),
    );
    assert!(
        out.contains("- TC-003 cancelled  4 steps: 1 passed"),
        "{out}"
    );
    assert!(out.contains("(interrupted)"), "{out}");
}

#[test]
fn markdown_summary() {
    let buffer = Buffer::default();
    let mut reporter = MarkdownReporter::with_writer(Box::new(buffer.clone()));
    feed(&mut reporter, &run_events());
    insta::assert_snapshot!(redact_for_snapshot(&buffer.text()));
}

#[test]
fn json_document() {
    let buffer = Buffer::default();
    let mut reporter = JsonReporter::with_writer(Box::new(buffer.clone()));
    feed(&mut reporter, &run_events());
    let doc: serde_json::Value =
        serde_json::from_str(&buffer.text()).expect("the JSON report parses");
    assert_eq!(doc["version"], 1);
    assert!(doc["started_at"].is_string());
    assert_eq!(doc["summary"]["failed"], 1);
    assert_eq!(doc["summary"]["warnings"], 1);
    let specs = doc["specs"].as_array().expect("specs is an array");
    assert_eq!(specs.len(), 2);
    assert_eq!(specs[1]["info"]["id"], "TC-003");
    assert_eq!(specs[1]["info"]["path"], "specs/tc-003.toml");
    assert_eq!(specs[1]["finished"], true);
    assert_eq!(specs[1]["report"]["status"], "failed");
    assert_eq!(specs[1]["report"]["steps"][1]["status"], "failed");
    assert_eq!(
        specs[1]["report"]["steps"][1]["expectations"][0]["actual"],
        503
    );
    // spans say where they are in the spec's text, not only in bytes
    let span = &specs[1]["report"]["steps"][1]["expectations"][0]["span"];
    let start = span_of(HEALTH_TOML, "expect.status = 200", 1).start;
    assert_eq!(span["start"], start);
    assert_eq!(
        (
            &span["line"],
            &span["column"],
            &span["end_line"],
            &span["end_column"]
        ),
        (&json!(15), &json!(1), &json!(15), &json!(20)),
        "{span}"
    );
    let span = &specs[1]["report"]["steps"][2]["error"]["span"];
    assert_eq!(
        (&span["line"], &span["column"]),
        (&json!(20), &json!(8)),
        "{span}"
    );
    assert_eq!(
        specs[1]["retries"][0]["reason"],
        "expected status `200`, got `503`"
    );
    assert_eq!(specs[1]["retries"][0]["delay"], 500.0);
}

#[test]
fn file_reporters_write_their_files() {
    let dir = std::env::temp_dir().join(format!("planrun-report-test-{}", std::process::id()));
    let junit_path = dir.join("nested/junit.xml");
    let summary_path = dir.join("summary.md");
    let mut reporters: Vec<Box<dyn Reporter>> = vec![
        Box::new(JunitReporter::new(&junit_path)),
        Box::new(MarkdownReporter::appending(&summary_path)),
        Box::new(JsonReporter::new(dir.join("run.json"))),
    ];
    std::fs::create_dir_all(&dir).expect("the temp dir can be created");
    std::fs::write(&summary_path, "earlier content\n").expect("the summary can be seeded");
    feed(&mut reporters, &run_events());
    let xml = std::fs::read_to_string(&junit_path).expect("the JUnit file exists");
    assert!(xml.starts_with("<?xml"), "{xml}");
    let md = std::fs::read_to_string(&summary_path).expect("the summary exists");
    assert!(md.starts_with("earlier content\n## ❌ planrun"), "{md}");
    assert!(dir.join("run.json").exists());
    std::fs::remove_dir_all(&dir).expect("the temp dir can be removed");
}

#[test]
fn failure_snippet() {
    let source = SourceFile::new("specs/tc-003.toml", HEALTH_TOML, Format::Toml);
    let out = render_failure(
        &source,
        Some(span_of(HEALTH_TOML, "expect.status = 200", 1)),
        "expected status `200`, got `503`",
        Some("got 503"),
        Some("the server answered, but not with 200"),
    );
    insta::assert_snapshot!(out);
}

#[test]
fn terminal_shows_warnings_and_quiets_specs_that_never_ran() {
    // TC-003's health step only warns here, so the spec passes; TC-001 is
    // cancelled before it starts.
    let mut health = health_steps();
    health.truncate(2);
    Arc::make_mut(&mut health[1]).status = StepStatus::Warned;
    Arc::make_mut(&mut health[1]).expectations.remove(0);
    let mut events = vec![
        RunEvent::RunStarted {
            specs: specs().into(),
        },
        RunEvent::SpecStarted { spec: 1 },
    ];
    events.extend(health.iter().map(|report| RunEvent::StepFinished {
        spec: 1,
        report: report.clone(),
        result: None,
    }));
    events.push(RunEvent::SpecFinished {
        spec: 1,
        report: SpecReport {
            index: 1,
            id: "TC-003".to_owned(),
            status: SpecStatus::Passed,
            duration: Duration::from_millis(40),
            counts: counts(&health),
            error: None,
        },
    });
    let cancelled: Vec<Arc<StepReport>> = login_steps()
        .into_iter()
        .map(|s| {
            let mut s = StepReport::clone(&s);
            s.status = StepStatus::Cancelled;
            Arc::new(s)
        })
        .collect();
    events.extend(cancelled.iter().map(|report| RunEvent::StepFinished {
        spec: 0,
        report: report.clone(),
        result: None,
    }));
    events.extend([
        RunEvent::SpecFinished {
            spec: 0,
            report: SpecReport {
                index: 0,
                id: "TC-001".to_owned(),
                status: SpecStatus::Cancelled,
                duration: Duration::ZERO,
                counts: counts(&cancelled),
                error: None,
            },
        },
        RunEvent::RunFinished {
            report: RunSummary {
                passed: 1,
                cancelled: 1,
                warnings: 1,
                internal_errors: 0,
                interrupted: true,
                ..RunSummary::default()
            },
        },
    ]);
    let out = redact_for_snapshot(&terminal(&events, plain(false)));
    assert!(out.contains("  ! health   http  [duration]"), "{out}");
    assert!(
        out.contains("    ! `$.checks` differs from the expected value"),
        "{out}"
    );
    assert!(
        out.contains("✓ TC-003 passed  2 steps: 1 passed, 1 warned"),
        "{out}"
    );
    assert!(
        out.contains("- TC-001 Login works (specs/tc-001.toml)  cancelled\n"),
        "{out}"
    );
    assert!(!out.contains("▶ TC-001"), "{out}");
}

#[test]
fn reporters_say_when_planrun_itself_failed() {
    let ordinary = terminal(&run_events(), plain(false));
    assert!(!ordinary.contains("planrun error"), "{ordinary}");
    let events: Vec<RunEvent> = run_events()
        .into_iter()
        .map(|mut event| {
            let reports: Vec<&mut Arc<StepReport>> = match &mut event {
                RunEvent::StepFinished { report, .. } => vec![report],
                _ => Vec::new(),
            };
            for report in reports {
                if let Some(error) = &mut Arc::make_mut(report).error {
                    error.kind = StepErrorKind::Internal;
                }
            }
            event
        })
        .collect();
    let shown = "planrun error: cannot run `pg_isready`";
    let out = terminal(&events, plain(false));
    assert!(out.contains(shown), "{out}");
    let out = junit(&events);
    assert!(out.contains(shown), "{out}");
}

/// A run of TC-007: a passing exec, an exec that fails with a traceback on
/// stderr (cut to its last lines), an HTTP step that gets a 500 page.
fn evidence_events() -> Vec<RunEvent> {
    let info = spec_info(
        0,
        "TC-007",
        "Migrations apply",
        "specs/tc-007.toml",
        MIGRATE_TOML,
        vec![
            step_info("check", StepKind::Exec),
            step_info("migrate", StepKind::Exec),
            step_info("schema", StepKind::Http),
        ],
    );
    let exit_code = |nth: usize, actual: i64| ExpectationOutcome {
        target: "exit_code".to_owned(),
        span: span_of(MIGRATE_TOML, "expect.exit_code = 0", nth),
        blocking: true,
        passed: actual == 0,
        message: if actual == 0 {
            "exit_code is `0`".to_owned()
        } else {
            format!("exit_code: expected `0`, got `{actual}`")
        },
        expected: "0".to_owned(),
        actual: (actual != 0).then(|| json!(actual)),
        diff: None,
    };
    let mut check = step(0, "check", StepKind::Exec, StepStatus::Passed, 0, 310);
    check.expectations = vec![exit_code(0, 0)];
    check.result = Some(json!({
        "exit_code": 0,
        "stdout": "System check identified no issues (0 silenced).\n",
        "stderr": "",
    }));

    let mut migrate = step(1, "migrate", StepKind::Exec, StepStatus::Failed, 310, 820);
    migrate.expectations = vec![exit_code(1, 1)];
    migrate.evidence = vec![
        Evidence {
            field: "stderr".to_owned(),
            shown: Some("last 10 lines".to_owned()),
            text: [
                "… 14 earlier lines",
                "  File \"django/db/backends/base/base.py\", line 256, in ensure_connection",
                "    self.connect()",
                "  File \"django/db/backends/base/base.py\", line 237, in connect",
                "    self.connection = self.get_new_connection(conn_params)",
                "  File \"django/db/backends/postgresql/base.py\", line 332, in get_new_connection",
                "    connection = self.Database.connect(**conn_params)",
                "  File \"psycopg/connection.py\", line 119, in connect",
                "    raise last_ex.with_traceback(None)",
                "django.db.utils.OperationalError: connection to server at \"db\", port 5432 failed",
                "    Is the server running on that host and accepting TCP/IP connections?",
            ]
            .join("\n"),
        },
        Evidence {
            field: "stdout".to_owned(),
            shown: None,
            text: "Operations to perform:\n  Apply all migrations: admin, auth, chat".to_owned(),
        },
    ];

    let mut schema = step(2, "schema", StepKind::Http, StepStatus::Failed, 0, 25);
    schema.expectations = vec![ExpectationOutcome {
        target: "status".to_owned(),
        span: span_of(MIGRATE_TOML, "expect.status = 200", 0),
        blocking: true,
        passed: false,
        message: "status: expected `200`, got `500`".to_owned(),
        expected: "200".to_owned(),
        actual: Some(json!(500)),
        diff: None,
    }];
    schema.evidence = vec![Evidence {
        field: "body".to_owned(),
        shown: Some("first 20 lines".to_owned()),
        text: (1..=20)
            .map(|i| format!("<p>line {i} of the error page</p>"))
            .chain(["… 42 more lines".to_owned()])
            .collect::<Vec<_>>()
            .join("\n"),
    }];

    let steps = vec![Arc::new(check), Arc::new(migrate), Arc::new(schema)];
    let mut events = vec![
        RunEvent::RunStarted {
            specs: vec![info].into(),
        },
        RunEvent::SpecStarted { spec: 0 },
    ];
    events.extend(steps.iter().map(|report| RunEvent::StepFinished {
        spec: 0,
        report: report.clone(),
        result: None,
    }));
    events.push(RunEvent::SpecFinished {
        spec: 0,
        report: SpecReport {
            index: 0,
            id: "TC-007".to_owned(),
            status: SpecStatus::Failed,
            duration: Duration::from_millis(1130),
            counts: counts(&steps),
            error: None,
        },
    });
    events.push(RunEvent::RunFinished {
        report: RunSummary {
            failed: 1,
            duration: Duration::from_millis(1140),
            ..RunSummary::default()
        },
    });
    events
}

#[test]
fn terminal_shows_evidence_under_failed_checks() {
    let out = terminal(&evidence_events(), plain(true));
    insta::assert_snapshot!(redact_for_snapshot(&out));
}

#[test]
fn junit_shows_evidence_in_the_failure_text() {
    let xml = junit(&evidence_events());
    insta::assert_snapshot!(redact_for_snapshot(&xml));
}

#[test]
fn markdown_shows_evidence() {
    let buffer = Buffer::default();
    let mut reporter = MarkdownReporter::with_writer(Box::new(buffer.clone()));
    feed(&mut reporter, &evidence_events());
    insta::assert_snapshot!(redact_for_snapshot(&buffer.text()));
}

#[test]
fn json_carries_evidence_of_failed_steps_only() {
    let buffer = Buffer::default();
    let mut reporter = JsonReporter::with_writer(Box::new(buffer.clone()));
    feed(&mut reporter, &evidence_events());
    let doc: serde_json::Value =
        serde_json::from_str(&buffer.text()).expect("the JSON report parses");
    let steps = &doc["specs"][0]["report"]["steps"];
    assert!(steps[0].get("evidence").is_none(), "{}", steps[0]);
    assert_eq!(steps[1]["evidence"][0]["field"], "stderr");
    assert_eq!(steps[1]["evidence"][0]["shown"], "last 10 lines");
    assert!(steps[1]["evidence"][1].get("shown").is_none());
    assert_eq!(steps[2]["evidence"][0]["field"], "body");
}

#[test]
fn counts_agree_with_their_nouns() {
    // TC-003's cleanup errors too: two steps errored
    let errored = |report: &mut Arc<StepReport>| {
        if report.id == "cleanup" {
            let report = Arc::make_mut(report);
            report.status = StepStatus::Errored;
            report.skip_reason = None;
        }
    };
    let events: Vec<RunEvent> = run_events()
        .into_iter()
        .map(|mut event| {
            match &mut event {
                RunEvent::StepFinished { report, .. } => errored(report),
                // cleanup: skipped before, an error now
                RunEvent::SpecFinished { report, .. } if report.id == "TC-003" => {
                    report.counts.skipped -= 1;
                    report.counts.errored += 1;
                }
                _ => {}
            }
            event
        })
        .collect();
    let out = terminal(&events, plain(false));
    assert!(
        out.contains("4 steps: 1 passed, 1 failed, 2 errors  "),
        "{out}"
    );
    assert!(
        out.contains("2 specs: 1 passed, 1 failed, 1 warning in"),
        "{out}"
    );
    let buffer = Buffer::default();
    let mut reporter = MarkdownReporter::with_writer(Box::new(buffer.clone()));
    feed(&mut reporter, &events);
    assert!(
        buffer.text().contains("1 failed, 2 errors"),
        "{}",
        buffer.text()
    );
}

const REPEAT_TOML: &str = r#"id = "TC-REP"
name = "Users log in"

[[steps]]
id = "stream"
sse = { post = "{{ base_url }}/api/messages/stream/", json = { message = "hi" } }
repeat = { count = 10, concurrency = 10 }
expect.status = 200

[[steps]]
id = "login"
http = { post = "{{ base_url }}/api/auth/login/", json = { username = "{{ user }}" } }
repeat = { over = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"], as = "user" }
expect.status = 200
"#;

/// A repeated step that passed and one whose iterations failed: 7 of 8,
/// the first 5 kept.
fn repeat_events() -> Vec<RunEvent> {
    use planrun_runner::events::{IterationFailure, IterationItem, Iterations};
    let info = spec_info(
        0,
        "TC-REP",
        "Users log in",
        "specs/tc-rep.toml",
        REPEAT_TOML,
        vec![
            step_info("stream", StepKind::Sse),
            step_info("login", StepKind::Http),
        ],
    );
    let mut stream = step(0, "stream", StepKind::Sse, StepStatus::Passed, 0, 1200);
    stream.iterations = Some(Iterations {
        count: 10,
        passed: 10,
        failed: 0,
        warned: 0,
        failures: Vec::new(),
        first_warning: None,
    });
    let users = ["bob", "carol", "dave", "erin", "frank"];
    let failures = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let mut report = step(1, "login", StepKind::Http, StepStatus::Failed, 0, 12);
            report.expectations = vec![ExpectationOutcome {
                target: "status".to_owned(),
                span: span_of(REPEAT_TOML, "expect.status = 200", 1),
                blocking: true,
                passed: false,
                message: "status: expected `200`, got `500`".to_owned(),
                expected: "200".to_owned(),
                actual: Some(json!(500)),
                diff: None,
            }];
            report.evidence = vec![Evidence {
                field: "body".to_owned(),
                shown: None,
                text: format!("no such user: {user}"),
            }];
            IterationFailure {
                index: i + 1,
                item: Some(IterationItem {
                    name: "user".to_owned(),
                    value: json!(user),
                }),
                report,
            }
        })
        .collect();
    let mut login = step(1, "login", StepKind::Http, StepStatus::Failed, 1200, 40);
    login.iterations = Some(Iterations {
        count: 8,
        passed: 1,
        failed: 7,
        warned: 0,
        failures,
        first_warning: None,
    });
    let steps = vec![Arc::new(stream), Arc::new(login)];
    let mut events = vec![
        RunEvent::RunStarted {
            specs: vec![info].into(),
        },
        RunEvent::SpecStarted { spec: 0 },
    ];
    events.extend(steps.iter().map(|report| RunEvent::StepFinished {
        spec: 0,
        report: report.clone(),
        result: None,
    }));
    events.push(RunEvent::SpecFinished {
        spec: 0,
        report: SpecReport {
            index: 0,
            id: "TC-REP".to_owned(),
            status: SpecStatus::Failed,
            duration: Duration::from_millis(1240),
            counts: counts(&steps),
            error: None,
        },
    });
    events.push(RunEvent::RunFinished {
        report: RunSummary {
            failed: 1,
            duration: Duration::from_millis(1250),
            ..RunSummary::default()
        },
    });
    events
}

#[test]
fn a_repeated_step_is_reported_by_its_iterations() {
    let events = repeat_events();
    let out = terminal(&events, plain(false));
    let xml = junit(&events);
    let buffer = Buffer::default();
    let mut reporter = MarkdownReporter::with_writer(Box::new(buffer.clone()));
    feed(&mut reporter, &events);
    insta::assert_snapshot!(redact_for_snapshot(&format!(
        "--- terminal\n{out}\n--- junit\n{xml}\n--- markdown\n{}",
        buffer.text()
    )));

    let buffer = Buffer::default();
    let mut reporter = JsonReporter::with_writer(Box::new(buffer.clone()));
    feed(&mut reporter, &events);
    let doc: serde_json::Value =
        serde_json::from_str(&buffer.text()).expect("the JSON report parses");
    let steps = &doc["specs"][0]["report"]["steps"];
    assert_eq!(steps[0]["iterations"]["count"], 10);
    let login = &steps[1]["iterations"];
    assert_eq!(
        (login["passed"].as_u64(), login["failed"].as_u64()),
        (Some(1), Some(7))
    );
    assert_eq!(login["failures"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        login["failures"][0]["item"],
        json!({ "name": "user", "value": "bob" })
    );
    // the iterations' spans are located like the step's own
    assert_eq!(
        login["failures"][0]["report"]["expectations"][0]["span"]["line"],
        14
    );
}

/// File reporters read finished specs back from a spill file: every field
/// of a report, a repeated step's failed iterations and evidence included,
/// comes back as it went.
#[test]
fn spec_reports_read_back_whole() {
    use planrun_runner::events::{IterationFailure, IterationItem, Iterations};
    let mut failed = step(0, "login", StepKind::Http, StepStatus::Failed, 3, 41);
    failed.name = Some(String::from("Log in"));
    failed.attempts = 3;
    failed.expectations = vec![ExpectationOutcome {
        target: String::from("status"),
        span: 10..25,
        blocking: true,
        passed: false,
        message: String::from("expected 200, got 500"),
        expected: String::from("200"),
        actual: Some(json!(500)),
        diff: Some(String::from("-200\n+500")),
    }];
    failed.error = Some(StepFailure {
        kind: StepErrorKind::Executor,
        message: String::from("boom"),
        span: Some(3..9),
        help: Some(String::from("look")),
    });
    failed.evidence = vec![Evidence {
        field: String::from("body"),
        shown: Some(String::from("first 20 lines")),
        text: String::from("<html>ü</html>"),
    }];
    failed.result = Some(json!({ "status": 500, "body": "x", "timings": { "total": 1.5 } }));
    failed.captures = vec![(String::from("token"), json!("***"))];
    let mut repeated = step(1, "each", StepKind::Exec, StepStatus::Failed, 50, 7);
    repeated.iterations = Some(Iterations {
        count: 4,
        passed: 2,
        failed: 1,
        warned: 1,
        failures: vec![IterationFailure {
            index: 2,
            item: Some(IterationItem {
                name: String::from("user"),
                value: json!({ "name": "bob" }),
            }),
            report: failed.clone(),
        }],
        first_warning: None,
    });
    repeated.always = true;
    let steps = vec![Arc::new(failed), Arc::new(repeated)];
    let report = SpecReport {
        index: 0,
        id: String::from("TC-001"),
        status: SpecStatus::Failed,
        duration: Duration::from_micros(123_456),
        counts: counts(&steps),
        error: Some(String::from(
            "the spec did not finish within its time limit of 1s",
        )),
    };
    let info = spec_info(
        0,
        "TC-001",
        "Login works",
        "login.toml",
        LOGIN_TOML,
        vec![
            step_info("login", StepKind::Http),
            step_info("each", StepKind::Exec),
        ],
    );
    let mut events = vec![
        RunEvent::RunStarted {
            specs: vec![info].into(),
        },
        RunEvent::SpecStarted { spec: 0 },
    ];
    events.extend(steps.iter().map(|step| RunEvent::StepFinished {
        spec: 0,
        report: Arc::clone(step),
        result: None,
    }));
    events.push(RunEvent::SpecFinished {
        spec: 0,
        report: report.clone(),
    });
    let mut json_reporter = JsonReporter::with_writer(Box::new(io::sink()));
    feed(&mut json_reporter, &events);
    let document: serde_json::Value =
        serde_json::from_str(&json_reporter.render().expect("render")).expect("JSON");
    // the runner's report, with its steps' reports as they came
    let mut expected = serde_json::to_value(&report).expect("serialize");
    expected["steps"] = serde_json::to_value(&steps).expect("serialize");
    let mut got = document["specs"][0]["report"].clone();
    // the JSON report adds lines and columns to spans: compare offsets only
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for key in ["line", "column", "end_line", "end_column"] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut got);
    strip(&mut expected);
    assert_eq!(got, expected);
}

#[test]
fn a_failed_spec_of_many_steps_lists_its_first_passed_steps_and_counts_the_rest() {
    // 206 steps: the 101st fails; 200 of the others are listed, five counted
    let ids: Vec<String> = (0..206).map(|i| format!("s{i}")).collect();
    let info = spec_info(
        0,
        "TC-MANY",
        "Many steps",
        "many.toml",
        "id = \"TC-MANY\"\n",
        ids.iter().map(|id| step_info(id, StepKind::Wait)).collect(),
    );
    let steps: Vec<Arc<StepReport>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let status = if i == 100 {
                StepStatus::Failed
            } else {
                StepStatus::Passed
            };
            Arc::new(step(i, id, StepKind::Wait, status, 0, 1))
        })
        .collect();
    let mut events = vec![
        RunEvent::RunStarted {
            specs: vec![info].into(),
        },
        RunEvent::SpecStarted { spec: 0 },
    ];
    events.extend(steps.iter().map(|report| RunEvent::StepFinished {
        spec: 0,
        report: Arc::clone(report),
        result: None,
    }));
    events.push(RunEvent::SpecFinished {
        spec: 0,
        report: SpecReport {
            index: 0,
            id: "TC-MANY".to_owned(),
            status: SpecStatus::Failed,
            duration: Duration::from_millis(206),
            counts: counts(&steps),
            error: None,
        },
    });
    let out = terminal(&events, plain(false));
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` is shown:\n{out}"))
    };
    assert!(at("  ✓ s99 ") < at("  ✗ s100 "), "{out}");
    assert!(at("  ✗ s100 ") < at("  ✓ s200 "), "{out}");
    assert!(
        at("  ✓ s200 ") < at("  ✓ and 5 more steps that passed (`-v` lists every step)"),
        "{out}"
    );
    assert!(!out.contains("s201"), "{out}");
    assert!(
        out.contains("✗ TC-MANY failed  206 steps: 205 passed, 1 failed"),
        "{out}"
    );
    // verbose mode lists every step as it finishes
    let out = terminal(&events, plain(true));
    assert!(out.contains("  ✓ s205 "), "{out}");
    assert!(!out.contains("more steps that passed"), "{out}");
}

#[test]
fn file_reports_write_what_each_reporter_writes_from_one_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = FileReports::new();
    files.add(FileFormat::Junit, dir.path().join("out/r.xml"));
    files.add(FileFormat::Json, dir.path().join("out/r.json"));
    files.add(FileFormat::Markdown, dir.path().join("out/r.md"));
    feed(&mut files, &run_events());
    let read = |name: &str| {
        redact_for_snapshot(
            &std::fs::read_to_string(dir.path().join("out").join(name)).expect("a report"),
        )
    };
    assert_eq!(read("r.xml"), redact_for_snapshot(&junit(&run_events())));
    let mut json = JsonReporter::with_writer(Box::new(io::sink()));
    feed(&mut json, &run_events());
    assert_eq!(
        read("r.json"),
        redact_for_snapshot(&json.render().expect("render"))
    );
    let mut markdown = MarkdownReporter::with_writer(Box::new(io::sink()));
    feed(&mut markdown, &run_events());
    assert_eq!(read("r.md"), redact_for_snapshot(&markdown.render()));

    // a file that cannot be written does not cost the others, and is named
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "a file, not a directory").expect("write");
    let mut files = FileReports::new();
    files.add(FileFormat::Json, blocked.join("r.json"));
    files.add(FileFormat::Junit, dir.path().join("again/r.xml"));
    for event in &run_events() {
        files.on_event(event).expect("collecting succeeds");
    }
    let error = files.finish().expect_err("the JSON file cannot be written");
    assert!(error.to_string().contains("blocked/r.json"), "{error}");
    assert!(dir.path().join("again/r.xml").exists());
}
