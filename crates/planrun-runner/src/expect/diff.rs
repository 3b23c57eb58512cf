//! How values look in messages: a one-line [`show`] for any value, however
//! large, numbers for people (three decimals at most, the durations planrun
//! measures as `8 ms`), and a diff of an expected and an actual document by
//! the paths where they differ.
//!
//! Rendering only: it must not decide whether a value matches (the diff
//! leaves equal values out by the matchers' own equality).

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use planrun_spec::duration::{human, parse_duration};
use planrun_spec::model::Target;
use serde_json::Value as Json;

use super::operators::loose_eq;

/// Fields of a result document that hold milliseconds (or tables and lists
/// of them: `timings`, `gaps`, `latencies`). A server's body may use the
/// same names for anything: they count outside `json` only.
const DURATION_FIELDS: &[&str] = &[
    "duration",
    "timings",
    "offset",
    "latency",
    "latencies",
    "first_event",
    "gaps",
    "max_gap",
    "retry",
    "connect",
];

/// Where a value stands in the result document, as far as showing it goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Field {
    /// Inside a parsed body: names there mean what the server means.
    in_body: bool,
    /// Milliseconds measured by planrun, shown as a duration.
    duration: bool,
}

impl Field {
    /// The place a target points at.
    pub(super) fn of_target(target: &Target) -> Field {
        match target {
            Target::Path { text, .. } => Field::default().child(text),
            Target::Header(_) | Target::Expr(_) => Field::default(),
        }
    }

    /// The place a key of a table matcher (`offset`, `$.timings.ttfb`,
    /// `json.elapsed`) points at under this one.
    pub(super) fn child(self, path: &str) -> Field {
        let mut field = self;
        let names = path
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .filter(|name| !name.is_empty());
        for name in names {
            if field.in_body {
                break;
            }
            if name == "json" {
                return Field {
                    in_body: true,
                    duration: false,
                };
            }
            // a duration's parts (`timings.ttfb`, `gaps[2]`) are durations
            field.duration |= DURATION_FIELDS.contains(&name);
        }
        field
    }

    /// The same place, its numbers compared with a duration (`lt = "1ms"`).
    pub(super) fn as_duration(self) -> Field {
        Field {
            duration: true,
            ..self
        }
    }
}

/// How exactly a value is shown: for people first; more exactly when two
/// values that differ would otherwise look the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// Three decimals at most, durations as `8 ms`.
    People,
    /// Three decimals at most, durations as `7.996 ms`.
    Millis,
    /// Every digit serde keeps.
    Exact,
}

/// A short rendering of a value for one-line messages, in backticks. Only
/// the start of a large value is serialized: a stream of 10,000 events is not
/// turned into text to show 120 characters of it.
pub(crate) fn show(v: Option<&Json>) -> String {
    show_in(v, Field::default())
}

/// [`show`] for a value at a place: a duration field reads `8 ms`.
pub(super) fn show_in(v: Option<&Json>, field: Field) -> String {
    quoted(v, field, Detail::People)
}

/// An expected and an actual value for one message, shown alike unless
/// they differ only in digits that [`show`] rounds away.
pub(super) fn show_pair(expected: &Json, actual: Option<&Json>, field: Field) -> (String, String) {
    let mut pair = (String::new(), String::new());
    for detail in [Detail::People, Detail::Millis, Detail::Exact] {
        pair = (
            quoted(Some(expected), field, detail),
            quoted(actual, field, detail),
        );
        if pair.0 != pair.1 {
            break;
        }
    }
    pair
}

fn quoted(v: Option<&Json>, field: Field, detail: Detail) -> String {
    match v {
        None => String::from("missing"),
        Some(v) => format!("`{}`", text(v, field, detail, 120)),
    }
}

