//! Reads TOML and YAML text into one spanned [`Value`] tree.
//!
//! TOML goes through `toml`'s spanned document model; YAML through
//! `serde-saphyr`'s `Spanned`. Both end as the same tree, so everything after
//! this module is format-blind.

use std::borrow::Cow;
#[cfg(test)]
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::de::{DeTable, DeValue};

use crate::error::{Diagnostic, DiagnosticKind};
use crate::source::{Format, SourceFile};
use crate::value::{Key, Span, Value, ValueKind};

/// Parses a source file into a value tree, or a syntax diagnostic.
pub fn parse_source(source: &SourceFile) -> Result<Value, Diagnostic> {
    match source.format {
        Format::Toml => parse_toml(&source.text),
        Format::Yaml => parse_yaml(source),
    }
}

/// Parses TOML text.
pub fn parse_toml(text: &str) -> Result<Value, Diagnostic> {
    parse_toml_at(text, &Pieces::at(0))
}

/// Parses TOML text made of pieces of a file: every span is moved to where
/// its piece stands in the file.
fn parse_toml_at(text: &str, at: &Pieces) -> Result<Value, Diagnostic> {
    match DeTable::parse(text) {
        Ok(table) => {
            let span = at.span(table.span());
            Ok(Value::new(toml_table(table.into_inner(), at), span))
        }
        Err(err) => {
            let err_span = err.span().map(|s| at.span(s));
            let span = err_span.unwrap_or_else(|| at.span(0..0));
            let message = err.message().trim().to_string();
            Err(Diagnostic::new(
                DiagnosticKind::Syntax,
                span,
                format!("invalid TOML: {}", first_line(&message)),
            )
            .label(first_line(&message))
            .help(
                "check the TOML syntax at this point (quotes, brackets, `=` between key and value)",
            ))
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

/// Where the pieces of a text read on its own stand in their file: each
/// piece's start in the text and in the file, in order.
struct Pieces(Vec<(usize, usize)>);

impl Pieces {
    /// One piece that stands at byte `at` of its file.
    fn at(at: usize) -> Self {
        Self(vec![(0, at)])
    }

    fn offset(&self, at: usize) -> usize {
        let i = self
            .0
            .partition_point(|&(start, _)| start <= at)
            .saturating_sub(1);
        let (start, file) = self.0.get(i).copied().unwrap_or_default();
        file + (at - start.min(at))
    }

    fn span(&self, span: Span) -> Span {
        self.offset(span.start)..self.offset(span.end).max(self.offset(span.start))
    }
}

fn toml_table(table: DeTable<'_>, at: &Pieces) -> ValueKind {
    ValueKind::Map(
        table
            .into_iter()
            .map(|(k, v)| {
                let key = Key {
                    span: at.span(k.span()),
                    name: k.into_inner().into_owned(),
                };
                let span = at.span(v.span());
                (key, Value::new(toml_value(v.into_inner(), at), span))
            })
            .collect(),
    )
}

fn toml_value(value: DeValue<'_>, at: &Pieces) -> ValueKind {
    match value {
        DeValue::String(s) => ValueKind::Str(s.into_owned()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i64::from_str_radix(&digits, i.radix()) {
                Ok(n) => ValueKind::Int(n),
                Err(_) => ValueKind::Str(i.to_string()),
            }
        }
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            let n = match text.trim_start_matches('+') {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "-nan" => f64::NAN,
                other => other.parse().unwrap_or(f64::NAN),
            };
            ValueKind::Float(n)
        }
        DeValue::Boolean(b) => ValueKind::Bool(b),
        DeValue::Datetime(d) => ValueKind::Str(d.to_string()),
        DeValue::Array(items) => ValueKind::Seq(
            items
                .into_iter()
                .map(|v| {
                    let span = at.span(v.span());
                    Value::new(toml_value(v.into_inner(), at), span)
                })
                .collect(),
        ),
        DeValue::Table(t) => toml_table(t, at),
    }
}

/// A TOML spec read a step at a time: the file's other keys as one tree,
/// and where each `[[steps]]` table stands (its header, its keys and the
/// `[steps.…]` tables under it). Each step is parsed when it is lowered,
/// and again when it runs, so a spec of many steps never holds the trees
/// of them all.
pub(crate) struct TomlSteps {
    /// The file without its steps (their bytes blanked, so spans hold).
    pub(crate) rest: Value,
    /// Each step's bytes, in file order.
    pub(crate) steps: Vec<Span>,
}

/// Reads a TOML spec a step at a time when it has at least `min_steps`
/// `[[steps]]` tables and is valid TOML read so: the same tree as a whole
/// read, without holding it. `None` when the spec must be read whole: a
/// short spec, steps written another way (`steps = [ … ]`), or any syntax
/// problem (the whole read reports it, located as usual).
pub(crate) fn toml_steps(text: &str, min_steps: usize) -> Option<TomlSteps> {
    let steps = step_tables(text)?;
    if steps.len() < min_steps {
        return None;
    }
    // the rest: the text between the steps, each piece starting a line
    let mut rest = String::new();
    let mut pieces = Vec::new();
    let mut from = 0;
    for span in steps
        .iter()
        .chain(std::iter::once(&(text.len()..text.len())))
    {
        if span.start > from {
            pieces.push((rest.len(), from));
            rest.push_str(text.get(from..span.start)?);
        }
        from = span.end;
    }
    let rest = parse_toml_at(&rest, &Pieces(pieces)).ok()?;
    // `steps` also written among the other keys: the whole read says how
    if rest.get("steps").is_some() {
        return None;
    }
    // every step must read on its own, or the whole file is read
    for span in &steps {
        toml_step(text, span).ok()?;
    }
    Some(TomlSteps { rest, steps })
}

/// The step whose `[[steps]]` table stands at `span` of `text`.
pub(crate) fn toml_step(text: &str, span: &Span) -> Result<Value, Diagnostic> {
    let table = parse_toml_at(
        text.get(span.clone()).unwrap_or_default(),
        &Pieces::at(span.start),
    )?;
    let mut steps = match table.kind {
        ValueKind::Map(entries) => entries.into_iter().find(|(k, _)| k.name == "steps"),
        _ => None,
    };
    match steps.as_mut().map(|(_, v)| &mut v.kind) {
        Some(ValueKind::Seq(items)) if items.len() == 1 => Ok(items.remove(0)),
        _ => Err(Diagnostic::new(
            DiagnosticKind::Syntax,
            span.clone(),
            "this step no longer reads as one `[[steps]]` table",
        )),
    }
}

/// Where each `[[steps]]` table of a TOML text stands, found by its table
/// headers; `None` when a header under `steps` is not one of a step's.
fn step_tables(text: &str) -> Option<Vec<Span>> {
    use toml_parser::lexer::TokenKind as T;
    let mut tokens = toml_parser::Source::new(text).lex().peekable();
    let mut steps: Vec<Span> = Vec::new();
    // the step whose table is open: later `[steps.…]` headers belong to it
    let mut open: Option<usize> = None;
    let mut depth = 0usize;
    let mut line_start = true;
    while let Some(token) = tokens.next() {
        match token.kind() {
            T::Whitespace | T::Comment => {}
            T::Newline => line_start |= depth == 0,
            T::LeftSquareBracket if depth == 0 && line_start => {
                let start = token.span().start();
                let array = tokens
                    .next_if(|t| t.kind() == T::LeftSquareBracket)
                    .is_some();
                let mut path: Vec<&str> = Vec::new();
                loop {
                    let t = tokens.next()?;
                    let raw = &text[t.span().start()..t.span().end()];
                    match t.kind() {
                        T::Whitespace | T::Dot => {}
                        T::Atom => path.push(raw),
                        T::LiteralString => path.push(raw.get(1..raw.len() - 1)?),
                        T::BasicString if !raw.contains('\\') => {
                            path.push(raw.get(1..raw.len() - 1)?);
                        }
                        T::RightSquareBracket => break,
                        _ => return None,
                    }
                }
                if array {
                    tokens.next_if(|t| t.kind() == T::RightSquareBracket)?;
                }
                line_start = false;
                let under_steps = path.first() == Some(&"steps");
                if let Some(k) = open.take() {
                    steps[k].end = start;
                    if under_steps && path.len() > 1 {
                        open = Some(k);
                    }
                }
                if under_steps && open.is_none() {
                    // a new step, or a header under `steps` that is no step's
                    if !(array && path.len() == 1) {
                        return None;
                    }
                    open = Some(steps.len());
                    steps.push(start..text.len());
                }
            }
            T::LeftSquareBracket | T::LeftCurlyBracket => {
                depth += 1;
                line_start = false;
            }
            T::RightSquareBracket | T::RightCurlyBracket => {
                depth = depth.saturating_sub(1);
                line_start = false;
            }
            T::Eof => break,
            _ => line_start = false,
        }
    }
    if let Some(k) = open {
        steps[k].end = text.len();
    }
    Some(steps)
}

/// Parses YAML text (the first document).
pub(crate) fn parse_yaml(source: &SourceFile) -> Result<Value, Diagnostic> {
    if source.text.trim().is_empty() {
        return Ok(Value::new(ValueKind::Map(Vec::new()), 0..0));
    }
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    match serde_saphyr::from_str_with_options::<YamlNode>(&source.text, options) {
        Ok(node) => Ok(node.resolve(source)),
        Err(err) => {
            let span = err.location().map_or(0..0, |loc| {
                let start = loc.span().byte_offset().map_or_else(
                    || source.offset_of(loc.line() as usize, loc.column() as usize),
                    |b| b as usize,
                );
                one_char(&source.text, start)
            });
            if let Some(message) = yaml_limit(&err) {
                return Err(Diagnostic::new(
                    DiagnosticKind::Syntax,
                    span,
                    format!("YAML too large: {message}"),
                )
                .label("here")
                .help("planrun reads YAML within limits that stop documents that grow without bound (alias bombs, deep nesting): write the values out, or split the spec"));
            }
            let message = yaml_message(&err.to_string());
            Err(Diagnostic::new(
                DiagnosticKind::Syntax,
                span,
                format!("invalid YAML: {message}"),
            )
            .label(message)
            .help("check the indentation and the `key: value` layout at this point"))
        }
    }
}

/// The span of the character at byte `at` (of the one it falls in), or an
/// empty span at the end of the text.
fn one_char(text: &str, at: usize) -> Span {
    let mut start = at.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let len = text[start..].chars().next().map_or(0, char::len_utf8);
    start..start + len
}

/// What a YAML error that stops a document at one of the reader's limits
/// says, in words.
fn yaml_limit(err: &serde_saphyr::Error) -> Option<String> {
    use serde_saphyr::budget::BudgetBreach;
    let budget = serde_saphyr::Budget::default();
    // the error may come wrapped with the alias it was read through
    let mut err = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = err
    {
        err = error;
    }
    if let serde_saphyr::Error::Budget { breach, .. } = err {
        return Some(match breach {
            BudgetBreach::Depth { .. } => {
                format!("it nests deeper than {} levels", budget.max_depth)
            }
            BudgetBreach::Nodes { .. } => format!(
                "it holds more than {} values, aliases expanded",
                budget.max_nodes
            ),
            BudgetBreach::Aliases { .. } | BudgetBreach::AliasAnchorRatio { .. } => {
                String::from("its aliases repeat anchors too often")
            }
            other => format!("it passes a limit of the YAML reader ({other:?})"),
        });
    }
    err.to_string()
        .contains("recursion limit exceeded")
        .then(|| String::from("its brackets or braces nest too deep"))
}

/// serde-saphyr's message carries its own location and snippet; keep the words.
fn yaml_message(text: &str) -> String {
    let line = first_line(text);
    let line = line.split(" at line ").next().unwrap_or(&line);
    line.trim().trim_start_matches("error: ").to_string()
}

/// A YAML node as read, with saphyr's location still unresolved to bytes.
struct YamlNode {
    kind: YamlKind,
    loc: Option<serde_saphyr::Location>,
}

enum YamlKind {
    Scalar(ValueKind),
    Seq(Vec<YamlNode>),
    Map(Vec<(YamlNode, YamlNode)>),
}

impl YamlNode {
    fn span(&self, source: &SourceFile) -> Span {
        let Some(loc) = self.loc else { return 0..0 };
        let span = loc.span();
        if let (Some(start), Some(len)) = (span.byte_offset(), span.byte_len()) {
            start as usize..(start + len) as usize
        } else {
            let start = source.offset_of(loc.line() as usize, loc.column() as usize);
            start..start + span.len() as usize
        }
    }

    fn resolve(self, source: &SourceFile) -> Value {
        let span = self.span(source);
        let kind = match self.kind {
            YamlKind::Scalar(kind) => kind,
            YamlKind::Seq(items) => {
                ValueKind::Seq(items.into_iter().map(|n| n.resolve(source)).collect())
            }
            YamlKind::Map(entries) => ValueKind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let key_span = k.span(source);
                        let name = match k.kind {
                            YamlKind::Scalar(ValueKind::Str(s)) => s,
                            YamlKind::Scalar(ValueKind::Int(i)) => i.to_string(),
                            YamlKind::Scalar(ValueKind::Float(f)) => f.to_string(),
                            YamlKind::Scalar(ValueKind::Bool(b)) => b.to_string(),
                            YamlKind::Scalar(ValueKind::Null) => String::from("null"),
                            _ => String::from("<complex key>"),
                        };
                        (
                            Key {
                                name,
                                span: key_span,
                            },
                            v.resolve(source),
                        )
                    })
                    .collect(),
            ),
        };
        // saphyr gives collections a zero-length span at their start; widen it
        // to the first child so a label has something to underline.
        let span = if span.is_empty() {
            one_char(&source.text, span.start)
        } else {
            span
        };
        Value::new(kind, span)
    }
}

