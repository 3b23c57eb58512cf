//! `/api/messages/`: list, create, read, replace, update and delete messages.
//!
//! Owns the endpoints' rules: what a request must carry, what each answers.
//! Anyone may write; the author is recorded when the request carries a valid
//! session. Where the rows live (one server's memory, or PostgreSQL) is
//! `store.rs`'s.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::app::AppState;
use crate::auth::session_user;
use crate::error::{ApiError, FieldErrors};
use crate::payload::{optional_text, query_pairs, read_object, required_text};
use crate::store::Message;

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
    let results = state.store().list(filter).await?;
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
    let message = state.store().create(session_id, content, author).await?;
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
        .store()
        .get(id)
        .await?
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
    if state.store().get(id).await?.is_none() {
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
    // `None`: deleted while the body was read
    state
        .store()
        .change(id, session_id, content)
        .await?
        .map(Json)
        .ok_or_else(|| missing(&raw))
}

/// `DELETE /api/messages/{id}/`: 204 with no body.
pub(crate) async fn destroy(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&raw)?;
    if state.store().delete(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(missing(&raw))
    }
}
