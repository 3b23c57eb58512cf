//! Lowering: the value tree of a file becomes a typed [`Spec`], every problem
//! collected as a diagnostic rather than stopping at the first.
//!
//! This module owns the spec and `planrun.toml` tables and the readers the
//! parts share (`Table`, `string`, `boolean`, `duration`, …); the parts of
//! the language live in their own modules: variables, steps, targets (with
//! expectations and captures) and matchers. Lowering reads the value tree
//! only: it must not render templates, touch the file system or run anything.

mod matcher;
mod step;
mod target;
mod vars;

use std::sync::Arc;
use std::time::Duration;

use crate::duration::{parse_bytes, parse_duration};
use crate::error::{Diagnostic, DiagnosticKind, Diagnostics, code_list, did_you_mean};
use crate::model::{DefaultNeeds, Defaults, DirConfig, DirSpec, Priority, Spec};
use crate::source::{Format, SourceFile};
use crate::value::{Key, Span, Value, ValueKind};

pub use matcher::lower_matcher;
pub(crate) use matcher::{Doc, lower_matcher_of};
pub use target::{JsonPathError, MAX_PATH_NESTING, parse_json_path, parse_target};

pub(crate) use step::reread_step;
use step::{Steps, lower_step_chunks, lower_steps};
use vars::lower_vars;

const SPEC_KEYS: &[&str] = &[
    "id",
    "name",
    "objective",
    "description",
    "priority",
    "tags",
    "phase",
    "vars",
    "defaults",
    "steps",
    "include",
];
const FRAGMENT_KEYS: &[&str] = &["include", "vars", "steps"];
const DEFAULTS_KEYS: &[&str] = &["timeout", "spec_timeout", "max_body", "needs"];
const DIR_KEYS: &[&str] = &["vars", "defaults", "setup", "teardown"];

/// A mapping being read: tracks which keys were used so the rest can be
/// reported as unknown, with a suggestion.
struct Table<'a> {
    entries: &'a [(Key, Value)],
    used: Vec<bool>,
}

impl<'a> Table<'a> {
    fn new(value: &'a Value, what: &str, diags: &mut Diagnostics) -> Option<Table<'a>> {
        if let Some(entries) = value.as_map() {
            Some(Table {
                entries,
                used: vec![false; entries.len()],
            })
        } else {
            diags.push(wrong_type(value, &format!("{what} must be a table")));
            None
        }
    }

    fn take(&mut self, name: &str) -> Option<(&'a Key, &'a Value)> {
        let i = self.entries.iter().position(|(k, _)| k.name == name)?;
        self.used[i] = true;
        Some((&self.entries[i].0, &self.entries[i].1))
    }

    fn get(&mut self, name: &str) -> Option<&'a Value> {
        self.take(name).map(|(_, v)| v)
    }

    fn rest(&self) -> impl Iterator<Item = &'a (Key, Value)> + '_ {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|(e, _)| e)
    }

    fn finish(self, known: &[&str], where_: &str, diags: &mut Diagnostics) {
        for (key, _) in self.rest() {
            diags.push(unknown_key(key, known, where_));
        }
    }
}

fn unknown_key(key: &Key, known: &[&str], where_: &str) -> Diagnostic {
    let help = did_you_mean(&key.name, known.iter().copied())
        .unwrap_or_else(|| format!("keys allowed {where_}: {}", code_list(known)));
    Diagnostic::new(
        DiagnosticKind::UnknownKey,
        key.span.clone(),
        format!("unknown key `{}` {where_}", key.name),
    )
    .label("unknown key")
    .help(help)
}

fn wrong_type(value: &Value, message: &str) -> Diagnostic {
    Diagnostic::new(
        DiagnosticKind::WrongType,
        value.span.clone(),
        format!("{message}, found {}", value.type_name()),
    )
    .label(format!("this is {}", value.type_name()))
}

fn invalid(span: &Span, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(DiagnosticKind::InvalidValue, span.clone(), message).label("this value")
}

fn string(value: &Value, what: &str, diags: &mut Diagnostics) -> Option<String> {
    match &value.kind {
        ValueKind::Str(s) => Some(s.clone()),
        ValueKind::Int(i) => Some(i.to_string()),
        ValueKind::Float(f) => Some(f.to_string()),
        _ => {
            diags.push(wrong_type(value, &format!("{what} must be a string")));
            None
        }
    }
}

