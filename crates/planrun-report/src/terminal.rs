//! The terminal view: a block per spec, a line per step, spec snippets for
//! whatever failed, and a summary line.
//!
//! A spec's lines are never interleaved with another's, even when specs run
//! concurrently: in verbose mode one spec streams at a time and the others
//! are held back until it finishes; otherwise a spec is written when it
//! finishes. Everything but durations is deterministic. The optional live
//! line (what runs now) is redrawn in place and cleared before anything else
//! is written, so it never ends up in the scrollback. This module only
//! writes to the writer it is given; colour and width are the caller's call.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::Arc;

use miette::Severity;
use planrun_runner::events::{
    RunEvent, RunSummary, SpecInfo, SpecReport, SpecStatus, StepReport, StepStatus, StepTally,
};

use planrun_spec::duration::human;
use planrun_spec::value::Span;

use crate::Reporter;
use crate::collect::{Retry, cancelled_report};
use crate::snippet::Snippet;
use crate::style::Painter;
use crate::text::{
    count, evidence_block, expectation_details, expectation_snippet, failed_expectations,
    failure_views, iterations_line, omitted_failures, step_counts, summary_line, truncate_chars,
};

/// Lines of an actual value the terminal shows.
const ACTUAL_LINES: usize = 6;
/// Lines of a diff the terminal shows.
const DIFF_LINES: usize = 20;
/// Lines of a request or response body the exchange view shows.
const EXCHANGE_BODY_LINES: usize = 20;
/// Bytes of a request or response body the exchange view shows.
const EXCHANGE_BODY_BYTES: usize = 2048;
/// Step ids longer than this are not used to align the columns.
const MAX_ID_COLUMN: usize = 24;

/// The most lines of passed steps a failed spec lists when not verbose;
/// the others are counted in one line (`-v` lists every step as it
/// finishes). What the terminal holds for a spec does not grow with it.
const PASSED_LINES: usize = 200;

/// How the terminal view looks.
#[derive(Debug, Clone)]
pub struct TerminalOptions {
    /// ANSI colours (off for `NO_COLOR`, pipes and files).
    pub color: bool,
    /// Show every spec in full; otherwise a spec that passed without
    /// warnings takes one line.
    pub verbose: bool,
    /// Columns available; snippets and values are cut to it.
    pub width: usize,
    /// Redraw a "what runs now" line in place (only for a terminal).
    pub live: bool,
}

impl Default for TerminalOptions {
    fn default() -> Self {
        Self {
            color: false,
            verbose: false,
            width: 100,
            live: false,
        }
    }
}

/// A piece of output held for a spec until it may be written.
#[derive(Debug)]
struct Chunk {
    text: String,
    /// Separate it from what came before by a blank line.
    gap_before: bool,
    /// Separate it from what comes after by a blank line.
    gap_after: bool,
}

/// What the terminal reporter knows about one spec.
#[derive(Debug, Default)]
struct SpecState {
    started: bool,
    finished: bool,
    status: Option<SpecStatus>,
    /// Verbose mode: rendered output not written yet.
    chunks: Vec<Chunk>,
    /// Otherwise: the lines of each step finished so far, by step index,
    /// held until the spec ends (shown when it did not pass quietly): every
    /// step that did not pass, and the first [`PASSED_LINES`] that did.
    held: Vec<(usize, Chunk)>,
    /// Steps that passed past the first [`PASSED_LINES`]: counted, not
    /// held, with the first of their indexes.
    passed_held: usize,
    passed_unlisted: usize,
    first_unlisted: usize,
    /// How the steps finished so far ended (never their reports).
    tally: StepTally,
    /// Whether every step finished so far was skipped for one reason.
    skip_reason: SkipReason,
    retries: Vec<Retry>,
    /// The step running now and its attempt, for the live line.
    current: Option<(usize, u32)>,
    /// Events or messages the running step has seen so far, and their noun.
    observed: Option<(usize, &'static str)>,
}

impl SpecState {
    fn done(&self) -> bool {
        self.finished && self.chunks.is_empty()
    }

