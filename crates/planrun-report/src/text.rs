//! Small text helpers every reporter shares: counts, values, truncation, and
//! the failure details of a step (durations are `planrun_spec::duration::human`).
//!
//! Nothing here writes or knows about an output format beyond plain text.

use std::borrow::Cow;
use std::fmt::Write as _;

use miette::Severity;
use planrun_runner::events::{
    ExpectationOutcome, RunSummary, SpecInfo, StepCounts, StepReport, StepStatus,
};
use planrun_spec::duration::human;
use planrun_spec::source::SourceFile;
use serde_json::Value;

use crate::snippet::Snippet;
use crate::style::Painter;

/// `1 spec`, `2 specs`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A value as a reader wants it: a one-line string quoted, a multi-line
/// string as its lines, anything else as (pretty) JSON.
pub(crate) fn format_value(value: &Value) -> String {
    match value {
        Value::String(s) if s.contains('\n') => s.clone(),
        Value::Array(_) | Value::Object(_) => {
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        }
        Value::Number(n) => readable_number(n),
        other => other.to_string(),
    }
}

/// A number for people: a fraction keeps at most 3 decimals (`455.462`, not
/// `455.461953`); whole numbers and small fractions are left as they are.
fn readable_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() && f.is_finite() && f.abs() >= 0.001 => {
            let text = format!("{f:.3}");
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
        _ => n.to_string(),
    }
}

/// A value on one line, cut to `max` characters.
pub(crate) fn format_value_inline(value: &Value, max: usize) -> String {
    truncate_chars(&value.to_string(), max)
}

/// Cuts `text` to `max` characters, marking the cut with `…`.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `max_lines` lines of `text`, each at most `width` characters; a
/// last line says how many were left out.
pub(crate) fn truncate_lines(text: &str, max_lines: usize, width: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = lines
        .iter()
        .take(max_lines)
        .map(|line| truncate_chars(line, width))
        .collect();
    if lines.len() > max_lines {
        let hidden = lines.len() - max_lines;
        out.push(format!(
            "… {hidden} more {}",
            if hidden == 1 { "line" } else { "lines" }
        ));
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// The label under an expectation's span: what was found, when it is short.
pub(crate) fn expectation_label(outcome: &ExpectationOutcome) -> String {
    match &outcome.actual {
        Some(actual) => {
            let inline = match actual {
                Value::Number(n) => readable_number(n),
                other => other.to_string(),
            };
            if inline.chars().count() <= 40 && !inline.contains('\n') {
                format!("got {inline}")
            } else if outcome.blocking {
                "expectation failed".to_owned()
            } else {
                "should, did not hold".to_owned()
            }
        }
        None => "nothing to compare".to_owned(),
    }
}

/// The expectations of a step that did not hold, blocking ones first.
pub(crate) fn failed_expectations(step: &StepReport) -> Vec<&ExpectationOutcome> {
    let mut failed: Vec<&ExpectationOutcome> =
        step.expectations.iter().filter(|e| !e.passed).collect();
    failed.sort_by_key(|e| !e.blocking);
    failed
}

/// What went wrong with a step, as reports show it: the step itself or,
/// for a repeated step, each failed iteration it kept and the first that
/// warned, with messages and
/// evidence prefixed by the iteration (`iteration 4 (user = "bob"): status: …`).
pub(crate) fn failure_views(step: &StepReport) -> Vec<Cow<'_, StepReport>> {
    let Some(iterations) = &step.iterations else {
        return vec![Cow::Borrowed(step)];
    };
    iterations
        .failures
        .iter()
        .chain(iterations.first_warning.as_deref())
        .map(|failure| {
            let label = failure.label();
            let mut report = failure.report.clone();
            for e in &mut report.expectations {
                e.message = format!("{label}: {}", e.message);
            }
            if let Some(error) = &mut report.error {
                error.message = format!("{label}: {}", error.message);
            }
            for e in &mut report.evidence {
                e.field = format!("{label}: {}", e.field);
            }
            Cow::Owned(report)
        })
        .collect()
}

/// `… and 12 more failed iterations` when a repeated step kept the reports
/// of only its first failures.
pub(crate) fn omitted_failures(step: &StepReport) -> Option<String> {
    let omitted = step.iterations.as_ref()?.omitted();
    (omitted > 0).then(|| {
        format!(
            "… and {omitted} more failed {}",
            if omitted == 1 {
                "iteration"
            } else {
                "iterations"
            }
        )
    })
}

/// `10 iterations` or `3 of 10 iterations failed`, for a repeated step.
pub(crate) fn iterations_line(step: &StepReport) -> Option<String> {
    let it = step.iterations.as_ref()?;
    let mut line = if it.failed > 0 {
        format!(
            "{} of {} failed",
            it.failed,
            count(it.count, "iteration", "iterations")
        )
    } else {
        count(it.count, "iteration", "iterations")
    };
    if it.warned > 0 {
        let _ = write!(line, " ({} warned)", it.warned);
    }
    Some(line)
}

/// How many lines of an actual value or a diff plain reports keep.
const PLAIN_ACTUAL_LINES: usize = 20;
const PLAIN_DIFF_LINES: usize = 60;

/// Everything wrong with a step as plain text: a snippet per failed
/// expectation with expected and actual, and the error with its help.
/// `warnings` selects the non-blocking failures instead of the blocking ones.
pub(crate) fn plain_failures(info: &SpecInfo, step: &StepReport, warnings: bool) -> String {
    let mut out = String::new();
    for view in failure_views(step) {
        out.push_str(&plain_failures_of(info, &view, warnings));
    }
    if !warnings && let Some(line) = omitted_failures(step) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn plain_failures_of(info: &SpecInfo, step: &StepReport, warnings: bool) -> String {
    let mut out = String::new();
    let mut previous = None;
    for outcome in failed_expectations(step) {
        if outcome.blocking == warnings {
            continue;
        }
        out.push_str(&expectation_snippet(
            info.source_of(step.index),
            outcome,
            false,
            100,
        ));
        out.push_str(&expectation_details(
            outcome,
            std::mem::replace(&mut previous, outcome.actual.as_ref()),
            "",
            (PLAIN_ACTUAL_LINES, PLAIN_DIFF_LINES),
            100,
            Painter::new(false),
        ));
    }
    if !warnings && let Some(error) = &step.error {
        out.push_str(
            &Snippet {
                message: &error.headline(),
                severity: Severity::Error,
                span: error.span.clone(),
                label: None,
                help: error.help.as_deref(),
            }
            .render(info.source_of(step.index), false, 100),
        );
    }
    if !warnings {
        out.push_str(&evidence_block(step, "", Painter::new(false)));
    }
    out
}

/// The evidence of a failed or errored step, each piece under its label
/// (`stderr (last 10 lines):`) and indented below it; nothing for a step
/// that did not fail.
pub(crate) fn evidence_block(step: &StepReport, indent: &str, paint: Painter) -> String {
    let mut out = String::new();
    if !step.status.is_failure() {
        return out;
    }
    for evidence in &step.evidence {
        let _ = writeln!(
            out,
            "{indent}{}",
            paint.dim(&format!("{}:", evidence.label()))
        );
        for line in evidence.text.lines() {
            if line.trim().is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "{indent}  {line}");
            }
        }
    }
    out
}

