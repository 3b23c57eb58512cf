//! `/api/messages/`: an in-memory message table with list, create, read, replace,
//! update and delete.
//!
//! Owns the table of one server (not shared between servers, so concurrent tests do
//! not see each other's rows). Anyone may write; the author is recorded when the
//! request carries a valid session.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use serde::Serialize;
use serde_json::json;

use crate::app::AppState;
use crate::auth::session_user;
use crate::error::{ApiError, FieldErrors};
use crate::payload::{optional_text, query_pairs, read_object, required_text};

/// One stored chat message, serialized as the API returns it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Message {
    id: u64,
    session_id: String,
    content: String,
    author: Option<String>,
    created_at: String,
    updated_at: String,
}

/// The rows of one server, keyed by id (ids start at 1 and are never reused).
#[derive(Debug, Default)]
pub(crate) struct MessageStore {
    rows: BTreeMap<u64, Message>,
    last_id: u64,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| missing(raw))
}

fn missing(raw: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("message `{raw}` not found"))
}

/// `GET /api/messages/[?session_id=...]`
pub(crate) async fn list(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let pairs = query_pairs(uri.query())?;
    let filter = pairs
        .iter()
        .rev()
        .find(|(key, _)| key == "session_id")
        .map(|(_, value)| value.as_str());
    let results: Vec<Message> = state
        .messages()
        .rows
        .values()
        .filter(|message| filter.is_none_or(|session| message.session_id == session))
        .cloned()
        .collect();
    Ok(Json(json!({"count": results.len(), "results": results})).into_response())
}

/// `POST /api/messages/` with `{session_id, content}`: 201 and a `Location`.
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let object = read_object(&headers, body).await?;
    let mut errors = FieldErrors::default();
    let session_id = required_text(&object, "session_id", &mut errors);
    let content = required_text(&object, "content", &mut errors);
    let (Some(session_id), Some(content)) = (session_id, content) else {
        return Err(ApiError::fields(errors));
    };
    let author = session_user(&headers);
    let message = {
        let mut store = state.messages();
        store.last_id += 1;
        let created_at = now();
        let message = Message {
            id: store.last_id,
            session_id,
            content,
            author,
            updated_at: created_at.clone(),
            created_at,
        };
        store.rows.insert(message.id, message.clone());
        message
    };
    let location = HeaderValue::from_str(&format!("/api/messages/{}/", message.id))
        .expect("invariant: a numeric path is a valid header value");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(message),
    )
        .into_response())
}

/// `GET /api/messages/{id}/`
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Message>, ApiError> {
    let id = parse_id(&raw)?;
    state
        .messages()
        .rows
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| missing(&raw))
}

/// `PUT /api/messages/{id}/`: both `session_id` and `content` are required.
pub(crate) async fn replace(
    state: State<AppState>,
    path: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Message>, ApiError> {
    change(state, path, headers, body, true).await
}

/// `PATCH /api/messages/{id}/`: any of `session_id` and `content`.
pub(crate) async fn update(
    state: State<AppState>,
    path: Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Message>, ApiError> {
    change(state, path, headers, body, false).await
}

async fn change(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
    replace: bool,
) -> Result<Json<Message>, ApiError> {
    let id = parse_id(&raw)?;
    if !state.messages().rows.contains_key(&id) {
        return Err(missing(&raw));
    }
    let object = read_object(&headers, body).await?;
    let mut errors = FieldErrors::default();
    let (session_id, content) = if replace {
        (
            required_text(&object, "session_id", &mut errors),
            required_text(&object, "content", &mut errors),
        )
    } else {
        (
            optional_text(&object, "session_id", &mut errors),
            optional_text(&object, "content", &mut errors),
        )
    };
    errors.finish()?;
    let mut store = state.messages();
    // Deleted while the body was read.
    let message = store.rows.get_mut(&id).ok_or_else(|| missing(&raw))?;
    if let Some(session_id) = session_id {
        message.session_id = session_id;
    }
    if let Some(content) = content {
        message.content = content;
    }
    message.updated_at = now();
    Ok(Json(message.clone()))
}

/// `DELETE /api/messages/{id}/`: 204 with no body.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&raw)?;
    state
        .messages()
        .rows
        .remove(&id)
        .map(|_| StatusCode::NO_CONTENT)
        .ok_or_else(|| missing(&raw))
}
