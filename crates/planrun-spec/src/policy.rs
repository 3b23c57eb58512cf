//! What a spec may do when whoever runs it did not write it
//! (`--untrusted`): talk over the network, and nothing else unless allowed
//! by name. Steps of privileged kinds, files outside the spec tree, the
//! environment and TLS without verification are each refused at plan time,
//! as diagnostics pointing at what asks for them, every one of a file at
//! once.
//!
//! A [`Policy`] is built by the binary from its flags and an optional
//! policy file ([`PolicyFile`]). Loading a spec under it
//! ([`crate::plan::load_spec_under`]) refuses an included file outside the
//! tree before reading it and adds the problems of [`Policy::check_spec`]
//! to the spec's; [`crate::plan::find_dir_config_under`] does the same for
//! a `planrun.toml`. This module reads no file but the policy file: it
//! only asks where paths lead (`..` and symbolic links resolved).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::de::is_template;
use crate::error::{Diagnostic, DiagnosticKind, Diagnostics, code_list, did_you_mean};
use crate::model::{DirConfig, RepeatOver, Spec, StepKind, Var};
use crate::parse::parse_source;
use crate::plan::step_templates;
use crate::source::{Format, SourceFile};
use crate::template::Template;
use crate::value::{Span, Value, ValueKind};

/// The word `--allow` takes for turning TLS verification off.
const INSECURE: &str = "insecure";

/// What specs may do. The default trusts them with everything (the
/// language's default); [`Policy::untrusted`] allows only the network, and
/// each `allow_*` method adds one thing back.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `false`: everything is allowed and nothing is checked.
    untrusted: bool,
    /// The spec tree: the directories given on the command line, or a
    /// given file's directory, resolved.
    tree: Vec<PathBuf>,
    /// Privileged kinds allowed.
    kinds: Vec<StepKind>,
    /// `insecure = true` allowed.
    insecure: bool,
    /// Environment variable names allowed, `*` standing for any text.
    env: Vec<String>,
    /// Environment variable names allowed as they are (from `--env-file`).
    env_names: BTreeSet<String>,
    /// Files and directories outside the tree that may be read, resolved.
    read: Vec<PathBuf>,
    /// Variables given on the command line: their definitions in files
    /// are never read, so they read no environment.
    given: BTreeSet<String>,
}

/// One thing `--allow` (or `allow` in a policy file) lets a spec do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// Steps of a privileged kind (`exec`).
    Kind(StepKind),
    /// `insecure = true`: TLS without certificate verification.
    Insecure,
}

impl Allowance {
    /// Every word `--allow` takes: the privileged kinds' keys, then
    /// `insecure`.
    pub fn words() -> Vec<&'static str> {
        StepKind::ALL
            .iter()
            .filter(|k| k.privilege().is_some())
            .map(|k| k.key())
            .chain([INSECURE])
            .collect()
    }

    /// The allowance `word` names, or what is wrong with it.
    pub fn parse(word: &str) -> Result<Allowance, String> {
        if word == INSECURE {
            return Ok(Allowance::Insecure);
        }
        match StepKind::from_key(word) {
            Some(kind) if kind.privilege().is_some() => Ok(Allowance::Kind(kind)),
            Some(kind) => Err(format!(
                "`{kind}` steps need no allowance: they only talk over the network (allowed: {})",
                code_list(Allowance::words())
            )),
            None => {
                let words = Allowance::words();
                let hint = did_you_mean(word, words.iter().copied())
                    .map_or_else(String::new, |d| format!("; {d}"));
                Err(format!(
                    "unknown allowance `{word}` (allowed: {}){hint}",
                    code_list(&words)
                ))
            }
        }
    }
}

impl Policy {
    /// Specs are trusted: everything is allowed.
    pub fn trusted() -> Policy {
        Policy::default()
    }

