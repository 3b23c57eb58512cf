//! Lowering: the value tree of a file becomes a typed [`Spec`], every problem
//! collected as a diagnostic rather than stopping at the first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json_path::JsonPath;

use crate::de::is_template;
use crate::duration::{parse_bytes, parse_duration};
use crate::error::{Diagnostic, DiagnosticKind, Diagnostics, code_list, did_you_mean};
use crate::model::{
    Capture, Defaults, DirConfig, Expectation, Matcher, Op, OpMatcher, Priority, Retry, Spec, Step,
    StepKind, Target, Var,
};
use crate::source::SourceFile;
use crate::template::Template;
use crate::value::{Key, Span, Value, ValueKind};

const SPEC_KEYS: &[&str] = &[
    "id",
    "name",
    "objective",
    "description",
    "priority",
    "tags",
    "phase",
    "vars",
    "defaults",
    "steps",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "needs",
    "expect",
    "should",
    "capture",
    "retry",
    "timeout",
    "if",
    "always",
];
const DEFAULTS_KEYS: &[&str] = &["timeout", "spec_timeout", "max_body"];
const DIR_KEYS: &[&str] = &["vars", "defaults"];

/// A mapping being read: tracks which keys were used so the rest can be
/// reported as unknown, with a suggestion.
struct Table<'a> {
    entries: &'a [(Key, Value)],
    used: Vec<bool>,
}

impl<'a> Table<'a> {
    fn new(value: &'a Value, what: &str, diags: &mut Diagnostics) -> Option<Table<'a>> {
        if let Some(entries) = value.as_map() {
            Some(Table {
                entries,
                used: vec![false; entries.len()],
            })
        } else {
            diags.push(wrong_type(value, &format!("{what} must be a table")));
            None
        }
    }

    fn take(&mut self, name: &str) -> Option<(&'a Key, &'a Value)> {
        let i = self.entries.iter().position(|(k, _)| k.name == name)?;
        self.used[i] = true;
        Some((&self.entries[i].0, &self.entries[i].1))
    }

    fn get(&mut self, name: &str) -> Option<&'a Value> {
        self.take(name).map(|(_, v)| v)
    }

    fn rest(&self) -> impl Iterator<Item = &'a (Key, Value)> + '_ {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(e, _)| e)
    }

    fn finish(self, known: &[&str], where_: &str, diags: &mut Diagnostics) {
        for (key, _) in self.rest() {
            diags.push(unknown_key(key, known, where_));
        }
    }
}

fn unknown_key(key: &Key, known: &[&str], where_: &str) -> Diagnostic {
    let help = did_you_mean(&key.name, known.iter().copied())
        .unwrap_or_else(|| format!("keys allowed {where_}: {}", code_list(known)));
    Diagnostic::new(
        DiagnosticKind::UnknownKey,
        key.span.clone(),
        format!("unknown key `{}` {where_}", key.name),
    )
    .label("unknown key")
    .help(help)
}

fn wrong_type(value: &Value, message: &str) -> Diagnostic {
    Diagnostic::new(
        DiagnosticKind::WrongType,
        value.span.clone(),
        format!("{message}, found {}", value.type_name()),
    )
    .label(format!("this is {}", value.type_name()))
}

fn invalid(span: &Span, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(DiagnosticKind::InvalidValue, span.clone(), message).label("this value")
}

fn string(value: &Value, what: &str, diags: &mut Diagnostics) -> Option<String> {
    match &value.kind {
        ValueKind::Str(s) => Some(s.clone()),
        ValueKind::Int(i) => Some(i.to_string()),
        ValueKind::Float(f) => Some(f.to_string()),
        _ => {
            diags.push(wrong_type(value, &format!("{what} must be a string")));
            None
        }
    }
}

fn string_list(value: &Value, what: &str, diags: &mut Diagnostics) -> Vec<Key> {
    match &value.kind {
        ValueKind::Str(s) => vec![Key {
            name: s.clone(),
            span: value.span.clone(),
        }],
        ValueKind::Seq(items) => items
            .iter()
            .filter_map(|item| {
                string(item, what, diags).map(|name| Key {
                    name,
                    span: item.span.clone(),
                })
            })
            .collect(),
        _ => {
            diags.push(wrong_type(
                value,
                &format!("{what} must be a list of strings"),
            ));
            Vec::new()
        }
    }
}

