//! The scheduler on its own: executors that only wait, pass, fail or error as
//! their configuration tells them, and the event sequence pinned per case.
//!
//! Time is tokio's paused clock, so waits are instant and the order of events
//! is the same on every run. Rendered events carry no measured durations.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use planrun_spec::duration::{Dur, parse_duration};
use planrun_spec::model::{DirConfig, Overrides, StepKind};
use planrun_spec::plan::{Plan, load_spec, plan};
use planrun_spec::source::{Format, SourceFile};
use planrun_spec::value::Value;
use serde_json::json;

use super::{Cancel, RunOptions, Runner};
use crate::events::{RunEvent, SpecInfo, SpecStatus, StepFailure, StepReport};
use crate::executor::{BoxFuture, Registry, StepError, StepExecutor, StepInput};

/// `wait = "50ms"`: waits, then passes.
struct Pause;

impl StepExecutor for Pause {
    fn kind(&self) -> StepKind {
        StepKind::Wait
    }

    fn execute<'a>(
        &'a self,
        input: StepInput<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(async move {
            // planning expands the short form to `{ duration = "50ms" }`
            let text = input
                .config
                .get("duration")
                .and_then(|d| d.as_str())
                .ok_or_else(|| {
                    StepError::new("the test pause reads a duration, like `wait = \"50ms\"`")
                })?;
            let wait = parse_duration(text).map_err(StepError::new)?;
            tokio::time::sleep(wait).await;
            Ok(json!({ "waited": text }))
        })
    }
}

/// `exec = { cmd = [OUTCOME, DURATION, OBSERVATION…] }`: waits DURATION,
/// reports each OBSERVATION (and writes it as a line of `stderr`), then ends
/// as OUTCOME says:
///
/// - `pass`: exit code 0;
/// - `fail`: exit code 1 (a failure where the step expects `exit_code = 0`);
/// - `error`: the step could not be performed;
/// - `internal`: planrun itself failed;
/// - `pass-on-N`: exit code 1 before attempt N, 0 from then on.
#[derive(Default)]
struct Told {
    attempts: Mutex<HashMap<String, u32>>,
}

impl Told {
    fn attempt(&self, step: &str) -> u32 {
        let mut attempts = self
            .attempts
            .lock()
            .expect("invariant: no test panics while holding it");
        let n = attempts.entry(step.to_string()).or_default();
        *n += 1;
        *n
    }
}

impl StepExecutor for Told {
    fn kind(&self) -> StepKind {
        StepKind::Exec
    }

    fn execute<'a>(
        &'a self,
        input: StepInput<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(async move {
            let words: Vec<&str> = input
                .config
                .get("cmd")
                .and_then(Value::as_seq)
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let [outcome, wait, observations @ ..] = words.as_slice() else {
                return Err(StepError::new(
                    "the test executor reads `cmd = [OUTCOME, DURATION, OBSERVATION…]`",
                ));
            };
            let attempt = self.attempt(input.step_id);
            tokio::time::sleep(parse_duration(wait).map_err(StepError::new)?).await;
            for o in observations {
                input.observer.observe(json!(o));
            }
            let passes = match *outcome {
                "pass" => true,
                "fail" => false,
                "error" => {
                    return Err(StepError::new(format!("told to error (attempt {attempt})")));
                }
                "internal" => {
                    return Err(StepError::internal("told to break an invariant"));
                }
                other => {
                    let from: u32 = other
                        .strip_prefix("pass-on-")
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| StepError::new(format!("unknown outcome `{other}`")))?;
                    attempt >= from
                }
            };
            let stderr = observations
                .iter()
                .map(|o| format!("{o}\n"))
                .collect::<Vec<_>>()
                .concat();
            Ok(json!({ "exit_code": i32::from(!passes), "stderr": stderr }))
        })
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register(Pause);
    registry.register(Told::default());
    registry
}