    /// Specs are not trusted: they may talk over the network and read the
    /// files under `paths` (the directories and files given on the command
    /// line; a file stands for its directory), nothing else until allowed.
    pub fn untrusted(paths: &[PathBuf]) -> Result<Policy, String> {
        let mut tree = Vec::new();
        for path in paths {
            let dir = if path.is_dir() {
                path.clone()
            } else {
                match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                }
            };
            let root = fs::canonicalize(&dir)
                .map_err(|e| format!("cannot resolve `{}`: {e}", dir.display()))?;
            tree.push(root);
        }
        Ok(Policy {
            untrusted: true,
            tree,
            ..Policy::default()
        })
    }

    /// Whether specs are checked at all.
    pub fn is_untrusted(&self) -> bool {
        self.untrusted
    }

    /// Allows one thing.
    pub fn allow(&mut self, allowance: Allowance) {
        match allowance {
            Allowance::Kind(kind) => {
                if !self.kinds.contains(&kind) {
                    self.kinds.push(kind);
                }
            }
            Allowance::Insecure => self.insecure = true,
        }
    }

    /// Allows the environment variables `pattern` names (`QA_*`: `*`
    /// stands for any text).
    pub fn allow_env(&mut self, pattern: impl Into<String>) {
        self.env.push(pattern.into());
    }

    /// Allows one environment variable by its exact name (one that
    /// `--env-file` sets: the user chose to hand it over).
    pub fn allow_env_name(&mut self, name: impl Into<String>) {
        self.env_names.insert(name.into());
    }

    /// Allows reading `path` (a file, or a directory and everything under
    /// it), relative to the working directory. It need not exist yet (a
    /// file a step before the run makes): it is resolved as far as it does.
    pub fn allow_read(&mut self, path: &Path) {
        self.read.push(resolve(path));
    }

    /// Marks a variable as given on the command line (`--var`, `--secret`):
    /// its definitions in files are not read, so whatever environment they
    /// name is not either.
    pub fn given_var(&mut self, name: impl Into<String>) {
        self.given.insert(name.into());
    }

    /// Adds what a policy file allows.
    pub fn apply(&mut self, file: PolicyFile) {
        for a in file.allow {
            self.allow(a);
        }
        for pattern in file.env {
            self.allow_env(pattern);
        }
        self.read.extend(file.read);
    }

    /// Whether the environment variable `name` may be read.
    pub fn env_allowed(&self, name: &str) -> bool {
        !self.untrusted
            || self.env_names.contains(name)
            || self.env.iter().any(|p| glob_match(p, name))
    }

    /// Whether `path` (relative to the working directory) may be read: it
    /// leads into the spec tree or to a path allowed, once `..` and
    /// symbolic links are resolved. A path that does not exist yet is
    /// judged by the part of it that does.
    pub fn may_read(&self, path: &Path) -> bool {
        !self.untrusted || self.contains(&resolve(path))
    }

    fn contains(&self, resolved: &Path) -> bool {
        self.tree
            .iter()
            .chain(&self.read)
            .any(|root| resolved.starts_with(root))
    }

    /// The spec tree, for messages.
    fn tree_text(&self) -> String {
        code_list(self.tree.iter().map(|p| shown(p)))
    }

    /// The diagnostic for reading `path` (`what` names it), when it may
    /// not be read.
    fn refuse_read(
        &self,
        path: &Path,
        what: String,
        span: Span,
        label: &str,
    ) -> Option<Diagnostic> {
        if self.may_read(path) {
            return None;
        }
        Some(
            Diagnostic::new(DiagnosticKind::NotAllowed, span, what)
                .label(label)
                .help(read_help(&self.tree_text(), &resolve(path))),
        )
    }

    /// The problem of a spec file a directory walk found, when it leads
    /// outside the spec tree (a symbolic link).
    pub fn check_spec_file(&self, path: &Path) -> Option<Diagnostic> {
        if self.may_read(path) {
            return None;
        }
        Some(
            Diagnostic::new(
                DiagnosticKind::NotAllowed,
                0..0,
                format!(
                    "`{}` leads outside the spec tree, to `{}`",
                    path.display(),
                    shown(&resolve(path))
                ),
            )
            .help(read_help(&self.tree_text(), &resolve(path))),
        )
    }

    /// The problem of reading the included file `path` (written as
    /// `written` at `span`), when it may not be read.
    pub(crate) fn check_include(&self, path: &Path, span: &Span) -> Option<Diagnostic> {
        self.refuse_read(
            path,
            format!(
                "the included file `{}` is outside the spec tree",
                path.display()
            ),
            span.clone(),
            "included here",
        )
    }

    /// The problem of reading the `planrun.toml` at `path`, which applies
    /// to the specs in `dir`, when it may not be read.
    pub(crate) fn check_dir_config_file(&self, path: &Path, dir: &Path) -> Option<Diagnostic> {
        if self.may_read(path) {
            return None;
        }
        let resolved = resolve(path);
        let config_dir = resolved.parent().unwrap_or(&resolved);
        Some(
            Diagnostic::new(
                DiagnosticKind::NotAllowed,
                0..0,
                format!(
                    "`{}` applies to the specs in `{}`, but it is outside the spec tree",
                    path.display(),
                    dir.display()
                ),
            )
            .help(format!(
                "with `--untrusted` planrun reads files only in the spec tree ({}); run planrun on `{}`, or pass `--allow-read {}`",
                self.tree_text(),
                shown(config_dir),
                shown(&resolved)
            )),
        )
    }

    /// What `spec` does that the policy does not allow, each problem with
    /// the file it points into (the spec or a file it includes). Nothing
    /// for a trusted policy.
    pub fn check_spec(&self, spec: &Spec) -> Diagnostics {
        let mut diags = Diagnostics::default();
        if !self.untrusted {
            return diags;
        }
        let base = spec.source.dir();
        for index in 0..spec.steps.len() {
            let start = diags.len();
            // a step read a step at a time is read again, one at a time
            let step = match spec.step(index) {
                Ok(step) => step,
                Err(problems) => {
                    diags.extend(problems);
                    diags.attach_since(start, spec.step_source(index));
                    continue;
                }
            };
            if let Some(privilege) = step.kind.privilege_of(&step.config)
                && !self.kinds.contains(&step.kind)
            {
                let key = step.kind.key();
                diags.push(
                    Diagnostic::new(
                        DiagnosticKind::NotAllowed,
                        step.kind_span.clone(),
                        format!(
                            "{} `{key}` step {privilege}, which `--untrusted` does not allow",
                            article(key)
                        ),
                    )
                    .label("not allowed")
                    .help(format!(
                        "if you trust this spec to do that here, pass `--allow {key}` (or put `\"{key}\"` in `allow` of the policy file)"
                    )),
                );
            }
            // paths are relative to the spec that runs the step, also for
            // a step of an included file: the executors read them so
            for (key, value) in step.kind.path_values(&step.config) {
                let ValueKind::Str(written) = &value.kind else {
                    continue;
                };
                if is_template(written) {
                    diags.push(
                        Diagnostic::new(
                            DiagnosticKind::NotAllowed,
                            value.span.clone(),
                            format!(
                                "`{key}` is a template: with `--untrusted` a path must be written out, so that it can be checked before the run"
                            ),
                        )
                        .label("a template")
                        .help("write the path itself, relative to the spec file"),
                    );
                    continue;
                }
                diags.extend(self.refuse_read(
                    &base.join(written),
                    format!("`{key}` names `{written}`, which is outside the spec tree"),
                    value.span.clone(),
                    "outside the spec tree",
                ));
            }
            if !self.insecure
                && let Some(value) = step.kind.insecure_value(&step.config)
            {
                let key = step.kind.insecure_key().unwrap_or(INSECURE);
                let message = if matches!(value.kind, ValueKind::Bool(_)) {
                    format!(
                        "`{key} = true` turns off TLS certificate verification, which `--untrusted` does not allow"
                    )
                } else {
                    format!(
                        "`{key}` is a template that may turn off TLS certificate verification, which `--untrusted` does not allow"
                    )
                };
                diags.push(
                    Diagnostic::new(DiagnosticKind::NotAllowed, value.span.clone(), message)
                        .label("not allowed")
                        .help(format!(
                            "pass `--allow {INSECURE}` (or put `\"{INSECURE}\"` in `allow` of the policy file); or trust the test system's certificate authority with `ca_cert`"
                        )),
                );
            }
            if let Some(t) = &step.when {
                self.check_template(t, &mut diags);
            }
            if let Some(RepeatOver::Items { templates, .. }) = step.repeat.as_ref().map(|r| &r.over)
            {
                for t in templates {
                    self.check_template(t, &mut diags);
                }
            }
            for (t, _) in step_templates(&step) {
                self.check_template(&t, &mut diags);
            }
            diags.attach_since(start, spec.step_source(step.index));
        }
        for (index, var) in spec.vars.iter().enumerate() {
            let start = diags.len();
            self.check_var(var, &mut diags);
            diags.attach_since(start, spec.var_source(index));
        }
        diags
    }

    /// What a `planrun.toml` does that the policy does not allow: its
    /// variables' reads of the environment, and a `setup` or `teardown`
    /// outside the spec tree. Nothing for a trusted policy.
    pub fn check_dir_config(&self, config: &DirConfig) -> Diagnostics {
        let mut diags = Diagnostics::default();
        let Some(source) = config.source.as_ref().filter(|_| self.untrusted) else {
            return diags;
        };
        for var in &config.vars {
            self.check_var(var, &mut diags);
        }
        for (key, spec) in [("setup", &config.setup), ("teardown", &config.teardown)] {
            let Some(spec) = spec else { continue };
            diags.extend(self.refuse_read(
                &spec.path,
                format!("the {key} `{}` is outside the spec tree", spec.name.name),
                spec.name.span.clone(),
                "outside the spec tree",
            ));
        }
        diags.attach(source);
        diags
    }

    fn check_var(&self, var: &Var, diags: &mut Diagnostics) {
        if self.given.contains(&var.name.name) {
            return;
        }
        if let Some(env) = &var.env
            && !self.env_allowed(&env.name)
        {
            diags.push(
                Diagnostic::new(
                    DiagnosticKind::NotAllowed,
                    env.span.clone(),
                    format!(
                        "variable `{}` reads the environment variable `{}`, which `--untrusted` does not allow",
                        var.name.name, env.name
                    ),
                )
                .label("not allowed")
                .help(env_help(&env.name)),
            );
        }
        if let Some(value) = &var.value {
            value.visit_strings(&mut |s, span| {
                if is_template(s)
                    && let Ok(t) = Template::parse(s, span.clone())
                {
                    self.check_template(&t, diags);
                }
            });
        }
    }

    /// The reads of the environment in `t` that are not allowed: those
    /// written out (`env.HOME`, `env["HOME"]`). A name computed as the
    /// template renders cannot be known here; the environment handed to
    /// templates under `--untrusted` holds only the names allowed.
    fn check_template(&self, t: &Template, diags: &mut Diagnostics) {
        for name in env_reads(t) {
            if !self.env_allowed(&name) {
                diags.push(
                    Diagnostic::new(
                        DiagnosticKind::NotAllowed,
                        t.span.clone(),
                        format!(
                            "this template reads the environment variable `{name}`, which `--untrusted` does not allow"
                        ),
                    )
                    .label(format!("reads `env.{name}`"))
                    .help(env_help(&name)),
                );
            }
        }
    }
}

