//! The typed model of a spec after lowering: metadata, variables, steps,
//! expectations and captures. Every part keeps the span it came from.
//!
//! Nothing here runs anything; the runner interprets these types.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json_path::JsonPath;

use crate::error::Diagnostics;
use crate::kinds::ConfigMatcher;
use crate::source::SourceFile;
use crate::template::Template;
use crate::value::{Key, Span, Value};

/// How important a test case is (the seed plan's HIGH / MEDIUM / LOW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Blocking for a release.
    High,
    /// The default.
    #[default]
    Medium,
    /// Nice to have.
    Low,
}

impl Priority {
    /// Parses `high`, `medium`, `low` in any case.
    pub fn parse(text: &str) -> Option<Priority> {
        match text.to_ascii_lowercase().as_str() {
            "high" => Some(Priority::High),
            "medium" => Some(Priority::Medium),
            "low" => Some(Priority::Low),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }
}

/// A variable of a spec or of a directory's `planrun.toml`.
#[derive(Debug, Clone)]
pub struct Var {
    /// The name, with its span.
    pub name: Key,
    /// The value (may hold templates, rendered once at the start of a run).
    pub value: Option<Value>,
    /// An environment variable that overrides the value when set, with
    /// where its name was written.
    pub env: Option<Key>,
    /// Whether the value must never be shown.
    pub secret: bool,
}

/// Defaults that a spec or a directory can set.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// Time limit of one step attempt.
    pub timeout: Option<Duration>,
    /// Time limit of the whole spec.
    pub spec_timeout: Option<Duration>,
    /// Cap on a response body read into memory.
    pub max_body: Option<u64>,
    /// What a step without `needs` waits for.
    pub needs: Option<DefaultNeeds>,
}

/// What a step without `needs` waits for (`defaults.needs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultNeeds {
    /// The step before it in the file: the language's default.
    #[default]
    Previous,
    /// Nothing: `defaults.needs = []`, every such step starts at once.
    Nothing,
}

impl Defaults {
    /// The documented default for a step attempt: 30 seconds.
    pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);
    /// The documented default for a whole spec: 10 minutes.
    pub const SPEC_TIMEOUT: Duration = Duration::from_mins(10);
    /// The documented default body cap: 16 MiB.
    pub const MAX_BODY: u64 = 16 * 1024 * 1024;

    /// `self` with gaps filled from `other`.
    #[must_use]
    pub fn or(&self, other: &Defaults) -> Defaults {
        Defaults {
            timeout: self.timeout.or(other.timeout),
            spec_timeout: self.spec_timeout.or(other.spec_timeout),
            max_body: self.max_body.or(other.max_body),
            needs: self.needs.or(other.needs),
        }
    }
}

/// A whole spec file, lowered.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The file.
    pub source: Arc<SourceFile>,
    /// The test case id (`TC-005`); the file stem when absent.
    pub id: String,
    /// Where the id was written (the file start when absent).
    pub id_span: Span,
    /// A human title.
    pub name: Option<String>,
    /// What the case shows.
    pub objective: Option<String>,
    /// How important it is.
    pub priority: Priority,
    /// Free tags, for filtering.
    pub tags: Vec<String>,
    /// The test phase (infrastructure, routing, …).
    pub phase: Option<String>,
    /// Variables, in order.
    pub vars: Vec<Var>,
    /// Defaults set by the spec itself.
    pub defaults: Defaults,
    /// The steps, in file order.
    pub steps: Vec<Step>,
    /// The ids of the steps lowering could not keep (no action, or two): a
    /// `needs` or a template naming one is not judged, since that depends on
    /// the broken step.
    pub dropped_steps: Vec<String>,
    /// What lowering found wrong. [`crate::plan::plan`] reports these with
    /// the problems of the graph; a spec with any never becomes a plan.
    pub problems: Diagnostics,
    /// The files placed into the spec by `include`, in the order their steps
    /// come: their steps and variables stand before the spec's own, and
    /// their spans point into these files.
    pub includes: Vec<Included>,
}