fn plans(specs: &[&str]) -> Vec<Plan> {
    specs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let source = Arc::new(SourceFile::new(format!("{i}.toml"), *text, Format::Toml));
            let spec = load_spec(&source).unwrap_or_else(|d| panic!("spec {i} loads: {d:?}"));
            plan(
                spec,
                Arc::new(DirConfig::default()),
                &Overrides::default(),
                &[],
            )
            .unwrap_or_else(|d| panic!("spec {i} plans: {d:?}"))
        })
        .collect()
}

/// Options without the process environment, so that nothing outside the
/// test reaches a spec.
fn options() -> RunOptions {
    RunOptions {
        env: BTreeMap::new(),
        ..RunOptions::default()
    }
}

/// Runs specs and renders every event; `cancel_at` stops the run at that
/// time on the paused clock.
async fn run(specs: &[&str], options: RunOptions, cancel_at: Option<Duration>) -> String {
    let plans = plans(specs);
    let runner = Runner::new(registry(), options);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = Cancel::default();
    let stopper = async {
        if let Some(at) = cancel_at {
            tokio::time::sleep(at).await;
            cancel.cancel();
        }
    };
    tokio::join!(runner.run(&plans, &tx, &cancel), stopper);
    drop(tx);
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        events.push(event);
    }
    render(&events)
}

/// Runs specs and returns the reports of their finished steps.
async fn reports(specs: &[&str], options: RunOptions) -> Vec<Arc<StepReport>> {
    let plans = plans(specs);
    let runner = Runner::new(registry(), options);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    runner.run(&plans, &tx, &Cancel::default()).await;
    drop(tx);
    let mut out = Vec::new();
    while let Some(event) = rx.recv().await {
        if let RunEvent::StepFinished { report, .. } = event {
            out.push(report);
        }
    }
    out
}

