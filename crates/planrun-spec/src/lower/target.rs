//! Lowering what a step's result is checked and captured by: targets
//! (`status`, `header.x`, `json.a.b`, `$.raw`, `{{ expr }}`), the `expect` and
//! `should` tables, and `capture`.
//!
//! A target's matcher is lowered by [`super::matcher`]; this module decides
//! which part of a key is the target and which the matcher. It must not
//! evaluate a path or an expression: the runner does.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json_path::JsonPath;

use super::matcher::{Doc, is_op_key, lower_matcher, lower_matcher_of, misspelt_operator};
use super::{Table, boolean, check_name, invalid, string, wrong_type};
use crate::de::is_template;
use crate::error::{Diagnostic, DiagnosticKind, Diagnostics, code_list, did_you_mean};
use crate::model::{Capture, Expectation, Op, StepKind, Target};
use crate::template::Template;
use crate::value::{Key, Span, Value, ValueKind};

/// Parses a target as users write it in `expect` keys and capture sources:
/// `status`, `header.x`, `json.a.b`, `json.$.a[0]`, `$.raw`, `{{ expr }}`.
pub fn parse_target(text: &str, span: &Span) -> Result<Target, Diagnostic> {
    let text_trim = text.trim();
    if is_template(text_trim) {
        return Template::parse_expression(text_trim, span.clone()).map(Target::Expr);
    }
    if let Some(name) = text_trim
        .strip_prefix("header.")
        .or_else(|| text_trim.strip_prefix("headers."))
    {
        return Ok(Target::Header(name.to_ascii_lowercase()));
    }
    let path_text = if text_trim.starts_with('$') {
        text_trim.to_string()
    } else if let Some(rest) = text_trim.strip_prefix("json.$") {
        format!("$.json{rest}")
    } else {
        dotted_to_path(text_trim)
    };
    let path = parse_json_path(&path_text).map_err(|e| {
        invalid(span, format!("invalid path `{text_trim}`: {e}")).help(
            "write a field (`status`), a dotted path (`json.user.id`, `json.items[0]`) or a JSONPath (`$.json.items[*].id`)",
        )
    })?;
    Ok(Target::Path {
        text: text_trim.to_string(),
        path,
    })
}

/// Parses a JSONPath, reusing an earlier parse of the same text: specs repeat
/// a few targets (`status`, `json.id`) over and over, and a clone costs far
/// less than a parse.
///
/// Brackets and parentheses may nest [`MAX_PATH_NESTING`] deep: the parser
/// recurses and tries alternatives at every level, so a deeper path would
/// take exponential time or overflow the stack.
pub fn parse_json_path(text: &str) -> Result<JsonPath, JsonPathError> {
    /// Distinct paths kept; past it the cache starts over.
    const KEEP: usize = 1024;
    thread_local! {
        static PARSED: RefCell<HashMap<String, JsonPath>> = RefCell::new(HashMap::new());
    }
    if let Some(path) = PARSED.with_borrow(|cache| cache.get(text).cloned()) {
        return Ok(path);
    }
    if nesting(text) > MAX_PATH_NESTING {
        return Err(JsonPathError(format!(
            "brackets and parentheses nest more than {MAX_PATH_NESTING} deep"
        )));
    }
    let path = JsonPath::parse(text).map_err(|e| JsonPathError(e.to_string()))?;
    PARSED.with_borrow_mut(|cache| {
        if cache.len() >= KEEP {
            cache.clear();
        }
        cache.insert(text.to_string(), path.clone());
    });
    Ok(path)
}

/// How deep brackets and parentheses may nest in a JSONPath.
pub const MAX_PATH_NESTING: usize = 10;

/// Why a JSONPath is refused: the parser's message, or a nesting deeper
/// than [`MAX_PATH_NESTING`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPathError(String);

impl std::fmt::Display for JsonPathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonPathError {}

/// The deepest nesting of `[` and `(` outside string literals.
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' | '(' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ']' | ')' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    deepest
}

/// `json.user.id` → `$.json.user.id`; names that are not identifiers are quoted.
fn dotted_to_path(text: &str) -> String {
    let mut out = String::from("$");
    for part in text.split('.') {
        let (name, index) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
            {
                out.push('.');
                out.push_str(name);
            } else {
                out.push_str("['");
                out.push_str(&name.replace('\'', "\\'"));
                out.push_str("']");
            }
        }
        out.push_str(index);
    }
    out
}

