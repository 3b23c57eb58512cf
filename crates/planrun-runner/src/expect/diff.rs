//! How values look in messages: a one-line [`show`] for any value, however
//! large, and a line diff of an expected and an actual document.
//!
//! Rendering only: it must not decide whether a value matches.

use serde_json::Value as Json;

/// A short rendering of a value for one-line messages. Only the start of a
/// large value is serialized: a stream of 10,000 events is not turned into
/// text to show 120 characters of it.
pub(crate) fn show(v: Option<&Json>) -> String {
    const LIMIT: usize = 120;
    let Some(v) = v else {
        return String::from("missing");
    };
    let mut out = Bounded {
        text: Vec::with_capacity(LIMIT + 8),
        limit: LIMIT * 4 + 4,
    };
    // an error means the writer stopped taking bytes: the start is enough
    let _ = serde_json::to_writer(&mut out, v);
    let text = String::from_utf8_lossy(&out.text);
    if text.chars().count() > LIMIT {
        let cut: String = text.chars().take(LIMIT - 3).collect();
        format!("`{cut}…`")
    } else {
        format!("`{text}`")
    }
}

/// A writer that takes bytes up to a limit, then refuses.
struct Bounded {
    text: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.limit.saturating_sub(self.text.len());
        if room == 0 {
            return Err(std::io::Error::other("enough"));
        }
        let n = room.min(buf.len());
        self.text.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn diff(expected: &Json, actual: &Json) -> Option<String> {
    let e = serde_json::to_string_pretty(expected).ok()?;
    let a = serde_json::to_string_pretty(actual).ok()?;
    if e.lines().count() < 3 && a.lines().count() < 3 {
        return None;
    }
    let d = similar::TextDiff::from_lines(&e, &a);
    Some(
        d.unified_diff()
            .context_radius(3)
            .header("expected", "actual")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn show_cuts_a_long_value() {
        assert_eq!(show(None), "missing");
        assert_eq!(show(Some(&json!({"a": 1}))), "`{\"a\":1}`");
        let long = show(Some(&json!(vec![1; 10_000])));
        assert_eq!(long.chars().count(), 117 + 3);
        assert!(long.ends_with("…`"), "{long}");
    }

    #[test]
    fn only_values_of_several_lines_get_a_diff() {
        assert_eq!(diff(&json!(1), &json!(2)), None);
        let d = diff(&json!({"a": 1, "b": 2}), &json!({"a": 1, "b": 3})).expect("a diff");
        assert!(
            d.contains("-  \"b\": 2") && d.contains("+  \"b\": 3"),
            "{d}"
        );
    }
}
