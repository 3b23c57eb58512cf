//! Expectations and captures, checked against a step's result document.
//!
//! One path for every step kind: a target picks a value out of the result
//! document, a matcher says whether it is right. A failed expectation is data
//! (an [`ExpectationOutcome`]), not an error.
//!
//! This module owns the [`Checker`] (selecting targets, checking
//! expectations, taking captures) and the walk over a matcher's structure;
//! the operators are in `operators` (values) and `stream` (items over time),
//! the one-line and diff renderings of values in `diff`. Checking only reads:
//! it must not run anything, print, or lower spec text (matchers arrive
//! lowered, and every check that needs no result was made then).

mod diff;
mod operators;
mod stream;

use std::borrow::Cow;
use std::sync::OnceLock;

use planrun_spec::error::code_list;
use planrun_spec::is_template;
use planrun_spec::model::{Capture, Expectation, Matcher, Target};
use planrun_spec::value::Value;
use serde_json::Value as Json;

use crate::events::ExpectationOutcome;
use crate::executor::StepError;
use crate::render::{Renderer, Scope};

pub(crate) use diff::show;

use diff::diff;
use operators::{as_text, check_op, loose_eq};

/// What the expectations and captures of one attempt read: the result
/// document and, built only when a template asks for it, the scope with
/// `result` added (converting a large result for templates is not free).
pub(crate) struct Checker<'a> {
    renderer: &'a Renderer,
    scope: &'a Scope,
    result: &'a Json,
    with_result: OnceLock<Scope>,
    /// The matchers were rendered beforehand: their strings are values,
    /// even those that look like templates (a captured `{{`).
    rendered: bool,
}

impl<'a> Checker<'a> {
    /// A checker over one result document.
    pub(crate) fn new(renderer: &'a Renderer, scope: &'a Scope, result: &'a Json) -> Self {
        Self {
            renderer,
            scope,
            result,
            with_result: OnceLock::new(),
            rendered: false,
        }
    }

    fn scope(&self) -> &Scope {
        self.with_result
            .get_or_init(|| self.scope.with_result(self.result))
    }

    /// A matcher argument as JSON, its templates rendered.
    fn render(&self, value: &Value) -> Result<Json, StepError> {
        let mut templated = false;
        if !self.rendered {
            value.visit_strings(&mut |s, _| templated |= is_template(s));
        }
        if !templated {
            return Ok(value.to_json());
        }
        Ok(self.renderer.render_value(value, self.scope())?.to_json())
    }

    /// An operator argument as JSON, its templates rendered; a template that
    /// does not render fails the check.
    fn value(&self, value: &Value) -> Result<Json, Mismatch> {
        self.render(value)
            .map_err(|e| mismatch(e.message, "a value that renders"))
    }

    /// Picks the value a target points at; `None` when it does not exist.
    pub(crate) fn select(&self, target: &Target) -> Result<Option<Json>, StepError> {
        Ok(self.select_ref(target)?.map(Cow::into_owned))
    }

