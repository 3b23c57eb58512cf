//! planrun's runner: walks a plan's step graph, renders templates, calls
//! executors, checks expectations and emits events. How it works, and what
//! it must never do: `ARCHITECTURE.md` beside this crate's manifest.
//!
//! The public parts are the executor contract ([`executor`]), the events
//! reporters read ([`events`]) and the scheduler ([`run`]); rendering,
//! redaction and the checking of expectations are its own.
//!
//! ```
//! use std::sync::Arc;
//!
//! use planrun_runner::events::RunEvent;
//! use planrun_runner::executor::{BoxFuture, Registry, StepError, StepExecutor, StepInput};
//! use planrun_runner::run::{Cancel, RunOptions, Runner};
//! use planrun_spec::model::{DirConfig, Overrides, StepKind};
//! use planrun_spec::plan::{load_spec, plan};
//! use planrun_spec::source::{Format, SourceFile};
//!
//! /// A `wait` executor that answers at once with a fixed document.
//! struct Instant;
//!
//! impl StepExecutor for Instant {
//!     fn kind(&self) -> StepKind {
//!         StepKind::Wait
//!     }
//!     fn execute<'a>(&'a self, _: StepInput<'a>) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
//!         Box::pin(async { Ok(serde_json::json!({ "waited": 0, "duration": 0 })) })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let text = "[[steps]]\nwait = \"1s\"\nexpect.waited = 0\n";
//! let source = Arc::new(SourceFile::new("pause.toml", text, Format::Toml));
//! let spec = load_spec(&source).expect("a valid spec");
//! let plan = plan(spec, Arc::new(DirConfig::default()), &Overrides::default(), &[])
//!     .expect("a valid plan");
//!
//! let mut registry = Registry::new();
//! registry.register(Instant);
//! let runner = Runner::new(registry, RunOptions::default());
//! let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
//! let summary = runner.run(&[plan], &events, &Cancel::default()).await;
//! assert_eq!(summary.passed, 1);
//! drop(events);
//! while let Some(event) = received.recv().await {
//!     if let RunEvent::StepFinished { report, .. } = event {
//!         assert!(report.expectations.iter().all(|e| e.passed));
//!     }
//! }
//! # }
//! ```
pub mod events;
pub mod executor;
mod expect;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod leftovers;
mod redact;
mod render;
pub mod run;

pub use expect::test_matcher;