    /// Counts a finished step; `true` when it replaced an earlier report
    /// of the same step.
    fn record(&mut self, step: &StepReport) -> bool {
        let reason = step
            .skip_reason
            .as_ref()
            .filter(|_| step.status == StepStatus::Skipped);
        self.skip_reason = match (std::mem::take(&mut self.skip_reason), reason) {
            (SkipReason::NoStep, Some(reason)) => SkipReason::One(reason.clone()),
            (SkipReason::One(seen), Some(reason)) if seen == *reason => SkipReason::One(seen),
            _ => SkipReason::Not,
        };
        self.tally.record(step)
    }
}

/// Whether the steps of a spec finished so far were all skipped for one
/// reason (a spec none of whose steps ran says why).
#[derive(Debug, Default)]
enum SkipReason {
    /// No step finished yet.
    #[default]
    NoStep,
    /// Every one was skipped for this.
    One(String),
    /// Not every one was skipped, or not for one reason.
    Not,
}

/// The human view of a run, for a terminal or a CI log.
///
/// ```text
/// ✓ TC-001 Login works (specs/tc-001.toml)  2 steps  45ms
///
/// ▶ TC-003 WSGI health check (specs/tc-003.toml)
///   ✓ login    http  12ms
///   ✗ health   http  34ms
///     × expected status `200`, got `503`
///     …
/// ✗ TC-003 failed  2 steps: 1 passed, 1 failed  46ms
///
/// 2 specs: 1 passed, 1 failed in 1.23s
/// ```
pub struct TerminalReporter {
    out: Box<dyn Write + Send>,
    opts: TerminalOptions,
    /// Show what `http`, `sse` and `ws` steps sent and received.
    exchanges: bool,
    paint: Painter,
    specs: Arc<[SpecInfo]>,
    /// The widths of each spec's id and kind columns.
    columns: Vec<(usize, usize)>,
    states: Vec<SpecState>,
    /// Spec indices in the order they started.
    start_order: Vec<usize>,
    /// Verbose mode: the spec whose output is written as it comes.
    cursor: Option<usize>,
    /// Something has been written (a first block needs no gap).
    wrote_any: bool,
    /// The last thing written ends with a blank line.
    ends_blank: bool,
    /// A live line is on screen.
    live_drawn: bool,
    /// Most recently active spec, for the live line.
    last_active: Option<usize>,
    /// When the live line was last drawn.
    last_draw: Option<std::time::Instant>,
}

/// Shortest pause between redraws of the live line caused by observations.
const LIVE_REDRAW: std::time::Duration = std::time::Duration::from_millis(100);

impl std::fmt::Debug for TerminalReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalReporter")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl TerminalReporter {
    /// A reporter writing to `out` (stderr in the binary).
    pub fn new(out: Box<dyn Write + Send>, opts: TerminalOptions) -> Self {
        Self {
            out,
            paint: Painter::new(opts.color),
            opts,
            exchanges: false,
            specs: Vec::new().into(),
            columns: Vec::new(),
            states: Vec::new(),
            start_order: Vec::new(),
            cursor: None,
            wrote_any: false,
            ends_blank: false,
            live_drawn: false,
            last_active: None,
            last_draw: None,
        }
    }

    /// Also show, under each step line, what each `http`, `sse` and `ws`
    /// step sent and what came back (request line, headers, body start;
    /// status line, headers, body start) as its result document holds
    /// them, secrets hidden. Only steps that are shown get it: with
    /// `verbose`, every step.
    #[must_use]
    pub fn show_exchanges(mut self, show: bool) -> Self {
        self.exchanges = show;
        self
    }

    fn width(&self) -> usize {
        if self.opts.width == 0 {
            100
        } else {
            self.opts.width
        }
    }

    // ---- writing -------------------------------------------------------

    fn write_chunk(&mut self, chunk: &Chunk) -> io::Result<()> {
        self.clear_live()?;
        if chunk.gap_before && self.wrote_any && !self.ends_blank {
            self.out.write_all(b"\n")?;
        }
        self.out.write_all(chunk.text.as_bytes())?;
        if chunk.gap_after {
            self.out.write_all(b"\n")?;
        }
        self.wrote_any = true;
        self.ends_blank = chunk.gap_after;
        Ok(())
    }

    fn clear_live(&mut self) -> io::Result<()> {
        if self.live_drawn {
            self.out.write_all(b"\r\x1b[2K")?;
            self.live_drawn = false;
        }
        Ok(())
    }

