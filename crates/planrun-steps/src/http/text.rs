//! A response body as the result document's `body` and `json`: the bytes
//! decoded in the charset the `content-type` declares (UTF-8 when it
//! declares none, or one planrun does not know), never lossily. Bytes that
//! are not text in that charset give no `body` but a `body_error` naming the
//! first byte that is not, the charset, and the body's start with every
//! byte that is no printable text escaped (`\xE9`).
//!
//! A replacement character for each bad byte would let `contains` and
//! `matches` pass on a body that is not what the server said it is, so this
//! module must not decode lossily; it must not judge the body otherwise.

use std::fmt::Write as _;

use encoding_rs::{DecoderResult, Encoding, UTF_8};
use serde_json::Value as Json;

/// Bytes of the body's start quoted in a `body_error`.
const PREVIEW_BYTES: usize = 48;

/// The fields a response body gives a result document.
pub(crate) struct BodyFields {
    /// `body`: the text, or `null` when the bytes are not text.
    pub(crate) body: Json,
    /// `json`: the text parsed as JSON, or `null`.
    pub(crate) json: Json,
    /// `body_error`: why `body` is `null`, when it is.
    pub(crate) error: Option<String>,
}

impl BodyFields {
    /// The fields of `bytes` sent with `content_type`.
    pub(crate) fn of(bytes: Vec<u8>, content_type: Option<&str>) -> Self {
        match decode(bytes, content_type) {
            Ok(text) => {
                let json = if text.is_empty() {
                    Json::Null
                } else {
                    serde_json::from_str(&text).unwrap_or(Json::Null)
                };
                Self {
                    body: Json::String(text),
                    json,
                    error: None,
                }
            }
            Err(reason) => Self {
                body: Json::Null,
                json: Json::Null,
                error: Some(reason),
            },
        }
    }
}

/// The body as text, or why it is none.
pub(crate) fn decode(bytes: Vec<u8>, content_type: Option<&str>) -> Result<String, String> {
    let label = content_type.and_then(charset);
    let encoding = label.and_then(|l| Encoding::for_label(l.as_bytes()));
    if let (Some(encoding), Some(label)) = (encoding, label)
        && encoding != UTF_8
    {
        return decode_with(encoding, &bytes).map_err(|at| {
            let name = encoding.name();
            let said = if label.eq_ignore_ascii_case(name) {
                String::from("the declared charset")
            } else {
                format!("the declared charset `{label}`")
            };
            reason(&format!("`{name}`"), &said, at, at >= bytes.len(), &bytes)
        });
    }
    String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        let cut = err.utf8_error().error_len().is_none();
        let said = match (label, encoding) {
            (None, _) => String::from("no charset is declared, so UTF-8 is assumed"),
            (Some(label), Some(_)) => format!("the declared charset `{label}`"),
            (Some(label), None) => {
                format!("the declared charset `{label}` is unknown, so UTF-8 is assumed")
            }
        };
        reason("UTF-8", &said, at, cut, err.as_bytes())
    })
}

/// Decodes `bytes` in `encoding` without replacement; the offset of the
/// first malformed byte on failure.
fn decode_with(encoding: &'static Encoding, bytes: &[u8]) -> Result<String, usize> {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut text = String::with_capacity(
        decoder
            .max_utf8_buffer_length_without_replacement(bytes.len())
            .unwrap_or(bytes.len()),
    );
    let mut done = 0;
    loop {
        let (result, read) =
            decoder.decode_to_string_without_replacement(&bytes[done..], &mut text, true);
        done += read;
        match result {
            DecoderResult::InputEmpty => return Ok(text),
            DecoderResult::OutputFull => text.reserve(bytes.len() - done + 16),
            DecoderResult::Malformed(bad, after) => {
                return Err(done.saturating_sub(usize::from(bad) + usize::from(after)));
            }
        }
    }
}

/// The `charset` parameter of a content type, unquoted.
fn charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
            .filter(|v| !v.is_empty())
    })
}