/// The snippet of one failed expectation, in the file of its step.
pub(crate) fn expectation_snippet(
    source: &SourceFile,
    outcome: &ExpectationOutcome,
    color: bool,
    width: usize,
) -> String {
    let label = expectation_label(outcome);
    Snippet {
        message: &outcome.message,
        severity: if outcome.blocking {
            Severity::Error
        } else {
            Severity::Warning
        },
        span: Some(outcome.span.clone()),
        label: Some(&label),
        help: None,
    }
    .render(source, color, width)
}

/// `expected: …`, `actual: …` and the diff of one expectation, each line
/// prefixed with `indent`; the actual value keeps `actual_lines` lines, the
/// diff `diff_lines`. An actual value equal to the one shown for the
/// expectation before (`previous`: several checks of one target) is not
/// shown again.
pub(crate) fn expectation_details(
    outcome: &ExpectationOutcome,
    previous: Option<&Value>,
    indent: &str,
    (actual_lines, diff_lines): (usize, usize),
    width: usize,
    paint: Painter,
) -> String {
    let mut out = String::new();
    let width = width.saturating_sub(indent.len() + 10).max(20);
    let repeated = outcome.actual.is_some() && outcome.actual.as_ref() == previous;
    let actual = if repeated {
        String::from("(as above)")
    } else {
        actual_text(outcome)
    };
    if !diff_replaces_values(outcome, &actual) {
        push_labelled(
            &mut out,
            indent,
            "expected:",
            &outcome.expected,
            actual_lines,
            width,
            paint,
        );
        push_labelled(
            &mut out,
            indent,
            "actual:  ",
            &actual,
            actual_lines,
            width,
            paint,
        );
    }
    if let Some(diff) = &outcome.diff {
        let _ = writeln!(out, "{indent}{}", paint.dim("differences:"));
        for line in truncate_lines(diff, diff_lines, width) {
            let _ = writeln!(out, "{indent}  {line}");
        }
    }
    out
}