    fn draw_live(&mut self) -> io::Result<()> {
        if !self.opts.live {
            return Ok(());
        }
        let running: Vec<usize> = self
            .start_order
            .iter()
            .copied()
            .filter(|&i| self.states.get(i).is_some_and(|s| !s.finished))
            .collect();
        self.clear_live()?;
        let Some(&first) = running.first() else {
            return Ok(());
        };
        let active = self
            .last_active
            .filter(|i| running.contains(i))
            .unwrap_or(first);
        let Some(info) = self.specs.get(active) else {
            return Ok(());
        };
        let mut text = format!("running {}", info.id);
        if let Some((step, attempt)) = self.states.get(active).and_then(|s| s.current)
            && let Some(step_info) = info.steps.get(step)
        {
            let _ = write!(
                text,
                " › {} (step {}/{}",
                step_info.id,
                step + 1,
                info.steps.len()
            );
            if attempt > 1 {
                let _ = write!(text, ", attempt {attempt}");
            }
            if let Some((count, noun)) = self.states.get(active).and_then(|s| s.observed) {
                let plural = if count == 1 { "" } else { "s" };
                let _ = write!(text, ", {count} {noun}{plural}");
            }
            text.push(')');
        }
        if running.len() > 1 {
            let _ = write!(text, " and {} more", running.len() - 1);
        }
        let done = self.states.iter().filter(|s| s.finished).count();
        let _ = write!(text, " · {done}/{} specs done", self.specs.len());
        let text = truncate_chars(&text, self.width().saturating_sub(1));
        let line = self.paint.dim(&text);
        self.out.write_all(line.as_bytes())?;
        self.live_drawn = true;
        self.last_draw = Some(std::time::Instant::now());
        Ok(())
    }

    /// Verbose mode: writes what the cursor spec has, and when it is done
    /// moves on to specs that were held back.
    fn flush_cursor(&mut self) -> io::Result<()> {
        while let Some(index) = self.cursor {
            self.write_pending(index)?;
            if !self.states.get(index).is_some_and(SpecState::done) {
                return Ok(());
            }
            // Specs that finished while held back go first, in start order;
            // then the earliest still running one takes over.
            let finished: Vec<usize> = self
                .start_order
                .iter()
                .copied()
                .filter(|&i| self.states.get(i).is_some_and(|s| s.finished && !s.done()))
                .collect();
            for i in finished {
                self.write_pending(i)?;
            }
            self.cursor = self
                .start_order
                .iter()
                .copied()
                .find(|&i| self.states.get(i).is_some_and(|s| !s.done()));
        }
        Ok(())
    }

    fn write_pending(&mut self, index: usize) -> io::Result<()> {
        let Some(state) = self.states.get_mut(index) else {
            return Ok(());
        };
        let pending = std::mem::take(&mut state.chunks);
        for chunk in &pending {
            self.write_chunk(chunk)?;
        }
        Ok(())
    }

    // ---- rendering -----------------------------------------------------

    fn header(&self, info: &SpecInfo) -> Chunk {
        let mut text = format!("{} {}", self.paint.cyan("▶"), self.paint.bold(&info.id));
        if let Some(name) = &info.name {
            let _ = write!(text, " {name}");
        }
        let _ = writeln!(
            text,
            " {}",
            self.paint.dim(&format!("({})", info.path.display()))
        );
        Chunk {
            text,
            gap_before: true,
            gap_after: false,
        }
    }

    fn footer(&self, info: &SpecInfo, report: &SpecReport) -> Chunk {
        let mut text = String::new();
        if let Some(error) = &report.error {
            let _ = writeln!(
                text,
                "  {} {}",
                self.paint.magenta("⚠"),
                self.paint.magenta(&format!("spec error: {error}"))
            );
        }
        let (marker, word) = match report.status {
            SpecStatus::Passed => (self.paint.green("✓"), self.paint.green("passed")),
            SpecStatus::Failed => (self.paint.red("✗"), self.paint.bold_red("failed")),
            SpecStatus::Cancelled => (self.paint.dim("-"), self.paint.dim("cancelled")),
        };
        let _ = writeln!(
            text,
            "{marker} {} {word}  {}: {}  {}",
            self.paint.bold(&info.id),
            count(report.counts.total(), "step", "steps"),
            step_counts(&report.counts),
            human(report.duration),
        );
        Chunk {
            text,
            gap_before: false,
            gap_after: true,
        }
    }

    /// One line: a spec that passed quietly, or one that never ran (with
    /// the reason all its steps were skipped for, if they were for one).
    fn compact(&self, info: &SpecInfo, report: &SpecReport, reason: Option<&str>) -> Chunk {
        let passed = report.status == SpecStatus::Passed;
        let marker = if passed {
            self.paint.green("✓")
        } else {
            self.paint.dim("-")
        };
        let mut text = format!("{marker} {}", self.paint.bold(&info.id));
        if let Some(name) = &info.name {
            let _ = write!(text, " {name}");
        }
        let tail = if passed {
            format!(
                "{}  {}",
                count(report.counts.total(), "step", "steps"),
                human(report.duration)
            )
        } else {
            // a spec none of whose steps ran for one reason (its directory's
            // setup failed) says why
            match reason {
                Some(reason) => self.paint.dim(&format!("cancelled ({reason})")),
                None => self.paint.dim("cancelled"),
            }
        };
        let _ = writeln!(
            text,
            " {}  {tail}",
            self.paint.dim(&format!("({})", info.path.display())),
        );
        Chunk {
            text,
            gap_before: false,
            gap_after: false,
        }
    }

