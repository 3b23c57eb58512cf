//! The scheduler: walks each plan's step graph, running independent steps
//! concurrently and specs side by side under `-j N`.
//!
//! Retries, time limits, `if`, teardown (`always`) and cancellation live
//! here, never in executors. The scheduler never prints: it emits events.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use planrun_spec::model::{Defaults, Overrides, Step};
use planrun_spec::plan::Plan;
use serde_json::Value as Json;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

use crate::events::{
    RunEvent, RunSummary, SpecInfo, SpecReport, SpecStatus, StepFailure, StepInfo, StepReport,
    StepStatus,
};
use crate::executor::{Observer, Registry, SpecContext, StepError, StepInput};
use crate::expect::Checker;
use crate::redact::Redactor;
use crate::render::{Renderer, Scope};

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Specs run at the same time.
    pub jobs: usize,
    /// Stop starting new work after the first failure.
    pub fail_fast: bool,
    /// Values from the command line.
    pub overrides: Overrides,
    /// The environment templates see as `env` (process environment plus `--env-file`).
    pub env: BTreeMap<String, String>,
    /// Send executors' observations (each event of a stream) to reporters;
    /// off, executors skip them.
    pub observe: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            jobs: 1,
            fail_fast: false,
            overrides: Overrides::default(),
            env: std::env::vars().collect(),
            observe: true,
        }
    }
}