    /// [`Self::select`] without copying a value that is in the result.
    fn select_ref(&self, target: &Target) -> Result<Option<Cow<'_, Json>>, StepError> {
        Ok(match target {
            Target::Path { path, .. } => {
                let found = path.query(self.result).all();
                match found.len() {
                    0 => None,
                    1 => Some(Cow::Borrowed(found[0])),
                    _ => Some(Cow::Owned(Json::Array(
                        found.into_iter().cloned().collect(),
                    ))),
                }
            }
            Target::Header(name) => self
                .result
                .get("headers")
                .and_then(|h| h.get(name))
                .map(Cow::Borrowed),
            Target::Expr(t) => Some(Cow::Owned(self.renderer.eval_template(t, self.scope())?)),
        })
    }

    /// Checks one expectation.
    pub(crate) fn check(&self, exp: &Expectation) -> ExpectationOutcome {
        let target = exp.target.describe();
        let mut outcome = ExpectationOutcome {
            target: target.clone(),
            span: exp.span.clone(),
            blocking: exp.blocking,
            passed: false,
            message: String::new(),
            expected: String::new(),
            actual: None,
            diff: None,
        };
        let actual = match self.select_ref(&exp.target) {
            Ok(a) => a,
            Err(e) => {
                outcome.message = e.message;
                outcome.expected = String::from("an expression that evaluates");
                return outcome;
            }
        };
        // what was found is kept for failures only: a passing check on a
        // stream of events need not copy the stream into the report
        let actual = actual.as_deref();
        let Some(matcher) = &exp.matcher else {
            outcome.expected = String::from("true");
            outcome.passed = actual.is_some_and(truthy);
            outcome.message = if outcome.passed {
                format!("`{target}` holds")
            } else {
                outcome.actual = actual.cloned();
                format!("`{target}` is {}", show(actual))
            };
            return outcome;
        };
        match check_matcher(matcher, actual, self) {
            Ok(expected) => {
                outcome.passed = true;
                outcome.expected = expected;
                outcome.message = format!("{target} is {}", show(actual));
            }
            Err(m) => {
                outcome.actual = actual.cloned();
                outcome.expected.clone_from(&m.expected);
                outcome.message = format!("{target}: {}", m.message);
                if let Some(span) = m.span {
                    outcome.span = span;
                }
                if let (Some(a), Some(e)) = (actual, &m.expected_json) {
                    outcome.diff = diff(e, a);
                }
            }
        }
        outcome
    }

    /// A capture's value, or why it could not be taken.
    pub(crate) fn capture(&self, c: &Capture) -> Result<Json, StepError> {
        let value = self.select(&c.target)?.ok_or_else(|| {
            StepError::new(format!(
                "capture `{}`: `{}` is not in the result",
                c.name.name,
                c.target.describe()
            ))
            .at(c.span.clone())
        })?;
        let Some(pattern) = &c.regex else {
            return Ok(value);
        };
        let text = as_text(&value);
        let re = regex::Regex::new(pattern).map_err(|e| {
            StepError::new(format!("invalid regular expression: {e}")).at(c.span.clone())
        })?;
        let caps = re.captures(&text).ok_or_else(|| {
            StepError::new(format!(
                "capture `{}`: `{pattern}` does not match {}",
                c.name.name,
                show(Some(&value))
            ))
            .at(c.span.clone())
        })?;
        let m = caps
            .get(1)
            .or_else(|| caps.get(0))
            .map_or("", |m| m.as_str());
        Ok(Json::String(m.to_string()))
    }
}

/// Why a matcher does not hold: data for the outcome, not an error.
struct Mismatch {
    message: String,
    expected: String,
    expected_json: Option<Json>,
    /// The operator that failed, when a table has several.
    span: Option<planrun_spec::value::Span>,
}

fn mismatch(message: impl Into<String>, expected: impl Into<String>) -> Mismatch {
    Mismatch {
        message: message.into(),
        expected: expected.into(),
        expected_json: None,
        span: None,
    }
}