fn boolean(value: &Value, what: &str, diags: &mut Diagnostics) -> Option<bool> {
    if let ValueKind::Bool(b) = value.kind {
        Some(b)
    } else {
        diags.push(wrong_type(
            value,
            &format!("{what} must be `true` or `false`"),
        ));
        None
    }
}

fn duration(value: &Value, diags: &mut Diagnostics) -> Option<Duration> {
    let text = match &value.kind {
        ValueKind::Str(s) => s.clone(),
        ValueKind::Int(i) => {
            diags.push(
                invalid(&value.span, format!("a duration needs a unit: `{i}`"))
                    .help(format!("write `{i}s` or `{i}ms`")),
            );
            return None;
        }
        _ => {
            diags.push(wrong_type(
                value,
                "a duration must be a string such as `2s`",
            ));
            return None;
        }
    };
    match parse_duration(&text) {
        Ok(d) => Some(d),
        Err(e) => {
            diags.push(invalid(&value.span, e).help("durations look like `250ms`, `2s`, `1m30s`"));
            None
        }
    }
}

/// Lowers a spec file's value tree.
pub fn lower_spec(source: &Arc<SourceFile>, root: &Value) -> Result<Spec, Diagnostics> {
    let mut diags = Diagnostics::default();
    let Some(mut table) = Table::new(root, "a spec", &mut diags) else {
        diags.attach(source);
        return Err(diags);
    };
    let stem = source.path.file_stem().map_or_else(
        || String::from("spec"),
        |s| s.to_string_lossy().into_owned(),
    );
    let (id, id_span) = match table.get("id") {
        Some(v) => (
            string(v, "`id`", &mut diags).unwrap_or_else(|| stem.clone()),
            v.span.clone(),
        ),
        None => (stem, 0..0),
    };
    let name = table
        .get("name")
        .and_then(|v| string(v, "`name`", &mut diags));
    let objective = table
        .get("objective")
        .or_else(|| table.get("description"))
        .and_then(|v| string(v, "`objective`", &mut diags));
    let priority = table.get("priority").map_or(Priority::default(), |v| {
        match string(v, "`priority`", &mut diags).map(|s| (Priority::parse(&s), s)) {
            Some((Some(p), _)) => p,
            Some((None, s)) => {
                diags.push(
                    invalid(&v.span, format!("unknown priority `{s}`"))
                        .help("use `high`, `medium` or `low`"),
                );
                Priority::default()
            }
            None => Priority::default(),
        }
    });
    let tags = table.get("tags").map_or_else(Vec::new, |v| {
        string_list(v, "`tags`", &mut diags)
            .into_iter()
            .map(|k| k.name)
            .collect()
    });
    let phase = table
        .get("phase")
        .and_then(|v| string(v, "`phase`", &mut diags));
    let vars = table
        .get("vars")
        .map_or_else(Vec::new, |v| lower_vars(v, &mut diags));
    let defaults = table
        .get("defaults")
        .map_or_else(Defaults::default, |v| lower_defaults(v, &mut diags));
    let steps = if let Some((_, v)) = table.take("steps") {
        lower_steps(v, &mut diags)
    } else {
        diags.push(
            Diagnostic::new(DiagnosticKind::MissingKey, 0..0, "the spec has no `steps`")
                .label("the spec starts here")
                .help("add steps: `[[steps]]` in TOML, `steps:` with a list in YAML"),
        );
        Vec::new()
    };
    table.finish(SPEC_KEYS, "at the top of a spec", &mut diags);
    diags.attach(source);
    if diags.is_empty() {
        Ok(Spec {
            source: Arc::clone(source),
            id,
            id_span,
            name,
            objective,
            priority,
            tags,
            phase,
            vars,
            defaults,
            steps,
        })
    } else {
        Err(diags)
    }
}

/// Lowers a directory's `planrun.toml`.
pub fn lower_dir_config(source: &Arc<SourceFile>, root: &Value) -> Result<DirConfig, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut config = DirConfig {
        source: Some(Arc::clone(source)),
        ..DirConfig::default()
    };
    if let Some(mut table) = Table::new(root, "`planrun.toml`", &mut diags) {
        if let Some(v) = table.get("vars") {
            config.vars = lower_vars(v, &mut diags);
        }
        if let Some(v) = table.get("defaults") {
            config.defaults = lower_defaults(v, &mut diags);
        }
        table.finish(DIR_KEYS, "in `planrun.toml`", &mut diags);
    }
    diags.attach(source);
    if diags.is_empty() {
        Ok(config)
    } else {
        Err(diags)
    }
}

