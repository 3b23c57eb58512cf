//! A Markdown summary for CI job pages (`$GITHUB_STEP_SUMMARY`, GitLab
//! Markdown artifacts): a table of specs, then a section per spec that
//! failed or warned, with each failed expectation's location, expected and
//! actual values.
//!
//! Written at `finish` from what the events said; like the other file
//! reporters it survives an interrupted run. It renders and writes only.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;

use planrun_runner::events::{ExpectationOutcome, RunEvent, SpecStatus, StepReport, StepStatus};

use planrun_spec::duration::human;
use planrun_spec::source::SourceFile;

use crate::Reporter;
use crate::collect::{FinalSpec, RunCollector};
use crate::files::{FileFormat, FileReports};
use crate::sink::Sink;
use crate::style::Painter;
use crate::text::{
    actual_text, count, diff_replaces_values, failed_expectations, failure_views, iterations_line,
    omitted_failures, step_counts, summary_line, truncate_lines,
};

/// Lines of an actual value or a diff kept in the summary.
const MAX_LINES: usize = 30;

/// Writes a Markdown summary of the run.
#[derive(Debug)]
pub struct MarkdownReporter {
    files: FileReports,
}

impl MarkdownReporter {
    /// A reporter replacing the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_sink(Sink::path(path))
    }

    /// A reporter adding to the end of the file at `path`, as GitHub asks
    /// for `$GITHUB_STEP_SUMMARY`.
    pub fn appending(path: impl Into<PathBuf>) -> Self {
        Self::with_sink(Sink::Path {
            path: path.into(),
            append: true,
        })
    }

    /// A reporter writing to `out`.
    pub fn with_writer(out: Box<dyn Write + Send>) -> Self {
        Self::with_sink(Sink::Writer(out))
    }

    fn with_sink(sink: Sink) -> Self {
        Self {
            files: FileReports::one(FileFormat::Markdown, sink),
        }
    }

    /// The Markdown for what has happened so far.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = write_document(self.files.collector(), &mut out) {
            let _ = writeln!(out, "\n(the rest of the report is missing: {e})");
        }
        out
    }
}

/// Writes the Markdown for what has happened so far: the summary table,
/// then a section per spec that failed or warned, each spec's steps read
/// back from the collector once per part.
pub(crate) fn write_document(collector: &RunCollector, out: &mut String) -> io::Result<()> {
    let summary = collector.summary();
    let total = collector.len();
    let title = if summary.interrupted {
        format!(
            "⏹️ planrun: interrupted, {} of {total} finished",
            total - summary.cancelled
        )
    } else if summary.failed > 0 {
        format!(
            "❌ planrun: {} of {} failed",
            summary.failed,
            count(total, "spec", "specs")
        )
    } else {
        format!("✅ planrun: {} passed", count(total, "spec", "specs"))
    };
    let _ = writeln!(out, "## {title}\n");
    let _ = writeln!(out, "{}\n", summary_line(&summary, Painter::new(false)));

    if total > 0 {
        out.push_str("| | Spec | Name | Priority | Steps | Duration |\n");
        out.push_str("|:-:|---|---|---|--:|--:|\n");
        collector.each_spec(|spec| {
            let counts = &spec.report.counts;
            let (passed, steps) = (counts.passed + counts.warned, spec.steps());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {passed}/{steps} | {} |",
                spec_emoji(spec),
                cell(&spec.info.id),
                cell(spec.info.name.as_deref().unwrap_or("")),
                spec.info.priority.as_str(),
                human(spec.report.duration),
            );
            Ok(())
        })?;
    }

    collector.each_spec(|spec| {
        if spec.report.status == SpecStatus::Failed || spec.warnings() > 0 {
            out.push('\n');
            spec_section(out, spec)?;
        }
        Ok(())
    })
}

impl Reporter for MarkdownReporter {
    fn on_event(&mut self, event: &RunEvent) -> io::Result<()> {
        self.files.on_event(event)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.files.finish()
    }
}

