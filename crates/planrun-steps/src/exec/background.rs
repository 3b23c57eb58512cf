//! `exec` with `background = true`: start a process, wait until it is ready,
//! and leave it running for the rest of the spec.
//!
//! This module owns the readiness loop and the stop sequence (SIGTERM to the
//! group, `stop_timeout` of grace, then SIGKILL). It must not return while the
//! process runs unsupervised: once ready, the process is handed to a cleanup on
//! the spec context; before that, and if that cleanup is dropped unrun, the
//! `Child` (kill on drop) and its `ProcessGroup` guard kill it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use planrun_runner::executor::{StepError, StepInput};
use planrun_spec::duration::human;
use planrun_spec::kinds::ExecConfig;
use regex::Regex;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Child;
use tokio::task::JoinHandle;

use super::group::{ProcessGroup, Signal};
use super::output::{self, OutputLog};
use super::{Launch, describe_status};
use crate::probe::{LastFailure, Target};
use crate::util::{millis, span_of};

const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// How many lines of output an error message shows.
const SHOWN_LINES: usize = 20;

/// When the process counts as ready.
enum Ready {
    /// As soon as it started (no `ready` given).
    Started,
    /// When a line of its output matches the pattern.
    Log,
    /// When a probe succeeds.
    Probe(Target),
}

/// A running background process and what reads its output.
struct Background {
    child: Child,
    group: ProcessGroup,
    log: Arc<OutputLog>,
    drains: Vec<JoinHandle<()>>,
}

impl Background {
    /// Stops the process: SIGTERM to its group, `grace` to exit, then SIGKILL.
    async fn stop(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.group.signal(Signal::Term).await;
        let leader_exited = tokio::time::timeout(grace, self.child.wait()).await.is_ok();
        // the rest of the group (a shell's server child) gets the same grace
        while leader_exited && Instant::now() < deadline && self.group.alive().await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.group.signal(Signal::Kill).await;
        if !leader_exited {
            // kill() also reaps it
            let _ = self.child.kill().await;
        }
        self.group.disarm();
        self.finish_output().await;
    }

    /// Kills what is left of the group and lets the drain tasks read the
    /// pipes to their end, so the log holds the last words.
    async fn finish_output(&mut self) {
        self.group.signal(Signal::Kill).await;
        for drain in self.drains.drain(..) {
            let abort = drain.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), drain)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    fn last_output(&self) -> String {
        let lines = self.log.last_lines(SHOWN_LINES);
        if lines.is_empty() {
            String::from("it printed nothing")
        } else {
            let mut text = String::from("its last output:");
            for line in lines {
                text.push_str("\n  ");
                text.push_str(&line);
            }
            text
        }
    }
}