pub(crate) fn article(word: &str) -> &'static str {
    // `sql` is read letter by letter: "an ess-queue-ell"
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) || word == "sql" {
        "an"
    } else {
        "a"
    }
}

fn read_help(tree: &str, resolved: &Path) -> String {
    format!(
        "with `--untrusted` a spec reads files only in the spec tree ({tree}); to let it read this one, pass `--allow-read {}` (or put it in `read` of the policy file)",
        shown(resolved)
    )
}

/// A resolved path as messages show it: relative to the working directory
/// when it is under it (as the user would type it), else whole.
fn shown(path: &Path) -> String {
    let cwd = std::env::current_dir().and_then(fs::canonicalize);
    match cwd.as_deref().map(|cwd| path.strip_prefix(cwd)) {
        Ok(Ok(rel)) if rel.as_os_str().is_empty() => String::from("."),
        Ok(Ok(rel)) => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

fn env_help(name: &str) -> String {
    format!(
        "pass `--allow-env {name}` (a pattern such as `QA_*` allows many; or put it in `env` of the policy file), or hand the value over with `--var` or `--env-file`"
    )
}

/// The environment variables `t` reads by a name written out: `env.NAME`
/// and `env["NAME"]` (or `env['NAME']`).
fn env_reads(t: &Template) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = t
        .roots()
        .filter(|(root, _)| *root == "env")
        .filter_map(|(_, field)| field.map(str::to_string))
        .collect();
    if t.source.contains("env") {
        static SUBSCRIPT: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
        let subscript = SUBSCRIPT.get_or_init(|| {
            // ASCII classes: a Unicode `\w` costs more to build than all the
            // rest of the check
            regex::Regex::new(r#"(?:^|[^A-Za-z0-9_.])env\s*\[\s*(?:"([^"]*)"|'([^']*)')\s*\]"#).ok()
        });
        if let Some(re) = subscript {
            for c in re.captures_iter(&t.source) {
                if let Some(m) = c.get(1).or_else(|| c.get(2)) {
                    names.insert(m.as_str().to_string());
                }
            }
        }
    }
    names
}

/// Whether `name` matches `pattern`, where `*` stands for any text.
fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // no `*`: the whole name
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// `path` made absolute, with `..` and symbolic links resolved as far as
/// it exists; the rest, which does not exist, appended with `.` and `..`
/// taken lexically.
fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(path),
            Err(_) => path.to_path_buf(),
        }
    };
    let mut existing = absolute.as_path();
    let mut missing: Vec<Component<'_>> = Vec::new();
    loop {
        if let Ok(mut resolved) = fs::canonicalize(existing) {
            for c in missing.iter().rev() {
                match c {
                    Component::ParentDir => {
                        resolved.pop();
                    }
                    Component::Normal(part) => resolved.push(part),
                    _ => {}
                }
            }
            return resolved;
        }
        let Some(parent) = existing.parent() else {
            return absolute;
        };
        if let Some(last) = existing.components().next_back() {
            missing.push(last);
        }
        existing = parent;
    }
}