    /// The lines of one step; `result` is its whole result when the report
    /// keeps only a brief of it (shown with `-vv` as the step finishes).
    fn step_block(
        &self,
        info: &SpecInfo,
        step: &StepReport,
        result: Option<&serde_json::Value>,
        retries: &[Retry],
    ) -> Chunk {
        let paint = self.paint;
        let (id_width, kind_width) = self
            .columns
            .get(info.index)
            .copied()
            .unwrap_or_else(|| columns(info));
        let marker = match step.status {
            StepStatus::Passed => paint.green("✓"),
            StepStatus::Warned => paint.yellow("!"),
            StepStatus::Failed => paint.red("✗"),
            StepStatus::Errored => paint.magenta("⚠"),
            StepStatus::Skipped | StepStatus::Cancelled => paint.dim("-"),
        };
        let id = format!("{:<id_width$}", step.id);
        let id = match step.status {
            StepStatus::Failed => paint.bold_red(&id),
            StepStatus::Skipped | StepStatus::Cancelled => paint.dim(&id),
            _ => id,
        };
        let kind = paint.dim(&format!("{:<kind_width$}", step.kind.key()));
        let mut tail = match step.status {
            StepStatus::Skipped => {
                let mut tail = "skipped".to_owned();
                if let Some(reason) = &step.skip_reason {
                    let _ = write!(tail, " ({reason})");
                }
                paint.dim(&tail)
            }
            StepStatus::Cancelled => paint.dim("cancelled"),
            _ => match iterations_line(step) {
                Some(line) => format!("{line}  {}", human(step.duration)),
                None => human(step.duration),
            },
        };
        let mut notes = Vec::new();
        if step.attempts > 1 {
            notes.push(format!("{} attempts", step.attempts));
        }
        if step.always {
            notes.push("always".to_owned());
        }
        if !notes.is_empty() {
            let _ = write!(tail, "  {}", paint.dim(&format!("({})", notes.join(", "))));
        }
        if let Some(name) = &step.name {
            let _ = write!(tail, "  {}", paint.dim(name));
        }
        let mut text = format!("  {marker} {id}  {kind}  {tail}\n");

        for retry in retries.iter().filter(|r| r.step == step.index) {
            let line = format!(
                "↻ attempt {} failed: {}; retried after {}",
                retry.attempt,
                retry.reason,
                human(retry.delay)
            );
            let line = truncate_chars(&line, self.width().saturating_sub(4));
            let _ = writeln!(text, "    {}", paint.dim(&line));
        }

        if self.exchanges
            && matches!(step.kind.key(), "http" | "sse" | "ws")
            && let Some(result) = result.or(step.result.as_ref())
        {
            text.push_str(&exchange_block(
                result,
                "    ",
                self.width().saturating_sub(6),
                paint,
            ));
        }

        let mut shown = Vec::new();
        for view in failure_views(step) {
            self.failure_details(info, &view, &mut shown, &mut text);
        }
        if let Some(line) = omitted_failures(step) {
            let _ = writeln!(text, "    {}", paint.dim(&line));
        }
        Chunk {
            text,
            gap_before: false,
            gap_after: false,
        }
    }

    /// A step's failed expectations, error and evidence (or those of one
    /// failed iteration), under its line. An expectation whose place in the
    /// spec is in `shown` already (another iteration failed it) takes one
    /// line: its message.
    fn failure_details(
        &self,
        info: &SpecInfo,
        step: &StepReport,
        shown: &mut Vec<Span>,
        text: &mut String,
    ) {
        let paint = self.paint;
        let snippet_width = self.width().saturating_sub(2);
        let mut previous = None;
        for outcome in failed_expectations(step) {
            if shown.contains(&outcome.span) {
                let line = truncate_chars(&outcome.message, self.width().saturating_sub(6));
                let _ = writeln!(text, "    {} {line}", paint.red("×"));
                continue;
            }
            shown.push(outcome.span.clone());
            let snippet = expectation_snippet(
                info.source_of(step.index),
                outcome,
                paint.enabled(),
                snippet_width,
            );
            text.push_str(&indent(&snippet, "  "));
            text.push_str(&expectation_details(
                outcome,
                std::mem::replace(&mut previous, outcome.actual.as_ref()),
                "    ",
                (ACTUAL_LINES, DIFF_LINES),
                self.width(),
                paint,
            ));
        }
        if let Some(error) = &step.error {
            let snippet = Snippet {
                message: &error.headline(),
                severity: Severity::Error,
                span: error.span.clone(),
                label: None,
                help: error.help.as_deref(),
            }
            .render(info.source_of(step.index), paint.enabled(), snippet_width);
            text.push_str(&indent(&snippet, "  "));
        }
        text.push_str(&evidence_block(step, "    ", paint));
    }

