//! Step kinds: what the spec language knows of each one.
//!
//! A kind is one module here: its key, its configuration type (serde +
//! JSON Schema), the rules its types cannot say, the top-level fields of its
//! result document, its short form (`wait = "2s"`) and the matchers written
//! inside its configuration, and the result fields a failure shows as its
//! evidence. The [`kinds!`] table below lists every kind once;
//! the [`StepKind`] enum, [`StepKind::ALL`], the dispatch to each kind and the
//! schema come from it. Executors live in `planrun-steps`; this module never
//! talks to anything.
//!
//! Adding a kind: see the recipe in `crates/planrun-steps/README.md`.

use schemars::{JsonSchema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::de::{from_value_lenient, is_template};
use crate::error::{Diagnostic, DiagnosticKind, Diagnostics};
use crate::model::Matcher;
use crate::template::Template;
use crate::value::{Span, Value, ValueKind};

mod hint;

/// What the spec crate knows of one step kind.
pub trait Kind {
    /// The key that selects the kind in a step (`http = { … }`).
    const KEY: &'static str;
    /// One line on what the kind does, for docs, the schema and messages.
    const SUMMARY: &'static str;
    /// The top-level fields of the kind's result document. A test in
    /// `planrun-steps` runs every executor and checks that each key it
    /// returns is listed here.
    const RESULT_FIELDS: &'static [&'static str];
    /// The result fields a failed step shows as its evidence, in the order
    /// shown, each with the end a reader looks at first (the last lines of a
    /// process's output, the start of a response body). Each is one of
    /// [`Kind::RESULT_FIELDS`].
    const EVIDENCE: &'static [EvidenceField];
    /// The lists of documents in the result (an `sse` step's `events`): the
    /// field, what one item is called in messages, and the fields of an
    /// item, so that a matcher's near miss of one is an error.
    const STREAMS: &'static [(&'static str, &'static str, &'static [&'static str])] = &[];
    /// What the kind does beyond talking over the network (`exec`: "starts
    /// processes on this machine"), which makes it privileged: a spec run
    /// with `--untrusted` may use it only when it is allowed by its key
    /// (`--allow exec`). `None` for a kind that only talks over the network.
    const PRIVILEGE: Option<&'static str> = None;

    /// Whether a step with this configuration does what [`Kind::PRIVILEGE`]
    /// says (an `sql` step does only with an `sqlite:` URL, or a URL from a
    /// template); by default, every step of a privileged kind.
    fn privileged(config: &Value) -> bool {
        let _ = config;
        Self::PRIVILEGE.is_some()
    }
    /// The keys of the configuration whose value is a path on this machine
    /// that the step reads or works in (`ca_cert`, `multipart.*.file`: a
    /// `*` stands for every key of a table), relative to the spec file.
    /// With `--untrusted` each must lie in the spec tree.
    const PATHS: &'static [&'static str] = &[];
    /// The key that turns TLS certificate verification off (`insecure`),
    /// when the kind has one: a step that sets it is reported, and refused
    /// with `--untrusted` unless allowed.
    const INSECURE: Option<&'static str> = None;
    /// The configuration, read from the spanned tree.
    type Config: DeserializeOwned + JsonSchema;

    /// The table a short form stands for (`wait = "2s"` is
    /// `wait = { duration = "2s" }`), or `None` when `value` is no short form.
    /// Problems of the short form go to `diags`.
    fn expand(value: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let _ = (value, diags);
        None
    }

    /// The JSON Schema of the short form, when the kind has one.
    fn short_form_schema() -> Option<Json> {
        None
    }

    /// The rules the types cannot say (exactly one method, …): every
    /// problem goes to `problems`, not only the first, so that a spec's
    /// author sees them all at once. A rule that only makes sense once
    /// another holds may return early.
    fn check(config: &Self::Config, problems: &mut Problems) {
        let _ = (config, problems);
    }

    /// The values of a configuration that are secret whatever marks the
    /// spec gives them (a `basic_auth` password), each with where it was
    /// written. Read from the rendered configuration, they are hidden in
    /// every output; read from the written one, a literal among them is
    /// hidden in the spec snippets reports show.
    fn secrets(config: &Value, out: &mut Vec<(String, Span)>) {
        let _ = (config, out);
    }

    /// The matchers written inside the configuration (an `sse` step's
    /// `until`), lowered once at plan time; the runner renders them and hands
    /// them to the executor with the configuration.
    fn matchers(config: &Value, out: &mut Vec<ConfigMatcher>, diags: &mut Diagnostics) {
        let _ = (config, out, diags);
    }
}

