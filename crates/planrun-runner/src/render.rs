//! Templating at run time: variables, captures and helpers rendered with
//! minijinja in strict mode, so a missing value is an error, never "".
//!
//! Also where secrets spread: a template that reads a secret name renders a
//! secret, and so does every encoding filter it applies (`b64encode`,
//! `urlencode`, `tojson`, `hex`…). Such values are noted in the scope for
//! the runner to hide; this module never hides anything itself.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use base64::Engine as _;
use minijinja::value::{Serde, merge_maps};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use planrun_spec::is_template;
use planrun_spec::kinds::ConfigMatcher;
use planrun_spec::model::{Arg, ArgValue, Matcher, OpMatcher, Operator};
use planrun_spec::template::{Template, single_expression};
use planrun_spec::value::{Key, Span, Value, ValueKind};
use rand::Rng as _;

use crate::executor::StepError;

/// The values a template can read: variables, `env`, captures by step id and,
/// inside expectations, `result`.
///
/// Values are converted to template values once, when set; rendering only
/// clones a handle, so a template costs the same however large `env` is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    values: BTreeMap<String, minijinja::Value>,
    context: minijinja::Value,
    /// Steps that ended without passing, with what happened ("did not
    /// run"): their captures are not set, and a message about reading one
    /// says why.
    not_passed: BTreeMap<String, &'static str>,
    /// Names whose values are secret: variables (`password`), captures
    /// (`login.token`), environment variables (`env.TOKEN`).
    secret: Arc<BTreeSet<String>>,
    /// Where rendered values that read a secret are noted, while a step
    /// (or the spec's variables) renders.
    noted: Option<Arc<Mutex<Noted>>>,
}

/// Values a step's templates and configuration made secret.
#[derive(Debug, Clone, Default)]
pub(crate) struct Noted {
    /// Secrets in their own right (a `basic_auth` password), hidden at any
    /// length.
    pub(crate) secrets: Vec<String>,
    /// Values rendered from a secret: whole templates and filter outputs.
    pub(crate) derived: Vec<serde_json::Value>,
}

impl Scope {
    /// Sets a top-level name.
    pub(crate) fn set(&mut self, name: impl Into<String>, value: &serde_json::Value) {
        self.values
            .insert(name.into(), minijinja::Value::from(Serde(value)));
        self.context = minijinja::Value::from_object(self.values.clone());
    }

    /// Marks a name (`password`) or a dotted path (`login.token`,
    /// `env.TOKEN`) as secret: a template that reads it renders a secret.
    pub(crate) fn mark_secret(&mut self, path: impl Into<String>) {
        Arc::make_mut(&mut self.secret).insert(path.into());
    }

    /// Starts noting what templates rendered from secrets, afresh.
    pub(crate) fn note_secrets(&mut self) {
        self.noted = Some(Arc::default());
    }

    /// What was noted since [`Scope::note_secrets`].
    pub(crate) fn noted(&self) -> Noted {
        self.noted
            .as_ref()
            .map(|n| n.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .unwrap_or_default()
    }

    /// How many derived values were noted so far.
    pub(crate) fn noted_len(&self) -> usize {
        self.noted.as_ref().map_or(0, |n| {
            n.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .derived
                .len()
        })
    }

    /// Notes a secret the step's configuration holds in its own right.
    pub(crate) fn note_secret(&self, secret: String) {
        if let Some(noted) = &self.noted {
            noted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .secrets
                .push(secret);
        }
    }

    fn note_derived(&self, values: impl IntoIterator<Item = serde_json::Value>) {
        if let Some(noted) = &self.noted {
            noted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .derived
                .extend(values);
        }
    }

    /// Whether rendering may make secrets: some name is secret and someone
    /// notes what is rendered.
    fn watches(&self) -> bool {
        self.noted.is_some() && !self.secret.is_empty()
    }

    /// Whether any of the dotted names a template reads (`login`,
    /// `login.token.x`) is, holds or lies inside a secret.
    pub(crate) fn reads_secret<'a>(&self, refs: impl IntoIterator<Item = &'a str>) -> bool {
        if self.secret.is_empty() {
            return false;
        }
        let within = |inner: &str, outer: &str| {
            inner.len() > outer.len()
                && inner.starts_with(outer)
                && inner.as_bytes()[outer.len()] == b'.'
        };
        refs.into_iter().any(|r| {
            self.secret
                .iter()
                .any(|s| r == s || within(r, s) || within(s, r))
        })
    }