/// The keys of a policy file.
const POLICY_KEYS: &[&str] = &["allow", "env", "read"];

/// A policy file, read: what it allows. Its paths are relative to it.
///
/// ```toml
/// allow = ["exec"]        # what `--allow` takes
/// env = ["QA_*", "CI"]    # what `--allow-env` takes
/// read = ["../fixtures"]  # what `--allow-read` takes
/// ```
#[derive(Debug, Clone, Default)]
pub struct PolicyFile {
    /// `allow`.
    pub allow: Vec<Allowance>,
    /// `env`: names and patterns.
    pub env: Vec<String>,
    /// `read`, resolved (relative to the policy file; a path that does not
    /// exist yet is resolved as far as it does).
    pub read: Vec<PathBuf>,
}

impl PolicyFile {
    /// Reads the policy file at `path`; every problem of it at once.
    pub fn read(path: &Path) -> Result<PolicyFile, Diagnostics> {
        let text = fs::read_to_string(path).map_err(|e| {
            Diagnostics(vec![Diagnostic::new(
                DiagnosticKind::Io,
                0..0,
                format!("cannot read the policy file `{}`: {e}", path.display()),
            )])
        })?;
        let format = Format::from_path(path).unwrap_or(Format::Toml);
        let source = Arc::new(SourceFile::new(path, text, format));
        PolicyFile::parse(&source)
    }