/// Declares the kinds: each line is a module (whose public items are
/// re-exported here), a variant of the enum, and the dispatch to its
/// descriptor.
macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident => $module:ident :: $kind:ident, )*) => {
        $(
            mod $module;
            pub use $module::*;
        )*


        /// The built-in step kinds. A kind is a key of the step (`http = {...}`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum StepKind {
            $( $(#[$doc])* $variant, )*
        }

        impl StepKind {
            /// Every kind, in documentation order.
            pub const ALL: &'static [StepKind] = &[$(StepKind::$variant),*];

            /// The key that selects the kind.
            pub fn key(self) -> &'static str {
                match self { $(StepKind::$variant => <$module::$kind as Kind>::KEY,)* }
            }

            /// What the kind does, in one line.
            pub fn summary(self) -> &'static str {
                match self { $(StepKind::$variant => <$module::$kind as Kind>::SUMMARY,)* }
            }

            /// Top-level fields of the kind's result document.
            pub fn result_fields(self) -> &'static [&'static str] {
                match self { $(StepKind::$variant => <$module::$kind as Kind>::RESULT_FIELDS,)* }
            }

            /// What makes the kind privileged, when it is (see [`Kind::PRIVILEGE`]).
            pub fn privilege(self) -> Option<&'static str> {
                match self { $(StepKind::$variant => <$module::$kind as Kind>::PRIVILEGE,)* }
            }

            /// What makes a step with `config` privileged, when it is (see
            /// [`Kind::privileged`]).
            pub fn privilege_of(self, config: &Value) -> Option<&'static str> {
                match self {
                    $(StepKind::$variant => {
                        <$module::$kind as Kind>::PRIVILEGE
                            .filter(|_| <$module::$kind as Kind>::privileged(config))
                    })*
                }
            }

            /// The keys of the configuration that hold a path (see [`Kind::PATHS`]).
            pub fn paths(self) -> &'static [&'static str] {
                match self { $(StepKind::$variant => <$module::$kind as Kind>::PATHS,)* }
            }

            /// The key that turns TLS verification off, when the kind has one.
            pub fn insecure_key(self) -> Option<&'static str> {
                match self { $(StepKind::$variant => <$module::$kind as Kind>::INSECURE,)* }
            }

            /// The result fields a failed step shows as its evidence.
            pub fn evidence(self) -> &'static [EvidenceField] {
                match self { $(StepKind::$variant => <$module::$kind as Kind>::EVIDENCE,)* }
            }

            /// What an item of the result's list `field` is called, and its
            /// fields, when the kind knows them.
            pub fn stream(self, field: &str) -> Option<(&'static str, &'static [&'static str])> {
                let streams = match self { $(StepKind::$variant => <$module::$kind as Kind>::STREAMS,)* };
                streams.iter().find(|(f, _, _)| *f == field).map(|(_, name, fields)| (*name, *fields))
            }

            /// Lowers a step's configuration: the short form expanded, the
            /// typed configuration and the kind's rules checked, the templates
            /// parsed and the matchers lowered.
            pub fn lower_config(self, value: &Value, diags: &mut Diagnostics) -> StepConfig {
                match self { $(StepKind::$variant => lower::<$module::$kind>(value, diags),)* }
            }

            /// The values of a configuration that are always secret (a
            /// `basic_auth` password), each with where it was written.
            pub fn secrets(self, config: &Value) -> Vec<(String, Span)> {
                let mut out = Vec::new();
                match self { $(StepKind::$variant => <$module::$kind as Kind>::secrets(config, &mut out),)* }
                out
            }

            /// The JSON Schema of the kind's configuration.
            pub(crate) fn schema(self, generator: &mut SchemaGenerator) -> Json {
                match self { $(StepKind::$variant => schema::<$module::$kind>(generator),)* }
            }
        }
    };
}

kinds! {
    /// An HTTP request.
    Http => http::Http,
    /// A process (foreground or background).
    Exec => exec::Exec,
    /// A pause or a readiness wait.
    Wait => wait::Wait,
    /// A Server-Sent Events stream.
    Sse => sse::Sse,
    /// A WebSocket conversation.
    Ws => ws::Ws,
    /// Statements against a database.
    Sql => sql::Sql,
    /// Images, containers and commands in them, through the Docker engine.
    Docker => docker::Docker,
}