impl<'de> Deserialize<'de> for YamlNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<YamlInner>::deserialize(d)?;
        Ok(YamlNode {
            kind: spanned.value.0,
            loc: Some(spanned.referenced),
        })
    }
}

struct YamlInner(YamlKind);

impl<'de> Deserialize<'de> for YamlInner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YamlVisitor).map(YamlInner)
    }
}

struct YamlVisitor;

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = YamlKind;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<YamlKind, E> {
        Ok(YamlKind::Scalar(ValueKind::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<YamlKind, E> {
        Ok(YamlKind::Scalar(ValueKind::Int(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<YamlKind, E> {
        Ok(YamlKind::Scalar(match i64::try_from(v) {
            Ok(i) => ValueKind::Int(i),
            Err(_) => ValueKind::Str(v.to_string()),
        }))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<YamlKind, E> {
        Ok(YamlKind::Scalar(ValueKind::Float(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<YamlKind, E> {
        Ok(YamlKind::Scalar(ValueKind::Str(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<YamlKind, E> {
        Ok(YamlKind::Scalar(ValueKind::Str(v)))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<YamlKind, E> {
        Ok(YamlKind::Scalar(ValueKind::Str(
            Cow::Borrowed(v).into_owned(),
        )))
    }

    fn visit_unit<E: de::Error>(self) -> Result<YamlKind, E> {
        Ok(YamlKind::Scalar(ValueKind::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<YamlKind, E> {
        Ok(YamlKind::Scalar(ValueKind::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<YamlKind, D::Error> {
        d.deserialize_any(YamlVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YamlKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<YamlNode>()? {
            items.push(item);
        }
        Ok(YamlKind::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlKind, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<YamlNode, YamlNode>()? {
            entries.push((k, v));
        }
        Ok(YamlKind::Map(entries))
    }
}

#[cfg(any(test, feature = "fuzzing"))]
/// The tree a step-at-a-time read gives, put together: the rest with
/// `steps` placed where the whole read has it.
pub(crate) fn streamed_whole(text: &str) -> Option<(Value, Value)> {
    let streamed = toml_steps(text, 0)?;
    let whole = parse_toml(text).expect("a file that reads in steps reads whole");
    let steps: Vec<Value> = streamed
        .steps
        .iter()
        .map(|span| toml_step(text, span).expect("each step reads"))
        .collect();
    let mut entries = streamed.rest.as_map().expect("a table").to_vec();
    if let Some(ValueKind::Map(whole_entries)) = Some(&whole.kind)
        && let Some(at) = whole_entries.iter().position(|(k, _)| k.name == "steps")
    {
        let (key, value) = &whole_entries[at];
        entries.insert(
            at.min(entries.len()),
            (
                key.clone(),
                Value::new(ValueKind::Seq(steps), value.span.clone()),
            ),
        );
    }
    Some((
        Value::new(ValueKind::Map(entries), whole.span.clone()),
        whole,
    ))
}

/// A TOML text read a step at a time gives the tree of a whole read.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn check_read_in_steps(text: &str) {
    if let Some((parts, whole)) = streamed_whole(text) {
        // by their debug form: NaN is not equal to itself
        assert_eq!(format!("{parts:?}"), format!("{whole:?}"), "read in steps");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_spec_read_a_step_at_a_time_is_the_tree_of_a_whole_read() {
        // every TOML file of the repository that reads in steps: the same
        // keys, values and spans as a whole read
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        let mut dirs = vec![
            root.join("specs"),
            root.join("examples"),
            root.join("crates"),
        ];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("readable").flatten() {
                let path = entry.path();
                if path.is_dir() && !path.ends_with("target") {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "toml")
                    && path.file_name().is_some_and(|n| n != "Cargo.toml")
                {
                    files.push(path);
                }
            }
        }
        let mut streamed = 0;
        for path in &files {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            if let Some((parts, whole)) = streamed_whole(&text) {
                // by their debug form: NaN is not equal to itself
                assert_eq!(
                    format!("{parts:?}"),
                    format!("{whole:?}"),
                    "{}",
                    path.display()
                );
                streamed += 1;
            }
        }
        assert!(
            streamed >= 20,
            "only {streamed} of {} files read in steps",
            files.len()
        );
    }

    #[test]
    fn step_tables_are_found_by_their_headers_only() {
        let text = concat!(
            "id = \"x\" # [[steps]] in a comment\n",
            "note = \"\"\"\n[[steps]]\nin a string\n\"\"\"\n",
            "list = [\n  [1, 2],\n]\n",
            "[[steps]]\n",
            "id = \"a\"\n",
            "http = { get = \"/a\" }\n",
            "[steps.expect]\n",
            "status = 200\n",
            "[[steps.capture]]\n",
            "[vars]\n",
            "x = 1\n",
            "[[ 'steps' ]]\n",
            "wait = \"1s\"\n",
            "[defaults]\n",
            "timeout = \"5s\"\n",
        );
        let streamed = toml_steps(text, 0).expect("reads in steps");
        let shown: Vec<&str> = streamed.steps.iter().map(|s| &text[s.clone()]).collect();
        assert_eq!(
            shown,
            [
                "[[steps]]\nid = \"a\"\nhttp = { get = \"/a\" }\n[steps.expect]\nstatus = 200\n[[steps.capture]]\n",
                "[[ 'steps' ]]\nwait = \"1s\"\n",
            ]
        );
        let (parts, whole) = streamed_whole(text).expect("reads in steps");
        assert_eq!(parts, whole);
        let rest = &streamed.rest;
        assert_eq!(
            at(text, rest.get("vars").and_then(|v| v.get("x")).expect("x")),
            "1"
        );
        assert_eq!(
            at(
                text,
                rest.get("defaults")
                    .and_then(|v| v.get("timeout"))
                    .expect("timeout")
            ),
            "\"5s\""
        );
    }

    #[test]
    fn a_spec_that_cannot_be_read_a_step_at_a_time_is_read_whole() {
        for text in [
            // steps written as an array
            "steps = [{ wait = \"1s\" }]\n",
            // a table under `steps` before any step
            "[steps.x]\na = 1\n[[steps]]\nwait = \"1s\"\n",
            // `steps` both ways
            "steps = []\n[[steps]]\nwait = \"1s\"\n",
            // a syntax problem, in a step and outside
            "[[steps]]\nwait = \n",
            "id = [\n[[steps]]\nwait = \"1s\"\n",
            // a duplicate key inside one step
            "[[steps]]\nwait = \"1s\"\nwait = \"2s\"\n",
        ] {
            assert!(toml_steps(text, 0).is_none(), "{text}");
        }
        // too few steps to be worth it
        assert!(toml_steps("[[steps]]\nwait = \"1s\"\n", 2).is_none());
    }

    fn at<'a>(text: &'a str, v: &Value) -> &'a str {
        &text[v.span.clone()]
    }

    #[test]
    fn toml_spans_point_at_values_and_keys() {
        let text = "id = \"TC-1\"\n[[steps]]\nhttp = { get = \"/x\" }\nexpect.status = 200\n";
        let v = parse_toml(text).expect("parses");
        assert_eq!(at(text, v.get("id").expect("id")), "\"TC-1\"");
        let steps = v.get("steps").and_then(Value::as_seq).expect("steps");
        let step = &steps[0];
        let status = step
            .get("expect")
            .and_then(|e| e.get("status"))
            .expect("status");
        assert_eq!(status.kind, ValueKind::Int(200));
        assert_eq!(at(text, status), "200");
        let (key, _) = &step.as_map().expect("map")[0];
        assert_eq!(&text[key.span.clone()], "http");
    }

    #[test]
    fn yaml_spans_point_at_values_and_keys() {
        let text = "id: TC-1\nsteps:\n  - http: { get: /x }\n    expect:\n      status: 200\n      ok: yes\n";
        let src = SourceFile::new("a.yaml", text, Format::Yaml);
        let v = parse_yaml(&src).expect("parses");
        assert_eq!(at(text, v.get("id").expect("id")), "TC-1");
        let step = &v.get("steps").and_then(Value::as_seq).expect("steps")[0];
        let status = step
            .get("expect")
            .and_then(|e| e.get("status"))
            .expect("status");
        assert_eq!(status.kind, ValueKind::Int(200));
        assert_eq!(at(text, status), "200");
        let (key, _) = &step.as_map().expect("map")[0];
        assert_eq!(&text[key.span.clone()], "http");
        // YAML 1.2: `yes` is a string
        let ok = step.get("expect").and_then(|e| e.get("ok")).expect("ok");
        assert_eq!(ok.as_str(), Some("yes"));
    }

    #[test]
    fn a_yaml_error_at_a_wide_character_underlines_all_of_it() {
        // found by the `matcher` fuzz target: the span cut a character in
        // two (fuzz/regressions/matcher/yaml-error-span-cuts-a-character)
        let text = "m: {\"len\"\u{fffd}\u{7c4}\u{758} 3}";
        let src = SourceFile::new("a.yaml", text, Format::Yaml);
        let err = parse_yaml(&src).expect_err("bad");
        assert_eq!(&text[err.span.clone()], "\u{fffd}");
        assert_eq!(one_char("aé", 2), 1..3);
        assert_eq!(one_char("a", 5), 1..1);
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = parse_toml("id = \"x\"\nsteps = [\n").expect_err("bad");
        assert_eq!(err.kind, DiagnosticKind::Syntax);
        let src = SourceFile::new("a.yaml", "id: x\nsteps:\n  - a: 1\n   b: 2\n", Format::Yaml);
        let err = parse_yaml(&src).expect_err("bad");
        assert_eq!(err.kind, DiagnosticKind::Syntax);
        assert!(err.span.start > 0, "{err:?}");
    }

    #[test]
    fn yaml_past_the_readers_limits_says_which() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h"])
        {
            let aliases = vec![format!("*{prev}"); 9].join(", ");
            bomb.push_str(name);
            bomb.push_str(&[": &", name, " [", &aliases, "]\n"].concat());
        }
        let src = SourceFile::new("bomb.yaml", bomb, Format::Yaml);
        let err = parse_yaml(&src).expect_err("too large");
        assert_eq!(
            err.message,
            "YAML too large: it holds more than 250000 values, aliases expanded"
        );
        // 64 levels take more than a test thread's 2 MiB of stack in a
        // debug build: the main thread's 8 MiB, as the binary has
        let err = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(|| {
                let deep = format!("x: {}{}", "{a: ".repeat(100), "}".repeat(100));
                parse_yaml(&SourceFile::new("deep.yaml", deep, Format::Yaml)).expect_err("deep")
            })
            .expect("a thread")
            .join()
            .expect("parsed");
        assert_eq!(
            err.message,
            "YAML too large: it nests deeper than 64 levels"
        );
    }
}
