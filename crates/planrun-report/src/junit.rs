//! JUnit XML for CI test views (GitHub, GitLab, Jenkins): a testsuite per
//! spec, a testcase per step.
//!
//! The document is written with quick-junit at `finish`, one test case at
//! a time, from what the events said; a spec the run never finished is written with its missing steps as
//! cancelled, so an interrupted run still leaves a readable file. This module
//! renders and writes; it never looks at a terminal.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Local, TimeDelta};
use planrun_runner::events::{RunEvent, SpecReport, StepReport, StepStatus};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};

use crate::Reporter;
use crate::collect::{FinalSpec, Retry, RunCollector};
use crate::files::{FileFormat, FileReports};
use crate::sink::Sink;
use crate::text::{
    failed_expectations, failure_views, iterations_line, plain_failures, result_summary,
};

/// Writes a JUnit XML report when the run is over.
///
/// - `<testsuite name="TC-003 WSGI health check">` per spec, with the spec
///   file, priority, tags, phase and warning count as properties;
/// - `<testcase classname="TC-003" name="health">` per step;
/// - `<failure>` for a failed step: the first failed expectation as the
///   message, every failed expectation rendered as a spec snippet (with
///   expected and actual) as the text;
/// - `<error>` for a step that could not be performed, with its help;
/// - `<skipped>` for skipped and cancelled steps;
/// - retries as `<flakyFailure>`/`<rerunFailure>`;
/// - a compact result summary in `<system-out>`, warnings (non-blocking
///   failures) in `<system-err>`.
#[derive(Debug)]
pub struct JunitReporter {
    files: FileReports,
}

impl JunitReporter {
    /// A reporter writing the file at `path` (parent directories created).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_sink(Sink::path(path))
    }

    /// A reporter writing to `out`.
    pub fn with_writer(out: Box<dyn Write + Send>) -> Self {
        Self::with_sink(Sink::Writer(out))
    }

    fn with_sink(sink: Sink) -> Self {
        Self {
            files: FileReports::one(FileFormat::Junit, sink),
        }
    }

    /// The XML document for what has happened so far.
    pub fn render(&self) -> io::Result<String> {
        let mut out = Vec::new();
        write_document(self.files.collector(), &mut out)?;
        String::from_utf8(out).map_err(io::Error::other)
    }
}

/// Writes the JUnit document of what the collector holds, one test case
/// at a time: the totals of the `<testsuites>` element and of each
/// `<testsuite>` come from the specs' step counts, and each case is built,
/// written and dropped, so neither the document nor a suite is ever held.
/// The text is quick-junit's, element by element.
pub(crate) fn write_document(collector: &RunCollector, out: &mut dyn Write) -> io::Result<()> {
    let mut head = Report::new("planrun");
    if let Some(started_at) = collector.started_at() {
        head.set_timestamp(started_at);
    }
    head.set_time(collector.summary().duration);
    collector.each_spec(|spec| {
        head.add_test_suite(suite_head(spec));
        head.test_suites.clear();
        Ok(())
    })?;
    let head = head.to_string().map_err(io::Error::other)?;
    if collector.len() == 0 {
        return out.write_all(head.as_bytes());
    }
    out.write_all(open_part(&head, "</testsuites>").as_bytes())?;
    collector.each_spec(|spec| {
        let mut one = Report::new("planrun");
        one.add_test_suite(suite_head(spec));
        let text = one.to_string().map_err(io::Error::other)?;
        // the suite's start tag and properties, without its end
        let start = text.find("\n    <testsuite").unwrap_or(0);
        out.write_all(open_part(&text[start..], "</testsuite>").as_bytes())?;
        let mut case = |case: TestCase| {
            let mut one = Report::new("planrun");
            let mut suite = TestSuite::new("");
            suite.add_test_case(case);
            one.add_test_suite(suite);
            let text = one.to_string().map_err(io::Error::other)?;
            let start = text.find("\n        <testcase").unwrap_or(0);
            let end = text
                .rfind("</testsuite>")
                .map_or(text.len(), |at| text[..at].trim_end().len());
            out.write_all(&text.as_bytes()[start..end.max(start)])
        };
        spec.each_step(|step| case(test_case(spec, step)))?;
        if let Some(case_of_spec) = spec_error_case(spec) {
            case(case_of_spec)?;
        }
        out.write_all(b"\n    </testsuite>")
    })?;
    writeln!(out, "\n</testsuites>")
}

/// An element's text up to its end tag `end`, with what follows its last
/// child, for children written after it; a self-closing element is
/// opened.
fn open_part<'a>(text: &'a str, end: &str) -> Cow<'a, str> {
    if let Some(at) = text.rfind(end) {
        return Cow::Borrowed(text[..at].trim_end());
    }
    let text = text.trim_end();
    match text.strip_suffix("/>") {
        Some(open) => Cow::Owned(format!("{}>", open.trim_end())),
        None => Cow::Borrowed(text),
    }
}

impl Reporter for JunitReporter {
    fn on_event(&mut self, event: &RunEvent) -> io::Result<()> {
        self.files.on_event(event)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.files.finish()
    }
}