impl StepKind {
    /// The kind selected by a key.
    pub fn from_key(key: &str) -> Option<StepKind> {
        StepKind::ALL.iter().copied().find(|k| k.key() == key)
    }

    /// The keys of every kind, in documentation order.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        StepKind::ALL.iter().map(|k| k.key())
    }

    /// The values of a configuration that hold a path, each with the key
    /// path it stands at (`multipart.avatar.file`).
    pub fn path_values(self, config: &Value) -> Vec<(String, &Value)> {
        let mut out = Vec::new();
        for pattern in self.paths() {
            let parts: Vec<&str> = pattern.split('.').collect();
            collect_at(config, &parts, String::new(), &mut out);
        }
        out
    }

    /// Whether a step of this kind with `config` turns TLS certificate
    /// verification off: its [`Kind::INSECURE`] key is `true`, or a
    /// template that may render `true`.
    pub fn insecure(self, config: &Value) -> bool {
        self.insecure_value(config).is_some()
    }

    /// The value that turns TLS verification off, when there is one (see
    /// [`StepKind::insecure`]).
    pub fn insecure_value(self, config: &Value) -> Option<&Value> {
        let value = config.get(self.insecure_key()?)?;
        match &value.kind {
            ValueKind::Bool(true) => Some(value),
            ValueKind::Str(s) if is_template(s) => Some(value),
            _ => None,
        }
    }
}

/// The value at a key path (`build.tag`: the `tag` of the `build` table).
fn at_key<'v>(config: &'v Value, key: &str) -> Option<&'v Value> {
    key.split('.')
        .try_fold(config, |value, part| value.get(part))
}

/// The values under `parts` (keys, `*` for every key) in `value`.
fn collect_at<'v>(
    value: &'v Value,
    parts: &[&str],
    at: String,
    out: &mut Vec<(String, &'v Value)>,
) {
    let Some((first, rest)) = parts.split_first() else {
        out.push((at, value));
        return;
    };
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    if *first == "*" {
        for (key, child) in value.as_map().unwrap_or_default() {
            collect_at(child, rest, join(&key.name), out);
        }
    } else if let Some(child) = value.get(first) {
        collect_at(child, rest, join(first), out);
    }
}

impl serde::Serialize for StepKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

impl<'de> serde::Deserialize<'de> for StepKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        StepKind::from_key(&key)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown step kind `{key}`")))
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// A result field that a failed step shows as its evidence, and which end of
/// it is shown when it is too long to show whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceField {
    /// The top-level field of the result document (`stderr`, `body`).
    pub field: &'static str,
    /// The end shown.
    pub end: EvidenceEnd,
}

/// The end of a long value that evidence shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceEnd {
    /// Its start: what a response body says comes first.
    First,
    /// Its end: a process's last words, the last messages received.
    Last,
}

impl EvidenceField {
    /// The start of `field`.
    pub const fn first(field: &'static str) -> Self {
        Self {
            field,
            end: EvidenceEnd::First,
        }
    }

    /// The end of `field`.
    pub const fn last(field: &'static str) -> Self {
        Self {
            field,
            end: EvidenceEnd::Last,
        }
    }
}

/// A step's configuration after planning.
#[derive(Debug, Clone)]
pub struct StepConfig {
    /// The configuration, short form expanded, templates unrendered.
    pub value: Value,
    /// The templates inside it, parsed.
    pub templates: Vec<Template>,
    /// The matchers written inside it, lowered.
    pub matchers: Vec<ConfigMatcher>,
}

/// A matcher written inside a step's configuration, lowered at plan time.
#[derive(Debug, Clone)]
pub struct ConfigMatcher {
    /// Where it stands, as keys and list indexes joined by dots
    /// (`until`, `conversation.2.expect`).
    pub path: String,
    /// The matcher.
    pub matcher: Matcher,
}

/// The matcher at `path` among a step's matchers.
pub fn matcher_at<'m>(matchers: &'m [ConfigMatcher], path: &str) -> Option<&'m Matcher> {
    matchers.iter().find(|m| m.path == path).map(|m| &m.matcher)
}