/// One short line per event: ids instead of indexes, no measured durations.
fn render(events: &[RunEvent]) -> String {
    let mut specs: &[SpecInfo] = &[];
    let mut out = String::new();
    let step = |specs: &[SpecInfo], spec: usize, step: usize| specs[spec].steps[step].id.clone();
    for event in events {
        let line = match event {
            RunEvent::RunStarted { specs: s } => {
                specs = s;
                let ids: Vec<&str> = s.iter().map(|s| s.id.as_str()).collect();
                format!("run-started {}", ids.join(" "))
            }
            RunEvent::SpecStarted { spec } => format!("spec-started {}", specs[*spec].id),
            RunEvent::StepStarted {
                spec,
                step: i,
                attempt,
            } => format!("step-started {} attempt {attempt}", step(specs, *spec, *i)),
            RunEvent::StepObserved {
                spec,
                step: i,
                observation,
            } => format!("step-observed {} {observation}", step(specs, *spec, *i)),
            RunEvent::StepRetrying {
                spec,
                step: i,
                attempt,
                reason,
                delay,
            } => format!(
                "step-retrying {} after attempt {attempt}, next in {}: {reason}",
                step(specs, *spec, *i),
                Dur(*delay)
            ),
            RunEvent::StepFinished { report, .. } => finished(report),
            RunEvent::SpecFinished { report, .. } => {
                let status = match report.status {
                    SpecStatus::Passed => "passed",
                    SpecStatus::Failed => "failed",
                    SpecStatus::Cancelled => "cancelled",
                };
                let mut line = format!("spec-finished {} {status}", report.id);
                if let Some(e) = &report.error {
                    let _ = write!(line, ": {e}");
                }
                line
            }
            RunEvent::RunFinished { report } => format!(
                "run-finished passed {} failed {} cancelled {} interrupted {}",
                report.passed, report.failed, report.cancelled, report.interrupted
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn finished(report: &StepReport) -> String {
    let mut line = format!("step-finished {} {}", report.id, report.status.as_str());
    match report.attempts {
        0 => {}
        1 => line.push_str(", 1 attempt"),
        n => {
            let _ = write!(line, ", {n} attempts");
        }
    }
    let why = report
        .error
        .as_ref()
        .map(StepFailure::headline)
        .or_else(|| {
            report
                .expectations
                .iter()
                .find(|e| !e.passed)
                .map(|e| e.message.as_str().into())
        })
        .or(report.skip_reason.as_deref().map(Into::into));
    if let Some(why) = why {
        let _ = write!(line, ": {why}");
    }
    line
}

#[tokio::test(start_paused = true)]
async fn steps_follow_each_other_by_default() {
    let events = run(
        &[r#"
id = "chain"
[[steps]]
id = "a"
wait = "10ms"
[[steps]]
id = "b"
exec = { cmd = ["pass", "10ms", "tick", "tock"] }
[[steps]]
id = "c"
wait = "10ms"
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn a_failed_need_skips_its_dependants_and_theirs() {
    let events = run(
        &[r#"
id = "skips"
[[steps]]
id = "a"
exec = { cmd = ["fail", "10ms"] }
expect.exit_code = 0
[[steps]]
id = "b"
wait = "10ms"
[[steps]]
id = "c"
wait = "10ms"
[[steps]]
id = "other"
needs = []
wait = "50ms"
[[steps]]
id = "teardown"
needs = ["c"]
always = true
wait = "10ms"
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn a_step_skipped_by_its_condition_does_not_block_its_dependants() {
    let events = run(
        &[r#"
id = "condition"
[[steps]]
id = "a"
if = "false"
wait = "10ms"
[[steps]]
id = "b"
wait = "10ms"
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn an_errored_step_skips_its_dependants_and_teardown_runs() {
    let events = run(
        &[r#"
id = "errored"
[[steps]]
id = "a"
exec = { cmd = ["error", "10ms"] }
[[steps]]
id = "b"
wait = "10ms"
[[steps]]
id = "teardown"
always = true
wait = "10ms"
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn captures_reach_later_steps_and_one_that_cannot_be_read_errors_its_step() {
    let events = run(
        &[r#"
id = "captures"
[[steps]]
id = "a"
exec = { cmd = ["pass", "10ms"] }
should.exit_code = 1
capture.code = "exit_code"
[[steps]]
id = "b"
exec = { cmd = ["pass", "10ms", "code {{ a.code }}"] }
capture.missing = "json.nope"
[[steps]]
id = "c"
wait = "10ms"
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn cancelling_drops_the_running_step_and_teardown_still_runs() {
    let events = run(
        &[r#"
id = "stopped"
[[steps]]
id = "a"
exec = { cmd = ["pass", "10s"] }
[[steps]]
id = "b"
wait = "10ms"
[[steps]]
id = "teardown"
always = true
wait = "10ms"
"#],
        options(),
        Some(Duration::from_secs(1)),
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn fail_fast_stops_starting_new_work() {
    let events = run(
        &[r#"
id = "fast"
[[steps]]
id = "a"
exec = { cmd = ["fail", "10ms"] }
expect.exit_code = 0
[[steps]]
id = "slow"
needs = []
wait = "1s"
[[steps]]
id = "after-slow"
needs = ["slow"]
wait = "10ms"
[[steps]]
id = "teardown"
needs = ["a", "after-slow"]
always = true
wait = "10ms"
"#],
        RunOptions {
            fail_fast: true,
            ..options()
        },
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn without_fail_fast_independent_work_goes_on() {
    let events = run(
        &[r#"
id = "no-fail-fast"
[[steps]]
id = "a"
exec = { cmd = ["fail", "10ms"] }
expect.exit_code = 0
[[steps]]
id = "slow"
needs = []
wait = "1s"
[[steps]]
id = "after-slow"
needs = ["slow"]
wait = "10ms"
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn the_spec_time_limit_stops_a_long_step_and_teardown_still_runs() {
    let events = run(
        &[r#"
id = "limited"
defaults.spec_timeout = "1s"
[[steps]]
id = "long"
exec = { cmd = ["pass", "10m"] }
[[steps]]
id = "teardown"
always = true
wait = "10ms"
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_past_the_step_time_limit_errors() {
    let events = run(
        &[r#"
id = "step-limit"
[[steps]]
id = "long"
timeout = "1s"
exec = { cmd = ["pass", "10m"] }
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn retry_pauses_grow_by_the_backoff_up_to_the_longest_pause() {
    let started = tokio::time::Instant::now();
    let events = run(
        &[r#"
id = "backoff"
[[steps]]
id = "flaky"
exec = { cmd = ["fail", "10ms"] }
expect.exit_code = 0
retry = { attempts = 5, interval = "100ms", backoff = 2, max_interval = "300ms" }
"#],
        options(),
        None,
    )
    .await;
    // the pauses are taken, not only announced: five attempts of 10ms and
    // 100 + 200 + 300 + 300ms between them
    assert_eq!(started.elapsed(), Duration::from_millis(950));
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn retry_ends_at_the_first_attempt_that_passes() {
    let events = run(
        &[r#"
id = "recovers"
[[steps]]
id = "flaky"
exec = { cmd = ["pass-on-3", "10ms"] }
expect.exit_code = 0
retry = { attempts = 5, interval = "100ms" }
[[steps]]
id = "errors"
needs = []
exec = { cmd = ["error", "10ms"] }
retry = { attempts = 2, interval = "1s" }
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn independent_steps_run_at_the_same_time() {
    let events = run(
        &[r#"
id = "concurrent"
[[steps]]
id = "a"
needs = []
wait = "50ms"
[[steps]]
id = "b"
needs = []
wait = "30ms"
[[steps]]
id = "joined"
needs = ["a", "b"]
wait = "10ms"
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn variables_that_do_not_render_error_the_first_step_and_skip_the_rest() {
    let events = run(
        &[r#"
id = "vars"
vars.token = { env = "TOKEN" }
[[steps]]
id = "a"
wait = "10ms"
[[steps]]
id = "b"
wait = "10ms"
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn specs_run_one_after_another_with_one_job_and_side_by_side_with_two() {
    let specs = [
        "id = \"first\"\n[[steps]]\nid = \"a\"\nwait = \"50ms\"\n",
        "id = \"second\"\n[[steps]]\nid = \"b\"\nwait = \"10ms\"\n",
    ];
    let one = run(&specs, options(), None).await;
    let two = run(
        &specs,
        RunOptions {
            jobs: 2,
            ..options()
        },
        None,
    )
    .await;
    insta::assert_snapshot!(format!("-j 1\n{one}\n-j 2\n{two}"));
}

#[tokio::test(start_paused = true)]
async fn an_internal_error_is_counted_apart_from_ordinary_ones() {
    let plans = plans(&[r#"
id = "broken"
[[steps]]
id = "a"
exec = { cmd = ["error", "10ms"] }
[[steps]]
id = "b"
needs = []
exec = { cmd = ["internal", "10ms"] }
"#]);
    let runner = Runner::new(registry(), options());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let summary = runner.run(&plans, &tx, &Cancel::default()).await;
    drop(tx);
    assert_eq!((summary.failed, summary.internal_errors), (1, 1));
    let mut lines = Vec::new();
    while let Some(event) = rx.recv().await {
        if let RunEvent::StepFinished { report, .. } = event {
            lines.push(finished(&report));
        }
    }
    lines.sort();
    assert_eq!(
        lines,
        [
            "step-finished a error, 1 attempt: told to error (attempt 1)",
            "step-finished b error, 1 attempt: planrun error: told to break an invariant",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_step_shows_its_evidence_with_secrets_hidden_and_a_passing_one_none() {
    let mut options = options();
    options
        .overrides
        .vars
        .insert("token".into(), "hunter2".into());
    options.overrides.secret_vars.push("token".into());
    let steps = reports(
        &[r#"
id = "evidence"
vars = { token = "unset" }
[[steps]]
id = "quiet"
exec = { cmd = ["pass", "10ms", "all good"] }
expect.exit_code = 0
[[steps]]
id = "loud"
exec = { cmd = ["fail", "10ms", "starting", "token {{ token }} refused"] }
expect.exit_code = 0
"#],
        options,
    )
    .await;
    assert!(steps[0].evidence.is_empty(), "{:?}", steps[0].evidence);
    let [evidence] = steps[1].evidence.as_slice() else {
        panic!("one piece of evidence: {:?}", steps[1].evidence);
    };
    assert_eq!(evidence.label(), "stderr");
    // the argument read the secret, so all of it is secret
    assert_eq!(evidence.text, "starting\n***");
}

/// A repeated step's line: the counts, and each kept failure by iteration.
fn iterations(report: &StepReport) -> String {
    let mut line = finished(report);
    if let Some(it) = &report.iterations {
        let _ = write!(
            line,
            " [{} iterations: {} passed, {} failed]",
            it.count, it.passed, it.failed
        );
        for f in &it.failures {
            let why = f
                .report
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .or_else(|| {
                    f.report
                        .expectations
                        .iter()
                        .find(|e| !e.passed)
                        .map(|e| e.message.clone())
                })
                .unwrap_or_default();
            let _ = write!(line, "\n  {}: {why}", f.label());
        }
        if it.omitted() > 0 {
            let _ = write!(line, "\n  and {} more", it.omitted());
        }
    }
    for (name, value) in &report.captures {
        let _ = write!(line, "\n  capture {name} = {value}");
    }
    line
}

#[tokio::test(start_paused = true)]
async fn a_count_runs_up_to_concurrency_iterations_at_once() {
    let started = tokio::time::Instant::now();
    let events = run(
        &[r#"
id = "count"
[[steps]]
id = "ten"
exec = { cmd = ["pass", "100ms", "{{ repeat.index }} of {{ repeat.count }}"] }
repeat = { count = 10, concurrency = 4 }
expect.exit_code = 0
[[steps]]
id = "after"
wait = "10ms"
"#],
        options(),
        None,
    )
    .await;
    // 10 iterations of 100ms, 4 at a time: three rounds, then `after`
    assert_eq!(started.elapsed(), Duration::from_millis(310));
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn one_after_another_by_default() {
    let started = tokio::time::Instant::now();
    let steps = reports(
        &["[[steps]]\nexec = { cmd = [\"pass\", \"100ms\"] }\nrepeat = 3\n"],
        options(),
    )
    .await;
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert_eq!(
        iterations(&steps[0]),
        "step-finished step-1 passed, 1 attempt [3 iterations: 3 passed, 0 failed]"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_iteration_fails_the_step_and_only_the_first_failures_are_kept() {
    let steps = reports(
        &[r#"
id = "failing"
vars.users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
[[steps]]
id = "each"
exec = { cmd = ["{{ 'pass' if user == 'alice' else 'fail' }}", "{{ (8 - repeat.index) * 10 }}ms"] }
repeat = { over = "{{ users }}", as = "user", concurrency = 8 }
expect.exit_code = 0
capture.code = "exit_code"
[[steps]]
id = "after"
wait = "10ms"
"#],
        options(),
    )
    .await;
    let lines: Vec<String> = steps.iter().map(|s| iterations(s)).collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[tokio::test(start_paused = true)]
async fn retry_applies_to_each_iteration() {
    let events = run(
        &[r#"
id = "retried"
[[steps]]
id = "flaky"
exec = { cmd = ["pass-on-2", "10ms"] }
repeat = 2
retry = { attempts = 2, interval = "100ms" }
expect.exit_code = 0
"#],
        options(),
        None,
    )
    .await;
    insta::assert_snapshot!(events);
}

#[tokio::test(start_paused = true)]
async fn captures_of_a_repeated_step_are_lists_in_iteration_order() {
    let steps = reports(
        &[r#"
id = "lists"
[[steps]]
id = "each"
exec = { cmd = ["pass", "{{ (3 - repeat.index) * 10 }}ms", "{{ item }}"] }
repeat = { over = ["a", "b", "c"], concurrency = 3 }
capture.line = "stderr"
capture.index = "{{ repeat.index }}"
[[steps]]
id = "read"
exec = { cmd = ["pass", "10ms", "{{ each.line[0] }}{{ each.line | length }}"] }
capture.seen = "stderr"
[[steps]]
id = "empty"
exec = { cmd = ["pass", "10ms"] }
repeat = { over = "{{ [] }}" }
capture.none = "exit_code"
[[steps]]
id = "not-a-list"
exec = { cmd = ["pass", "10ms"] }
repeat = { over = "{{ 'abc' }}" }
"#],
        options(),
    )
    .await;
    let lines: Vec<String> = steps.iter().map(|s| iterations(s)).collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[tokio::test(start_paused = true)]
async fn iterations_that_warn_are_counted_and_the_first_is_kept() {
    let steps = reports(
        &[r#"
id = "warned"
[[steps]]
id = "each"
exec = { cmd = ["{{ 'fail' if repeat.index > 1 else 'pass' }}", "{{ (5 - repeat.index) * 10 }}ms"] }
repeat = { count = 5, concurrency = 5 }
should.exit_code = 0
"#],
        options(),
    )
    .await;
    let it = steps[0].iterations.as_ref().expect("iterations");
    assert_eq!(steps[0].status.as_str(), "warned");
    assert_eq!((it.passed, it.failed, it.warned), (5, 0, 3));
    assert_eq!(it.first_warning.as_ref().map(|w| w.index), Some(2));
}

#[tokio::test(start_paused = true)]
async fn the_step_time_limit_applies_to_each_iteration() {
    let started = tokio::time::Instant::now();
    let steps = reports(
        &[r#"
id = "each-limited"
[[steps]]
id = "each"
timeout = "1s"
exec = { cmd = ["pass", "{{ '10m' if repeat.index == 1 else '900ms' }}"] }
repeat = 3
"#],
        options(),
    )
    .await;
    // 900ms, then 1s and the grace before the runner drops it, then 900ms:
    // each iteration had the whole second
    assert_eq!(started.elapsed(), Duration::from_millis(3300));
    insta::assert_snapshot!(iterations(&steps[0]), @r"
    step-finished each error, 1 attempt [3 iterations: 2 passed, 1 failed]
      iteration 1: the step did not finish within 1 s
    ");
}

/// A step that passed keeps a brief of its result in its report (what
/// reports hold for the rest of the run); the whole result travels with its
/// `StepFinished` only. A step that failed keeps its whole result.
#[tokio::test(start_paused = true)]
async fn a_passed_step_keeps_a_brief_of_its_result() {
    let long = "x".repeat(StepReport::BRIEF_STRING + 1);
    let spec = format!(
        "id = \"BRIEF\"\n[[steps]]\nid = \"ok\"\nexec = {{ cmd = [\"pass\", \"1ms\", \"{long}\"] }}\n\
         [[steps]]\nid = \"bad\"\nneeds = []\nexec = {{ cmd = [\"fail\", \"1ms\", \"{long}\"] }}\nexpect.exit_code = 0\n"
    );
    let plans = plans(&[&spec]);
    let runner = Runner::new(registry(), options());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    runner.run(&plans, &tx, &Cancel::default()).await;
    drop(tx);
    let mut finished = HashMap::new();
    while let Some(event) = rx.recv().await {
        if let RunEvent::StepFinished { report, result, .. } = event {
            finished.insert(report.id.clone(), (report, result));
        }
    }
    let stderr = format!("{long}\n");
    let (ok, whole) = &finished["ok"];
    let kept = ok.result.as_ref().expect("a brief");
    assert_eq!(kept["exit_code"], 0);
    assert!(kept.get("stderr").is_none(), "{kept}");
    let whole = whole.as_deref().expect("the whole result");
    assert_eq!(whole["stderr"], stderr);
    let (bad, whole) = &finished["bad"];
    assert_eq!(
        bad.result.as_ref().expect("kept")["stderr"],
        stderr,
        "{bad:?}"
    );
    assert_eq!(whole, &None);
}

/// Every event of a run, serialized as reporters that write JSON see it.
async fn events_json(specs: &[&str], options: RunOptions) -> String {
    let plans = plans(specs);
    let runner = Runner::new(registry(), options);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    runner.run(&plans, &tx, &Cancel::default()).await;
    drop(tx);
    let mut out = String::new();
    while let Some(event) = rx.recv().await {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string(&event).expect("events serialize")
        );
    }
    out
}

#[tokio::test(start_paused = true)]
async fn what_is_rendered_from_a_secret_is_secret_in_every_event() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secret = "s3cr3t-Tok3n";
    let mut options = options();
    options.overrides.vars.insert("token".into(), secret.into());
    options.overrides.secret_vars.push("token".into());
    let events = events_json(
        &[&format!(
            r#"
id = "taint"
[vars]
token = "unset"
user = "qa"
auth = "Basic {{{{ (user ~ ':' ~ token) | b64encode }}}}"
[[steps]]
id = "first"
exec = {{ cmd = ["pass", "1ms", "{{{{ token | b64encode }}}}", "{{{{ auth }}}}", "{{{{ token | upper }}}}"] }}
capture.shout = "{{{{ (token | upper) ~ '-' ~ result.exit_code }}}}"
capture.said = {{ from = "stderr" }}
[[steps]]
id = "second"
exec = {{ cmd = ["fail", "1ms", "{{{{ first.shout | lower }}}}!", "{{{{ token | hex }}}}", "{b64}", "{b64qa}"] }}
expect.exit_code = 0
"#,
            b64 = b64(secret),
            b64qa = b64(&format!("qa:{secret}")),
        )],
        options,
    )
    .await;
    let hex = secret.bytes().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    for form in [
        secret.to_string(),
        secret.to_uppercase(),
        secret.to_lowercase(),
        b64(secret),
        b64(&format!("qa:{secret}")),
        hex,
    ] {
        assert!(!events.contains(&form), "`{form}` in\n{events}");
    }
    // both captures are secret, and their values hidden
    assert!(
        events.contains(r#""captures":[["shout","***"],["said","***"]]"#),
        "{events}"
    );
    // the failed step's evidence shows where the secrets were; of the
    // base64 written in the spec only what encodes `qa:` is left
    assert!(
        events.contains(r#""text":"***\n***\n***\ncWE6***""#),
        "{events}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_list_rendered_from_a_secret_makes_each_item_secret() {
    let mut options = options();
    options
        .overrides
        .vars
        .insert("keys".into(), "alpha-key,bravo-key".into());
    options.overrides.secret_vars.push("keys".into());
    let events = events_json(
        &[r#"
id = "items"
vars = { keys = "unset" }
[[steps]]
id = "each"
repeat = { over = "{{ keys | split(',') | list }}", as = "key" }
exec = { cmd = ["fail", "1ms", "{{ key | reverse }}"] }
expect.exit_code = 0
"#],
        options,
    )
    .await;
    for form in ["alpha-key", "yek-ahpla", "yek-ovarb"] {
        assert!(!events.contains(form), "`{form}` in\n{events}");
    }
    assert!(events.contains(r#""stderr":"***\n""#), "{events}");
    assert!(
        events.contains(r#""item":{"name":"key","value":"***"}"#),
        "{events}"
    );
}

#[tokio::test(start_paused = true)]
async fn secrets_written_in_the_spec_are_starred_in_the_text_reporters_quote() {
    let spec = r#"
id = "written"
vars = { token = { value = "hunter2-literal", secret = true }, user = "qa" }
[[steps]]
http = { get = "http://127.0.0.1:9/", basic_auth = { user = "{{ user }}", password = "pässwörd" } }
[[steps]]
http = { get = "http://127.0.0.1:9/", basic_auth = { user = "qa", password = "{{ token }}" } }
"#;
    let plans = plans(&[spec]);
    let runner = Runner::new(registry(), options());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    runner.run(&plans, &tx, &Cancel::default()).await;
    drop(tx);
    let Some(RunEvent::RunStarted { specs }) = rx.recv().await else {
        panic!("the run starts first");
    };
    let text = &specs[0].source.text;
    assert_eq!(text.len(), spec.len(), "byte for byte: spans still fit");
    assert!(
        !text.contains("hunter2") && !text.contains("pässwörd"),
        "{text}"
    );
    assert!(text.contains(r#"value = "***************""#), "{text}");
    assert!(text.contains(r#"password = "**********" }"#), "{text}");
    // templates are no secrets
    assert!(text.contains(r#"password = "{{ token }}""#), "{text}");
}

/// Specs planned on demand: the second one plans to announce it, then no
/// longer does when it starts.
struct OnDemand {
    texts: Vec<&'static str>,
    calls: Mutex<Vec<usize>>,
}

impl super::Specs for OnDemand {
    fn len(&self) -> usize {
        self.texts.len()
    }

    fn plan(&self, index: usize) -> Result<std::borrow::Cow<'_, Plan>, super::Unplanned> {
        let mut calls = self
            .calls
            .lock()
            .expect("invariant: no test panics while holding it");
        calls.push(index);
        let asked = calls.iter().filter(|i| **i == index).count();
        let plan = plans(&[self.texts[index]]).remove(0);
        if index == 1 && asked > 1 {
            return Err(super::Unplanned {
                id: plan.spec.id.clone(),
                source: Arc::clone(&plan.spec.source),
                message: String::from("the spec no longer plans: an include is gone"),
            });
        }
        Ok(std::borrow::Cow::Owned(plan))
    }
}

#[tokio::test(start_paused = true)]
async fn specs_are_planned_to_announce_them_and_again_when_they_start() {
    let specs = OnDemand {
        texts: vec![
            "id = \"A\"\n[[steps]]\nid = \"a\"\nwait = \"1ms\"\n",
            "id = \"B\"\n[[steps]]\nid = \"b\"\nwait = \"1ms\"\n",
            "id = \"C\"\n[[steps]]\nid = \"c\"\nwait = \"1ms\"\n",
        ],
        calls: Mutex::new(Vec::new()),
    };
    let runner = Runner::new(registry(), options());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let summary = runner.run(&specs, &tx, &Cancel::default()).await;
    drop(tx);
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        events.push(event);
    }
    assert_eq!(
        render(&events),
        "run-started A B C\n\
         spec-started A\n\
         step-started a attempt 1\n\
         step-finished a passed, 1 attempt\n\
         spec-finished A passed\n\
         spec-started B\n\
         spec-finished B failed: the spec no longer plans: an include is gone\n\
         spec-started C\n\
         step-started c attempt 1\n\
         step-finished c passed, 1 attempt\n\
         spec-finished C passed\n\
         run-finished passed 2 failed 1 cancelled 0 interrupted false\n"
    );
    assert_eq!(summary.failed, 1);
    // announced in order, then each planned again as it starts
    assert_eq!(
        *specs.calls.lock().expect("not poisoned"),
        [0, 1, 2, 0, 1, 2]
    );
}

/// A spec that plans again with other steps than it was announced with
/// (an included file changed between the two) fails, saying so: its steps
/// would not match what reporters were told.
struct Changing {
    calls: Mutex<usize>,
}

impl super::Specs for Changing {
    fn len(&self) -> usize {
        1
    }

    fn plan(&self, _: usize) -> Result<std::borrow::Cow<'_, Plan>, super::Unplanned> {
        let mut calls = self
            .calls
            .lock()
            .expect("invariant: no test panics while holding it");
        *calls += 1;
        let text = if *calls == 1 {
            "id = \"D\"\n[[steps]]\nid = \"a\"\nwait = \"1ms\"\n[[steps]]\nid = \"b\"\nwait = \"1ms\"\n"
        } else {
            "id = \"D\"\n[[steps]]\nid = \"a\"\nwait = \"1ms\"\n"
        };
        Ok(std::borrow::Cow::Owned(plans(&[text]).remove(0)))
    }
}

#[tokio::test(start_paused = true)]
async fn a_spec_with_other_steps_when_it_starts_fails_saying_so() {
    let specs = Changing {
        calls: Mutex::new(0),
    };
    let runner = Runner::new(registry(), options());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let summary = runner.run(&specs, &tx, &Cancel::default()).await;
    drop(tx);
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        events.push(event);
    }
    assert_eq!(summary.failed, 1);
    assert_eq!(
        render(&events),
        "run-started D\n\
         spec-started D\n\
         spec-finished D failed: the spec changed during the run: it has 1 step now, 2 when it was checked (a file it includes changed?)\n\
         run-finished passed 0 failed 1 cancelled 0 interrupted false\n"
    );
}