    /// A whole spec at once (quiet mode, or a spec the run left unfinished).
    /// A finished spec when not verbose: one line when it passed quietly
    /// or never ran, else its header, the lines of its steps (`held`, in
    /// step order) and its footer.
    fn spec_block(
        &self,
        info: &SpecInfo,
        report: &SpecReport,
        mut held: Vec<(usize, Chunk)>,
        (unlisted, first_unlisted): (usize, usize),
        skip_reason: Option<&str>,
    ) -> Vec<Chunk> {
        let quiet = report.status == SpecStatus::Passed && report.warnings() == 0;
        if quiet {
            return vec![self.compact(info, report, None)];
        }
        let never_ran = report.status == SpecStatus::Cancelled && report.counts.ran() == 0;
        if never_ran {
            return vec![self.compact(info, report, skip_reason)];
        }
        held.sort_by_key(|(index, _)| *index);
        let mut chunks = Vec::with_capacity(held.len() + 2);
        chunks.push(self.header(info));
        // the count of passed steps not listed stands where the first of them would
        let at = held.partition_point(|(index, _)| *index < first_unlisted);
        let after = held.split_off(at);
        chunks.extend(held.into_iter().map(|(_, chunk)| chunk));
        if unlisted > 0 {
            let text = format!(
                "  {} {}\n",
                self.paint.green("✓"),
                self.paint.dim(&format!(
                    "and {} (`-v` lists every step)",
                    count(unlisted, "more step that passed", "more steps that passed")
                ))
            );
            chunks.push(Chunk {
                text,
                gap_before: false,
                gap_after: false,
            });
        }
        chunks.extend(after.into_iter().map(|(_, chunk)| chunk));
        chunks.push(self.footer(info, report));
        chunks
    }

    fn summary(&self, summary: &RunSummary) -> Chunk {
        let paint = self.paint;
        let total = summary.passed + summary.failed + summary.cancelled;
        let mut text = summary_line(summary, paint);
        text.push('\n');
        if let Some(line) = self.insecure_line() {
            text.push_str(&line);
        }
        if total > 1 {
            for (info, state) in self.specs.iter().zip(&self.states) {
                if state.status == Some(SpecStatus::Failed) {
                    let mut line = format!("  {} {}", paint.red("✗"), paint.bold(&info.id));
                    if let Some(name) = &info.name {
                        let _ = write!(line, " {name}");
                    }
                    let _ = writeln!(
                        text,
                        "{line} {}",
                        paint.dim(&format!("({})", info.path.display()))
                    );
                }
            }
        }
        Chunk {
            text,
            gap_before: true,
            gap_after: false,
        }
    }

    /// The run's one word on the steps that turn TLS certificate
    /// verification off, naming them (the first few); `None` when none does.
    fn insecure_line(&self) -> Option<String> {
        const SHOWN: usize = 5;
        let steps: Vec<String> = self
            .specs
            .iter()
            .flat_map(|info| {
                info.steps
                    .iter()
                    .filter(|s| s.insecure)
                    .map(move |s| format!("`{}` of {}", s.id, info.id))
            })
            .collect();
        if steps.is_empty() {
            return None;
        }
        let mut named = steps
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if steps.len() > SHOWN {
            let _ = write!(named, " and {} more", steps.len() - SHOWN);
        }
        Some(format!(
            "{} TLS certificates were not verified (`insecure = true`) in {}: {named}\n",
            self.paint.yellow("warning:"),
            count(steps.len(), "step", "steps")
        ))
    }

    // ---- events --------------------------------------------------------

