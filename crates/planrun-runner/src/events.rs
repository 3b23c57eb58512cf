//! Run events: what the runner tells reporters, and nothing else.
//!
//! Events are produced by the runner and consumed by reporters; the runner
//! never prints. Every value that reaches an event has already had secrets
//! replaced by `***`.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use planrun_spec::model::{Priority, StepKind};
use planrun_spec::source::SourceFile;
use planrun_spec::value::Span;
use serde::{Deserialize, Serialize};

use crate::executor::StepErrorKind;

/// One thing that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "events are moved once, through a channel"
)]
pub enum RunEvent {
    /// The run begins; lists every spec that will run.
    RunStarted {
        /// The specs, indexed by position; shared, so that every reporter
        /// holds one copy.
        specs: Arc<[SpecInfo]>,
    },
    /// A spec begins.
    SpecStarted {
        /// Index into `RunStarted::specs`.
        spec: usize,
    },
    /// A step attempt begins.
    StepStarted {
        /// Index of the spec.
        spec: usize,
        /// Index of the step in its spec.
        step: usize,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// An executor reported something while the step runs (a stream event…).
    StepObserved {
        /// Index of the spec.
        spec: usize,
        /// Index of the step.
        step: usize,
        /// What was observed.
        observation: serde_json::Value,
    },
    /// An attempt failed and the step will run again.
    StepRetrying {
        /// Index of the spec.
        spec: usize,
        /// Index of the step.
        step: usize,
        /// The attempt that failed.
        attempt: u32,
        /// Why, in one line.
        reason: String,
        /// The pause before the next attempt.
        #[serde(with = "millis")]
        delay: Duration,
    },
    /// A step is done (passed, failed, skipped…).
    StepFinished {
        /// Index of the spec.
        spec: usize,
        /// What happened (shared: reporters keep it without copying).
        report: Arc<StepReport>,
        /// The whole result of a step whose report keeps only a brief of it
        /// (one that passed), for what is shown as the step finishes
        /// (`-vv`); nobody should keep it.
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<Arc<serde_json::Value>>,
    },
    /// A spec is done.
    SpecFinished {
        /// Index of the spec.
        spec: usize,
        /// What happened.
        report: SpecReport,
    },
    /// The run is done.
    RunFinished {
        /// Totals.
        report: RunSummary,
    },
}

/// What reporters need to know about a spec before it runs.
#[derive(Debug, Clone, Serialize)]
pub struct SpecInfo {
    /// Index in the run.
    pub index: usize,
    /// The test case id.
    pub id: String,
    /// A human title.
    pub name: Option<String>,
    /// What the case shows.
    pub objective: Option<String>,
    /// The file.
    pub path: PathBuf,
    /// The file's text, for rendering snippets.
    #[serde(skip)]
    pub source: Arc<SourceFile>,
    /// How important.
    pub priority: Priority,
    /// Tags.
    pub tags: Vec<String>,
    /// Test phase.
    pub phase: Option<String>,
    /// The steps.
    pub steps: Vec<StepInfo>,
}

impl SpecInfo {
    /// The file the spans of step `step` point into: the spec's, or the
    /// file it includes that the step comes from.
    pub fn source_of(&self, step: usize) -> &Arc<SourceFile> {
        self.steps
            .get(step)
            .and_then(|s| s.source.as_ref())
            .unwrap_or(&self.source)
    }
}

/// A step as reporters see it before it runs.
#[derive(Debug, Clone, Serialize)]
pub struct StepInfo {
    /// Step id.
    pub id: String,
    /// Human title.
    pub name: Option<String>,
    /// Kind.
    pub kind: StepKind,
    /// A teardown step.
    pub always: bool,
    /// The step turns TLS certificate verification off (`insecure = true`,
    /// or a template that may render `true`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// The file the step was written in when it is not the spec's (a file
    /// the spec includes): the spans of its outcomes point there.
    #[serde(skip)]
    pub source: Option<Arc<SourceFile>>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Every expectation held.
    Passed,
    /// Every blocking expectation held; some non-blocking one did not.
    Warned,
    /// A blocking expectation did not hold.
    Failed,
    /// The step could not be performed (unreachable server, timeout, bad template…).
    Errored,
    /// Not run: its condition was false, or something it needs failed.
    Skipped,
    /// Not run or stopped: the run was cancelled.
    Cancelled,
}

impl StepStatus {
    /// Whether the step counts against the spec.
    pub fn is_failure(self) -> bool {
        matches!(self, StepStatus::Failed | StepStatus::Errored)
    }

