//! Evidence: the parts of a failed step's result that show what went wrong,
//! picked by the fields its kind names (`StepKind::evidence`), whatever the
//! kind.
//!
//! Owns how much of a value is shown and how: the last or first lines of a
//! text, a note for binary data, the last items of a list. Secrets are hidden
//! before a value is cut, so that a cut never leaves a piece of one. It never
//! decides whether a step failed, and knows no kind by name.

use std::fmt::Write as _;

use planrun_spec::duration::human_size;
use planrun_spec::kinds::EvidenceEnd;
use planrun_spec::model::StepKind;
use serde_json::Value as Json;

use crate::events::{Evidence, ExpectationOutcome};
use crate::redact::Redactor;

/// Lines shown of the end of a text (a process's last words).
const LAST_LINES: usize = 10;
/// Lines shown of the start of a text (a response body).
const FIRST_LINES: usize = 20;
/// Items shown of a list (messages received).
const ITEMS: usize = 5;
/// Bytes shown of one field at most.
const MAX_BYTES: usize = 2 * 1024;
/// Characters shown of one item of a list.
const ITEM_CHARS: usize = 300;

/// The evidence in a failed step's `result`: each field its kind names that
/// holds something, in the kind's order. A field that a failed expectation
/// checked as a whole is left out: its actual value is shown already; so is
/// a text that is all a failure says (a `body_error`).
pub(super) fn pick(
    kind: StepKind,
    result: &Json,
    expectations: &[ExpectationOutcome],
    redactor: &Redactor,
) -> Vec<Evidence> {
    kind.evidence()
        .iter()
        .filter(|e| {
            !expectations
                .iter()
                .any(|x| !x.passed && x.target == e.field)
        })
        .filter_map(|e| {
            let value = result.get(e.field)?;
            let (shown, text) = match value {
                Json::Null => return None,
                Json::String(text) if expectations.iter().any(|x| says(x, text)) => return None,
                Json::String(text) => {
                    let content_type = (e.field == "body")
                        .then(|| result.get("headers")?.get("content-type")?.as_str())
                        .flatten();
                    excerpt_text(&redactor.text(text), e.end, content_type)?
                }
                Json::Array(items) => excerpt_items(items, e.end, redactor)?,
                other => (
                    None,
                    cut_start(&redactor.text(&other.to_string()), MAX_BYTES),
                ),
            };
            Some(Evidence {
                field: e.field.to_owned(),
                shown,
                text,
            })
        })
        .collect()
}

/// Whether a failure says `text` and nothing else about its target.
fn says(x: &ExpectationOutcome, text: &str) -> bool {
    !x.passed
        && x.message
            .strip_prefix(x.target.as_str())
            .and_then(|m| m.strip_prefix(": "))
            == Some(text)
}

/// A text as evidence: which part is shown, and that part; `None` for a
/// blank text. A body that is not text (by its content type, or bytes that
/// were no UTF-8) is a note of its size.
fn excerpt_text(
    text: &str,
    end: EvidenceEnd,
    content_type: Option<&str>,
) -> Option<(Option<String>, String)> {
    if text.trim().is_empty() {
        return None;
    }
    if text.contains(['\0', char::REPLACEMENT_CHARACTER]) || content_type.is_some_and(is_binary) {
        // each replacement character stands for (at least) one byte, not three
        let replaced = text.matches(char::REPLACEMENT_CHARACTER).count();
        let size = text.len().saturating_sub(2 * replaced);
        return Some((
            None,
            format!("<{} of binary data>", human_size(size as u64)),
        ));
    }
    let lines: Vec<String> = text.trim_end().lines().map(printable).collect();
    Some(match end {
        EvidenceEnd::Last => last_lines(&lines),
        EvidenceEnd::First => first_lines(&lines),
    })
}

