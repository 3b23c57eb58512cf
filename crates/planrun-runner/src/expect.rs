//! Expectations and captures, checked against a step's result document.
//!
//! One path for every step kind: a target picks a value out of the result
//! document, a matcher says whether it is right. A failed expectation is data
//! (an [`ExpectationOutcome`]), not an error.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use planrun_spec::de::is_template;
use planrun_spec::duration::parse_duration;
use planrun_spec::error::code_list;
use planrun_spec::model::{
    Arg, ArgValue, Capture, Expectation, JsonType, Matcher, Op, Operator, Target,
};
use planrun_spec::value::Value;
use serde_json::Value as Json;

use crate::events::ExpectationOutcome;
use crate::executor::StepError;
use crate::render::{Renderer, Scope};

/// What the expectations and captures of one attempt read: the result
/// document and, built only when a template asks for it, the scope with
/// `result` added (converting a large result for templates is not free).
pub struct Checker<'a> {
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
    pub fn new(renderer: &'a Renderer, scope: &'a Scope, result: &'a Json) -> Self {
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
    pub fn select(&self, target: &Target) -> Result<Option<Json>, StepError> {
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
    pub fn check(&self, exp: &Expectation) -> ExpectationOutcome {
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
    pub fn capture(&self, c: &Capture) -> Result<Json, StepError> {
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

fn check_op(op: &Operator, actual: Option<&Json>, cx: &Checker<'_>) -> Result<String, Mismatch> {
    match op {
        Operator::Not(inner) => match check_matcher(inner, actual, cx) {
            Ok(words) => Err(mismatch(
                format!("expected not {words}, got {}", show(actual)),
                format!("not {words}"),
            )),
            Err(e) => Ok(format!("not {}", e.expected)),
        },
        Operator::Len(inner) => {
            let len = match actual {
                Some(Json::String(s)) => s.chars().count(),
                Some(Json::Array(a)) => a.len(),
                Some(Json::Object(o)) => o.len(),
                other => {
                    return Err(mismatch(
                        format!("has no length: {}", show(other)),
                        "something with a length",
                    ));
                }
            };
            check_matcher(inner, Some(&Json::from(len)), cx)
                .map(|w| format!("length {w}"))
                .map_err(|mut e| {
                    e.message = format!("length: {}", e.message);
                    // a diff is of the whole value, not of a part of it
                    e.expected_json = None;
                    e.expected = format!("length {}", e.expected);
                    e
                })
        }
        Operator::All(inner) => {
            let items = list(actual)?;
            let failed = items
                .iter()
                .enumerate()
                .find_map(|(i, item)| check_matcher(inner, Some(item), cx).err().map(|e| (i, e)));
            if let Some((i, e)) = failed {
                return Err(mismatch(
                    format!("item {i}: {}", e.message),
                    format!("every item {}", e.expected),
                ));
            }
            Ok(String::from("every item matches"))
        }
        Operator::Any(inner) => {
            let items = list(actual)?;
            if items
                .iter()
                .any(|item| check_matcher(inner, Some(item), cx).is_ok())
            {
                Ok(String::from("some item matches"))
            } else {
                Err(mismatch(
                    format!("no item of {} matches", items.len()),
                    "some item matching",
                ))
            }
        }
        Operator::InOrder(wanted) => in_order(wanted, list(actual)?, cx),
        Operator::Includes(wanted) => includes(wanted, list(actual)?, cx),
        Operator::FirstWithin(limit) => first_within(limit_ms(limit, cx)?, actual),
        Operator::MaxGap(limit) => max_gap(limit_ms(limit, cx)?, actual),
        Operator::Incremental(want) => incremental(*want, actual),
        Operator::Exists(want) => {
            if actual.is_some() == *want {
                Ok(format!("exists = {want}"))
            } else if *want {
                Err(mismatch(
                    "expected it to exist, but it is missing",
                    "exists",
                ))
            } else {
                Err(mismatch(
                    format!("expected it to be absent, got {}", show(actual)),
                    "absent",
                ))
            }
        }
        Operator::Eq(v) => {
            let arg = cx.value(v)?;
            compared(Op::Eq, &arg, actual, |a| Ok(loose_eq(a, &arg)))
        }
        Operator::Ne(v) => {
            let arg = cx.value(v)?;
            compared(Op::Ne, &arg, actual, |a| Ok(!loose_eq(a, &arg)))
        }
        Operator::Lt(v) => ordered(Op::Lt, &cx.value(v)?, actual, Ordering::is_lt),
        Operator::Le(v) => ordered(Op::Le, &cx.value(v)?, actual, Ordering::is_le),
        Operator::Gt(v) => ordered(Op::Gt, &cx.value(v)?, actual, Ordering::is_gt),
        Operator::Ge(v) => ordered(Op::Ge, &cx.value(v)?, actual, Ordering::is_ge),
        Operator::Contains(v) => {
            let arg = cx.value(v)?;
            compared(Op::Contains, &arg, actual, |a| {
                Ok(match a {
                    Json::String(s) => s.contains(&as_text(&arg)),
                    Json::Array(items) => items.iter().any(|i| loose_eq(i, &arg)),
                    Json::Object(o) => o.contains_key(&as_text(&arg)),
                    _ => false,
                })
            })
        }
        Operator::Matches(pattern) => {
            let (shown, re) = match pattern {
                Arg::Known(re) => (Json::String(re.as_str().to_string()), Ok(re.clone())),
                Arg::Template(v) => {
                    let arg = cx.value(v)?;
                    let re = regex::Regex::from_text(&as_text(&arg))
                        .map_err(|e| mismatch(e, "a valid pattern"));
                    (arg, re)
                }
            };
            compared(Op::Matches, &shown, actual, |a| {
                Ok(re?.is_match(&as_text(a)))
            })
        }
        Operator::StartsWith(v) => {
            let arg = cx.value(v)?;
            compared(Op::StartsWith, &arg, actual, |a| {
                Ok(as_text(a).starts_with(&as_text(&arg)))
            })
        }
        Operator::EndsWith(v) => {
            let arg = cx.value(v)?;
            compared(Op::EndsWith, &arg, actual, |a| {
                Ok(as_text(a).ends_with(&as_text(&arg)))
            })
        }
        Operator::Type(ty) => {
            let (shown, ty) = match ty {
                Arg::Known(ty) => (Json::String(ty.name().to_string()), Some(*ty)),
                Arg::Template(v) => {
                    // a rendered name that is no type matches nothing
                    let arg = cx.value(v)?;
                    let ty = JsonType::from_name(&as_text(&arg));
                    (arg, ty)
                }
            };
            compared(Op::Type, &shown, actual, |a| {
                Ok(ty.is_some_and(|ty| json_type_matches(a, ty)))
            })
        }
        Operator::OneOf(v) => {
            let arg = cx.value(v)?;
            compared(Op::OneOf, &arg, actual, |a| {
                Ok(arg
                    .as_array()
                    .is_some_and(|opts| opts.iter().any(|o| loose_eq(a, o))))
            })
        }
    }
}

/// The target as a list, for the operators over the items of a list.
fn list(actual: Option<&Json>) -> Result<&[Json], Mismatch> {
    match actual {
        Some(Json::Array(items)) => Ok(items),
        _ => Err(mismatch(
            format!("expected a list, got {}", show(actual)),
            "a list",
        )),
    }
}

/// An operator that compares the target with one argument (`arg`, as
/// shown in messages); `holds` decides, or fails with its own message.
fn compared(
    op: Op,
    arg: &Json,
    actual: Option<&Json>,
    holds: impl FnOnce(&Json) -> Result<bool, Mismatch>,
) -> Result<String, Mismatch> {
    let argw = show(Some(arg));
    let key = op.key();
    let Some(a) = actual else {
        return Err(mismatch(
            format!("expected {key} {argw}, but it is missing"),
            format!("{key} {argw}"),
        ));
    };
    let words = format!("{} {argw}", key.replace('_', " "));
    if holds(a)? {
        Ok(words)
    } else {
        Err(Mismatch {
            message: format!("expected {words}, got {}", show(Some(a))),
            expected: words,
            expected_json: (op == Op::Eq).then(|| arg.clone()),
            span: None,
        })
    }
}

/// `lt`, `le`, `gt` and `ge`: the order of the target and `arg` satisfies
/// `wanted`.
fn ordered(
    op: Op,
    arg: &Json,
    actual: Option<&Json>,
    wanted: fn(Ordering) -> bool,
) -> Result<String, Mismatch> {
    compared(op, arg, actual, |a| {
        compare(a, arg).map(wanted).ok_or_else(|| {
            let argw = show(Some(arg));
            mismatch(
                format!("cannot compare {} with {argw}", show(Some(a))),
                format!("{} {argw}", op.key()),
            )
        })
    })
}

/// The value a JSONPath key of a table matcher (`"$.a[0]"`) selects in `value`.
fn json_path_value(path: &str, value: &Json) -> Result<Option<Json>, String> {
    // a table matcher under `all` meets the same path once per item: the
    // spec's cache of parsed paths serves it
    let compiled = planrun_spec::lower::parse_json_path(path)
        .map_err(|e| format!("`{path}` is not a valid JSONPath: {e}"))?;
    let found = compiled.query(value).all();
    Ok(match found.len() {
        0 => None,
        1 => Some(found[0].clone()),
        _ => Some(Json::Array(found.into_iter().cloned().collect())),
    })
}

/// Two items of a stream less than this far apart belong to one burst.
pub const BURST_GAP_MS: f64 = 5.0;

/// When each item of a stream arrived (`offset`, in ms).
fn offsets(items: &[Json]) -> Result<Vec<f64>, Mismatch> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.get("offset").and_then(Json::as_f64).ok_or_else(|| {
                mismatch(
                    format!("item {i} has no `offset`: it is not an event or message of a stream"),
                    "a stream of events",
                )
            })
        })
        .collect()
}

/// How many bursts a stream's arrival times make.
fn bursts(offsets: &[f64]) -> usize {
    if offsets.is_empty() {
        return 0;
    }
    1 + offsets
        .windows(2)
        .filter(|w| w[1] - w[0] >= BURST_GAP_MS)
        .count()
}

fn ms_text(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

/// A duration argument in ms. The outer `Err` is a template that does not
/// render; the inner one a rendered text that is not a duration, reported
/// only once the target is known to be a stream.
fn limit_ms(limit: &Arg<Duration>, cx: &Checker<'_>) -> Result<Result<f64, Mismatch>, Mismatch> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(match limit {
        Arg::Known(d) => Ok(ms(*d)),
        Arg::Template(v) => {
            let text = as_text(&cx.value(v)?);
            Duration::from_text(&text)
                .map(ms)
                .map_err(|e| mismatch(e, "a duration"))
        }
    })
}

