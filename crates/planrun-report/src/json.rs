//! The machine-readable report: one JSON document with every spec's
//! description and report, written when the run is over.
//!
//! The shape is the runner's event types as they serialize, wrapped in a
//! small versioned envelope; bump [`JSON_FORMAT_VERSION`] when it changes
//! incompatibly. The one addition is where spans are: besides the byte
//! offsets `start` and `end`, each span says its line and column, which is
//! what a reader of the spec looks for. This module renders and writes,
//! nothing else.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use planrun_runner::events::{RunEvent, RunSummary, SpecInfo, StepReport};
use planrun_spec::source::SourceFile;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::Reporter;
use crate::collect::{FinalSpec, Retry, RunCollector};
use crate::files::{FileFormat, FileReports};
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
///   "specs": [ { "info": { "id": "TC-003", … }, "finished": true, "report": { "status": "failed", "counts": { "passed": 1, "failed": 1, … }, "steps": […] }, "retries": [] } ]
/// }
/// ```
///
/// Durations are milliseconds. A spec the run never finished has
/// `"finished": false` and a cancelled report holding the steps that did.
///
/// A span in the spec (of an expectation, or of a step error) is
/// `{"start": 120, "end": 139, "line": 7, "column": 1, "end_line": 7,
/// "end_column": 20}`: byte offsets, then 1-based lines and columns (in
/// characters) of its first character and of the place just after its last.
#[derive(Debug)]
pub struct JsonReporter {
    files: FileReports,
}

#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    planrun: &'static str,
    started_at: Option<String>,
    summary: RunSummary,
    specs: Specs<'a>,
}

/// Every spec of the run, each read back from the collector as it is
/// written.
struct Specs<'a>(&'a RunCollector);

impl Serialize for Specs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        // the serializer's own error, kept while `each_spec` sees an io::Error
        let mut failed = None;
        let read = self.0.each_spec(|spec| {
            let entry = SpecEntry {
                info: spec.info,
                finished: spec.finished,
                report: Located(spec),
                retries: spec.retries,
            };
            seq.serialize_element(&entry).map_err(|e| {
                failed = Some(e);
                io::Error::other("the JSON report could not be written")
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        read.map_err(S::Error::custom)?;
        seq.end()
    }
}

#[derive(Serialize)]
struct SpecEntry<'a, 'b> {
    info: &'a SpecInfo,
    finished: bool,
    report: Located<'a, 'b>,
    retries: &'a [Retry],
}

/// A spec's report as the runner serializes it, with its steps' reports
/// (read back one at a time as they are written), their spans given line
/// and column.
struct Located<'a, 'b>(&'b FinalSpec<'a>);

impl Serialize for Located<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Value::Object(head) =
            serde_json::to_value(&*self.0.report).map_err(serde::ser::Error::custom)?
        else {
            return Err(serde::ser::Error::custom("a spec report is a JSON object"));
        };
        let mut map = serializer.serialize_map(Some(head.len() + 1))?;
        for (key, value) in &head {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("steps", &LocatedSteps(self.0))?;
        map.end()
    }
}

/// The steps of a spec's report, located one by one as they are written.
struct LocatedSteps<'a, 'b>(&'b FinalSpec<'a>);

impl Serialize for LocatedSteps<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let spec = self.0;
        let info = spec.info;
        let mut seq = serializer.serialize_seq(Some(spec.steps()))?;
        // the serializer's own error, kept while `each_step` sees an io::Error
        let mut failed = None;
        let read = spec.each_step(|step| {
            let written = match located_step(step, info) {
                Ok(value) => seq.serialize_element(&value),
                Err(e) => Err(S::Error::custom(e)),
            };
            written.map_err(|e| {
                failed = Some(e);
                io::Error::other("the JSON report could not be written")
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        read.map_err(S::Error::custom)?;
        seq.end()
    }
}

/// A step's report as a document whose spans say line and column.
fn located_step(step: &StepReport, info: &SpecInfo) -> serde_json::Result<Value> {
    let mut value = serde_json::to_value(step)?;
    // a step of an included file: its spans point into that file
    let source = info.source_of(step.index);
    let file = (!Arc::ptr_eq(source, &info.source)).then(|| source.name());
    locate_step(&mut value, source, file.as_deref());
    // a repeated step's failed iterations carry reports of their own
    let failures = value
        .get_mut("iterations")
        .and_then(|i| i.get_mut("failures"))
        .and_then(Value::as_array_mut)
        .map(Vec::as_mut_slice)
        .unwrap_or_default();
    for failure in failures {
        if let Some(report) = failure.get_mut("report") {
            locate_step(report, source, file.as_deref());
        }
    }
    Ok(value)
}

/// Locates the spans of a serialized step report: its expectations' and
/// its error's.
fn locate_step(step: &mut Value, source: &SourceFile, file: Option<&str>) {
    let outcomes = step
        .get_mut("expectations")
        .and_then(Value::as_array_mut)
        .map(Vec::as_mut_slice)
        .unwrap_or_default();
    for outcome in outcomes {
        if let Some(span) = outcome.get_mut("span") {
            locate(span, source, file);
        }
    }
    if let Some(span) = step.get_mut("error").and_then(|e| e.get_mut("span")) {
        locate(span, source, file);
    }
}

/// Adds `line`, `column`, `end_line` and `end_column` to a serialized span
/// (`{"start": …, "end": …}`); anything else is left as it is.
/// Adds line and column to a span; `file` names the file it points into
/// when that is not the spec (a file the spec includes).
fn locate(span: &mut Value, source: &SourceFile, file: Option<&str>) {
    let Value::Object(span) = span else {
        return;
    };
    let offset = |key: &str| {
        span.get(key)
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
    };
    let (Some(start), Some(end)) = (offset("start"), offset("end")) else {
        return;
    };
    let (line, column) = source.line_col(start);
    let (end_line, end_column) = source.line_col(end);
    span.insert(String::from("line"), line.into());
    span.insert(String::from("column"), column.into());
    span.insert(String::from("end_line"), end_line.into());
    span.insert(String::from("end_column"), end_column.into());
    if let Some(file) = file {
        span.insert(String::from("file"), file.into());
    }
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
            files: FileReports::one(FileFormat::Json, sink),
        }
    }

    /// The document for what has happened so far, pretty-printed.
    pub fn render(&self) -> io::Result<String> {
        let mut out = Vec::new();
        write_document(self.files.collector(), &mut out)?;
        String::from_utf8(out).map_err(io::Error::other)
    }
}

/// Writes the document for what has happened so far, pretty-printed, as it
/// is rendered.
pub(crate) fn write_document(collector: &RunCollector, out: &mut dyn Write) -> io::Result<()> {
    let document = Document {
        version: JSON_FORMAT_VERSION,
        planrun: env!("CARGO_PKG_VERSION"),
        started_at: collector
            .started_at()
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)),
        summary: collector.summary(),
        specs: Specs(collector),
    };
    serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

impl Reporter for JsonReporter {
    fn on_event(&mut self, event: &RunEvent) -> io::Result<()> {
        self.files.on_event(event)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.files.finish()
    }
}
