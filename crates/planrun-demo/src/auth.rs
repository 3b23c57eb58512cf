//! Login, logout and "who am I" over a `sessionid` cookie.
//!
//! Owns the session store. It is process-global on purpose: in the seed plan the
//! WSGI and ASGI containers share sessions through Redis (TC-009), and a `wsgi` and
//! an `asgi` demo server started in the same process share them through this store.
//! Credentials are fake: any username with the password `secret` logs in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::app::AppState;
use crate::error::{ApiError, FieldErrors};
use crate::payload::{read_object, required_text};

/// The password every demo user has.
const PASSWORD: &str = "secret";

/// The cookie carrying the session id, as Django names it.
const COOKIE_NAME: &str = "sessionid";

/// Oldest sessions are forgotten past this many, so load tests cannot grow the
/// store without bound.
const MAX_SESSIONS: usize = 100_000;

static SESSIONS: LazyLock<Mutex<SessionStore>> = LazyLock::new(Mutex::default);

#[derive(Default)]
struct SessionStore {
    by_id: HashMap<String, Session>,
    /// Creation order, for evicting the oldest.
    order: BTreeMap<u64, String>,
    next_seq: u64,
}

struct Session {
    username: String,
    seq: u64,
}

impl SessionStore {
    fn insert(&mut self, id: String, username: String) {
        while self.by_id.len() >= MAX_SESSIONS {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.by_id.remove(&oldest);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, id.clone());
        self.by_id.insert(id, Session { username, seq });
    }

    fn remove(&mut self, id: &str) -> Option<String> {
        let session = self.by_id.remove(id)?;
        self.order.remove(&session.seq);
        Some(session.username)
    }
}

fn sessions() -> MutexGuard<'static, SessionStore> {
    SESSIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `sessionid` cookie of a request, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// The username of the request's session, when it carries a valid one.
pub(crate) fn session_user(headers: &HeaderMap) -> Option<String> {
    let id = session_cookie(headers)?;
    sessions()
        .by_id
        .get(&id)
        .map(|session| session.username.clone())
}

/// `POST /api/auth/login/` with JSON or form `{username, password}`.
pub(crate) async fn login(headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let object = read_object(&headers, body).await?;
    let mut errors = FieldErrors::default();
    let username = required_text(&object, "username", &mut errors);
    let password = match object.get("password") {
        Some(serde_json::Value::String(password)) => Some(password.clone()),
        None | Some(serde_json::Value::Null) => {
            errors.add("password", "this field is required");
            None
        }
        Some(_) => {
            errors.add("password", "must be a string");
            None
        }
    };
    let (Some(username), Some(password)) = (username, password) else {
        return Err(ApiError::fields(errors));
    };
    if password != PASSWORD {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid username or password",
        ));
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    sessions().insert(id.clone(), username.clone());
    let cookie = format!("{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Lax");
    let cookie = HeaderValue::from_str(&cookie)
        .expect("invariant: a hex session id makes a valid header value");
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({"user": {"username": username}, "session_id": id})),
    )
        .into_response())
}

/// `GET /api/auth/me/`: 200 with the user behind the cookie, else 401.
pub(crate) async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let username = session_user(&headers)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "authentication required"))?;
    Ok(Json(json!({
        "username": username,
        "authenticated": true,
        "served_by": state.flavor().container_type(),
    })))
}

/// `POST /api/auth/logout/`: forgets the session (if any) and expires the cookie.
pub(crate) async fn logout(headers: HeaderMap) -> Response {
    let username = session_cookie(&headers).and_then(|id| sessions().remove(&id));
    (
        [(
            header::SET_COOKIE,
            HeaderValue::from_static("sessionid=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
        )],
        Json(json!({"logged_out": username.is_some(), "username": username})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("csrftoken=x; sessionid=abc ; theme=dark"),
        );
        assert_eq!(session_cookie(&headers), Some("abc".to_owned()));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn store_evicts_the_oldest_session_first() {
        let mut store = SessionStore::default();
        for i in 0..=MAX_SESSIONS {
            store.insert(format!("s{i}"), "u".to_owned());
        }
        assert_eq!(store.by_id.len(), MAX_SESSIONS);
        assert!(!store.by_id.contains_key("s0"));
        assert_eq!(store.remove("s1"), Some("u".to_owned()));
        assert_eq!(store.order.len(), MAX_SESSIONS - 1);
    }
}