/// The items of a stream and when each arrived.
fn arrivals(actual: Option<&Json>) -> Result<(&[Json], Vec<f64>), Mismatch> {
    let Some(Json::Array(items)) = actual else {
        return Err(mismatch(
            format!("expected a list of events, got {}", show(actual)),
            "a list of events",
        ));
    };
    Ok((items, offsets(items)?))
}

/// `first_within`: the first item arrived within `limit` ms.
fn first_within(limit: Result<f64, Mismatch>, actual: Option<&Json>) -> Result<String, Mismatch> {
    let (_, at) = arrivals(actual)?;
    let limit = limit?;
    let words = format!("the first within {}", ms_text(limit));
    match at.first() {
        None => Err(mismatch("expected a first item, but none arrived", words)),
        Some(first) if *first <= limit => Ok(words),
        Some(first) => Err(mismatch(
            format!(
                "expected the first within {}, it arrived after {}",
                ms_text(limit),
                ms_text(*first)
            ),
            words,
        )),
    }
}

/// `max_gap`: no two consecutive items arrived more than `limit` ms apart.
fn max_gap(limit: Result<f64, Mismatch>, actual: Option<&Json>) -> Result<String, Mismatch> {
    let (_, at) = arrivals(actual)?;
    let limit = limit?;
    let words = format!("gaps of at most {}", ms_text(limit));
    let worst = at
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i + 1, w[1] - w[0]))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    match worst {
        Some((i, gap)) if gap > limit => Err(mismatch(
            format!(
                "expected gaps of at most {}, item {i} came {} after the one before",
                ms_text(limit),
                ms_text(gap)
            ),
            words,
        )),
        _ => Ok(words),
    }
}

