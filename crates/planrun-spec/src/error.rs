//! Diagnostics for spec files: a location plus a kind, rendered by miette.
//!
//! Every problem found while reading or planning a spec becomes one
//! [`Diagnostic`]; a file's problems are collected, never cut at the first.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, SourceSpan};

use crate::source::{SourceFile, printable};
use crate::value::Span;

/// What went wrong, as a stable code (shown as `planrun::<code>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The file is not valid TOML or YAML.
    Syntax,
    /// A key that planrun does not know.
    UnknownKey,
    /// A required key is missing.
    MissingKey,
    /// A value of the wrong type.
    WrongType,
    /// A value of the right type that is not allowed (bad duration, bad regex…).
    InvalidValue,
    /// A step sets no action key, or more than one.
    StepKind,
    /// A step kind that this build of planrun cannot run.
    UnavailableKind,
    /// Two things share a name that must be unique.
    Duplicate,
    /// `needs` names a step that does not exist.
    UnknownStep,
    /// The steps' `needs` form a cycle.
    Cycle,
    /// A template refers to something that cannot exist at that point.
    UndefinedReference,
    /// A template does not parse.
    Template,
    /// A file could not be read.
    Io,
    /// Something a spec run with `--untrusted` may not do unless allowed
    /// (start processes, read a file outside the spec tree, read the
    /// environment, turn TLS verification off).
    NotAllowed,
}

impl DiagnosticKind {
    /// The code shown to users.
    pub fn code(self) -> &'static str {
        match self {
            DiagnosticKind::Syntax => "planrun::syntax",
            DiagnosticKind::UnknownKey => "planrun::unknown-key",
            DiagnosticKind::MissingKey => "planrun::missing-key",
            DiagnosticKind::WrongType => "planrun::wrong-type",
            DiagnosticKind::InvalidValue => "planrun::invalid-value",
            DiagnosticKind::StepKind => "planrun::step-kind",
            DiagnosticKind::UnavailableKind => "planrun::unavailable-kind",
            DiagnosticKind::Duplicate => "planrun::duplicate",
            DiagnosticKind::UnknownStep => "planrun::unknown-step",
            DiagnosticKind::Cycle => "planrun::cycle",
            DiagnosticKind::UndefinedReference => "planrun::undefined-reference",
            DiagnosticKind::Template => "planrun::template",
            DiagnosticKind::Io => "planrun::io",
            DiagnosticKind::NotAllowed => "planrun::not-allowed",
        }
    }
}

/// One problem in one spec file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// What kind of problem.
    pub kind: DiagnosticKind,
    /// The message (lowercase, user values in backticks).
    pub message: String,
    /// Where, and the text under the underline.
    pub span: Span,
    /// The text shown under the underline.
    pub label: String,
    /// Further places worth showing (the other duplicate, the rest of a cycle).
    pub related: Vec<(Span, String)>,
    /// What to do about it.
    pub help: Option<String>,
    /// The file, once attached.
    pub source: Option<Arc<SourceFile>>,
}

impl Diagnostic {
    /// A problem at `span`.
    pub fn new(kind: DiagnosticKind, span: Span, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            span,
            label: String::from("here"),
            related: Vec::new(),
            help: None,
            source: None,
        }
    }

    /// Sets the label under the underline.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets the help line.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line when there is one.
    #[must_use]
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Adds a secondary label.
    #[must_use]
    pub fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    /// Attaches the file the spans point into.
    #[must_use]
    pub fn with_source(mut self, source: &Arc<SourceFile>) -> Self {
        self.set_source(source);
        self
    }

    fn set_source(&mut self, source: &Arc<SourceFile>) {
        self.source = Some(Arc::clone(source));
    }

    /// `path:line:col` of the primary span, when the source is attached.
    pub fn location(&self) -> Option<String> {
        let source = self.source.as_ref()?;
        let (line, col) = source.line_col(self.span.start);
        Some(format!("{}:{line}:{col}", source.name()))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&printable(&self.message))
    }
}

impl std::error::Error for Diagnostic {}

fn source_span(span: &Span) -> SourceSpan {
    SourceSpan::new(span.start.into(), span.end.saturating_sub(span.start))
}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(printable(h)) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_deref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let primary = LabeledSpan::new_primary_with_span(
            Some(printable(&self.label).into_owned()),
            source_span(&self.span),
        );
        let rest = self.related.iter().map(|(span, label)| {
            LabeledSpan::new_with_span(Some(printable(label).into_owned()), source_span(span))
        });
        Some(Box::new(std::iter::once(primary).chain(rest)))
    }
}

/// All problems of one or more spec files: what `validate` reports.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Attaches a file to every problem that has none yet.
    pub fn attach(&mut self, source: &Arc<SourceFile>) {
        for d in &mut self.0 {
            if d.source.is_none() {
                d.set_source(source);
            }
        }
    }

    /// Attaches a file to every problem from the `start`th on that has none
    /// yet: the problems found while looking at a part written in that file.
    pub fn attach_since(&mut self, start: usize, source: &Arc<SourceFile>) {
        for d in self.0.iter_mut().skip(start) {
            if d.source.is_none() {
                d.set_source(source);
            }
        }
    }

    /// Iterates over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Extend<Diagnostic> for Diagnostics {
    fn extend<T: IntoIterator<Item = Diagnostic>>(&mut self, iter: T) {
        self.0.extend(iter);
    }
}

/// Names in backticks, joined for a message: `` `a`, `b`, `c` ``.
pub fn code_list<I, S>(names: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "did you mean `x`?" for the closest of `candidates`, if any is close.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(word, candidate);
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(
            did_you_mean("expcet", ["expect", "capture", "needs"]).as_deref(),
            Some("did you mean `expect`?")
        );
        assert_eq!(did_you_mean("zzz", ["expect", "capture"]), None);
    }
}