/// The actual value as text, `(no value)` when there was none.
pub(crate) fn actual_text(outcome: &ExpectationOutcome) -> String {
    outcome
        .actual
        .as_ref()
        .map_or_else(|| "(no value)".to_owned(), format_value)
}

/// A diff says it all when the values take several lines: showing them too
/// would print everything three times.
pub(crate) fn diff_replaces_values(outcome: &ExpectationOutcome, actual: &str) -> bool {
    outcome.diff.is_some() && (outcome.expected.contains('\n') || actual.contains('\n'))
}

fn push_labelled(
    out: &mut String,
    indent: &str,
    label: &str,
    text: &str,
    max_lines: usize,
    width: usize,
    paint: Painter,
) {
    let pad = " ".repeat(label.chars().count());
    for (i, line) in truncate_lines(text, max_lines, width).iter().enumerate() {
        let head = if i == 0 {
            paint.dim(label)
        } else {
            pad.clone()
        };
        let _ = writeln!(out, "{indent}{head} {line}");
    }
}

/// `2 specs: 1 passed, 1 failed, 1 warning in 1.23s`: the run in one line.
pub(crate) fn summary_line(summary: &RunSummary, paint: Painter) -> String {
    let total = summary.passed + summary.failed + summary.cancelled;
    let mut parts = vec![paint.green(&format!("{} passed", summary.passed))];
    if summary.failed > 0 {
        parts.push(paint.bold_red(&format!("{} failed", summary.failed)));
    }
    if summary.cancelled > 0 {
        parts.push(paint.dim(&format!("{} cancelled", summary.cancelled)));
    }
    if summary.warnings > 0 {
        parts.push(paint.yellow(&count(summary.warnings, "warning", "warnings")));
    }
    let mut text = format!(
        "{}: {} in {}",
        paint.bold(&count(total, "spec", "specs")),
        parts.join(", "),
        human(summary.duration),
    );
    if summary.interrupted {
        let _ = write!(text, " {}", paint.yellow("(interrupted)"));
    }
    text
}

/// A compact, line-per-field summary of a result document, for JUnit
/// `system-out`: scalars as they are, long strings cut, arrays and large
/// objects counted.
pub(crate) fn result_summary(step: &StepReport) -> String {
    let mut out = String::new();
    if let Some(result) = &step.result {
        match result {
            Value::Object(fields) => {
                for (key, value) in fields {
                    let _ = writeln!(out, "{key}: {}", summarize_field(value));
                }
            }
            other => {
                let _ = writeln!(out, "result: {}", summarize_field(other));
            }
        }
    }
    if !step.captures.is_empty() {
        out.push_str("captures:\n");
        for (name, value) in &step.captures {
            let _ = writeln!(out, "  {name} = {}", format_value_inline(value, 200));
        }
    }
    if step.attempts > 1 {
        let _ = writeln!(out, "attempts: {}", step.attempts);
    }
    out
}

fn summarize_field(value: &Value) -> String {
    match value {
        Value::Array(items) => match serde_json::to_string(value) {
            Ok(text) if text.len() <= 120 => text,
            _ => count(items.len(), "item", "items"),
        },
        Value::Object(map) => match serde_json::to_string(value) {
            Ok(text) if text.len() <= 200 => text,
            _ => format!("{{{}}}", count(map.len(), "key", "keys")),
        },
        other => format_value_inline(other, 500),
    }
}

/// `1 passed, 1 failed, 1 skipped`: the non-zero step counts in a fixed order.
pub(crate) fn step_counts(counts: &StepCounts) -> String {
    const ORDER: [StepStatus; 6] = [
        StepStatus::Passed,
        StepStatus::Warned,
        StepStatus::Failed,
        StepStatus::Errored,
        StepStatus::Skipped,
        StepStatus::Cancelled,
    ];
    let parts: Vec<String> = ORDER
        .iter()
        .filter_map(|status| {
            let n = counts.of(*status);
            // the other words are participles: `2 failed`, but `2 errors`
            (n > 0).then(|| match status {
                StepStatus::Errored => count(n, "error", "errors"),
                other => format!("{n} {}", other.as_str()),
            })
        })
        .collect();
    if parts.is_empty() {
        "no steps".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation() {
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
        assert_eq!(truncate_chars("abc", 4), "abc");
        let lines = truncate_lines("a\nb\nc\nd", 2, 10);
        assert_eq!(lines, ["a", "b", "… 2 more lines"]);
    }

    #[test]
    fn values() {
        assert_eq!(format_value(&Value::from("ok")), "\"ok\"");
        assert_eq!(format_value(&Value::from("a\nb")), "a\nb");
        assert_eq!(format_value(&Value::from(503)), "503");
    }
}
