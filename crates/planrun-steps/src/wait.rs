//! `wait`: a pause (`wait = "2s"`), or a wait until a TCP address accepts
//! connections or an HTTP URL answers 2xx/3xx.
//!
//! This module owns reading the short and the table form of the config and
//! the result document. It must not retry on its own terms beyond polling the
//! target: the step's timeout (enforced by the runner, and used here as the
//! poll's deadline so the error can say what was tried) bounds every wait.

use std::time::{Duration, Instant};

use planrun_runner::executor::{BoxFuture, StepError, StepExecutor, StepInput};
use planrun_spec::de::from_value;
use planrun_spec::duration::{Dur, parse_duration};
use planrun_spec::kinds::WaitConfig;
use planrun_spec::model::StepKind;
use planrun_spec::value::Value;
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
    let config = read_config(input.config)?;
    let started = Instant::now();
    let attempts = if let Some(Dur(pause)) = config.duration {
        tokio::time::sleep(pause).await;
        0
    } else {
        let target = match (config.tcp, config.http) {
            (Some(addr), None) => Target::Tcp(addr),
            (None, Some(url)) => Target::Http(url),
            _ => {
                return Err(StepError::new(
                    "internal: wait config passed `check` but has no target",
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
                    "gave up waiting for {} after {:.1}s and {} attempts: {}",
                    target.describe(),
                    started.elapsed().as_secs_f64(),
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

/// Reads `wait = "2s"` or `wait = { ... }`.
fn read_config(value: &Value) -> Result<WaitConfig, StepError> {
    let config = if let Some(text) = value.as_str() {
        let pause = parse_duration(text).map_err(|message| {
            StepError::new(message)
                .at(value.span.clone())
                .help("write a duration such as `wait = \"2s\"`, or a table such as `wait = { tcp = \"127.0.0.1:5432\" }`")
        })?;
        WaitConfig {
            duration: Some(Dur(pause)),
            ..WaitConfig::default()
        }
    } else {
        from_value::<WaitConfig>(value).map_err(StepError::config)?
    };
    config
        .check()
        .map_err(|problem| StepError::new(problem.message).at(value.span.clone()))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use planrun_spec::parse::parse_toml;

    fn step(text: &str) -> Value {
        let doc = parse_toml(text).expect("toml");
        doc.get("wait").cloned().expect("wait key")
    }

    #[test]
    fn short_form_is_a_duration() {
        let config = read_config(&step("wait = \"250ms\"")).unwrap();
        assert_eq!(config.duration, Some(Dur(Duration::from_millis(250))));
    }

    #[test]
    fn short_form_rejects_nonsense_at_its_span() {
        let text = "wait = \"soon\"";
        let err = read_config(&step(text)).unwrap_err();
        assert_eq!(&text[err.span.clone().unwrap()], "\"soon\"");
        assert!(err.help.is_some());
    }

    #[test]
    fn table_needs_exactly_one_target() {
        let err =
            read_config(&step("wait = { tcp = \"127.0.0.1:1\", duration = \"1s\" }")).unwrap_err();
        assert!(err.message.contains("exactly one"), "{}", err.message);
    }

    #[test]
    fn unknown_keys_keep_their_span() {
        let text = "wait = { tpc = \"127.0.0.1:1\" }";
        let err = read_config(&step(text)).unwrap_err();
        assert_eq!(&text[err.span.clone().unwrap()], "tpc");
    }
}
