//! A directory's setup and teardown specs (`setup` and `teardown` in its
//! `planrun.toml`) among the other specs of a run: which plan is which, and
//! when each may start.
//!
//! A plan is the setup (or teardown) of the `planrun.toml` it was planned
//! with when its file is the one that file names; the other plans planned
//! with that `planrun.toml` are its members. Members start once every setup
//! of theirs has ended, and are not run when one did not pass; a teardown
//! starts once the setups and members have ended, however they ended. Only
//! the plans handed to the run count: one without its setup runs as if the
//! directory had none. This module decides order only: running a spec is
//! `Runner::run_spec`'s, and it never sends events.

use std::collections::HashMap;
use std::path::PathBuf;

use super::specs::Head;
use crate::events::SpecStatus;

/// What a plan is to its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Its `planrun.toml` has no setup or teardown (or it has none).
    Plain,
    /// The setup of group `.0`.
    Setup(usize),
    /// A spec of group `.0` that waits for its setup.
    Member(usize),
    /// The teardown of group `.0`.
    Teardown(usize),
}

/// The plans that share a `planrun.toml` naming a setup or a teardown.
#[derive(Debug)]
struct Group {
    /// The setup as written in `planrun.toml`, for the reason members give.
    setup_name: String,
    /// Setups not ended yet.
    setups_left: usize,
    /// How a setup that did not pass ended.
    setup_failed: Option<SpecStatus>,
    /// Setups and members not ended yet: the teardown waits for them.
    left: usize,
}

/// Whether a plan may start now.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Start {
    /// Run it with the run's stop signal.
    Run,
    /// Run it with a stop signal of its own: a teardown runs in full even
    /// after Ctrl-C, as a teardown step does.
    RunToTheEnd,
    /// Do not run it; its steps are skipped for this reason.
    Skip(String),
    /// Not yet: its setup (or, for a teardown, a spec of its directory) runs.
    Wait,
}

/// The roles of a run's plans and how far each group has come.
#[derive(Debug)]
pub(super) struct Dirs {
    roles: Vec<Role>,
    groups: Vec<Group>,
}

impl Dirs {
    /// Sorts the specs into groups by the `planrun.toml` they were planned
    /// with.
    pub(super) fn new(plans: &[Head]) -> Self {
        let mut keys: HashMap<PathBuf, usize> = HashMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let roles: Vec<Role> = plans
            .iter()
            .map(|plan| {
                let dir = &plan.dir;
                let Some(key) = dir
                    .path()
                    .filter(|_| dir.setup.is_some() || dir.teardown.is_some())
                else {
                    return Role::Plain;
                };
                let g = *keys.entry(key.to_path_buf()).or_insert_with(|| {
                    groups.push(Group {
                        setup_name: dir
                            .setup
                            .as_ref()
                            .map(|s| s.name.name.clone())
                            .unwrap_or_default(),
                        setups_left: 0,
                        setup_failed: None,
                        left: 0,
                    });
                    groups.len() - 1
                });
                let file = &plan.path;
                if dir.setup.as_ref().is_some_and(|s| s.path == *file) {
                    groups[g].setups_left += 1;
                    groups[g].left += 1;
                    Role::Setup(g)
                } else if dir.teardown.as_ref().is_some_and(|t| t.path == *file) {
                    Role::Teardown(g)
                } else {
                    groups[g].left += 1;
                    Role::Member(g)
                }
            })
            .collect();
        Self { roles, groups }
    }

    /// Whether plan `index` may start.
    pub(super) fn start(&self, index: usize) -> Start {
        match self.roles[index] {
            Role::Plain | Role::Setup(_) => Start::Run,
            Role::Member(g) => {
                let group = &self.groups[g];
                if group.setups_left > 0 {
                    Start::Wait
                } else if let Some(status) = group.setup_failed {
                    let how = if status == SpecStatus::Cancelled {
                        "was stopped"
                    } else {
                        "failed"
                    };
                    Start::Skip(format!(
                        "the directory's setup `{}` {how}",
                        group.setup_name
                    ))
                } else {
                    Start::Run
                }
            }
            Role::Teardown(g) if self.groups[g].left > 0 => Start::Wait,
            Role::Teardown(_) => Start::RunToTheEnd,
        }
    }

