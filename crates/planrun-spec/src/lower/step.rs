//! Lowering steps: the keys every step has (`id`, `needs`, `if`, `retry`,
//! `timeout`, …), the one action key that gives its kind, and its `expect`,
//! `should` and `capture` tables (read by [`super::target`]).
//!
//! This module finds the action key and hands its value to the kind's module
//! in [`crate::kinds`], which owns the configuration. It must not check
//! `needs` against other steps: the graph is the planner's.

use std::time::Duration;

use super::target::{lower_captures, lower_expectations};
use super::{
    Table, boolean, check_name, duration, invalid, string, string_list, unknown_key, wrong_type,
};
use crate::error::{Diagnostic, DiagnosticKind, Diagnostics, code_list, did_you_mean};
use crate::model::{Repeat, RepeatOver, Retry, Step, StepChunk, StepKind};
use crate::parse::toml_step;
use crate::source::SourceFile;
use crate::template::Template;
use crate::value::{Key, Span, Value, ValueKind};

const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "needs",
    "expect",
    "should",
    "capture",
    "retry",
    "repeat",
    "timeout",
    "if",
    "always",
];

/// The steps of a spec, and the ids of those that could not be kept.
pub(super) struct Steps {
    pub(super) steps: Vec<Step>,
    pub(super) dropped: Vec<String>,
}

pub(super) fn lower_steps(value: &Value, diags: &mut Diagnostics) -> Steps {
    let mut out = Steps {
        steps: Vec::new(),
        dropped: Vec::new(),
    };
    let Some(items) = value.as_seq() else {
        diags.push(wrong_type(value, "`steps` must be a list"));
        return out;
    };
    if items.is_empty() {
        diags.push(invalid(&value.span, "`steps` is empty").help("a spec needs at least one step"));
    }
    for (position, item) in items.iter().enumerate() {
        if let Some(mut step) = lower_step(position, item, diags, &mut out.dropped) {
            // the index is the step's place among the kept steps: the graph's
            step.index = out.steps.len();
            out.steps.push(step);
        }
    }
    out
}

