//! Planning: a lowered [`Spec`] becomes a [`Plan`], a graph of steps whose
//! every reference has been checked. Nothing after this point can fail for a
//! reason that was knowable from the files alone.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Diagnostic, DiagnosticKind, Diagnostics, code_list, did_you_mean};
use crate::lower::{lower_dir_config, lower_spec_includes};
use crate::model::{
    DefaultNeeds, DirConfig, Matcher, Overrides, Repeat, RepeatOver, Spec, Step, StepKind, Target,
};
use crate::parse::parse_source;
use crate::policy::Policy;
use crate::source::{Format, SourceFile};
use crate::template::{BUILTIN_NAMES, Template};
use crate::value::Span;

/// A spec ready to run: steps, their dependencies and a valid order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The spec.
    pub spec: Spec,
    /// The directory configuration that applies.
    pub dir: Arc<DirConfig>,
    /// For each step, the indices of the steps it waits for.
    pub deps: Vec<Vec<usize>>,
    /// A topological order of the steps.
    pub order: Vec<usize>,
}

/// Reads a file into a [`SourceFile`], or an I/O diagnostic.
pub fn read_source(path: &Path) -> Result<Arc<SourceFile>, Diagnostic> {
    let format = Format::from_path(path).ok_or_else(|| {
        Diagnostic::new(
            DiagnosticKind::Io,
            0..0,
            format!("`{}` is not a spec file", path.display()),
        )
        .help("spec files end in `.toml`, `.yaml` or `.yml`")
    })?;
    let text = crate::source::read_text(path).map_err(|e| {
        Diagnostic::new(
            DiagnosticKind::Io,
            0..0,
            format!("cannot read `{}`: {e}", path.display()),
        )
    })?;
    Ok(Arc::new(SourceFile::new(path, text, format)))
}

/// A TOML spec of at least this many `[[steps]]` tables is read a step at a
/// time ([`Spec::step`]): its memory then grows by a few hundred bytes per
/// step, not by the trees of them all.
pub const STREAMED_STEPS: usize = 1000;

/// Parses and lowers one spec file. A file that parses gives a spec even
/// when lowering found problems: they are in [`Spec::problems`], and
/// [`plan`] reports them together with those of the graph and the
/// references, so that a file's problems are all found in one pass. `Err`
/// when the file does not parse, or is not a table.
///
/// The files named by `include` (relative to the spec's directory) are read
/// here too: their steps and variables come before the spec's own, and
/// their problems point into them.
pub fn load_spec(source: &Arc<SourceFile>) -> Result<Spec, Diagnostics> {
    load_spec_under(source, &Policy::trusted())
}

/// [`load_spec`] under a policy: an included file the policy does not let
/// the spec read is a problem and is not read, and what the spec does that
/// the policy does not allow ([`Policy::check_spec`]) joins
/// [`Spec::problems`].
pub fn load_spec_under(source: &Arc<SourceFile>, policy: &Policy) -> Result<Spec, Diagnostics> {
    let streamed = match source.format {
        Format::Toml => crate::parse::toml_steps(&source.text, STREAMED_STEPS),
        Format::Yaml => None,
    };
    let (mut spec, includes) = if let Some(toml) = streamed {
        lower_spec_includes(source, &toml.rest, Some(&toml.steps))?
    } else {
        let value = parse_source(source).map_err(|d| Diagnostics(vec![d.with_source(source)]))?;
        lower_spec_includes(source, &value, None)?
    };
    crate::include::resolve(&mut spec, &includes, policy);
    let refused = policy.check_spec(&spec);
    spec.problems.extend(refused);
    Ok(spec)
}

/// The nearest `planrun.toml` at or above `dir`, lowered.
pub fn find_dir_config(dir: &Path) -> Result<DirConfig, Diagnostics> {
    find_dir_config_under(dir, &Policy::trusted())
}

/// [`find_dir_config`] under a policy: a `planrun.toml` the policy does not
/// let specs read is a problem and is not read. What it does that the
/// policy does not allow is [`Policy::check_dir_config`]'s.
pub fn find_dir_config_under(dir: &Path, policy: &Policy) -> Result<DirConfig, Diagnostics> {
    let mut current: Option<PathBuf> = Some(dir.to_path_buf());
    while let Some(d) = current {
        let candidate = d.join("planrun.toml");
        if candidate.is_file() {
            if let Some(refused) = policy.check_dir_config_file(&candidate, dir) {
                return Err(Diagnostics(vec![refused]));
            }
            let source = read_source(&candidate).map_err(|d| Diagnostics(vec![d]))?;
            let value =
                parse_source(&source).map_err(|d| Diagnostics(vec![d.with_source(&source)]))?;
            return lower_dir_config(&source, &value);
        }
        current = d.parent().map(Path::to_path_buf);
        if d.as_os_str().is_empty() {
            break;
        }
    }
    Ok(DirConfig::default())
}