    /// Records that plan `index` ended (or was skipped) with `status`.
    pub(super) fn finished(&mut self, index: usize, status: SpecStatus) {
        match self.roles[index] {
            Role::Plain | Role::Teardown(_) => {}
            Role::Setup(g) => {
                let group = &mut self.groups[g];
                group.setups_left -= 1;
                group.left -= 1;
                if status != SpecStatus::Passed && group.setup_failed.is_none() {
                    group.setup_failed = Some(status);
                }
            }
            Role::Member(g) => self.groups[g].left -= 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use planrun_spec::model::{DirConfig, DirSpec};
    use planrun_spec::source::{Format, SourceFile};
    use planrun_spec::value::Key;

    use super::*;

    fn dir(config: &str, setup: Option<&str>, teardown: Option<&str>) -> Arc<DirConfig> {
        let hook = |name: &str| DirSpec {
            name: Key {
                name: name.to_string(),
                span: 0..0,
            },
            path: Path::new(config)
                .parent()
                .expect("invariant: a config path has a directory")
                .join(name),
        };
        Arc::new(DirConfig {
            source: Some(Arc::new(SourceFile::new(config, "", Format::Toml))),
            setup: setup.map(hook),
            teardown: teardown.map(hook),
            ..DirConfig::default()
        })
    }

    fn plan_in(path: &str, dir: &Arc<DirConfig>) -> Head {
        Head {
            dir: Arc::clone(dir),
            path: path.into(),
        }
    }

    #[test]
    fn members_wait_for_the_setup_and_the_teardown_for_everything() {
        let a = dir(
            "a/planrun.toml",
            Some("_setup.toml"),
            Some("_teardown.toml"),
        );
        let plain = Arc::new(DirConfig::default());
        let plans = [
            plan_in("a/_setup.toml", &a),
            plan_in("a/one.toml", &a),
            plan_in("b/other.toml", &plain),
            plan_in("a/sub/two.toml", &a),
            plan_in("a/_teardown.toml", &a),
        ];
        let mut dirs = Dirs::new(&plans);
        let starts = |dirs: &Dirs| (0..plans.len()).map(|i| dirs.start(i)).collect::<Vec<_>>();
        use Start::{Run, RunToTheEnd, Wait};
        assert_eq!(starts(&dirs), [Run, Wait, Run, Wait, Wait]);
        dirs.finished(0, SpecStatus::Passed);
        assert_eq!(starts(&dirs), [Run, Run, Run, Run, Wait]);
        dirs.finished(1, SpecStatus::Failed);
        assert_eq!(dirs.start(4), Wait);
        dirs.finished(3, SpecStatus::Passed);
        assert_eq!(dirs.start(4), RunToTheEnd);
    }

    #[test]
    fn a_setup_that_did_not_pass_skips_the_members_and_not_the_teardown() {
        for (status, reason) in [
            (
                SpecStatus::Failed,
                "the directory's setup `_setup.toml` failed",
            ),
            (
                SpecStatus::Cancelled,
                "the directory's setup `_setup.toml` was stopped",
            ),
        ] {
            let a = dir(
                "a/planrun.toml",
                Some("_setup.toml"),
                Some("_teardown.toml"),
            );
            let plans = [
                plan_in("a/_setup.toml", &a),
                plan_in("a/one.toml", &a),
                plan_in("a/_teardown.toml", &a),
            ];
            let mut dirs = Dirs::new(&plans);
            dirs.finished(0, status);
            assert_eq!(dirs.start(1), Start::Skip(reason.to_string()));
            assert_eq!(dirs.start(2), Start::Wait);
            dirs.finished(1, SpecStatus::Cancelled);
            assert_eq!(dirs.start(2), Start::RunToTheEnd);
        }
    }

    #[test]
    fn only_the_plans_of_the_run_count() {
        // the setup is not among the plans (`--no-setup`): members run at once
        let a = dir("a/planrun.toml", Some("_setup.toml"), None);
        let plans = [plan_in("a/one.toml", &a), plan_in("a/two.toml", &a)];
        let dirs = Dirs::new(&plans);
        assert_eq!([dirs.start(0), dirs.start(1)], [Start::Run, Start::Run]);
        // a `planrun.toml` without setup or teardown groups nothing
        let plain = dir("b/planrun.toml", None, None);
        let dirs = Dirs::new(&[plan_in("b/_setup.toml", &plain)]);
        assert_eq!(dirs.roles, [Role::Plain]);
    }

    #[test]
    fn groups_are_told_apart_by_their_planrun_toml() {
        // the nearest `planrun.toml` applies: `a/sub` has its own, so the
        // setup of `a` is not its concern
        let a = dir("a/planrun.toml", Some("_setup.toml"), None);
        let sub = dir("a/sub/planrun.toml", Some("_setup.toml"), None);
        let plans = [
            plan_in("a/_setup.toml", &a),
            plan_in("a/sub/_setup.toml", &sub),
            plan_in("a/sub/x.toml", &sub),
            plan_in("a/y.toml", &a),
        ];
        let mut dirs = Dirs::new(&plans);
        dirs.finished(1, SpecStatus::Passed);
        assert_eq!(dirs.start(2), Start::Run);
        assert_eq!(dirs.start(3), Start::Wait);
    }
}
