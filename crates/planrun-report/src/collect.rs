//! The run as the file reporters see it at the end: every spec announced by
//! `RunStarted`, with its report, or a cancelled stand-in when the run was
//! interrupted before the spec finished.
//!
//! The collector only remembers events; it renders nothing, so JUnit, JSON
//! and Markdown agree on what happened, interrupted or not. What it holds
//! does not grow with the run: a finished spec's report goes to a spill
//! file (unnamed, gone with the process) and is read back, one spec at a
//! time, when the reports are written. Only the steps of specs still
//! running stay in memory. Should the spill file fail (no temporary
//! directory, a full disk), reports are held in memory instead.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use planrun_runner::events::{
    RunEvent, RunSummary, SpecInfo, SpecReport, SpecStatus, StepReport, StepStatus,
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

/// What the collector knows about one spec.
#[derive(Debug, Default)]
struct SpecState {
    started_at: Option<DateTime<Local>>,
    /// The steps finished so far, while the spec runs.
    steps: Vec<Arc<StepReport>>,
    /// Which step indexes `steps` holds.
    has_steps: Vec<bool>,
    retries: Vec<Retry>,
    /// Its report, once it finished.
    finished: Option<Finished>,
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

/// A finished spec's report, and where it is.
#[derive(Debug)]
enum Finished {
    /// In the spill file.
    Spilled {
        at: u64,
        len: u64,
        status: SpecStatus,
        warnings: usize,
        internal_errors: usize,
    },
    /// In memory (the spill file failed).
    Held(SpecReport),
}

/// What the spill file holds of a spec.
#[derive(Serialize, Deserialize)]
struct Spilled<'a> {
    report: Cow<'a, SpecReport>,
    retries: Cow<'a, [Retry]>,
}

/// Remembers a run's events.
#[derive(Debug, Default)]
pub(crate) struct RunCollector {
    started_at: Option<DateTime<Local>>,
    started: Option<Instant>,
    specs: Arc<[SpecInfo]>,
    states: Vec<SpecState>,
    summary: Option<RunSummary>,
    /// The spill file and its length; `None` until the first spec finishes,
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
    pub(crate) retries: Cow<'a, [Retry]>,
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
                self.specs = Arc::clone(specs);
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
            RunEvent::SpecFinished { spec, report } if *spec < self.states.len() => {
                let retries = std::mem::take(&mut self.states[*spec].retries);
                let finished = self
                    .spill(report, &retries)
                    .unwrap_or_else(|| Finished::Held(report.clone()));
                let state = &mut self.states[*spec];
                if let Finished::Held(_) = finished {
                    state.retries = retries;
                }
                state.steps = Vec::new();
                state.has_steps = Vec::new();
                state.finished = Some(finished);
            }
            RunEvent::RunFinished { report } => self.summary = Some(report.clone()),
            _ => {}
        }
    }

    /// Writes a finished spec to the spill file; `None` when that fails.
    fn spill(&mut self, report: &SpecReport, retries: &[Retry]) -> Option<Finished> {
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
        // written as it is serialized: a spec of many steps is never one
        // buffer of JSON
        let mut out = Counted {
            inner: io::BufWriter::new(&*file),
            written: 0,
        };
        let spilled = Spilled {
            report: Cow::Borrowed(report),
            retries: Cow::Borrowed(retries),
        };
        if serde_json::to_writer(&mut out, &spilled).is_err() || out.flush().is_err() {
            self.spill_failed = true;
            return None;
        }
        let at = *end;
        *end += out.written;
        Some(Finished::Spilled {
            at,
            len: out.written,
            status: report.status,
            warnings: report.warnings(),
            internal_errors: report.internal_errors(),
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

    /// Calls `each` with every announced spec, in run order, one at a time
    /// (a spilled report is read back for the call only).
    pub(crate) fn each_spec(
        &self,
        mut each: impl FnMut(&FinalSpec<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        for (info, state) in self.specs.iter().zip(&self.states) {
            let spec = match &state.finished {
                None => FinalSpec {
                    info,
                    report: Cow::Owned(cancelled_report(info, &state.steps)),
                    retries: Cow::Borrowed(&state.retries),
                    started_at: state.started_at,
                    finished: false,
                },
                Some(Finished::Held(report)) => FinalSpec {
                    info,
                    report: Cow::Borrowed(report),
                    retries: Cow::Borrowed(&state.retries),
                    started_at: state.started_at,
                    finished: true,
                },
                Some(Finished::Spilled { at, len, .. }) => {
                    let spilled = self.read_back(*at, *len)?;
                    FinalSpec {
                        info,
                        report: spilled.report,
                        retries: spilled.retries,
                        started_at: state.started_at,
                        finished: true,
                    }
                }
            };
            each(&spec)?;
        }
        Ok(())
    }

    fn read_back(&self, at: u64, len: u64) -> io::Result<Spilled<'static>> {
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
                "a spec report did not read back from the spill file: {e}"
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
            let (status, warnings, internal_errors) = match &state.finished {
                Some(Finished::Spilled {
                    status,
                    warnings,
                    internal_errors,
                    ..
                }) => (*status, *warnings, *internal_errors),
                Some(Finished::Held(report)) => {
                    (report.status, report.warnings(), report.internal_errors())
                }
                None => {
                    let report = cancelled_report(info, &state.steps);
                    (report.status, report.warnings(), report.internal_errors())
                }
            };
            match status {
                SpecStatus::Passed => summary.passed += 1,
                SpecStatus::Failed => summary.failed += 1,
                SpecStatus::Cancelled => summary.cancelled += 1,
            }
            summary.warnings += warnings;
            summary.internal_errors += internal_errors;
        }
        summary
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