    /// Records that step `id` ended without passing (`what`: "did not run").
    pub(crate) fn not_passed(&mut self, id: impl Into<String>, what: &'static str) {
        self.not_passed.insert(id.into(), what);
    }

    /// The same names plus `result`, for expectations and captures.
    #[must_use]
    pub(crate) fn with_result(&self, result: &serde_json::Value) -> Scope {
        let mut own = BTreeMap::new();
        own.insert(
            String::from("result"),
            minijinja::Value::from(Serde(result)),
        );
        Scope {
            values: self.values.clone(),
            context: merge_maps([minijinja::Value::from_object(own), self.context()]),
            not_passed: self.not_passed.clone(),
            secret: Arc::clone(&self.secret),
            noted: self.noted.clone(),
        }
    }

    fn context(&self) -> minijinja::Value {
        if self.values.is_empty() {
            minijinja::Value::from_object(BTreeMap::<String, minijinja::Value>::new())
        } else {
            self.context.clone()
        }
    }
}

/// Renders templates; one per run.
///
/// Every template text is compiled once and kept under its own text as name
/// (a spec's templates are few; a step that runs a thousand times renders
/// from the compiled form a thousand times).
pub(crate) struct Renderer {
    env: RwLock<Environment<'static>>,
    /// The dotted names each template text reads, once asked.
    refs: RwLock<HashMap<String, Arc<[String]>>>,
}