/// Plans a lowered spec. `unavailable` lists kinds this build cannot run.
/// The problems lowering found come first in `Err`; every check whose inputs
/// are sound runs anyway.
pub fn plan(
    mut spec: Spec,
    dir: Arc<DirConfig>,
    overrides: &Overrides,
    unavailable: &[StepKind],
) -> Result<Plan, Diagnostics> {
    let mut diags = std::mem::take(&mut spec.problems);
    let source = Arc::clone(&spec.source);
    let dropped = |name: &str| spec.dropped_steps.iter().any(|d| d == name);

    // step ids are unique
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for step in &spec.steps {
        let start = diags.len();
        let file = spec.step_source(step.index);
        if let Some(&first) = ids.get(step.id.as_str()) {
            let first_file = spec.step_source(first);
            let first_span = spec.steps[first].id_span.clone();
            diags.push(if Arc::ptr_eq(file, first_file) {
                Diagnostic::new(
                    DiagnosticKind::Duplicate,
                    step.id_span.clone(),
                    format!("two steps have the id `{}`", step.id),
                )
                .label("second use")
                .related(first_span, "first use")
                .help("step ids must be unique within a spec")
            } else {
                // the two places are in different files: one is underlined,
                // the other named
                let (line, col) = first_file.line_col(first_span.start);
                Diagnostic::new(
                    DiagnosticKind::Duplicate,
                    step.id_span.clone(),
                    format!(
                        "two steps have the id `{}`: one in `{}`, one in `{}`",
                        step.id,
                        first_file.name(),
                        file.name()
                    ),
                )
                .label("second use")
                .help(format!(
                    "step ids must be unique within a spec and the files it includes; the first use is at `{}:{line}:{col}`",
                    first_file.name()
                ))
            });
        } else {
            ids.insert(&step.id, step.index);
        }
        if unavailable.contains(&step.kind) {
            diags.push(
                Diagnostic::new(
                    DiagnosticKind::UnavailableKind,
                    step.kind_span.clone(),
                    format!(
                        "step kind `{}` is not available in this build of planrun",
                        step.kind.key()
                    ),
                )
                .label("this kind")
                .help(format!(
                    "build planrun with the `{}` feature of planrun-steps",
                    step.kind.key()
                )),
            );
        }
        diags.attach_since(start, file);
    }

    // variables: spec, directory and command line
    let mut var_names: BTreeSet<String> = BTreeSet::new();
    for var in dir.vars.iter().chain(&spec.vars) {
        var_names.insert(var.name.name.clone());
    }
    var_names.extend(overrides.vars.keys().cloned());
    for (v, var) in spec.vars.iter().enumerate() {
        let start = diags.len();
        if ids.contains_key(var.name.name.as_str()) {
            diags.push(
                Diagnostic::new(
                    DiagnosticKind::Duplicate,
                    var.name.span.clone(),
                    format!("`{}` is both a variable and a step id", var.name.name),
                )
                .label("variable")
                .help("rename one of them: `{{ name }}` must mean one thing"),
            );
        }
        if BUILTIN_NAMES.contains(&var.name.name.as_str()) || var.name.name == "result" {
            diags.push(
                Diagnostic::new(
                    DiagnosticKind::Duplicate,
                    var.name.span.clone(),
                    format!("`{}` is a built-in name", var.name.name),
                )
                .label("reserved")
                .help("choose another name for the variable"),
            );
        }
        diags.attach_since(start, spec.var_source(v));
    }

    // the item of a repeated step has a name of its own
    for step in &spec.steps {
        let Some(name) = step.repeat.as_deref().and_then(Repeat::item_name) else {
            continue;
        };
        let taken = if var_names.contains(&name.name) {
            Some("a variable")
        } else if ids.contains_key(name.name.as_str()) {
            Some("a step id")
        } else {
            None
        };
        if let Some(what) = taken {
            let start = diags.len();
            diags.push(
                Diagnostic::new(
                    DiagnosticKind::Duplicate,
                    name.span.clone(),
                    format!(
                        "`{}` is both {what} and the item of step `{}`",
                        name.name, step.id
                    ),
                )
                .label("the item's name")
                .help("name the item another way with `as`: `{{ name }}` must mean one thing"),
            );
            diags.attach_since(start, spec.step_source(step.index));
        }
    }

    // dependencies
    let default_needs = spec.defaults.or(&dir.defaults).needs.unwrap_or_default();
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(spec.steps.len());
    // steps with a need that names no step: what runs before them is unknown
    let mut unresolved = vec![false; spec.steps.len()];
    for (i, step) in spec.steps.iter().enumerate() {
        let start = diags.len();
        let mut d = Vec::new();
        match &step.needs {
            None => {
                if i > 0 && default_needs == DefaultNeeds::Previous {
                    d.push(i - 1);
                }
            }
            Some(needs) => {
                for need in needs {
                    match ids.get(need.name.as_str()) {
                        Some(&j) if j == i => diags.push(
                            Diagnostic::new(
                                DiagnosticKind::Cycle,
                                need.span.clone(),
                                format!("step `{}` needs itself", step.id),
                            )
                            .label("here")
                            .help("remove it from `needs`"),
                        ),
                        Some(&j) => d.push(j),
                        // waits for the broken step's own fix
                        None if dropped(&need.name) => unresolved[i] = true,
                        None => {
                            unresolved[i] = true;
                            diags.push(
                                Diagnostic::new(
                                    DiagnosticKind::UnknownStep,
                                    need.span.clone(),
                                    format!("no step has the id `{}`", need.name),
                                )
                                .label("unknown step")
                                .help(
                                    did_you_mean(&need.name, ids.keys().copied()).unwrap_or_else(
                                        || {
                                            format!(
                                                "steps in this spec: {}",
                                                code_list(spec.steps.iter().map(|s| &s.id))
                                            )
                                        },
                                    ),
                                ),
                            );
                        }
                    }
                }
            }
        }
        deps.push(d);
        diags.attach_since(start, spec.step_source(i));
    }

    let order = match topo_order(&deps) {
        Ok(order) => order,
        Err(cycle) => {
            let names: Vec<_> = cycle
                .iter()
                .map(|&i| format!("`{}`", spec.steps[i].id))
                .collect();
            let first = cycle[0];
            let mut d = Diagnostic::new(
                DiagnosticKind::Cycle,
                needs_span(&spec, first),
                format!(
                    "the steps' `needs` form a cycle: {} -> {}",
                    names.join(" -> "),
                    names[0]
                ),
            )
            .label(format!(
                "`{}` waits for `{}`",
                spec.steps[first].id,
                spec.steps[cycle[1 % cycle.len()]].id
            ))
            .help("remove one of these `needs` so the steps can run in some order");
            // a label can only point into the file the diagnostic shows,
            // and a long cycle gets the first few: the message names every
            // step anyway, and each label's snippet is rendered
            const LABELS: usize = 8;
            let file = spec.step_source(first);
            let same_file = |i: usize| Arc::ptr_eq(spec.step_source(i), file);
            for w in cycle
                .windows(2)
                .skip(1)
                .filter(|w| same_file(w[0]))
                .take(LABELS)
            {
                d = d.related(
                    needs_span(&spec, w[0]),
                    format!(
                        "`{}` waits for `{}`",
                        spec.steps[w[0]].id, spec.steps[w[1]].id
                    ),
                );
            }
            if (2..=LABELS + 2).contains(&cycle.len()) && same_file(cycle[cycle.len() - 1]) {
                let last = cycle[cycle.len() - 1];
                d = d.related(
                    needs_span(&spec, last),
                    format!(
                        "`{}` waits for `{}`",
                        spec.steps[last].id, spec.steps[first].id
                    ),
                );
            }
            diags.push(d.with_source(file));
            Vec::new()
        }
    };

    // references in templates: a cycle leaves no order, but "runs before"
    // still means something on the rest of the graph
    {
        // of two steps with one id, the first is the one `ids` knows
        let mut captures: HashMap<&str, Vec<&str>> = HashMap::new();
        for s in &spec.steps {
            captures
                .entry(s.id.as_str())
                .or_insert_with(|| s.captures.iter().map(|c| c.name.name.as_str()).collect());
        }
        for var in dir.vars.iter().chain(&spec.vars) {
            if let Some(value) = &var.value {
                let index = spec.vars.iter().position(|v| std::ptr::eq(v, var));
                let from_spec = index.is_some();
                let start = diags.len();
                value.visit_strings(&mut |s, span| {
                    if !crate::de::is_template(s) {
                        return;
                    }
                    match Template::parse(s, span.clone()) {
                        Ok(t) => {
                            for (root, _) in t.roots() {
                                if !(var_names.contains(root) || BUILTIN_NAMES.contains(&root))
                                    && from_spec
                                {
                                    diags.push(undefined(&t, root, None, "in a variable"));
                                }
                            }
                        }
                        Err(d) => {
                            if from_spec {
                                diags.push(d);
                            }
                        }
                    }
                });
                if let Some(index) = index {
                    diags.attach_since(start, spec.var_source(index));
                }
            }
        }
        for index in 0..spec.steps.len() {
            // a step read a step at a time is read again, one at a time
            let step = match spec.step(index) {
                Ok(step) => step,
                Err(problems) => {
                    diags.extend(problems);
                    continue;
                }
            };
            let scope = Scope {
                var_names: &var_names,
                ids: &ids,
                dropped: &spec.dropped_steps,
                unresolved: &unresolved,
                captures: &captures,
                deps: &deps,
                spec: &spec,
                step_index: step.index,
                repeat: None,
            };
            // `if` and `over` are read once, before the iterations: they
            // cannot read `repeat` or the item
            if let Some(when) = &step.when {
                scope.check(when, false, &mut diags);
            }
            if let Some(RepeatOver::Items { templates, .. }) = step.repeat.as_ref().map(|r| &r.over)
            {
                for t in templates {
                    scope.check(t, false, &mut diags);
                }
            }
            let scope = Scope {
                repeat: step.repeat.as_deref(),
                ..scope
            };
            let templates = step_templates(&step);
            let start = diags.len();
            for (t, has_result) in &templates {
                scope.check(t, *has_result, &mut diags);
            }
            diags.attach_since(start, spec.step_source(step.index));
        }
    }

    diags.attach(&source);
    if diags.is_empty() {
        Ok(Plan {
            spec,
            dir,
            deps,
            order,
        })
    } else {
        Err(diags)
    }
}

