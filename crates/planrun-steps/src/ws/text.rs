//! Words for `ws` messages: excerpts of payloads and one-line descriptions
//! of a message or a close (durations are planrun's one [`human`] form). Must
//! not hold any protocol logic.

/// At most `max` characters of `text`, with `…` when cut.
pub(super) fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        text.to_string()
    }
}

/// A message document in a few words: `` `{"type":"pong"}` `` for text, the
/// size and the start of the base64 for binary.
pub(super) fn describe_message(doc: &serde_json::Value) -> String {
    if let Some(text) = doc.get("text").and_then(serde_json::Value::as_str) {
        return format!("`{}`", excerpt(text, 120));
    }
    let size = doc
        .get("size")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let base64 = doc
        .get("base64")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    format!(
        "a binary message of {size} byte{} (base64 `{}`)",
        if size == 1 { "" } else { "s" },
        excerpt(base64, 40)
    )
}

/// The usual name of a close code, for messages.
pub(super) fn close_code_name(code: u16) -> &'static str {
    match code {
        1000 => "normal closure",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status received",
        1006 => "abnormal closure",
        1007 => "invalid payload data",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "mandatory extension",
        1011 => "internal error",
        1012 => "service restart",
        1013 => "try again later",
        1014 => "bad gateway",
        1015 => "TLS handshake",
        3000..=3999 => "registered",
        4000..=4999 => "private use",
        _ => "unknown",
    }
}

/// A close in a few words: ``1011 (`internal error`)``, with the reason when
/// the server gave one.
pub(super) fn describe_close(code: u16, reason: &str) -> String {
    if reason.is_empty() {
        format!("{code} (`{}`)", close_code_name(code))
    } else {
        format!(
            "{code} (`{}`, reason `{}`)",
            close_code_name(code),
            excerpt(reason, 80)
        )
    }
}

pub(super) use crate::util::count;
pub(super) use planrun_spec::duration::human;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_described_briefly() {
        let text = serde_json::json!({"type": "text", "text": "{\"type\":\"pong\"}", "size": 15});
        assert_eq!(describe_message(&text), "`{\"type\":\"pong\"}`");
        let binary =
            serde_json::json!({"type": "binary", "text": null, "base64": "AAEC", "size": 3});
        assert_eq!(
            describe_message(&binary),
            "a binary message of 3 bytes (base64 `AAEC`)"
        );
        assert_eq!(describe_close(1011, ""), "1011 (`internal error`)");
        assert_eq!(excerpt("abcdef", 4), "abc…");
    }
}
