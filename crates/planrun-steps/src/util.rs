//! Small helpers shared by the executors: durations as milliseconds, sizes and
//! spans for messages. Must not hold any executor's logic.

use std::time::Duration;

use planrun_runner::executor::StepError;
use planrun_spec::kinds::{Kind, read_config};
use planrun_spec::value::{Span, Value};

/// A step's rendered configuration in the kind's typed form, its rules
/// checked; a problem points at the spec.
pub(crate) fn config<K: Kind>(value: &Value) -> Result<K::Config, StepError> {
    read_config::<K>(value).map_err(StepError::invalid)
}

/// A duration as fractional milliseconds, the unit of every result document.
#[cfg_attr(
    not(any(feature = "http", feature = "exec", feature = "wait")),
    allow(dead_code)
)]
pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A byte count for messages: `16 MiB`, `1.5 KiB`, `512 bytes`.
#[cfg_attr(not(feature = "http"), allow(dead_code))]
pub(crate) fn human_size(bytes: u64) -> String {
    planrun_spec::duration::human_size(bytes)
}

/// `1 event`, `3 events`: a count with its noun in agreement.
#[cfg_attr(
    not(any(feature = "sse", feature = "ws")),
    allow(dead_code, reason = "the stream kinds use it")
)]
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The span of `key` in a configuration table, or of the whole table.
#[cfg_attr(
    not(any(feature = "http", feature = "exec", feature = "docker")),
    allow(dead_code)
)]
pub(crate) fn span_of(config: &Value, key: &str) -> Span {
    config
        .get(key)
        .map_or_else(|| config.span.clone(), |v| v.span.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_size(16 * 1024 * 1024), "16 MiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(512), "512 bytes");
    }

    #[test]
    fn millis_are_fractional() {
        assert!((millis(Duration::from_micros(1500)) - 1.5).abs() < f64::EPSILON);
    }
}
