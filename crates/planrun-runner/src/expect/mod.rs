//! Expectations and captures, checked against a step's result document.
//!
//! One path for every step kind: a target picks a value out of the result
//! document, a matcher says whether it is right. A failed expectation is data
//! (an [`ExpectationOutcome`]), not an error, and an expectation fails with
//! every operator, key and item of its matcher that does not hold, each an
//! outcome of its own, not only with the first.
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

use diff::{Field, diff, show_in, show_pair};
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

    /// Checks one expectation: one outcome when it holds, one per failing
    /// operator, key or item of its matcher when it does not (each at the
    /// place it was written), so a table of checks reports all it found.
    pub(crate) fn check_all(&self, exp: &Expectation) -> Vec<ExpectationOutcome> {
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
                return vec![outcome];
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
            return vec![outcome];
        };
        let not_text = self.not_text(&exp.target);
        let field = Field::of_target(&exp.target);
        let failures = match (&not_text, walk(matcher, actual, field, self, true)) {
            (None, Ok(expected)) => {
                outcome.passed = true;
                outcome.expected = expected;
                outcome.message = format!("{target} is {}", show_in(actual, field));
                return vec![outcome];
            }
            (_, Err(failures)) => failures,
            // a body whose bytes are no text passes no check of its text,
            // not even one that a missing value would pass (`not`)
            (Some(_), Ok(_)) => Vec::new(),
        };
        if let Some(unreadable) = not_text.or_else(|| self.not_json(&exp.target)) {
            // every check of the body fails for the same reason: say it once
            outcome.actual = actual.cloned();
            outcome.expected = String::from(unreadable.expected);
            outcome.message = format!("{target}: {}", unreadable.said);
            return vec![outcome];
        }
        failures
            .into_iter()
            .map(|m| {
                let found = match m.about {
                    About::Target => actual.cloned(),
                    About::Part(part) => part,
                };
                ExpectationOutcome {
                    span: m.span.unwrap_or_else(|| exp.span.clone()),
                    message: format!("{target}: {}", m.message),
                    expected: m.expected,
                    diff: m
                        .expected_json
                        .as_ref()
                        .zip(found.as_ref())
                        .and_then(|(e, a)| diff(e, a, m.field)),
                    actual: found,
                    ..outcome.clone()
                }
            })
            .collect()
    }

    /// Why a target in the body's text (`body`, `$.body`) cannot be read:
    /// the body's bytes were no text (the executor's `body_error`).
    fn not_text(&self, target: &Target) -> Option<Unreadable> {
        let Target::Path { text, .. } = target else {
            return None;
        };
        if !reads(text, "body") {
            return None;
        }
        let said = self.result.get("body_error")?.as_str()?;
        Some(Unreadable {
            said: said.to_owned(),
            expected: "a text body",
        })
    }

    /// Why a failed check of a target in the parsed body (`json.x`) failed
    /// when there was no JSON to look into: bytes that are no text, or a
    /// text that is not JSON (a page, an `exec` step's words), named by the
    /// parser with its line and column.
    fn not_json(&self, target: &Target) -> Option<Unreadable> {
        let Target::Path { text, .. } = target else {
            return None;
        };
        if !reads(text, "json") || !self.result.get("json").is_none_or(Json::is_null) {
            return None;
        }
        if let Some(said) = self.result.get("body_error").and_then(Json::as_str) {
            return Some(Unreadable {
                said: said.to_owned(),
                expected: "a JSON body",
            });
        }
        // an `http` step's body, an `exec` step's output
        let (name, raw) = ["body", "stdout"].iter().find_map(|name| {
            let raw = self.result.get(*name)?.as_str()?;
            (!raw.trim().is_empty()).then_some((*name, raw))
        })?;
        // the executor found no JSON: parse again for the parser's words
        // (only a check that failed pays for it)
        let err = serde_json::from_str::<serde::de::IgnoredAny>(raw).err()?;
        Some(Unreadable {
            said: format!(
                "the {name} is not valid JSON: {err}; it starts `{}`",
                start_of(raw)
            ),
            expected: "a JSON body",
        })
    }

    /// A capture's value, or why it could not be taken.
    pub(crate) fn capture(&self, c: &Capture) -> Result<Json, StepError> {
        if let Some(unreadable) = self
            .not_text(&c.target)
            .or_else(|| self.not_json(&c.target))
        {
            return Err(StepError::new(format!(
                "capture `{}`: `{}` cannot be read: {}",
                c.name.name,
                c.target.describe(),
                unreadable.said
            ))
            .at(c.span.clone()));
        }
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

/// Why a target's value is not there to check: [`Checker::not_text`],
/// [`Checker::not_json`].
struct Unreadable {
    /// The reason, a sentence.
    said: String,
    /// What the check needed.
    expected: &'static str,
}

/// Whether a path target reads the result field `field` or a part of it:
/// `json`, `json.a`, `$.json[0]`, `$['json']`.
fn reads(path: &str, field: &str) -> bool {
    let rest = if let Some(r) = path.strip_prefix("$.") {
        r.strip_prefix(field)
    } else if let Some(r) = path.strip_prefix("$['") {
        r.strip_prefix(field).and_then(|r| r.strip_prefix("']"))
    } else if let Some(r) = path.strip_prefix("$[\"") {
        r.strip_prefix(field).and_then(|r| r.strip_prefix("\"]"))
    } else {
        path.strip_prefix(field)
    };
    rest.is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The start of a text for a message: its words on one line, at most 80
/// characters.
fn start_of(raw: &str) -> String {
    const START: usize = 80;
    let words: Vec<&str> = raw.split_whitespace().collect();
    let flat = words.join(" ");
    if flat.chars().count() > START {
        let cut: String = flat.chars().take(START - 1).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// Why a matcher does not hold: data for the outcome, not an error.
struct Mismatch {
    message: String,
    expected: String,
    expected_json: Option<Json>,
    /// The operator that failed, when a table has several.
    span: Option<planrun_spec::value::Span>,
    /// The value that failed.
    about: About,
    /// Where the value stands, for the diff.
    field: Field,
}

fn mismatch(message: impl Into<String>, expected: impl Into<String>) -> Mismatch {
    Mismatch {
        message: message.into(),
        expected: expected.into(),
        expected_json: None,
        span: None,
        about: About::Target,
        field: Field::default(),
    }
}

/// The value a failure is about.
enum About {
    /// The target's value.
    Target,
    /// A part of it: the value of a key (`None` when the key is missing) or
    /// an item of a list.
    Part(Option<Json>),
}

impl Mismatch {
    /// Says the failure is about a part of the value, unless a part inside
    /// it was named already.
    fn about(&mut self, part: impl FnOnce() -> Option<Json>) {
        if matches!(self.about, About::Target) {
            self.about = About::Part(part());
        }
    }
}

/// Checks `actual` (standing at `field`) against a matcher; on success
/// returns the expectation in words, on failure why, at the first check that
/// failed. Operators that only need a verdict (`not`, `all`, `in_order`, …)
/// use it.
fn check_matcher(
    m: &Matcher,
    actual: Option<&Json>,
    field: Field,
    cx: &Checker<'_>,
) -> Result<String, Mismatch> {
    walk(m, actual, field, cx, false).map_err(|failures| {
        failures
            .into_iter()
            .next()
            .expect("invariant: a failed walk names a failure")
    })
}

/// [`check_matcher`], and with `every` it goes on past a failing operator
/// of a table, key of a table or item of a list to report each that fails
/// (never none: `Err` holds at least one).
fn walk(
    m: &Matcher,
    actual: Option<&Json>,
    field: Field,
    cx: &Checker<'_>,
    every: bool,
) -> Result<String, Vec<Mismatch>> {
    match m {
        Matcher::Literal(v) => {
            let expected = cx
                .render(v)
                .map_err(|e| vec![mismatch(e.message, "a value that renders")])?;
            let words = show_in(Some(&expected), field);
            match actual {
                None => Err(vec![mismatch(
                    format!("expected {words}, but it is missing"),
                    words,
                )]),
                Some(a) if loose_eq(a, &expected) => Ok(words),
                Some(a) => {
                    let (words, got) = show_pair(&expected, Some(a), field);
                    Err(vec![Mismatch {
                        message: format!("expected {words}, got {got}"),
                        expected: words,
                        expected_json: Some(expected),
                        field,
                        ..mismatch("", "")
                    }])
                }
            }
        }
        Matcher::Object(entries) => {
            let Some(Json::Object(map)) = actual else {
                return Err(vec![mismatch(
                    format!("expected a table, got {}", show_in(actual, field)),
                    "a table",
                )]);
            };
            let whole = actual.expect("invariant: matched as an object above");
            let mut failures = Vec::new();
            for (key, inner) in entries {
                let found = if key.name.starts_with('$') {
                    json_path_value(&key.name, whole)
                        .map_err(|e| vec![mismatch(e, "a valid JSONPath")])?
                } else {
                    map.get(&key.name).cloned()
                };
                let Err(failed) = walk(inner, found.as_ref(), field.child(&key.name), cx, every)
                else {
                    continue;
                };
                failures.extend(failed.into_iter().map(|mut e| {
                    e.message = format!("`{}`: {}", key.name, e.message);
                    e.span
                        .get_or_insert_with(|| key.span.start..inner.span().end);
                    e.about(|| found.clone());
                    e
                }));
                if !every {
                    break;
                }
            }
            if !failures.is_empty() {
                return Err(failures);
            }
            Ok(format!(
                "a table with {}",
                code_list(entries.iter().map(|(k, _)| &k.name))
            ))
        }
        Matcher::Array(items, _) => {
            let Some(Json::Array(arr)) = actual else {
                return Err(vec![mismatch(
                    format!("expected a list, got {}", show_in(actual, field)),
                    "a list",
                )]);
            };
            if arr.len() != items.len() {
                return Err(vec![mismatch(
                    format!(
                        "expected a list of {} items, got {} items",
                        items.len(),
                        arr.len()
                    ),
                    format!("{} items", items.len()),
                )]);
            }
            let mut failures = Vec::new();
            for (i, (inner, a)) in items.iter().zip(arr).enumerate() {
                let Err(failed) = walk(inner, Some(a), field, cx, every) else {
                    continue;
                };
                failures.extend(failed.into_iter().map(|mut e| {
                    e.message = format!("item {i}: {}", e.message);
                    e.span.get_or_insert_with(|| inner.span());
                    e.about(|| Some(a.clone()));
                    e
                }));
                if !every {
                    break;
                }
            }
            if !failures.is_empty() {
                return Err(failures);
            }
            Ok(format!("a list of {} items", items.len()))
        }
        Matcher::Ops(ops, _) => {
            let mut words = Vec::new();
            let mut failures = Vec::new();
            for op in ops {
                match check_op(&op.op, actual, field, cx) {
                    Ok(w) => words.push(w),
                    Err(mut e) => {
                        e.span.get_or_insert_with(|| op.span.clone());
                        failures.push(e);
                        if !every {
                            break;
                        }
                    }
                }
            }
            if !failures.is_empty() {
                return Err(failures);
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
    check_matcher(matcher, Some(value), Field::default(), &cx)
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

    pub(super) fn outcomes(target: &str, m: &str, doc: &Json) -> Vec<ExpectationOutcome> {
        Checker::new(&Renderer::new(), &Scope::default(), doc).check_all(&exp(target, m))
    }

    pub(super) fn passes(target: &str, m: &str, doc: &Json) -> bool {
        let out = outcomes(target, m, doc);
        assert!(!out.is_empty(), "an outcome at least");
        out.iter().all(|o| o.passed)
    }

    /// The message of the one failure of `m`.
    pub(super) fn message(target: &str, m: &str, doc: &Json) -> String {
        let mut out = outcomes(target, m, doc);
        assert_eq!(out.len(), 1, "{out:#?}");
        let out = out.remove(0);
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

    /// Every outcome of a check, a block each: where, what, and the diff.
    fn report(target: &str, m: &str, doc: &Json) -> String {
        let source = format!("m = {m}");
        outcomes(target, m, doc)
            .iter()
            .map(|o| {
                let at = &source[o.span.clone()];
                let mut block = format!(
                    "{} {}\n  at: {at}\n  expected: {}\n  actual: {}",
                    if o.passed { "ok" } else { "FAILED" },
                    o.message,
                    o.expected,
                    o.actual
                        .as_ref()
                        .map_or_else(|| String::from("-"), |a| show(Some(a)))
                );
                if let Some(diff) = &o.diff {
                    block.push_str("\n  diff:\n    ");
                    block.push_str(&diff.replace('\n', "\n    "));
                }
                block
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn every_failing_operator_is_reported_where_it_was_written() {
        // a server that buffers the stream: one burst, late
        let burst = stream(&[1200.0, 1200.1, 1200.1, 1200.2]);
        let m = "{ first_within = \"1s\", incremental = true, len = { ge = 2 }, in_order = [{ type = \"message\" }, { type = \"end\" }] }";
        insta::assert_snapshot!(report("events", m, &burst), @r#"
        FAILED events: expected the first within 1 s, it arrived after 1.2 s
          at: first_within = "1s"
          expected: the first within 1 s
          actual: `[{"type":"message","data":"d0","json":{"chunk":"c0","index":0},"offset":1200},{"type":"message","data":"d1","json":{"…`
        FAILED events: expected incremental: all 4 items arrived in one burst (within 0.2 ms)
          at: incremental = true
          expected: incremental
          actual: `[{"type":"message","data":"d0","json":{"chunk":"c0","index":0},"offset":1200},{"type":"message","data":"d1","json":{"…`
        FAILED events: in_order: no item matches #1 { type = `"end"` } after item 0 (of 4)
          at: in_order = [{ type = "message" }, { type = "end" }]
          expected: 2 items in order
          actual: `[{"type":"message","data":"d0","json":{"chunk":"c0","index":0},"offset":1200},{"type":"message","data":"d1","json":{"…`
        "#);
        // the passing ones stay quiet, and all passing is one outcome
        let spread = stream(&[10.0, 60.0]);
        insta::assert_snapshot!(report("events", "{ first_within = \"1s\", incremental = true }", &spread), @r#"
        ok events is `[{"type":"message","data":"d0","json":{"chunk":"c0","index":0},"offset":10},{"type":"done","data":"d1","json":{"chunk…`
          at: m
          expected: the first within 1 s and incremental
          actual: -
        "#);
    }

    #[test]
    fn every_failing_key_is_reported_with_its_value() {
        let doc = json!({"json": {"status": "degraded", "checks": {"database": "down", "cache": "ok"}, "version": 3}});
        let m =
            "{ status = \"healthy\", version = 3, checks = { database = \"ok\", queue = \"ok\" } }";
        insta::assert_snapshot!(report("json", m, &doc), @r#"
        FAILED json: `status`: expected `"healthy"`, got `"degraded"`
          at: status = "healthy"
          expected: `"healthy"`
          actual: `"degraded"`
        FAILED json: `checks`: `database`: expected `"ok"`, got `"down"`
          at: database = "ok"
          expected: `"ok"`
          actual: `"down"`
        FAILED json: `checks`: `queue`: expected `"ok"`, but it is missing
          at: queue = "ok"
          expected: `"ok"`
          actual: -
        "#);
        // so does every item of a list
        let doc = json!({"json": {"tags": ["a", "x", "y"]}});
        insta::assert_snapshot!(report("json.tags", "[\"a\", \"b\", \"c\"]", &doc), @r#"
        FAILED json.tags: item 1: expected `"b"`, got `"x"`
          at: "b"
          expected: `"b"`
          actual: `"x"`
        FAILED json.tags: item 2: expected `"c"`, got `"y"`
          at: "c"
          expected: `"c"`
          actual: `"y"`
        "#);
        // operators that need a verdict on a part still stop at its first failure
        assert_eq!(
            message("json.tags", "{ all = { eq = \"a\" } }", &doc),
            "json.tags: item 1: expected eq `\"a\"`, got `\"x\"`"
        );
    }

    #[test]
    fn documents_differ_by_path_not_by_text() {
        let doc = json!({"json": {"status": "healthy", "container_type": "wsgi", "checks": {"database": "ok", "cache": "ok"}}});
        let m = "{ eq = { checks = { cache = \"ok\", database = \"ok\" }, container_type = \"asgi\", status = \"healthy\" } }";
        insta::assert_snapshot!(report("json", m, &doc), @r#"
        FAILED json: differs at `$.container_type`
          at: eq = { checks = { cache = "ok", database = "ok" }, container_type = "asgi", status = "healthy" }
          expected: eq `{"checks":{"cache":"ok","database":"ok"},"container_type":"asgi","status":"healthy"}`
          actual: `{"status":"healthy","container_type":"wsgi","checks":{"database":"ok","cache":"ok"}}`
          diff:
            $.container_type: expected "asgi", got "wsgi"
        "#);
        // a diff of a key's value is of that value
        let m = "{ checks = { eq = { cache = \"ok\" } }, status = \"sick\" }";
        insta::assert_snapshot!(report("json", m, &doc), @r#"
        FAILED json: `checks`: differs at `$.database`
          at: eq = { cache = "ok" }
          expected: eq `{"cache":"ok"}`
          actual: `{"database":"ok","cache":"ok"}`
          diff:
            $.database: not expected (got "ok")
        FAILED json: `status`: expected `"sick"`, got `"healthy"`
          at: status = "sick"
          expected: `"sick"`
          actual: `"healthy"`
        "#);
    }

    #[test]
    fn a_json_target_on_a_body_that_is_not_json_says_so() {
        let page = format!(
            "<html>\n  <head><title>502 Bad Gateway</title></head>\n<body>{}</body></html>",
            "x".repeat(200)
        );
        let doc = json!({"status": 502, "body": page, "json": null});
        insta::assert_snapshot!(report("json.x", "{ eq = 1, gt = 0 }", &doc), @"
        FAILED json.x: the body is not valid JSON: expected value at line 1 column 1; it starts `<html> <head><title>502 Bad Gateway</title></head> <body>xxxxxxxxxxxxxxxxxxxxxx…`
          at: m
          expected: a JSON body
          actual: -
        ");
        assert_eq!(
            message("$.json.items", "{ len = 3 }", &doc),
            "$.json.items: the body is not valid JSON: expected value at line 1 column 1; it starts `<html> <head><title>502 Bad Gateway</title></head> <body>xxxxxxxxxxxxxxxxxxxxxx…`"
        );
        // an `exec` step's output
        let doc = json!({"stdout": "done\n", "json": null});
        assert_eq!(
            message("json", "{ ok = true }", &doc),
            "json: the stdout is not valid JSON: expected value at line 1 column 1; it starts `done`"
        );
        // JSON cut or broken inside: the parser's line and column
        let doc = json!({"body": "{\n  \"ok\": tru,\n  \"n\": 1\n}", "json": null});
        assert_eq!(
            message("json.ok", "true", &doc),
            "json.ok: the body is not valid JSON: expected ident at line 2 column 12; it starts `{ \"ok\": tru, \"n\": 1 }`"
        );
        let doc = json!({"body": "{\"ok\": true", "json": null});
        assert_eq!(
            message("$['json']", "{ ok = true }", &doc),
            "$['json']: the body is not valid JSON: EOF while parsing an object at line 1 column 11; it starts `{\"ok\": true`"
        );
        // an empty body has nothing to quote, other targets are not the body's
        let doc = json!({"status": 204, "body": "", "json": null});
        assert_eq!(
            message("json.x", "1", &doc),
            "json.x: expected `1`, but it is missing"
        );
        let doc = json!({"status": 200, "body": "<html>", "json": null});
        assert_eq!(
            message("status", "201", &doc),
            "status: expected `201`, got `200`"
        );
        // a check that holds is not turned into a failure
        assert!(passes("json.x", "{ exists = false }", &doc));
    }

    #[test]
    fn a_body_that_is_no_text_fails_every_check_of_its_text() {
        let said = "the body is not UTF-8 text (the declared charset `utf-8`): the first byte that cannot be decoded is 0xE9, at offset 9; it starts `valid caf\\xE9`";
        let doc =
            json!({"status": 200, "body": null, "json": null, "size": 10, "body_error": said});
        insta::assert_snapshot!(report("body", "{ contains = \"valid\" }", &doc), @r"
        FAILED body: the body is not UTF-8 text (the declared charset `utf-8`): the first byte that cannot be decoded is 0xE9, at offset 9; it starts `valid caf\xE9`
          at: m
          expected: a text body
          actual: `null`
        ");
        // even a check that a missing value passes
        assert_eq!(
            message("$.body", "{ not = { contains = \"error\" } }", &doc),
            format!("$.body: {said}")
        );
        assert_eq!(message("json.ok", "true", &doc), format!("json.ok: {said}"));
        // the bytes are still counted; other targets are not the body's
        assert!(passes("size", "10", &doc));
        assert!(passes("status", "200", &doc));
        assert!(passes("body_error", "{ contains = \"0xE9\" }", &doc));
    }

    #[test]
    fn targets_read_their_field_or_a_part_of_it() {
        for path in [
            "json",
            "json.a",
            "json[0]",
            "$.json",
            "$.json.a",
            "$['json']",
            "$[\"json\"][0]",
        ] {
            assert!(reads(path, "json"), "{path}");
        }
        for path in ["jsonx", "$.jsonx", "$['json", "body", "$..json", "$"] {
            assert!(!reads(path, "json"), "{path}");
        }
    }

    #[test]
    fn numbers_read_as_people_read_them() {
        let doc = json!({"duration": 7.995_775_999_999_999, "timings": {"ttfb": 1.25}, "json": {"ratio": 0.123_456_7, "elapsed": 1234.5}});
        assert_eq!(
            message("duration", "{ lt = \"1ms\" }", &doc),
            "duration: expected lt `1 ms`, got `8 ms`"
        );
        assert_eq!(
            message("duration", "{ lt = 5 }", &doc),
            "duration: expected lt `5 ms`, got `8 ms`"
        );
        assert_eq!(
            message("$.timings.ttfb", "{ gt = 2 }", &doc),
            "$.timings.ttfb: expected gt `2 ms`, got `1.3 ms`"
        );
        assert_eq!(
            message("timings", "{ ttfb = 2 }", &doc),
            "timings: `ttfb`: expected `2 ms`, got `1.3 ms`"
        );
        // a body's numbers are its own: three decimals, no unit
        assert_eq!(
            message("json.ratio", "{ gt = 1 }", &doc),
            "json.ratio: expected gt `1`, got `0.123`"
        );
        // unless compared with a duration
        assert_eq!(
            message("json.elapsed", "{ lt = \"1s\" }", &doc),
            "json.elapsed: expected lt `1 s`, got `1.2 s`"
        );
        // values that differ never read the same
        assert_eq!(
            message("json.ratio", "0.1234", &doc),
            "json.ratio: expected `0.1234`, got `0.1234567`"
        );
        assert_eq!(
            message("duration", "{ ge = \"8ms\" }", &doc),
            "duration: expected ge `8 ms`, got `7.996 ms`"
        );
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
        let out = Checker::new(&r, &scope, &doc).check_all(&exp("status", "200"));
        let [out] = &out[..] else {
            panic!("one outcome: {out:#?}")
        };
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
        let check = |target: &str, m: &str| {
            Checker::new(&r, &scope, &doc).check_all(&exp(target, m))[0].clone()
        };
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
