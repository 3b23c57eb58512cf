//! The file reports of a run (JUnit, JSON, Markdown), written from one
//! record of its events: each step's report is kept (spilled) once,
//! whatever the number of files.

use std::fmt;
use std::io;
use std::path::PathBuf;

use planrun_runner::events::RunEvent;

use crate::Reporter;
use crate::collect::RunCollector;
use crate::sink::Sink;

/// The format of a file report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// JUnit XML (see [`crate::JunitReporter`]).
    Junit,
    /// The JSON document (see [`crate::JsonReporter`]).
    Json,
    /// A Markdown summary (see [`crate::MarkdownReporter`]).
    Markdown,
}

/// Writes every file report asked for when the run is over, from one
/// collection of the run's events: the same documents as the reporters of
/// each format, at the cost of one.
#[derive(Debug, Default)]
pub struct FileReports {
    collector: RunCollector,
    files: Vec<(FileFormat, Sink)>,
    written: bool,
}

impl FileReports {
    /// No file yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also writes a report in `format` to `path` (parent directories
    /// created), replacing the file.
    pub fn add(&mut self, format: FileFormat, path: impl Into<PathBuf>) {
        self.files.push((format, Sink::path(path)));
    }

    /// Also writes a Markdown report to the end of the file at `path`, as
    /// GitHub asks for `$GITHUB_STEP_SUMMARY`.
    pub fn add_appending_markdown(&mut self, path: impl Into<PathBuf>) {
        self.files.push((
            FileFormat::Markdown,
            Sink::Path {
                path: path.into(),
                append: true,
            },
        ));
    }

    /// One file in `format` to `sink`: what each single-format reporter is.
    pub(crate) fn one(format: FileFormat, sink: Sink) -> Self {
        Self {
            files: vec![(format, sink)],
            ..Self::default()
        }
    }

    /// What was collected so far (for rendering to a string).
    pub(crate) fn collector(&self) -> &RunCollector {
        &self.collector
    }

    /// Whether no file was asked for.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl Reporter for FileReports {
    fn on_event(&mut self, event: &RunEvent) -> io::Result<()> {
        self.collector.on_event(event);
        Ok(())
    }

    /// Writes every file, even when one fails; the error names each that
    /// did.
    fn finish(&mut self) -> io::Result<()> {
        if self.written {
            return Ok(());
        }
        self.written = true;
        let collector = &self.collector;
        let mut failed: Vec<io::Error> = Vec::new();
        for (format, sink) in &mut self.files {
            let written = match format {
                FileFormat::Junit => {
                    sink.write_with(|out| crate::junit::write_document(collector, out))
                }
                FileFormat::Json => {
                    sink.write_with(|out| crate::json::write_document(collector, out))
                }
                FileFormat::Markdown => {
                    let mut text = String::new();
                    crate::markdown::write_document(collector, &mut text)
                        .and_then(|()| sink.write(text.as_bytes()))
                }
            };
            if let Err(e) = written {
                failed.push(e);
            }
        }
        match failed.len() {
            0 => Ok(()),
            1 => Err(failed.remove(0)),
            _ => Err(io::Error::other(Joined(failed))),
        }
    }
}

/// Several errors as one message.
#[derive(Debug)]
struct Joined(Vec<io::Error>);

impl fmt::Display for Joined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Joined {}