fn string_list(value: &Value, what: &str, diags: &mut Diagnostics) -> Vec<Key> {
    match &value.kind {
        ValueKind::Str(s) => vec![Key {
            name: s.clone(),
            span: value.span.clone(),
        }],
        ValueKind::Seq(items) => items
            .iter()
            .filter_map(|item| {
                string(item, what, diags).map(|name| Key {
                    name,
                    span: item.span.clone(),
                })
            })
            .collect(),
        _ => {
            diags.push(wrong_type(
                value,
                &format!("{what} must be a list of strings"),
            ));
            Vec::new()
        }
    }
}

fn boolean(value: &Value, what: &str, diags: &mut Diagnostics) -> Option<bool> {
    if let ValueKind::Bool(b) = value.kind {
        Some(b)
    } else {
        diags.push(wrong_type(
            value,
            &format!("{what} must be `true` or `false`"),
        ));
        None
    }
}

fn duration(value: &Value, diags: &mut Diagnostics) -> Option<Duration> {
    let text = match &value.kind {
        ValueKind::Str(s) => s.clone(),
        ValueKind::Int(i) => {
            diags.push(
                invalid(&value.span, format!("a duration needs a unit: `{i}`"))
                    .help(format!("write `{i}s` or `{i}ms`")),
            );
            return None;
        }
        _ => {
            diags.push(wrong_type(
                value,
                "a duration must be a string such as `2s`",
            ));
            return None;
        }
    };
    match parse_duration(&text) {
        Ok(d) => Some(d),
        Err(e) => {
            diags.push(invalid(&value.span, e).help("durations look like `250ms`, `2s`, `1m30s`"));
            None
        }
    }
}

fn check_name(key: &Key, what: &str, diags: &mut Diagnostics) {
    let ok = key
        .name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        diags.push(
            invalid(
                &key.span,
                format!("`{}` is not a valid name for {what}", key.name),
            )
            .help("names start with a letter and hold letters, digits, `_` or `-`"),
        );
    }
}

/// Lowers a spec file's value tree. The spec keeps what lowering found wrong
/// in [`Spec::problems`]; `Err` only when the file is not a table at all.
/// `include` is read but not followed: see [`lower_spec_includes`].
#[cfg(test)]
pub(crate) fn lower_spec(source: &Arc<SourceFile>, root: &Value) -> Result<Spec, Diagnostics> {
    lower_spec_includes(source, root, None).map(|(spec, _)| spec)
}

/// What an included file holds, lowered; its problems carry its source.
pub(crate) struct Fragment {
    pub(crate) vars: Vec<crate::model::Var>,
    pub(crate) steps: Vec<crate::model::Step>,
    pub(crate) dropped: Vec<String>,
    pub(crate) includes: Vec<Key>,
    pub(crate) problems: Diagnostics,
}

/// Lowers an included file: `steps`, and optionally `vars` and `include`;
/// anything else (an `id`, `defaults`) belongs to the including spec.
pub(crate) fn lower_fragment(source: &Arc<SourceFile>, root: &Value) -> Fragment {
    let mut diags = Diagnostics::default();
    let mut fragment = Fragment {
        vars: Vec::new(),
        steps: Vec::new(),
        dropped: Vec::new(),
        includes: Vec::new(),
        problems: Diagnostics::default(),
    };
    if let Some(mut table) = Table::new(root, "an included file", &mut diags) {
        fragment.includes = table
            .get("include")
            .map_or_else(Vec::new, |v| string_list(v, "`include`", &mut diags));
        fragment.vars = table
            .get("vars")
            .map_or_else(Vec::new, |v| lower_vars(v, &mut diags));
        if let Some(v) = table.get("steps") {
            let steps = lower_steps(v, &mut diags);
            fragment.steps = steps.steps;
            fragment.dropped = steps.dropped;
        } else {
            diags.push(
                Diagnostic::new(
                    DiagnosticKind::MissingKey,
                    0..0,
                    "the included file has no `steps`",
                )
                .label("the file starts here")
                .help("an included file holds `steps`, and may hold `vars` and `include`"),
            );
        }
        table.finish(FRAGMENT_KEYS, "at the top of an included file", &mut diags);
    }
    diags.attach(source);
    fragment.problems = diags;
    fragment
}

