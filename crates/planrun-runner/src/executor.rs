//! The contract between the runner and step executors.
//!
//! An executor receives a step's rendered configuration and returns a result
//! document (a JSON value). It knows nothing of expectations, retries, reports
//! or other steps; the runner knows nothing of HTTP or processes.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use planrun_spec::DeError;
use planrun_spec::error::Diagnostic;
use planrun_spec::kinds::{ConfigMatcher, matcher_at};
use planrun_spec::model::{Matcher, StepKind};
use planrun_spec::value::{Span, Value};
use tokio::sync::mpsc::UnboundedSender;

use crate::events::RunEvent;
use crate::redact::Redactor;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a step could not be performed.
#[derive(Debug, Clone)]
pub struct StepError {
    /// Whose failure it is: the step's (the default) or planrun's own.
    pub kind: StepErrorKind,
    /// What went wrong (lowercase, no trailing period).
    pub message: String,
    /// The spec location concerned, when known.
    pub span: Option<Span>,
    /// What to do about it.
    pub help: Option<String>,
}

/// Whose failure a [`StepError`] is; the CLI exits 3 rather than 1 when a
/// step failed with [`StepErrorKind::Internal`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepErrorKind {
    /// The step could not be performed: an unreachable server, a process
    /// that would not start, a timeout, a template that did not render.
    #[default]
    Executor,
    /// planrun itself failed: a broken invariant, a poisoned lock, a
    /// configuration that plan-time checks should have refused.
    Internal,
}

