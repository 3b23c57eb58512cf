//! The machine-readable report: one JSON document with every spec's
//! description and report, written when the run is over.
//!
//! The shape is the runner's event types as they serialize, wrapped in a
//! small versioned envelope; bump [`JSON_FORMAT_VERSION`] when it changes
//! incompatibly. This module renders and writes, nothing else.

use std::io::{self, Write};
use std::path::PathBuf;

use planrun_runner::events::{RunEvent, RunSummary, SpecInfo, SpecReport};
use serde::Serialize;

use crate::Reporter;
use crate::collect::{Retry, RunCollector};
use crate::sink::Sink;

/// The version of the JSON report's shape.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// Writes the whole run as one JSON document:
///
/// ```json
/// {
///   "version": 1,
///   "planrun": "0.1.0",
///   "started_at": "2025-01-01T10:00:00.000+01:00",
///   "summary": { "passed": 1, "failed": 1, "cancelled": 0, "warnings": 1, "internal_errors": 0, "duration": 1234.5, "interrupted": false },
///   "specs": [ { "info": { "id": "TC-003", … }, "finished": true, "report": { "status": "failed", "steps": […] }, "retries": [] } ]
/// }
/// ```
///
/// Durations are milliseconds. A spec the run never finished has
/// `"finished": false` and a cancelled report holding the steps that did.
#[derive(Debug)]
pub struct JsonReporter {
    sink: Sink,
    collector: RunCollector,
    written: bool,
}

#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    planrun: &'static str,
    started_at: Option<String>,
    summary: RunSummary,
    specs: Vec<SpecEntry<'a>>,
}

#[derive(Serialize)]
struct SpecEntry<'a> {
    info: &'a SpecInfo,
    finished: bool,
    report: &'a SpecReport,
    retries: &'a [Retry],
}

impl JsonReporter {
    /// A reporter writing the file at `path` (parent directories created).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_sink(Sink::path(path))
    }

    /// A reporter writing to `out` (`-` for stdout in the binary).
    pub fn with_writer(out: Box<dyn Write + Send>) -> Self {
        Self::with_sink(Sink::Writer(out))
    }

    fn with_sink(sink: Sink) -> Self {
        Self {
            sink,
            collector: RunCollector::default(),
            written: false,
        }
    }

    /// The document for what has happened so far, pretty-printed.
    pub fn render(&self) -> io::Result<String> {
        let specs = self.collector.specs();
        let document = Document {
            version: JSON_FORMAT_VERSION,
            planrun: env!("CARGO_PKG_VERSION"),
            started_at: self
                .collector
                .started_at()
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)),
            summary: self.collector.summary(),
            specs: specs
                .iter()
                .map(|spec| SpecEntry {
                    info: spec.info,
                    finished: spec.finished,
                    report: &spec.report,
                    retries: spec.retries,
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&document).map_err(io::Error::other)?;
        text.push('\n');
        Ok(text)
    }
}

impl Reporter for JsonReporter {
    fn on_event(&mut self, event: &RunEvent) -> io::Result<()> {
        self.collector.on_event(event);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.written {
            return Ok(());
        }
        let text = self.render()?;
        self.written = true;
        self.sink.write(text.as_bytes())
    }
}
