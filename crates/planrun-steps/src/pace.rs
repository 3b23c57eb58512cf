//! Pacing a step's live observations so that reporters keep up with a
//! server that sends without pause.
//!
//! Observations go to the reporters through an unbounded channel, and
//! planrun runs steps and reporters on one thread: a step whose reads are
//! always ready yields to the reporters only when tokio's budget of
//! operations runs out, while one read may complete thousands of events. The
//! queue of observations then grows without bound. A step that observes
//! therefore yields after every few observations, fewer than a reporter
//! takes in one turn. Owns only that; what is observed is the executor's.

/// Observations between two yields: well under the 128 messages a receiver
/// takes from a channel in one turn of tokio's budget.
const OBSERVATIONS_PER_TURN: usize = 32;

/// Counts a step's observations and yields to the reporters after every
/// [`OBSERVATIONS_PER_TURN`].
#[derive(Debug, Default)]
pub(crate) struct Pace {
    since_yield: usize,
}

impl Pace {
    /// One observation was sent.
    pub(crate) fn observed(&mut self) {
        self.since_yield += 1;
    }

    /// Yields to the other tasks when enough observations were sent since
    /// the last yield.
    pub(crate) async fn keep(&mut self) {
        if self.since_yield >= OBSERVATIONS_PER_TURN {
            self.since_yield = 0;
            tokio::task::yield_now().await;
        }
    }
}