/// Starts a background process and waits until it is ready.
pub(super) async fn start(
    mut launch: Launch,
    config: &ExecConfig,
    input: &StepInput<'_>,
) -> Result<serde_json::Value, StepError> {
    let (ready, pattern, interval) = readiness(config, input)?;
    let ready_timeout = config.ready_timeout.map_or(DEFAULT_READY_TIMEOUT, |d| d.0);
    let stop_timeout = config.stop_timeout.map_or(DEFAULT_STOP_TIMEOUT, |d| d.0);
    let label = launch.label.clone();
    let span = launch.span.clone();

    let started = Instant::now();
    let (mut child, group, pid) = launch.spawn()?;
    let log = OutputLog::new(pattern);
    let mut drains = Vec::with_capacity(2);
    if let Some(pipe) = child.stdout.take() {
        drains.push(tokio::spawn(output::drain(pipe, Arc::clone(&log))));
    }
    if let Some(pipe) = child.stderr.take() {
        drains.push(tokio::spawn(output::drain(pipe, Arc::clone(&log))));
    }
    if let (Some(mut pipe), Some(text)) = (child.stdin.take(), config.stdin.clone()) {
        tokio::spawn(async move {
            // the process may never read it; closing the pipe after is the point
            let _ = pipe.write_all(text.as_bytes()).await;
        });
    }
    let mut process = Background {
        child,
        group,
        log,
        drains,
    };

    let mut last_failure = LastFailure::default();
    loop {
        match process.child.try_wait() {
            Ok(Some(status)) => {
                process.finish_output().await;
                return Err(StepError::new(format!(
                    "`{label}` exited with {} before it was ready; {}",
                    describe_status(status),
                    process.last_output()
                ))
                .at(span)
                .help("a background process must keep running; run the command by hand to see why it stops"));
            }
            Ok(None) => {}
            Err(err) => {
                return Err(StepError::new(format!("cannot check on `{label}`: {err}")).at(span));
            }
        }
        let remaining = ready_timeout.saturating_sub(started.elapsed());
        let is_ready = match &ready {
            Ready::Started => true,
            Ready::Log => process.log.ready_match().is_some(),
            Ready::Probe(target) => match target.check(remaining).await {
                Ok(()) => true,
                Err(failure) => {
                    last_failure.record(failure);
                    false
                }
            },
        };
        if is_ready {
            break;
        }
        let remaining = ready_timeout.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            let waited_for = match &ready {
                Ready::Probe(target) => target.describe(),
                _ => format!(
                    "a line matching `{}`",
                    config
                        .ready
                        .as_ref()
                        .and_then(|r| r.log.as_deref())
                        .unwrap_or_default()
                ),
            };
            let last = last_failure
                .reason()
                .map(|e| format!(" (last check: {e})"))
                .unwrap_or_default();
            process.stop(stop_timeout).await;
            let output = process.last_output();
            return Err(StepError::new(format!(
                "`{label}` was not ready after {}: waited for {waited_for}{last}; {output}",
                human(ready_timeout)
            ))
            .at(span)
            .help("raise `ready_timeout` if it needs longer, or check the `ready` condition"));
        }
        tokio::time::sleep(interval.min(remaining)).await;
    }
    let ready_after = started.elapsed();
    let (ready_line, ready_match) = match process.log.ready_match() {
        Some(found) => (
            serde_json::Value::from(found.line.clone()),
            serde_json::Value::Object(found.groups.clone()),
        ),
        None => (serde_json::Value::Null, serde_json::Value::Null),
    };

    input
        .ctx
        .on_cleanup(format!("stop `{label}` (pid {pid})"), move || {
            Box::pin(async move { process.stop(stop_timeout).await })
        });
    Ok(json!({
        "pid": pid,
        "ready": true,
        "duration": millis(started.elapsed()),
        "ready_after": millis(ready_after),
        "ready_line": ready_line,
        "ready_match": ready_match,
    }))
}

fn readiness(
    config: &ExecConfig,
    input: &StepInput<'_>,
) -> Result<(Ready, Option<Regex>, Duration), StepError> {
    let Some(ready) = &config.ready else {
        return Ok((Ready::Started, None, DEFAULT_INTERVAL));
    };
    let interval = ready
        .interval
        .map_or(DEFAULT_INTERVAL, |d| d.0)
        .max(MIN_INTERVAL);
    let ready_value = input.config.get("ready").unwrap_or(input.config);
    let kind = match (&ready.tcp, &ready.http, &ready.log) {
        (Some(addr), None, None) => (Ready::Probe(Target::Tcp(addr.clone())), None),
        (None, Some(url), None) => (Ready::Probe(Target::Http(url.clone())), None),
        (None, None, Some(pattern)) => {
            let regex = Regex::new(pattern).map_err(|err| {
                StepError::new(format!(
                    "`{pattern}` is not a valid regular expression: {err}"
                ))
                .at(span_of(ready_value, "log"))
            })?;
            (Ready::Log, Some(regex))
        }
        _ => {
            return Err(StepError::new("set exactly one of `tcp`, `http` or `log`")
                .at(ready_value.span.clone()));
        }
    };
    Ok((kind.0, kind.1, interval))
}
