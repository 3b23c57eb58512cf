//! planrun's reporters: they consume the runner's [`RunEvent`]s and write a
//! terminal view, JUnit XML, a JSON document or a Markdown summary.
//!
//! Reporters never run anything and never decide what passed: the events
//! say it all. They never look at the environment either (`NO_COLOR`, the
//! terminal's width, `$GITHUB_STEP_SUMMARY`): the binary decides and passes
//! options in.
//!
//! ```
//! use planrun_report::{Reporter, TerminalOptions, TerminalReporter};
//! use planrun_runner::events::{RunEvent, RunSummary};
//!
//! let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(TerminalReporter::new(
//!     Box::new(std::io::sink()),
//!     TerminalOptions::default(),
//! ))];
//! for event in [
//!     RunEvent::RunStarted { specs: Vec::new().into() },
//!     RunEvent::RunFinished { report: RunSummary::default() },
//! ] {
//!     reporters.on_event(&event)?;
//! }
//! reporters.finish()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`RunEvent`]: planrun_runner::events::RunEvent

#![warn(missing_docs)]

mod collect;
mod files;
mod json;
mod junit;
mod markdown;
mod redact;
mod sink;
mod snippet;
mod style;
mod terminal;
mod text;

use std::io;

use planrun_runner::events::RunEvent;

pub use files::{FileFormat, FileReports};
pub use json::{JSON_FORMAT_VERSION, JsonReporter};
pub use junit::JunitReporter;
pub use markdown::MarkdownReporter;
pub use redact::redact_for_snapshot;
pub use snippet::render_failure;
pub use terminal::{TerminalOptions, TerminalReporter};

/// Something that turns run events into output.
pub trait Reporter: Send {
    /// Takes one event, in the order the runner emitted them.
    fn on_event(&mut self, event: &RunEvent) -> io::Result<()>;

    /// Called once after `RunFinished`, or after the run stopped without it
    /// (write files here).
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<R: Reporter + ?Sized> Reporter for Box<R> {
    fn on_event(&mut self, event: &RunEvent) -> io::Result<()> {
        (**self).on_event(event)
    }

    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
}

/// Every reporter gets every event, even when one of them fails (a closed
/// terminal must not cost the JUnit file); the first error is returned.
impl<R: Reporter> Reporter for Vec<R> {
    fn on_event(&mut self, event: &RunEvent) -> io::Result<()> {
        first_error(self.iter_mut().map(|r| r.on_event(event)))
    }

    fn finish(&mut self) -> io::Result<()> {
        first_error(self.iter_mut().map(Reporter::finish))
    }
}

fn first_error(results: impl Iterator<Item = io::Result<()>>) -> io::Result<()> {
    let mut first = Ok(());
    for result in results {
        if first.is_ok() {
            first = result;
        }
    }
    first
}
