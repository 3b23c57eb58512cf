//! A spec file's text, name and format: what every diagnostic points into.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

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
    /// Where each line starts, found once when a snippet is first shown.
    lines: OnceLock<Vec<usize>>,
    /// The text as snippets show it (see [`SourceFile::shown`]).
    shown: OnceLock<Arc<str>>,
}

impl SourceFile {
    /// A source from text, for tests and for stdin.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>, format: Format) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
            format,
            lines: OnceLock::new(),
            shown: OnceLock::new(),
        }
    }

    /// The text as snippets show it: every control character but line
    /// breaks and tabs stands as a character of the same length (`?` for
    /// one byte, `¿` for two), so that a spec never moves a terminal's
    /// cursor or colours it, and every span still fits.
    pub fn shown(&self) -> &Arc<str> {
        self.shown.get_or_init(|| {
            let hidden = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t');
            if !self.text.chars().any(hidden) {
                return Arc::clone(&self.text);
            }
            self.text
                .chars()
                .map(|c| match c {
                    c if hidden(c) && c.len_utf8() == 1 => '?',
                    c if hidden(c) => '¿',
                    c => c,
                })
                .collect::<String>()
                .into()
        })
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

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self.line_starts();
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

/// The largest spec file planrun reads, 8 MiB: far past any written by
/// hand, and small enough that planning it stays within memory (a planned
/// step takes some 60 times the bytes of its text).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Reads a spec file's text. A file over [`MAX_FILE_BYTES`] is refused
/// before it is read whole, and one that is not UTF-8 is named as such;
/// the error's text completes "cannot read `path`: ".
pub(crate) fn read_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "it is larger than {} MiB, the most planrun reads of a spec file",
            MAX_FILE_BYTES / 1024 / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].split(|b| *b == b'\n').count();
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is not UTF-8 text (an invalid byte on line {line}, at byte {at})"),
        )
    })
}

impl SourceFile {
    /// The byte offset where each line starts; a line ends at LF, CR LF or a
    /// lone CR, as miette counts lines.
    fn line_starts(&self) -> &[usize] {
        self.lines.get_or_init(|| {
            let bytes = self.text.as_bytes();
            let mut starts = vec![0];
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'\n' => starts.push(i + 1),
                    b'\r' => {
                        if bytes.get(i + 1) == Some(&b'\n') {
                            i += 1;
                        }
                        starts.push(i + 1);
                    }
                    _ => {}
                }
                i += 1;
            }
            starts
        })
    }
}

/// Snippets as miette's own reading of the text gives them, but read from a
/// few lines around the span rather than from the start of the file: with
/// many problems in a large file, each costs its own lines, not the file.
impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let starts = self.line_starts();
        let len = self.text.len();
        if span.offset() > len {
            return Err(MietteError::OutOfBounds);
        }
        let line_of = |offset: usize| starts.partition_point(|&s| s <= offset) - 1;
        // a line more on each side than miette reads, so that its scan of
        // the window stops where its scan of the whole file would
        let first = line_of(span.offset()).saturating_sub(context_lines_before + 1);
        let last = line_of((span.offset() + span.len()).min(len)) + context_lines_after + 2;
        let (from, to) = (starts[first], starts.get(last).copied().unwrap_or(len));
        let window = &self.shown().as_bytes()[from..to];
        let local = SourceSpan::new((span.offset() - from).into(), span.len());
        let contents = window.read_span(&local, context_lines_before, context_lines_after)?;
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.name(),
                contents.data(),
                SourceSpan::new(
                    (contents.span().offset() + from).into(),
                    contents.span().len(),
                ),
                contents.line() + first,
                contents.column(),
                contents.line_count() + first,
            )
            .with_language(self.format.language()),
        ))
    }
}

/// Text for a terminal: control characters but line breaks and tabs
/// written as escapes (`\u{1b}`), so that a value from a spec or a server
/// never moves the cursor or colours the text it is quoted in.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| c.is_control() && !matches!(c, '\n' | '\t');
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
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

    #[test]
    fn files_too_large_or_not_utf8_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().expect("tmp");
        let big = dir.path().join("big.toml");
        let file = std::fs::File::create(&big).expect("create");
        file.set_len(MAX_FILE_BYTES + 1).expect("sparse file");
        let err = read_text(&big).expect_err("too large");
        assert_eq!(
            err.to_string(),
            "it is larger than 8 MiB, the most planrun reads of a spec file"
        );
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, b"id = \"a\"\nx = \"\xff\"\n").expect("write");
        let err = read_text(&bad).expect_err("not UTF-8");
        assert_eq!(
            err.to_string(),
            "it is not UTF-8 text (an invalid byte on line 2, at byte 14)"
        );
    }

    /// miette's own reading of the whole text, and the file's reading of a
    /// window, give the same snippet of a span within the text (past its
    /// end miette may panic; the file says `OutOfBounds`).
    fn same_snippet(text: &str, offset: usize, len: usize, context: usize) {
        let offset = offset.min(text.len());
        let len = len.min(text.len() - offset);
        let file = SourceFile::new("a.toml", text, Format::Toml);
        let span = SourceSpan::new(offset.into(), len);
        let whole = text.read_span(&span, context, context);
        let window = file.read_span(&span, context, context);
        match (whole, window) {
            (Ok(a), Ok(b)) => {
                let at = format!("{text:?} at {offset}+{len}, {context} lines");
                assert_eq!(a.data(), b.data(), "{at}");
                assert_eq!(a.span(), b.span(), "{at}");
                assert_eq!(a.line(), b.line(), "{at}");
                assert_eq!(a.column(), b.column(), "{at}");
                assert_eq!(a.line_count(), b.line_count(), "{at}");
                assert_eq!(b.name(), Some("a.toml"));
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!(
                "{text:?} at {offset}+{len}: {:?} vs {:?}",
                a.is_ok(),
                b.is_ok()
            ),
        }
    }

    #[test]
    fn a_span_past_the_end_is_out_of_bounds() {
        let file = SourceFile::new("a.toml", "a\n", Format::Toml);
        for context in 0..3 {
            assert!(
                file.read_span(&SourceSpan::new(3.into(), 0), context, context)
                    .is_err()
            );
        }
    }

    #[test]
    fn snippets_from_a_window_are_miettes_snippets() {
        let texts = [
            "",
            "a",
            "\n",
            "ab\ncd\n",
            "a\r\nb\r\n\r\nc",
            "x\ry\rz",
            "\n\n\na\n\n\n",
            "one\ntwo\r\nthree\rfour\n\nsix é\nseven",
            "\r\n\r",
            "a\n\rb\r\r\nc\n",
        ];
        for text in texts {
            for offset in 0..=text.len() {
                for len in 0..=text.len() - offset {
                    for context in 0..3 {
                        same_snippet(text, offset, len, context);
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn snippets_of_any_text_are_miettes_snippets(
            text in "[ab\\r\\n]{0,40}", offset in 0usize..45, len in 0usize..12, context in 0usize..4,
        ) {
            same_snippet(&text, offset, len, context);
        }
    }
}
