//! The scheduler: runs plans, specs side by side under `-j N`, each spec's
//! step graph walked with independent steps running concurrently.
//!
//! This module owns the run as a whole (queueing specs, the totals) and the
//! frame around one spec's walk: its variables, time limit, cleanup and
//! status. Retries, time limits, `if`, teardown (`always`) and cancellation
//! live in the scheduler, never in executors. The scheduler never prints and
//! knows nothing of HTTP or processes: it emits events.

mod attempt;
mod cancel;
mod evidence;
mod setup;
mod specs;
#[cfg(test)]
mod tests;
mod vars;
mod walk;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use planrun_spec::model::{Defaults, Overrides, Step};
use planrun_spec::plan::Plan;
use planrun_spec::source::SourceFile;
use tokio::sync::mpsc::UnboundedSender;

pub use self::cancel::Cancel;
use self::specs::Head;
pub use self::specs::{Specs, Unplanned};
use self::vars::resolve_vars;
use self::walk::{SpecRun, State};
use crate::events::{
    RunEvent, RunSummary, SpecInfo, SpecReport, SpecStatus, StepCounts, StepFailure, StepInfo,
    StepReport, StepStatus, StepTally,
};
use crate::executor::{Registry, SpecContext, StepError};
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
                    insecure: spec.step(s.index).is_ok_and(|s| s.kind.insecure(&s.config)),
                    source: Some(spec.step_source(s.index))
                        .filter(|f| !Arc::ptr_eq(f, &spec.source))
                        .cloned(),
                })
                .collect(),
        }
    }

    /// Stars the secrets known before the run (command-line and environment
    /// values of secret variables, literal secret values, `basic_auth`
    /// passwords) in the spec text that reporters quote in snippets, byte
    /// for byte so that every span still fits. Secrets found later (a
    /// capture) are not in the spec's text.
    fn hide_in_sources(&self, plan: &Plan, info: &mut SpecInfo) {
        let options = &self.options;
        let vars = || plan.dir.vars.iter().chain(&plan.spec.vars);
        let is_secret = |name: &str| {
            options.overrides.secret_vars.iter().any(|s| s == name)
                || vars().any(|v| v.secret && v.name.name == name)
        };
        let mut redactor = Redactor::default();
        for (name, value) in &options.overrides.vars {
            if is_secret(name) {
                redactor.add(value);
            }
        }
        for var in vars().filter(|v| is_secret(&v.name.name)) {
            if let Some(value) = var.env.as_ref().and_then(|e| options.env.get(&e.name)) {
                redactor.add(value);
            }
            if let Some(value) = &var.value {
                value.visit_strings(&mut |s, _| {
                    if !planrun_spec::is_template(s) {
                        redactor.add(s);
                    }
                });
            }
        }
        for step in (0..plan.spec.steps.len()).filter_map(|i| plan.spec.step(i).ok()) {
            for (secret, _) in step.kind.secrets(&step.config) {
                if !planrun_spec::is_template(&secret) {
                    redactor.add(&secret);
                }
            }
        }
        if redactor.is_empty() {
            return;
        }
        let mut starred: Vec<(*const SourceFile, Arc<SourceFile>)> = Vec::new();
        let mut hide = |source: &mut Arc<SourceFile>| {
            let key = Arc::as_ptr(source);
            if let Some((_, done)) = starred.iter().find(|(k, _)| *k == key) {
                *source = Arc::clone(done);
                return;
            }
            if let Some(text) = redactor.star(&source.text) {
                let hidden = Arc::new(SourceFile::new(source.path.clone(), text, source.format));
                starred.push((key, Arc::clone(&hidden)));
                *source = hidden;
            }
        };
        hide(&mut info.source);
        for step in &mut info.steps {
            if let Some(source) = &mut step.source {
                hide(source);
            }
        }
    }

    /// Runs every spec; events go to `events`. Returns the totals.
    ///
    /// Each spec is planned (or borrowed) once to announce it, and again
    /// when it starts: between the two, only its announcement is held.
    pub async fn run(
        &self,
        plans: &dyn Specs,
        events: &UnboundedSender<RunEvent>,
        cancel: &Cancel,
    ) -> RunSummary {
        let started = Instant::now();
        let mut heads = Vec::with_capacity(plans.len());
        let mut infos = Vec::with_capacity(plans.len());
        // what each spec was announced with: a spec planned again must match
        let mut announced = Vec::with_capacity(plans.len());
        for i in 0..plans.len() {
            match plans.plan(i) {
                Ok(plan) => {
                    let mut info = Self::spec_info(i, &plan);
                    self.hide_in_sources(&plan, &mut info);
                    announced.push(info.steps.len());
                    infos.push(info);
                    heads.push(Head {
                        dir: Arc::clone(&plan.dir),
                        path: plan.spec.source.path.clone(),
                    });
                }
                Err(unplanned) => {
                    announced.push(0);
                    infos.push(unplanned_info(i, &unplanned));
                    heads.push(Head {
                        dir: Arc::default(),
                        path: unplanned.source.path.clone(),
                    });
                }
            }
        }
        let _ = events.send(RunEvent::RunStarted {
            specs: infos.into(),
        });
        let jobs = self.options.jobs.max(1);
        // a directory's specs wait for its setup, and its teardown for them;
        // otherwise specs start in order as slots free up
        let mut dirs = self::setup::Dirs::new(&heads);
        drop(heads);
        // a teardown's own stop signal: the run's may be set by then
        let to_the_end: Vec<Cancel> = (0..plans.len()).map(|_| Cancel::default()).collect();
        let mut queued: Vec<usize> = (0..plans.len()).collect();
        // `buffer_unordered` by hand: through stream combinators the run's
        // future cannot be proved `Send`, so it could not be spawned
        let mut running = FuturesUnordered::new();
        // the totals only: reporters keep what they need of each spec
        let mut summary = RunSummary::default();
        let mut count = |report: &SpecReport| {
            match report.status {
                SpecStatus::Passed => summary.passed += 1,
                SpecStatus::Failed => summary.failed += 1,
                SpecStatus::Cancelled => summary.cancelled += 1,
            }
            summary.warnings += report.warnings();
            summary.internal_errors += report.internal_errors();
        };
        loop {
            let mut k = 0;
            while k < queued.len() {
                let i = queued[k];
                let stop = match dirs.start(i) {
                    self::setup::Start::Wait => {
                        k += 1;
                        continue;
                    }
                    self::setup::Start::Skip(reason) => {
                        queued.remove(k);
                        let report = skipped(i, plans, &reason, events);
                        dirs.finished(i, report.status);
                        count(&report);
                        // that may have let an earlier one through
                        k = 0;
                        continue;
                    }
                    // given up on: a directory's teardown does not start either
                    _ if cancel.is_abandoned() => {
                        queued.remove(k);
                        let report = skipped(i, plans, "the run was stopped", events);
                        dirs.finished(i, report.status);
                        count(&report);
                        k = 0;
                        continue;
                    }
                    self::setup::Start::Run => cancel,
                    self::setup::Start::RunToTheEnd => &to_the_end[i],
                };
                if running.len() >= jobs {
                    break;
                }
                queued.remove(k);
                running.push(self.start_spec(i, plans, announced[i], events, stop, cancel));
            }
            match running.next().await {
                Some(report) => {
                    dirs.finished(report.index, report.status);
                    count(&report);
                }
                None if queued.is_empty() => break,
                // every queued spec waits for one that is not queued: not
                // possible with a setup, members and a teardown, but a
                // spec must not be lost if it were
                None => {
                    let i = queued.remove(0);
                    running.push(self.start_spec(i, plans, announced[i], events, cancel, cancel));
                }
            }
        }
        // what kinds keep for the whole run (containers) goes now
        for executor in self.registry.executors() {
            executor.end_of_run().await;
        }
        summary.duration = started.elapsed();
        summary.interrupted = cancel.is_cancelled();
        let _ = events.send(RunEvent::RunFinished {
            report: summary.clone(),
        });
        summary
    }

    /// Plans spec `index` again (or borrows its plan) and runs it, when it
    /// still has the `steps` it was announced with.
    async fn start_spec(
        &self,
        index: usize,
        plans: &dyn Specs,
        steps: usize,
        events: &UnboundedSender<RunEvent>,
        cancel: &Cancel,
        abandon: &Cancel,
    ) -> SpecReport {
        let planned = plans.plan(index).and_then(|plan| {
            if plan.spec.steps.len() == steps {
                return Ok(plan);
            }
            let now = plan.spec.steps.len();
            Err(Unplanned {
                id: plan.spec.id.clone(),
                source: Arc::clone(&plan.spec.source),
                message: format!(
                    "the spec changed during the run: it has {now} step{} now, {steps} when it was checked (a file it includes changed?)",
                    if now == 1 { "" } else { "s" }
                ),
            })
        });
        match planned {
            Ok(plan) => self.run_spec(index, &plan, events, cancel, abandon).await,
            Err(unplanned) => {
                let message = unplanned.message.clone();
                no_plan(index, unplanned, SpecStatus::Failed, Some(message), events)
            }
        }
    }

    /// Runs one spec: `cancel` stops it (its teardown steps still run),
    /// `abandon` (the run's) gives up its teardown too.
    async fn run_spec(
        &self,
        index: usize,
        plan: &Plan,
        events: &UnboundedSender<RunEvent>,
        cancel: &Cancel,
        abandon: &Cancel,
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
                tally: StepTally::for_steps(spec.steps.len()),
            },
            stop: cancel.clone(),
        };
        let mut error = None;
        let vars = resolve_vars(plan, &self.options, &self.renderer, &mut redactor);
        // the secrets known so far hide in an error about the variables too
        run.state.redactor = redactor;
        match vars {
            Ok(scope) => {
                run.state.scope = scope;
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
                    // running steps, teardown ones too, are dropped
                    () = abandon.abandoned() => {}
                }
                if abandon.is_abandoned() {
                    for step in &spec.steps {
                        if run.state.statuses[step.index].is_none() {
                            let report = not_run(
                                step,
                                StepStatus::Cancelled,
                                "the run was stopped twice: teardown was given up",
                            );
                            run.state.finish(
                                &run.env,
                                report,
                                Vec::new(),
                                &attempt::Found::default(),
                            );
                        }
                    }
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
                    run.state
                        .finish(&run.env, report, Vec::new(), &attempt::Found::default());
                }
            }
        }
        ctx.cleanup().await;
        let counts = run.state.tally.counts();
        let failed = counts.failures() > 0 || error.is_some();
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
            counts,
            error: error.map(|e| run.state.redactor.text(&e)),
        };
        let _ = events.send(RunEvent::SpecFinished {
            spec: index,
            report: report.clone(),
        });
        report
    }
}