fn lower<K: Kind>(raw: &Value, diags: &mut Diagnostics) -> StepConfig {
    let before = diags.len();
    let value = K::expand(raw, diags).unwrap_or_else(|| raw.clone());
    if diags.len() == before {
        read_all::<K>(&value, diags);
    }
    let mut matchers = Vec::new();
    K::matchers(&value, &mut matchers, diags);
    // every template in the configuration must parse; the parsed forms are
    // kept so planning checks their references without parsing them again
    let mut templates = Vec::new();
    value.visit_strings(&mut |s, span| {
        if is_template(s) {
            match Template::parse(s, span.clone()) {
                Ok(t) => templates.push(t),
                Err(d) => diags.push(d),
            }
        }
    });
    StepConfig {
        value,
        templates,
        matchers,
    }
}

/// The most problems one configuration reports.
const MAX_CONFIG_PROBLEMS: usize = 32;

/// Reads a configuration into the kind's typed form and checks the kind's
/// rules, reporting every problem at once: a key that does not read (an
/// unknown key, a wrong type) is reported, left out, and the rest read
/// again. With a key left out, a rule about the whole configuration, or a
/// key found missing that was left out, says nothing more: it would be
/// about the key already reported.
fn read_all<K: Kind>(value: &Value, diags: &mut Diagnostics) {
    let mut reading = std::borrow::Cow::Borrowed(value);
    let mut left_out: Vec<String> = Vec::new();
    for _ in 0..MAX_CONFIG_PROBLEMS {
        match from_value_lenient::<K::Config>(&reading) {
            Ok(config) => {
                // a template read where a number goes stands in as a default
                // value: a rule about that key waits for the rendered value
                let mut problems = Problems::default();
                K::check(&config, &mut problems);
                for problem in problems.0 {
                    if !problem.about_a_template(value)
                        && (left_out.is_empty() || !problem.is_whole())
                    {
                        diags.push(problem.diagnostic(value));
                    }
                }
                return;
            }
            Err(e) => {
                if e.missing_key()
                    .is_some_and(|key| left_out.iter().any(|k| k == key))
                {
                    return;
                }
                let next = e.span.as_ref().and_then(|at| without(&reading, at));
                let mut e = e;
                if e.help.is_none()
                    && e.message.starts_with("expected")
                    && let Some(at) = &e.span
                {
                    e.help = hint::form_of::<K>(&hint::path_to(value, at));
                }
                diags.push(e.into_diagnostic(&value.span));
                let Some((key, next)) = next else {
                    return;
                };
                left_out.push(key);
                reading = std::borrow::Cow::Owned(next);
            }
        }
    }
}

/// `value` without the innermost entry of a mapping whose key or value
/// holds `at`, and that entry's key; `None` when no entry does.
fn without(value: &Value, at: &Span) -> Option<(String, Value)> {
    let holds = |span: &Span| span.start <= at.start && at.end <= span.end;
    let ValueKind::Map(entries) = &value.kind else {
        if let ValueKind::Seq(items) = &value.kind {
            for (i, item) in items.iter().enumerate() {
                if let Some((key, inner)) = without(item, at) {
                    let mut items = items.clone();
                    items[i] = inner;
                    return Some((key, Value::new(ValueKind::Seq(items), value.span.clone())));
                }
            }
        }
        return None;
    };
    for (i, (key, inner)) in entries.iter().enumerate() {
        if holds(&inner.span)
            && let Some((name, smaller)) = without(inner, at)
        {
            let mut entries = entries.clone();
            entries[i].1 = smaller;
            return Some((
                name,
                Value::new(ValueKind::Map(entries), value.span.clone()),
            ));
        }
        if holds(&key.span) || holds(&inner.span) {
            let mut entries = entries.clone();
            entries.remove(i);
            return Some((
                key.name.clone(),
                Value::new(ValueKind::Map(entries), value.span.clone()),
            ));
        }
    }
    None
}

/// Reads a rendered configuration (templates already replaced by values)
/// into the kind's typed form and checks the kind's rules, as executors do.
pub fn read_config<K: Kind>(value: &Value) -> Result<K::Config, Diagnostic> {
    let config =
        crate::de::from_value::<K::Config>(value).map_err(|e| e.into_diagnostic(&value.span))?;
    let mut problems = Problems::default();
    K::check(&config, &mut problems);
    match problems.0.first() {
        Some(problem) => Err(problem.diagnostic(value)),
        None => Ok(config),
    }
}

