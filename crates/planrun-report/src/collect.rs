//! The run as the file reporters see it at the end: every spec announced by
//! `RunStarted`, with its report, or a cancelled stand-in when the run was
//! interrupted before the spec finished.
//!
//! The collector only remembers events; it renders nothing, so JUnit, JSON
//! and Markdown agree on what happened, interrupted or not.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use planrun_runner::events::{
    RunEvent, RunSummary, SpecInfo, SpecReport, SpecStatus, StepReport, StepStatus,
};
use serde::Serialize;

/// One failed attempt of a step that was then retried.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Retry {
    /// Index of the step.
    pub(crate) step: usize,
    /// The attempt that failed.
    pub(crate) attempt: u32,
    /// Why, in one line.
    pub(crate) reason: String,
    /// The pause before the next attempt.
    #[serde(with = "planrun_runner::events::millis")]
    pub(crate) delay: Duration,
}

/// What the collector knows about one spec.
#[derive(Debug, Default)]
struct SpecState {
    started_at: Option<DateTime<Local>>,
    steps: Vec<Arc<StepReport>>,
    /// Which step indexes `steps` holds.
    has_steps: Vec<bool>,
    retries: Vec<Retry>,
    report: Option<SpecReport>,
}

/// Remembers a run's events.
#[derive(Debug, Default)]
pub(crate) struct RunCollector {
    started_at: Option<DateTime<Local>>,
    started: Option<Instant>,
    specs: Vec<SpecInfo>,
    states: Vec<SpecState>,
    summary: Option<RunSummary>,
}

/// A spec at the end of the run.
#[derive(Debug)]
pub(crate) struct FinalSpec<'a> {
    pub(crate) info: &'a SpecInfo,
    /// The runner's report, or a cancelled stand-in.
    pub(crate) report: Cow<'a, SpecReport>,
    pub(crate) retries: &'a [Retry],
    pub(crate) started_at: Option<DateTime<Local>>,
    /// Whether `SpecFinished` arrived.
    pub(crate) finished: bool,
}

impl FinalSpec<'_> {
    /// Whether the spec has non-blocking failures.
    pub(crate) fn warnings(&self) -> usize {
        self.report.warnings()
    }
}

impl RunCollector {
    pub(crate) fn on_event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::RunStarted { specs } => {
                self.started_at = Some(Local::now());
                self.started = Some(Instant::now());
                self.specs.clone_from(specs);
                self.states = specs.iter().map(|_| SpecState::default()).collect();
            }
            RunEvent::SpecStarted { spec } => {
                if let Some(state) = self.states.get_mut(*spec) {
                    state.started_at = Some(Local::now());
                }
            }
            RunEvent::StepRetrying {
                spec,
                step,
                attempt,
                reason,
                delay,
            } => {
                if let Some(state) = self.states.get_mut(*spec) {
                    state.retries.push(Retry {
                        step: *step,
                        attempt: *attempt,
                        reason: reason.clone(),
                        delay: *delay,
                    });
                }
            }
            RunEvent::StepFinished { spec, report, .. } => {
                if let Some(state) = self.states.get_mut(*spec) {
                    // a step reported again replaces its earlier report (rare: look only then)
                    if state.has_steps.get(report.index).copied().unwrap_or(false) {
                        state.steps.retain(|s| s.index != report.index);
                    } else {
                        if state.has_steps.len() <= report.index {
                            state.has_steps.resize(report.index + 1, false);
                        }
                        state.has_steps[report.index] = true;
                    }
                    state.steps.push(report.clone());
                }
            }
            RunEvent::SpecFinished { spec, report } => {
                if let Some(state) = self.states.get_mut(*spec) {
                    state.report = Some(report.clone());
                }
            }
            RunEvent::RunFinished { report } => self.summary = Some(report.clone()),
            _ => {}
        }
    }

    /// When `RunStarted` arrived.
    pub(crate) fn started_at(&self) -> Option<DateTime<Local>> {
        self.started_at
    }

    /// Every announced spec, in run order.
    pub(crate) fn specs(&self) -> Vec<FinalSpec<'_>> {
        self.specs
            .iter()
            .zip(&self.states)
            .map(|(info, state)| FinalSpec {
                info,
                report: state.report.as_ref().map_or_else(
                    || Cow::Owned(cancelled_report(info, &state.steps)),
                    Cow::Borrowed,
                ),
                retries: &state.retries,
                started_at: state.started_at,
                finished: state.report.is_some(),
            })
            .collect()
    }

    /// The runner's totals, or totals counted here when the run never
    /// finished.
    pub(crate) fn summary(&self) -> RunSummary {
        if let Some(summary) = &self.summary {
            return summary.clone();
        }
        let specs = self.specs();
        let with = |status| specs.iter().filter(|s| s.report.status == status).count();
        RunSummary {
            passed: with(SpecStatus::Passed),
            failed: with(SpecStatus::Failed),
            cancelled: with(SpecStatus::Cancelled),
            warnings: specs.iter().map(FinalSpec::warnings).sum(),
            internal_errors: specs.iter().map(|s| s.report.internal_errors()).sum(),
            duration: self.started.map(|t| t.elapsed()).unwrap_or_default(),
            interrupted: true,
        }
    }
}

/// A report for a spec that did not finish: the steps that did, and the
/// others as cancelled.
pub(crate) fn cancelled_report(info: &SpecInfo, finished: &[Arc<StepReport>]) -> SpecReport {
    let mut by_index: Vec<Option<&Arc<StepReport>>> = vec![None; info.steps.len()];
    for step in finished {
        if let Some(slot) = by_index.get_mut(step.index) {
            *slot = Some(step);
        }
    }
    let steps: Vec<Arc<StepReport>> = info
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            by_index[index].cloned().unwrap_or_else(|| {
                Arc::new(StepReport::not_run(
                    index,
                    (step.id.clone(), step.name.clone()),
                    step.kind,
                    step.always,
                    StepStatus::Cancelled,
                    "the run was interrupted",
                ))
            })
        })
        .collect();
    let duration = steps
        .iter()
        .map(|s| s.started + s.duration)
        .max()
        .unwrap_or_default();
    SpecReport {
        index: info.index,
        id: info.id.clone(),
        status: SpecStatus::Cancelled,
        duration,
        steps,
        error: None,
    }
}
