//! A spec file's text, name and format: what every diagnostic points into.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::NamedSource;

/// The two spec formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// TOML 1.0.
    Toml,
    /// YAML 1.2.
    Yaml,
}

impl Format {
    /// The format of a path by its extension (`.toml`, `.yaml`, `.yml`).
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }

    /// The language name miette uses for highlighting.
    pub fn language(self) -> &'static str {
        match self {
            Format::Toml => "toml",
            Format::Yaml => "yaml",
        }
    }
}

/// A spec file held in memory.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it (used in messages).
    pub path: PathBuf,
    /// The whole text.
    pub text: Arc<str>,
    /// How to read it.
    pub format: Format,
    /// Where each line starts, found on first use: reports locate
    /// thousands of spans in one file.
    lines: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    /// A source from text, for tests and for stdin.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>, format: Format) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
            format,
            lines: std::sync::OnceLock::new(),
        }
    }

    /// The name shown in messages.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// The directory the file is in (`.` for a bare file name): relative
    /// paths in the spec, and the search for `planrun.toml`, start there.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The source in the form miette renders.
    pub fn named(&self) -> NamedSource<Arc<str>> {
        NamedSource::new(self.name(), Arc::clone(&self.text)).with_language(self.format.language())
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self.lines.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        // the last line starting at or before the offset
        let line = starts.partition_point(|&start| start <= offset);
        let start = starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }

    /// The byte offset of a 1-based line and column (column counted in chars).
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let mut offset = 0;
        for (i, text_line) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let chars = text_line
                    .char_indices()
                    .nth(col.saturating_sub(1))
                    .map_or(text_line.len(), |(b, _)| b);
                return offset + chars;
            }
            offset += text_line.len();
        }
        self.text.len()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_and_back() {
        let src = SourceFile::new("a.toml", "ab\ncdé\nf", Format::Toml);
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(4), (2, 2));
        // just after a newline, at the end, past the end, inside a character
        assert_eq!(src.line_col(3), (2, 1));
        assert_eq!(src.line_col(8), (3, 1));
        assert_eq!(src.line_col(9), (3, 2));
        assert_eq!(src.line_col(99), (3, 2));
        assert_eq!(src.line_col(5), (2, 3));
        assert_eq!(src.line_col(6), (2, 3));
        assert_eq!(src.line_col(7), (2, 4));
        assert_eq!(src.offset_of(2, 2), 4);
        assert_eq!(src.offset_of(3, 1), 8);
        assert_eq!(Format::from_path(Path::new("x/y.yml")), Some(Format::Yaml));
    }
}
