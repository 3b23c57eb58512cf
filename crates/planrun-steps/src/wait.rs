//! `wait`: a pause (`wait = "2s"`), or a wait until a TCP address accepts
//! connections or an HTTP URL answers 2xx/3xx.
//!
//! This module owns reading the short and the table form of the config and
//! the result document. It must not retry on its own terms beyond polling the
//! target: the step's timeout (enforced by the runner, and used here as the
//! poll's deadline so the error can say what was tried) bounds every wait.

use std::time::{Duration, Instant};

use planrun_runner::executor::{BoxFuture, StepError, StepExecutor, StepInput};
use planrun_spec::duration::{Dur, human};
use planrun_spec::kinds::Wait;
use planrun_spec::model::StepKind;
use serde_json::json;

use crate::probe::{self, Target};
use crate::util::millis;

/// Pause between readiness checks when the config does not say.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// Keeps `interval = "0s"` from turning into a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Runs `wait` steps.
///
/// Result document: `{"duration": ms, "waited": ms, "attempts": n, "ready": true}`;
/// `attempts` counts readiness checks and is 0 for a plain pause.
#[derive(Debug, Default, Clone, Copy)]
pub struct WaitExecutor;

impl WaitExecutor {
    /// The executor.
    pub fn new() -> Self {
        Self
    }
}

impl StepExecutor for WaitExecutor {
    fn kind(&self) -> StepKind {
        StepKind::Wait
    }

    fn execute<'a>(
        &'a self,
        input: StepInput<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(run(input))
    }
}

async fn run(input: StepInput<'_>) -> Result<serde_json::Value, StepError> {
    // the short form `wait = "2s"` was expanded to `{ duration = "2s" }` at plan time
    let config = crate::util::config::<Wait>(input.config)?;
    let started = Instant::now();
    let attempts = if let Some(Dur(pause)) = config.duration {
        // a pause of no length is none: the timer would still wait for its
        // next tick (a millisecond)
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        0
    } else {
        let target = match (config.tcp, config.http) {
            (Some(addr), None) => Target::Tcp(addr),
            (None, Some(url)) => Target::Http(url),
            _ => {
                return Err(StepError::internal(
                    "a `wait` config passed plan-time checks without a target",
                ));
            }
        };
        let interval = config
            .interval
            .map_or(DEFAULT_INTERVAL, |d| d.0)
            .max(MIN_INTERVAL);
        probe::poll(&target, interval, input.timeout)
            .await
            .map_err(|not_ready| {
                StepError::new(format!(
                    "gave up waiting for {} after {} and {} attempts: {}",
                    target.describe(),
                    human(started.elapsed()),
                    not_ready.attempts,
                    not_ready.last_error
                ))
                .at(input.config.span.clone())
                .help("is the service started? raise the step's `timeout` if it needs longer")
            })?
    };
    let waited = millis(started.elapsed());
    Ok(json!({
        "duration": waited,
        "waited": waited,
        "attempts": attempts,
        "ready": true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use planrun_spec::parse_toml;

    fn read_config(text: &str) -> Result<planrun_spec::kinds::WaitConfig, StepError> {
        let doc = parse_toml(text).expect("toml");
        crate::util::config::<Wait>(doc.get("wait").expect("wait key"))
    }

    #[test]
    fn table_needs_exactly_one_target() {
        let err = read_config("wait = { tcp = \"127.0.0.1:1\", duration = \"1s\" }").unwrap_err();
        assert!(err.message.contains("exactly one"), "{}", err.message);
    }

    #[test]
    fn unknown_keys_keep_their_span() {
        let text = "wait = { tpc = \"127.0.0.1:1\" }";
        let err = read_config(text).unwrap_err();
        assert_eq!(&text[err.span.clone().unwrap()], "tpc");
    }
}