/// Lowers one step. A step whose id and kind are known is kept even when its
/// configuration, an expectation or a capture has a problem (it is marked
/// unsound), so that the graph and the references of the spec are checked
/// in the same pass; a step without a known kind is dropped and its id, when
/// known, goes to `dropped`.
fn lower_step(
    position: usize,
    value: &Value,
    diags: &mut Diagnostics,
    dropped: &mut Vec<String>,
) -> Option<Step> {
    let mut table = Table::new(value, "a step", diags)?;
    let before = diags.len();
    let mut id_known = true;
    let (id, id_span) = match table.get("id") {
        Some(v) => {
            let id = string(v, "a step `id`", diags).unwrap_or_default();
            id_known = !id.is_empty();
            check_name(
                &Key {
                    name: id.clone(),
                    span: v.span.clone(),
                },
                "a step id",
                diags,
            );
            (id, v.span.clone())
        }
        None => (
            format!("step-{}", position + 1),
            value
                .as_map()
                .and_then(|m| m.first())
                .map_or(value.span.clone(), |(k, _)| k.span.clone()),
        ),
    };
    let name = table
        .get("name")
        .or_else(|| table.get("description"))
        .and_then(|v| string(v, "a step `name`", diags));
    let needs = table.get("needs").map(|v| string_list(v, "`needs`", diags));
    let timeout = table.get("timeout").and_then(|v| duration(v, diags));
    let always = table
        .get("always")
        .and_then(|v| boolean(v, "`always`", diags))
        .unwrap_or(false);
    let when = table.get("if").and_then(|v| match &v.kind {
        ValueKind::Str(s) => match Template::parse_expression(s, v.span.clone()) {
            Ok(t) => Some(t),
            Err(d) => {
                diags.push(d);
                None
            }
        },
        ValueKind::Bool(b) => {
            Template::parse_expression(if *b { "true" } else { "false" }, v.span.clone()).ok()
        }
        _ => {
            diags.push(wrong_type(
                v,
                "`if` must be an expression such as `env.CI == 'true'`",
            ));
            None
        }
    });
    let retry = table.get("retry").and_then(|v| lower_retry(v, diags));
    let repeat = table.get("repeat").and_then(|v| lower_repeat(v, diags));

    // the step kind: exactly one action key
    let kinds: Vec<_> = StepKind::ALL
        .iter()
        .filter_map(|k| table.take(k.key()).map(|(key, v)| (*k, key, v)))
        .collect();
    let mut expect = Vec::new();
    if let Some(v) = table.get("expect") {
        lower_expectations(v, true, kinds.first().map(|k| k.0), &mut expect, diags);
    }
    if let Some(v) = table.get("should") {
        lower_expectations(v, false, kinds.first().map(|k| k.0), &mut expect, diags);
    }
    let before_captures = diags.len();
    let captures = table
        .get("capture")
        .map_or_else(Vec::new, |v| lower_captures(v, diags));
    let captures_known = diags.len() == before_captures;

    let unknown: Vec<_> = table.rest().cloned().collect();
    let mut all_keys: Vec<&str> = STEP_KEYS.to_vec();
    all_keys.extend(StepKind::keys());
    for (key, _) in &unknown {
        let mut d = unknown_key(key, &all_keys, "in a step");
        if kinds.is_empty() && did_you_mean(&key.name, StepKind::keys()).is_some() {
            d.message = format!("unknown step kind `{}`", key.name);
        } else if kinds.is_empty() {
            d = d.help(format!(
                "a step needs one action key: {}",
                code_list(StepKind::keys())
            ));
        }
        diags.push(d);
    }
    let (kind, kind_key, config) = match kinds.as_slice() {
        [one] => *one,
        [] => {
            if unknown.is_empty() {
                diags.push(
                    Diagnostic::new(
                        DiagnosticKind::StepKind,
                        value.span.clone(),
                        format!("step `{id}` has no action"),
                    )
                    .label("this step")
                    .help(format!("add one of {}", code_list(StepKind::keys()))),
                );
            }
            if id_known {
                dropped.push(id);
            }
            return None;
        }
        [first, rest @ ..] => {
            diags.push(
                Diagnostic::new(
                    DiagnosticKind::StepKind,
                    rest[0].1.span.clone(),
                    format!("step `{id}` has more than one action"),
                )
                .label(format!("`{}` here", rest[0].1.name))
                .related(first.1.span.clone(), format!("`{}` here", first.1.name))
                .help("split it into two steps"),
            );
            if id_known {
                dropped.push(id);
            }
            return None;
        }
    };
    if !id_known {
        return None;
    }
    let config = kind.lower_config(config, diags);
    Some(Step {
        index: position,
        id,
        id_span,
        name,
        kind,
        kind_span: kind_key.span.clone(),
        config: config.value,
        config_templates: config.templates,
        config_matchers: config.matchers,
        needs,
        expect,
        captures,
        retry: retry.map(Box::new),
        repeat: repeat.map(Box::new),
        timeout,
        when: when.map(Box::new),
        always,
        sound: diags.len() == before,
        captures_known,
        span: value.span.clone(),
        chunk: None,
    })
}

