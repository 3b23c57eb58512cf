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
}

impl SourceFile {
    /// A source from text, for tests and for stdin.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>, format: Format) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
            format,
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
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(before.chars().count(), |nl| {
            before[nl + 1..].chars().count()
        }) + 1;
        (line, col)
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
        assert_eq!(src.offset_of(2, 2), 4);
        assert_eq!(src.offset_of(3, 1), 8);
        assert_eq!(Format::from_path(Path::new("x/y.yml")), Some(Format::Yaml));
    }
}