/// A file of steps and variables that a spec includes.
#[derive(Debug, Clone)]
pub struct Included {
    /// The file.
    pub source: Arc<SourceFile>,
    /// Its steps, as indices into [`Spec::steps`].
    pub steps: Range<usize>,
    /// Its variables, as indices into [`Spec::vars`] (a variable the spec
    /// or an earlier file also defines is left out: the spec's own wins,
    /// then the first file's).
    pub vars: Range<usize>,
}

impl Spec {
    /// The file step `index` was written in: an included file, or the spec.
    pub fn step_source(&self, index: usize) -> &Arc<SourceFile> {
        self.includes
            .iter()
            .find(|i| i.steps.contains(&index))
            .map_or(&self.source, |i| &i.source)
    }

    /// Step `index` whole. A spec read a step at a time keeps of each of
    /// its own steps only what orders and names it ([`Step::chunk`]); its
    /// configuration and expectations are read again from the file's text
    /// here, each time, and dropped after use. `Err` holds the
    /// problems of reading it again, which a planned spec never has.
    pub fn step(&self, index: usize) -> Result<std::borrow::Cow<'_, Step>, Diagnostics> {
        let head = &self.steps[index];
        match &head.chunk {
            None => Ok(std::borrow::Cow::Borrowed(head)),
            Some(chunk) => crate::lower::reread_step(self.step_source(index), head, chunk)
                .map(std::borrow::Cow::Owned),
        }
    }

    /// The file variable `index` of [`Spec::vars`] was written in.
    pub fn var_source(&self, index: usize) -> &Arc<SourceFile> {
        self.includes
            .iter()
            .find(|i| i.vars.contains(&index))
            .map_or(&self.source, |i| &i.source)
    }
}

pub use crate::kinds::StepKind;

/// One step of a spec.
#[derive(Debug, Clone)]
pub struct Step {
    /// Index in the spec.
    pub index: usize,
    /// The id (`step-N` when not written).
    pub id: String,
    /// Where the id was written, or the step's first key.
    pub id_span: Span,
    /// A human title.
    pub name: Option<String>,
    /// What the step does.
    pub kind: StepKind,
    /// Where the kind key stands.
    pub kind_span: Span,
    /// The kind's configuration, templates unrendered.
    pub config: Value,
    /// The templates inside `config`, parsed.
    pub config_templates: Vec<Template>,
    /// The matchers written inside `config` (an `sse` step's `until`, a `ws`
    /// conversation's `expect`), lowered.
    pub config_matchers: Vec<ConfigMatcher>,
    /// Steps this one waits for; `None` means "the previous step".
    pub needs: Option<Vec<Key>>,
    /// Checks on the result; blocking ones fail the step.
    pub expect: Vec<Expectation>,
    /// Values kept for later steps (`{{ step_id.name }}`).
    pub captures: Vec<Capture>,
    /// Run again until the expectations pass (boxed, as the other parts
    /// most steps lack: a plan holds every step).
    pub retry: Option<Box<Retry>>,
    /// Run once per item of a count or of a list, each iteration checked.
    pub repeat: Option<Box<Repeat>>,
    /// Time limit of one attempt.
    pub timeout: Option<Duration>,
    /// Run only when this renders true.
    pub when: Option<Box<Template>>,
    /// Teardown: runs even after failures and on Ctrl-C.
    pub always: bool,
    /// Whether lowering found no problem in the step. A step with a problem
    /// in its configuration, an expectation or a capture is kept so that the
    /// rest of the spec is checked around it, but it never reaches a plan.
    pub sound: bool,
    /// Whether every capture written lowered: a capture with a problem is
    /// left out of `captures`, so reads of a name it lacks are not judged.
    pub captures_known: bool,
    /// The whole step.
    pub span: Span,
    /// Where the step stands in its file when the spec was read a step at
    /// a time: then `config`, `config_templates`, `config_matchers` and
    /// `expect` are empty here, and [`Spec::step`] reads them again.
    pub chunk: Option<StepChunk>,
}

/// Where a step read a step at a time stands in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepChunk {
    /// The bytes of its `[[steps]]` table.
    pub span: Range<u32>,
    /// Its place among the file's `[[steps]]` tables (an unnamed step is
    /// named after it).
    pub position: u32,
}

