//! Step selection (`run --step ID`): the part of a plan one step needs.
//!
//! A selected step keeps the steps it needs, transitively, and the teardown
//! (`always`) steps that clean up after what is kept: those that need a kept
//! step. A teardown step's needs outside the kept steps are dropped, not
//! added: it cleans up after what ran, and a capture it reads from a step
//! that did not run is undefined, as when that step fails (guard it with
//! `if = "step is defined"`). Everything else is left out of the plan, so
//! the runner never sees it. This module only builds plans; it must
//! not run or print anything.

use planrun_spec::plan::Plan;

/// An id that names no step of the spec, with the closest one.
#[derive(Debug)]
pub(crate) struct UnknownStep {
    /// The id asked for.
    pub(crate) id: String,
    /// The step id closest to it, if one is close.
    pub(crate) suggestion: Option<String>,
}

impl std::fmt::Display for UnknownStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no step `{}`", self.id)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

/// The index of step `id` in `plan`, or what was closest.
pub(crate) fn step_index(plan: &Plan, id: &str) -> Result<usize, UnknownStep> {
    if let Some(i) = plan.spec.steps.iter().position(|s| s.id == id) {
        return Ok(i);
    }
    let suggestion = plan
        .spec
        .steps
        .iter()
        .map(|s| (strsim::levenshtein(&s.id, id), &s.id))
        .filter(|(d, candidate)| *d <= 2.max(candidate.chars().count() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, s)| s.clone());
    Err(UnknownStep {
        id: id.to_owned(),
        suggestion,
    })
}

/// Which steps run when `selected` are asked for: those, the steps they
/// need (transitively), and the teardown steps that need a kept step.
pub(crate) fn closure(plan: &Plan, selected: &[usize]) -> Vec<bool> {
    let n = plan.spec.steps.len();
    let mut keep = needed(plan, selected);
    // teardown of teardown: repeat until nothing changes
    loop {
        let more: Vec<usize> = (0..n)
            .filter(|&i| {
                !keep[i] && plan.spec.steps[i].always && plan.deps[i].iter().any(|&d| keep[d])
            })
            .collect();
        if more.is_empty() {
            return keep;
        }
        for i in more {
            keep[i] = true;
        }
    }
}

/// `selected` and the steps they need, transitively.
pub(crate) fn needed(plan: &Plan, selected: &[usize]) -> Vec<bool> {
    let n = plan.spec.steps.len();
    let mut keep = vec![false; n];
    let mut stack: Vec<usize> = selected.to_vec();
    while let Some(i) = stack.pop() {
        if i < n && !keep[i] {
            keep[i] = true;
            stack.extend(plan.deps[i].iter().copied());
        }
    }
    keep
}

/// The plan with only the kept steps, renumbered; their needs among each
/// other stay as they were.
pub(crate) fn sub_plan(plan: &Plan, keep: &[bool]) -> Plan {
    let mut new_index = vec![None; plan.spec.steps.len()];
    let mut next = 0;
    for (i, kept) in keep.iter().enumerate() {
        if *kept {
            new_index[i] = Some(next);
            next += 1;
        }
    }
    let mut out = plan.clone();
    out.spec.steps = plan
        .spec
        .steps
        .iter()
        .filter(|s| keep.get(s.index).copied().unwrap_or(false))
        .cloned()
        .map(|mut s| {
            s.index = new_index[s.index].expect("invariant: a kept step has a new index");
            s
        })
        .collect();
    out.deps = plan
        .deps
        .iter()
        .enumerate()
        .filter(|(i, _)| keep[*i])
        .map(|(_, deps)| deps.iter().filter_map(|&d| new_index[d]).collect())
        .collect();
    out.order = plan.order.iter().filter_map(|&i| new_index[i]).collect();
    // each included file's steps are renumbered with the rest: they stay
    // together, in order
    let kept_before = |i: usize| keep.iter().take(i).filter(|k| **k).count();
    for included in &mut out.spec.includes {
        included.steps = kept_before(included.steps.start)..kept_before(included.steps.end);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use planrun_spec::model::{DirConfig, Overrides};
    use planrun_spec::plan::{load_spec, plan};
    use planrun_spec::source::{Format, SourceFile};

    use super::*;

    fn planned(text: &str) -> Plan {
        let source = Arc::new(SourceFile::new("t.toml", text.to_owned(), Format::Toml));
        let spec = load_spec(&source).expect("spec");
        plan(
            spec,
            Arc::new(DirConfig::default()),
            &Overrides::default(),
            &[],
        )
        .expect("plan")
    }

    const SPEC: &str = r#"
id = "T"
[[steps]]
id = "login"
wait = "1ms"
[[steps]]
id = "create"
wait = "1ms"
needs = ["login"]
[[steps]]
id = "other"
wait = "1ms"
needs = []
[[steps]]
id = "read"
wait = "1ms"
needs = ["create"]
[[steps]]
id = "cleanup"
wait = "1ms"
needs = ["create"]
always = true
[[steps]]
id = "cleanup-other"
wait = "1ms"
needs = ["create", "other"]
always = true
"#;

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.spec.steps.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn a_step_keeps_what_it_needs_and_its_teardown() {
        let p = planned(SPEC);
        let read = step_index(&p, "read").unwrap();
        let sub = sub_plan(&p, &closure(&p, &[read]));
        assert_eq!(
            ids(&sub),
            ["login", "create", "read", "cleanup", "cleanup-other"]
        );
        assert_eq!(sub.deps, [vec![], vec![0], vec![1], vec![1], vec![1]]);
        assert_eq!(sub.order.len(), 5);
        assert!(sub.spec.steps.iter().enumerate().all(|(i, s)| s.index == i));
    }

    #[test]
    fn teardown_runs_after_what_it_needs_that_ran() {
        let p = planned(SPEC);
        let other = step_index(&p, "other").unwrap();
        let sub = sub_plan(&p, &closure(&p, &[other]));
        assert_eq!(ids(&sub), ["other", "cleanup-other"]);
        assert_eq!(sub.deps, [vec![], vec![0]]);
    }

    #[test]
    fn a_step_nothing_cleans_up_after_runs_alone() {
        let p = planned(&SPEC.replace("always = true", ""));
        let other = step_index(&p, "other").unwrap();
        assert_eq!(ids(&sub_plan(&p, &closure(&p, &[other]))), ["other"]);
    }

    #[test]
    fn an_unknown_step_suggests_the_closest() {
        let p = planned(SPEC);
        let err = step_index(&p, "craete").unwrap_err();
        assert_eq!(err.to_string(), "no step `craete` (did you mean `create`?)");
        let err = step_index(&p, "zzzzzzzz").unwrap_err();
        assert_eq!(err.to_string(), "no step `zzzzzzzz`");
    }
}