/// A spec's `<testsuite>` without its cases: its properties, and totals
/// from its step counts.
fn suite_head(spec: &FinalSpec<'_>) -> TestSuite {
    let info = spec.info;
    let report: &SpecReport = &spec.report;
    let name = match &info.name {
        Some(name) => format!("{} {name}", info.id),
        None => info.id.clone(),
    };
    let mut suite = TestSuite::new(name);
    if let Some(started_at) = spec.started_at {
        suite.set_timestamp(started_at);
    }
    suite.set_time(report.duration);
    suite.add_property(("file", info.path.display().to_string().as_str()));
    suite.add_property(("priority", info.priority.as_str()));
    if !info.tags.is_empty() {
        suite.add_property(("tags", info.tags.join(",").as_str()));
    }
    if let Some(phase) = &info.phase {
        suite.add_property(("phase", phase.as_str()));
    }
    if let Some(objective) = &info.objective {
        suite.add_property(("objective", objective.as_str()));
    }
    suite.add_property((
        "status",
        match report.status {
            planrun_runner::events::SpecStatus::Passed => "passed",
            planrun_runner::events::SpecStatus::Failed => "failed",
            planrun_runner::events::SpecStatus::Cancelled => "cancelled",
        },
    ));
    let warnings = spec.warnings();
    if warnings > 0 {
        suite.add_property(("warnings", warnings.to_string().as_str()));
    }
    // the cases each_step gives: the steps reported, the others cancelled
    let counts = report.counts;
    let unreported = spec.steps().saturating_sub(counts.total());
    let spec_error = usize::from(report.error.is_some());
    suite.tests = spec.steps() + spec_error;
    suite.failures = counts.failed;
    suite.errors = counts.errored + spec_error;
    suite.skipped = counts.skipped + counts.cancelled + unreported;
    suite
}

/// A failure of the spec as a whole (its time limit…) belongs to no step;
/// a testcase of its own makes CI views show it.
fn spec_error_case(spec: &FinalSpec<'_>) -> Option<TestCase> {
    let error = spec.report.error.as_ref()?;
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status.set_message(error.as_str()).set_type("spec error");
    let mut case = TestCase::new("(spec)", status);
    case.set_classname(spec.info.id.as_str())
        .set_time(spec.report.duration);
    Some(case)
}

fn test_case(spec: &FinalSpec<'_>, step: &StepReport) -> TestCase {
    let info = spec.info;
    // a repeated step's failures are its iterations'
    let views = failure_views(step);
    let mut status = match step.status {
        StepStatus::Passed | StepStatus::Warned => TestCaseStatus::success(),
        StepStatus::Failed => {
            let failed: Vec<_> = views
                .iter()
                .flat_map(|v| failed_expectations(v))
                .filter(|e| e.blocking)
                .collect();
            let message = match (iterations_line(step), failed.as_slice()) {
                (Some(line), [first, ..]) => format!("{line}; {}", first.message),
                (Some(line), []) => line,
                (None, []) => "failed".to_owned(),
                (None, [one]) => one.message.clone(),
                (None, [first, rest @ ..]) => {
                    format!("{} (and {} more)", first.message, rest.len())
                }
            };
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status
                .set_message(message)
                .set_type("expectation")
                .set_description(plain_failures(info, step, false));
            status
        }
        StepStatus::Errored => {
            let message = views
                .iter()
                .find_map(|v| v.error.as_ref())
                .map_or(Cow::Borrowed("the step could not be performed"), |e| {
                    e.headline()
                });
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status
                .set_message(&*message)
                .set_type("error")
                .set_description(plain_failures(info, step, false));
            status
        }
        StepStatus::Skipped | StepStatus::Cancelled => {
            let word = step.status.as_str();
            let message = match &step.skip_reason {
                Some(reason) => format!("{word}: {reason}"),
                None => word.to_owned(),
            };
            let mut status = TestCaseStatus::skipped();
            status.set_message(message).set_type(word);
            status
        }
    };
    status.add_reruns(
        spec.retries
            .iter()
            .filter(|r| r.step == step.index)
            .map(rerun),
    );

    let mut case = TestCase::new(step.id.as_str(), status);
    case.set_classname(info.id.as_str())
        .set_time(step.duration)
        .set_assertions(step.expectations.len());
    if let Some(started_at) = spec.started_at {
        case.set_timestamp(offset(started_at, step.started));
    }
    let summary = result_summary(step);
    if !summary.is_empty() {
        case.set_system_out(summary);
    }
    let warnings = plain_failures(info, step, true);
    if !warnings.is_empty() {
        case.set_system_err(warnings);
    }
    case
}

fn rerun(retry: &Retry) -> TestRerun {
    let mut rerun = TestRerun::new(NonSuccessKind::Failure);
    rerun
        .set_message(format!("attempt {}: {}", retry.attempt, retry.reason))
        .set_type("retry");
    rerun
}

fn offset(start: DateTime<Local>, by: Duration) -> DateTime<Local> {
    TimeDelta::from_std(by).map_or(start, |delta| start + delta)
}