/// Retrying or polling a step until its expectations pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Attempts in all (the first included).
    pub attempts: u32,
    /// Pause before the second attempt.
    pub interval: Duration,
    /// Factor applied to the pause after each attempt.
    pub backoff: f64,
    /// Longest pause.
    pub max_interval: Duration,
    /// Give up after this long in all, whatever `attempts` says.
    pub timeout: Option<Duration>,
}

impl Retry {
    /// The most attempts a spec may ask for: more is a mistake (a poll bounded
    /// by time leaves `attempts` out and sets `timeout`).
    pub const MAX_ATTEMPTS: u32 = 1_000_000;
    /// The largest `backoff` a spec may ask for: beyond it the second pause
    /// already reaches any sensible `max_interval`.
    pub const MAX_BACKOFF: f64 = 100.0;
}

/// Running a step once per item (`repeat = 100`, `repeat = { over = […] }`):
/// each iteration is an attempt of its own, with its own rendered
/// configuration, expectations, retries and time limit.
#[derive(Debug, Clone)]
pub struct Repeat {
    /// What is repeated over.
    pub over: RepeatOver,
    /// Iterations that run at once (1: one after another).
    pub concurrency: u32,
    /// The whole `repeat` value.
    pub span: Span,
}

/// The iterations of a [`Repeat`].
#[derive(Debug, Clone)]
pub enum RepeatOver {
    /// `repeat = 100`, `count = 100`: the same step that many times.
    Count(u32),
    /// `over = ["alice", "bob"]` or `over = "{{ users }}"`: once per item of
    /// a list, known once rendered.
    Items {
        /// The list, or a template that renders to one.
        value: Value,
        /// The templates in `value`, parsed: they read what the step reads
        /// outside its iterations (variables, captures), never `repeat`.
        templates: Vec<Template>,
        /// The name the item is read under (`as`, default `item`).
        name: Key,
    },
}

impl Repeat {
    /// The most iterations a count may ask for.
    pub const MAX_COUNT: u32 = 1_000_000;
    /// The most iterations that may run at once.
    pub const MAX_CONCURRENCY: u32 = 10_000;
    /// The name of the iteration's own values in templates (`repeat.index`).
    pub const NAME: &'static str = "repeat";
    /// The fields of `repeat` in templates.
    pub const FIELDS: &'static [&'static str] = &["index", "count"];
    /// The item's name when `as` is not given.
    pub const DEFAULT_ITEM: &'static str = "item";

    /// The item's name, when the step repeats over a list.
    pub fn item_name(&self) -> Option<&Key> {
        match &self.over {
            RepeatOver::Count(_) => None,
            RepeatOver::Items { name, .. } => Some(name),
        }
    }
}

/// What an expectation or capture looks at.
#[derive(Debug, Clone)]
pub enum Target {
    /// A JSONPath over the result document (`status` is `$.status`).
    Path {
        /// How the user wrote it (`status`, `json.user.id`, `$.headers`).
        text: String,
        /// The compiled path.
        path: JsonPath,
    },
    /// A response header, by lowercase name.
    Header(String),
    /// An expression in the template language.
    Expr(Template),
}

impl Target {
    /// How the target is shown in messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Path { text, .. } => text.clone(),
            Target::Header(name) => format!("header `{name}`"),
            Target::Expr(t) => t.source.clone(),
        }
    }
}