const VAR_DEF_KEYS: &[&str] = &["value", "env", "secret", "description"];

fn lower_vars(value: &Value, diags: &mut Diagnostics) -> Vec<Var> {
    let Some(mut table) = Table::new(value, "`vars`", diags) else {
        return Vec::new();
    };
    let mut vars = Vec::new();
    for (key, v) in table.entries {
        check_name(key, "a variable", diags);
        // a table made only of definition keys is a definition; any other
        // value (a table included) is the variable's literal value
        let is_def = v.as_map().is_some_and(|m| {
            !m.is_empty()
                && m.iter()
                    .all(|(k, _)| VAR_DEF_KEYS.contains(&k.name.as_str()))
        });
        if is_def {
            let mut def = Table::new(v, "a variable", diags).expect("invariant: checked map");
            let env = def.get("env").and_then(|e| string(e, "`env`", diags));
            let secret = def
                .get("secret")
                .and_then(|s| boolean(s, "`secret`", diags))
                .unwrap_or(false);
            let _ = def.get("description");
            let value = def.get("value").cloned();
            if value.is_none() && env.is_none() {
                diags.push(
                    invalid(
                        &v.span,
                        format!("variable `{}` has no `value` and no `env`", key.name),
                    )
                    .help("give it a `value`, an `env` variable to read, or both"),
                );
            }
            vars.push(Var {
                name: key.clone(),
                value,
                env,
                secret,
            });
        } else {
            vars.push(Var {
                name: key.clone(),
                value: Some(v.clone()),
                env: None,
                secret: false,
            });
        }
    }
    table.used.fill(true);
    vars
}

fn check_name(key: &Key, what: &str, diags: &mut Diagnostics) {
    let ok = key
        .name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        diags.push(
            invalid(
                &key.span,
                format!("`{}` is not a valid name for {what}", key.name),
            )
            .help("names start with a letter and hold letters, digits, `_` or `-`"),
        );
    }
}

fn lower_defaults(value: &Value, diags: &mut Diagnostics) -> Defaults {
    let Some(mut table) = Table::new(value, "`defaults`", diags) else {
        return Defaults::default();
    };
    let timeout = table.get("timeout").and_then(|v| duration(v, diags));
    let spec_timeout = table.get("spec_timeout").and_then(|v| duration(v, diags));
    let max_body = table.get("max_body").and_then(|v| match &v.kind {
        ValueKind::Int(i) => u64::try_from(*i).ok(),
        ValueKind::Str(s) => match parse_bytes(s) {
            Ok(n) => Some(n),
            Err(e) => {
                diags.push(invalid(&v.span, e));
                None
            }
        },
        _ => {
            diags.push(wrong_type(v, "`max_body` must be a size such as `16MiB`"));
            None
        }
    });
    table.finish(DEFAULTS_KEYS, "in `defaults`", diags);
    Defaults {
        timeout,
        spec_timeout,
        max_body,
    }
}

fn lower_steps(value: &Value, diags: &mut Diagnostics) -> Vec<Step> {
    let Some(items) = value.as_seq() else {
        diags.push(wrong_type(value, "`steps` must be a list"));
        return Vec::new();
    };
    if items.is_empty() {
        diags.push(invalid(&value.span, "`steps` is empty").help("a spec needs at least one step"));
    }
    items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| lower_step(i, v, diags))
        .collect()
}