impl StepError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            kind: StepErrorKind::Executor,
            message: message.into(),
            span: None,
            help: None,
        }
    }

    /// planrun's own failure (a broken invariant, a poisoned lock), not the
    /// step's: the run exits 3.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            kind: StepErrorKind::Internal,
            ..Self::new(message)
        }
    }

    /// Points the error at a place in the spec.
    #[must_use]
    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    /// Adds a hint.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// A problem of the rendered configuration, located in the spec.
    pub fn invalid(d: Diagnostic) -> Self {
        Self {
            kind: StepErrorKind::Executor,
            message: d.message,
            span: Some(d.span),
            help: d.help,
        }
    }

    /// An error reading the rendered configuration.
    pub fn config(err: DeError) -> Self {
        Self {
            kind: StepErrorKind::Executor,
            message: err.message,
            span: err.span,
            help: err.help,
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StepError {}

/// Runs one kind of step.
pub trait StepExecutor: Send + Sync + 'static {
    /// The kind this executor runs.
    fn kind(&self) -> StepKind;

    /// Performs one attempt of a step and returns its result document.
    ///
    /// An executor that waits (for a reply, an event, a process) should end
    /// itself at [`StepInput::timeout`] with an error saying what it waited
    /// for; the runner drops the future shortly after that time in any case, so
    /// an executor must leave nothing behind when dropped (use `kill_on_drop`
    /// for processes; register long-lived things with [`SpecContext::on_cleanup`]).
    fn execute<'a>(
        &'a self,
        input: StepInput<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>>;

    /// Lets go of what the kind keeps for the whole run (the containers a
    /// `docker` step started, which later specs may use), once every spec
    /// and directory teardown has ended; the default does nothing. An
    /// interrupted run that is given up relies on
    /// [`crate::leftovers`] instead.
    fn end_of_run(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// What an executor gets for one attempt.
pub struct StepInput<'a> {
    /// The rendered configuration; read it with `planrun_spec::from_value`.
    pub config: &'a Value,
    /// The configuration as written, templates unrendered: the tree
    /// `config` was rendered from, with the same spans (see
    /// [`StepInput::written`]).
    pub raw: &'a Value,
    /// The matchers written inside the configuration (an `sse` step's
    /// `until`), lowered at plan time and rendered: test them with
    /// [`crate::expect::test_matcher`].
    pub matchers: &'a [ConfigMatcher],
    /// State shared by the steps of one spec run.
    pub ctx: &'a SpecContext,
    /// The step's id.
    pub step_id: &'a str,
    /// The attempt's time limit (the runner enforces it too, a moment later).
    pub timeout: Duration,
    /// The cap on bodies read into memory.
    pub max_body: u64,
    /// Reports observations while the step runs.
    pub observer: Observer,
}

impl<'a> StepInput<'a> {
    /// The matcher at `path` of the configuration (`until`,
    /// `conversation.2.expect`), if one was written there.
    pub fn matcher(&self, path: &str) -> Option<&Matcher> {
        matcher_at(self.matchers, path)
    }

    /// The string written at `span` of the configuration before rendering
    /// (`{{ asgi_url }}/health/` where `config` holds the URL it became), so
    /// that a message can name what the user wrote; `None` when no string
    /// stands there.
    pub fn written(&self, span: &Span) -> Option<&'a str> {
        let mut found = None;
        self.raw.visit_strings(&mut |s, at| {
            if found.is_none() && at == span {
                found = Some(s);
            }
        });
        found
    }
}

/// Sends observations of a running step to reporters.
#[derive(Clone)]
pub struct Observer {
    pub(crate) tx: Option<UnboundedSender<RunEvent>>,
    pub(crate) spec: usize,
    pub(crate) step: usize,
    /// The step's secrets, hidden in every observation before it leaves.
    pub(crate) redactor: Option<Arc<Redactor>>,
}

impl Observer {
    /// An observer that drops everything (for tests of executors).
    pub fn none() -> Self {
        Self {
            tx: None,
            spec: 0,
            step: 0,
            redactor: None,
        }
    }

    /// Whether anyone listens: build an observation only when this is true.
    pub fn wanted(&self) -> bool {
        self.tx.is_some()
    }

    /// Reports one observation.
    pub fn observe(&self, mut observation: serde_json::Value) {
        if let Some(tx) = &self.tx {
            if let Some(redactor) = &self.redactor {
                redactor.json(&mut observation);
            }
            // a closed channel means nobody listens any more; nothing to do
            let _ = tx.send(RunEvent::StepObserved {
                spec: self.spec,
                step: self.step,
                observation,
            });
        }
    }
}

type Cleanup = (String, Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>);

/// State shared by the steps of one spec run: an HTTP client and cookie jar,
/// background processes to stop at the end, and so on.
#[derive(Default)]
pub struct SpecContext {
    resources: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    cleanups: Mutex<Vec<Cleanup>>,
    base_dir: PathBuf,
}

impl SpecContext {
    /// A context for a spec whose file is in `base_dir`.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Self {
            base_dir: base_dir.into(),
            ..Self::default()
        }
    }

    /// The spec file's directory.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The shared resource of type `T`, created by `init` on first use.
    pub fn resource<T, F>(&self, init: F) -> Result<Arc<T>, StepError>
    where
        T: Any + Send + Sync,
        F: FnOnce() -> Result<T, StepError>,
    {
        let mut map = self
            .resources
            .lock()
            .map_err(|_| StepError::internal("the resource lock is poisoned"))?;
        if let Some(existing) = map.get(&TypeId::of::<T>()) {
            return Arc::clone(existing)
                .downcast::<T>()
                .map_err(|_| StepError::internal("a resource has another type than asked for"));
        }
        let created = Arc::new(init()?);
        map.insert(
            TypeId::of::<T>(),
            Arc::clone(&created) as Arc<dyn Any + Send + Sync>,
        );
        Ok(created)
    }

    /// Registers work to do when the spec ends, whatever the outcome
    /// (stopping a background process). Runs in reverse order of registration.
    pub fn on_cleanup<F>(&self, name: impl Into<String>, f: F)
    where
        F: FnOnce() -> BoxFuture<'static, ()> + Send + 'static,
    {
        if let Ok(mut cleanups) = self.cleanups.lock() {
            cleanups.push((name.into(), Box::new(f)));
        }
    }

    /// Runs every registered cleanup, newest first; returns their names.
    pub async fn cleanup(&self) -> Vec<String> {
        let cleanups = match self.cleanups.lock() {
            Ok(mut c) => std::mem::take(&mut *c),
            Err(_) => Vec::new(),
        };
        let mut names = Vec::new();
        for (name, f) in cleanups.into_iter().rev() {
            f().await;
            names.push(name);
        }
        names
    }
}

/// The executors available to a run, by kind.
#[derive(Default, Clone)]
pub struct Registry {
    executors: HashMap<StepKind, Arc<dyn StepExecutor>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every executor registered.
    pub fn executors(&self) -> impl Iterator<Item = &Arc<dyn StepExecutor>> {
        self.executors.values()
    }

    /// Adds an executor (replacing one of the same kind).
    pub fn register(&mut self, executor: impl StepExecutor) {
        self.executors.insert(executor.kind(), Arc::new(executor));
    }

    /// The executor of a kind.
    pub fn get(&self, kind: StepKind) -> Option<Arc<dyn StepExecutor>> {
        self.executors.get(&kind).cloned()
    }

    /// Whether a kind can run.
    pub fn has(&self, kind: StepKind) -> bool {
        self.executors.contains_key(&kind)
    }
}