    /// A short word for terminals and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Passed => "passed",
            StepStatus::Warned => "warned",
            StepStatus::Failed => "failed",
            StepStatus::Errored => "error",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
        }
    }
}

/// The outcome of one expectation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpectationOutcome {
    /// What was checked (`status`, `header content-type`, `json.$.checks`).
    pub target: String,
    /// Where the expectation was written.
    pub span: Span,
    /// `expect` (true) or `should` (false).
    pub blocking: bool,
    /// Whether it held.
    pub passed: bool,
    /// One line: what was expected and what was found.
    pub message: String,
    /// The expected value or condition, rendered.
    pub expected: String,
    /// The actual value of a failed expectation (a passed one keeps only its
    /// message: the result document holds the values).
    pub actual: Option<serde_json::Value>,
    /// A line diff of expected and actual for large values.
    pub diff: Option<String>,
}

/// Why a step could not be performed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepFailure {
    /// Whose failure it is: the step's, or planrun's own.
    pub kind: StepErrorKind,
    /// The message.
    pub message: String,
    /// The place in the spec it concerns, when there is one.
    pub span: Option<Span>,
    /// What to do about it.
    pub help: Option<String>,
}

impl StepFailure {
    /// Whether planrun itself failed rather than the step.
    pub fn is_internal(&self) -> bool {
        self.kind == StepErrorKind::Internal
    }

    /// The message as reporters show it: planrun's own failures say so.
    pub fn headline(&self) -> Cow<'_, str> {
        if self.is_internal() {
            Cow::Owned(format!("planrun error: {}", self.message))
        } else {
            Cow::Borrowed(&self.message)
        }
    }
}

/// Everything about one finished step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    /// Index in the spec.
    pub index: usize,
    /// Step id.
    pub id: String,
    /// Human title.
    pub name: Option<String>,
    /// Kind.
    pub kind: StepKind,
    /// How it ended.
    pub status: StepStatus,
    /// Attempts made (0 when skipped); for a repeated step, the most any
    /// iteration made.
    pub attempts: u32,
    /// Time from the spec's start to the step's start.
    #[serde(with = "millis")]
    pub started: Duration,
    /// Time the step took, all attempts included.
    #[serde(with = "millis")]
    pub duration: Duration,
    /// Outcomes of the last attempt's expectations.
    pub expectations: Vec<ExpectationOutcome>,
    /// Why it could not be performed.
    pub error: Option<StepFailure>,
    /// What a failed or errored step's result showed: the end of a process's
    /// output, the start of a response body, the last messages received (the
    /// fields its kind names, see `StepKind::evidence`). Empty for a step
    /// that passed, and for one that produced no result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
    /// The last attempt's result document. A step that failed or warned
    /// keeps it whole (bodies cut to a reasonable size) as evidence; any
    /// other keeps a brief of it (see [`StepReport::brief`]), so that what
    /// reports hold does not grow with the bodies of passing steps.
    pub result: Option<serde_json::Value>,
    /// Captured values (secrets shown as `***`); for a repeated step, each
    /// a list of the iterations' values, in iteration order.
    pub captures: Vec<(String, serde_json::Value)>,
    /// A teardown step.
    pub always: bool,
    /// A repeated step's iterations: the counts, and the reports of the
    /// first failed ones. The step's own `expectations`, `result` and
    /// `evidence` then stay empty: each iteration has its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<Iterations>,
}

