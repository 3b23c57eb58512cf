//! The one JSON error shape every endpoint answers with:
//! `{"error": "...", "status": N, ...extra}`.
//!
//! Owns building and rendering errors; deciding *when* to fail stays in handlers.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// An error response. Extra members (such as `path` or `fields`) sit beside
/// `error` and `status`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    extra: Map<String, Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A 400 naming each invalid field, like a form validation error.
    pub(crate) fn fields(errors: FieldErrors) -> Self {
        let fields = errors
            .0
            .into_iter()
            .map(|(field, message)| (field.to_owned(), Value::String(message)))
            .collect();
        Self::bad_request("invalid request").with("fields", Value::Object(fields))
    }

    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".to_owned(), Value::String(self.message));
        body.insert("status".to_owned(), Value::from(self.status.as_u16()));
        body.extend(self.extra);
        (self.status, Json(Value::Object(body))).into_response()
    }
}

/// Validation messages collected per field, reported all at once.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    pub(crate) fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    /// `Ok` when nothing was added, else the 400 listing every field.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(self))
        }
    }
}
