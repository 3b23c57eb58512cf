//! One step, start to end: its condition, its attempts with retry and
//! backoff, its expectations and captures.
//!
//! Owns what one attempt's outcome means (pass, warn, fail, try again) and
//! the pause between attempts. It never decides whether a step may start
//! (that is the walk) and never knows what a step does: that is the
//! executor's, reached only through `StepExecutor::execute`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use planrun_spec::model::{Defaults, Step};
use serde_json::Value as Json;

use super::{Env, failure, not_run};
use crate::events::{RunEvent, StepReport, StepStatus};
use crate::executor::{Observer, StepError, StepInput};
use crate::expect::Checker;
use crate::redact::Redactor;
use crate::render::Scope;

/// A step that ended: its report, and what it hands to later steps.
pub(super) struct Attempted {
    pub(super) report: StepReport,
    pub(super) captures: Vec<(String, Json)>,
    pub(super) secrets: Vec<Json>,
}

impl Env<'_> {
    /// One step: its condition, its attempts, its expectations and captures.
    pub(super) async fn attempt_step(
        &self,
        step: &Step,
        scope: Scope,
        redactor: Redactor,
    ) -> Attempted {
        let r = &self.runner.renderer;
        let step_started = Instant::now();
        let mut report = not_run(step, StepStatus::Passed, "");
        report.started = step_started.duration_since(self.started);
        if let Some(when) = &step.when {
            match r.truthy(when, &scope) {
                Ok(true) => {}
                Ok(false) => {
                    report.status = StepStatus::Skipped;
                    report.skip_reason = Some(format!("`if = {}` is false", when.source));
                    return Attempted {
                        report,
                        captures: Vec::new(),
                        secrets: Vec::new(),
                    };
                }
                Err(e) => return errored(report, &e, step_started),
            }
        }
        let Some(executor) = self.runner.registry.get(step.kind) else {
            let e = StepError::new(format!(
                "step kind `{}` is not available in this build",
                step.kind.key()
            ))
            .at(step.kind_span.clone());
            return errored(report, &e, step_started);
        };
        let timeout = step
            .timeout
            .or(self.defaults.timeout)
            .unwrap_or(Defaults::STEP_TIMEOUT);
        let max_body = self.defaults.max_body.unwrap_or(Defaults::MAX_BODY);
        let retry = step.retry.clone();
        let max_attempts = retry.as_ref().map_or(1, |r| r.attempts);
        let mut delay = retry.as_ref().map_or(Duration::ZERO, |r| r.interval);
        let deadline = retry
            .as_ref()
            .and_then(|r| r.timeout)
            .map(|t| step_started + t);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            report.attempts = attempt;
            let _ = self.events.send(RunEvent::StepStarted {
                spec: self.index,
                step: step.index,
                attempt,
            });
            let outcome = self.once(step, &*executor, &scope, timeout, max_body).await;
            let last =
                attempt >= max_attempts || deadline.is_some_and(|d| Instant::now() + delay >= d);
            match outcome {
                Ok(result) => {
                    let checker = Checker::new(r, &scope, &result);
                    report.expectations = step.expect.iter().map(|e| checker.check(e)).collect();
                    let blocking_failed =
                        report.expectations.iter().find(|e| e.blocking && !e.passed);
                    if let Some(f) = blocking_failed {
                        if !last {
                            let reason = f.message.clone();
                            self.retrying(step, attempt, &redactor.text(&reason), delay);
                            tokio::time::sleep(delay).await;
                            delay = next_delay(delay, retry.as_ref());
                            continue;
                        }
                        report.status = StepStatus::Failed;
                    } else if report.expectations.iter().any(|e| !e.passed) {
                        report.status = StepStatus::Warned;
                    } else {
                        report.status = StepStatus::Passed;
                    }
                    let mut captures = Vec::new();
                    let mut secrets = Vec::new();
                    if !report.status.is_failure() {
                        for c in &step.captures {
                            match checker.capture(c) {
                                Ok(v) => {
                                    if c.secret {
                                        secrets.push(v.clone());
                                    }
                                    captures.push((c.name.name.clone(), v));
                                }
                                Err(e) => {
                                    report.status = StepStatus::Errored;
                                    report.error = Some(failure(&e));
                                    break;
                                }
                            }
                        }
                    }
                    drop(checker);
                    report.captures.clone_from(&captures);
                    report.result = Some(trim_result(result));
                    report.duration = step_started.elapsed();
                    return Attempted {
                        report,
                        captures,
                        secrets,
                    };
                }
                Err(e) => {
                    if !last {
                        self.retrying(step, attempt, &redactor.text(&e.message), delay);
                        tokio::time::sleep(delay).await;
                        delay = next_delay(delay, retry.as_ref());
                        continue;
                    }
                    return errored(report, &e, step_started);
                }
            }
        }
    }

    fn retrying(&self, step: &Step, attempt: u32, reason: &str, delay: Duration) {
        let _ = self.events.send(RunEvent::StepRetrying {
            spec: self.index,
            step: step.index,
            attempt,
            reason: reason.to_string(),
            delay,
        });
    }

    async fn once(
        &self,
        step: &Step,
        executor: &dyn crate::executor::StepExecutor,
        scope: &Scope,
        timeout: Duration,
        max_body: u64,
    ) -> Result<Json, StepError> {
        let config = self.runner.renderer.render_value(&step.config, scope)?;
        let input = StepInput {
            config: &config,
            ctx: self.ctx,
            step_id: &step.id,
            timeout,
            max_body,
            observer: Observer {
                tx: self.runner.options.observe.then(|| self.events.clone()),
                spec: self.index,
                step: step.index,
            },
        };
        let started = Instant::now();
        // executors end themselves at `timeout` with a message that says what
        // they were waiting for; the grace lets them, and stops one that does not
        let guard = timeout + EXECUTOR_GRACE;
        let mut result = match tokio::time::timeout(guard, executor.execute(input)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(StepError::new(format!(
                    "the step did not finish within {}",
                    planrun_spec::duration::Dur(timeout)
                ))
                .at(step.kind_span.clone())
                .help("raise `timeout` on the step, or `defaults.timeout` for every step"));
            }
        };
        if let Json::Object(map) = &mut result {
            map.entry("duration")
                .or_insert_with(|| Json::from(started.elapsed().as_secs_f64() * 1000.0));
        }
        Ok(result)
    }
}

/// How long past its time limit an attempt may run before the runner drops it.
const EXECUTOR_GRACE: Duration = Duration::from_millis(500);

fn next_delay(delay: Duration, retry: Option<&planrun_spec::model::Retry>) -> Duration {
    match retry {
        Some(r) => delay.mul_f64(r.backoff).min(r.max_interval),
        None => delay,
    }
}

fn errored(mut report: StepReport, e: &StepError, started: Instant) -> Attempted {
    report.status = StepStatus::Errored;
    report.error = Some(failure(e));
    report.duration = started.elapsed();
    Attempted {
        report,
        captures: Vec::new(),
        secrets: Vec::new(),
    }
}

/// Cuts long bodies so reports stay readable; the full body was used for checks.
fn trim_result(mut result: Json) -> Json {
    const LIMIT: usize = 64 * 1024;
    if let Json::Object(map) = &mut result {
        for key in ["body", "stdout", "stderr"] {
            if let Some(Json::String(s)) = map.get_mut(key)
                && s.len() > LIMIT
            {
                let mut cut = LIMIT;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                let total = s.len();
                s.truncate(cut);
                let _ = write!(s, "… ({total} bytes in all)");
            }
        }
    }
    result
}