/// The templates of a step read in each attempt, each with whether it may
/// read `result`: its configuration's, its expectations' and its
/// captures'. Its `if` and `repeat.over` are not among them.
pub(crate) fn step_templates(step: &Step) -> Vec<(Cow<'_, Template>, bool)> {
    let mut templates: Vec<(Cow<'_, Template>, bool)> = Vec::new();
    templates.extend(
        step.config_templates
            .iter()
            .map(|t| (Cow::Borrowed(t), false)),
    );
    for e in &step.expect {
        if let Target::Expr(t) = &e.target {
            templates.push((Cow::Borrowed(t), true));
        }
        if let Some(m) = &e.matcher {
            matcher_templates(m, &mut templates);
        }
    }
    for c in &step.captures {
        if let Target::Expr(t) = &c.target {
            templates.push((Cow::Borrowed(t), true));
        }
    }
    templates
}

/// The templates written in a matcher's values, parsed (a matcher keeps
/// its values as written).
fn matcher_templates(m: &Matcher, out: &mut Vec<(Cow<'_, Template>, bool)>) {
    match m {
        Matcher::Literal(v) => literal_templates(v, out),
        Matcher::Object(entries) => entries.iter().for_each(|(_, m)| matcher_templates(m, out)),
        Matcher::Array(items, _) => items.iter().for_each(|m| matcher_templates(m, out)),
        Matcher::Ops(ops, _) => {
            for op in ops {
                op.op
                    .matchers()
                    .iter()
                    .for_each(|m| matcher_templates(m, out));
                if let Some(v) = op.op.value() {
                    literal_templates(v, out);
                }
            }
        }
    }
}

fn literal_templates(value: &crate::value::Value, out: &mut Vec<(Cow<'_, Template>, bool)>) {
    value.visit_strings(&mut |s, span| {
        if crate::de::is_template(s)
            && let Ok(t) = Template::parse(s, span.clone())
        {
            out.push((Cow::Owned(t), true));
        }
    });
}

struct Scope<'a> {
    var_names: &'a BTreeSet<String>,
    ids: &'a HashMap<&'a str, usize>,
    dropped: &'a [String],
    unresolved: &'a [bool],
    captures: &'a HashMap<&'a str, Vec<&'a str>>,
    deps: &'a [Vec<usize>],
    spec: &'a Spec,
    step_index: usize,
    /// The step's `repeat`, where its iteration's names can be read.
    repeat: Option<&'a Repeat>,
}

impl Scope<'_> {
    fn check(&self, t: &Template, has_result: bool, diags: &mut Diagnostics) {
        for (root, field) in t.roots() {
            if let Some(repeat) = self.repeat {
                if root == Repeat::NAME {
                    if let Some(field) = field
                        && !Repeat::FIELDS.contains(&field)
                    {
                        diags.push(
                            Diagnostic::new(
                                DiagnosticKind::UndefinedReference,
                                t.span.clone(),
                                format!("`repeat` has no `{field}`"),
                            )
                            .label(format!("reads `repeat.{field}`"))
                            .help(
                                did_you_mean(field, Repeat::FIELDS.iter().copied()).unwrap_or_else(
                                    || {
                                        String::from(
                                            "an iteration reads `repeat.index` (from 0) and `repeat.count`",
                                        )
                                    },
                                ),
                            ),
                        );
                    }
                    continue;
                }
                if repeat.item_name().is_some_and(|k| k.name == root) {
                    continue;
                }
            }
            if self.var_names.contains(root)
                || BUILTIN_NAMES.contains(&root)
                || (has_result && root == "result")
                || self.dropped.iter().any(|d| d == root)
            {
                continue;
            }
            if let Some(&j) = self.ids.get(root) {
                let step = &self.spec.steps[self.step_index];
                if j == self.step_index {
                    diags.push(undefined(t, root, None, "here").help(
                        "a step reads its own result through `result`, e.g. `result.status`",
                    ));
                    continue;
                }
                // with a need that names no step, what runs before is unknown
                let unknown = ancestry_unresolved(self.deps, self.unresolved, self.step_index);
                let before = runs_before(self.deps, j, self.step_index);
                if !before && !unknown {
                    diags.push(
                        Diagnostic::new(
                            DiagnosticKind::UndefinedReference,
                            t.span.clone(),
                            format!(
                                "step `{}` reads `{root}`, which may not have run yet",
                                step.id
                            ),
                        )
                        .label(format!("reads `{root}`"))
                        .help(format!("add `needs = [\"{root}\"]` to step `{}`", step.id)),
                    );
                }
                if before
                    && !unknown
                    && let Some(why) = self.may_miss(j)
                    && !self.guarded(t, root)
                {
                    let read = field.map_or_else(|| root.to_string(), |f| format!("{root}.{f}"));
                    diags.push(
                        Diagnostic::new(
                            DiagnosticKind::UndefinedReference,
                            t.span.clone(),
                            format!("{why}, so `{read}` may be undefined"),
                        )
                        .label(format!("reads `{read}` unguarded"))
                        .help(format!(
                            "run the step only when it can read it: `if = \"{root} is defined\"`; or guard the read: `{{{{ {read} if {root} is defined else '' }}}}`"
                        )),
                    );
                }
                // the captures a step defines do not depend on the order; a
                // capture with a problem is not among them
                if let Some(field) = field {
                    let caps = &self.captures[root];
                    if !caps.contains(&field) && self.spec.steps[j].captures_known {
                        diags.push(
                            Diagnostic::new(
                                DiagnosticKind::UndefinedReference,
                                t.span.clone(),
                                format!("step `{root}` captures no `{field}`"),
                            )
                            .label(format!("reads `{root}.{field}`"))
                            .help(did_you_mean(field, caps.iter().copied()).unwrap_or_else(|| {
                                if caps.is_empty() {
                                    format!("add `capture.{field} = \"json.{field}\"` to step `{root}`")
                                } else {
                                    format!(
                                        "step `{root}` captures {}",
                                        code_list(caps)
                                    )
                                }
                            })),
                        );
                    }
                }
                continue;
            }
            let mut d = undefined(t, root, Some(self), "here");
            if root == Repeat::NAME {
                d = d.help(if self.spec.steps[self.step_index].repeat.is_some() {
                    "`repeat` is read in the iterations, not in `if` or `over`, which are read once before them"
                } else {
                    "`repeat` is defined only in a step with `repeat = …`"
                });
            }
            diags.push(d);
        }
    }
}

impl Scope<'_> {
    /// Why this step can run when step `j`, which it reads from and which
    /// runs before it, did not pass; `None` when it cannot.
    fn may_miss(&self, j: usize) -> Option<String> {
        let steps = &self.spec.steps;
        let (step, from) = (&steps[self.step_index], &steps[j]);
        if step.always {
            return Some(format!(
                "teardown step `{}` runs even when `{}` did not pass",
                step.id, from.id
            ));
        }
        if from.when.is_some() {
            return Some(format!(
                "step `{}` may be skipped by its `if` while step `{}` runs",
                from.id, step.id
            ));
        }
        // a failed step stops every step that needs it, and the steps that
        // need those, up to a teardown step, which runs anyway
        let mut seen = vec![false; steps.len()];
        let mut stack = vec![self.step_index];
        while let Some(i) = stack.pop() {
            for &d in &self.deps[i] {
                if d == j {
                    return None;
                }
                if !steps[d].always && !seen[d] {
                    seen[d] = true;
                    stack.push(d);
                }
            }
        }
        Some(format!(
            "step `{}` can run when `{}` did not pass (a teardown step between them lets it through)",
            step.id, from.id
        ))
    }

    /// Whether a read of `root` in `t` is guarded: the step's `if` or the
    /// template itself tests `root is defined`, or the template passes
    /// `root` itself through `default`. `root.field | default(…)` is not a
    /// guard: in strict mode reading a field of an undefined value fails
    /// before the filter runs.
    fn guarded(&self, t: &Template, root: &str) -> bool {
        let name = regex::escape(root);
        let Ok(tests) = regex::Regex::new(&format!(
            r"(^|[^\w.]){name}\s+is\s+defined\b|(^|[^\w.]){name}\s*\|\s*(default|d)\b"
        )) else {
            return false;
        };
        let when = self.spec.steps[self.step_index].when.as_ref();
        tests.is_match(&t.source) || when.is_some_and(|w| tests.is_match(&w.source))
    }
}

