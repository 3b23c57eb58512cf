//! Request bodies: reading them with a size limit, decoding JSON or form-encoded
//! objects, and pulling validated string fields out of them.
//!
//! Owns turning bytes into a field map with JSON errors (axum's own extractors
//! answer in plain text); what a field means is the handler's business.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldErrors};

/// Largest request body any endpoint accepts.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Longest accepted text field, in characters.
pub(crate) const MAX_TEXT_CHARS: usize = 10_000;

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// Reads the whole body, failing with a JSON 413 past [`MAX_BODY_BYTES`].
pub(crate) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    // Refuse a declared oversize body before reading any of it.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|err| {
            if err.into_inner().is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::bad_request("could not read request body")
            }
        })
}

/// Reads the body as an object: form-encoded when the content type says so, JSON
/// otherwise (clients that forget the header still work).
pub(crate) async fn read_object(
    headers: &HeaderMap,
    body: Body,
) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_body(headers, body).await?;
    decode_object(headers, &bytes)
}

fn decode_object(headers: &HeaderMap, bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if is_form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
            .map_err(|err| ApiError::bad_request(format!("invalid form body: {err}")))?;
        return Ok(pairs
            .into_iter()
            .map(|(key, value)| (key, Value::String(value)))
            .collect());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("request body must be a JSON object")),
        Err(err) => Err(ApiError::bad_request(format!("invalid JSON body: {err}"))),
    }
}

/// A non-blank string field of at most [`MAX_TEXT_CHARS`] characters; problems go
/// into `errors` so every field is reported at once.
pub(crate) fn required_text(
    object: &Map<String, Value>,
    field: &'static str,
    errors: &mut FieldErrors,
) -> Option<String> {
    match object.get(field) {
        None | Some(Value::Null) => {
            errors.add(field, "this field is required");
            None
        }
        Some(value) => checked_text(value, field, errors),
    }
}

/// Like [`required_text`] but absent is fine (`Ok(None)` in spirit: `None` with no
/// error recorded).
pub(crate) fn optional_text(
    object: &Map<String, Value>,
    field: &'static str,
    errors: &mut FieldErrors,
) -> Option<String> {
    object
        .get(field)
        .and_then(|value| checked_text(value, field, errors))
}

fn checked_text(value: &Value, field: &'static str, errors: &mut FieldErrors) -> Option<String> {
    let Value::String(text) = value else {
        errors.add(field, "must be a string");
        return None;
    };
    if text.trim().is_empty() {
        errors.add(field, "this field may not be blank");
        None
    } else if text.chars().count() > MAX_TEXT_CHARS {
        errors.add(
            field,
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        );
        None
    } else {
        Some(text.clone())
    }
}

/// Query pairs of a URI, later keys winning.
pub(crate) fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|err| ApiError::bad_request(format!("invalid query string: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn headers(content_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers
    }

    #[test]
    fn decodes_json_and_form_objects() {
        let json =
            decode_object(&headers("application/json"), br#"{"a":"1"}"#).expect("json object");
        assert_eq!(Value::Object(json), json!({"a": "1"}));
        let form = decode_object(
            &headers("application/x-www-form-urlencoded; charset=utf-8"),
            b"a=1&b=x+y",
        )
        .expect("form object");
        assert_eq!(Value::Object(form), json!({"a": "1", "b": "x y"}));
    }

    #[test]
    fn rejects_empty_non_object_and_broken_bodies() {
        for body in [&b""[..], b"  ", b"[1]", b"{"] {
            let err = decode_object(&HeaderMap::new(), body).expect_err("not an object");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn text_fields_report_every_problem() {
        let object = json!({"blank": "  ", "number": 3, "ok": "hi"});
        let Value::Object(object) = object else {
            unreachable!("literal object")
        };
        let mut errors = FieldErrors::default();
        assert_eq!(required_text(&object, "missing", &mut errors), None);
        assert_eq!(required_text(&object, "blank", &mut errors), None);
        assert_eq!(optional_text(&object, "number", &mut errors), None);
        assert_eq!(optional_text(&object, "absent", &mut errors), None);
        assert_eq!(
            required_text(&object, "ok", &mut errors),
            Some("hi".to_owned())
        );
        let err = errors.finish().expect_err("three bad fields");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}