/// Checks `actual` against a matcher; on success returns the expectation in words.
fn check_matcher(m: &Matcher, actual: Option<&Json>, cx: &Checker<'_>) -> Result<String, Mismatch> {
    match m {
        Matcher::Literal(v) => {
            let expected = cx
                .render(v)
                .map_err(|e| mismatch(e.message, "a value that renders"))?;
            let words = show(Some(&expected));
            match actual {
                None => Err(mismatch(
                    format!("expected {words}, but it is missing"),
                    words,
                )),
                Some(a) if loose_eq(a, &expected) => Ok(words),
                Some(a) => Err(Mismatch {
                    message: format!("expected {words}, got {}", show(Some(a))),
                    expected: words,
                    expected_json: Some(expected),
                    span: None,
                }),
            }
        }
        Matcher::Object(entries) => {
            let Some(Json::Object(map)) = actual else {
                return Err(mismatch(
                    format!("expected a table, got {}", show(actual)),
                    "a table",
                ));
            };
            let whole = actual.expect("invariant: matched as an object above");
            for (key, inner) in entries {
                let found = if key.name.starts_with('$') {
                    json_path_value(&key.name, whole)
                        .map_err(|e| mismatch(e, "a valid JSONPath"))?
                } else {
                    map.get(&key.name).cloned()
                };
                check_matcher(inner, found.as_ref(), cx).map_err(|mut e| {
                    e.message = format!("`{}`: {}", key.name, e.message);
                    // a diff is of the whole value, not of a part of it
                    e.expected_json = None;
                    e
                })?;
            }
            Ok(format!(
                "a table with {}",
                code_list(entries.iter().map(|(k, _)| &k.name))
            ))
        }
        Matcher::Array(items, _) => {
            let Some(Json::Array(arr)) = actual else {
                return Err(mismatch(
                    format!("expected a list, got {}", show(actual)),
                    "a list",
                ));
            };
            if arr.len() != items.len() {
                return Err(mismatch(
                    format!(
                        "expected a list of {} items, got {} items",
                        items.len(),
                        arr.len()
                    ),
                    format!("{} items", items.len()),
                ));
            }
            for (i, (inner, a)) in items.iter().zip(arr).enumerate() {
                check_matcher(inner, Some(a), cx).map_err(|mut e| {
                    e.message = format!("item {i}: {}", e.message);
                    // a diff is of the whole value, not of a part of it
                    e.expected_json = None;
                    e
                })?;
            }
            Ok(format!("a list of {} items", items.len()))
        }
        Matcher::Ops(ops, _) => {
            let mut words = Vec::new();
            for op in ops {
                words.push(check_op(&op.op, actual, cx).map_err(|mut e| {
                    e.span.get_or_insert_with(|| op.span.clone());
                    e
                })?);
            }
            Ok(words.join(" and "))
        }
    }
}

/// The value a JSONPath key of a table matcher (`"$.a[0]"`) selects in `value`.
fn json_path_value(path: &str, value: &Json) -> Result<Option<Json>, String> {
    // a table matcher under `all` meets the same path once per item: the
    // spec's cache of parsed paths serves it
    let compiled = planrun_spec::parse_json_path(path)
        .map_err(|e| format!("`{path}` is not a valid JSONPath: {e}"))?;
    let found = compiled.query(value).all();
    Ok(match found.len() {
        0 => None,
        1 => Some(found[0].clone()),
        _ => Some(Json::Array(found.into_iter().cloned().collect())),
    })
}

/// Checks `value` against a rendered matcher (an executor's matchers are
/// rendered by the runner before the step starts): its strings are taken as
/// they are. `Err` says why it fails.
pub fn test_matcher(matcher: &Matcher, value: &Json) -> Result<(), String> {
    static RENDERER: OnceLock<Renderer> = OnceLock::new();
    static SCOPE: OnceLock<Scope> = OnceLock::new();
    let renderer = RENDERER.get_or_init(Renderer::new);
    let scope = SCOPE.get_or_init(Scope::default);
    let mut cx = Checker::new(renderer, scope, value);
    cx.rendered = true;
    check_matcher(matcher, Some(value), &cx)
        .map(|_| ())
        .map_err(|m| m.message)
}