    fn spec_started(&mut self, spec: usize) -> io::Result<()> {
        let Some(info) = self.specs.get(spec) else {
            return Ok(());
        };
        let header = self.opts.verbose.then(|| self.header(info));
        let Some(state) = self.states.get_mut(spec) else {
            return Ok(());
        };
        if state.started {
            return Ok(());
        }
        state.started = true;
        self.start_order.push(spec);
        self.last_active = Some(spec);
        if let Some(header) = header {
            state.chunks.push(header);
            if self.cursor.is_none() {
                self.cursor = Some(spec);
            }
            self.flush_cursor()?;
        }
        Ok(())
    }

    fn step_finished(
        &mut self,
        spec: usize,
        report: &Arc<StepReport>,
        result: Option<&serde_json::Value>,
    ) -> io::Result<()> {
        // A step of a spec never announced as started starts it, so its
        // header comes first.
        if self.states.get(spec).is_some_and(|s| !s.started) {
            self.spec_started(spec)?;
        }
        let Some(info) = self.specs.get(spec) else {
            return Ok(());
        };
        let verbose = self.opts.verbose;
        let Some(state) = self.states.get_mut(spec) else {
            return Ok(());
        };
        let replaced = state.record(report);
        if state.current.is_some_and(|(step, _)| step == report.index) {
            state.current = None;
        }
        if !verbose {
            // a step reported again replaces its earlier lines (rare: look only then)
            if replaced {
                let before = state.held.len();
                state.held.retain(|(index, _)| *index != report.index);
                if before == state.held.len() {
                    state.passed_unlisted = state.passed_unlisted.saturating_sub(1);
                }
            }
            if report.status == StepStatus::Passed {
                if state.passed_held >= PASSED_LINES {
                    if state.passed_unlisted == 0 || report.index < state.first_unlisted {
                        state.first_unlisted = report.index;
                    }
                    state.passed_unlisted += 1;
                    return Ok(());
                }
                state.passed_held += 1;
            }
        }
        let Some(state) = self.states.get(spec) else {
            return Ok(());
        };
        // verbose mode shows the whole result of a step as it finishes;
        // a failed spec's steps, shown at its end, show what reports keep
        let result = if verbose { result } else { None };
        let chunk = self.step_block(info, report, result, &state.retries);
        let Some(state) = self.states.get_mut(spec) else {
            return Ok(());
        };
        if !verbose {
            state.held.push((report.index, chunk));
            return Ok(());
        }
        state.chunks.push(chunk);
        if self.cursor == Some(spec) {
            self.flush_cursor()?;
        }
        Ok(())
    }

    /// A spec is over: `stand_ins` when the run left it unfinished, its
    /// steps never reported then getting a cancelled line each.
    fn spec_finished(
        &mut self,
        spec: usize,
        report: &SpecReport,
        stand_ins: bool,
    ) -> io::Result<()> {
        let Some(info) = self.specs.get(spec) else {
            return Ok(());
        };
        let Some(state) = self.states.get(spec) else {
            return Ok(());
        };
        if state.finished {
            return Ok(());
        }
        let missing: Vec<(usize, Chunk)> = if stand_ins {
            info.steps
                .iter()
                .enumerate()
                .filter(|(index, _)| !state.tally.has(*index))
                .map(|(index, step)| {
                    let report = StepReport::not_run(
                        index,
                        (step.id.clone(), step.name.clone()),
                        step.kind,
                        step.always,
                        StepStatus::Cancelled,
                        "the run was interrupted",
                    );
                    (index, self.step_block(info, &report, None, &state.retries))
                })
                .collect()
        } else {
            Vec::new()
        };
        let header = (!state.started).then(|| self.header(info));
        let footer = self.footer(info, report);
        let verbose = self.opts.verbose;
        let Some(state) = self.states.get_mut(spec) else {
            return Ok(());
        };
        let chunks = if verbose {
            let mut chunks: Vec<Chunk> = header.into_iter().collect();
            chunks.extend(missing.into_iter().map(|(_, chunk)| chunk));
            chunks.push(footer);
            chunks
        } else {
            // steps that never ran were not all skipped for one reason
            let reason = match &state.skip_reason {
                SkipReason::One(reason) if missing.is_empty() => Some(reason.clone()),
                _ => None,
            };
            let mut held = std::mem::take(&mut state.held);
            held.extend(missing);
            let unlisted = (state.passed_unlisted, state.first_unlisted);
            self.spec_block(info, report, held, unlisted, reason.as_deref())
        };
        let Some(state) = self.states.get_mut(spec) else {
            return Ok(());
        };
        state.finished = true;
        state.status = Some(report.status);
        state.current = None;
        state.held = Vec::new();
        state.passed_held = 0;
        state.passed_unlisted = 0;
        state.first_unlisted = 0;
        state.tally = StepTally::default();
        if verbose {
            state.chunks.extend(chunks);
            if !state.started {
                state.started = true;
                self.start_order.push(spec);
            }
            if self.cursor.is_none() {
                self.cursor = Some(spec);
            }
            self.flush_cursor()
        } else {
            for chunk in &chunks {
                self.write_chunk(chunk)?;
            }
            Ok(())
        }
    }

