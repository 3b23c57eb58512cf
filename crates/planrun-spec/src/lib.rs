//! planrun's spec language: TOML or YAML text in, a validated plan out.
//! How it works, and what it must never do: `ARCHITECTURE.md` beside this
//! crate's manifest.
//!
//! The modules are the language's parts: the spanned [`value`] tree read
//! from a [`source`] file, the typed [`model`] of a spec, the step [`kinds`],
//! the [`plan`] (step graph), [`error`] diagnostics, [`template`]s,
//! [`duration`]s and the JSON [`schema`]. Parsing and lowering are reached
//! through [`plan::load_spec`]; the few of their parts other crates need are
//! re-exported here.
//!
//! ```
//! use std::sync::Arc;
//!
//! use planrun_spec::model::{DirConfig, Overrides, StepKind};
//! use planrun_spec::plan::{load_spec, plan};
//! use planrun_spec::source::{Format, SourceFile};
//!
//! let text = r#"
//! id = "TC-003"
//! vars.base_url = "http://127.0.0.1:8000"
//!
//! [[steps]]
//! id = "health"
//! http = { get = "{{ base_url }}/health/" }
//! expect.status = 200
//!
//! [[steps]]
//! wait = "2s"
//! "#;
//! let source = Arc::new(SourceFile::new("tc-003.toml", text, Format::Toml));
//! let spec = load_spec(&source).expect("a valid spec");
//! assert_eq!(spec.steps[0].kind, StepKind::Http);
//! // the short form is expanded once, at plan time
//! assert!(spec.steps[1].config.get("duration").is_some());
//!
//! let planned = plan(spec, Arc::new(DirConfig::default()), &Overrides::default(), &[])
//!     .expect("a valid graph");
//! assert_eq!(planned.deps[1], [0], "a step needs the one before it by default");
//!
//! // every problem of a file at once, each located: lowering keeps what it
//! // found wrong, planning adds the problems of the graph
//! let broken = Arc::new(SourceFile::new(
//!     "broken.toml",
//!     "[[steps]]\nhtp = { get = \"x\" }\ntimeout = 5\n[[steps]]\nwait = \"1s\"\nneeds = [\"setup\"]\n",
//!     Format::Toml,
//! ));
//! let spec = load_spec(&broken).expect("a table of steps");
//! assert_eq!(spec.problems.len(), 2);
//! let problems = plan(spec, Arc::new(DirConfig::default()), &Overrides::default(), &[])
//!     .expect_err("three problems");
//! assert_eq!(problems.len(), 3);
//! ```
mod de;
pub mod duration;
pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod include;
pub mod kinds;
mod lower;
pub mod model;
mod parse;
pub mod plan;
pub mod policy;
pub mod schema;
pub mod source;
pub mod template;
pub mod value;

pub use de::{DeError, from_value, is_template};
pub use lower::{JsonPathError, MAX_PATH_NESTING, lower_matcher, parse_json_path, parse_target};
pub use parse::{parse_source, parse_toml};