thread_local! {
    /// The outputs of encoding filters while a template that reads a secret
    /// renders (`None` otherwise). Rendering is synchronous, so the
    /// filters of one render run on the thread that set it.
    static FILTERED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Notes an encoding filter's output when the template being rendered reads
/// a secret: the output is secret too.
fn filtered(output: String) -> String {
    FILTERED.with_borrow_mut(|f| {
        if let Some(f) = f {
            f.push(output.clone());
        }
    });
    output
}

/// Runs `render` noting its encoding filters' outputs.
fn noting_filters<T>(render: impl FnOnce() -> T) -> (T, Vec<String>) {
    FILTERED.set(Some(Vec::new()));
    let out = render();
    let noted = FILTERED.take().unwrap_or_default();
    (out, noted)
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    /// A renderer with planrun's helpers.
    pub(crate) fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // templates are named by their own text: a URL ending in `.html` must
        // not switch on HTML escaping
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_function("uuid", || uuid::Uuid::new_v4().to_string());
        env.add_function("now", || chrono::Utc::now().to_rfc3339());
        env.add_function("timestamp", || chrono::Utc::now().timestamp());
        env.add_function("random_int", |lo: i64, hi: i64| {
            if lo > hi {
                lo
            } else {
                rand::rng().random_range(lo..=hi)
            }
        });
        env.add_function("random_string", |len: Option<usize>| {
            let len = len.unwrap_or(12).min(4096);
            rand::rng()
                .sample_iter(&rand::distr::Alphanumeric)
                .take(len)
                .map(char::from)
                .collect::<String>()
        });
        env.add_filter("b64encode", |s: String| {
            filtered(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()))
        });
        env.add_filter(
            "b64decode",
            |s: String| -> Result<String, minijinja::Error> {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|e| {
                        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
                    })?;
                Ok(filtered(String::from_utf8_lossy(&bytes).into_owned()))
            },
        );
        env.add_filter("urlencode", |s: String| {
            filtered(
                s.bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect::<String>(),
            )
        });
        env.add_filter("hex", |s: String| {
            use std::fmt::Write as _;
            filtered(s.bytes().fold(String::new(), |mut out, b| {
                let _ = write!(out, "{b:02x}");
                out
            }))
        });
        env.add_filter(
            "tojson",
            |value: &minijinja::Value,
             indent: Option<minijinja::Value>,
             kwargs: minijinja::value::Kwargs|
             -> Result<minijinja::Value, minijinja::Error> {
                let out = minijinja::filters::tojson(value, indent, kwargs)?;
                if let Some(text) = out.as_str() {
                    // a string's quotes say nothing: `"***"` stays JSON
                    let inner = text
                        .strip_prefix('"')
                        .and_then(|t| t.strip_suffix('"'))
                        .unwrap_or(text);
                    filtered(inner.to_string());
                }
                Ok(out)
            },
        );
        Self {
            env: RwLock::new(env),
            refs: RwLock::default(),
        }
    }

    /// Renders text that may hold `{{ … }}` to a string.
    pub(crate) fn render_str(
        &self,
        text: &str,
        span: &Span,
        scope: &Scope,
    ) -> Result<String, StepError> {
        if !is_template(text) {
            return Ok(text.to_string());
        }
        if scope.watches()
            && scope.reads_secret(self.refs_of(text, span, scope)?.iter().map(String::as_str))
        {
            let (rendered, filtered) = noting_filters(|| self.render_template(text, span, scope));
            let rendered = rendered?;
            scope.note_derived(
                std::iter::once(rendered.clone())
                    .chain(filtered)
                    .map(serde_json::Value::String),
            );
            return Ok(rendered);
        }
        self.render_template(text, span, scope)
    }

    /// The dotted names template `text` reads.
    fn refs_of(&self, text: &str, span: &Span, scope: &Scope) -> Result<Arc<[String]>, StepError> {
        if let Some(refs) = self.refs.read().ok().and_then(|r| r.get(text).cloned()) {
            return Ok(refs);
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let refs: Arc<[String]> = env
            .template_from_str(text)
            .map_err(|e| template_error(&e, text, span, scope))?
            .undeclared_variables(true)
            .into_iter()
            .collect();
        if let Ok(mut cache) = self.refs.write() {
            cache.insert(text.to_string(), Arc::clone(&refs));
        }
        Ok(refs)
    }

    /// Renders a template text, compiled once.
    fn render_template(&self, text: &str, span: &Span, scope: &Scope) -> Result<String, StepError> {
        let render =
            |env: &Environment<'static>| env.get_template(text).map(|t| t.render(scope.context()));
        let cached = self.env.read().ok().and_then(|env| render(&env).ok());
        let rendered = if let Some(r) = cached {
            r
        } else {
            // first use of this text: compile it once, under its own text
            let mut env = self
                .env
                .write()
                .map_err(|_| StepError::internal("the template cache is poisoned"))?;
            env.add_template_owned(text.to_string(), text.to_string())
                .map_err(|e| template_error(&e, text, span, scope))?;
            render(&env).map_err(|e| template_error(&e, text, span, scope))?
        };
        rendered.map_err(|e| template_error(&e, text, span, scope))
    }

    /// Evaluates an expression to JSON.
    pub(crate) fn eval(
        &self,
        expr: &str,
        span: &Span,
        scope: &Scope,
    ) -> Result<serde_json::Value, StepError> {
        let env = self
            .env
            .read()
            .map_err(|_| StepError::internal("the template cache is poisoned"))?;
        let compiled = env
            .compile_expression(expr)
            .map_err(|e| template_error(&e, expr, span, scope))?;
        let secret = scope.watches()
            && scope.reads_secret(
                compiled
                    .undeclared_variables(true)
                    .iter()
                    .map(String::as_str),
            );
        let (value, filtered) = if secret {
            noting_filters(|| compiled.eval(scope.context()))
        } else {
            (compiled.eval(scope.context()), Vec::new())
        };
        let value = value.map_err(|e| template_error(&e, expr, span, scope))?;
        if value.is_undefined() {
            return Err(StepError::new(format!("`{expr}` is undefined")).at(span.clone()));
        }
        let json = serde_json::to_value(&value)
            .map_err(|e| StepError::new(format!("`{expr}`: {e}")).at(span.clone()))?;
        if secret {
            scope.note_derived(
                std::iter::once(json.clone())
                    .chain(filtered.into_iter().map(serde_json::Value::String)),
            );
        }
        Ok(json)
    }

    /// Evaluates a parsed template: typed when it is one expression.
    pub(crate) fn eval_template(
        &self,
        t: &Template,
        scope: &Scope,
    ) -> Result<serde_json::Value, StepError> {
        match &t.expr {
            Some(expr) => self.eval(expr, &t.span, scope),
            None => self
                .render_str(&t.source, &t.span, scope)
                .map(serde_json::Value::String),
        }
    }

    /// Evaluates a condition; minijinja's truthiness applies.
    pub(crate) fn truthy(&self, t: &Template, scope: &Scope) -> Result<bool, StepError> {
        let v = self.eval_template(t, scope)?;
        Ok(match v {
            serde_json::Value::Null => false,
            serde_json::Value::Bool(b) => b,
            serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            serde_json::Value::String(s) => !s.is_empty() && s != "false",
            serde_json::Value::Array(a) => !a.is_empty(),
            serde_json::Value::Object(o) => !o.is_empty(),
        })
    }

    /// Renders every template string in a value tree. A string that is one
    /// `{{ expr }}` keeps the expression's type (a number stays a number).
    pub(crate) fn render_value(&self, value: &Value, scope: &Scope) -> Result<Value, StepError> {
        let kind = match &value.kind {
            ValueKind::Str(s) if is_template(s) => {
                if let Some(expr) = single_expression(s) {
                    let json = self.eval(expr, &value.span, scope)?;
                    return Ok(Value::from_json(&json, &value.span));
                }
                ValueKind::Str(self.render_str(s, &value.span, scope)?)
            }
            ValueKind::Seq(items) => ValueKind::Seq(
                items
                    .iter()
                    .map(|v| self.render_value(v, scope))
                    .collect::<Result<_, _>>()?,
            ),
            ValueKind::Map(entries) => ValueKind::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            Key {
                                name: self.render_str(&k.name, &k.span, scope)?,
                                span: k.span.clone(),
                            },
                            self.render_value(v, scope)?,
                        ))
                    })
                    .collect::<Result<_, StepError>>()?,
            ),
            other => other.clone(),
        };
        Ok(Value::new(kind, value.span.clone()))
    }
}

