//! One step, start to end: its condition, its attempts with retry and
//! backoff, its expectations and captures.
//!
//! Owns what one attempt's outcome means (pass, warn, fail, try again) and
//! the pause between attempts. It never decides whether a step may start
//! (that is the walk) and never knows what a step does: that is the
//! executor's, reached only through `StepExecutor::execute`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use planrun_spec::model::{Capture, Defaults, Repeat, RepeatOver, Retry, Step, Target};
use serde_json::Value as Json;

use super::{Env, evidence, failure, not_run};
use crate::events::{
    IterationFailure, IterationItem, Iterations, RunEvent, StepReport, StepStatus,
};
use crate::executor::{Observer, StepError, StepExecutor, StepInput};
use crate::expect::Checker;
use crate::redact::Redactor;
use crate::render::Scope;

/// A step that ended: its report, and what it hands to later steps.
pub(super) struct Attempted {
    pub(super) report: StepReport,
    pub(super) captures: Vec<(String, Json)>,
    pub(super) found: Found,
}

/// What a step made known to be secret, for its own report and for the
/// steps after it.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// Secrets in their own right: captures marked `secret`, a
    /// `basic_auth` password.
    pub(super) secrets: Vec<Json>,
    /// Values derived from a secret: rendered templates that read one,
    /// captures computed from one.
    pub(super) derived: Vec<Json>,
    /// The captures that are secret, by name.
    pub(super) names: Vec<String>,
}

impl Found {
    /// What the step's templates and configuration made secret so far.
    fn noted(scope: &Scope) -> Found {
        let noted = scope.noted();
        Found {
            secrets: noted.secrets.into_iter().map(Json::String).collect(),
            derived: noted.derived,
            names: Vec::new(),
        }
    }

    fn extend(&mut self, other: Found) {
        self.secrets.extend(other.secrets);
        self.derived.extend(other.derived);
        self.names.extend(other.names);
    }

    /// Teaches the step's own `redactor` what was found: a derived value
    /// is hidden whole.
    pub(super) fn teach(&self, redactor: &mut Redactor) {
        redactor.add_derived_json(&self.derived, true);
        self.secrets.iter().for_each(|s| redactor.add_json(s));
    }

    /// Teaches the spec run's `redactor`, for the steps after: a derived
    /// value that holds a known form of a secret is left to that secret,
    /// the others are secrets from now on.
    pub(super) fn teach_lasting(&self, redactor: &mut Redactor) {
        redactor.add_derived_json(&self.derived, false);
        self.secrets.iter().for_each(|s| redactor.add_json(s));
    }
}

/// `base` with what the step's templates and configuration made secret so
/// far; `base` itself when they made nothing.
fn with_noted<'r>(base: &'r Redactor, scope: &Scope) -> Cow<'r, Redactor> {
    let found = Found::noted(scope);
    if found.secrets.is_empty() && found.derived.is_empty() {
        return Cow::Borrowed(base);
    }
    let mut redactor = base.clone();
    found.teach(&mut redactor);
    Cow::Owned(redactor)
}

/// Values a step captured, and what about them is secret.
#[derive(Default)]
struct Captured {
    values: Vec<(String, Json)>,
    found: Found,
}

/// What one attempt's result means for its step.
enum Judged {
    /// A blocking expectation failed and another attempt is allowed: why.
    Again(String),
    /// The step is over; its report has its status and result.
    Over(Captured),
}

/// When a step gets another attempt, and the pause before it.
struct Backoff<'a> {
    retry: Option<&'a Retry>,
    attempts: u32,
    delay: Duration,
    deadline: Option<Instant>,
}

impl<'a> Backoff<'a> {
    fn new(retry: Option<&'a Retry>, started: Instant) -> Self {
        Self {
            retry,
            attempts: retry.map_or(1, |r| r.attempts),
            delay: retry.map_or(Duration::ZERO, |r| r.interval),
            deadline: retry.and_then(|r| r.timeout).map(|t| started + t),
        }
    }

    /// Whether `attempt` is the last: the attempts are used up, or the
    /// pause before another would reach the retry time limit.
    fn is_last(&self, attempt: u32) -> bool {
        attempt >= self.attempts
            || self
                .deadline
                .is_some_and(|d| Instant::now() + self.delay >= d)
    }