/// Spec `index`, which no longer plans, started and ended at once with
/// `status` and `error`: it has no steps to run or skip.
fn no_plan(
    index: usize,
    unplanned: Unplanned,
    status: SpecStatus,
    error: Option<String>,
    events: &UnboundedSender<RunEvent>,
) -> SpecReport {
    let _ = events.send(RunEvent::SpecStarted { spec: index });
    let report = SpecReport {
        index,
        id: unplanned.id,
        status,
        duration: Duration::ZERO,
        counts: StepCounts::default(),
        error,
    };
    let _ = events.send(RunEvent::SpecFinished {
        spec: index,
        report: report.clone(),
    });
    report
}

/// The announcement of a spec that no longer plans: no steps, its error
/// given when it starts.
fn unplanned_info(index: usize, unplanned: &Unplanned) -> SpecInfo {
    SpecInfo {
        index,
        id: unplanned.id.clone(),
        name: None,
        objective: None,
        path: unplanned.source.path.clone(),
        source: Arc::clone(&unplanned.source),
        priority: planrun_spec::model::Priority::default(),
        tags: Vec::new(),
        phase: None,
        steps: Vec::new(),
    }
}

/// A spec not run because its directory's setup did not pass (or the
/// run was given up): each step skipped for `reason`, the spec
/// cancelled.
fn skipped(
    index: usize,
    plans: &dyn Specs,
    reason: &str,
    events: &UnboundedSender<RunEvent>,
) -> SpecReport {
    let plan = match plans.plan(index) {
        Ok(plan) => plan,
        Err(unplanned) => {
            return no_plan(index, unplanned, SpecStatus::Cancelled, None, events);
        }
    };
    skipped_plan(index, &plan, reason, events)
}