/// A value on one line, cut to `limit` characters.
fn text(v: &Json, field: Field, detail: Detail, limit: usize) -> String {
    if field.duration
        && let Some(ms) = millis(v)
        && let Some(text) = ms_detail(ms, detail)
    {
        return text;
    }
    let mut out = Bounded {
        text: Vec::with_capacity(limit + 8),
        limit: limit * 4 + 4,
    };
    // an error means the writer stopped taking bytes: the start is enough
    let _ = if detail == Detail::Exact {
        serde_json::to_writer(&mut out, v)
    } else {
        use serde::Serialize as _;
        v.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, Rounded,
        ))
    };
    let text = String::from_utf8_lossy(&out.text);
    if text.chars().count() > limit {
        let cut: String = text.chars().take(limit - 3).collect();
        format!("{cut}…")
    } else {
        text.into_owned()
    }
}

/// A duration field's value (ms) or a duration as written (`"1ms"`), in ms.
fn millis(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) if s.trim().parse::<f64>().is_err() => {
            parse_duration(s).ok().map(|d| d.as_secs_f64() * 1000.0)
        }
        _ => None,
    }
}

fn ms_detail(ms: f64, detail: Detail) -> Option<String> {
    match detail {
        Detail::People => {
            let d = Duration::try_from_secs_f64(ms / 1000.0).ok()?;
            Some(human(d))
        }
        Detail::Millis => Some(format!("{} ms", number_text(ms))),
        Detail::Exact => None,
    }
}

/// A time in ms, as every duration planrun prints.
pub(super) fn ms_text(ms: f64) -> String {
    human(Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or(Duration::MAX))
}

/// A number with at most three decimals (`7.996`, `0.5`, `200`); a small one
/// keeps three significant digits (`0.000123`) rather than turning into `0`.
fn number_text(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let size = x.abs();
    if size != 0.0 && size < 1e-6 {
        return format!("{x:.2e}");
    }
    let decimals = if size != 0.0 && size < 0.001 {
        // three significant digits: 0.000123 has its first at the 4th decimal
        (2.0 - size.log10().floor()) as usize
    } else {
        3
    };
    let mut s = format!("{x:.decimals$}");
    if s.contains('.') {
        let kept = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(kept);
    }
    if s == "-0" {
        s = String::from("0");
    }
    s
}

/// serde_json's compact output with [`number_text`]'s floats.
struct Rounded;

impl serde_json::ser::Formatter for Rounded {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(number_text(value).as_bytes())
    }
}

/// A writer that takes bytes up to a limit, then refuses.
struct Bounded {
    text: Vec<u8>,
    limit: usize,
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.text.len());
        if room == 0 {
            return Err(io::Error::other("enough"));
        }
        let n = room.min(buf.len());
        self.text.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Lines a diff keeps; the rest are counted.
const DIFF_LINES: usize = 20;
/// Characters of a value on a diff line.
const DIFF_VALUE: usize = 60;

/// Where `actual` differs from `expected`, one line per path from `$` (the
/// value compared): `$.user.name: expected "a", got "b"`, `$.tags[2]:
/// missing`, `$.extra: not expected`. The order of an object's keys does not
/// count; items of a list are compared by index. `None` unless both are
/// tables or lists (a one-line message says the rest) and some path differs.
pub(super) fn diff(expected: &Json, actual: &Json, field: Field) -> Option<String> {
    let out = Differences::between(expected, actual, field)?;
    let mut text = out.lines.join("\n");
    if out.count > out.lines.len() {
        let _ = write!(text, "\n… and {} more", out.count - out.lines.len());
    }
    Some(text)
}

/// The paths where two tables or lists differ, for a one-line message:
/// `` differs at `$.a` `` or `` differs at `$.a`, `$.b`, `$.c` and 2 more paths ``.
pub(super) fn differs_at(expected: &Json, actual: &Json, field: Field) -> Option<String> {
    const NAMED: usize = 3;
    let out = Differences::between(expected, actual, field)?;
    let named: Vec<String> = out
        .paths
        .iter()
        .take(NAMED)
        .map(|p| format!("`{p}`"))
        .collect();
    let mut text = format!("differs at {}", named.join(", "));
    match out.count.saturating_sub(NAMED) {
        0 => {}
        1 => text.push_str(" and 1 more path"),
        more => {
            let _ = write!(text, " and {more} more paths");
        }
    }
    Some(text)
}