/// A signal that stops a run: new work is not started, running steps are
/// dropped, teardown steps still run.
#[derive(Clone)]
pub struct Cancel {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Cancel {
    fn default() -> Self {
        let (tx, rx) = watch::channel(false);
        Self {
            tx: Arc::new(tx),
            rx,
        }
    }
}

impl Cancel {
    /// Stops the run.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the run was stopped.
    pub fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the run is stopped.
    pub async fn cancelled(&self) {
        let mut rx = self.rx.clone();
        // an error means the sender is gone: then nobody can cancel any more
        if rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs plans and reports through events.
pub struct Runner {
    registry: Registry,
    options: RunOptions,
    renderer: Renderer,
}

impl Runner {
    /// A runner over a set of executors.
    pub fn new(registry: Registry, options: RunOptions) -> Self {
        Self {
            registry,
            options,
            renderer: Renderer::new(),
        }
    }

    /// The info reporters get about a plan.
    pub fn spec_info(index: usize, plan: &Plan) -> SpecInfo {
        let spec = &plan.spec;
        SpecInfo {
            index,
            id: spec.id.clone(),
            name: spec.name.clone(),
            objective: spec.objective.clone(),
            path: spec.source.path.clone(),
            source: Arc::clone(&spec.source),
            priority: spec.priority,
            tags: spec.tags.clone(),
            phase: spec.phase.clone(),
            steps: spec
                .steps
                .iter()
                .map(|s| StepInfo {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    kind: s.kind,
                    always: s.always,
                })
                .collect(),
        }
    }

    /// Runs every plan; events go to `events`. Returns the totals.
    pub async fn run(
        &self,
        plans: &[Plan],
        events: &UnboundedSender<RunEvent>,
        cancel: &Cancel,
    ) -> RunSummary {
        let started = Instant::now();
        let _ = events.send(RunEvent::RunStarted {
            specs: plans
                .iter()
                .enumerate()
                .map(|(i, p)| Self::spec_info(i, p))
                .collect(),
        });
        let jobs = self.options.jobs.max(1);
        // `buffer_unordered` by hand: through stream combinators the run's
        // future cannot be proved `Send`, so it could not be spawned
        let mut queued = plans.iter().enumerate();
        let mut running = FuturesUnordered::new();
        let mut reports: Vec<SpecReport> = Vec::with_capacity(plans.len());
        loop {
            while running.len() < jobs {
                let Some((i, plan)) = queued.next() else {
                    break;
                };
                running.push(self.run_spec(i, plan, events, cancel));
            }
            match running.next().await {
                Some(report) => reports.push(report),
                None => break,
            }
        }
        reports.sort_by_key(|r| r.index);
        let mut summary = RunSummary {
            duration: started.elapsed(),
            interrupted: cancel.is_cancelled(),
            ..RunSummary::default()
        };
        for r in &reports {
            match r.status {
                SpecStatus::Passed => summary.passed += 1,
                SpecStatus::Failed => summary.failed += 1,
                SpecStatus::Cancelled => summary.cancelled += 1,
            }
            summary.warnings += r.warnings();
        }
        let _ = events.send(RunEvent::RunFinished {
            report: summary.clone(),
        });
        summary
    }

    async fn run_spec(
        &self,
        index: usize,
        plan: &Plan,
        events: &UnboundedSender<RunEvent>,
        cancel: &Cancel,
    ) -> SpecReport {
        let started = Instant::now();
        let spec = &plan.spec;
        let _ = events.send(RunEvent::SpecStarted { spec: index });
        let defaults = spec.defaults.or(&plan.dir.defaults);
        let ctx = SpecContext::new(spec.source.dir());
        let mut redactor = Redactor::default();
        let mut run = SpecRun {
            env: Env {
                runner: self,
                plan,
                index,
                events,
                ctx: &ctx,
                defaults: &defaults,
                started,
            },
            state: State {
                scope: Scope::default(),
                redactor: Redactor::default(),
                statuses: vec![None; spec.steps.len()],
                blocked: vec![false; spec.steps.len()],
                reports: Vec::new(),
            },
            stop: cancel.clone(),
        };
        let mut error = None;
        match resolve_vars(plan, &self.options, &self.renderer, &mut redactor) {
            Ok(scope) => {
                run.state.scope = scope;
                run.state.redactor = redactor;
                let limit = defaults.spec_timeout.unwrap_or(Defaults::SPEC_TIMEOUT);
                let spec_stop = Cancel::default();
                run.stop = spec_stop.clone();
                let outer = cancel.clone();
                let fail_fast = self.options.fail_fast;
                let watcher = async {
                    tokio::select! {
                        () = outer.cancelled() => {}
                        () = tokio::time::sleep(limit) => {
                            error = Some(format!("the spec did not finish within its time limit of {}", planrun_spec::duration::Dur(limit)));
                        }
                    }
                    spec_stop.cancel();
                };
                tokio::select! {
                    () = run.walk(fail_fast.then_some(cancel)) => {}
                    () = async { watcher.await; std::future::pending::<()>().await } => {}
                }
            }
            Err(e) => {
                // nothing can start: the first step carries the error (it points
                // at the variable), the others are skipped
                for step in &spec.steps {
                    let mut report = not_run(
                        step,
                        StepStatus::Skipped,
                        "the spec's variables did not render",
                    );
                    if step.index == 0 {
                        report.status = StepStatus::Errored;
                        report.skip_reason = None;
                        report.error = Some(failure(&e));
                    }
                    run.state.finish(&run.env, report, Vec::new(), &[]);
                }
            }
        }
        ctx.cleanup().await;
        let mut steps = std::mem::take(&mut run.state.reports);
        steps.sort_by_key(|s| s.index);
        let failed = steps.iter().any(|s| s.status.is_failure()) || error.is_some();
        let status = if cancel.is_cancelled() && !failed {
            SpecStatus::Cancelled
        } else if failed || run.stop.is_cancelled() {
            SpecStatus::Failed
        } else {
            SpecStatus::Passed
        };
        let report = SpecReport {
            index,
            id: spec.id.clone(),
            status,
            duration: started.elapsed(),
            steps,
            error: error.map(|e| run.state.redactor.text(&e)),
        };
        let _ = events.send(RunEvent::SpecFinished {
            spec: index,
            report: report.clone(),
        });
        report
    }
}

fn not_run(step: &Step, status: StepStatus, reason: &str) -> StepReport {
    StepReport {
        index: step.index,
        id: step.id.clone(),
        name: step.name.clone(),
        kind: step.kind,
        status,
        attempts: 0,
        started: Duration::ZERO,
        duration: Duration::ZERO,
        expectations: Vec::new(),
        error: None,
        skip_reason: (!reason.is_empty()).then(|| reason.to_string()),
        result: None,
        captures: Vec::new(),
        always: step.always,
    }
}

/// Variables in precedence order: directory, spec, environment override,
/// command line. Values may be templates over `env` and earlier variables.
fn resolve_vars(
    plan: &Plan,
    options: &RunOptions,
    renderer: &Renderer,
    redactor: &mut Redactor,
) -> Result<Scope, StepError> {
    let mut scope = Scope::default();
    scope.set(
        "env",
        &serde_json::to_value(&options.env).unwrap_or(Json::Null),
    );
    // `{{ planrun }}` is this program, so a spec can start `planrun demo`
    if let Ok(exe) = std::env::current_exe() {
        scope.set("planrun", &Json::String(exe.display().to_string()));
    }
    // command-line values come first so that other variables can build on them
    for (k, v) in &options.overrides.vars {
        let marked = plan
            .spec
            .vars
            .iter()
            .chain(&plan.dir.vars)
            .any(|d| d.secret && &d.name.name == k);
        if marked || options.overrides.secret_vars.contains(k) {
            redactor.add(v);
        }
        scope.set(k.clone(), &Json::String(v.clone()));
    }
    for var in plan.dir.vars.iter().chain(&plan.spec.vars) {
        if options.overrides.vars.contains_key(&var.name.name) {
            continue;
        }
        let from_env = var
            .env
            .as_ref()
            .and_then(|name| options.env.get(name).cloned());
        let value = match (from_env, &var.value) {
            (Some(v), _) => Json::String(v),
            (None, Some(v)) => renderer.render_value(v, &scope)?.to_json(),
            (None, None) => {
                return Err(StepError::new(format!(
                    "variable `{}` reads the environment variable `{}`, which is not set",
                    var.name.name,
                    var.env.as_deref().unwrap_or("?")
                ))
                .at(var.name.span.clone())
                .help("set it, pass `--var NAME=VALUE`, or give the variable a `value` to fall back on"));
            }
        };
        if var.secret || options.overrides.secret_vars.contains(&var.name.name) {
            redactor.add_json(&value);
        }
        scope.set(var.name.name.clone(), &value);
    }
    Ok(scope)
}

struct SpecRun<'a> {
    env: Env<'a>,
    state: State,
    stop: Cancel,
}

/// The parts of a spec run that finished steps change.
struct State {
    scope: Scope,
    redactor: Redactor,
    statuses: Vec<Option<StepStatus>>,
    /// Steps not run because a need failed (their dependents are not run either).
    blocked: Vec<bool>,
    reports: Vec<Arc<StepReport>>,
}

/// What every step of a spec run reads and nobody changes.
struct Env<'a> {
    runner: &'a Runner,
    plan: &'a Plan,
    index: usize,
    events: &'a UnboundedSender<RunEvent>,
    ctx: &'a SpecContext,
    defaults: &'a Defaults,
    started: Instant,
}

struct Attempted {
    report: StepReport,
    captures: Vec<(String, Json)>,
    secrets: Vec<Json>,
}

impl SpecRun<'_> {
    /// Runs steps as their needs finish: a step starts once every step it
    /// needs has ended. With the spec stopped, only teardown steps start; the
    /// others are marked cancelled.
    async fn walk(&mut self, fail_fast: Option<&Cancel>) {
        let env = &self.env;
        let steps = &env.plan.spec.steps;
        let deps = &env.plan.deps;
        // how many needs of each step are still unfinished, and who waits on whom
        let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
        for (i, needs) in deps.iter().enumerate() {
            for &d in needs {
                dependents[d].push(i);
            }
        }
        let mut ready: BTreeSet<usize> = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
        let release = |i: usize, waiting: &mut Vec<usize>, ready: &mut BTreeSet<usize>| {
            for &j in &dependents[i] {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.insert(j);
                }
            }
        };
        let mut running = FuturesUnordered::new();
        let mut in_flight: BTreeSet<usize> = BTreeSet::new();
        loop {
            let stopped = self.stop.is_cancelled();
            while let Some(i) = ready.pop_first() {
                let step = &steps[i];
                if let Some((status, why)) = self.state.blocked_by(env, step, stopped) {
                    self.state.blocked[i] = true;
                    self.state
                        .finish(env, not_run(step, status, &why), Vec::new(), &[]);
                    release(i, &mut waiting, &mut ready);
                    continue;
                }
                in_flight.insert(i);
                let scope = self.state.scope.clone();
                running.push(env.attempt_step(step, scope, self.state.redactor.clone()));
            }
            if running.is_empty() {
                break;
            }
            let stop = self.stop.clone();
            tokio::select! {
                Some(done) = running.next() => {
                    let done: Attempted = done;
                    if done.report.status.is_failure()
                        && let Some(c) = fail_fast {
                            c.cancel();
                        }
                    let i = done.report.index;
                    in_flight.remove(&i);
                    self.state.finish(env, done.report, done.captures, &done.secrets);
                    release(i, &mut waiting, &mut ready);
                }
                () = stop.cancelled(), if !stopped => {
                    // running steps are dropped (their futures cancelled)
                    drop(running);
                    running = FuturesUnordered::new();
                    for i in std::mem::take(&mut in_flight) {
                        let report = not_run(&steps[i], StepStatus::Cancelled, "the run was stopped while it ran");
                        self.state.finish(env, report, Vec::new(), &[]);
                        release(i, &mut waiting, &mut ready);
                    }
                }
            }
        }
    }
}