/// Lowers the steps of a spec read a step at a time: each
/// is parsed, lowered, checked and stripped to what orders and names it
/// ([`Step::chunk`]) before the next is read.
pub(super) fn lower_step_chunks(text: &str, chunks: &[Span], diags: &mut Diagnostics) -> Steps {
    let mut out = Steps {
        steps: Vec::with_capacity(chunks.len()),
        dropped: Vec::new(),
    };
    for (position, span) in chunks.iter().enumerate() {
        let value = match toml_step(text, span) {
            Ok(value) => value,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        if let Some(mut step) = lower_step(position, &value, diags, &mut out.dropped) {
            step.index = out.steps.len();
            strip(&mut step, span, position);
            out.steps.push(step);
        }
    }
    out
}

/// Keeps of a step what orders and names it; [`reread_step`] gives the
/// rest back.
fn strip(step: &mut Step, span: &Span, position: usize) {
    let (Ok(start), Ok(end), Ok(position)) = (
        u32::try_from(span.start),
        u32::try_from(span.end),
        u32::try_from(position),
    ) else {
        // a spec file is far smaller than 4 GiB: kept whole otherwise
        return;
    };
    step.config = Value::new(ValueKind::Null, step.config.span.clone());
    step.config_templates = Vec::new();
    step.config_matchers = Vec::new();
    step.expect = Vec::new();
    step.chunk = Some(StepChunk {
        span: start..end,
        position,
    });
}

/// Step `head`, read a step at a time from `chunk`, read again whole from
/// `source`.
pub(crate) fn reread_step(
    source: &SourceFile,
    head: &Step,
    chunk: &StepChunk,
) -> Result<Step, Diagnostics> {
    let span = chunk.span.start as usize..chunk.span.end as usize;
    let value = toml_step(&source.text, &span).map_err(|d| Diagnostics(vec![d]))?;
    let mut diags = Diagnostics::default();
    let mut dropped = Vec::new();
    match lower_step(chunk.position as usize, &value, &mut diags, &mut dropped) {
        Some(mut step) if step.id == head.id => {
            step.index = head.index;
            Ok(step)
        }
        _ if !diags.is_empty() => Err(diags),
        _ => Err(Diagnostics(vec![Diagnostic::new(
            DiagnosticKind::Syntax,
            span,
            "this step no longer reads as it did",
        )])),
    }
}

const RETRY_KEYS: &[&str] = &["attempts", "interval", "backoff", "max_interval", "timeout"];

fn lower_retry(value: &Value, diags: &mut Diagnostics) -> Option<Retry> {
    let mut retry = Retry {
        attempts: 3,
        interval: Duration::from_secs(1),
        backoff: 1.0,
        max_interval: Duration::from_secs(30),
        timeout: None,
    };
    if let ValueKind::Int(n) = value.kind {
        match attempts(n) {
            Some(n) => retry.attempts = n,
            None => diags.push(
                invalid(
                    &value.span,
                    format!(
                        "`retry` must be a whole number from 1 to {}",
                        Retry::MAX_ATTEMPTS
                    ),
                )
                .help("to poll until a time limit, write `retry = { timeout = \"30s\" }`"),
            ),
        }
        return Some(retry);
    }
    let mut table = Table::new(value, "`retry`", diags)?;
    if let Some(v) = table.get("attempts") {
        let n = match v.kind {
            ValueKind::Int(n) => attempts(n),
            _ => None,
        };
        match n {
            Some(n) => retry.attempts = n,
            None => diags.push(
                invalid(
                    &v.span,
                    format!(
                        "`attempts` must be a whole number from 1 to {}",
                        Retry::MAX_ATTEMPTS
                    ),
                )
                .help("to poll until a time limit, leave `attempts` out and set `timeout`"),
            ),
        }
    }
    if let Some(d) = table.get("interval").and_then(|v| duration(v, diags)) {
        retry.interval = d;
    }
    if let Some(d) = table.get("max_interval").and_then(|v| duration(v, diags)) {
        retry.max_interval = d;
    }
    if let Some(v) = table.get("backoff") {
        #[allow(
            clippy::cast_precision_loss,
            reason = "a backoff written as an integer is small once checked"
        )]
        let factor = match v.kind {
            ValueKind::Int(n) => Some(n as f64),
            ValueKind::Float(f) => Some(f),
            _ => None,
        };
        match factor {
            // NaN and the infinities fail the range test too
            Some(f) if (1.0..=Retry::MAX_BACKOFF).contains(&f) => retry.backoff = f,
            _ => diags.push(
                invalid(
                    &v.span,
                    format!(
                        "`backoff` must be a number from 1 to {}",
                        Retry::MAX_BACKOFF
                    ),
                )
                .help("each pause is the one before times `backoff`, at most `max_interval`"),
            ),
        }
    }
    if let Some((_, v)) = table.take("timeout") {
        retry.timeout = duration(v, diags);
        if table.entries.iter().all(|(k, _)| k.name != "attempts") {
            // a time-bounded poll: attempts are limited by time only
            retry.attempts = u32::MAX;
        }
    }
    table.finish(RETRY_KEYS, "in `retry`", diags);
    Some(retry)
}

