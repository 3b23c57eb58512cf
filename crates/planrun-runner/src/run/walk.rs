//! The walk over one spec's step graph: which step may start, which must
//! not, and recording each as it finishes.
//!
//! Owns readiness (a step starts once everything it needs has ended),
//! skipping dependants of a failed step, cancelling when the spec is stopped,
//! and letting teardown (`always`) steps through regardless. It never runs an
//! attempt itself (that is `attempt`) and never knows what a step does.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use planrun_spec::model::Step;
use serde_json::Value as Json;

use super::attempt::{Attempted, Found};
use super::{Cancel, Env, not_run};
use crate::events::{RunEvent, StepReport, StepStatus, StepTally};
use crate::redact::Redactor;
use crate::render::Scope;

pub(super) struct SpecRun<'a> {
    pub(super) env: Env<'a>,
    pub(super) state: State,
    pub(super) stop: Cancel,
}

/// The parts of a spec run that finished steps change.
pub(super) struct State {
    pub(super) scope: Scope,
    pub(super) redactor: Redactor,
    pub(super) statuses: Vec<Option<StepStatus>>,
    /// Steps not run because a need failed (their dependents are not run either).
    pub(super) blocked: Vec<bool>,
    /// How the finished steps ended (their reports went out as events).
    pub(super) tally: StepTally,
}

impl SpecRun<'_> {
    /// Runs steps as their needs finish: a step starts once every step it
    /// needs has ended. With the spec stopped, only teardown steps start; the
    /// others are marked cancelled.
    pub(super) async fn walk(&mut self, fail_fast: Option<&Cancel>) {
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
                    self.state.finish(
                        env,
                        not_run(step, status, &why),
                        Vec::new(),
                        &Found::default(),
                    );
                    release(i, &mut waiting, &mut ready);
                    let_reporters_in().await;
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
                    self.state.finish(env, done.report, done.captures, &done.found);
                    release(i, &mut waiting, &mut ready);
                    let_reporters_in().await;
                }
                () = stop.cancelled(), if !stopped => {
                    // running steps are dropped (their futures cancelled)
                    drop(running);
                    running = FuturesUnordered::new();
                    for i in std::mem::take(&mut in_flight) {
                        let report = not_run(&steps[i], StepStatus::Cancelled, "the run was stopped while it ran");
                        self.state.finish(env, report, Vec::new(), &Found::default());
                        release(i, &mut waiting, &mut ready);
                    }
                }
            }
        }
    }
}

/// Gives way now and then, so that steps that finish at once (a pause of
/// no length, a skipped step) cannot keep the reporters from the events
/// they send: the events of a step finished wait for them, not those of a
/// whole spec. It yields once the task's share of the scheduler's time is
/// used up, not every time.
async fn let_reporters_in() {
    tokio::task::coop::consume_budget().await;
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

    /// Records a finished step: its captures, what it found secret, its
    /// status, and the event.
    pub(super) fn finish(
        &mut self,
        env: &Env<'_>,
        mut report: StepReport,
        captures: Vec<(String, Json)>,
        found: &Found,
    ) {
        found.teach_lasting(&mut self.redactor);
        let step = &env.plan.spec.steps[report.index];
        for name in &found.names {
            self.scope.mark_secret(format!("{}.{name}", step.id));
        }
        if !captures.is_empty() {
            let map: serde_json::Map<String, Json> = captures.into_iter().collect();
            self.scope.set(step.id.clone(), &Json::Object(map));
        }
        match report.status {
            StepStatus::Skipped | StepStatus::Cancelled => {
                self.scope.not_passed(step.id.clone(), "did not run");
            }
            StepStatus::Failed | StepStatus::Errored => {
                self.scope.not_passed(step.id.clone(), "did not pass");
            }
            StepStatus::Passed | StepStatus::Warned => {}
        }
        self.statuses[report.index] = Some(report.status);
        self.redactor.report(&mut report);
        // a step that passed keeps a brief of its result: the whole one is
        // only for what is shown as it finishes
        let keeps_result = report.keeps_result();
        let result = match &mut report.result {
            Some(result) if !keeps_result => {
                let brief = StepReport::brief(result);
                Some(Arc::new(std::mem::replace(result, brief)))
            }
            _ => None,
        };
        self.tally.record(&report);
        let _ = env.events.send(RunEvent::StepFinished {
            spec: env.index,
            report: Arc::new(report),
            result,
        });
    }
}
