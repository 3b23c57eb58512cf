//! Where a file reporter's document goes: a path, or any writer.
//!
//! File reporters render their document at `finish`; this module only
//! puts the bytes in place.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

/// A destination for a rendered document.
pub(crate) enum Sink {
    /// A file, created with its parent directories.
    Path {
        /// The file.
        path: PathBuf,
        /// Add to the end instead of replacing (`$GITHUB_STEP_SUMMARY`).
        append: bool,
    },
    /// Any writer (stdout, a buffer in tests).
    Writer(Box<dyn Write + Send>),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Path { path, append } => f
                .debug_struct("Path")
                .field("path", path)
                .field("append", append)
                .finish(),
            Sink::Writer(_) => f.write_str("Writer"),
        }
    }
}

impl Sink {
    pub(crate) fn path(path: impl Into<PathBuf>) -> Self {
        Sink::Path {
            path: path.into(),
            append: false,
        }
    }

    /// Writes the document, with the path in the message of any error.
    pub(crate) fn write(&mut self, document: &[u8]) -> io::Result<()> {
        self.write_with(|out| out.write_all(document))
    }

    /// Writes the document `render` writes, as it writes it (buffered), so
    /// that a large document is never held whole; the path is in the
    /// message of any error.
    pub(crate) fn write_with(
        &mut self,
        render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            Sink::Path { path, append } => {
                let with_path =
                    |e: io::Error| io::Error::new(e.kind(), format!("`{}`: {e}", path.display()));
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent).map_err(with_path)?;
                }
                let file = fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(*append)
                    .truncate(!*append)
                    .open(&*path)
                    .map_err(with_path)?;
                let mut out = io::BufWriter::new(file);
                render(&mut out).map_err(with_path)?;
                out.flush().map_err(with_path)
            }
            Sink::Writer(writer) => {
                let mut out = io::BufWriter::new(writer);
                render(&mut out)?;
                out.flush()
            }
        }
    }
}
