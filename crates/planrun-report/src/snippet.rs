//! Spec snippets: a message, the spec lines it concerns with the span
//! underlined, and a help line, drawn by miette's graphical handler.
//!
//! Every reporter that shows a failure in the spec's own text goes through
//! here, so a failed expectation looks the same in the terminal, in JUnit and
//! in Markdown, and the same as a plan-time diagnostic. This module only
//! formats; it never decides what failed.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, Severity};
use planrun_spec::source::{SourceFile, printable};
use planrun_spec::value::Span;

/// The width used by [`render_failure`].
const PLAIN_WIDTH: usize = 100;

/// Renders a failure as a spec snippet, without colours, `PLAIN_WIDTH` columns
/// wide.
///
/// The result reads like a plan-time diagnostic:
///
/// ```text
///   × expected status `200`, got `503`
///    ╭─[specs/tc-003.toml:9:17]
///  8 │ http = { get = "{{ base_url }}/health/" }
///  9 │ expect.status = 200
///    ·                 ─┬─
///    ·                  ╰── got `503`
/// 10 │ should.json."$.checks.cache" = "ok"
///    ╰────
///   help: is the server up?
/// ```
///
/// Without a span only the message and the help are drawn. A span outside
/// the text is clamped to it rather than rejected: a report must never fail
/// because a location is stale.
pub fn render_failure(
    source: &SourceFile,
    span: Option<Span>,
    message: &str,
    label: Option<&str>,
    help: Option<&str>,
) -> String {
    Snippet {
        message,
        severity: Severity::Error,
        span,
        label,
        help,
    }
    .render(source, false, PLAIN_WIDTH)
}

/// One snippet to draw.
pub(crate) struct Snippet<'a> {
    /// The headline.
    pub(crate) message: &'a str,
    /// `×` for errors, `⚠` for warnings.
    pub(crate) severity: Severity,
    /// What to underline.
    pub(crate) span: Option<Span>,
    /// Text beside the underline.
    pub(crate) label: Option<&'a str>,
    /// A `help:` line.
    pub(crate) help: Option<&'a str>,
}

impl Snippet<'_> {
    /// Draws the snippet; the text ends with a newline.
    pub(crate) fn render(&self, source: &SourceFile, color: bool, width: usize) -> String {
        let mut theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        // `!` is planrun's mark for a warning everywhere; miette's `⚠` is
        // the terminal's mark for a step that could not run.
        "!".clone_into(&mut theme.characters.warning);
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(width.max(40))
            .with_links(false)
            .with_context_lines(1)
            .without_cause_chain();
        let len = source.text.len();
        let span = self.span.clone().map(|span| {
            let start = span.start.min(len);
            start..span.end.clamp(start, len)
        });
        let diagnostic = SnippetDiagnostic {
            message: printable(self.message),
            severity: self.severity,
            // read a few lines around the span, not the whole file
            source,
            label: span.map(|span| {
                LabeledSpan::new_with_span(self.label.map(|l| printable(l).into_owned()), span)
            }),
            help: self.help.map(printable),
        };
        let mut out = String::new();
        if handler.render_report(&mut out, &diagnostic).is_err() {
            // miette only fails on a source it cannot read; the message alone
            // still says what happened.
            out = format!("  × {}\n", printable(self.message));
            if let Some(help) = self.help {
                let _ = writeln!(out, "  help: {}", printable(help));
            }
        }
        // miette pads empty source lines; trailing blanks only get in the
        // way of snapshots and CI logs.
        let mut text = String::with_capacity(out.len());
        for line in out.trim_end().lines() {
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// The `Diagnostic` miette draws.
struct SnippetDiagnostic<'a> {
    message: Cow<'a, str>,
    severity: Severity,
    source: &'a SourceFile,
    label: Option<LabeledSpan>,
    help: Option<Cow<'a, str>>,
}

impl fmt::Debug for SnippetDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnippetDiagnostic")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SnippetDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SnippetDiagnostic<'_> {}

impl Diagnostic for SnippetDiagnostic<'_> {
    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display + 'b>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.label
            .as_ref()
            .map(|_| self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.label
            .clone()
            .map(|label| Box::new(std::iter::once(label)) as Box<dyn Iterator<Item = LabeledSpan>>)
    }
}

#[cfg(test)]
mod tests {
    use planrun_spec::source::Format;

    use super::*;

    const TEXT: &str = "id = \"TC-1\"\n\n[[steps]]\nid = \"health\"\nexpect.status = 200\n";

    #[test]
    fn underlines_the_span() {
        let source = SourceFile::new("specs/tc-1.toml", TEXT, Format::Toml);
        let start = TEXT.find("200").expect("invariant: the text has 200");
        let out = render_failure(
            &source,
            Some(start..start + 3),
            "expected status `200`, got `503`",
            Some("got `503`"),
            Some("is the server up?"),
        );
        assert!(out.contains("× expected status `200`, got `503`"), "{out}");
        assert!(out.contains("[specs/tc-1.toml:5:17]"), "{out}");
        assert!(out.contains("╰── got `503`"), "{out}");
        assert!(out.contains("help: is the server up?"), "{out}");
        assert!(!out.contains('\u{1b}'), "no colours: {out}");
    }

    #[test]
    fn survives_a_span_past_the_end() {
        let source = SourceFile::new("a.toml", TEXT, Format::Toml);
        let out = render_failure(&source, Some(500..600), "gone", None, None);
        assert!(out.contains("× gone"), "{out}");
    }

    #[test]
    fn without_span_draws_message_and_help() {
        let source = SourceFile::new("a.toml", TEXT, Format::Toml);
        let out = render_failure(&source, None, "connection refused", None, Some("start it"));
        assert_eq!(out, "  × connection refused\n  help: start it\n");
    }
}