impl StepReport {
    /// The report of step `index` (of `kind`, a teardown step if `always`)
    /// that did not run, and the starting point of one that does: `reason`
    /// says why, when it is not empty.
    pub fn not_run(
        index: usize,
        (id, name): (String, Option<String>),
        kind: StepKind,
        always: bool,
        status: StepStatus,
        reason: &str,
    ) -> Self {
        Self {
            index,
            id,
            name,
            kind,
            status,
            attempts: 0,
            started: Duration::ZERO,
            duration: Duration::ZERO,
            expectations: Vec::new(),
            error: None,
            evidence: Vec::new(),
            skip_reason: (!reason.is_empty()).then(|| reason.to_string()),
            result: None,
            captures: Vec::new(),
            always,
            iterations: None,
        }
    }

    /// Non-blocking expectations that did not hold (a repeated step counts
    /// its iterations that warned).
    pub fn warnings(&self) -> usize {
        if let Some(iterations) = &self.iterations {
            return iterations.warned;
        }
        self.expectations
            .iter()
            .filter(|e| !e.blocking && !e.passed)
            .count()
    }

    /// Whether the step failed because planrun itself did.
    pub fn is_internal_error(&self) -> bool {
        self.error.as_ref().is_some_and(StepFailure::is_internal)
    }

    /// The longest string a brief result keeps.
    pub const BRIEF_STRING: usize = 256;

    /// Whether reports keep this step's whole result: a step that failed,
    /// errored or warned does, as evidence.
    pub fn keeps_result(&self) -> bool {
        self.status.is_failure() || self.status == StepStatus::Warned
    }

    /// What reports keep of the result of a step that passed: its top-level
    /// numbers, booleans, strings of up to [`Self::BRIEF_STRING`] bytes
    /// (status, url, size, exit code, duration) and tables of numbers
    /// (timings, counts); headers, bodies, lists and other documents are
    /// left out.
    pub fn brief(result: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        let scalar = |v: &Value| matches!(v, Value::Null | Value::Bool(_) | Value::Number(_));
        let Value::Object(fields) = result else {
            return Value::Null;
        };
        fields
            .iter()
            .filter(|(_, v)| match v {
                Value::String(s) => s.len() <= Self::BRIEF_STRING,
                Value::Array(_) => false,
                Value::Object(table) => table.values().all(scalar),
                other => scalar(other),
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// The iterations of a repeated step, kept small: counts, and the full
/// report of only the first [`Iterations::KEPT`] that failed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Iterations {
    /// Iterations that ran.
    pub count: usize,
    /// Iterations that passed (warnings included).
    pub passed: usize,
    /// Iterations that failed or could not be performed.
    pub failed: usize,
    /// Iterations that passed with a `should` that did not hold.
    pub warned: usize,
    /// The first failed iterations, in the order of their index.
    pub failures: Vec<IterationFailure>,
    /// The first iteration that warned, for its warnings.
    pub first_warning: Option<Box<IterationFailure>>,
}

impl Iterations {
    /// How many failed iterations keep their report.
    pub const KEPT: usize = 5;

    /// Failed iterations whose report was not kept.
    pub fn omitted(&self) -> usize {
        self.failed.saturating_sub(self.failures.len())
    }
}

/// The item of an iteration of `repeat = { over = … }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationItem {
    /// The name templates read it under (`as`, default `item`).
    pub name: String,
    /// The value.
    pub value: serde_json::Value,
}

/// One failed (or warned) iteration of a repeated step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IterationFailure {
    /// The iteration's `repeat.index`, from 0.
    pub index: usize,
    /// With `over`: the item.
    pub item: Option<IterationItem>,
    /// The iteration's own report (expectations, error, result, evidence).
    pub report: StepReport,
}

impl IterationFailure {
    /// How messages name the iteration: `iteration 4 (user = "bob")`.
    pub fn label(&self) -> String {
        Self::label_of(self.index, self.item.as_ref())
    }

