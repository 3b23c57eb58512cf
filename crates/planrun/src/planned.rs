//! The specs of a run as `load` leaves them: every one checked, the plans of
//! the first few thousand steps held, the others planned again from their
//! text when they start.
//!
//! A plan costs a few KiB per step; a run of hundreds of specs would hold
//! them all from start to end for nothing. Planning again is as cheap as
//! checking was, and gives the same plan: the text is the one that was
//! checked (held in memory, not read again). Only a file a spec includes is
//! read again, so a change to it during the run can make a spec fail to
//! plan; that spec then fails with the problem, and the others run.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use planrun_runner::run::{Specs, Unplanned};
use planrun_spec::model::{DirConfig, Overrides, StepKind};
use planrun_spec::plan::{Plan, load_spec_under, plan};
use planrun_spec::policy::Policy;
use planrun_spec::source::SourceFile;

/// How many steps of a run's plans are held: about 3 KiB each, so this
/// costs some 6 MiB at most, and a run of a few specs plans each once.
pub(crate) const HELD_STEPS: usize = 2_000;

/// A checked spec.
pub(crate) enum Planned {
    /// Its plan, held.
    Held(Box<Plan>),
    /// What plans it again.
    Later(Later),
}

/// A checked spec whose plan was let go.
pub(crate) struct Later {
    pub(crate) id: String,
    pub(crate) source: Arc<SourceFile>,
    pub(crate) dir: Arc<DirConfig>,
}

impl Planned {
    /// The spec's file.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::Held(plan) => &plan.spec.source.path,
            Self::Later(later) => &later.source.path,
        }
    }

    /// The directory configuration it was planned with.
    pub(crate) fn dir(&self) -> &Arc<DirConfig> {
        match self {
            Self::Held(plan) => &plan.dir,
            Self::Later(later) => &later.dir,
        }
    }

    /// The plan, when it is held.
    pub(crate) fn into_held(self) -> Option<Plan> {
        match self {
            Self::Held(plan) => Some(*plan),
            Self::Later(_) => None,
        }
    }
}

/// A run's specs with what planning them again takes.
pub(crate) struct RunSpecs {
    pub(crate) specs: Vec<Planned>,
    pub(crate) policy: Policy,
    pub(crate) overrides: Overrides,
    pub(crate) unavailable: Vec<StepKind>,
}

impl Specs for RunSpecs {
    fn len(&self) -> usize {
        self.specs.len()
    }

    fn plan(&self, index: usize) -> Result<Cow<'_, Plan>, Unplanned> {
        let later = match &self.specs[index] {
            Planned::Held(plan) => return Ok(Cow::Borrowed(plan)),
            Planned::Later(later) => later,
        };
        load_spec_under(&later.source, &self.policy)
            .and_then(|spec| {
                plan(
                    spec,
                    Arc::clone(&later.dir),
                    &self.overrides,
                    &self.unavailable,
                )
            })
            .map(Cow::Owned)
            .map_err(|diags| Unplanned {
                id: later.id.clone(),
                source: Arc::clone(&later.source),
                message: format!(
                    "the spec no longer plans: {} (a file it includes changed during the run?)",
                    diags.0.first().map_or("a problem", |d| d.message.as_str())
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use planrun_spec::plan::read_source;

    use super::*;

    fn later(path: &Path) -> RunSpecs {
        let source = read_source(path).expect("the spec reads");
        RunSpecs {
            specs: vec![Planned::Later(Later {
                id: String::from("INC"),
                source,
                dir: Arc::new(DirConfig::default()),
            })],
            policy: Policy::default(),
            overrides: Overrides::default(),
            unavailable: Vec::new(),
        }
    }

    #[test]
    fn a_spec_let_go_plans_again_as_it_was_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = dir.path().join("inc.toml");
        std::fs::write(
            dir.path().join("_shared.toml"),
            "[[steps]]\nid = \"shared\"\nwait = \"1ms\"\n",
        )
        .expect("write");
        std::fs::write(
            &spec,
            "id = \"INC\"\ninclude = \"_shared.toml\"\n[[steps]]\nid = \"own\"\nwait = \"1ms\"\n",
        )
        .expect("write");
        let specs = later(&spec);
        let plan = specs.plan(0).expect("it plans");
        let ids: Vec<&str> = plan.spec.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["shared", "own"]);
        // the spec's own text is the one checked, even if the file changes
        std::fs::write(&spec, "not = [toml").expect("write");
        assert!(
            specs.plan(0).is_ok(),
            "the text held is planned, not the file"
        );
        // a file it includes is read again: broken, the spec fails to plan
        std::fs::write(dir.path().join("_shared.toml"), "[[steps]]\nnope = 1\n").expect("write");
        let unplanned = specs.plan(0).expect_err("the include is broken");
        assert_eq!(unplanned.id, "INC");
        assert!(
            unplanned.message.starts_with("the spec no longer plans: ")
                && unplanned.message.contains("changed during the run"),
            "{}",
            unplanned.message
        );
    }
}