fn truthy(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use planrun_spec::error::Diagnostics;
    use planrun_spec::parse_toml;
    use planrun_spec::{lower_matcher, parse_target};
    use serde_json::json;

    pub(super) fn exp(target: &str, matcher_toml: &str) -> Expectation {
        let v = parse_toml(&format!("m = {matcher_toml}")).expect("toml");
        let mut diags = Diagnostics::default();
        let m = lower_matcher(v.get("m").expect("m"), &mut diags).expect("matcher");
        assert!(diags.is_empty(), "{diags:?}");
        Expectation {
            target: parse_target(target, &(0..1)).expect("target"),
            matcher: Some(m),
            blocking: true,
            span: 0..1,
        }
    }

    pub(super) fn passes(target: &str, m: &str, doc: &Json) -> bool {
        Checker::new(&Renderer::new(), &Scope::default(), doc)
            .check(&exp(target, m))
            .passed
    }

    pub(super) fn message(target: &str, m: &str, doc: &Json) -> String {
        let out = Checker::new(&Renderer::new(), &Scope::default(), doc).check(&exp(target, m));
        assert!(!out.passed, "expected a failure of {m}");
        out.message
    }

    pub(super) fn stream(offsets: &[f64]) -> Json {
        let events: Vec<Json> = offsets
            .iter()
            .enumerate()
            .map(|(i, at)| {
                let kind = if i + 1 == offsets.len() { "done" } else { "message" };
                json!({"type": kind, "data": format!("d{i}"), "json": {"chunk": format!("c{i}"), "index": i}, "offset": at})
            })
            .collect();
        json!({ "events": events })
    }

    #[test]
    fn json_path_keys_in_tables() {
        let doc = stream(&[1.0, 2.0]);
        assert!(passes(
            "events",
            "{ any = { \"$.json.chunk\" = \"c1\" } }",
            &doc
        ));
        assert!(passes(
            "events",
            "{ all = { \"$.json.index\" = { type = \"integer\" } } }",
            &doc
        ));
        assert!(!passes(
            "events",
            "{ any = { \"$.json.chunk\" = \"c9\" } }",
            &doc
        ));
    }

    #[test]
    fn test_matcher_needs_no_context() {
        let v = parse_toml("m = { type = \"done\" }").expect("toml");
        let mut diags = Diagnostics::default();
        let m = lower_matcher(v.get("m").expect("m"), &mut diags).expect("matcher");
        assert_eq!(
            test_matcher(&m, &json!({"type": "done", "data": "[DONE]"})),
            Ok(())
        );
        assert_eq!(
            test_matcher(&m, &json!({"type": "message"})),
            Err(String::from(
                "`type`: expected `\"done\"`, got `\"message\"`"
            ))
        );
    }

    #[test]
    fn failure_message_says_expected_and_actual() {
        let doc = json!({"status": 404});
        let (r, scope) = (Renderer::new(), Scope::default());
        let out = Checker::new(&r, &scope, &doc).check(&exp("status", "200"));
        assert!(!out.passed);
        assert_eq!(out.message, "status: expected `200`, got `404`");
        assert_eq!(out.actual, Some(json!(404)));
    }

    #[test]
    fn template_arguments_are_read_when_checked() {
        let doc =
            json!({"json": {"name": "planrun"}, "events": [{"offset": 12.0}, {"offset": 40.0}]});
        let mut scope = Scope::default();
        scope.set("pattern", &json!("^plan"));
        scope.set("ty", &json!("string"));
        scope.set("limit", &json!("20ms"));
        scope.set("nonsense", &json!("soon"));
        let r = Renderer::new();
        let check = |target: &str, m: &str| Checker::new(&r, &scope, &doc).check(&exp(target, m));
        assert!(
            check(
                "json.name",
                "{ matches = \"{{ pattern }}\", type = \"{{ ty }}\" }"
            )
            .passed
        );
        assert!(check("events", "{ first_within = \"{{ limit }}\" }").passed);
        assert_eq!(
            check("events", "{ max_gap = \"{{ limit }}\" }").message,
            "events: expected gaps of at most 20 ms, item 1 came 28 ms after the one before"
        );
        // a rendered text that is no duration fails the check, after the
        // target was found to be a stream
        assert_eq!(
            check("json.name", "{ max_gap = \"{{ nonsense }}\" }").message,
            "json.name: expected a list of events, got `\"planrun\"`"
        );
        assert_eq!(
            check("events", "{ max_gap = \"{{ nonsense }}\" }").message,
            "events: `soon` is not a duration"
        );
    }
}