/// A number of attempts a spec may ask for.
fn attempts(n: i64) -> Option<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=Retry::MAX_ATTEMPTS).contains(n))
}

const REPEAT_KEYS: &[&str] = &["count", "over", "as", "concurrency"];

/// `repeat = 100`, `repeat = { count = 100, concurrency = 10 }`, or
/// `repeat = { over = [...] or "{{ list }}", as = "user" }`.
fn lower_repeat(value: &Value, diags: &mut Diagnostics) -> Option<Repeat> {
    let span = value.span.clone();
    if let ValueKind::Int(_) = value.kind {
        let count = whole(value, Repeat::MAX_COUNT, "`repeat`", diags)?;
        return Some(Repeat {
            over: RepeatOver::Count(count),
            concurrency: 1,
            span,
        });
    }
    if !matches!(value.kind, ValueKind::Map(_)) {
        diags.push(
            wrong_type(
                value,
                "`repeat` must be a count or a table with `count` or `over`",
            )
            .help("`repeat = 10`, `repeat = { count = 10, concurrency = 5 }` or `repeat = { over = [\"alice\", \"bob\"], as = \"user\" }`"),
        );
        return None;
    }
    let mut table = Table::new(value, "`repeat`", diags)?;
    let count = table.take("count");
    let over = table.take("over");
    let name = table.take("as");
    let concurrency = match table.get("concurrency") {
        Some(v) => whole(v, Repeat::MAX_CONCURRENCY, "`concurrency`", diags),
        None => Some(1),
    };
    table.finish(REPEAT_KEYS, "in `repeat`", diags);
    let over = match (count, over) {
        (Some((_, c)), None) => {
            if let Some((key, _)) = name {
                diags.push(
                    invalid(&key.span, "`as` names the item of `over`, and this `repeat` has a `count`")
                        .help("with `count`, read the iteration's number as `{{ repeat.index }}` (from 0)"),
                );
            }
            RepeatOver::Count(whole(c, Repeat::MAX_COUNT, "`count`", diags)?)
        }
        (None, Some((_, items))) => lower_over(items, name, diags)?,
        (Some(_), Some((key, _))) => {
            diags.push(
                invalid(&key.span, "`repeat` takes `count` or `over`, not both")
                    .help("`over` runs once per item: its length is the count"),
            );
            return None;
        }
        (None, None) => {
            diags.push(
                invalid(&span, "`repeat` needs `count` or `over`")
                    .help("`repeat = { count = 10 }` or `repeat = { over = [\"alice\", \"bob\"], as = \"user\" }`"),
            );
            return None;
        }
    };
    Some(Repeat {
        over,
        concurrency: concurrency?,
        span,
    })
}

/// The list of `over` and the item's name.
fn lower_over(
    value: &Value,
    name: Option<(&Key, &Value)>,
    diags: &mut Diagnostics,
) -> Option<RepeatOver> {
    let name = match name {
        None => Key {
            name: Repeat::DEFAULT_ITEM.to_owned(),
            span: value.span.clone(),
        },
        Some((_, v)) => {
            let text = string(v, "`as`", diags)?;
            let key = Key {
                name: text,
                span: v.span.clone(),
            };
            item_name(&key, diags)?;
            key
        }
    };
    let mut templates = Vec::new();
    match &value.kind {
        ValueKind::Seq(items) if items.is_empty() => {
            diags.push(
                invalid(&value.span, "`over` is an empty list: nothing to repeat")
                    .help("give it at least one item"),
            );
            return None;
        }
        ValueKind::Seq(_) => {
            let mut ok = true;
            value.visit_strings(&mut |s, span| {
                if crate::de::is_template(s) {
                    match Template::parse(s, span.clone()) {
                        Ok(t) => templates.push(t),
                        Err(d) => {
                            ok = false;
                            diags.push(d);
                        }
                    }
                }
            });
            if !ok {
                return None;
            }
        }
        ValueKind::Str(s) if crate::template::single_expression(s).is_some() => {
            match Template::parse(s, value.span.clone()) {
                Ok(t) => templates.push(t),
                Err(d) => {
                    diags.push(d);
                    return None;
                }
            }
        }
        _ => {
            diags.push(
                wrong_type(
                    value,
                    "`over` must be a list, or one `{{ … }}` that renders to a list",
                )
                .help("`over = [\"alice\", \"bob\"]` or `over = \"{{ users }}\"`"),
            );
            return None;
        }
    }
    Some(RepeatOver::Items {
        value: value.clone(),
        templates,
        name,
    })
}

