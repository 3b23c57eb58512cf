//! The stop signal of a run, and of each spec within it.
//!
//! It only says "stop" and lets anyone wait for that; what stopping means
//! (dropping running steps, still running teardown) is the walk's business,
//! never decided here.

use std::sync::Arc;

use tokio::sync::watch;

/// A signal that stops a run: new work is not started, running steps are
/// dropped, teardown steps still run.
#[derive(Clone)]
pub struct Cancel {
    tx: Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Default for Cancel {
    fn default() -> Self {
        let (tx, rx) = watch::channel(false);
        Self {
            tx: Arc::new(tx),
            rx,
        }
    }
}

impl Cancel {
    /// Stops the run.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the run was stopped.
    pub fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the run is stopped.
    pub async fn cancelled(&self) {
        let mut rx = self.rx.clone();
        // an error means the sender is gone: then nobody can cancel any more
        if rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