    /// How messages name iteration `index` with `item`.
    pub fn label_of(index: usize, item: Option<&IterationItem>) -> String {
        match item {
            None => format!("iteration {index}"),
            Some(IterationItem { name, value }) => {
                let mut text = value.to_string();
                if text.chars().count() > 40 {
                    text = text.chars().take(39).collect::<String>() + "…";
                }
                format!("iteration {index} ({name} = {text})")
            }
        }
    }
}

/// A part of a failed step's result, shown beside its failure: bounded, and
/// with secrets hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The result field it comes from (`stderr`, `body`, `received`).
    pub field: String,
    /// Which part of the field `text` holds when it is not all of it
    /// (`last 10 lines`, `first 20 lines`, `last 5 of 12`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shown: Option<String>,
    /// The text, at most a few KiB. A line says where lines were left out
    /// (`… 40 earlier lines`); binary data is a note (`<2.1 KiB of binary data>`).
    pub text: String,
}

impl Evidence {
    /// The heading reporters print above the text: `stderr`,
    /// `stderr (last 10 lines)`.
    pub fn label(&self) -> String {
        match &self.shown {
            Some(shown) => format!("{} ({shown})", self.field),
            None => self.field.clone(),
        }
    }
}

/// How a spec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecStatus {
    /// Every step passed (warnings allowed).
    Passed,
    /// A step failed or errored.
    Failed,
    /// The run was cancelled before it finished.
    Cancelled,
}

/// Everything about one finished spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpecReport {
    /// Index in the run.
    pub index: usize,
    /// Test case id.
    pub id: String,
    /// How it ended.
    pub status: SpecStatus,
    /// Wall time.
    #[serde(with = "millis")]
    pub duration: Duration,
    /// How its steps ended, counted. The steps' own reports came with
    /// `StepFinished`, one at a time: a spec report never holds them, so
    /// what it weighs does not grow with the spec.
    pub counts: StepCounts,
    /// A failure of the spec as a whole (its time limit, a variable that did not render).
    pub error: Option<String>,
}

impl SpecReport {
    /// Steps that failed because planrun itself did.
    pub fn internal_errors(&self) -> usize {
        self.counts.internal_errors
    }

    /// Non-blocking expectations that did not hold (a repeated step counts
    /// its iterations that warned).
    pub fn warnings(&self) -> usize {
        self.counts.warnings
    }
}

/// How the steps of a spec ended, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCounts {
    /// Steps that passed.
    pub passed: usize,
    /// Steps that warned.
    pub warned: usize,
    /// Steps that failed.
    pub failed: usize,
    /// Steps that could not be performed.
    pub errored: usize,
    /// Steps skipped.
    pub skipped: usize,
    /// Steps cancelled.
    pub cancelled: usize,
    /// Non-blocking expectations that did not hold.
    pub warnings: usize,
    /// Steps that failed because planrun itself did.
    pub internal_errors: usize,
}

impl StepCounts {
    /// Every step counted.
    pub fn total(&self) -> usize {
        self.passed + self.warned + self.failed + self.errored + self.skipped + self.cancelled
    }

    /// The steps that ended with `status`.
    pub fn of(&self, status: StepStatus) -> usize {
        match status {
            StepStatus::Passed => self.passed,
            StepStatus::Warned => self.warned,
            StepStatus::Failed => self.failed,
            StepStatus::Errored => self.errored,
            StepStatus::Skipped => self.skipped,
            StepStatus::Cancelled => self.cancelled,
        }
    }

    /// The steps that count against the spec.
    pub fn failures(&self) -> usize {
        self.failed + self.errored
    }

    /// The steps that ran (not skipped, not cancelled).
    pub fn ran(&self) -> usize {
        self.passed + self.warned + self.failed + self.errored
    }