fn undefined(t: &Template, root: &str, scope: Option<&Scope<'_>>, where_: &str) -> Diagnostic {
    let mut candidates: Vec<&str> = BUILTIN_NAMES.to_vec();
    if let Some(scope) = scope {
        candidates.extend(scope.var_names.iter().map(String::as_str));
        candidates.extend(scope.ids.keys().copied());
    }
    Diagnostic::new(
        DiagnosticKind::UndefinedReference,
        t.span.clone(),
        format!("`{root}` is not defined {where_}"),
    )
    .label(format!("reads `{root}`"))
    .help(did_you_mean(root, candidates).unwrap_or_else(|| {
        format!("define it under `[vars]`, pass `--var {root}=…`, or capture it in an earlier step")
    }))
}

fn needs_span(spec: &Spec, step: usize) -> Span {
    let s = &spec.steps[step];
    s.needs
        .as_ref()
        .and_then(|n| Some(n.first()?.span.start..n.last()?.span.end))
        .unwrap_or_else(|| s.id_span.clone())
}

/// Kahn's algorithm, keeping file order among ready steps; on a cycle returns
/// the steps of one cycle in order.
fn topo_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = deps.len();
    let mut indegree: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut order = Vec::with_capacity(n);
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (j, d) in deps.iter().enumerate() {
        for &i in d {
            dependents[i].push(j);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &dependents[i] {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.insert(j);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // walk back along unresolved dependencies until a step repeats
    let start = (0..n)
        .find(|&i| indegree[i] > 0)
        .expect("invariant: a step is left");
    let mut path = vec![start];
    let mut current = start;
    loop {
        let next = *deps[current]
            .iter()
            .find(|&&d| indegree[d] > 0)
            .expect("invariant: a blocked step waits for a blocked step");
        if let Some(pos) = path.iter().position(|&p| p == next) {
            return Err(path[pos..].to_vec());
        }
        path.push(next);
        current = next;
    }
}

/// Whether `step` or a step it (transitively) needs has a need that names no
/// step, so that its ancestry is not known.
fn ancestry_unresolved(deps: &[Vec<usize>], unresolved: &[bool], step: usize) -> bool {
    let mut seen = vec![false; deps.len()];
    let mut stack = vec![step];
    while let Some(i) = stack.pop() {
        if unresolved[i] {
            return true;
        }
        for &d in &deps[i] {
            if !seen[d] {
                seen[d] = true;
                stack.push(d);
            }
        }
    }
    false
}

/// Whether step `before` is a (transitive) need of step `step`. Asked only
/// for steps that templates name, so no ancestor sets are built for the rest.
fn runs_before(deps: &[Vec<usize>], before: usize, step: usize) -> bool {
    let mut seen = vec![false; deps.len()];
    let mut stack = vec![step];
    while let Some(i) = stack.pop() {
        for &d in &deps[i] {
            if d == before {
                return true;
            }
            if !seen[d] {
                seen[d] = true;
                stack.push(d);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Format;

    fn plan_text(text: &str) -> Result<Plan, Diagnostics> {
        let source = Arc::new(SourceFile::new("t.toml", text, Format::Toml));
        let spec = load_spec(&source)?;
        plan(
            spec,
            Arc::new(DirConfig::default()),
            &Overrides::default(),
            &[],
        )
    }

    /// A spec of `n` steps of every shape, `[[steps]]` tables all.
    #[allow(clippy::format_push_string)]
    fn many_steps(n: usize, extra: &str) -> String {
        let mut text = String::from("id = \"MANY\"\nvars.base = \"http://127.0.0.1:1\"\n");
        text.push_str(extra);
        for i in 0..n {
            match i % 5 {
                0 => text.push_str(&format!(
                    "[[steps]]\nid = \"s{i}\"\nhttp = {{ get = \"{{{{ base }}}}/{i}\" }}\nexpect.status = 200\n[steps.capture]\nn = \"json.$.n\"\n"
                )),
                1 => text.push_str(&format!(
                    "[[steps]]\nid = \"s{i}\"\nname = \"reads a capture\"\n[steps.http]\npost = \"{{{{ base }}}}/x\"\njson = {{ n = \"{{{{ s{}.n }}}}\" }}\n[steps.expect]\nstatus = {{ in = [200, 201] }}\n\"json.$.ok\" = true\n",
                    i - 1
                )),
                2 => text.push_str(&format!(
                    "# a comment between steps\n[[steps]]\nid = \"s{i}\"\nneeds = [\"s{}\"]\nif = \"{{{{ s{}.n > 1 }}}}\"\nsse = {{ get = \"{{{{ base }}}}/e\", until = {{ data = {{ contains = \"done\" }} }} }}\n",
                    i - 2,
                    i - 2
                )),
                3 => text.push_str(&format!(
                    "[[steps]]\nid = \"s{i}\"\nwait = \"1ms\"\nrepeat = 2\nretry = {{ attempts = 2, interval = \"1ms\" }}\n"
                )),
                _ => text.push_str("[[steps]]\nexec = { cmd = [\"true\"] }\nalways = true\n"),
            }
        }
        text
    }

    #[test]
    fn a_spec_read_a_step_at_a_time_plans_as_one_read_whole() {
        let n = STREAMED_STEPS + 5;
        let text = many_steps(n, "");
        let source = Arc::new(SourceFile::new("many.toml", text.as_str(), Format::Toml));
        let streamed = load_spec(&source).expect("loads");
        assert!(
            streamed.steps.iter().all(|s| s.chunk.is_some()),
            "read a step at a time"
        );
        let root = parse_source(&source).expect("parses");
        let whole = crate::lower::lower_spec(&source, &root).expect("lowers");
        assert!(whole.steps.iter().all(|s| s.chunk.is_none()));
        assert_eq!(streamed.steps.len(), whole.steps.len());
        for (i, one) in whole.steps.iter().enumerate() {
            let mut again = streamed.step(i).expect("reads again").into_owned();
            again.chunk = None;
            assert_eq!(format!("{again:?}"), format!("{one:?}"), "step {i}");
        }
        let planned = |spec| {
            plan(
                spec,
                Arc::new(DirConfig::default()),
                &Overrides::default(),
                &[],
            )
            .map_err(|d: Diagnostics| d.0.iter().map(|d| d.message.clone()).collect::<Vec<_>>())
        };
        let streamed = planned(streamed).expect("plans");
        let whole = planned(whole).expect("plans");
        assert_eq!(streamed.deps, whole.deps);
        assert_eq!(streamed.order, whole.order);
    }

    #[test]
    fn a_spec_read_a_step_at_a_time_has_the_problems_of_one_read_whole() {
        // problems in the steps' configurations, expectations and references,
        // and outside them
        let mut text = many_steps(STREAMED_STEPS + 5, "defaults.timeout = 5\n");
        text.push_str("[[steps]]\nid = \"late\"\nhttp = { get = \"{{ nobody.n }}\", methd = \"GET\" }\nexpect.status = \"{{ s3.n }}\"\nexpect.sttus = 200\n");
        text.push_str("[[steps]]\nid = \"s7\"\nneeds = [\"nobody\"]\nwait = \"soon\"\n");
        let source = Arc::new(SourceFile::new("many.toml", text.as_str(), Format::Toml));
        let shown = |diags: Diagnostics| -> Vec<String> {
            diags
                .0
                .iter()
                .map(|d| format!("{:?} {} {:?}", d.span, d.message, d.help))
                .collect()
        };
        let streamed = load_spec(&source).expect("loads");
        assert!(streamed.steps[0].chunk.is_some(), "read a step at a time");
        let planned = |spec| match plan(
            spec,
            Arc::new(DirConfig::default()),
            &Overrides::default(),
            &[],
        ) {
            Ok(_) => panic!("the spec has problems"),
            Err(diags) => diags,
        };
        let streamed = planned(streamed);
        let root = parse_source(&source).expect("parses");
        let whole = planned(crate::lower::lower_spec(&source, &root).expect("lowers"));
        let streamed = shown(streamed);
        assert!(streamed.len() >= 6, "{streamed:#?}");
        assert_eq!(streamed, shown(whole));
    }

    #[test]
    fn default_dependency_is_previous_step() {
        let p = plan_text("[[steps]]\nwait = \"1ms\"\n[[steps]]\nwait = \"1ms\"\n").expect("plan");
        assert_eq!(p.deps, vec![vec![], vec![0]]);
        assert_eq!(p.order, vec![0, 1]);
    }

    #[test]
    fn defaults_needs_nothing_starts_every_step_without_needs_at_once() {
        let steps = "[[steps]]\nid = \"a\"\nwait = \"1ms\"\n[[steps]]\nwait = \"1ms\"\n[[steps]]\nneeds = [\"a\"]\nwait = \"1ms\"\n";
        let p = plan_text(&format!("defaults.needs = []\n{steps}")).expect("plan");
        assert_eq!(p.deps, vec![vec![], vec![], vec![0]]);
        // from the directory's `planrun.toml` as well
        let source = Arc::new(SourceFile::new("t.toml", steps, Format::Toml));
        let dir = DirConfig {
            defaults: crate::model::Defaults {
                needs: Some(DefaultNeeds::Nothing),
                ..crate::model::Defaults::default()
            },
            ..DirConfig::default()
        };
        let spec = load_spec(&source).expect("spec");
        let p = plan(spec, Arc::new(dir), &Overrides::default(), &[]).expect("plan");
        assert_eq!(p.deps, vec![vec![], vec![], vec![0]]);
        // `[]` is the one value
        assert_eq!(
            messages(&format!("defaults.needs = [\"a\"]\n{steps}")),
            ["`defaults.needs` can only be `[]`"]
        );
    }

    #[test]
    fn cycle_names_every_step() {
        let err = plan_text(
            "[[steps]]\nid = \"a\"\nneeds = [\"c\"]\nwait = \"1ms\"\n[[steps]]\nid = \"b\"\nneeds = [\"a\"]\nwait = \"1ms\"\n[[steps]]\nid = \"c\"\nneeds = [\"b\"]\nwait = \"1ms\"\n",
        )
        .expect_err("cycle");
        let d = &err.0[0];
        assert_eq!(d.kind, DiagnosticKind::Cycle);
        assert!(
            d.message.contains("`a`") && d.message.contains("`b`") && d.message.contains("`c`"),
            "{}",
            d.message
        );
    }

    #[test]
    fn a_long_cycle_is_named_whole_with_a_few_labels() {
        // each label's snippet is rendered: thousands of them took minutes
        let n = 2_000;
        let mut text = String::new();
        for i in 0..n {
            let next = (i + 1) % n;
            text += &["[[steps]]\nid = \"s", &i.to_string(), "\"\nneeds = [\"s"].concat();
            text += &[&next.to_string(), "\"]\nwait = \"1ms\"\n"].concat();
        }
        let err = plan_text(&text).expect_err("cycle");
        let d = &err.0[0];
        assert!(
            d.message.ends_with("`s1998` -> `s1999` -> `s0`"),
            "{}",
            &d.message[d.message.len() - 60..]
        );
        assert_eq!(d.related.len(), 8);
        // a short one keeps a label for every step
        let err =
            plan_text(&text.replace("needs = [\"s10\"]", "needs = [\"s0\"]")).expect_err("cycle");
        assert_eq!(err.0[0].related.len(), 9, "{}", err.0[0].message);
    }

    fn messages(text: &str) -> Vec<String> {
        plan_text(text)
            .map(|_| ())
            .expect_err("problems")
            .iter()
            .map(|d| d.message.clone())
            .collect()
    }

    #[test]
    fn a_step_with_a_problem_does_not_hide_the_graph() {
        // a bad timeout and an unknown need, found in one pass
        assert_eq!(
            messages(
                "[[steps]]\nid = \"a\"\nwait = \"1ms\"\ntimeout = 5\ncapture.x = \"status\"\n[[steps]]\nid = \"b\"\nneeds = [\"c\"]\nhttp = { get = \"http://h/{{ a.y }}\" }\n[[steps]]\nneeds = []\nhttp = { get = \"http://h/{{ b.z }}\" }\n",
            ),
            [
                "a duration needs a unit: `5`",
                "no step has the id `c`",
                "step `a` captures no `y`",
                "step `step-3` reads `b`, which may not have run yet",
                "step `b` captures no `z`",
            ]
        );
        // `b` has an unknown need: whether `a` runs before it waits for the
        // fix; `a` has a problem of its own, so its captures are not judged
        assert_eq!(
            messages(
                "[[steps]]\nid = \"a\"\nwait = \"1ms\"\ncapture.x = { from = \"status\", regex = \"(\" }\n[[steps]]\nid = \"b\"\nneeds = [\"c\"]\nhttp = { get = \"http://h/{{ a.y }}\" }\n",
            ),
            [
                "invalid regular expression: regex parse error:\n    (\n    ^\nerror: unclosed group",
                "no step has the id `c`",
            ]
        );
    }

    #[test]
    fn a_step_that_can_run_without_the_one_it_reads_needs_a_guard() {
        let create = "[[steps]]\nid = \"create\"\nhttp = { post = \"http://h/\" }\ncapture.id = \"json.id\"\n";
        let teardown = |extra: &str, url: &str| {
            format!(
                "{create}[[steps]]\nid = \"cleanup\"\nalways = true\n{extra}http = {{ delete = \"http://h/{url}\" }}\n"
            )
        };
        assert_eq!(
            messages(&teardown("", "{{ create.id }}")),
            [
                "teardown step `cleanup` runs even when `create` did not pass, so `create.id` may be undefined"
            ]
        );
        // `default` on the field does not help: the field of an undefined
        // value cannot be read in strict mode
        assert_eq!(
            messages(&teardown("", "{{ create.id | default('') }}")).len(),
            1
        );
        for guarded in [
            teardown("if = \"create is defined\"\n", "{{ create.id }}"),
            teardown("", "{{ create.id if create is defined else '' }}"),
            teardown("", "{{ (create | default({})).id | default('') }}"),
        ] {
            assert!(plan_text(&guarded).is_ok(), "{guarded}");
        }
        // a step after one with an `if`, and one let through by a teardown
        assert_eq!(
            messages(&format!(
                "{}\n[[steps]]\nhttp = {{ get = \"http://h/{{{{ create.id }}}}\" }}\n",
                create.replace("[[steps]]\n", "[[steps]]\nif = \"env.X == '1'\"\n")
            )),
            [
                "step `create` may be skipped by its `if` while step `step-2` runs, so `create.id` may be undefined"
            ]
        );
        assert_eq!(
            messages(&format!(
                "{create}[[steps]]\nid = \"t\"\nalways = true\nwait = \"1ms\"\n[[steps]]\nhttp = {{ get = \"http://h/{{{{ create.id }}}}\" }}\n"
            )),
            [
                "step `step-3` can run when `create` did not pass (a teardown step between them lets it through), so `create.id` may be undefined"
            ]
        );
        // a step stopped by the failure of the one it reads needs no guard
        assert!(plan_text(&format!("{create}[[steps]]\nwait = \"1ms\"\n[[steps]]\nhttp = {{ get = \"http://h/{{{{ create.id }}}}\" }}\n")).is_ok());
    }

    #[test]
    fn a_repeated_step_reads_its_iteration_and_item_and_no_other_step_does() {
        let ok = "vars.users = [\"alice\"]\n[[steps]]\nid = \"s\"\nhttp = { get = \"http://h/{{ user }}/{{ repeat.index }}/{{ repeat.count }}\" }\nrepeat = { over = \"{{ users }}\", as = \"user\" }\nexpect.json.name = \"{{ user }}\"\ncapture.n = \"{{ result.status + repeat.index }}\"\n[[steps]]\nhttp = { get = \"http://h/{{ s.n[0] }}/{{ s.n | length }}\" }\n";
        assert!(plan_text(ok).is_ok(), "{:?}", plan_text(ok).err());
        // `item` is the default name
        assert!(
            plan_text(
                "[[steps]]\nhttp = { get = \"http://h/{{ item }}\" }\nrepeat = { over = [1, 2] }\n"
            )
            .is_ok()
        );
        assert_eq!(
            messages(
                "[[steps]]\nhttp = { get = \"http://h/{{ repeat.idx }}/{{ user }}\" }\nrepeat = { over = [1], as = \"usr\" }\n[[steps]]\nhttp = { get = \"http://h/{{ repeat.index }}/{{ usr }}\" }\n"
            ),
            [
                "`repeat` has no `idx`",
                "`user` is not defined here",
                "`repeat` is not defined here",
                "`usr` is not defined here",
            ]
        );
        // `if` and `over` are read before the iterations
        assert_eq!(
            messages(
                "[[steps]]\nif = \"repeat.index > 1\"\nhttp = { get = \"http://h/\" }\nrepeat = { over = \"{{ item }}\" }\n"
            ),
            ["`repeat` is not defined here", "`item` is not defined here"]
        );
        // the item's name is its own
        assert_eq!(
            messages(
                "vars.user = \"x\"\n[[steps]]\nhttp = { get = \"http://h/{{ user }}\" }\nrepeat = { over = [1], as = \"user\" }\n"
            ),
            ["`user` is both a variable and the item of step `step-1`"]
        );
    }

    #[test]
    fn a_dropped_step_is_not_reported_again() {
        // `login` has no known kind: needing it or reading it says nothing new
        assert_eq!(
            messages(
                "[[steps]]\nid = \"login\"\nhtp = { get = \"x\" }\n[[steps]]\nneeds = [\"login\"]\nhttp = { get = \"http://h/{{ login.t }}\" }\n",
            ),
            ["unknown step kind `htp`"]
        );
    }

    #[test]
    fn capture_must_come_from_an_ancestor() {
        let err = plan_text(
            "[[steps]]\nid = \"a\"\nneeds = []\nhttp = { get = \"http://x/\" }\ncapture.token = \"json.token\"\n[[steps]]\nid = \"b\"\nneeds = []\nhttp = { get = \"http://x/{{ a.token }}\" }\n",
        )
        .expect_err("not an ancestor");
        assert_eq!(err.0[0].kind, DiagnosticKind::UndefinedReference);
        assert!(err.0[0].help.as_deref().unwrap_or("").contains("needs"));
        let ok = plan_text(
            "[[steps]]\nid = \"a\"\nhttp = { get = \"http://x/\" }\ncapture.token = \"json.token\"\n[[steps]]\nid = \"b\"\nhttp = { get = \"http://x/{{ a.token }}\" }\n",
        );
        assert!(ok.is_ok(), "{ok:?}");
        let err = plan_text(
            "[[steps]]\nid = \"a\"\nhttp = { get = \"http://x/\" }\ncapture.token = \"json.token\"\n[[steps]]\nid = \"b\"\nhttp = { get = \"http://x/{{ a.tokn }}\" }\n",
        )
        .expect_err("unknown capture");
        assert_eq!(err.0[0].help.as_deref(), Some("did you mean `token`?"));
    }
}

#[cfg(test)]
#[allow(clippy::format_push_string)]
mod twin_tests {
    use super::*;
    use crate::model::Target;
    use crate::source::Format;

    /// The parts of a plan that do not depend on the file's layout.
    fn shape(text: &str, format: Format) -> String {
        let source = Arc::new(SourceFile::new("twin", text, format));
        let spec = load_spec(&source).expect("valid");
        let p = plan(
            spec,
            Arc::new(DirConfig::default()),
            &Overrides::default(),
            &[],
        )
        .expect("plans");
        let mut out = format!(
            "{} {:?} {:?} {:?}\n",
            p.spec.id, p.spec.priority, p.spec.tags, p.deps
        );
        for v in &p.spec.vars {
            out.push_str(&format!(
                "var {} {:?} {}\n",
                v.name.name,
                v.value.as_ref().map(crate::value::Value::to_json),
                v.secret
            ));
        }
        for s in &p.spec.steps {
            out.push_str(&format!(
                "step {} {:?} {} always={} timeout={:?}\n",
                s.id,
                s.kind,
                s.config.to_json(),
                s.always,
                s.timeout
            ));
            for e in &s.expect {
                let t = match &e.target {
                    Target::Path { text, .. } => text.clone(),
                    other => other.describe(),
                };
                out.push_str(&format!("  expect {t} blocking={}\n", e.blocking));
            }
            for c in &s.captures {
                out.push_str(&format!(
                    "  capture {} {}\n",
                    c.name.name,
                    c.target.describe()
                ));
            }
        }
        out
    }

    #[test]
    fn toml_and_yaml_twins_lower_to_the_same_plan() {
        let toml = r#"
id = "TC-005"
priority = "high"
tags = ["asgi", "streaming"]

[vars]
base_url = "http://127.0.0.1:8080"
token = { value = "t0p", secret = true }

[[steps]]
id = "login"
http = { post = "{{ base_url }}/api/auth/login/", json = { username = "qa", n = 1 } }
expect.status = 200
expect.header.content-type = { starts_with = "application/json" }
capture.user = "json.user.username"

[[steps]]
id = "me"
timeout = "2s"
http = { get = "{{ base_url }}/api/auth/me/" }
should.duration = { lt = "500ms" }
expect.json = { username = "{{ login.user }}" }

[[steps]]
id = "down"
always = true
wait = "1ms"
"#;
        let yaml = r#"
id: TC-005
priority: high
tags: [asgi, streaming]
vars:
  base_url: http://127.0.0.1:8080
  token: { value: t0p, secret: true }
steps:
  - id: login
    http: { post: "{{ base_url }}/api/auth/login/", json: { username: qa, n: 1 } }
    expect:
      status: 200
      header: { content-type: { starts_with: application/json } }
    capture: { user: json.user.username }
  - id: me
    timeout: 2s
    http: { get: "{{ base_url }}/api/auth/me/" }
    should: { duration: { lt: 500ms } }
    expect:
      json: { username: "{{ login.user }}" }
  - id: down
    always: true
    wait: 1ms
"#;
        assert_eq!(shape(toml, Format::Toml), shape(yaml, Format::Yaml));
    }
}