pub(super) fn lower_expectations(
    value: &Value,
    blocking: bool,
    kind: Option<StepKind>,
    out: &mut Vec<Expectation>,
    diags: &mut Diagnostics,
) {
    let what = if blocking { "`expect`" } else { "`should`" };
    let Some(entries) = value.as_map() else {
        diags.push(wrong_type(value, &format!("{what} must be a table")));
        return;
    };
    for (key, v) in entries {
        let span = key.span.start..v.span.end.max(key.span.end);
        match key.name.as_str() {
            "that" => {
                let exprs: Vec<&Value> = match &v.kind {
                    ValueKind::Seq(items) => items.iter().collect(),
                    _ => vec![v],
                };
                for e in exprs {
                    if let Some(s) = string(e, "`that`", diags) {
                        match Template::parse_expression(&s, e.span.clone()) {
                            Ok(t) => out.push(Expectation {
                                target: Target::Expr(t),
                                matcher: None,
                                blocking,
                                span: e.span.clone(),
                            }),
                            Err(d) => diags.push(d),
                        }
                    }
                }
            }
            "header" | "headers" => {
                let Some(headers) = v.as_map() else {
                    diags.push(wrong_type(
                        v,
                        "`header` must be a table of header name = matcher",
                    ));
                    continue;
                };
                for (name, m) in headers {
                    if let Some(matcher) = lower_matcher(m, diags) {
                        out.push(Expectation {
                            target: Target::Header(name.name.to_ascii_lowercase()),
                            matcher: Some(matcher),
                            blocking,
                            span: name.span.start..m.span.end.max(name.span.end),
                        });
                    }
                }
            }
            "json" if is_path_table(v) => {
                for (path, m) in v.as_map().unwrap_or_default() {
                    let text = format!("json.{}", path.name);
                    match parse_target(&text, &path.span) {
                        Ok(target) => {
                            if let Some(matcher) = lower_matcher(m, diags) {
                                out.push(Expectation {
                                    target,
                                    matcher: Some(matcher),
                                    blocking,
                                    span: path.span.start..m.span.end.max(path.span.end),
                                });
                            }
                        }
                        Err(d) => diags.push(d),
                    }
                }
            }
            name => {
                if let Some(kind) = kind {
                    let root = name
                        .trim_start_matches("$.")
                        .split(['.', '['])
                        .next()
                        .unwrap_or(name);
                    let fields = kind.result_fields();
                    if !fields.is_empty()
                        && !name.starts_with('$')
                        && !fields.contains(&root)
                        && root != "header"
                    {
                        let mut known: Vec<&str> = fields.to_vec();
                        known.extend(["that", "header"]);
                        diags.push(
                            Diagnostic::new(
                                DiagnosticKind::UnknownKey,
                                key.span.clone(),
                                format!(
                                    "{} `{}` step's result has no `{root}`",
                                    crate::policy::article(kind.key()),
                                    kind.key()
                                ),
                            )
                            .label("not in the result")
                            .help(
                                did_you_mean(root, known.iter().copied()).unwrap_or_else(|| {
                                    format!("its result has {}", code_list(known))
                                }),
                            ),
                        );
                        continue;
                    }
                }
                // `events.len: 3` in YAML is one key; its last part is an
                // operator, as TOML's dotted `expect.events.len = 3` reads
                let (name, wrapped) = match split_operator(name, key, v) {
                    Some((target, op_table)) => (target, Some(op_table)),
                    None => (name, None),
                };
                let doc = kind
                    .and_then(|k| k.stream(name))
                    .map_or(Doc::Unknown, |(item, fields)| Doc::List(item, fields));
                match parse_target(name, &key.span) {
                    Ok(target) => {
                        if let Some(matcher) =
                            lower_matcher_of(wrapped.as_ref().unwrap_or(v), doc, diags)
                        {
                            out.push(Expectation {
                                target,
                                matcher: Some(matcher),
                                blocking,
                                span,
                            });
                        }
                    }
                    Err(d) => diags.push(d),
                }
            }
        }
    }
}

/// `events.len` with value `v` as the target `events` and the matcher
/// `{ len = v }`, when the last part is an operator (see [`is_op_key`]).
fn split_operator<'n>(name: &'n str, key: &Key, v: &Value) -> Option<(&'n str, Value)> {
    if name.starts_with('$') {
        return None;
    }
    let (target, last) = name.rsplit_once('.')?;
    let op_start = key.span.end.saturating_sub(last.len()).max(key.span.start);
    let op_key = Key {
        name: last.to_string(),
        span: op_start..key.span.end,
    };
    if target.is_empty() || !is_op_key(&op_key, v) {
        return None;
    }
    let table = Value {
        kind: ValueKind::Map(vec![(op_key, v.clone())]),
        span: key.span.start..v.span.end.max(key.span.end),
    };
    Some((target, table))
}

/// A `json` table is a table of paths unless every key is an operator, or
/// a near miss of one (then reported as such).
fn is_path_table(v: &Value) -> bool {
    v.as_map().is_some_and(|m| {
        !m.is_empty()
            && !m.iter().all(|(k, _)| {
                Op::from_key(&k.name).is_some() || misspelt_operator(&k.name).is_some()
            })
    })
}

const CAPTURE_KEYS: &[&str] = &["from", "regex", "secret"];