fn lower_step(index: usize, value: &Value, diags: &mut Diagnostics) -> Option<Step> {
    let mut table = Table::new(value, "a step", diags)?;
    let before = diags.len();
    let (id, id_span) = match table.get("id") {
        Some(v) => {
            let id = string(v, "a step `id`", diags).unwrap_or_default();
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
            format!("step-{}", index + 1),
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
    let captures = table
        .get("capture")
        .map_or_else(Vec::new, |v| lower_captures(v, diags));

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
            return None;
        }
    };
    let config = kind.lower_config(config, diags);
    if diags.len() > before {
        return None;
    }
    Some(Step {
        index,
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
        retry,
        timeout,
        when,
        always,
        span: value.span.clone(),
    })
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
pub fn parse_json_path(text: &str) -> Result<JsonPath, serde_json_path::ParseError> {
    /// Distinct paths kept; past it the cache starts over.
    const KEEP: usize = 1024;
    thread_local! {
        static PARSED: RefCell<HashMap<String, JsonPath>> = RefCell::new(HashMap::new());
    }
    if let Some(path) = PARSED.with_borrow(|cache| cache.get(text).cloned()) {
        return Ok(path);
    }
    let path = JsonPath::parse(text)?;
    PARSED.with_borrow_mut(|cache| {
        if cache.len() >= KEEP {
            cache.clear();
        }
        cache.insert(text.to_string(), path.clone());
    });
    Ok(path)
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

fn lower_expectations(
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
                                format!("a `{}` step's result has no `{root}`", kind.key()),
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
                match parse_target(name, &key.span) {
                    Ok(target) => {
                        if let Some(matcher) = lower_matcher(wrapped.as_ref().unwrap_or(v), diags) {
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

/// A `json` table is a table of paths unless every key is an operator.
fn is_path_table(v: &Value) -> bool {
    v.as_map()
        .is_some_and(|m| !m.is_empty() && !m.iter().all(|(k, _)| Op::from_key(&k.name).is_some()))
}

/// Lowers a matcher: a literal, a table of operators, or a nested table/list.
pub fn lower_matcher(value: &Value, diags: &mut Diagnostics) -> Option<Matcher> {
    match &value.kind {
        ValueKind::Map(entries) if entries.is_empty() => Some(Matcher::Object(Vec::new())),
        ValueKind::Map(entries) => {
            let ops = entries.iter().filter(|(k, v)| is_op_key(k, v)).count();
            if ops == entries.len() {
                let mut out = Vec::new();
                for (k, v) in entries {
                    let op = Op::from_key(&k.name).expect("invariant: counted as operator");
                    if let Some(m) = lower_op(op, k, v, diags) {
                        out.push(m);
                    }
                }
                Some(Matcher::Ops(out, value.span.clone()))
            } else if ops == 0 {
                let mut out = Vec::new();
                for (k, v) in entries {
                    if let Some(m) = lower_matcher(v, diags) {
                        out.push((k.clone(), m));
                    }
                }
                Some(Matcher::Object(out))
            } else {
                let (op_key, _) = entries
                    .iter()
                    .find(|(k, v)| is_op_key(k, v))
                    .expect("invariant: some operator");
                let (field, _) = entries
                    .iter()
                    .find(|(k, v)| !is_op_key(k, v))
                    .expect("invariant: some field");
                let help = did_you_mean(&field.name, Op::ALL.iter().map(|(k, _)| *k))
                    .unwrap_or_else(|| {
                        format!(
                            "to match a field named `{}`, write it as a JSONPath: `\"$.{}\"`; to compare with a table that has such keys, write `{{ eq = {{ … }} }}`",
                            op_key.name, op_key.name
                        )
                    });
                diags.push(
                    invalid(
                        &field.span,
                        format!(
                            "`{}` is not an operator, but `{}` is",
                            field.name, op_key.name
                        ),
                    )
                    .label("not an operator")
                    .related(op_key.span.clone(), "operator")
                    .help(help),
                );
                None
            }
        }
        ValueKind::Seq(items) => {
            let inner: Vec<_> = items
                .iter()
                .filter_map(|i| lower_matcher(i, diags))
                .collect();
            Some(Matcher::Array(inner, value.span.clone()))
        }
        _ => {
            check_templates(value, diags);
            Some(Matcher::Literal(value.clone()))
        }
    }
}

/// The JSON types `type` accepts.
const JSON_TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "array", "object", "null",
];

/// Whether a key of a matcher table is an operator. `type` is one only when
/// its value names a JSON type: `{ type = "chat_message" }` matches a field
/// called `type`, as chat and event messages have.
fn is_op_key(key: &Key, value: &Value) -> bool {
    match Op::from_key(&key.name) {
        Some(Op::Type) => match &value.kind {
            ValueKind::Str(s) => {
                // names of types in other languages, and near misses, are
                // kept as the operator so that they get a helpful error
                const OTHER_NAMES: &[&str] = &[
                    "list", "dict", "map", "table", "int", "float", "bool", "str",
                ];
                JSON_TYPES.contains(&s.as_str())
                    || is_template(s)
                    || did_you_mean(s, JSON_TYPES.iter().chain(OTHER_NAMES).copied()).is_some()
            }
            _ => false,
        },
        Some(_) => true,
        None => false,
    }
}

fn check_templates(value: &Value, diags: &mut Diagnostics) {
    value.visit_strings(&mut |s, span| {
        if is_template(s)
            && let Err(d) = Template::parse(s, span.clone())
        {
            diags.push(d);
        }
    });
}

fn lower_op(op: Op, key: &Key, arg: &Value, diags: &mut Diagnostics) -> Option<OpMatcher> {
    let mut inner = None;
    match op {
        Op::Len | Op::All | Op::Any | Op::Not => {
            inner = Some(Box::new(lower_matcher(arg, diags)?));
        }
        Op::InOrder | Op::Includes => {
            if arg.as_seq().is_none_or(<[Value]>::is_empty) {
                diags.push(wrong_type(
                    arg,
                    &format!(
                        "`{}` must be a list of matchers, one per item looked for",
                        op.key()
                    ),
                ));
                return None;
            }
            inner = Some(Box::new(lower_matcher(arg, diags)?));
        }
        Op::FirstWithin | Op::MaxGap => {
            let s = string(arg, &format!("`{}`", op.key()), diags)?;
            if !is_template(&s)
                && let Err(e) = parse_duration(&s)
            {
                diags.push(invalid(&arg.span, e).help(format!(
                    "write a duration with a unit, e.g. `{} = \"1s\"`",
                    op.key()
                )));
                return None;
            }
        }
        Op::Incremental => {
            boolean(arg, "`incremental`", diags)?;
        }
        Op::Matches => {
            if let Some(s) = string(arg, "`matches`", diags) {
                if !is_template(&s)
                    && let Err(e) = regex::Regex::new(&s)
                {
                    diags.push(invalid(
                        &arg.span,
                        format!("invalid regular expression: {e}"),
                    ));
                    return None;
                }
            } else {
                return None;
            }
        }
        Op::StartsWith | Op::EndsWith => {
            string(arg, &format!("`{}`", op.key()), diags)?;
        }
        Op::Exists => {
            boolean(arg, "`exists`", diags)?;
        }
        Op::Type => {
            let s = string(arg, "`type`", diags)?;
            if !JSON_TYPES.contains(&s.as_str()) && !is_template(&s) {
                diags.push(invalid(&arg.span, format!("unknown type `{s}`")).help(
                    did_you_mean(&s, JSON_TYPES.iter().copied()).unwrap_or_else(|| {
                        String::from("use string, number, integer, boolean, array, object or null")
                    }),
                ));
                return None;
            }
        }
        Op::OneOf => {
            if arg.as_seq().is_none() {
                diags.push(wrong_type(arg, "`one_of` must be a list"));
                return None;
            }
        }
        Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Contains => {}
    }
    check_templates(arg, diags);
    Some(OpMatcher {
        op,
        arg: arg.clone(),
        inner,
        span: key.span.start..arg.span.end.max(key.span.end),
    })
}

const CAPTURE_KEYS: &[&str] = &["from", "regex", "secret"];

fn lower_captures(value: &Value, diags: &mut Diagnostics) -> Vec<Capture> {
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

    fn expectations(text: &str, format: crate::source::Format) -> Vec<Expectation> {
        let source = Arc::new(SourceFile::new("t", text, format));
        let root = crate::parse::parse_source(&source).expect("parses");
        let spec = lower_spec(&source, &root).expect("valid");
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

    fn retry(text: &str) -> Result<Retry, Vec<String>> {
        let text = format!("[[steps]]\nwait = \"1s\"\nretry = {text}\n");
        let source = Arc::new(SourceFile::new("t", text, crate::source::Format::Toml));
        let root = crate::parse::parse_source(&source).expect("parses");
        lower_spec(&source, &root)
            .map(|spec| spec.steps[0].retry.clone().expect("a retry"))
            .map_err(|d| d.iter().map(|d| d.message.clone()).collect())
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
}