#[derive(Default)]
struct Differences {
    /// The first [`DIFF_LINES`] differences, a line each.
    lines: Vec<String>,
    /// Their paths.
    paths: Vec<String>,
    /// How many there are in all.
    count: usize,
}

impl Differences {
    fn between(expected: &Json, actual: &Json, field: Field) -> Option<Differences> {
        let container = |v: &Json| v.is_object() || v.is_array();
        if !container(expected) || !container(actual) {
            return None;
        }
        let mut out = Differences::default();
        differences(&mut String::from("$"), expected, actual, field, &mut out);
        (out.count > 0).then_some(out)
    }

    /// Adds a line at `path`; past [`DIFF_LINES`] only counts it, without
    /// building it.
    fn push(&mut self, path: &str, line: impl FnOnce() -> String) {
        self.count += 1;
        if self.lines.len() < DIFF_LINES {
            self.lines.push(format!("{path}: {}", line()));
            self.paths.push(path.to_string());
        }
    }
}

fn differences(path: &mut String, e: &Json, a: &Json, field: Field, out: &mut Differences) {
    let value = |v: &Json| text(v, field, Detail::People, DIFF_VALUE);
    match (e, a) {
        (Json::Object(eo), Json::Object(ao)) => {
            let len = path.len();
            for (key, ev) in eo {
                push_key(path, key);
                match ao.get(key) {
                    Some(av) => differences(path, ev, av, field.child(key), out),
                    None => out.push(path, || {
                        let shown = text(ev, field.child(key), Detail::People, DIFF_VALUE);
                        format!("missing (expected {shown})")
                    }),
                }
                path.truncate(len);
            }
            for (key, av) in ao.iter().filter(|(k, _)| !eo.contains_key(*k)) {
                push_key(path, key);
                out.push(path, || {
                    let shown = text(av, field.child(key), Detail::People, DIFF_VALUE);
                    format!("not expected (got {shown})")
                });
                path.truncate(len);
            }
        }
        (Json::Array(ea), Json::Array(aa)) => {
            let len = path.len();
            for i in 0..ea.len().max(aa.len()) {
                let _ = write!(path, "[{i}]");
                match (ea.get(i), aa.get(i)) {
                    (Some(ev), Some(av)) => differences(path, ev, av, field, out),
                    (Some(ev), None) => {
                        out.push(path, || format!("missing (expected {})", value(ev)));
                    }
                    (None, Some(av)) => {
                        out.push(path, || format!("not expected (got {})", value(av)));
                    }
                    (None, None) => {}
                }
                path.truncate(len);
            }
        }
        _ if loose_eq(e, a) => {}
        _ => out.push(path, || {
            let (es, got) = show_pair(e, Some(a), field);
            // the pair is quoted for messages; a diff line needs no quotes
            let unquote = |s: &str| s.trim_matches('`').to_string();
            format!("expected {}, got {}", unquote(&es), unquote(&got))
        }),
    }
}

