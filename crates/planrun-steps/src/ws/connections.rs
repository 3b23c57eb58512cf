//! Named connections: a `ws` step with `connection = "name"` and a `url`
//! leaves its socket here for later steps of the same spec run, which
//! continue it with `connection = "name"` alone. Every named connection is
//! closed with 1000 when the spec ends.
//!
//! Owns where connections live between steps and their cleanup; must not
//! send or read anything but the final close.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use planrun_runner::executor::{SpecContext, StepError};
use planrun_spec::error::code_list;
use tokio::sync::OwnedMutexGuard;
use tokio::time::{Instant, timeout, timeout_at};

use super::session::Conn;
use super::text::human;

/// One name's place: empty until a step opens it, then the connection (open
/// or ended). A step holds the lock while it uses the connection, so two
/// steps never talk on one socket at once.
pub(super) type Slot = Arc<tokio::sync::Mutex<Option<Conn>>>;

/// How long the end of a spec waits for a server to answer the final close.
const CLEANUP_GRACE: Duration = Duration::from_secs(1);

/// The named connections of a spec run.
#[derive(Default)]
pub(super) struct WsConnections {
    slots: Mutex<BTreeMap<String, Slot>>,
}

impl WsConnections {
    /// The spec run's connections.
    pub(super) fn of(ctx: &SpecContext) -> Result<Arc<Self>, StepError> {
        ctx.resource(|| Ok(Self::default()))
    }

    /// The slot to open `name` in, created (with its cleanup) on first use.
    pub(super) fn slot_to_open(&self, ctx: &SpecContext, name: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(name) {
            return Arc::clone(slot);
        }
        let slot: Slot = Arc::default();
        slots.insert(name.to_string(), Arc::clone(&slot));
        let kept = Arc::clone(&slot);
        ctx.on_cleanup(format!("ws connection `{name}`"), move || {
            Box::pin(async move {
                // a step still holding it past the spec's end is not waited for
                let Ok(mut guard) = timeout(CLEANUP_GRACE, kept.lock()).await else {
                    return;
                };
                if let Some(conn) = guard.take() {
                    conn.close_quietly(CLEANUP_GRACE).await;
                }
            })
        });
        slot
    }

    /// The slot of a connection opened by an earlier step.
    pub(super) fn slot(&self, name: &str) -> Result<Slot, StepError> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(name) {
            return Ok(Arc::clone(slot));
        }
        let known = if slots.is_empty() {
            String::from("no step of this spec has opened a named connection yet")
        } else {
            format!("the known connections are {}", code_list(slots.keys()))
        };
        Err(StepError::new(format!("no connection named `{name}`: {known}")).help(format!(
            "open it in an earlier step with `url` and `connection = \"{name}\"`, and make this step need that one"
        )))
    }
}

/// Locks a slot before `deadline`.
pub(super) async fn lock(
    slot: Slot,
    name: &str,
    deadline: Instant,
    limit: Duration,
) -> Result<OwnedMutexGuard<Option<Conn>>, StepError> {
    timeout_at(deadline, slot.lock_owned()).await.map_err(|_| {
        StepError::new(format!(
            "connection `{name}` was in use by another step for the whole time limit of {}",
            human(limit)
        ))
        .help("steps that share a connection take turns; make one need the other")
    })
}