/// `incremental`: the items arrived in more than one burst (`want`), or in one.
fn incremental(want: bool, actual: Option<&Json>) -> Result<String, Mismatch> {
    let (items, at) = arrivals(actual)?;
    let n = bursts(&at);
    let spread = match (at.first(), at.last()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let words = if want {
        "incremental"
    } else {
        "not incremental"
    };
    let holds = n >= 2;
    if holds == want {
        return Ok(String::from(words));
    }
    let seen = match items.len() {
        0 => String::from("no item arrived"),
        1 => String::from("one item arrived"),
        len if holds => {
            format!("{len} items arrived in {n} bursts over {}", ms_text(spread))
        }
        len => format!(
            "all {len} items arrived in one burst (within {})",
            ms_text(spread)
        ),
    };
    Err(mismatch(format!("expected {words}: {seen}"), words))
}

/// A one-line description of a matcher from a list, for messages.
fn describe_wanted(m: &Matcher, cx: &Checker<'_>) -> String {
    match m {
        Matcher::Literal(v) => show(cx.render(v).ok().as_ref()),
        Matcher::Object(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, inner)| format!("{} = {}", k.name, describe_wanted(inner, cx)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Matcher::Array(..) | Matcher::Ops(..) => String::from("the matcher"),
    }
}

/// Items matching each matcher appear in that order; others may come between.
fn in_order(wanted: &[Matcher], items: &[Json], cx: &Checker<'_>) -> Result<String, Mismatch> {
    let mut next = 0;
    for (k, m) in wanted.iter().enumerate() {
        let found = items[next..]
            .iter()
            .position(|item| check_matcher(m, Some(item), cx).is_ok());
        if let Some(pos) = found {
            next += pos + 1;
            continue;
        }
        let place = if next == 0 {
            format!("among the {} items", items.len())
        } else {
            format!("after item {} (of {})", next - 1, items.len())
        };
        let earlier = items[..next]
            .iter()
            .position(|item| check_matcher(m, Some(item), cx).is_ok());
        let hint = earlier.map_or_else(String::new, |i| {
            format!("; item {i} matches it, but too early")
        });
        return Err(mismatch(
            format!(
                "in_order: no item matches #{k} {} {place}{hint}",
                describe_wanted(m, cx)
            ),
            format!("{} items in order", wanted.len()),
        ));
    }
    Ok(format!("{} items in order", wanted.len()))
}

/// Each matcher is matched by a different item, in any order (a bipartite
/// matching, so an item that fits two matchers goes where it is needed).
fn includes(wanted: &[Matcher], items: &[Json], cx: &Checker<'_>) -> Result<String, Mismatch> {
    let fits: Vec<Vec<usize>> = wanted
        .iter()
        .map(|m| {
            items
                .iter()
                .enumerate()
                .filter(|(_, item)| check_matcher(m, Some(item), cx).is_ok())
                .map(|(i, _)| i)
                .collect()
        })
        .collect();
    if let Some(k) = fits.iter().position(Vec::is_empty) {
        return Err(mismatch(
            format!(
                "includes: no item of {} matches #{k} {}",
                items.len(),
                describe_wanted(&wanted[k], cx)
            ),
            format!("{} matching items", wanted.len()),
        ));
    }
    fn augment(
        k: usize,
        fits: &[Vec<usize>],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for &i in &fits[k] {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            if owner[i].is_none_or(|other| augment(other, fits, owner, seen)) {
                owner[i] = Some(k);
                return true;
            }
        }
        false
    }
    let mut owner = vec![None; items.len()];
    for k in 0..wanted.len() {
        let mut seen = vec![false; items.len()];
        if !augment(k, &fits, &mut owner, &mut seen) {
            return Err(mismatch(
                format!(
                    "includes: #{k} {} has no item of its own: the items that match it are taken by other matchers",
                    describe_wanted(&wanted[k], cx)
                ),
                format!("{} matching items", wanted.len()),
            ));
        }
    }
    Ok(format!("{} matching items", wanted.len()))
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

/// Equality that lets `"42"` equal `42` (headers are text) and `1` equal `1.0`.
fn loose_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::String(s), Json::Number(n)) | (Json::Number(n), Json::String(s)) => {
            s.trim().parse::<f64>().ok() == n.as_f64()
        }
        (Json::String(s), Json::Bool(b)) | (Json::Bool(b), Json::String(s)) => s == &b.to_string(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| loose_eq(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| loose_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Orders numbers, durations (`"500ms"` against milliseconds) and strings.
fn compare(a: &Json, b: &Json) -> Option<Ordering> {
    let num = |v: &Json| -> Option<f64> {
        match v {
            Json::Number(n) => n.as_f64(),
            Json::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .or_else(|| parse_duration(s).ok().map(|d| d.as_secs_f64() * 1000.0)),
            _ => None,
        }
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => match (a, b) {
            (Json::String(x), Json::String(y)) => Some(x.cmp(y)),
            _ => None,
        },
    }
}

fn json_type_matches(v: &Json, ty: JsonType) -> bool {
    match ty {
        JsonType::String => v.is_string(),
        JsonType::Number => v.is_number(),
        JsonType::Integer => v.is_i64() || v.is_u64(),
        JsonType::Boolean => v.is_boolean(),
        JsonType::Array => v.is_array(),
        JsonType::Object => v.is_object(),
        JsonType::Null => v.is_null(),
    }
}

fn as_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
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

/// A short rendering of a value for one-line messages. Only the start of a
/// large value is serialized: a stream of 10,000 events is not turned into
/// text to show 120 characters of it.
pub fn show(v: Option<&Json>) -> String {
    const LIMIT: usize = 120;
    let Some(v) = v else {
        return String::from("missing");
    };
    let mut out = Bounded {
        text: Vec::with_capacity(LIMIT + 8),
        limit: LIMIT * 4 + 4,
    };
    // an error means the writer stopped taking bytes: the start is enough
    let _ = serde_json::to_writer(&mut out, v);
    let text = String::from_utf8_lossy(&out.text);
    if text.chars().count() > LIMIT {
        let cut: String = text.chars().take(LIMIT - 3).collect();
        format!("`{cut}…`")
    } else {
        format!("`{text}`")
    }
}

/// A writer that takes bytes up to a limit, then refuses.
struct Bounded {
    text: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.limit.saturating_sub(self.text.len());
        if room == 0 {
            return Err(std::io::Error::other("enough"));
        }
        let n = room.min(buf.len());
        self.text.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn diff(expected: &Json, actual: &Json) -> Option<String> {
    let e = serde_json::to_string_pretty(expected).ok()?;
    let a = serde_json::to_string_pretty(actual).ok()?;
    if e.lines().count() < 3 && a.lines().count() < 3 {
        return None;
    }
    let d = similar::TextDiff::from_lines(&e, &a);
    Some(
        d.unified_diff()
            .context_radius(3)
            .header("expected", "actual")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use planrun_spec::error::Diagnostics;
    use planrun_spec::lower::{lower_matcher, parse_target};
    use planrun_spec::parse::parse_toml;
    use serde_json::json;

    fn exp(target: &str, matcher_toml: &str) -> Expectation {
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

    fn passes(target: &str, m: &str, doc: &Json) -> bool {
        Checker::new(&Renderer::new(), &Scope::default(), doc)
            .check(&exp(target, m))
            .passed
    }

    #[test]
    fn operators() {
        let doc = json!({"status": 200, "headers": {"content-type": "text/event-stream; charset=utf-8", "content-length": "42"},
            "json": {"items": [1, 2, 3], "name": "planrun", "checks": {"database": "ok", "cache": "ok", "channels": "configured"}},
            "duration": 123.4});
        assert!(passes("status", "200", &doc));
        assert!(!passes("status", "201", &doc));
        assert!(passes("status", "{ one_of = [200, 201] }", &doc));
        assert!(passes(
            "header.content-type",
            "{ starts_with = \"text/event-stream\" }",
            &doc
        ));
        assert!(passes("header.content-length", "42", &doc));
        assert!(passes(
            "json.items",
            "{ len = { ge = 3 }, contains = 2, all = { gt = 0 } }",
            &doc
        ));
        assert!(passes(
            "json.checks",
            "{ database = \"ok\", cache = \"ok\" }",
            &doc
        ));
        assert!(!passes(
            "json.checks",
            "{ eq = { database = \"ok\" } }",
            &doc
        ));
        assert!(passes("duration", "{ lt = \"500ms\" }", &doc));
        assert!(!passes("duration", "{ lt = \"100ms\" }", &doc));
        assert!(passes(
            "json.name",
            "{ matches = \"^plan\", type = \"string\", not = \"x\" }",
            &doc
        ));
        assert!(passes("json.missing", "{ exists = false }", &doc));
        assert!(passes("$.json.items[*]", "[1, 2, 3]", &doc));
    }

    fn message(target: &str, m: &str, doc: &Json) -> String {
        let out = Checker::new(&Renderer::new(), &Scope::default(), doc).check(&exp(target, m));
        assert!(!out.passed, "expected a failure of {m}");
        out.message
    }

    fn stream(offsets: &[f64]) -> Json {
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
    fn stream_timing_operators() {
        let spread = stream(&[12.0, 60.0, 111.0, 112.0]);
        assert!(passes("events", "{ first_within = \"50ms\" }", &spread));
        assert_eq!(
            message("events", "{ first_within = \"10ms\" }", &spread),
            "events: expected the first within 10.0 ms, it arrived after 12.0 ms"
        );
        assert!(passes("events", "{ max_gap = \"60ms\" }", &spread));
        assert_eq!(
            message("events", "{ max_gap = \"50ms\" }", &spread),
            "events: expected gaps of at most 50.0 ms, item 2 came 51.0 ms after the one before"
        );
        assert!(passes("events", "{ incremental = true }", &spread));
        assert!(!passes("events", "{ incremental = false }", &spread));
        let burst = stream(&[300.0, 300.5, 301.0, 304.9]);
        assert_eq!(
            message("events", "{ incremental = true }", &burst),
            "events: expected incremental: all 4 items arrived in one burst (within 4.9 ms)"
        );
        assert!(passes("events", "{ incremental = false }", &burst));
        assert_eq!(
            message("events", "{ incremental = true }", &stream(&[5.0])),
            "events: expected incremental: one item arrived"
        );
        assert_eq!(
            message("events", "{ first_within = \"1s\" }", &stream(&[])),
            "events: expected a first item, but none arrived"
        );
        assert!(passes("events", "{ max_gap = \"1ms\" }", &stream(&[7.0])));
        assert_eq!(
            message("status", "{ max_gap = \"1s\" }", &json!({"status": [1, 2]})),
            "status: item 0 has no `offset`: it is not an event or message of a stream"
        );
    }

    #[test]
    fn sequences_in_order_and_in_any_order() {
        let doc = stream(&[1.0, 2.0, 3.0, 4.0]);
        assert!(passes(
            "events",
            "{ in_order = [{ type = \"message\" }, { data = \"d2\" }, { type = \"done\" }] }",
            &doc
        ));
        assert_eq!(
            message(
                "events",
                "{ in_order = [{ type = \"done\" }, { data = \"d1\" }] }",
                &doc
            ),
            "events: in_order: no item matches #1 { data = `\"d1\"` } after item 3 (of 4); item 1 matches it, but too early"
        );
        assert!(passes(
            "events",
            "{ includes = [{ type = \"done\" }, { data = \"d0\" }, { type = \"message\" }] }",
            &doc
        ));
        // d0 is a message too: the matching gives each matcher its own item
        assert!(passes(
            "events",
            "{ includes = [{ type = \"message\" }, { type = \"message\" }, { data = \"d0\" }] }",
            &doc
        ));
        assert_eq!(
            message(
                "events",
                "{ includes = [{ type = \"message\" }, { type = \"message\" }, { type = \"message\" }, { type = \"message\" }] }",
                &doc
            ),
            "events: includes: #3 { type = `\"message\"` } has no item of its own: the items that match it are taken by other matchers"
        );
        assert_eq!(
            message("events", "{ includes = [{ type = \"error\" }] }", &doc),
            "events: includes: no item of 4 matches #0 { type = `\"error\"` }"
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
    fn a_field_called_type_is_matched_as_a_field() {
        let doc = json!({"json": {"type": "chat_message", "message": "hi"}});
        assert!(passes(
            "json",
            "{ type = \"chat_message\", message = \"hi\" }",
            &doc
        ));
        assert!(!passes("json", "{ type = \"pong\" }", &doc));
        assert!(passes("json", "{ type = \"object\" }", &doc));
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
            "events: expected gaps of at most 20.0 ms, item 1 came 28.0 ms after the one before"
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