pub(super) fn lower_captures(value: &Value, diags: &mut Diagnostics) -> Vec<Capture> {
    let Some(entries) = value.as_map() else {
        diags.push(wrong_type(
            value,
            "`capture` must be a table of name = source",
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, v) in entries {
        check_name(name, "a capture", diags);
        let (from, regex, secret, from_span) = match &v.kind {
            ValueKind::Str(s) => (s.clone(), None, false, v.span.clone()),
            ValueKind::Map(_) => {
                let Some(mut t) = Table::new(v, "a capture", diags) else {
                    continue;
                };
                let Some(from_v) = t.get("from") else {
                    diags.push(
                        Diagnostic::new(
                            DiagnosticKind::MissingKey,
                            v.span.clone(),
                            format!("capture `{}` has no `from`", name.name),
                        )
                        .label("this capture")
                        .help("e.g. `{ from = \"json.token\", secret = true }`"),
                    );
                    continue;
                };
                let from = string(from_v, "`from`", diags).unwrap_or_default();
                let regex = t.get("regex").and_then(|r| string(r, "`regex`", diags));
                if let Some(r) = &regex
                    && let Err(e) = regex::Regex::new(r)
                {
                    diags.push(invalid(&v.span, format!("invalid regular expression: {e}")));
                }
                let secret = t
                    .get("secret")
                    .and_then(|s| boolean(s, "`secret`", diags))
                    .unwrap_or(false);
                t.finish(CAPTURE_KEYS, "in a capture", diags);
                (from, regex, secret, from_v.span.clone())
            }
            _ => {
                diags.push(wrong_type(
                    v,
                    "a capture must be a string such as `json.token`",
                ));
                continue;
            }
        };
        match parse_target(&from, &from_span) {
            Ok(target) => out.push(Capture {
                name: name.clone(),
                target,
                regex,
                secret,
                span: name.span.start..v.span.end,
            }),
            Err(d) => diags.push(d),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::lower_spec;
    use crate::model::Matcher;
    use crate::source::SourceFile;
    use std::sync::Arc;

    fn expectations(text: &str, format: crate::source::Format) -> Vec<Expectation> {
        let source = Arc::new(SourceFile::new("t", text, format));
        let root = crate::parse::parse_source(&source).expect("parses");
        let spec = lower_spec(&source, &root).expect("a table");
        assert!(spec.problems.is_empty(), "{:?}", spec.problems);
        spec.steps[0].expect.clone()
    }

    #[test]
    fn a_yaml_key_ending_in_an_operator_is_target_and_operator() {
        use crate::source::Format;
        let yaml = expectations(
            "steps:\n  - sse: { get: \"http://h/\" }\n    expect:\n      events.len: 3\n      events.in_order: [{ type: done }]\n      json.type: chat_message\n",
            Format::Yaml,
        );
        let toml = expectations(
            "[[steps]]\nsse = { get = \"http://h/\" }\nexpect.events.len = 3\nexpect.events.in_order = [{ type = \"done\" }]\n",
            Format::Toml,
        );
        let shape = |e: &Expectation| match &e.matcher {
            Some(Matcher::Ops(ops, _)) => format!(
                "{} {}",
                e.target.describe(),
                ops.iter().map(|o| o.op.key()).collect::<Vec<_>>().join(",")
            ),
            Some(Matcher::Literal(v)) => format!("{} = {:?}", e.target.describe(), v.to_json()),
            other => format!("{} {other:?}", e.target.describe()),
        };
        assert_eq!(
            yaml.iter().map(shape).collect::<Vec<_>>(),
            [
                "events len",
                "events in_order",
                "json.type = String(\"chat_message\")"
            ]
        );
        assert_eq!(
            toml.iter().map(shape).collect::<Vec<_>>(),
            ["events len,in_order"]
        );
    }

    #[test]
    fn dotted_paths() {
        assert_eq!(dotted_to_path("status"), "$.status");
        assert_eq!(dotted_to_path("json.items[0].id"), "$.json.items[0].id");
        assert_eq!(
            dotted_to_path("headers.content-type"),
            "$.headers['content-type']"
        );
    }

    #[test]
    fn json_paths_nested_too_deep_are_refused_before_the_parser_sees_them() {
        // the parser took exponential time on nested filters and overflowed
        // the stack on deep parentheses (fuzz/regressions/matcher/)
        let deep = |open: &str, close: &str, n: usize| {
            format!("$[?{}@{}]", open.repeat(n), close.repeat(n))
        };
        let err = parse_json_path(&deep("(", ")", 100_000)).expect_err("too deep");
        assert_eq!(
            err.to_string(),
            "brackets and parentheses nest more than 10 deep"
        );
        parse_json_path(&deep("@[?", "]", 40)).expect_err("too deep");
        // ten levels parse; brackets inside string literals do not count
        parse_json_path(&deep("(", ")", 9)).expect("ten levels");
        parse_json_path("$['[[[[[[[[[[[[' , \"((((((((((((\\\"\"]").expect("quoted brackets");
        assert_eq!(nesting("$['a\\'[(', \"]\"][0]"), 1);
        let span = 0..1;
        let err = parse_target(&format!("json.a{}", "[?@".repeat(20)), &span).expect_err("deep");
        assert!(
            err.message.contains("nest more than 10 deep"),
            "{}",
            err.message
        );
    }
}