impl Renderer {
    /// Renders the templates of a matcher (its literals and operator
    /// arguments), so that it can be tested without a scope.
    pub(crate) fn render_matcher(
        &self,
        matcher: &Matcher,
        scope: &Scope,
    ) -> Result<Matcher, StepError> {
        Ok(match matcher {
            Matcher::Literal(v) => Matcher::Literal(self.render_value(v, scope)?),
            Matcher::Object(entries) => Matcher::Object(
                entries
                    .iter()
                    .map(|(k, m)| Ok((k.clone(), self.render_matcher(m, scope)?)))
                    .collect::<Result<_, StepError>>()?,
            ),
            Matcher::Array(items, span) => Matcher::Array(
                items
                    .iter()
                    .map(|m| self.render_matcher(m, scope))
                    .collect::<Result<_, _>>()?,
                span.clone(),
            ),
            Matcher::Ops(ops, span) => Matcher::Ops(
                ops.iter()
                    .map(|op| {
                        Ok(OpMatcher {
                            op: self.render_operator(&op.op, scope)?,
                            span: op.span.clone(),
                        })
                    })
                    .collect::<Result<_, StepError>>()?,
                span.clone(),
            ),
        })
    }

    /// Renders an operator's argument: a value's templates, a nested
    /// matcher, or a template read as its type.
    fn render_operator(&self, op: &Operator, scope: &Scope) -> Result<Operator, StepError> {
        let value = |v: &Value| self.render_value(v, scope);
        let matcher = |m: &Matcher| self.render_matcher(m, scope).map(Box::new);
        let matchers = |ms: &[Matcher]| {
            ms.iter()
                .map(|m| self.render_matcher(m, scope))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match op {
            Operator::Eq(v) => Operator::Eq(value(v)?),
            Operator::Ne(v) => Operator::Ne(value(v)?),
            Operator::Lt(v) => Operator::Lt(value(v)?),
            Operator::Le(v) => Operator::Le(value(v)?),
            Operator::Gt(v) => Operator::Gt(value(v)?),
            Operator::Ge(v) => Operator::Ge(value(v)?),
            Operator::Contains(v) => Operator::Contains(value(v)?),
            Operator::StartsWith(v) => Operator::StartsWith(value(v)?),
            Operator::EndsWith(v) => Operator::EndsWith(value(v)?),
            Operator::OneOf(v) => Operator::OneOf(value(v)?),
            Operator::Matches(arg) => Operator::Matches(self.render_arg(op.key(), arg, scope)?),
            Operator::Type(arg) => Operator::Type(self.render_arg(op.key(), arg, scope)?),
            Operator::FirstWithin(arg) => {
                Operator::FirstWithin(self.render_arg(op.key(), arg, scope)?)
            }
            Operator::MaxGap(arg) => Operator::MaxGap(self.render_arg(op.key(), arg, scope)?),
            Operator::Exists(b) => Operator::Exists(*b),
            Operator::Incremental(b) => Operator::Incremental(*b),
            Operator::Len(m) => Operator::Len(matcher(m)?),
            Operator::All(m) => Operator::All(matcher(m)?),
            Operator::Any(m) => Operator::Any(matcher(m)?),
            Operator::Not(m) => Operator::Not(matcher(m)?),
            Operator::InOrder(ms) => Operator::InOrder(matchers(ms)?),
            Operator::Includes(ms) => Operator::Includes(matchers(ms)?),
        })
    }