    /// Specs that started and never finished are written as cancelled.
    fn flush_unfinished(&mut self) -> io::Result<()> {
        let unfinished: Vec<usize> = self
            .start_order
            .iter()
            .copied()
            .filter(|&i| self.states.get(i).is_some_and(|s| !s.finished))
            .collect();
        for index in unfinished {
            let (Some(info), Some(state)) = (self.specs.get(index), self.states.get(index)) else {
                continue;
            };
            let report = cancelled_report(info, &state.tally);
            self.spec_finished(index, &report, true)?;
        }
        // Whatever verbose mode still holds back.
        let pending: Vec<usize> = self.start_order.clone();
        for index in pending {
            self.write_pending(index)?;
        }
        self.cursor = None;
        Ok(())
    }
}

impl Reporter for TerminalReporter {
    fn on_event(&mut self, event: &RunEvent) -> io::Result<()> {
        match event {
            RunEvent::RunStarted { specs } => {
                self.specs = Arc::clone(specs);
                // measured once: a step's lines are rendered as it finishes
                self.columns = specs.iter().map(columns).collect();
                self.states = specs
                    .iter()
                    .map(|info| SpecState {
                        tally: StepTally::for_steps(info.steps.len()),
                        ..SpecState::default()
                    })
                    .collect();
            }
            RunEvent::SpecStarted { spec } => self.spec_started(*spec)?,
            RunEvent::StepStarted {
                spec,
                step,
                attempt,
            } => {
                if let Some(state) = self.states.get_mut(*spec) {
                    state.current = Some((*step, *attempt));
                    state.observed = None;
                    self.last_active = Some(*spec);
                }
            }
            RunEvent::StepObserved {
                spec,
                step,
                observation,
            } => {
                if !self.opts.live {
                    return Ok(());
                }
                let Some(state) = self.states.get_mut(*spec) else {
                    return Ok(());
                };
                if state.current.map(|(s, _)| s) != Some(*step) {
                    return Ok(());
                }
                // a stream step reports each event; a socket step each frame
                let noun = if observation.get("event").is_some() {
                    "event"
                } else {
                    "message"
                };
                let count = state.observed.map_or(0, |(n, _)| n) + 1;
                state.observed = Some((count, noun));
                self.last_active = Some(*spec);
                // redraw at most every so often: a fast stream must not flood
                let now = std::time::Instant::now();
                if count > 1
                    && self
                        .last_draw
                        .is_some_and(|at| now.duration_since(at) < LIVE_REDRAW)
                {
                    return Ok(());
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
            RunEvent::StepFinished {
                spec,
                report,
                result,
            } => self.step_finished(*spec, report, result.as_deref())?,
            RunEvent::SpecFinished { spec, report } => self.spec_finished(*spec, report, false)?,
            RunEvent::RunFinished { report } => {
                self.flush_unfinished()?;
                let chunk = self.summary(report);
                self.write_chunk(&chunk)?;
                return self.out.flush();
            }
            _ => {}
        }
        self.draw_live()?;
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.clear_live()?;
        self.out.flush()
    }
}

/// The widths of a spec's step id column (ids longer than
/// [`MAX_ID_COLUMN`] overflow it) and kind column.
fn columns(info: &SpecInfo) -> (usize, usize) {
    let id = info
        .steps
        .iter()
        .map(|s| s.id.chars().count())
        .filter(|&n| n <= MAX_ID_COLUMN)
        .max()
        .unwrap_or(0);
    let kind = info
        .steps
        .iter()
        .map(|s| s.kind.key().len())
        .max()
        .unwrap_or(0);
    (id, kind)
}

/// What an `http`, `sse` or `ws` step sent and received, as its result
/// document holds it (secrets already hidden): `> ` lines for the request,
/// `< ` lines for the response, bodies cut to their start.
fn exchange_block(
    result: &serde_json::Value,
    indent: &str,
    width: usize,
    paint: Painter,
) -> String {
    let mut out = String::new();
    let mut line = |prefix: &str, text: &str| {
        let text = if text.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix} {}", truncate_chars(text, width))
        };
        let _ = writeln!(out, "{indent}{}", paint.dim(&text));
    };
    let request = result.get("request");
    match (
        str_of(request.and_then(|r| r.get("method"))),
        str_of(request.and_then(|r| r.get("url"))).or(str_of(result.get("url"))),
    ) {
        (Some(method), Some(url)) => line(">", &format!("{method} {url}")),
        (None, Some(url)) => line(">", url),
        _ => {}
    }
    if let Some(request) = request {
        header_lines(request.get("headers"), &mut |t| line(">", t));
        if let Some(body) = str_of(request.get("body")) {
            line(">", "");
            body_lines(body, &mut |t| line(">", t));
        }
    }
    if let Some(status) = result.get("status").and_then(serde_json::Value::as_u64) {
        match str_of(result.get("version")) {
            Some(version) => line("<", &format!("{version} {status}")),
            None => line("<", &status.to_string()),
        }
        header_lines(result.get("headers"), &mut |t| line("<", t));
        // a stream's body is its events' data; an answer that was no
        // stream has a `body`
        if let Some(body) = str_of(result.get("body")).or(str_of(result.get("text")))
            && !body.is_empty()
        {
            line("<", "");
            body_lines(body, &mut |t| line("<", t));
        }
    }
    out
}