impl State {
    /// Why `step` must not run, if it must not: the run was stopped, or a step
    /// it needs did not pass. Teardown (`always`) steps always run.
    fn blocked_by(
        &self,
        env: &Env<'_>,
        step: &Step,
        stopped: bool,
    ) -> Option<(StepStatus, String)> {
        if step.always {
            return None;
        }
        if stopped {
            return Some((StepStatus::Cancelled, String::from("the run was stopped")));
        }
        let steps = &env.plan.spec.steps;
        env.plan.deps[step.index]
            .iter()
            .find_map(|&d| match self.statuses[d] {
                Some(StepStatus::Passed | StepStatus::Warned) => None,
                // skipped by its own `if`: satisfied; skipped for a failed need: not
                Some(StepStatus::Skipped) if !self.blocked[d] => None,
                Some(StepStatus::Cancelled) => Some((
                    StepStatus::Cancelled,
                    format!("needs `{}`, which was cancelled", steps[d].id),
                )),
                _ => Some((
                    StepStatus::Skipped,
                    format!("needs `{}`, which did not pass", steps[d].id),
                )),
            })
    }

    /// Records a finished step: its captures, its status, and the event.
    fn finish(
        &mut self,
        env: &Env<'_>,
        mut report: StepReport,
        captures: Vec<(String, Json)>,
        secrets: &[Json],
    ) {
        for s in secrets {
            self.redactor.add_json(s);
        }
        let step = &env.plan.spec.steps[report.index];
        if !captures.is_empty() {
            let map: serde_json::Map<String, Json> = captures.into_iter().collect();
            self.scope.set(step.id.clone(), &Json::Object(map));
        }
        self.statuses[report.index] = Some(report.status);
        self.redactor.report(&mut report);
        let report = Arc::new(report);
        let _ = env.events.send(RunEvent::StepFinished {
            spec: env.index,
            report: Arc::clone(&report),
        });
        self.reports.push(report);
    }
}

impl Env<'_> {
    /// One step: its condition, its attempts, its expectations and captures.
    async fn attempt_step(&self, step: &Step, scope: Scope, redactor: Redactor) -> Attempted {
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
        let matchers = self
            .runner
            .renderer
            .render_matchers(&step.config_matchers, scope)?;
        let input = StepInput {
            config: &config,
            matchers: &matchers,
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

fn failure(e: &StepError) -> StepFailure {
    StepFailure {
        message: e.message.clone(),
        span: e.span.clone(),
        help: e.help.clone(),
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