fn schema<K: Kind>(generator: &mut SchemaGenerator) -> Json {
    let mut table =
        serde_json::to_value(generator.subschema_for::<K::Config>()).unwrap_or(Json::Null);
    if let Json::Object(map) = &mut table {
        map.entry("description")
            .or_insert_with(|| Json::from(K::SUMMARY));
    }
    match K::short_form_schema() {
        Some(short) => serde_json::json!({ "description": K::SUMMARY, "anyOf": [short, table] }),
        None => table,
    }
}

/// A schema's `oneOf` that holds when exactly one of `keys` is set.
fn one_of_keys(keys: &[&str]) -> Json {
    keys.iter()
        .map(|key| serde_json::json!({ "required": [key] }))
        .collect()
}

/// What a kind's own check finds wrong, and where in the configuration it
/// belongs, so that a diagnostic can point there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// What is wrong (lowercase, no trailing period).
    pub message: String,
    /// Where.
    pub at: ConfigPlace,
}

/// Every problem a kind's [`Kind::check`] finds.
#[derive(Debug, Default)]
pub struct Problems(Vec<ConfigProblem>);

impl Problems {
    /// Notes a problem.
    pub fn push(&mut self, problem: ConfigProblem) {
        self.0.push(problem);
    }

    /// Notes the problem of a rule that finds at most one.
    pub fn note(&mut self, rule: Result<(), ConfigProblem>) {
        self.0.extend(rule.err());
    }

    /// The first problem, if any: for a caller that reports one.
    pub fn first(self) -> Result<(), ConfigProblem> {
        self.0.into_iter().next().map_or(Ok(()), Err)
    }

    /// Every problem, in the order found.
    pub fn all(&self) -> &[ConfigProblem] {
        &self.0
    }
}

/// The part of a step's configuration a [`ConfigProblem`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigPlace {
    /// The configuration as a whole.
    Whole,
    /// The value of one key.
    Key(&'static str),
    /// One item of a `ws` step's `conversation`.
    Item(usize),
}