/// The last lines, at most [`LAST_LINES`] and [`MAX_BYTES`], after a line
/// that counts the others.
fn last_lines(lines: &[String]) -> (Option<String>, String) {
    let mut kept = 0;
    let mut bytes = 0;
    for line in lines.iter().rev().take(LAST_LINES) {
        if kept > 0 && bytes + line.len() + 1 > MAX_BYTES {
            break;
        }
        bytes += line.len() + 1;
        kept += 1;
    }
    let earlier = lines.len() - kept;
    let mut text = String::new();
    if earlier > 0 {
        let _ = writeln!(text, "… {earlier} earlier {}", noun(earlier, "line"));
    }
    let shown = &lines[earlier..];
    if let [only] = shown
        && only.len() > MAX_BYTES
    {
        let _ = write!(text, "…{}", cut_end(only, MAX_BYTES));
        return (Some(format!("last {}", human_size(MAX_BYTES as u64))), text);
    }
    text.push_str(&shown.join("\n"));
    let what = (earlier > 0).then(|| format!("last {}", counted(kept, "line")));
    (what, text)
}

/// The first lines, at most [`FIRST_LINES`] and [`MAX_BYTES`], before a line
/// that counts the others.
fn first_lines(lines: &[String]) -> (Option<String>, String) {
    let mut kept = 0;
    let mut bytes = 0;
    for line in lines.iter().take(FIRST_LINES) {
        if kept > 0 && bytes + line.len() + 1 > MAX_BYTES {
            break;
        }
        bytes += line.len() + 1;
        kept += 1;
    }
    let more = lines.len() - kept;
    let shown = &lines[..kept];
    let (what, mut text) = if let [only] = shown
        && only.len() > MAX_BYTES
    {
        (
            Some(format!("first {}", human_size(MAX_BYTES as u64))),
            format!("{}…", cut_start(only, MAX_BYTES)),
        )
    } else {
        (
            (more > 0).then(|| format!("first {}", counted(kept, "line"))),
            shown.join("\n"),
        )
    };
    if more > 0 {
        let _ = write!(text, "\n… {more} more {}", noun(more, "line"));
    }
    (what, text)
}

/// A list as evidence: at most [`ITEMS`] items from its `end`, one line
/// each, with a line that counts the others; `None` for an empty list.
fn excerpt_items(
    items: &[Json],
    end: EvidenceEnd,
    redactor: &Redactor,
) -> Option<(Option<String>, String)> {
    if items.is_empty() {
        return None;
    }
    let take = items.len().min(ITEMS);
    let picked = match end {
        EvidenceEnd::Last => &items[items.len() - take..],
        EvidenceEnd::First => &items[..take],
    };
    let mut lines: Vec<String> = picked
        .iter()
        .map(|item| cut_chars(&printable(&redactor.text(&item_line(item))), ITEM_CHARS))
        .collect();
    // the byte limit holds for lists too: the items nearest the end shown stay
    while lines.len() > 1 && lines.iter().map(|l| l.len() + 1).sum::<usize>() > MAX_BYTES {
        match end {
            EvidenceEnd::Last => lines.remove(0),
            EvidenceEnd::First => lines.remove(lines.len() - 1),
        };
    }
    let left = items.len() - lines.len();
    let shown = (left > 0).then(|| {
        let word = match end {
            EvidenceEnd::Last => "last",
            EvidenceEnd::First => "first",
        };
        format!("{word} {} of {}", lines.len(), items.len())
    });
    let text = match (end, left) {
        (_, 0) => lines.join("\n"),
        (EvidenceEnd::Last, _) => {
            format!(
                "… {left} earlier {}\n{}",
                noun(left, "item"),
                lines.join("\n")
            )
        }
        (EvidenceEnd::First, _) => {
            format!("{}\n… {left} more {}", lines.join("\n"), noun(left, "item"))
        }
    };
    Some((shown, text))
}

/// One item of a list on one line: a message's `text` (or an event's
/// `data`), a note for binary data, else the item as JSON.
fn item_line(item: &Json) -> String {
    let text = item
        .get("text")
        .and_then(Json::as_str)
        .or_else(|| item.get("data").and_then(Json::as_str))
        .or_else(|| item.as_str());
    if let Some(text) = text {
        return text.replace('\n', "\\n");
    }
    if item.get("base64").is_some_and(Json::is_string)
        && let Some(size) = item.get("size").and_then(Json::as_u64)
    {
        return format!("<{} of binary data>", human_size(size));
    }
    item.to_string()
}