/// Lowers a spec file's value tree, and hands back the paths its `include`
/// names (with their spans) for the caller to follow. With `steps`, the
/// file is read a step at a time: `root` holds the other keys, and each
/// step is read from the file's text at its span.
pub(crate) fn lower_spec_includes(
    source: &Arc<SourceFile>,
    root: &Value,
    steps: Option<&[Span]>,
) -> Result<(Spec, Vec<Key>), Diagnostics> {
    let mut diags = Diagnostics::default();
    let Some(mut table) = Table::new(root, "a spec", &mut diags) else {
        diags.attach(source);
        return Err(diags);
    };
    let stem = source.path.file_stem().map_or_else(
        || String::from("spec"),
        |s| s.to_string_lossy().into_owned(),
    );
    let (id, id_span) = match table.get("id") {
        Some(v) => (
            string(v, "`id`", &mut diags).unwrap_or_else(|| stem.clone()),
            v.span.clone(),
        ),
        None => (stem, 0..0),
    };
    let name = table
        .get("name")
        .and_then(|v| string(v, "`name`", &mut diags));
    let objective = table
        .get("objective")
        .or_else(|| table.get("description"))
        .and_then(|v| string(v, "`objective`", &mut diags));
    let priority = table.get("priority").map_or(Priority::default(), |v| {
        match string(v, "`priority`", &mut diags).map(|s| (Priority::parse(&s), s)) {
            Some((Some(p), _)) => p,
            Some((None, s)) => {
                diags.push(
                    invalid(&v.span, format!("unknown priority `{s}`"))
                        .help("use `high`, `medium` or `low`"),
                );
                Priority::default()
            }
            None => Priority::default(),
        }
    });
    let tags = table.get("tags").map_or_else(Vec::new, |v| {
        string_list(v, "`tags`", &mut diags)
            .into_iter()
            .map(|k| k.name)
            .collect()
    });
    let phase = table
        .get("phase")
        .and_then(|v| string(v, "`phase`", &mut diags));
    let includes = table
        .get("include")
        .map_or_else(Vec::new, |v| string_list(v, "`include`", &mut diags));
    let vars = table
        .get("vars")
        .map_or_else(Vec::new, |v| lower_vars(v, &mut diags));
    let defaults = table
        .get("defaults")
        .map_or_else(Defaults::default, |v| lower_defaults(v, &mut diags));
    let steps = if let Some(chunks) = steps {
        lower_step_chunks(&source.text, chunks, &mut diags)
    } else if let Some((_, v)) = table.take("steps") {
        lower_steps(v, &mut diags)
    } else if !includes.is_empty() {
        // every step may come from the included files
        Steps {
            steps: Vec::new(),
            dropped: Vec::new(),
        }
    } else {
        diags.push(
            Diagnostic::new(DiagnosticKind::MissingKey, 0..0, "the spec has no `steps`")
                .label("the spec starts here")
                .help("add steps: `[[steps]]` in TOML, `steps:` with a list in YAML"),
        );
        Steps {
            steps: Vec::new(),
            dropped: Vec::new(),
        }
    };
    table.finish(SPEC_KEYS, "at the top of a spec", &mut diags);
    diags.attach(source);
    let spec = Spec {
        source: Arc::clone(source),
        id,
        id_span,
        name,
        objective,
        priority,
        tags,
        phase,
        vars,
        defaults,
        steps: steps.steps,
        dropped_steps: steps.dropped,
        problems: diags,
        includes: Vec::new(),
    };
    Ok((spec, includes))
}

/// Lowers a directory's `planrun.toml`.
pub(crate) fn lower_dir_config(
    source: &Arc<SourceFile>,
    root: &Value,
) -> Result<DirConfig, Diagnostics> {
    let mut diags = Diagnostics::default();
    let mut config = DirConfig {
        source: Some(Arc::clone(source)),
        ..DirConfig::default()
    };
    if let Some(mut table) = Table::new(root, "`planrun.toml`", &mut diags) {
        if let Some(v) = table.get("vars") {
            config.vars = lower_vars(v, &mut diags);
        }
        if let Some(v) = table.get("defaults") {
            config.defaults = lower_defaults(v, &mut diags);
        }
        config.setup = table
            .get("setup")
            .and_then(|v| lower_dir_spec(source, v, "setup", &mut diags));
        config.teardown = table
            .get("teardown")
            .and_then(|v| lower_dir_spec(source, v, "teardown", &mut diags));
        if let (Some(setup), Some(teardown)) = (&config.setup, &config.teardown)
            && setup.path == teardown.path
        {
            diags.push(
                invalid(
                    &teardown.name.span,
                    format!(
                        "`setup` and `teardown` name the same file `{}`",
                        teardown.name.name
                    ),
                )
                .related(setup.name.span.clone(), "also the setup")
                .help("a setup and a teardown are two specs: one prepares, the other cleans up"),
            );
        }
        table.finish(DIR_KEYS, "in `planrun.toml`", &mut diags);
    }
    diags.attach(source);
    if diags.is_empty() {
        Ok(config)
    } else {
        Err(diags)
    }
}

