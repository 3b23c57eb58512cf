//! What a run started outside planrun and must not leave behind: process
//! groups now, containers once a step can start them.
//!
//! An executor registers each such thing with a way to remove it at once,
//! and drops the returned [`Leftover`] when it has removed it the ordinary
//! way. When the user stops planrun for good (a second Ctrl-C, or a third),
//! [`remove_all`] removes whatever is still registered, from any thread and
//! without the async runtime, so that nothing outlives planrun.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::Duration;

type Remove = Box<dyn FnOnce() + Send>;

static REGISTERED: Mutex<BTreeMap<u64, (String, Remove)>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

fn registered() -> MutexGuard<'static, BTreeMap<u64, (String, Remove)>> {
    // a remover that panicked leaves the map as it was: still usable
    REGISTERED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Something registered; dropping it unregisters it without removing it.
#[derive(Debug)]
#[must_use = "dropping it at once unregisters it"]
pub struct Leftover(u64);

impl Drop for Leftover {
    fn drop(&mut self) {
        registered().remove(&self.0);
    }
}

/// Registers `what` (as messages name it: "process group 4242") and how to
/// remove it at once; `remove` blocks until it is done.
pub fn register(what: impl Into<String>, remove: impl FnOnce() + Send + 'static) -> Leftover {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    registered().insert(id, (what.into(), Box::new(remove)));
    Leftover(id)
}

/// Removes everything registered, all at once, waiting at most `within`;
/// returns what was not removed in time.
pub fn remove_all(within: Duration) -> Vec<String> {
    let all = std::mem::take(&mut *registered());
    let (done, finished) = mpsc::channel();
    let mut left: BTreeMap<u64, String> = BTreeMap::new();
    for (id, (what, remove)) in all {
        left.insert(id, what);
        let done = done.clone();
        std::thread::spawn(move || {
            remove();
            let _ = done.send(id);
        });
    }
    drop(done);
    let deadline = std::time::Instant::now() + within;
    while !left.is_empty() {
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        match finished.recv_timeout(wait) {
            Ok(id) => {
                left.remove(&id);
            }
            Err(_) => break,
        }
    }
    left.into_values().collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Registered things are removed once; dropped ones are not removed;
    /// a remover that hangs is named, not waited for.
    #[test]
    fn removes_what_is_registered_once() {
        let removed = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&removed);
        let kept = register("kept", move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let r = Arc::clone(&removed);
        let gone = register("gone", move || {
            r.fetch_add(100, Ordering::SeqCst);
        });
        drop(gone);
        let hangs = register("hangs", || std::thread::sleep(Duration::from_hours(1)));
        let left = remove_all(Duration::from_millis(200));
        assert_eq!(left, ["hangs"]);
        assert_eq!(removed.load(Ordering::SeqCst), 1);
        assert!(remove_all(Duration::from_millis(10)).is_empty());
        drop((kept, hangs));
    }
}