/// `.name`, or `['a b']` for a key that is not a plain name.
fn push_key(path: &mut String, key: &str) {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_alphanumeric() || c == '_');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        let escaped = key.replace('\\', "\\\\").replace('\'', "\\'");
        let _ = write!(path, "['{escaped}']");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn show_cuts_a_long_value() {
        assert_eq!(show(None), "missing");
        assert_eq!(show(Some(&json!({"a": 1}))), "`{\"a\":1}`");
        let long = show(Some(&json!(vec![1; 10_000])));
        assert_eq!(long.chars().count(), 117 + 3);
        assert!(long.ends_with("…`"), "{long}");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(number_text(7.995_775_999_999_999), "7.996");
        assert_eq!(number_text(200.0), "200");
        assert_eq!(number_text(0.5), "0.5");
        assert_eq!(number_text(-0.0), "0");
        assert_eq!(number_text(2.0004), "2");
        assert_eq!(number_text(0.000_123_4), "0.000123");
        assert_eq!(number_text(-0.000_123_4), "-0.000123");
        assert_eq!(number_text(1.5e-9), "1.50e-9");
        assert_eq!(number_text(0.0), "0");
        assert_eq!(
            show(Some(&json!({"offset": 453.155_175_000_000_04, "n": 3}))),
            "`{\"offset\":453.155,\"n\":3}`"
        );
        let ms = Field::default().as_duration();
        assert_eq!(show_in(Some(&json!(7.995_775_999_999_999)), ms), "`8 ms`");
        assert_eq!(show_in(Some(&json!("1ms")), ms), "`1 ms`");
        assert_eq!(show_in(Some(&json!(1500)), ms), "`1.5 s`");
        // what a duration field holds that is no duration shows as it is
        assert_eq!(show_in(Some(&json!(null)), ms), "`null`");
        // two values that differ never look the same
        assert_eq!(
            show_pair(&json!("1ms"), Some(&json!(1.02)), ms),
            (String::from("`1 ms`"), String::from("`1.02 ms`"))
        );
        assert_eq!(
            show_pair(&json!(0.1), Some(&json!(0.100_01)), Field::default()),
            (String::from("`0.1`"), String::from("`0.10001`"))
        );
    }

    #[test]
    fn duration_fields() {
        let at = |path: &str| Field::default().child(path).duration;
        for path in [
            "duration",
            "timings.ttfb",
            "$.timings.ttfb",
            "events[0].offset",
            "gaps[2]",
            "replies.echo.latency",
            "first_event",
        ] {
            assert!(at(path), "{path}");
        }
        for path in ["status", "json.duration", "events[0].json.offset", "events"] {
            assert!(!at(path), "{path}");
        }
        let events = Field::default().child("events");
        assert!(events.child("$.offset").duration);
        assert!(!events.child("$.json.offset").duration);
        // inside a body, no name makes a duration
        assert!(!Field::default().child("json").child("duration").duration);
    }

    #[test]
    fn diff_by_path_whatever_the_key_order() {
        let expected = json!({"user": {"name": "a", "id": 7}, "tags": ["x", "y", "z"], "ok": true});
        let actual =
            json!({"ok": true, "extra": 1, "tags": ["x", "y"], "user": {"id": 7, "name": "b"}});
        insta::assert_snapshot!(diff(&expected, &actual, Field::default()).expect("a diff"), @r#"
        $.user.name: expected "a", got "b"
        $.tags[2]: missing (expected "z")
        $.extra: not expected (got 1)
        "#);
        // reordered keys alone are no difference; `"42"` equals `42` as in `eq`
        let reordered =
            json!({"tags": ["x", "y", "z"], "ok": true, "user": {"id": "7", "name": "a"}});
        assert_eq!(diff(&expected, &reordered, Field::default()), None);
        // scalars are said by the message
        assert_eq!(diff(&json!(1), &json!(2), Field::default()), None);
        assert_eq!(
            diff(
                &json!({"a b": 1, "it's": [1.25]}),
                &json!({"a b": 2, "it's": [1.0]}),
                Field::default()
            ),
            Some(String::from(
                "$['a b']: expected 1, got 2\n$['it\\'s'][0]: expected 1.25, got 1"
            ))
        );
        let timings = Field::default().child("timings");
        assert_eq!(
            diff(&json!({"ttfb": 5}), &json!({"ttfb": 7.9}), timings),
            Some(String::from("$.ttfb: expected 5 ms, got 7.9 ms"))
        );
    }

    #[test]
    fn a_long_diff_is_cut() {
        let expected: serde_json::Map<String, Json> =
            (0..50).map(|i| (format!("k{i}"), json!(i))).collect();
        let d = diff(&Json::Object(expected), &json!({}), Field::default()).expect("a diff");
        assert_eq!(d.lines().count(), DIFF_LINES + 1);
        assert!(d.starts_with("$.k0: missing (expected 0)\n"), "{d}");
        assert!(d.ends_with("\n… and 30 more"), "{d}");
    }
}