/// A string field of a document.
fn str_of(value: Option<&serde_json::Value>) -> Option<&str> {
    value.and_then(serde_json::Value::as_str)
}

/// `name: value` lines of a headers document; a value joined from several
/// headers (`set-cookie`) gives a line each.
fn header_lines(headers: Option<&serde_json::Value>, line: &mut impl FnMut(&str)) {
    let Some(headers) = headers.and_then(serde_json::Value::as_object) else {
        return;
    };
    for (name, value) in headers {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        for part in value.split('\n') {
            line(&format!("{name}: {part}"));
        }
    }
}

/// The start of a body: at most [`EXCHANGE_BODY_LINES`] lines and
/// [`EXCHANGE_BODY_BYTES`] bytes, a last line saying what was left out.
fn body_lines(body: &str, line: &mut impl FnMut(&str)) {
    let mut cut = body.len().min(EXCHANGE_BODY_BYTES);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    let lines: Vec<&str> = body[..cut].lines().collect();
    for text in lines.iter().take(EXCHANGE_BODY_LINES) {
        line(text);
    }
    if cut < body.len() {
        line(&format!("… ({} bytes in all)", body.len()));
    } else if lines.len() > EXCHANGE_BODY_LINES {
        let more = lines.len() - EXCHANGE_BODY_LINES;
        line(&format!("… {}", count(more, "more line", "more lines")));
    }
}

/// Prefixes every non-empty line of `text`.
fn indent(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            out.push_str(line.trim_start_matches([' ', '\t']));
        } else {
            out.push_str(prefix);
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exchange_shows_request_and_response_heads_and_body_starts() {
        let body = (1..=30).fold(String::new(), |mut body, n| {
            let _ = writeln!(body, "line {n}");
            body
        });
        let result = serde_json::json!({
            "status": 201, "version": "HTTP/1.1",
            "headers": {"location": "/m/1/", "set-cookie": "a=1\nb=2"},
            "body": body,
            "request": {
                "method": "POST", "url": "http://h/m/",
                "headers": {"content-type": "application/json"},
                "body": "{\"token\":\"***\"}"
            }
        });
        let text = exchange_block(&result, "  ", 80, Painter::new(false));
        let expected = "  > POST http://h/m/\n  > content-type: application/json\n  >\n  > {\"token\":\"***\"}\n  < HTTP/1.1 201\n  < location: /m/1/\n  < set-cookie: a=1\n  < set-cookie: b=2\n  <\n";
        assert!(text.starts_with(expected), "{text}");
        assert!(text.contains("  < line 20\n"), "{text}");
        assert!(!text.contains("line 21"), "{text}");
        assert!(text.ends_with("  < … 10 more lines\n"), "{text}");
        let long = serde_json::json!({"status": 200, "body": "x".repeat(3000)});
        let text = exchange_block(&long, "", 5000, Painter::new(false));
        assert!(text.ends_with("< … (3000 bytes in all)\n"), "{text}");
    }

    #[test]
    fn a_stream_shows_its_url_status_and_text() {
        let result = serde_json::json!({
            "status": 200, "url": "http://h/s", "headers": {}, "text": "hello", "body": null
        });
        let text = exchange_block(&result, "", 80, Painter::new(false));
        assert_eq!(text, "> http://h/s\n< 200\n<\n< hello\n");
    }
}