/// The key of a matcher operator: what [`Op::ALL`] lists, messages name, "did
/// you mean" suggests and the JSON Schema offers. The operator with its
/// argument is an [`Operator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal (deep).
    Eq,
    /// Not equal.
    Ne,
    /// Less than (numbers, durations, strings).
    Lt,
    /// Less or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater or equal.
    Ge,
    /// A string contains a substring, a list an item, a table a key.
    Contains,
    /// A string matches a regular expression.
    Matches,
    /// A string starts with.
    StartsWith,
    /// A string ends with.
    EndsWith,
    /// The target exists (`true`) or not (`false`).
    Exists,
    /// The length of a string, list or table matches.
    Len,
    /// The JSON type (`string`, `number`, `integer`, `boolean`, `array`, `object`, `null`).
    Type,
    /// Equal to one of a list.
    OneOf,
    /// Every item of a list matches.
    All,
    /// Some item of a list matches.
    Any,
    /// The inner matcher does not match.
    Not,
    /// The first item of a stream (`offset` in ms) arrived within a duration.
    FirstWithin,
    /// No gap between consecutive items of a stream exceeds a duration.
    MaxGap,
    /// The items of a stream arrived in more than one burst (see the docs).
    Incremental,
    /// Items matching each matcher of a list appear in that order (others may
    /// come between).
    InOrder,
    /// Each matcher of a list is matched by a different item, in any order.
    Includes,
}

impl Op {
    /// Every operator with its key.
    pub const ALL: [(&'static str, Op); 22] = [
        ("eq", Op::Eq),
        ("ne", Op::Ne),
        ("lt", Op::Lt),
        ("le", Op::Le),
        ("gt", Op::Gt),
        ("ge", Op::Ge),
        ("contains", Op::Contains),
        ("matches", Op::Matches),
        ("starts_with", Op::StartsWith),
        ("ends_with", Op::EndsWith),
        ("exists", Op::Exists),
        ("len", Op::Len),
        ("type", Op::Type),
        ("one_of", Op::OneOf),
        ("all", Op::All),
        ("any", Op::Any),
        ("not", Op::Not),
        ("first_within", Op::FirstWithin),
        ("max_gap", Op::MaxGap),
        ("incremental", Op::Incremental),
        ("in_order", Op::InOrder),
        ("includes", Op::Includes),
    ];

    /// The operator of a key.
    pub fn from_key(key: &str) -> Option<Op> {
        Op::ALL.iter().find(|(k, _)| *k == key).map(|(_, op)| *op)
    }

    /// The key of the operator.
    pub fn key(self) -> &'static str {
        Op::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("?", |(k, _)| k)
    }
}

/// An operator argument of type `T`.
#[derive(Debug, Clone)]
pub enum Arg<T> {
    /// Read when the plan was: the spec text held no template.
    Known(T),
    /// A value holding `{{ }}`, read as a `T` once rendered (a captured
    /// pattern, a duration from a variable).
    Template(Value),
}

/// A type an operator argument is read as, from the argument's text.
pub trait ArgValue: Sized {
    /// Reads the text; `Err` says why it is not one, as a message.
    fn from_text(text: &str) -> Result<Self, String>;
}

impl ArgValue for Duration {
    fn from_text(text: &str) -> Result<Self, String> {
        crate::duration::parse_duration(text)
    }
}

impl ArgValue for regex::Regex {
    fn from_text(text: &str) -> Result<Self, String> {
        regex::Regex::new(text).map_err(|e| format!("invalid regular expression: {e}"))
    }
}

impl ArgValue for JsonType {
    fn from_text(text: &str) -> Result<Self, String> {
        JsonType::from_name(text).ok_or_else(|| format!("unknown type `{text}`"))
    }
}

/// A JSON type, as the `type` operator names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    /// `string`.
    String,
    /// `number`: any number.
    Number,
    /// `integer`: a number without a fraction.
    Integer,
    /// `boolean`.
    Boolean,
    /// `array`: a list.
    Array,
    /// `object`: a table.
    Object,
    /// `null`.
    Null,
}

impl JsonType {
    /// Every type with its name.
    pub const ALL: [(&'static str, JsonType); 7] = [
        ("string", JsonType::String),
        ("number", JsonType::Number),
        ("integer", JsonType::Integer),
        ("boolean", JsonType::Boolean),
        ("array", JsonType::Array),
        ("object", JsonType::Object),
        ("null", JsonType::Null),
    ];

    /// The type of a name.
    pub fn from_name(name: &str) -> Option<JsonType> {
        JsonType::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
    }

    /// The name of the type.
    pub fn name(self) -> &'static str {
        JsonType::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("?", |(n, _)| n)
    }