impl ConfigProblem {
    /// A problem of the configuration as a whole.
    pub fn whole(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            at: ConfigPlace::Whole,
        }
    }

    /// A problem of one key's value; a dotted path names a key of a table
    /// (`build.tag`).
    pub fn key(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            at: ConfigPlace::Key(key),
        }
    }

    /// A problem of a conversation item (the message says which).
    pub fn item(index: usize, message: impl std::fmt::Display) -> Self {
        Self {
            message: format!("conversation item {index}: {message}"),
            at: ConfigPlace::Item(index),
        }
    }

    /// Where the problem is in `config`, and the label for it: the value of
    /// the key it names, the first key of the conversation item it names (a
    /// YAML block mapping's own span is its first character only), else the
    /// whole configuration.
    pub fn locate(&self, config: &Value) -> (Span, &'static str) {
        match self.at {
            ConfigPlace::Key(key) => {
                if let Some(value) = at_key(config, key) {
                    return (value.span.clone(), "this value");
                }
            }
            ConfigPlace::Item(index) => {
                if let Some(item) = config
                    .get("conversation")
                    .and_then(Value::as_seq)
                    .and_then(|items| items.get(index))
                {
                    let key_span = item
                        .as_map()
                        .and_then(|entries| entries.first())
                        .map(|(k, _)| k.span.clone());
                    return (key_span.unwrap_or_else(|| item.span.clone()), "this action");
                }
            }
            ConfigPlace::Whole => {}
        }
        (config.span.clone(), "in this step")
    }

    /// Whether the problem is about a key whose value is a template, which
    /// planning cannot judge: the executor checks the rendered value.
    /// Whether the problem is about the whole configuration, not one key.
    fn is_whole(&self) -> bool {
        matches!(self.at, ConfigPlace::Whole)
    }

    fn about_a_template(&self, config: &Value) -> bool {
        match self.at {
            ConfigPlace::Key(key) => at_key(config, key)
                .and_then(Value::as_str)
                .is_some_and(is_template),
            ConfigPlace::Whole | ConfigPlace::Item(_) => false,
        }
    }

    /// The problem as a diagnostic located in `config`.
    pub fn diagnostic(&self, config: &Value) -> Diagnostic {
        let (span, label) = self.locate(config);
        Diagnostic::new(DiagnosticKind::InvalidValue, span, self.message.clone()).label(label)
    }
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a value ends, nested values included (a YAML mapping's own span
/// may stop at its first character).
pub fn end_of(value: &Value) -> usize {
    match &value.kind {
        ValueKind::Seq(items) => items.iter().map(end_of).fold(value.span.end, usize::max),
        ValueKind::Map(entries) => entries
            .iter()
            .map(|(k, v)| end_of(v).max(k.span.end))
            .fold(value.span.end, usize::max),
        _ => value.span.end,
    }
}

/// The method and URL of a request step, from its shorthand keys
/// (`get = URL`, …) or `method` + `url`. `kind` and `example` make the
/// message for neither.
fn method_and_url<'a>(
    kind: &str,
    example: &str,
    shorthand: &[(&str, &'a Option<String>)],
    method: Option<&str>,
    url: Option<&'a str>,
) -> Result<(String, &'a str), ConfigProblem> {
    let set: Vec<(&str, &str)> = shorthand
        .iter()
        .filter_map(|(m, u)| u.as_deref().map(|u| (*m, u)))
        .collect();
    match (set.as_slice(), method, url) {
        ([(m, u)], None, None) => Ok(((*m).to_string(), u)),
        ([], Some(m), Some(u)) => Ok((m.to_ascii_uppercase(), u)),
        ([], None, Some(u)) => Ok((String::from("GET"), u)),
        ([], Some(_), None) => Err(ConfigProblem::key("method", "`method` needs a `url`")),
        ([], None, None) => Err(ConfigProblem::whole(format!(
            "an {kind} step needs a method and a URL, e.g. {example}"
        ))),
        _ => {
            let keys: Vec<String> = shorthand
                .iter()
                .map(|(m, _)| m.to_ascii_lowercase())
                .collect();
            Err(ConfigProblem::whole(format!(
                "set exactly one of {}, or method + url",
                keys.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {

    /// Every problem of a configuration at once: an unknown key and a
    /// wrong type are each reported, and the kind's rules are checked on
    /// the keys that read; a rule about the whole configuration or a
    /// required key left out says nothing more.
    #[test]
    fn every_problem_of_a_configuration_shows_at_once() {
        let text =
            "sql = { url = \"redis://h\", query = \"SELECT 1\", max_rows = \"ten\", param = [1] }";
        let doc = crate::parse::parse_toml(text).expect("toml");
        let mut diags = Diagnostics::default();
        StepKind::Sql.lower_config(doc.get("sql").expect("sql"), &mut diags);
        let said: Vec<(&str, &str)> = diags
            .iter()
            .map(|d| (d.message.as_str(), &text[d.span.clone()]))
            .collect();
        assert_eq!(said.len(), 3, "{said:#?}");
        assert!(
            said[0].0.contains("found the string `ten`") && said[0].1 == "\"ten\"",
            "{said:?}"
        );
        assert!(
            said[1].0.contains("unknown key `param`") && said[1].1 == "param",
            "{said:?}"
        );
        assert!(
            said[2].0.contains("is not a database URL") && said[2].1 == "\"redis://h\"",
            "{said:?}"
        );

        // a required key of the wrong type is not also said to be missing
        let text = "sql = { url = [1], query = { a = 1 } }";
        let doc = crate::parse::parse_toml(text).expect("toml");
        let mut diags = Diagnostics::default();
        StepKind::Sql.lower_config(doc.get("sql").expect("sql"), &mut diags);
        let said: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(said.len(), 2, "{said:#?}");
        assert!(said.iter().all(|m| m.starts_with("expected")), "{said:?}");
    }
    use super::*;

    /// Every rule a kind's check breaks is reported, not only the first,
    /// each at its own value.
    #[test]
    fn every_broken_rule_of_a_kind_shows_at_once() {
        let said = |kind: StepKind, text: &str| {
            let doc = crate::parse::parse_toml(text).expect("toml");
            let mut diags = Diagnostics::default();
            kind.lower_config(doc.get(kind.key()).expect("config"), &mut diags);
            diags
                .iter()
                .map(|d| (d.message.clone(), text[d.span.clone()].to_string()))
                .collect::<Vec<_>>()
        };
        let text = "docker = { run = { image = \"x\", cmd = [], ready = { tcp = \"8000\", log = \"up\" }, wait = \"exited\" }, exec = { container = \"c\", cmd = [] }, stop = { container = \"c\" } }";
        let found = said(StepKind::Docker, text);
        let expected = [
            (
                "a docker step does one thing: `run` and `exec` are both set",
                "{ container = \"c\", cmd = [] }",
            ),
            (
                "a docker step does one thing: `run` and `stop` are both set",
                "{ container = \"c\" }",
            ),
            ("`cmd` is empty", "[]"),
            (
                "set exactly one of `tcp`, `http` or `log`",
                "{ tcp = \"8000\", log = \"up\" }",
            ),
            (
                "`ready` goes with `wait = \"running\"` or `\"healthy\"`",
                "{ tcp = \"8000\", log = \"up\" }",
            ),
            ("`cmd` is empty", "[]"),
        ];
        let found: Vec<(&str, &str)> = found
            .iter()
            .map(|(m, t)| (m.as_str(), t.as_str()))
            .collect();
        assert_eq!(found, expected);

        let found = said(
            StepKind::Sql,
            "sql = { url = \"redis://h\", query = \"SELECT 1\", max_rows = 0 }",
        );
        let messages: Vec<&str> = found.iter().map(|(m, _)| m.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[0], "`max_rows` must be at least 1");
        assert!(
            messages[1].contains("is not a database URL"),
            "{messages:?}"
        );
    }

    #[test]
    fn a_rule_about_a_templated_value_waits_for_the_rendered_value() {
        let lowered = |text: &str| {
            let doc = crate::parse::parse_toml(text).expect("toml");
            let mut diags = Diagnostics::default();
            StepKind::Sse.lower_config(doc.get("sse").expect("sse"), &mut diags);
            diags.iter().map(|d| d.message.clone()).collect::<Vec<_>>()
        };
        assert!(lowered("sse = { get = \"http://h/\", max_events = \"{{ n }}\" }").is_empty());
        assert_eq!(
            lowered("sse = { get = \"http://h/\", max_events = 0 }"),
            ["`max_events` must be at least 1"]
        );
    }

    #[test]
    fn the_keys_a_kind_names_for_policy_are_keys_of_its_configuration() {
        let mut generator = SchemaGenerator::default();
        for kind in StepKind::ALL {
            let schema = kind.schema(&mut generator);
            let defs = serde_json::to_value(generator.definitions()).expect("defs");
            // a kind's table may be behind a `$ref`, and inside `anyOf` with a short form
            let table = schema
                .get("anyOf")
                .and_then(|a| a.get(1))
                .unwrap_or(&schema);
            let table = match table.get("$ref").and_then(Json::as_str) {
                Some(r) => &defs[r.trim_start_matches("#/$defs/")],
                None => table,
            };
            let properties = table["properties"].as_object().expect("properties");
            let named = kind
                .paths()
                .iter()
                .map(|p| p.split('.').next().unwrap_or(p))
                .chain(kind.insecure_key());
            for key in named {
                assert!(
                    properties.contains_key(key),
                    "{kind}: `{key}` is no key of its configuration"
                );
            }
        }
        let privileged: Vec<_> = StepKind::ALL
            .iter()
            .filter(|k| k.privilege().is_some())
            .collect();
        assert_eq!(
            privileged,
            [&StepKind::Exec, &StepKind::Sql, &StepKind::Docker]
        );
    }

    #[test]
    fn path_values_follow_the_patterns() {
        let doc = crate::parse::parse_toml(
            "http = { post = \"http://h/\", ca_cert = \"ca.pem\", multipart = { a = { file = \"a.bin\" }, b = { text = \"x\" }, c = { file = \"c.bin\" } } }",
        )
        .expect("toml");
        let config = doc.get("http").expect("http");
        let found: Vec<(String, Option<&str>)> = StepKind::Http
            .path_values(config)
            .into_iter()
            .map(|(k, v)| (k, v.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (String::from("ca_cert"), Some("ca.pem")),
                (String::from("multipart.a.file"), Some("a.bin")),
                (String::from("multipart.c.file"), Some("c.bin")),
            ]
        );
    }

    #[test]
    fn keys_are_distinct_and_round_trip() {
        for kind in StepKind::ALL {
            assert_eq!(StepKind::from_key(kind.key()), Some(*kind));
            assert!(
                !kind.result_fields().is_empty(),
                "{kind} declares no result fields"
            );
            assert!(
                kind.result_fields().contains(&"duration"),
                "{kind}: every result has `duration`"
            );
            for evidence in kind.evidence() {
                assert!(
                    kind.result_fields().contains(&evidence.field),
                    "{kind}: evidence `{}` is no result field",
                    evidence.field
                );
            }
        }
        let mut keys: Vec<_> = StepKind::keys().collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), StepKind::ALL.len());
    }
}
