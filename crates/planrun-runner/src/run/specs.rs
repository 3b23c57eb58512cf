//! The specs a run is handed: each one's plan, now or when it starts.
//!
//! A plan holds every step of its spec, a few KiB each. A run of many specs
//! need not hold them all: a [`Specs`] may plan a spec again from its text
//! when asked, and the runner asks twice, once to announce the spec and once
//! when it starts, dropping the plan in between. A slice of plans is the
//! simple case, planned once and borrowed.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use planrun_spec::plan::Plan;
use planrun_spec::source::SourceFile;

/// A spec that planned when it was checked and no longer does (a file it
/// includes changed during the run).
#[derive(Debug, Clone)]
pub struct Unplanned {
    /// The spec's id, as it was checked.
    pub id: String,
    /// The spec's file.
    pub source: Arc<SourceFile>,
    /// What went wrong, one line.
    pub message: String,
}

/// The specs of a run, in run order.
pub trait Specs: Sync {
    /// How many.
    fn len(&self) -> usize;

    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plan of spec `index`: borrowed when it is held, planned again
    /// when it is not.
    ///
    /// # Errors
    ///
    /// When a spec planned again no longer plans.
    fn plan(&self, index: usize) -> Result<Cow<'_, Plan>, Unplanned>;
}

impl Specs for [Plan] {
    fn len(&self) -> usize {
        <[Plan]>::len(self)
    }

    fn plan(&self, index: usize) -> Result<Cow<'_, Plan>, Unplanned> {
        Ok(Cow::Borrowed(&self[index]))
    }
}

impl Specs for Vec<Plan> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn plan(&self, index: usize) -> Result<Cow<'_, Plan>, Unplanned> {
        self.as_slice().plan(index)
    }
}

impl<const N: usize> Specs for [Plan; N] {
    fn len(&self) -> usize {
        N
    }

    fn plan(&self, index: usize) -> Result<Cow<'_, Plan>, Unplanned> {
        self.as_slice().plan(index)
    }
}

/// What the run keeps of a spec between its announcement and its start:
/// enough to order it among its directory's setup and teardown.
#[derive(Debug, Clone)]
pub(super) struct Head {
    /// The `planrun.toml` it was planned with, when it names a setup or a
    /// teardown, with the names of both.
    pub(super) dir: Arc<planrun_spec::model::DirConfig>,
    /// The spec's file.
    pub(super) path: PathBuf,
}