    /// A typed argument made known: a template is rendered and read as a
    /// `T`, or fails where it was written.
    fn render_arg<T: ArgValue + Clone>(
        &self,
        key: &str,
        arg: &Arg<T>,
        scope: &Scope,
    ) -> Result<Arg<T>, StepError> {
        match arg {
            Arg::Known(t) => Ok(Arg::Known(t.clone())),
            Arg::Template(v) => {
                let rendered = self.render_value(v, scope)?.to_json();
                let text = match rendered {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                T::from_text(&text)
                    .map(Arg::Known)
                    .map_err(|e| StepError::new(format!("`{key}`: {e}")).at(v.span.clone()))
            }
        }
    }

    /// Renders the matchers of a step's configuration.
    pub(crate) fn render_matchers(
        &self,
        matchers: &[ConfigMatcher],
        scope: &Scope,
    ) -> Result<Vec<ConfigMatcher>, StepError> {
        matchers
            .iter()
            .map(|m| {
                Ok(ConfigMatcher {
                    path: m.path.clone(),
                    matcher: self.render_matcher(&m.matcher, scope)?,
                })
            })
            .collect()
    }
}

fn template_error(err: &minijinja::Error, text: &str, span: &Span, scope: &Scope) -> StepError {
    let detail = err
        .detail()
        .map_or_else(|| err.kind().to_string(), str::to_string);
    if !matches!(err.kind(), minijinja::ErrorKind::UndefinedError) {
        return StepError::new(format!("cannot render `{text}`: {detail}")).at(span.clone());
    }
    // a capture of a step that ended without passing is the likely cause
    if let Some((id, what, read)) = scope
        .not_passed
        .iter()
        .find_map(|(id, what)| read_of(text, id).map(|read| (id, *what, read)))
    {
        return StepError::new(format!("`{id}` {what}, so `{read}` is undefined"))
            .at(span.clone())
            .help(format!(
                "read it only when it is there: `if = \"{id} is defined\"` on the step, or `{{{{ {read} if {id} is defined else '' }}}}`"
            ));
    }
    StepError::new(format!("cannot render `{text}`: {detail}"))
        .at(span.clone())
        .help("a value it reads is not set: an environment variable, or a field missing from a capture")
}

/// The first read of a field of `id` in a template's text (`create.id`).
fn read_of(text: &str, id: &str) -> Option<String> {
    let prefix = format!("{id}.");
    text.match_indices(&prefix).find_map(|(at, _)| {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            return None;
        }
        let field: String = text[at + prefix.len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        (!field.is_empty()).then(|| format!("{id}.{field}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_strings_and_keeps_types() {
        let r = Renderer::new();
        let mut scope = Scope::default();
        scope.set("base_url", &json!("http://h"));
        scope.set("login", &json!({"count": 2}));
        let v = Value::from_json(
            &json!({"url": "{{ base_url }}/x", "n": "{{ login.count + 1 }}", "plain": "a"}),
            &(0..1),
        );
        let out = r.render_value(&v, &scope).expect("renders");
        assert_eq!(
            out.to_json(),
            json!({"url": "http://h/x", "n": 3, "plain": "a"})
        );
    }

    #[test]
    fn undefined_is_an_error() {
        let r = Renderer::new();
        let err = r
            .render_str("{{ nope }}/x", &(3..5), &Scope::default())
            .expect_err("strict");
        assert_eq!(err.span, Some(3..5));
        assert!(err.message.contains("nope"), "{}", err.message);
    }

    #[test]
    fn a_capture_of_a_step_that_did_not_run_says_so() {
        let r = Renderer::new();
        let mut scope = Scope::default();
        scope.not_passed("create", "did not run");
        let err = r
            .render_str("/items/{{ create.id }}", &(0..1), &scope)
            .expect_err("undefined");
        assert_eq!(
            err.message,
            "`create` did not run, so `create.id` is undefined"
        );
        // the guards the planner accepts render
        for (text, want) in [
            ("{{ create.id if create is defined else 'none' }}", "none"),
            ("{{ (create | default({})).id | default('none') }}", "none"),
        ] {
            assert_eq!(r.render_str(text, &(0..1), &scope).expect("guarded"), want);
        }
    }

    #[test]
    fn cached_templates_render_each_time_and_never_escape() {
        let r = Renderer::new();
        let mut scope = Scope::default();
        for q in ["a&b", "<c>"] {
            scope.set("q", &json!(q));
            let out = r
                .render_str("{{ q }}/page.html", &(0..1), &scope)
                .expect("renders");
            assert_eq!(out, format!("{q}/page.html"));
        }
    }

    #[test]
    fn helpers_work() {
        let r = Renderer::new();
        let s = r
            .render_str(
                "{{ 'qa:pw' | b64encode }} {{ uuid() | length }}",
                &(0..1),
                &Scope::default(),
            )
            .expect("renders");
        assert_eq!(s, "cWE6cHc= 36");
    }

    #[test]
    fn a_template_argument_renders_to_its_type_or_a_located_error() {
        use planrun_spec::error::Diagnostics;
        use planrun_spec::lower_matcher;
        use planrun_spec::model::Operator;
        use planrun_spec::parse_toml;
        use std::time::Duration;

        let r = Renderer::new();
        let mut scope = Scope::default();
        scope.set("limit", &json!("50ms"));
        scope.set("pattern", &json!("("));
        let lower = |text: &str| {
            let v = parse_toml(&format!("m = {text}")).expect("toml");
            let mut diags = Diagnostics::default();
            let m = lower_matcher(v.get("m").expect("m"), &mut diags).expect("matcher");
            assert!(diags.is_empty(), "{diags:?}");
            m
        };
        let rendered = r
            .render_matcher(&lower("{ first_within = \"{{ limit }}\" }"), &scope)
            .expect("renders");
        let Matcher::Ops(ops, _) = rendered else {
            panic!("an operator table: {rendered:?}")
        };
        assert!(
            matches!(ops[0].op, Operator::FirstWithin(Arg::Known(d)) if d == Duration::from_millis(50)),
            "{ops:?}"
        );
        let m = lower("{ matches = \"{{ pattern }}\" }");
        let Matcher::Ops(ops, _) = &m else {
            panic!("an operator table: {m:?}")
        };
        let Operator::Matches(Arg::Template(written)) = &ops[0].op else {
            panic!("a template: {ops:?}")
        };
        let err = r.render_matcher(&m, &scope).expect_err("not a pattern");
        assert!(
            err.message
                .starts_with("`matches`: invalid regular expression"),
            "{}",
            err.message
        );
        assert_eq!(err.span, Some(written.span.clone()));
    }
}