/// `setup = "_setup.toml"`: a spec file, relative to the `planrun.toml`.
/// Whether it exists is for the caller to check: lowering reads no files.
fn lower_dir_spec(
    source: &SourceFile,
    value: &Value,
    key: &str,
    diags: &mut Diagnostics,
) -> Option<DirSpec> {
    let ValueKind::Str(name) = &value.kind else {
        diags.push(wrong_type(
            value,
            &format!("`{key}` must be the path of a spec file"),
        ));
        return None;
    };
    let path = crate::include::relative_to(source, name);
    if Format::from_path(&path).is_none() || path.file_name().is_some_and(|n| n == "planrun.toml") {
        diags.push(
            invalid(&value.span, format!("`{name}` is not a spec file"))
                .help(format!("`{key}` names a spec file ending in `.toml`, `.yaml` or `.yml`, relative to `planrun.toml`")),
        );
        return None;
    }
    Some(DirSpec {
        name: Key {
            name: name.clone(),
            span: value.span.clone(),
        },
        path,
    })
}

fn lower_defaults(value: &Value, diags: &mut Diagnostics) -> Defaults {
    let Some(mut table) = Table::new(value, "`defaults`", diags) else {
        return Defaults::default();
    };
    let timeout = table.get("timeout").and_then(|v| duration(v, diags));
    let spec_timeout = table.get("spec_timeout").and_then(|v| duration(v, diags));
    let max_body = table.get("max_body").and_then(|v| match &v.kind {
        ValueKind::Int(i) => u64::try_from(*i).ok(),
        ValueKind::Str(s) => match parse_bytes(s) {
            Ok(n) => Some(n),
            Err(e) => {
                diags.push(invalid(&v.span, e));
                None
            }
        },
        _ => {
            diags.push(wrong_type(v, "`max_body` must be a size such as `16MiB`"));
            None
        }
    });
    // a list of ids would make the named steps wait for themselves, and the
    // previous step is already the default: `[]` is the one value that says
    // something
    let needs = table.get("needs").and_then(|v| {
        if let Some([]) = v.as_seq() {
            return Some(DefaultNeeds::Nothing);
        }
        diags.push(
            invalid(&v.span, "`defaults.needs` can only be `[]`")
                .help("`needs = []` starts every step without `needs` at once; leave it out to have each wait for the step before it"),
        );
        None
    });
    table.finish(DEFAULTS_KEYS, "in `defaults`", diags);
    Defaults {
        timeout,
        spec_timeout,
        max_body,
        needs,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::parse::parse_source;

    fn dir_config(path: &str, text: &str) -> Result<DirConfig, Vec<String>> {
        let source = Arc::new(SourceFile::new(path, text, Format::Toml));
        let value = parse_source(&source).expect("parses");
        lower_dir_config(&source, &value).map_err(|d| d.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn setup_and_teardown_are_relative_to_the_planrun_toml() {
        let config = dir_config(
            "specs/planrun.toml",
            "setup = \"_setup.toml\"\nteardown = \"../hooks/_down.yaml\"\n",
        )
        .expect("valid");
        let setup = config.setup.expect("setup");
        assert_eq!(setup.name.name, "_setup.toml");
        assert_eq!(setup.path, Path::new("specs/_setup.toml"));
        assert_eq!(
            config.teardown.expect("teardown").path,
            Path::new("hooks/_down.yaml")
        );
        // in the working directory, the path stays as written
        let config = dir_config("planrun.toml", "setup = \"_setup.toml\"\n").expect("valid");
        assert_eq!(config.setup.expect("setup").path, Path::new("_setup.toml"));
        assert!(config.teardown.is_none());
    }

    #[test]
    fn a_directory_without_setup_has_none() {
        let config = dir_config("specs/planrun.toml", "[vars]\na = 1\n").expect("valid");
        assert!(config.setup.is_none() && config.teardown.is_none());
    }

    #[test]
    fn bad_setup_and_teardown_values() {
        for (text, expected) in [
            (
                "setup = [\"a.toml\"]\n",
                "`setup` must be the path of a spec file, found a list",
            ),
            ("teardown = \"clean.sh\"\n", "`clean.sh` is not a spec file"),
            (
                "setup = \"planrun.toml\"\n",
                "`planrun.toml` is not a spec file",
            ),
            (
                "setup = \"_s.toml\"\nteardown = \"./_s.toml\"\n",
                "`setup` and `teardown` name the same file `./_s.toml`",
            ),
            (
                "setpu = \"_s.toml\"\n",
                "unknown key `setpu` in `planrun.toml`",
            ),
        ] {
            assert_eq!(
                dir_config("specs/planrun.toml", text).expect_err(text),
                [expected],
                "{text}"
            );
        }
    }
}
