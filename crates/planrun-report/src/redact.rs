//! Redaction of what changes from run to run (durations, loopback ports,
//! timestamps), so reporter output can be compared with snapshots.
//!
//! Only for tests and comparisons: reporters never redact their own output.

use std::sync::LazyLock;

use regex::Regex;

/// Durations as planrun writes them (`12 ms`, `1.2 s`, `2 min 5 s`,
/// `1 h 30 s`) and as specs do (`12ms`, `1.5s`, `2m05s`, `0.5µs`), the JUnit
/// `time="0.012"` attribute, and JSON `"duration": 12.5`.
static DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b\d+ h(?: \d+ min)?(?: \d+ s)?\b|\b\d+ min(?: \d+ s)?\b|\b\d+m\d{2}s\b|\b\d+(?:\.\d+)? ?(?:ms|µs|us|ns|s)\b",
    )
        .expect("invariant: the duration pattern is valid")
});
static TIME_ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\btime="[0-9.]+""#).expect("invariant: the time attribute pattern is valid")
});
static JSON_DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#""(duration|started|delay|ttfb|total)": [0-9.]+"#)
        .expect("invariant: the JSON duration pattern is valid")
});
static LOOPBACK_PORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(127\.0\.0\.1|localhost|\[::1\]):\d+\b")
        .expect("invariant: the port pattern is valid")
});
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")
        .expect("invariant: the timestamp pattern is valid")
});

/// Replaces what differs between two runs of the same plan with
/// placeholders: durations become `[duration]`, `127.0.0.1:PORT` becomes
/// `127.0.0.1:[port]`, RFC 3339 timestamps become `[timestamp]`.
///
/// The patterns are textual, so a duration written in the spec itself (a
/// `timeout = "5s"` quoted in a snippet) is replaced too.
///
/// ```
/// use planrun_report::redact_for_snapshot;
///
/// let line = "  ✓ health  http  12 ms  http://127.0.0.1:41237/health in 1.2 s";
/// assert_eq!(
///     redact_for_snapshot(line),
///     "  ✓ health  http  [duration]  http://127.0.0.1:[port]/health in [duration]",
/// );
/// ```
pub fn redact_for_snapshot(text: &str) -> String {
    let text = TIMESTAMP.replace_all(text, "[timestamp]");
    let text = TIME_ATTR.replace_all(&text, r#"time="[duration]""#);
    let text = JSON_DURATION.replace_all(&text, r#""$1": "[duration]""#);
    let text = DURATION.replace_all(&text, "[duration]");
    let text = LOOPBACK_PORT.replace_all(&text, "$1:[port]");
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_what_varies() {
        assert_eq!(redact_for_snapshot("in 2m05s"), "in [duration]");
        assert_eq!(redact_for_snapshot("took 0ms"), "took [duration]");
        for human in [
            "0.4 ms",
            "250 ms",
            "1.5 s",
            "12 s",
            "2 min",
            "2 min 5 s",
            "1 h 30 s",
        ] {
            assert_eq!(
                redact_for_snapshot(&format!("took {human}, 3 steps")),
                "took [duration], 3 steps",
                "{human}"
            );
        }
        assert_eq!(
            redact_for_snapshot(r#"<testcase name="a" time="0.012">"#),
            r#"<testcase name="a" time="[duration]">"#
        );
        assert_eq!(
            redact_for_snapshot(r#"{"duration": 12.5, "status": 200}"#),
            r#"{"duration": "[duration]", "status": 200}"#
        );
        assert_eq!(
            redact_for_snapshot("at 2024-05-01T10:11:12.123+02:00."),
            "at [timestamp]."
        );
        assert_eq!(
            redact_for_snapshot("localhost:8080 [::1]:9 10.0.0.1:80"),
            "localhost:[port] [::1]:[port] 10.0.0.1:80"
        );
        // Words and ids that merely contain digits stay.
        assert_eq!(
            redact_for_snapshot("TC-003 step2s v1.2"),
            "TC-003 step2s v1.2"
        );
    }
}