fn spec_emoji(spec: &FinalSpec<'_>) -> &'static str {
    match spec.report.status {
        SpecStatus::Failed => "❌",
        SpecStatus::Cancelled => "⏹️",
        SpecStatus::Passed if spec.warnings() > 0 => "⚠️",
        SpecStatus::Passed => "✅",
    }
}

/// A spec's section: its failed and errored steps, those not run, and its
/// warnings, each part from its steps' reports read back one at a time.
fn spec_section(out: &mut String, spec: &FinalSpec<'_>) -> io::Result<()> {
    let info = spec.info;
    let report = &spec.report;
    let mut title = format!("{} {}", spec_emoji(spec), info.id);
    if let Some(name) = &info.name {
        let _ = write!(title, " {name}");
    }
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(
        out,
        "{} · {}\n",
        code(&info.path.display().to_string()),
        step_counts(&report.counts)
    );
    if let Some(error) = &report.error {
        let _ = writeln!(out, "**Spec error:** {error}\n");
    }

    spec.each_step(|step| {
        match step.status {
            StepStatus::Failed => {
                let failed = iterations_line(step).unwrap_or_else(|| "failed".to_owned());
                let _ = writeln!(
                    out,
                    "#### ✗ {} ({}) {failed}\n",
                    code(&step.id),
                    step.kind.key()
                );
                for view in failure_views(step) {
                    for outcome in failed_expectations(&view)
                        .into_iter()
                        .filter(|e| e.blocking)
                    {
                        expectation_item(out, info.source_of(step.index), None, outcome);
                    }
                    if let Some(error) = &view.error {
                        let _ = writeln!(out, "- {}", error.headline());
                    }
                    evidence_items(out, &view);
                }
                if let Some(line) = omitted_failures(step) {
                    let _ = writeln!(out, "- {line}");
                }
                out.push('\n');
            }
            StepStatus::Errored => {
                let _ = writeln!(
                    out,
                    "#### ⚠ {} ({}) could not run\n",
                    code(&step.id),
                    step.kind.key()
                );
                let views = failure_views(step);
                for error in views.iter().filter_map(|v| v.error.as_ref()) {
                    let mut line = String::new();
                    if let Some(span) = &error.span {
                        let source = info.source_of(step.index);
                        let _ = write!(line, "{}: ", code(&location(source, span.start)));
                    }
                    let _ = writeln!(out, "{line}{}\n", error.headline());
                    if let Some(help) = &error.help {
                        let _ = writeln!(out, "> **help:** {help}\n");
                    }
                }
                for view in &views {
                    if !view.evidence.is_empty() {
                        evidence_items(out, view);
                        out.push('\n');
                    }
                }
                if let Some(line) = omitted_failures(step) {
                    let _ = writeln!(out, "{line}\n");
                }
            }
            _ => {}
        }
        Ok(())
    })?;

    let mut skipped = Vec::new();
    spec.each_step(|s| {
        if matches!(s.status, StepStatus::Skipped | StepStatus::Cancelled) {
            skipped.push(match &s.skip_reason {
                Some(reason) => format!("{} ({reason})", code(&s.id)),
                None => format!("{} ({})", code(&s.id), s.status.as_str()),
            });
        }
        Ok(())
    })?;
    if !skipped.is_empty() {
        let _ = writeln!(out, "**Not run:** {}\n", skipped.join(", "));
    }

    // a repeated step's warnings are those of its first iteration that warned
    let mut warned = false;
    spec.each_step(|step| {
        for view in failure_views(step) {
            for outcome in failed_expectations(&view)
                .into_iter()
                .filter(|e| !e.blocking)
            {
                if !warned {
                    let _ = writeln!(out, "#### ! Warnings\n");
                    warned = true;
                }
                expectation_item(out, info.source_of(step.index), Some(&step.id), outcome);
            }
        }
        Ok(())
    })?;
    if warned {
        out.push('\n');
    }
    Ok(())
}

/// One failed expectation as a list item with nested expected/actual.
fn expectation_item(
    out: &mut String,
    source: &SourceFile,
    step: Option<&str>,
    outcome: &ExpectationOutcome,
) {
    let mut head = String::new();
    if let Some(step) = step {
        let _ = write!(head, "{} › ", code(step));
    }
    let _ = writeln!(
        out,
        "- {head}**{}** at {}: {}",
        escape(&outcome.target),
        code(&location(source, outcome.span.start)),
        outcome.message
    );
    let actual = actual_text(outcome);
    if !diff_replaces_values(outcome, &actual) {
        value_item(out, "expected", &outcome.expected);
        value_item(out, "actual", &actual);
    }
    if let Some(diff) = &outcome.diff {
        let diff = truncate_lines(diff, MAX_LINES, 200).join("\n");
        let fence = fence_for(&diff);
        let _ = writeln!(
            out,
            "  - differences:\n\n    {fence}\n{}\n    {fence}",
            indent(&diff, "    ")
        );
    }
}

/// A failed step's evidence: a list item per piece, its text fenced.
fn evidence_items(out: &mut String, step: &StepReport) {
    for evidence in &step.evidence {
        let fence = fence_for(&evidence.text);
        let mut label = format!("**{}**", escape(&evidence.field));
        if let Some(shown) = &evidence.shown {
            let _ = write!(label, " ({})", escape(shown));
        }
        let _ = writeln!(
            out,
            "- {label}:\n\n  {fence}\n{}\n  {fence}",
            indent(&evidence.text, "  ")
        );
    }
}

fn value_item(out: &mut String, label: &str, text: &str) {
    if text.contains('\n') {
        let text = truncate_lines(text, MAX_LINES, 200).join("\n");
        let fence = fence_for(&text);
        let _ = writeln!(
            out,
            "  - {label}:\n\n    {fence}\n{}\n    {fence}",
            indent(&text, "    ")
        );
    } else {
        let _ = writeln!(out, "  - {label}: {}", code(text));
    }
}

/// `path:line:col` of a byte offset in a step's file (the spec, or a file
/// it includes).
fn location(source: &SourceFile, offset: usize) -> String {
    let (line, col) = source.line_col(offset);
    format!("{}:{line}:{col}", source.name())
}

/// Inline code that survives backticks in the text.
fn code(text: &str) -> String {
    let longest = longest_run(text, '`');
    if longest == 0 {
        return format!("`{text}`");
    }
    let ticks = "`".repeat(longest + 1);
    format!("{ticks} {text} {ticks}")
}

/// A code fence longer than any backtick run in `text`.
fn fence_for(text: &str) -> String {
    "`".repeat(longest_run(text, '`').max(2) + 1)
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for ch in text.chars() {
        if ch == c {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// Text for a table cell: no pipes, no line breaks.
fn cell(text: &str) -> String {
    escape(text).replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Keeps text from being read as Markdown or HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' | '_' | '`' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    out
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{prefix}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_code_with_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "`` a`b ``");
        assert_eq!(fence_for("x"), "```");
        assert_eq!(fence_for("```"), "````");
    }

    #[test]
    fn cells_escape_pipes() {
        assert_eq!(cell("a|b\nc <d>"), "a\\|b c &lt;d&gt;");
    }
}