/// Spec `index`, not run: each step skipped for `reason`, the spec
/// cancelled.
fn skipped_plan(
    index: usize,
    plan: &Plan,
    reason: &str,
    events: &UnboundedSender<RunEvent>,
) -> SpecReport {
    let _ = events.send(RunEvent::SpecStarted { spec: index });
    let mut tally = StepTally::default();
    for step in &plan.spec.steps {
        let report = not_run(step, StepStatus::Skipped, reason);
        tally.record(&report);
        let _ = events.send(RunEvent::StepFinished {
            spec: index,
            report: Arc::new(report),
            result: None,
        });
    }
    let report = SpecReport {
        index,
        id: plan.spec.id.clone(),
        status: SpecStatus::Cancelled,
        duration: Duration::ZERO,
        counts: tally.counts(),
        error: None,
    };
    let _ = events.send(RunEvent::SpecFinished {
        spec: index,
        report: report.clone(),
    });
    report
}

/// The report of a step that did not run (the starting point of one that does).
fn not_run(step: &Step, status: StepStatus, reason: &str) -> StepReport {
    StepReport::not_run(
        step.index,
        (step.id.clone(), step.name.clone()),
        step.kind,
        step.always,
        status,
        reason,
    )
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

/// An error as reports carry it.
fn failure(e: &StepError) -> StepFailure {
    StepFailure {
        kind: e.kind,
        message: e.message.clone(),
        span: e.span.clone(),
        help: e.help.clone(),
    }
}
