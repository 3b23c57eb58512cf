//! The stop signal of a run, and of each spec within it.
//!
//! It only says "stop" and lets anyone wait for that; what stopping means
//! (dropping running steps, still running teardown) is the walk's business,
//! never decided here.

use std::sync::Arc;

use tokio::sync::watch;

/// A signal that stops a run: new work is not started, running steps are
/// dropped, teardown steps still run. Abandoning it (a second Ctrl-C) also
/// drops the teardown steps.
#[derive(Clone)]
pub struct Cancel {
    tx: Arc<watch::Sender<u8>>,
    rx: watch::Receiver<u8>,
}

/// How far a run was stopped.
const STOPPED: u8 = 1;
const ABANDONED: u8 = 2;

impl Default for Cancel {
    fn default() -> Self {
        let (tx, rx) = watch::channel(0);
        Self {
            tx: Arc::new(tx),
            rx,
        }
    }
}

impl Cancel {
    /// Stops the run.
    pub fn cancel(&self) {
        self.raise(STOPPED);
    }

    /// Stops the run and its teardown: teardown steps running are dropped
    /// and none start. What background processes the spec started are
    /// still stopped.
    pub fn abandon(&self) {
        self.raise(ABANDONED);
    }

    fn raise(&self, level: u8) {
        self.tx.send_if_modified(|now| {
            let raised = *now < level;
            *now = (*now).max(level);
            raised
        });
    }

    /// Whether the run was stopped.
    pub fn is_cancelled(&self) -> bool {
        *self.rx.borrow() >= STOPPED
    }

    /// Whether the run's teardown was given up too.
    pub fn is_abandoned(&self) -> bool {
        *self.rx.borrow() >= ABANDONED
    }

    /// Resolves once the run is stopped.
    pub async fn cancelled(&self) {
        self.reached(STOPPED).await;
    }

    /// Resolves once the run's teardown is given up.
    pub async fn abandoned(&self) {
        self.reached(ABANDONED).await;
    }

    async fn reached(&self, level: u8) {
        let mut rx = self.rx.clone();
        // an error means the sender is gone: then nobody can cancel any more
        if rx.wait_for(|now| *now >= level).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