    /// Every name.
    pub fn names() -> impl Iterator<Item = &'static str> {
        JsonType::ALL.iter().map(|(n, _)| *n)
    }
}

/// An operator of a matcher table with its argument, typed: a duration is a
/// [`Duration`], a pattern a compiled [`regex::Regex`], a nested matcher a
/// [`Matcher`]. Values compared with the target stay [`Value`]s (they may
/// hold templates, rendered when checked).
#[derive(Debug, Clone)]
pub enum Operator {
    /// `eq`: equal (deep).
    Eq(Value),
    /// `ne`: not equal.
    Ne(Value),
    /// `lt`: less than (numbers, durations, strings).
    Lt(Value),
    /// `le`: less or equal.
    Le(Value),
    /// `gt`: greater than.
    Gt(Value),
    /// `ge`: greater or equal.
    Ge(Value),
    /// `contains`: a string contains a substring, a list an item, a table a key.
    Contains(Value),
    /// `matches`: a string matches a regular expression.
    Matches(Arg<regex::Regex>),
    /// `starts_with`: a string starts with.
    StartsWith(Value),
    /// `ends_with`: a string ends with.
    EndsWith(Value),
    /// `exists`: the target exists (`true`) or not (`false`).
    Exists(bool),
    /// `len`: the length of a string, list or table matches.
    Len(Box<Matcher>),
    /// `type`: the JSON type.
    Type(Arg<JsonType>),
    /// `one_of`: equal to one of a list (a list value).
    OneOf(Value),
    /// `all`: every item of a list matches.
    All(Box<Matcher>),
    /// `any`: some item of a list matches.
    Any(Box<Matcher>),
    /// `not`: the inner matcher does not match.
    Not(Box<Matcher>),
    /// `first_within`: the first item of a stream arrived within a duration.
    FirstWithin(Arg<Duration>),
    /// `max_gap`: no gap between consecutive items of a stream exceeds a duration.
    MaxGap(Arg<Duration>),
    /// `incremental`: the items of a stream arrived in more than one burst
    /// (`true`), or in one (`false`).
    Incremental(bool),
    /// `in_order`: items matching each matcher appear in that order.
    InOrder(Vec<Matcher>),
    /// `includes`: each matcher is matched by a different item, in any order.
    Includes(Vec<Matcher>),
}

impl Operator {
    /// The operator's key.
    pub fn op(&self) -> Op {
        match self {
            Operator::Eq(_) => Op::Eq,
            Operator::Ne(_) => Op::Ne,
            Operator::Lt(_) => Op::Lt,
            Operator::Le(_) => Op::Le,
            Operator::Gt(_) => Op::Gt,
            Operator::Ge(_) => Op::Ge,
            Operator::Contains(_) => Op::Contains,
            Operator::Matches(_) => Op::Matches,
            Operator::StartsWith(_) => Op::StartsWith,
            Operator::EndsWith(_) => Op::EndsWith,
            Operator::Exists(_) => Op::Exists,
            Operator::Len(_) => Op::Len,
            Operator::Type(_) => Op::Type,
            Operator::OneOf(_) => Op::OneOf,
            Operator::All(_) => Op::All,
            Operator::Any(_) => Op::Any,
            Operator::Not(_) => Op::Not,
            Operator::FirstWithin(_) => Op::FirstWithin,
            Operator::MaxGap(_) => Op::MaxGap,
            Operator::Incremental(_) => Op::Incremental,
            Operator::InOrder(_) => Op::InOrder,
            Operator::Includes(_) => Op::Includes,
        }
    }

