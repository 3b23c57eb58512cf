//! `include`: steps and variables written once, in their own file, and placed
//! before the steps of every spec that names the file.
//!
//! This module follows the paths (relative to the file that names them),
//! reads and lowers each included file once, and splices its steps and
//! variables into the spec, keeping which file each came from so that
//! diagnostics point into it. It reads files and nothing else: the graph
//! checks across the spliced steps are [`crate::plan::plan`]'s.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Diagnostic, DiagnosticKind, Diagnostics};
use crate::lower::lower_fragment;
use crate::model::{Included, Spec, Step, Var};
use crate::parse::parse_source;
use crate::policy::Policy;
use crate::source::{Format, SourceFile};
use crate::value::Key;

/// How deep included files may include others: a chain of files each
/// naming the next is followed this far.
const MAX_DEPTH: usize = 32;

/// One included file, lowered.
struct File {
    source: Arc<SourceFile>,
    vars: Vec<Var>,
    steps: Vec<Step>,
}

/// Follows `include` from `spec`'s file, depth first: a file's own includes
/// come before its steps. A file reached twice is placed once.
struct Resolver {
    /// The files being included, outermost first: a path found here again
    /// is a cycle.
    stack: Vec<(PathBuf, String)>,
    seen: HashSet<PathBuf>,
    files: Vec<File>,
    problems: Diagnostics,
    dropped: Vec<String>,
}

/// Reads the files `includes` names (relative to the spec's directory) and
/// places their steps and variables into `spec`, before its own. Problems of
/// an included file, a missing file and a cycle go to [`Spec::problems`],
/// each with the file it points into.
///
/// A file `policy` does not let the spec read is not read: its include is a
/// problem.
pub(crate) fn resolve(spec: &mut Spec, includes: &[Key], policy: &Policy) {
    if includes.is_empty() {
        return;
    }
    let mut resolver = Resolver {
        stack: Vec::new(),
        seen: HashSet::new(),
        files: Vec::new(),
        problems: Diagnostics::default(),
        dropped: Vec::new(),
    };
    if let Ok(path) = fs::canonicalize(&spec.source.path) {
        resolver.seen.insert(path.clone());
        resolver.stack.push((path, spec.source.name()));
    }
    resolver.visit(&Arc::clone(&spec.source), includes, policy);

    // the spec's own variables win over included ones, an earlier file's
    // over a later one's
    let mut names: HashSet<String> = spec.vars.iter().map(|v| v.name.name.clone()).collect();
    let (mut vars, mut steps) = (Vec::new(), Vec::new());
    for file in resolver.files {
        let (var_start, step_start) = (vars.len(), steps.len());
        vars.extend(
            file.vars
                .into_iter()
                .filter(|v| names.insert(v.name.name.clone())),
        );
        steps.extend(file.steps);
        spec.includes.push(Included {
            source: file.source,
            steps: step_start..steps.len(),
            vars: var_start..vars.len(),
        });
    }
    vars.append(&mut spec.vars);
    steps.append(&mut spec.steps);
    for (index, step) in steps.iter_mut().enumerate() {
        step.index = index;
    }
    spec.vars = vars;
    spec.steps = steps;
    spec.dropped_steps.append(&mut resolver.dropped);
    spec.problems.extend(resolver.problems);
}

impl Resolver {
    fn visit(&mut self, from: &Arc<SourceFile>, includes: &[Key], policy: &Policy) {
        for key in includes {
            let path = relative_to(from, &key.name);
            let at = |message: String| {
                Diagnostic::new(DiagnosticKind::Io, key.span.clone(), message)
                    .label("included here")
                    .with_source(from)
            };
            if Format::from_path(&path).is_none() {
                self.problems.push(
                    at(format!("`{}` is not a spec file", path.display()))
                        .help("included files end in `.toml`, `.yaml` or `.yml`"),
                );
                continue;
            }
            let canonical = match fs::canonicalize(&path) {
                Ok(c) => c,
                Err(e) => {
                    let message = if e.kind() == std::io::ErrorKind::NotFound {
                        format!("the included file `{}` does not exist", path.display())
                    } else {
                        format!("cannot read `{}`: {e}", path.display())
                    };
                    self.problems.push(at(message).help(format!(
                        "the path is relative to the directory of `{}`",
                        from.name()
                    )));
                    continue;
                }
            };
            if let Some(refused) = policy.check_include(&path, &key.span) {
                self.problems.push(refused.with_source(from));
                continue;
            }
            if let Some(pos) = self.stack.iter().position(|(p, _)| *p == canonical) {
                let mut names: Vec<String> = self.stack[pos..]
                    .iter()
                    .map(|(_, name)| format!("`{name}`"))
                    .collect();
                names.push(format!("`{}`", self.stack[pos].1));
                self.problems.push(
                    Diagnostic::new(
                        DiagnosticKind::Cycle,
                        key.span.clone(),
                        format!("the includes form a cycle: {}", names.join(" -> ")),
                    )
                    .label(format!("`{}` includes `{}`", from.name(), path.display()))
                    .help("remove one of these includes")
                    .with_source(from),
                );
                continue;
            }
            if !self.seen.insert(canonical.clone()) {
                continue;
            }
            if self.stack.len() > MAX_DEPTH {
                self.problems.push(
                    at(format!(
                        "the includes nest more than {MAX_DEPTH} files deep: `{}` is not read",
                        path.display()
                    ))
                    .help("include the shared files from the spec itself rather than from one another"),
                );
                continue;
            }
            let text = match crate::source::read_text(&path) {
                Ok(t) => t,
                Err(e) => {
                    self.problems
                        .push(at(format!("cannot read `{}`: {e}", path.display())));
                    continue;
                }
            };
            let format = Format::from_path(&path).unwrap_or(Format::Toml);
            let source = Arc::new(SourceFile::new(path, text, format));
            let value = match parse_source(&source) {
                Ok(v) => v,
                Err(d) => {
                    self.problems.push(d.with_source(&source));
                    continue;
                }
            };
            let fragment = lower_fragment(&source, &value);
            self.problems.extend(fragment.problems);
            self.dropped.extend(fragment.dropped);
            self.stack.push((canonical, source.name()));
            self.visit(&source, &fragment.includes, policy);
            self.stack.pop();
            self.files.push(File {
                source,
                vars: fragment.vars,
                steps: fragment.steps,
            });
        }
    }
}

