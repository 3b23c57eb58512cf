//! The run as the file reporters see it at the end: every spec announced by
//! `RunStarted`, with its report, or a cancelled stand-in when the run was
//! interrupted before the spec finished.
//!
//! The collector only remembers events; it renders nothing, so JUnit, JSON
//! and Markdown agree on what happened, interrupted or not. What it holds
//! does not grow with the reports: each step's report goes to a spill file
//! (unnamed, gone with the process) as it arrives, the collector keeping
//! where it is, and is read back one step at a time when the reports are
//! written. Should the spill file fail (no temporary directory, a full
//! disk), step reports are held in memory instead.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use planrun_runner::events::{
    RunEvent, RunSummary, SpecInfo, SpecReport, SpecStatus, StepReport, StepStatus, StepTally,
};
use serde::{Deserialize, Serialize};

/// One failed attempt of a step that was then retried.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Where one step's report is.
#[derive(Debug, Default)]
enum Slot {
    /// Not reported.
    #[default]
    Missing,
    /// In the spill file.
    Spilled { at: u64, len: u64 },
    /// In memory (the spill file failed).
    Held(Arc<StepReport>),
}

/// What the collector knows about one spec.
#[derive(Debug, Default)]
struct SpecState {
    started_at: Option<DateTime<Local>>,
    /// Where each step's report is, by step index.
    steps: Vec<Slot>,
    /// How the reported steps ended.
    tally: StepTally,
    retries: Vec<Retry>,
    /// Its report, once it finished.
    finished: Option<SpecReport>,
}

/// A writer that counts the bytes it passed on.
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: io::Write> io::Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The bytes `at..end` of a file, read by position (the file's own cursor
/// belongs to the writes).
struct Region<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl io::Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the spill file of the reports ended early",
            ));
        }
        self.at += n as u64;
        Ok(n)
    }
}

/// Remembers a run's events.
#[derive(Debug, Default)]
pub(crate) struct RunCollector {
    started_at: Option<DateTime<Local>>,
    started: Option<Instant>,
    specs: Arc<[SpecInfo]>,
    states: Vec<SpecState>,
    summary: Option<RunSummary>,
    /// The spill file and its length; `None` until the first step finishes,
    /// and for good once it failed.
    spill: Option<(File, u64)>,
    spill_failed: bool,
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
    collector: &'a RunCollector,
    state: &'a SpecState,
}

impl FinalSpec<'_> {
    /// Whether the spec has non-blocking failures.
    pub(crate) fn warnings(&self) -> usize {
        self.report.warnings()
    }

    /// How many steps [`Self::each_step`] gives.
    pub(crate) fn steps(&self) -> usize {
        self.info.steps.len()
    }

    /// Calls `each` with every step's report in spec order, one at a time
    /// (each read back from the spill file for the call only); a step the
    /// run never reported is a cancelled stand-in.
    pub(crate) fn each_step(
        &self,
        mut each: impl FnMut(&StepReport) -> io::Result<()>,
    ) -> io::Result<()> {
        for index in 0..self.steps() {
            match self.state.steps.get(index) {
                Some(Slot::Held(report)) => each(report)?,
                Some(Slot::Spilled { at, len }) => each(&self.collector.read_back(*at, *len)?)?,
                Some(Slot::Missing) | None => {
                    let step = &self.info.steps[index];
                    each(&StepReport::not_run(
                        index,
                        (step.id.clone(), step.name.clone()),
                        step.kind,
                        step.always,
                        StepStatus::Cancelled,
                        "the run was interrupted",
                    ))?;
                }
            }
        }
        Ok(())
    }
}

