//! Templates (`{{ base_url }}/health/`) and expressions (`status == 200`),
//! parsed at plan time so every reference can be checked before anything runs.
//!
//! The runner renders them; this module only parses and lists references.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};

use crate::error::{Diagnostic, DiagnosticKind};
use crate::value::Span;

/// Names the runner provides to every template, besides variables and steps.
pub const BUILTIN_NAMES: &[&str] = &[
    "env",
    "planrun",
    "uuid",
    "now",
    "timestamp",
    "random_int",
    "random_string",
    "range",
    "dict",
    "namespace",
    "loop",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
];

/// Filters the runner registers on top of minijinja's built-ins.
pub const EXTRA_FILTERS: &[&str] = &["b64encode", "b64decode", "tojson", "urlencode", "hex"];

fn parse_env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // filters only need to exist for parsing to accept them
        for name in EXTRA_FILTERS {
            env.add_filter(*name, |v: minijinja::Value| v);
        }
        env
    })
}

/// A parsed template or expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The text as written.
    pub source: String,
    /// Where it was written.
    pub span: Span,
    /// The inner expression, when the whole text is one `{{ … }}` or a bare
    /// expression: it then evaluates to a typed value, not a string.
    pub expr: Option<String>,
    /// Dotted names it reads (`login.token`, `base_url`), sorted, each once
    /// (a slice: a plan holds one per template of every step).
    pub refs: Box<[String]>,
}

impl Template {
    /// Parses text that may mix literal text and `{{ … }}`.
    pub fn parse(source: &str, span: Span) -> Result<Template, Diagnostic> {
        let env = parse_env();
        if let Some(inner) = single_expression(source) {
            return Self::parse_expression_inner(source, inner, span);
        }
        let tmpl = env
            .template_from_str(source)
            .map_err(|e| template_error(&e, &span))?;
        Ok(Template {
            source: source.to_string(),
            span,
            expr: None,
            refs: sorted(tmpl.undeclared_variables(true)),
        })
    }

    /// Parses an expression, written bare (`status == 200`) or in `{{ … }}`.
    pub fn parse_expression(source: &str, span: Span) -> Result<Template, Diagnostic> {
        let inner = single_expression(source).unwrap_or(source);
        Self::parse_expression_inner(source, inner, span)
    }

    fn parse_expression_inner(
        source: &str,
        inner: &str,
        span: Span,
    ) -> Result<Template, Diagnostic> {
        let expr = parse_env()
            .compile_expression(inner)
            .map_err(|e| template_error(&e, &span))?;
        Ok(Template {
            source: source.to_string(),
            span,
            expr: Some(inner.trim().to_string()),
            refs: sorted(expr.undeclared_variables(true)),
        })
    }

    /// Root names read (`login` for `login.token`).
    pub fn roots(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.refs.iter().map(|r| match r.split_once('.') {
            Some((root, rest)) => (root, Some(rest.split('.').next().unwrap_or(rest))),
            None => (r.as_str(), None),
        })
    }
}

/// Names, sorted and each once.
fn sorted(names: impl IntoIterator<Item = String>) -> Box<[String]> {
    names
        .into_iter()
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect()
}

/// The inner text when `source` is exactly one `{{ … }}`.
pub fn single_expression(source: &str) -> Option<&str> {
    let trimmed = source.trim();
    let inner = trimmed.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim().trim_start_matches('-').trim_end_matches('-'))
}

fn template_error(err: &minijinja::Error, span: &Span) -> Diagnostic {
    let detail = err
        .detail()
        .map_or_else(|| err.kind().to_string(), str::to_string);
    Diagnostic::new(
        DiagnosticKind::Template,
        span.clone(),
        format!("invalid template: {detail}"),
    )
    .label("this template")
    .help("templates use `{{ name }}`; expressions use operators such as `==`, `<`, `and`, `in`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_references() {
        let t = Template::parse("{{ base_url }}/u/{{ login.user.id }}?x={{ uuid() }}", 0..1)
            .expect("parses");
        assert!(t.expr.is_none());
        let roots: Vec<_> = t.roots().collect();
        assert!(roots.contains(&("base_url", None)));
        assert!(roots.contains(&("login", Some("user"))));
    }

    #[test]
    fn whole_expression_keeps_type() {
        let t = Template::parse("{{ login.count + 1 }}", 0..1).expect("parses");
        assert_eq!(t.expr.as_deref(), Some("login.count + 1"));
        let e = Template::parse_expression("status == 200 and ok", 0..1).expect("parses");
        assert_eq!(e.expr.as_deref(), Some("status == 200 and ok"));
    }

    #[test]
    fn syntax_errors_are_diagnostics() {
        let err = Template::parse("{{ base_url ", 3..9).expect_err("bad");
        assert_eq!(err.kind, DiagnosticKind::Template);
        assert_eq!(err.span, 3..9);
    }
}