    /// Reads a policy file's text.
    pub fn parse(source: &Arc<SourceFile>) -> Result<PolicyFile, Diagnostics> {
        let root = parse_source(source).map_err(|d| Diagnostics(vec![d.with_source(source)]))?;
        let mut diags = Diagnostics::default();
        let mut file = PolicyFile::default();
        let Some(entries) = root.as_map() else {
            diags.push(
                Diagnostic::new(
                    DiagnosticKind::WrongType,
                    root.span.clone(),
                    format!("a policy file must be a table, found {}", root.type_name()),
                )
                .label("here"),
            );
            diags.attach(source);
            return Err(diags);
        };
        for (key, value) in entries {
            let items = match key.name.as_str() {
                "allow" | "env" | "read" => strings(value, &key.name, &mut diags),
                _ => {
                    let help =
                        did_you_mean(&key.name, POLICY_KEYS.iter().copied()).unwrap_or_else(|| {
                            format!("keys of a policy file: {}", code_list(POLICY_KEYS))
                        });
                    diags.push(
                        Diagnostic::new(
                            DiagnosticKind::UnknownKey,
                            key.span.clone(),
                            format!("unknown key `{}` in the policy file", key.name),
                        )
                        .label("unknown key")
                        .help(help),
                    );
                    continue;
                }
            };
            for (text, span) in items {
                match key.name.as_str() {
                    "allow" => match Allowance::parse(&text) {
                        Ok(a) => file.allow.push(a),
                        Err(message) => diags.push(
                            Diagnostic::new(DiagnosticKind::InvalidValue, span, message)
                                .label("this value"),
                        ),
                    },
                    "env" => file.env.push(text),
                    _ => file.read.push(resolve(&source.dir().join(&text))),
                }
            }
        }
        diags.attach(source);
        if diags.is_empty() {
            Ok(file)
        } else {
            Err(diags)
        }
    }
}