impl RunCollector {
    pub(crate) fn on_event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::RunStarted { specs } => {
                self.started_at = Some(Local::now());
                self.started = Some(Instant::now());
                self.specs = Arc::clone(specs);
                // room for every step at once: no doubling past what is needed
                self.states = specs
                    .iter()
                    .map(|info| SpecState {
                        steps: std::iter::repeat_with(Slot::default)
                            .take(info.steps.len())
                            .collect(),
                        tally: StepTally::for_steps(info.steps.len()),
                        ..SpecState::default()
                    })
                    .collect();
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
            RunEvent::StepFinished { spec, report, .. } if *spec < self.states.len() => {
                // a step reported again replaces its earlier report
                let slot = self
                    .spill(report)
                    .unwrap_or_else(|| Slot::Held(Arc::clone(report)));
                let state = &mut self.states[*spec];
                state.tally.record(report);
                if state.steps.len() <= report.index {
                    state.steps.resize_with(report.index + 1, Slot::default);
                }
                state.steps[report.index] = slot;
            }
            RunEvent::SpecFinished { spec, report } => {
                if let Some(state) = self.states.get_mut(*spec) {
                    state.finished = Some(report.clone());
                }
            }
            RunEvent::RunFinished { report } => self.summary = Some(report.clone()),
            _ => {}
        }
    }

    /// Writes a step's report to the spill file; `None` when that fails.
    fn spill(&mut self, report: &StepReport) -> Option<Slot> {
        if self.spill_failed {
            return None;
        }
        if self.spill.is_none() {
            let Ok(file) = tempfile::tempfile() else {
                self.spill_failed = true;
                return None;
            };
            self.spill = Some((file, 0));
        }
        let (file, end) = self.spill.as_mut()?;
        // written as it is serialized: a report is never one buffer of JSON
        let mut out = Counted {
            inner: io::BufWriter::new(&*file),
            written: 0,
        };
        if serde_json::to_writer(&mut out, report).is_err() || out.flush().is_err() {
            self.spill_failed = true;
            return None;
        }
        let at = *end;
        *end += out.written;
        Some(Slot::Spilled {
            at,
            len: out.written,
        })
    }

    /// When `RunStarted` arrived.
    pub(crate) fn started_at(&self) -> Option<DateTime<Local>> {
        self.started_at
    }

    /// How many specs were announced.
    pub(crate) fn len(&self) -> usize {
        self.specs.len()
    }

    /// Calls `each` with every announced spec, in run order.
    pub(crate) fn each_spec(
        &self,
        mut each: impl FnMut(&FinalSpec<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        for (info, state) in self.specs.iter().zip(&self.states) {
            let report = match &state.finished {
                Some(report) => Cow::Borrowed(report),
                None => Cow::Owned(cancelled_report(info, &state.tally)),
            };
            each(&FinalSpec {
                info,
                report,
                retries: &state.retries,
                started_at: state.started_at,
                finished: state.finished.is_some(),
                collector: self,
                state,
            })?;
        }
        Ok(())
    }

    fn read_back(&self, at: u64, len: u64) -> io::Result<StepReport> {
        let Some((file, _)) = &self.spill else {
            return Err(io::Error::other("the spill file of the reports is gone"));
        };
        // read as it is parsed, not into one buffer first
        let region = Region {
            file,
            at,
            end: at + len,
        };
        serde_json::from_reader(io::BufReader::new(region)).map_err(|e| {
            io::Error::other(format!(
                "a step report did not read back from the spill file: {e}"
            ))
        })
    }

    /// The runner's totals, or totals counted here when the run never
    /// finished.
    pub(crate) fn summary(&self) -> RunSummary {
        if let Some(summary) = &self.summary {
            return summary.clone();
        }
        let mut summary = RunSummary {
            duration: self.started.map(|t| t.elapsed()).unwrap_or_default(),
            interrupted: true,
            ..RunSummary::default()
        };
        for (info, state) in self.specs.iter().zip(&self.states) {
            let report = match &state.finished {
                Some(report) => Cow::Borrowed(report),
                None => Cow::Owned(cancelled_report(info, &state.tally)),
            };
            match report.status {
                SpecStatus::Passed => summary.passed += 1,
                SpecStatus::Failed => summary.failed += 1,
                SpecStatus::Cancelled => summary.cancelled += 1,
            }
            summary.warnings += report.warnings();
            summary.internal_errors += report.internal_errors();
        }
        summary
    }
}

/// A report for a spec that did not finish: the steps that did, counted,
/// and the others as cancelled.
pub(crate) fn cancelled_report(info: &SpecInfo, tally: &StepTally) -> SpecReport {
    SpecReport {
        index: info.index,
        id: info.id.clone(),
        status: SpecStatus::Cancelled,
        duration: tally.ended(),
        counts: tally.cut_short(info.steps.len()),
        error: None,
    }
}