/// `name` relative to the directory of `from`, as short as the user wrote it
/// when `from` has no directory.
pub(crate) fn relative_to(from: &SourceFile, name: &str) -> PathBuf {
    match from.path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => normalize(&dir.join(name)),
        _ => PathBuf::from(name),
    }
}

/// Removes `dir/..` pairs so that messages show `specs/shared/login.toml`
/// rather than `specs/cases/../shared/login.toml`.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DirConfig, Overrides};
    use crate::plan::{load_spec, plan, read_source};

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().expect("a parent")).expect("dir");
        fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn included_steps_come_first_and_their_captures_are_read() {
        let dir = tempfile::tempdir().expect("tmp");
        write(
            dir.path(),
            "_shared/login.yaml",
            "include: [_base.toml]\nvars: { user: qa, base_url: x }\nsteps:\n  - id: login\n    wait: 1ms\n    capture: { user: result.duration }\n",
        );
        write(
            dir.path(),
            "_shared/_base.toml",
            "vars.user = \"base\"\n[[steps]]\nid = \"base\"\nwait = \"1ms\"\n",
        );
        let spec = write(
            dir.path(),
            "cases/spec.toml",
            "include = [\"../_shared/login.yaml\", \"../_shared/_base.toml\"]\nvars.user = \"own\"\n[[steps]]\nid = \"me\"\nhttp = { get = \"{{ base_url }}/{{ login.user }}\" }\n",
        );
        let source = read_source(&spec).expect("read");
        let spec = load_spec(&source).expect("load");
        assert!(spec.problems.is_empty(), "{:?}", spec.problems);
        let ids: Vec<_> = spec.steps.iter().map(|s| s.id.as_str()).collect();
        // `_base.toml` is placed once, before the file that includes it
        assert_eq!(ids, ["base", "login", "me"]);
        assert!(spec.step_source(0).path.ends_with("_shared/_base.toml"));
        assert!(spec.step_source(1).path.ends_with("_shared/login.yaml"));
        assert!(Arc::ptr_eq(spec.step_source(2), &spec.source));
        // the spec's own variable wins, then the first file's
        let vars: Vec<_> = spec.vars.iter().map(|v| v.name.name.as_str()).collect();
        assert_eq!(vars, ["base_url", "user"]);
        assert!(Arc::ptr_eq(spec.var_source(1), &spec.source));
        let planned = plan(
            spec,
            Arc::new(DirConfig::default()),
            &Overrides::default(),
            &[],
        )
        .expect("plan");
        assert_eq!(planned.deps, [vec![], vec![0], vec![1]]);
    }

    #[test]
    fn normalize_removes_parent_pairs() {
        assert_eq!(
            normalize(Path::new("specs/cases/../shared/./login.toml")),
            Path::new("specs/shared/login.toml")
        );
        assert_eq!(normalize(Path::new("../a.toml")), Path::new("../a.toml"));
    }

    #[test]
    fn a_long_chain_of_includes_stops_at_the_limit() {
        let dir = tempfile::tempdir().expect("tmp");
        for i in 0..60 {
            let include = if i < 59 {
                format!("include = [\"f{}.toml\"]\n", i + 1)
            } else {
                String::new()
            };
            write(
                dir.path(),
                &format!("f{i}.toml"),
                &format!("{include}[[steps]]\nid = \"s{i}\"\nwait = \"1ms\"\n"),
            );
        }
        let source = read_source(&dir.path().join("f0.toml")).expect("read");
        let spec = load_spec(&source).expect("load");
        let messages: Vec<_> = spec.problems.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(
            messages[0].starts_with("the includes nest more than 32 files deep"),
            "{messages:?}"
        );
        assert_eq!(spec.steps.len(), MAX_DEPTH + 1);
    }
}