/// A list of strings (or one string), each with its span.
fn strings(value: &Value, key: &str, diags: &mut Diagnostics) -> Vec<(String, Span)> {
    let wrong = |v: &Value| {
        Diagnostic::new(
            DiagnosticKind::WrongType,
            v.span.clone(),
            format!("`{key}` must be a list of strings, found {}", v.type_name()),
        )
        .label(format!("this is {}", v.type_name()))
    };
    match &value.kind {
        ValueKind::Str(s) => vec![(s.clone(), value.span.clone())],
        ValueKind::Seq(items) => items
            .iter()
            .filter_map(|item| {
                if let ValueKind::Str(s) = &item.kind {
                    Some((s.clone(), item.span.clone()))
                } else {
                    diags.push(wrong(item));
                    None
                }
            })
            .collect(),
        _ => {
            diags.push(wrong(value));
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_by_pieces() {
        for (pattern, name, expected) in [
            ("QA_*", "QA_USER", true),
            ("QA_*", "QA_", true),
            ("QA_*", "XQA_USER", false),
            ("*_TOKEN", "GH_TOKEN", true),
            ("*", "ANYTHING", true),
            ("A*B*C", "AxxBxxC", true),
            ("A*B*C", "AxxCxxB", false),
            ("AB*B", "AB", false),
            ("HOME", "HOME", true),
            ("HOME", "HOMER", false),
        ] {
            assert_eq!(glob_match(pattern, name), expected, "{pattern} {name}");
        }
    }

    #[test]
    fn env_reads_written_out_are_found() {
        let t = Template::parse(
            "{{ env.HOME }}/{{ env[\"QA_USER\"] }}/{{ env['X'] }}/{{ env[name] }}/{{ myenv['Y'] }}",
            0..1,
        )
        .expect("parses");
        let names: Vec<String> = env_reads(&t).into_iter().collect();
        assert_eq!(names, ["HOME", "QA_USER", "X"]);
    }

    #[test]
    fn allowances_name_privileged_kinds_and_insecure() {
        assert_eq!(
            Allowance::parse("exec"),
            Ok(Allowance::Kind(StepKind::Exec))
        );
        assert_eq!(Allowance::parse("insecure"), Ok(Allowance::Insecure));
        assert_eq!(
            Allowance::parse("exce").expect_err("typo"),
            "unknown allowance `exce` (allowed: `exec`, `sql`, `docker`, `insecure`); did you mean `exec`?"
        );
        assert!(
            Allowance::parse("http")
                .expect_err("not privileged")
                .starts_with("`http` steps need no allowance")
        );
    }

    #[test]
    fn a_path_that_does_not_exist_is_judged_by_the_part_that_does() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = fs::canonicalize(dir.path()).expect("canonical");
        fs::create_dir(root.join("tree")).expect("dir");
        let policy = Policy::untrusted(&[root.join("tree")]).expect("policy");
        assert!(policy.may_read(&root.join("tree/missing/file.pem")));
        assert!(policy.may_read(&root.join("tree/a/../b.pem")));
        assert!(!policy.may_read(&root.join("tree/../outside.pem")));
        assert!(!policy.may_read(&root.join("tree/missing/../../outside.pem")));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&root, root.join("tree/up")).expect("link");
            assert!(!policy.may_read(&root.join("tree/up/secret.pem")));
        }
        assert!(Policy::trusted().may_read(Path::new("/etc/passwd")));
    }
}