/// Whether a content type is not text (images but SVG, audio, archives…).
fn is_binary(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((top, sub)) = mime.split_once('/') else {
        return false;
    };
    match top {
        "image" => !sub.contains("svg"),
        "audio" | "video" | "font" => true,
        "application" => matches!(
            sub,
            "octet-stream"
                | "pdf"
                | "zip"
                | "gzip"
                | "x-gzip"
                | "x-tar"
                | "wasm"
                | "protobuf"
                | "x-protobuf"
                | "msgpack"
                | "x-msgpack"
                | "cbor"
        ),
        _ => false,
    }
}

/// A line without terminal control sequences: colours are dropped, tabs
/// become four spaces (a report indents evidence), other control characters
/// show as `�`, so that evidence never moves a terminal's cursor nor breaks
/// an XML report.
fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            // CSI: parameters and intermediates up to a final byte
            chars.next();
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        } else if c == '\t' {
            out.push_str("    ");
        } else if c.is_control() {
            out.push(char::REPLACEMENT_CHARACTER);
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `max` bytes from the start of `text`, cut at a character.
fn cut_start(text: &str, max: usize) -> String {
    let mut at = max.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text[..at].to_owned()
}

/// At most `max` bytes from the end of `text`, cut at a character.
fn cut_end(text: &str, max: usize) -> &str {
    let mut at = text.len().saturating_sub(max);
    while !text.is_char_boundary(at) {
        at += 1;
    }
    &text[at..]
}

/// At most `max` characters, the cut marked with `…`.
fn cut_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// `line`, `lines`.
fn noun(n: usize, one: &str) -> String {
    if n == 1 {
        one.to_owned()
    } else {
        format!("{one}s")
    }
}

/// `line`, `2 lines`: how many were shown ("last line", "last 2 lines").
fn counted(n: usize, one: &str) -> String {
    if n == 1 {
        one.to_owned()
    } else {
        format!("{n} {one}s")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn evidence(kind: StepKind, result: &Json) -> Vec<Evidence> {
        pick(kind, result, &[], &Redactor::default())
    }

    fn numbered(n: usize) -> String {
        (1..=n)
            .map(|i| format!("line {i}\n"))
            .collect::<Vec<_>>()
            .concat()
    }

    #[test]
    fn a_process_shows_the_end_of_its_output_stderr_first() {
        let got = evidence(
            StepKind::Exec,
            &json!({"exit_code": 3, "stdout": "out\n", "stderr": numbered(25)}),
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].label(), "stderr (last 10 lines)");
        assert_eq!(
            got[0].text,
            "… 15 earlier lines\nline 16\nline 17\nline 18\nline 19\nline 20\nline 21\nline 22\nline 23\nline 24\nline 25"
        );
        assert_eq!(got[1].label(), "stdout");
        assert_eq!(got[1].text, "out");
    }

    #[test]
    fn empty_output_shows_nothing() {
        let got = evidence(StepKind::Exec, &json!({"stdout": "", "stderr": "  \n"}));
        assert!(got.is_empty(), "{got:?}");
        assert!(evidence(StepKind::Wait, &json!({"waited": 1})).is_empty());
    }

    #[test]
    fn a_body_shows_its_start_within_the_byte_limit() {
        let got = evidence(
            StepKind::Http,
            &json!({"status": 500, "body": numbered(30)}),
        );
        assert_eq!(got[0].label(), "body (first 20 lines)");
        assert!(
            got[0].text.starts_with("line 1\nline 2\n"),
            "{}",
            got[0].text
        );
        assert!(
            got[0].text.ends_with("line 20\n… 10 more lines"),
            "{}",
            got[0].text
        );

        let long = "x".repeat(5000);
        let got = evidence(StepKind::Http, &json!({"body": long}));
        assert_eq!(got[0].label(), "body (first 2 KiB)");
        assert_eq!(got[0].text.len(), MAX_BYTES + '…'.len_utf8());

        let lines = (0..100)
            .map(|i| format!("{i:0>99}\n"))
            .collect::<Vec<_>>()
            .concat();
        let got = evidence(StepKind::Exec, &json!({"stderr": lines}));
        assert!(got[0].text.len() <= MAX_BYTES + 40, "{}", got[0].text.len());
        assert_eq!(got[0].label(), "stderr (last 10 lines)");
        let lines = (0..100)
            .map(|i| format!("{i:0>299}\n"))
            .collect::<Vec<_>>()
            .concat();
        let got = evidence(StepKind::Exec, &json!({"stderr": lines}));
        assert_eq!(got[0].label(), "stderr (last 6 lines)");
    }

    #[test]
    fn binary_bodies_are_a_note_of_their_size() {
        let got = evidence(
            StepKind::Http,
            &json!({"headers": {"content-type": "image/png"}, "body": "x".repeat(2150)}),
        );
        assert_eq!(got[0].text, "<2.1 KiB of binary data>");
        assert_eq!(got[0].label(), "body");
        let got = evidence(StepKind::Http, &json!({"body": "ab\u{fffd}\u{fffd}"}));
        assert_eq!(got[0].text, "<4 bytes of binary data>");
        let got = evidence(
            StepKind::Http,
            &json!({"headers": {"content-type": "image/svg+xml"}, "body": "<svg/>"}),
        );
        assert_eq!(got[0].text, "<svg/>");
    }

    #[test]
    fn a_conversation_shows_its_last_messages() {
        let received: Vec<Json> = (1..=7)
            .map(|i| json!({"type": "text", "text": format!("m{i}"), "size": 2}))
            .chain([json!({"type": "binary", "text": null, "base64": "AAE=", "size": 2})])
            .collect();
        let got = evidence(StepKind::Ws, &json!({"received": received}));
        assert_eq!(got[0].label(), "received (last 5 of 8)");
        assert_eq!(
            got[0].text,
            "… 3 earlier items\nm4\nm5\nm6\nm7\n<2 bytes of binary data>"
        );
        assert!(evidence(StepKind::Ws, &json!({"received": []})).is_empty());
    }

    #[test]
    fn secrets_are_hidden_before_the_cut() {
        let mut redactor = Redactor::default();
        redactor.add("hunter2");
        let stderr = format!("{}token hunter2\n", numbered(12));
        let got = pick(StepKind::Exec, &json!({"stderr": stderr}), &[], &redactor);
        assert!(got[0].text.ends_with("token ***"), "{}", got[0].text);
        // a secret across the byte limit is hidden whole, not cut in half
        let body = format!("{}hunter2{}", "x".repeat(MAX_BYTES - 3), "y".repeat(100));
        let got = pick(StepKind::Http, &json!({"body": body}), &[], &redactor);
        assert!(got[0].text.ends_with("x***…"), "{}", got[0].text);
    }

    #[test]
    fn colours_are_dropped_and_control_characters_shown() {
        assert_eq!(
            printable("\u{1b}[31merror\u{1b}[0m:\tx\u{7}"),
            "error:    x\u{fffd}"
        );
    }

    #[test]
    fn a_field_checked_whole_is_not_shown_twice() {
        let failed = ExpectationOutcome {
            target: String::from("stderr"),
            span: 0..1,
            blocking: true,
            passed: false,
            message: String::new(),
            expected: String::new(),
            actual: None,
            diff: None,
        };
        let got = pick(
            StepKind::Exec,
            &json!({"stdout": "out", "stderr": "err"}),
            &[failed],
            &Redactor::default(),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].field, "stdout");
    }

    #[test]
    fn a_reason_that_a_failure_says_whole_is_not_shown_twice() {
        let said = "the body is not UTF-8 text (no charset is declared, so UTF-8 is assumed): the first byte that cannot be decoded is 0x89, at offset 0; it starts `\\x89PNG`";
        let result = json!({"status": 500, "body": null, "body_error": said});
        // a status failure: the reason is the evidence of the body
        let got = evidence(StepKind::Http, &result);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].field, "body_error");
        assert_eq!(got[0].text, said);
        // a failed check of the body says it already
        let failed = ExpectationOutcome {
            target: String::from("body"),
            span: 0..1,
            blocking: true,
            passed: false,
            message: format!("body: {said}"),
            expected: String::from("a text body"),
            actual: None,
            diff: None,
        };
        let got = pick(
            StepKind::Http,
            &result,
            std::slice::from_ref(&failed),
            &Redactor::default(),
        );
        assert!(got.is_empty(), "{got:?}");
        // a failure that says more than the text does not hide it
        let other = ExpectationOutcome {
            message: format!("body: {said}, and more"),
            ..failed
        };
        let got = pick(StepKind::Http, &result, &[other], &Redactor::default());
        assert_eq!(got.len(), 1);
    }
}