    /// Pauses before the next attempt, and lengthens the pause after that one.
    async fn pause(&mut self) {
        tokio::time::sleep(self.delay).await;
        self.delay = next_delay(self.delay, self.retry);
    }
}

/// What every attempt of one step reads.
struct StepRun<'r> {
    step: &'r Step,
    executor: &'r dyn StepExecutor,
    timeout: Duration,
    max_body: u64,
    redactor: &'r Redactor,
}

impl Env<'_> {
    /// One step: its condition, then its attempts, or those of each of its
    /// iterations when it repeats.
    pub(super) async fn attempt_step(
        &self,
        step: &Step,
        scope: Scope,
        redactor: Redactor,
    ) -> Attempted {
        let started = Instant::now();
        let mut report = not_run(step, StepStatus::Passed, "");
        report.started = started.duration_since(self.started);
        // a step of a spec read a step at a time is read whole only now
        let whole = match self.plan.spec.step(step.index) {
            Ok(whole) => whole,
            Err(problems) => {
                let e = StepError::new(format!(
                    "the step could not be read again from its file: {}",
                    problems.0.first().map_or("", |d| d.message.as_str())
                ))
                .at(step.span.clone());
                return errored(report, &e, started, &scope, &redactor);
            }
        };
        let step: &Step = &whole;
        // what this step renders from secrets is noted from here on
        let mut scope = scope;
        scope.note_secrets();
        match self.skipped_by_condition(step, &scope) {
            Ok(None) => {}
            Ok(Some(reason)) => {
                report.status = StepStatus::Skipped;
                report.skip_reason = Some(reason);
                return Attempted {
                    report,
                    captures: Vec::new(),
                    found: Found::noted(&scope),
                };
            }
            Err(e) => return errored(report, &e, started, &scope, &redactor),
        }
        let Some(executor) = self.runner.registry.get(step.kind) else {
            let e = StepError::new(format!(
                "step kind `{}` is not available in this build",
                step.kind.key()
            ))
            .at(step.kind_span.clone());
            return errored(report, &e, started, &scope, &redactor);
        };
        let run = StepRun {
            step,
            executor: &*executor,
            timeout: step
                .timeout
                .or(self.defaults.timeout)
                .unwrap_or(Defaults::STEP_TIMEOUT),
            max_body: self.defaults.max_body.unwrap_or(Defaults::MAX_BODY),
            redactor: &redactor,
        };
        match &step.repeat {
            None => self.attempts(&run, &scope, report, None).await,
            Some(repeat) => self.repeated(&run, repeat, &scope, report, started).await,
        }
    }

    /// The attempts of one step, or of one iteration of a repeated step
    /// (`label` names it in retry messages): until one passes, or the
    /// retries are used up.
    async fn attempts(
        &self,
        run: &StepRun<'_>,
        scope: &Scope,
        mut report: StepReport,
        label: Option<&str>,
    ) -> Attempted {
        let step = run.step;
        let started = Instant::now();
        let mut backoff = Backoff::new(step.retry.as_deref(), started);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            report.attempts = attempt;
            let _ = self.events.send(RunEvent::StepStarted {
                spec: self.index,
                step: step.index,
                attempt,
            });
            let outcome = self.once(run, scope).await;
            let last = backoff.is_last(attempt);
            let reason = match outcome {
                Ok(result) => {
                    match self.judge(step, scope, result, &mut report, last, run.redactor) {
                        Judged::Again(reason) => reason,
                        Judged::Over(captured) => {
                            report.duration = started.elapsed();
                            let mut found = captured.found;
                            found.extend(Found::noted(scope));
                            return Attempted {
                                report,
                                captures: captured.values,
                                found,
                            };
                        }
                    }
                }
                Err(e) if last => return errored(report, &e, started, scope, run.redactor),
                Err(e) => e.message,
            };
            let reason = match label {
                Some(label) => format!("{label}: {reason}"),
                None => reason,
            };
            let reason = with_noted(run.redactor, scope).text(&reason);
            self.retrying(step, attempt, &reason, backoff.delay);
            backoff.pause().await;
        }
    }

    /// A repeated step: its iterations, up to `concurrency` at a time, each
    /// with its own attempts. The step keeps the counts, the reports of the
    /// first failed iterations and, when every iteration passed, each
    /// capture as the list of the iterations' values.
    async fn repeated(
        &self,
        run: &StepRun<'_>,
        repeat: &Repeat,
        scope: &Scope,
        mut report: StepReport,
        started: Instant,
    ) -> Attempted {
        let step = run.step;
        let noted = scope.noted_len();
        let (count, items) = match self.iteration_items(repeat, scope) {
            Ok(found) => found,
            Err(e) => return errored(report, &e, started, scope, run.redactor),
        };
        // a list rendered from a secret makes each item secret
        let secret_items = scope.noted_len() > noted;
        // each iteration notes its own secrets, on top of what the step
        // knew before its first: iterations do not pile up each other's
        let base = with_noted(run.redactor, scope).into_owned();
        let run = &StepRun {
            step: run.step,
            executor: run.executor,
            timeout: run.timeout,
            max_body: run.max_body,
            redactor: &base,
        };
        let concurrency = usize::try_from(repeat.concurrency).unwrap_or(1).max(1);
        let mut iterations = Iterations {
            count,
            ..Iterations::default()
        };
        // each iteration's captures, by index, while all pass
        let mut captured: Vec<Vec<(String, Json)>> = Vec::new();
        if !step.captures.is_empty() {
            captured.resize_with(count, Vec::new);
        }
        let mut found = Found::default();
        let (mut any_failed, mut any_warned) = (false, false);
        let mut running = FuturesUnordered::new();
        let mut next = 0usize;
        loop {
            while running.len() < concurrency && next < count {
                let item = items.as_ref().map(|(name, list)| IterationItem {
                    name: name.clone(),
                    value: list[next].clone(),
                });
                running.push(self.iteration(run, scope, next, count, item, secret_items));
                next += 1;
            }
            let Some((index, item, done)) = running.next().await else {
                break;
            };
            let mut done: Attempted = done;
            report.attempts = report.attempts.max(done.report.attempts);
            // what a failed iteration found hides in its kept report too
            found.extend(std::mem::take(&mut done.found));
            match done.report.status {
                StepStatus::Failed | StepStatus::Errored => {
                    iterations.failed += 1;
                    any_failed |= done.report.status == StepStatus::Failed;
                    // the first failures by index, however the iterations
                    // finished: only `KEPT` reports are ever held
                    let at = iterations.failures.partition_point(|f| f.index < index);
                    if at < Iterations::KEPT {
                        iterations.failures.insert(
                            at,
                            IterationFailure {
                                index,
                                item,
                                report: done.report,
                            },
                        );
                        iterations.failures.truncate(Iterations::KEPT);
                    }
                }
                status => {
                    iterations.passed += 1;
                    if status == StepStatus::Warned {
                        any_warned = true;
                        iterations.warned += 1;
                        if iterations
                            .first_warning
                            .as_ref()
                            .is_none_or(|w| w.index > index)
                        {
                            iterations.first_warning = Some(Box::new(IterationFailure {
                                index,
                                item,
                                report: done.report,
                            }));
                        }
                    }
                    if let Some(slot) = captured.get_mut(index) {
                        *slot = done.captures;
                    }
                }
            }
        }
        report.status = if iterations.failed > 0 {
            if any_failed {
                StepStatus::Failed
            } else {
                StepStatus::Errored
            }
        } else if any_warned {
            StepStatus::Warned
        } else {
            StepStatus::Passed
        };
        let captures = if report.status.is_failure() {
            Vec::new()
        } else {
            step.captures
                .iter()
                .map(|c| {
                    let name = &c.name.name;
                    let values = captured
                        .iter()
                        .map(|values| {
                            values
                                .iter()
                                .find(|(n, _)| n == name)
                                .map_or(Json::Null, |(_, v)| v.clone())
                        })
                        .collect();
                    (name.clone(), Json::Array(values))
                })
                .collect()
        };
        report.captures.clone_from(&captures);
        report.iterations = Some(iterations);
        report.duration = started.elapsed();
        found.extend(Found::noted(scope));
        found.names.sort_unstable();
        found.names.dedup();
        Attempted {
            report,
            captures,
            found,
        }
    }

    /// How many iterations a repeated step has and, with `over`, the item's
    /// name and the rendered list.
    #[allow(
        clippy::type_complexity,
        reason = "a count and an optional named list, read once"
    )]
    fn iteration_items(
        &self,
        repeat: &Repeat,
        scope: &Scope,
    ) -> Result<(usize, Option<(String, Vec<Json>)>), StepError> {
        match &repeat.over {
            RepeatOver::Count(n) => Ok((usize::try_from(*n).unwrap_or(usize::MAX), None)),
            RepeatOver::Items { value, name, .. } => {
                let rendered = self.runner.renderer.render_value(value, scope)?.to_json();
                let Json::Array(list) = rendered else {
                    let found = match &rendered {
                        Json::Null => "null",
                        Json::Bool(_) => "a boolean",
                        Json::Number(_) => "a number",
                        Json::String(_) => "a string",
                        Json::Object(_) => "a table",
                        Json::Array(_) => "a list",
                    };
                    return Err(StepError::new(format!(
                        "`over` must give a list, but `{}` gave {found}",
                        value.as_str().unwrap_or("over")
                    ))
                    .at(value.span.clone())
                    .help("give `over` a list, or a template that renders to one, such as `{{ users }}` with `users = [\"alice\", \"bob\"]`"));
                };
                if list.len() > Repeat::MAX_COUNT as usize {
                    return Err(StepError::new(format!(
                        "`over` gave {} items, more than {} iterations",
                        list.len(),
                        Repeat::MAX_COUNT
                    ))
                    .at(value.span.clone()));
                }
                Ok((list.len(), Some((name.name.clone(), list))))
            }
        }
    }

    /// One iteration: the step's attempts with `repeat` and the item set.
    async fn iteration(
        &self,
        run: &StepRun<'_>,
        scope: &Scope,
        index: usize,
        count: usize,
        item: Option<IterationItem>,
        secret_item: bool,
    ) -> (usize, Option<IterationItem>, Attempted) {
        let mut scope = scope.clone();
        scope.set(
            Repeat::NAME,
            &serde_json::json!({ "index": index, "count": count }),
        );
        if let Some(item) = &item {
            scope.set(item.name.clone(), &item.value);
            if secret_item {
                scope.mark_secret(item.name.clone());
            }
        }
        scope.note_secrets();
        let label = IterationFailure::label_of(index, item.as_ref());
        let mut report = not_run(run.step, StepStatus::Passed, "");
        report.started = Instant::now().duration_since(self.started);
        let done = self.attempts(run, &scope, report, Some(&label)).await;
        (index, item, done)
    }

    /// Why the step's `if` skips it, when it does.
    fn skipped_by_condition(
        &self,
        step: &Step,
        scope: &Scope,
    ) -> Result<Option<String>, StepError> {
        let Some(when) = &step.when else {
            return Ok(None);
        };
        let run = self.runner.renderer.truthy(when, scope)?;
        Ok((!run).then(|| format!("`if = {}` is false", when.source)))
    }

    /// Checks an attempt's result against the step's expectations. A failed
    /// blocking expectation asks for another attempt unless this one was the
    /// last; otherwise the step's status, captures and result are settled,
    /// and a step that failed gets its evidence (`redactor` hides the
    /// secrets known so far).
    fn judge(
        &self,
        step: &Step,
        scope: &Scope,
        result: Json,
        report: &mut StepReport,
        last: bool,
        redactor: &Redactor,
    ) -> Judged {
        let checker = Checker::new(&self.runner.renderer, scope, &result);
        report.expectations = step
            .expect
            .iter()
            .flat_map(|e| checker.check_all(e))
            .collect();
        let blocking_failed = report.expectations.iter().find(|e| e.blocking && !e.passed);
        report.status = if let Some(f) = blocking_failed {
            if !last {
                return Judged::Again(f.message.clone());
            }
            StepStatus::Failed
        } else if report.expectations.iter().any(|e| !e.passed) {
            StepStatus::Warned
        } else {
            StepStatus::Passed
        };
        let mut redactor = with_noted(redactor, scope).into_owned();
        let captured = if report.status.is_failure() {
            Captured::default()
        } else {
            capture(step, &checker, report, scope, &redactor)
        };
        drop(checker);
        captured.found.teach(&mut redactor);
        // and what the captures' expressions made (known ones are kept as
        // they are, so the pattern is built again only for new ones)
        Found::noted(scope).teach(&mut redactor);
        // a request header that holds a secret says nothing else worth
        // keeping: `Basic ***` would still tell how it was made
        let mut result = result;
        if let Some(headers) = result.get_mut("request").and_then(|r| r.get_mut("headers")) {
            redactor.hide_whole_values(headers);
        }
        if report.status.is_failure() {
            // taken from the whole result: a trimmed one keeps only the
            // start of an output whose end is the evidence
            report.evidence = evidence::pick(step.kind, &result, &report.expectations, &redactor);
        }
        report.captures.clone_from(&captured.values);
        // secrets are hidden before the cut, so that a cut never leaves a
        // part of one that redaction would no longer recognise
        redactor.json(&mut result);
        report.result = Some(trim_result(result));
        // the messages and captures, by what this step made secret too
        redactor.report(report);
        Judged::Over(captured)
    }

    /// Announces another attempt.
    fn retrying(&self, step: &Step, attempt: u32, reason: &str, delay: Duration) {
        let _ = self.events.send(RunEvent::StepRetrying {
            spec: self.index,
            step: step.index,
            attempt,
            reason: reason.to_string(),
            delay,
        });
    }

    /// One attempt: the configuration rendered, the executor run under the
    /// step's time limit.
    async fn once(&self, run: &StepRun<'_>, scope: &Scope) -> Result<Json, StepError> {
        let (step, timeout) = (run.step, run.timeout);
        let config = self.runner.renderer.render_value(&step.config, scope)?;
        // what the kind holds secret however it is written (a password)
        for (secret, _) in step.kind.secrets(&config) {
            scope.note_secret(secret);
        }
        let matchers = self
            .runner
            .renderer
            .render_matchers(&step.config_matchers, scope)?;
        let observe = self.runner.options.observe;
        let input = StepInput {
            config: &config,
            raw: &step.config,
            matchers: &matchers,
            ctx: self.ctx,
            step_id: &step.id,
            timeout,
            max_body: run.max_body,
            observer: Observer {
                tx: observe.then(|| self.events.clone()),
                spec: self.index,
                step: step.index,
                redactor: observe
                    .then(|| with_noted(run.redactor, scope).into_owned())
                    .filter(|r| !r.is_empty())
                    .map(Arc::new),
            },
        };
        let started = Instant::now();
        // executors end themselves at `timeout` with a message that says what
        // they were waiting for; the grace lets them, and stops one that does not
        let guard = timeout + EXECUTOR_GRACE;
        let mut result = match tokio::time::timeout(guard, run.executor.execute(input)).await {
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

/// The pause after `delay`: grown by the backoff factor, at most the longest
/// pause. Any factor is taken without panicking: a product too large for a
/// duration (or infinite) gives the longest pause, a negative one no pause,
/// and one that is no number (`0 × inf`) leaves the pause as it was.
fn next_delay(delay: Duration, retry: Option<&Retry>) -> Duration {
    let Some(r) = retry else {
        return delay;
    };
    // `Duration::mul_f64` panics on such products, and a retry must not
    // take planrun down
    let secs = delay.as_secs_f64() * r.backoff;
    let next = if secs.is_nan() {
        delay
    } else {
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
    };
    next.min(r.max_interval)
}

/// The end of a step that could not be performed, its error hidden by
/// `base` and what the step's templates made secret before that.
fn errored(
    mut report: StepReport,
    e: &StepError,
    started: Instant,
    scope: &Scope,
    base: &Redactor,
) -> Attempted {
    report.status = StepStatus::Errored;
    report.error = Some(failure(e));
    report.duration = started.elapsed();
    with_noted(base, scope).report(&mut report);
    Attempted {
        report,
        captures: Vec::new(),
        found: Found::noted(scope),
    }
}

/// The step's captures, in order. The first that cannot be read errors the
/// step; the values read before it are kept. A capture is secret when it
/// is marked so, when its expression reads a secret, or when its value
/// holds one (`redactor` knows the secrets so far).
fn capture(
    step: &Step,
    checker: &Checker<'_>,
    report: &mut StepReport,
    scope: &Scope,
    redactor: &Redactor,
) -> Captured {
    let mut captured = Captured::default();
    for c in &step.captures {
        match checker.capture(c) {
            Ok(v) => {
                let name = c.name.name.clone();
                if c.secret {
                    captured.found.secrets.push(v.clone());
                    captured.found.names.push(name.clone());
                } else if reads_secret(c, scope) || redactor.finds_in_json(&v) {
                    captured.found.derived.push(v.clone());
                    captured.found.names.push(name.clone());
                }
                captured.values.push((name, v));
            }
            Err(e) => {
                report.status = StepStatus::Errored;
                report.error = Some(failure(&e));
                break;
            }
        }
    }
    captured
}

/// Whether a capture's expression reads a secret (`{{ result.json.id ~ token }}`).
fn reads_secret(c: &Capture, scope: &Scope) -> bool {
    match &c.target {
        Target::Expr(t) => scope.reads_secret(t.refs.iter().map(String::as_str)),
        Target::Path { .. } | Target::Header(_) => false,
    }
}

/// Cuts long bodies so reports stay readable; the full body was used for
/// checks. The request's body, a copy of what the spec sent, keeps less.
fn trim_result(mut result: Json) -> Json {
    const LIMIT: usize = 64 * 1024;
    const REQUEST_LIMIT: usize = 16 * 1024;
    fn cut(s: &mut String, limit: usize) {
        if s.len() <= limit {
            return;
        }
        let mut at = limit;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        let total = s.len();
        s.truncate(at);
        let _ = write!(s, "… ({total} bytes in all)");
    }
    if let Json::Object(map) = &mut result {
        for key in ["body", "stdout", "stderr"] {
            if let Some(Json::String(s)) = map.get_mut(key) {
                cut(s, LIMIT);
            }
        }
        if let Some(Json::String(s)) = map.get_mut("request").and_then(|r| r.get_mut("body")) {
            cut(s, REQUEST_LIMIT);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use planrun_spec::model::Retry;

    use super::{next_delay, trim_result};
    use crate::redact::Redactor;

    fn retry(backoff: f64) -> Retry {
        Retry {
            attempts: 5,
            interval: Duration::from_millis(100),
            backoff,
            max_interval: Duration::from_secs(5),
            timeout: None,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_pause_grows_by_the_backoff_up_to_the_longest_pause() {
        assert_eq!(next_delay(ms(100), Some(&retry(2.0))), ms(200));
        assert_eq!(next_delay(ms(100), Some(&retry(1.5))), ms(150));
        assert_eq!(next_delay(ms(100), Some(&retry(1.0))), ms(100));
        assert_eq!(next_delay(ms(4000), Some(&retry(2.0))), ms(5000));
        assert_eq!(next_delay(ms(100), None), ms(100));
    }

    #[test]
    fn any_backoff_gives_a_pause_without_panicking() {
        let longest = ms(5000);
        for backoff in [f64::INFINITY, 1e20, f64::MAX] {
            assert_eq!(
                next_delay(ms(100), Some(&retry(backoff))),
                longest,
                "{backoff}"
            );
            assert_eq!(
                next_delay(longest, Some(&retry(backoff))),
                longest,
                "{backoff}"
            );
        }
        // no pause stays no pause, even for an infinite factor (0 × inf is NaN)
        assert_eq!(
            next_delay(Duration::ZERO, Some(&retry(f64::INFINITY))),
            Duration::ZERO
        );
        assert_eq!(next_delay(ms(100), Some(&retry(f64::NAN))), ms(100));
        assert_eq!(next_delay(ms(100), Some(&retry(-2.0))), Duration::ZERO);
        assert_eq!(
            next_delay(ms(100), Some(&retry(f64::NEG_INFINITY))),
            Duration::ZERO
        );
        let mut unbounded = retry(f64::INFINITY);
        unbounded.max_interval = Duration::MAX;
        assert_eq!(next_delay(ms(100), Some(&unbounded)), Duration::MAX);
    }

    #[test]
    fn a_cut_never_leaves_part_of_a_secret() {
        // a secret that straddles the request body's cut
        let secret = "s3cr3t-p4ssw0rd";
        let body = format!("{}{secret}{}", "x".repeat(16 * 1024 - 4), "y".repeat(100));
        let mut result = serde_json::json!({ "request": { "body": body } });
        let mut redactor = Redactor::default();
        redactor.add(secret);
        redactor.json(&mut result);
        let trimmed = trim_result(result);
        let kept = trimmed["request"]["body"].as_str().unwrap_or_default();
        assert!(!kept.contains("s3cr"), "{}", &kept[kept.len() - 40..]);
        assert!(kept.ends_with("bytes in all)"), "the body is cut");
    }
}