    /// The key as written (`starts_with`).
    pub fn key(&self) -> &'static str {
        self.op().key()
    }

    /// The matchers nested in it (`len`, `all`, `any`, `not`, `in_order`,
    /// `includes`).
    pub fn matchers(&self) -> &[Matcher] {
        match self {
            Operator::Len(m) | Operator::All(m) | Operator::Any(m) | Operator::Not(m) => {
                std::slice::from_ref(m.as_ref())
            }
            Operator::InOrder(ms) | Operator::Includes(ms) => ms,
            _ => &[],
        }
    }

    /// The argument as a value still to be rendered: a compared value, or a
    /// template read when checked. `None` for arguments read at plan time and
    /// for nested matchers.
    pub fn value(&self) -> Option<&Value> {
        match self {
            Operator::Eq(v)
            | Operator::Ne(v)
            | Operator::Lt(v)
            | Operator::Le(v)
            | Operator::Gt(v)
            | Operator::Ge(v)
            | Operator::Contains(v)
            | Operator::StartsWith(v)
            | Operator::EndsWith(v)
            | Operator::OneOf(v)
            | Operator::Matches(Arg::Template(v))
            | Operator::Type(Arg::Template(v))
            | Operator::FirstWithin(Arg::Template(v))
            | Operator::MaxGap(Arg::Template(v)) => Some(v),
            _ => None,
        }
    }
}

/// What a value must look like.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal to a scalar (strings may hold templates).
    Literal(Value),
    /// A table: every key given must be present and match (extra keys allowed).
    Object(Vec<(Key, Matcher)>),
    /// A list: same length, item by item.
    Array(Vec<Matcher>, Span),
    /// A table of operators: all must hold.
    Ops(Vec<OpMatcher>, Span),
}

impl Matcher {
    /// Where the matcher was written.
    pub fn span(&self) -> Span {
        match self {
            Matcher::Literal(v) => v.span.clone(),
            Matcher::Object(entries) => match (entries.first(), entries.last()) {
                (Some((first, _)), Some((_, last))) => first.span.start..last.span().end,
                _ => 0..0,
            },
            Matcher::Array(_, span) | Matcher::Ops(_, span) => span.clone(),
        }
    }
}

/// One operator of a matcher table and where it was written.
#[derive(Debug, Clone)]
pub struct OpMatcher {
    /// The operator with its argument.
    pub op: Operator,
    /// From the operator key to the end of its argument.
    pub span: Span,
}

/// A check on a step's result.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// What is checked.
    pub target: Target,
    /// How (`None` for an expression, which must be true).
    pub matcher: Option<Matcher>,
    /// Failing it fails the step (`expect`), or only warns (`should`).
    pub blocking: bool,
    /// The whole expectation, for the underline.
    pub span: Span,
}

/// A value kept from a step's result.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The name, read later as `{{ step_id.name }}`.
    pub name: Key,
    /// Where the value comes from.
    pub target: Target,
    /// A regular expression applied to the string; group 1 (or the whole match) is kept.
    pub regex: Option<String>,
    /// Keep it out of every report.
    pub secret: bool,
    /// Where the capture was written.
    pub span: Span,
}

/// A directory-level `planrun.toml`: shared variables and defaults, and the
/// specs that run before and after the others of the directory.
#[derive(Debug, Clone, Default)]
pub struct DirConfig {
    /// The file, when one was found.
    pub source: Option<Arc<SourceFile>>,
    /// Shared variables.
    pub vars: Vec<Var>,
    /// Shared defaults.
    pub defaults: Defaults,
    /// `setup`: the spec that runs before the directory's others; when it
    /// does not pass, they do not run.
    pub setup: Option<DirSpec>,
    /// `teardown`: the spec that runs after the directory's others, however
    /// they ended.
    pub teardown: Option<DirSpec>,
}

impl DirConfig {
    /// The path of the `planrun.toml`, when there is one: specs whose
    /// configuration has the same path share its setup and teardown.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.source.as_ref().map(|s| s.path.as_path())
    }
}

/// A spec file named by `setup` or `teardown` in a `planrun.toml`.
#[derive(Debug, Clone)]
pub struct DirSpec {
    /// The path as written, relative to the `planrun.toml`.
    pub name: Key,
    /// The path from the working directory (the `planrun.toml`'s directory
    /// joined with `name`). Whether the file exists is not checked here.
    pub path: std::path::PathBuf,
}

/// Values given on the command line or by the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--var k=v`, highest precedence.
    pub vars: IndexMap<String, String>,
    /// Names of variables to treat as secret in addition to those marked in files.
    pub secret_vars: Vec<String>,
}