/// A `body_error`: which byte is not text in which charset (or that the
/// body ends inside a character, `cut`), the body's start and, when the
/// byte is further in, the bytes around it.
fn reason(charset: &str, said: &str, at: usize, cut: bool, bytes: &[u8]) -> String {
    let what = match bytes.get(at) {
        Some(_) if cut => format!("it ends inside a character that starts at offset {at}"),
        Some(b) => format!("the first byte that cannot be decoded is 0x{b:02X}, at offset {at}"),
        None => format!("it ends inside a character, at offset {at}"),
    };
    let mut text = format!(
        "the body is not {charset} text ({said}): {what}; it starts `{}`",
        preview(bytes)
    );
    if at + 8 > PREVIEW_BYTES {
        let from = at.saturating_sub(PREVIEW_BYTES / 2);
        let _ = write!(text, ", and around offset {at} reads `…{}`", preview(&bytes[from..]));
    }
    text
}

/// The start of `bytes` as text with everything but printable characters
/// escaped: `\n`, `\r`, `\t`, `\\` and `\xHH` for other control characters
/// and for bytes that are no UTF-8.
pub(crate) fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(PREVIEW_BYTES)];
    let mut out = String::with_capacity(shown.len() + 8);
    for chunk in shown.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{b:02X}");
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    if bytes.len() > shown.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_bodies_are_text() {
        let fields = BodyFields::of(b"{\"a\": \"caf\xC3\xA9\"}".to_vec(), None);
        assert_eq!(fields.body, "{\"a\": \"café\"}");
        assert_eq!(fields.json["a"], "café");
        assert!(fields.error.is_none());
        let empty = BodyFields::of(Vec::new(), Some("application/json"));
        assert_eq!(empty.body, "");
        assert!(empty.json.is_null());
    }

    #[test]
    fn bytes_that_are_no_utf8_name_the_first_and_the_charset() {
        let err = decode(
            b"valid caf\xE9 \xFF end".to_vec(),
            Some("text/plain; charset=utf-8"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "the body is not UTF-8 text (the declared charset `utf-8`): the first byte that cannot be decoded is 0xE9, at offset 9; it starts `valid caf\\xE9 \\xFF end`"
        );
        let err = decode(vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0], Some("image/png")).unwrap_err();
        assert!(
            err.starts_with("the body is not UTF-8 text (no charset is declared, so UTF-8 is assumed): the first byte that cannot be decoded is 0x89, at offset 0;"),
            "{err}"
        );
        assert!(err.ends_with("it starts `\\x89PNG\\r\\n\\x1A\\n\\x00`"), "{err}");
        // a character cut at the end
        let err = decode(b"caf\xC3".to_vec(), Some("text/plain; charset=\"x-klingon\"")).unwrap_err();
        assert!(
            err.starts_with("the body is not UTF-8 text (the declared charset `x-klingon` is unknown, so UTF-8 is assumed): it ends inside a character that starts at offset 3;"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_byte_far_in_is_shown_in_context() {
        let mut bytes = vec![b'a'; 100];
        bytes[70] = 0xFF;
        let err = decode(bytes, None).unwrap_err();
        assert!(err.contains("0xFF, at offset 70"), "{err}");
        assert!(err.contains(&format!("it starts `{}…`", "a".repeat(48))), "{err}");
        assert!(
            err.ends_with(&format!("and around offset 70 reads `…{}\\xFF{}…`", "a".repeat(24), "a".repeat(23))),
            "{err}"
        );
    }

    #[test]
    fn a_declared_charset_is_used() {
        assert_eq!(
            decode(b"caf\xE9".to_vec(), Some("text/html; charset=ISO-8859-1")).unwrap(),
            "café"
        );
        let fields = BodyFields::of(b"{\"n\": \"\xE9\"}".to_vec(), Some("application/json; charset=latin1"));
        assert_eq!(fields.json["n"], "é");
        // Shift_JIS: 0x82 0xA0 is a character, 0x82 0x20 is not
        assert_eq!(
            decode(b"a\x82\xA0".to_vec(), Some("text/plain; charset=shift_jis")).unwrap(),
            "aあ"
        );
        let err = decode(b"ab\x82\x20c".to_vec(), Some("text/plain; charset=Shift_JIS")).unwrap_err();
        assert!(
            err.starts_with("the body is not `Shift_JIS` text (the declared charset): the first byte that cannot be decoded is 0x82, at offset 2;"),
            "{err}"
        );
    }

    #[test]
    fn previews_escape_what_is_not_printable() {
        assert_eq!(preview(b"a\tb\\c\x1b[0m\xC3\xA9"), "a\\tb\\\\c\\x1B[0mé");
        assert_eq!(preview(&[b'x'; 60]), format!("{}…", "x".repeat(48)));
    }
}
