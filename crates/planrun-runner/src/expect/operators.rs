//! The operators of a matcher table, on values: comparisons, text, type,
//! length, and `all`/`any`/`not` over nested matchers; operators over a
//! stream's items are handed to `stream`.
//!
//! Each operator says in words what it expected, or why it failed. Arguments
//! arrive typed (a pattern compiled, a type named): none is parsed here
//! unless it was a template. It must not select targets or build outcomes:
//! the [`super::Checker`] does.

use std::cmp::Ordering;

use planrun_spec::duration::parse_duration;
use planrun_spec::model::{Arg, ArgValue, JsonType, Op, Operator};
use serde_json::Value as Json;

use super::diff::{Field, differs_at, show, show_in, show_pair};
use super::stream::{first_within, in_order, includes, incremental, limit_ms, max_gap};
use super::{Checker, Mismatch, check_matcher, mismatch};

/// Checks one operator on `actual`, which stands at `field`.
pub(super) fn check_op(
    op: &Operator,
    actual: Option<&Json>,
    field: Field,
    cx: &Checker<'_>,
) -> Result<String, Mismatch> {
    match op {
        Operator::Not(inner) => match check_matcher(inner, actual, field, cx) {
            Ok(words) => Err(mismatch(
                format!("expected not {words}, got {}", show_in(actual, field)),
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
            // a length is a count, whatever the items are
            check_matcher(inner, Some(&Json::from(len)), Field::default(), cx)
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
            let failed = items.iter().enumerate().find_map(|(i, item)| {
                check_matcher(inner, Some(item), field, cx)
                    .err()
                    .map(|e| (i, e))
            });
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
                .any(|item| check_matcher(inner, Some(item), field, cx).is_ok())
            {
                Ok(String::from("some item matches"))
            } else {
                Err(mismatch(
                    format!("no item of {} matches", items.len()),
                    "some item matching",
                ))
            }
        }
        Operator::InOrder(wanted) => in_order(wanted, list(actual)?, field, cx),
        Operator::Includes(wanted) => includes(wanted, list(actual)?, field, cx),
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
                    format!("expected it to be absent, got {}", show_in(actual, field)),
                    "absent",
                ))
            }
        }
        Operator::Eq(v) => {
            let arg = cx.value(v)?;
            compared(Op::Eq, &arg, actual, field, |a| Ok(loose_eq(a, &arg)))
        }
        Operator::Ne(v) => {
            let arg = cx.value(v)?;
            compared(Op::Ne, &arg, actual, field, |a| Ok(!loose_eq(a, &arg)))
        }
        Operator::Lt(v) => ordered(Op::Lt, &cx.value(v)?, actual, field, Ordering::is_lt),
        Operator::Le(v) => ordered(Op::Le, &cx.value(v)?, actual, field, Ordering::is_le),
        Operator::Gt(v) => ordered(Op::Gt, &cx.value(v)?, actual, field, Ordering::is_gt),
        Operator::Ge(v) => ordered(Op::Ge, &cx.value(v)?, actual, field, Ordering::is_ge),
        Operator::Contains(v) => {
            let arg = cx.value(v)?;
            compared(Op::Contains, &arg, actual, field, |a| {
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
            compared(Op::Matches, &shown, actual, field, |a| {
                Ok(re?.is_match(&as_text(a)))
            })
        }
        Operator::StartsWith(v) => {
            let arg = cx.value(v)?;
            compared(Op::StartsWith, &arg, actual, field, |a| {
                Ok(as_text(a).starts_with(&as_text(&arg)))
            })
        }
        Operator::EndsWith(v) => {
            let arg = cx.value(v)?;
            compared(Op::EndsWith, &arg, actual, field, |a| {
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
            compared(Op::Type, &shown, actual, field, |a| {
                Ok(ty.is_some_and(|ty| json_type_matches(a, ty)))
            })
        }
        Operator::OneOf(v) => {
            let arg = cx.value(v)?;
            compared(Op::OneOf, &arg, actual, field, |a| {
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
    field: Field,
    holds: impl FnOnce(&Json) -> Result<bool, Mismatch>,
) -> Result<String, Mismatch> {
    let key = op.key();
    let Some(a) = actual else {
        let argw = show_in(Some(arg), field);
        return Err(mismatch(
            format!("expected {key} {argw}, but it is missing"),
            format!("{key} {argw}"),
        ));
    };
    let (argw, got) = show_pair(arg, Some(a), field);
    let words = format!("{} {argw}", key.replace('_', " "));
    if holds(a)? {
        Ok(words)
    } else {
        // two documents are told apart by where they differ (the diff has
        // each difference), not by both printed whole on one line
        let differ = if op == Op::Eq {
            differs_at(arg, a, field)
        } else {
            None
        };
        Err(Mismatch {
            message: differ.unwrap_or_else(|| format!("expected {words}, got {got}")),
            expected: words,
            expected_json: (op == Op::Eq).then(|| arg.clone()),
            field,
            ..mismatch("", "")
        })
    }
}

/// `lt`, `le`, `gt` and `ge`: the order of the target and `arg` satisfies
/// `wanted`. A target compared with a duration (`lt = "1ms"`) is one.
fn ordered(
    op: Op,
    arg: &Json,
    actual: Option<&Json>,
    field: Field,
    wanted: fn(Ordering) -> bool,
) -> Result<String, Mismatch> {
    let field = match arg {
        Json::String(s) if s.trim().parse::<f64>().is_err() && parse_duration(s).is_ok() => {
            field.as_duration()
        }
        _ => field,
    };
    compared(op, arg, actual, field, |a| {
        compare(a, arg).map(wanted).ok_or_else(|| {
            let argw = show(Some(arg));
            mismatch(
                format!("cannot compare {} with {argw}", show(Some(a))),
                format!("{} {argw}", op.key()),
            )
        })
    })
}

/// Equality that lets `"42"` equal `42` (headers are text) and `1` equal `1.0`.
pub(super) fn loose_eq(a: &Json, b: &Json) -> bool {
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

pub(super) fn as_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::passes;
    use serde_json::json;

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
}