/// Checks the name an item is read under: a template name that is not
/// taken by planrun itself.
fn item_name(key: &Key, diags: &mut Diagnostics) -> Option<()> {
    let name = key.name.as_str();
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        diags.push(
            invalid(&key.span, format!("`{name}` cannot name the item")).help(
                "the name is read in templates: letters, digits and `_`, not starting with a digit",
            ),
        );
        return None;
    }
    if name == Repeat::NAME || name == "result" || crate::template::BUILTIN_NAMES.contains(&name) {
        diags.push(
            invalid(
                &key.span,
                format!("`{name}` cannot name the item: planrun uses it"),
            )
            .help("choose another name, such as `user`"),
        );
        return None;
    }
    Some(())
}

/// A whole number from 1 to `max`.
fn whole(value: &Value, max: u32, what: &str, diags: &mut Diagnostics) -> Option<u32> {
    let n = match value.kind {
        ValueKind::Int(n) => u32::try_from(n).ok().filter(|n| (1..=max).contains(n)),
        _ => None,
    };
    if n.is_none() {
        diags.push(invalid(
            &value.span,
            format!("{what} must be a whole number from 1 to {max}"),
        ));
    }
    n
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::source::SourceFile;

    fn retry(text: &str) -> Result<Retry, Vec<String>> {
        let text = format!("[[steps]]\nwait = \"1s\"\nretry = {text}\n");
        let source = Arc::new(SourceFile::new("t", text, crate::source::Format::Toml));
        let root = crate::parse::parse_source(&source).expect("parses");
        let spec = crate::lower::lower_spec(&source, &root).expect("a table");
        if spec.problems.is_empty() {
            Ok(*spec.steps[0].retry.clone().expect("a retry"))
        } else {
            Err(spec.problems.iter().map(|d| d.message.clone()).collect())
        }
    }

    #[test]
    fn retry_bounds_are_inclusive() {
        let edge = retry("{ attempts = 1_000_000, backoff = 100 }").expect("valid");
        assert_eq!((edge.attempts, edge.backoff), (Retry::MAX_ATTEMPTS, 100.0));
        assert_eq!(retry("1_000_000").map(|r| r.attempts), Ok(1_000_000));
        assert_eq!(retry("{ backoff = 1.0 }").map(|r| r.backoff), Ok(1.0));
        for (text, message) in [
            ("0", "`retry` must be a whole number from 1 to 1000000"),
            (
                "{ attempts = 0 }",
                "`attempts` must be a whole number from 1 to 1000000",
            ),
            (
                "{ attempts = 1.5 }",
                "`attempts` must be a whole number from 1 to 1000000",
            ),
            (
                "{ backoff = 100.5 }",
                "`backoff` must be a number from 1 to 100",
            ),
            (
                "{ backoff = 0.5 }",
                "`backoff` must be a number from 1 to 100",
            ),
            (
                "{ backoff = -inf }",
                "`backoff` must be a number from 1 to 100",
            ),
            (
                "{ backoff = \"2\" }",
                "`backoff` must be a number from 1 to 100",
            ),
        ] {
            assert_eq!(
                retry(text).map(|_| ()),
                Err(vec![message.to_owned()]),
                "{text}"
            );
        }
    }

    fn repeat(text: &str) -> Result<Repeat, Vec<String>> {
        let text = format!("[[steps]]\nwait = \"1s\"\nrepeat = {text}\n");
        let source = Arc::new(SourceFile::new("t", text, crate::source::Format::Toml));
        let root = crate::parse::parse_source(&source).expect("parses");
        let spec = crate::lower::lower_spec(&source, &root).expect("a table");
        if spec.problems.is_empty() {
            Ok(*spec.steps[0].repeat.clone().expect("a repeat"))
        } else {
            Err(spec.problems.iter().map(|d| d.message.clone()).collect())
        }
    }

    #[test]
    fn repeat_takes_a_count_or_a_list() {
        let r = repeat("100").expect("valid");
        assert!(matches!(r.over, RepeatOver::Count(100)) && r.concurrency == 1);
        let r = repeat("{ count = 1_000_000, concurrency = 10 }").expect("valid");
        assert!(matches!(r.over, RepeatOver::Count(1_000_000)) && r.concurrency == 10);
        let r = repeat("{ over = [\"alice\", \"bob\"], as = \"user\" }").expect("valid");
        assert_eq!(r.item_name().map(|k| k.name.as_str()), Some("user"));
        let r = repeat("{ over = \"{{ users }}\" }").expect("valid");
        let RepeatOver::Items {
            templates, name, ..
        } = &r.over
        else {
            panic!("a list: {r:?}");
        };
        assert_eq!((name.name.as_str(), templates.len()), ("item", 1));
    }

    #[test]
    fn bad_repeat_values_say_what_is_wrong() {
        for (text, message) in [
            ("0", "`repeat` must be a whole number from 1 to 1000000"),
            (
                "1_000_001",
                "`repeat` must be a whole number from 1 to 1000000",
            ),
            (
                "true",
                "`repeat` must be a count or a table with `count` or `over`, found a boolean",
            ),
            (
                "{ count = 2.5 }",
                "`count` must be a whole number from 1 to 1000000",
            ),
            (
                "{ count = 2, concurrency = 0 }",
                "`concurrency` must be a whole number from 1 to 10000",
            ),
            ("{ concurrency = 2 }", "`repeat` needs `count` or `over`"),
            (
                "{ count = 2, over = [1, 2] }",
                "`repeat` takes `count` or `over`, not both",
            ),
            (
                "{ count = 2, as = \"user\" }",
                "`as` names the item of `over`, and this `repeat` has a `count`",
            ),
            (
                "{ over = [] }",
                "`over` is an empty list: nothing to repeat",
            ),
            (
                "{ over = \"alice\" }",
                "`over` must be a list, or one `{{ … }}` that renders to a list, found a string",
            ),
            (
                "{ over = \"{{ a }}-{{ b }}\" }",
                "`over` must be a list, or one `{{ … }}` that renders to a list, found a string",
            ),
            (
                "{ over = [1], as = \"repeat\" }",
                "`repeat` cannot name the item: planrun uses it",
            ),
            ("{ over = [1], as = \"a-b\" }", "`a-b` cannot name the item"),
            ("{ cont = 2 }", "unknown key `cont` in `repeat`"),
        ] {
            let got = repeat(text).map(|_| ()).expect_err(text);
            assert!(got.contains(&message.to_owned()), "{text}: {got:?}");
        }
    }

    #[test]
    fn repeat_reads_the_same_in_yaml() {
        let text = "steps:\n  - wait: 1s\n    repeat: { over: [alice, bob], as: user, concurrency: 2 }\n  - wait: 1s\n    repeat: 5\n";
        let source = Arc::new(SourceFile::new("t", text, crate::source::Format::Yaml));
        let root = crate::parse::parse_source(&source).expect("parses");
        let spec = crate::lower::lower_spec(&source, &root).expect("a table");
        assert!(spec.problems.is_empty(), "{:?}", spec.problems);
        let first = spec.steps[0].repeat.as_ref().expect("a repeat");
        let RepeatOver::Items { value, name, .. } = &first.over else {
            panic!("a list: {first:?}");
        };
        assert_eq!(
            (value.to_json(), name.name.as_str(), first.concurrency),
            (serde_json::json!(["alice", "bob"]), "user", 2)
        );
        let second = spec.steps[1].repeat.as_ref().expect("a repeat");
        assert!(matches!(second.over, RepeatOver::Count(5)));
    }
}