    fn slot(&mut self, status: StepStatus) -> &mut usize {
        match status {
            StepStatus::Passed => &mut self.passed,
            StepStatus::Warned => &mut self.warned,
            StepStatus::Failed => &mut self.failed,
            StepStatus::Errored => &mut self.errored,
            StepStatus::Skipped => &mut self.skipped,
            StepStatus::Cancelled => &mut self.cancelled,
        }
    }

    fn add(&mut self, mark: Mark) {
        *self.slot(mark.status) += 1;
        self.warnings += mark.warnings as usize;
        self.internal_errors += usize::from(mark.internal);
    }

    fn remove(&mut self, mark: Mark) {
        let slot = self.slot(mark.status);
        *slot = slot.saturating_sub(1);
        self.warnings = self.warnings.saturating_sub(mark.warnings as usize);
        self.internal_errors = self
            .internal_errors
            .saturating_sub(usize::from(mark.internal));
    }
}

/// What a tally keeps of one step: a few bytes, whatever its report.
#[derive(Debug, Clone, Copy)]
struct Mark {
    status: StepStatus,
    warnings: u32,
    internal: bool,
}

/// The counts of a spec's steps as their reports arrive, a step reported
/// again replacing what it counted before; it keeps a few bytes a step,
/// never the reports.
#[derive(Debug, Clone, Default)]
pub struct StepTally {
    counts: StepCounts,
    marks: Vec<Option<Mark>>,
    /// The latest end of a step, from the spec's start.
    ended: Duration,
}

impl StepTally {
    /// A tally for a spec of `steps` steps, its room taken at once.
    pub fn for_steps(steps: usize) -> Self {
        Self {
            marks: vec![None; steps],
            ..Self::default()
        }
    }

    /// Counts `step`; `true` when it replaced an earlier report of it.
    pub fn record(&mut self, step: &StepReport) -> bool {
        let mark = Mark {
            status: step.status,
            warnings: u32::try_from(step.warnings()).unwrap_or(u32::MAX),
            internal: step.is_internal_error(),
        };
        if self.marks.len() <= step.index {
            self.marks.resize(step.index + 1, None);
        }
        let replaced = self.marks[step.index].replace(mark);
        if let Some(old) = replaced {
            self.counts.remove(old);
        }
        self.counts.add(mark);
        self.ended = self.ended.max(step.started + step.duration);
        replaced.is_some()
    }

    /// Whether step `index` was counted.
    pub fn has(&self, index: usize) -> bool {
        self.marks.get(index).is_some_and(Option::is_some)
    }

    /// How the steps counted ended.
    pub fn counts(&self) -> StepCounts {
        self.counts
    }

    /// The counts of a spec of `steps` steps cut short: the steps not
    /// counted as cancelled.
    pub fn cut_short(&self, steps: usize) -> StepCounts {
        let mut counts = self.counts;
        let seen = self.marks.iter().take(steps).flatten().count();
        counts.cancelled += steps.saturating_sub(seen);
        counts
    }

    /// The latest end of a step counted, from the spec's start.
    pub fn ended(&self) -> Duration {
        self.ended
    }
}

/// Totals of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunSummary {
    /// Specs that passed.
    pub passed: usize,
    /// Specs that failed.
    pub failed: usize,
    /// Specs cancelled.
    pub cancelled: usize,
    /// Non-blocking expectations that did not hold.
    pub warnings: usize,
    /// Steps that failed because planrun itself did (see
    /// [`StepErrorKind::Internal`]).
    pub internal_errors: usize,
    /// Wall time.
    #[serde(with = "millis")]
    pub duration: Duration,
    /// Whether Ctrl-C (or `--fail-fast`) stopped the run.
    pub interrupted: bool,
}

/// Serializes a duration as fractional milliseconds.
pub mod millis {
    use std::time::Duration;

    /// Milliseconds with three decimals.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1_000_000.0).round() / 1000.0)
    }

    /// The duration serialized as milliseconds (to the microsecond).
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = <f64 as serde::Deserialize>::deserialize(d)?;
        Duration::try_from_secs_f64(ms / 1000.0).map_err(serde::de::Error::custom)
    }
}
