//! The router and the state shared by all handlers of one server: flavor, message
//! table, chat rooms and the shutdown signal.
//!
//! Owns the URL map, the JSON 404/405 answers and the `X-Served-By` header; each
//! endpoint's behaviour lives in its own module.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::chat::Rooms;
use crate::error::ApiError;
use crate::flavor::Flavor;
use crate::store::Store;
use crate::{auth, chat, messages, static_files, stream};

/// Handle to one server's state; cheap to clone into every handler.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    flavor: Flavor,
    store: Store,
    rooms: Mutex<Rooms>,
    shutdown: watch::Receiver<bool>,
    /// Cloned into every WebSocket task; `serve` waits until all clones are gone.
    tasks: mpsc::Sender<()>,
}

impl AppState {
    pub(crate) fn new(
        flavor: Flavor,
        store: Store,
        shutdown: watch::Receiver<bool>,
        tasks: mpsc::Sender<()>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                flavor,
                store,
                rooms: Mutex::new(Rooms::default()),
                shutdown,
                tasks,
            }),
        }
    }

    pub(crate) fn flavor(&self) -> Flavor {
        self.inner.flavor
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn rooms(&self) -> MutexGuard<'_, Rooms> {
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A receiver that turns `true` (or closes) when the server stops.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.clone()
    }

    /// A token a background task holds while it runs so that `serve` can wait for it.
    pub(crate) fn task_token(&self) -> mpsc::Sender<()> {
        self.inner.tasks.clone()
    }
}

/// Resolves once the server is stopping.
pub(crate) async fn stopping(signal: &mut watch::Receiver<bool>) {
    // A closed channel means the server is gone: that is a stop too.
    let _ = signal.wait_for(|stop| *stop).await;
}

pub(crate) fn router(state: AppState) -> Router {
    let flavor = state.flavor();
    Router::new()
        .route("/", get(index))
        .route("/health/", get(health))
        .route("/api/auth/login/", post(auth::login))
        .route("/api/auth/me/", get(auth::me))
        .route("/api/auth/logout/", post(auth::logout))
        .route("/api/messages/", get(messages::list).post(messages::create))
        .route("/api/messages/stream/", post(stream::stream))
        .route(
            "/api/messages/{id}/",
            get(messages::retrieve)
                .put(messages::replace)
                .patch(messages::update)
                .delete(messages::destroy),
        )
        .route("/ws/chat/session/{id}/", get(chat::upgrade))
        .route("/ws/echo/", get(chat::echo))
        .route("/static/{*path}", get(static_files::serve))
        .fallback(not_found)
        // Must follow the routes: it is applied to the method routers present.
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(
            move |mut response: Response| async move {
                response.headers_mut().insert(
                    "x-served-by",
                    HeaderValue::from_static(flavor.container_type()),
                );
                response
            },
        ))
        .with_state(state)
}

async fn index(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "name": "planrun-demo",
        "container_type": state.flavor().container_type(),
        "endpoints": [
            {"method": "GET", "path": "/health/"},
            {"method": "POST", "path": "/api/auth/login/"},
            {"method": "GET", "path": "/api/auth/me/"},
            {"method": "POST", "path": "/api/auth/logout/"},
            {"method": "GET", "path": "/api/messages/"},
            {"method": "POST", "path": "/api/messages/"},
            {"method": "GET", "path": "/api/messages/{id}/"},
            {"method": "PUT", "path": "/api/messages/{id}/"},
            {"method": "PATCH", "path": "/api/messages/{id}/"},
            {"method": "DELETE", "path": "/api/messages/{id}/"},
            {"method": "POST", "path": "/api/messages/stream/"},
            {"method": "GET", "path": "/ws/chat/session/{id}/"},
            {"method": "GET", "path": "/ws/echo/"},
            {"method": "GET", "path": "/static/{path}"},
        ],
    }))
}

/// TC-003 / TC-004: the health document of the flavor; with a database
/// that does not answer, 503 and `"unhealthy"`.
async fn health(State(state): State<AppState>) -> Response {
    let flavor = state.flavor();
    let database = state.store().check().await;
    let mut body = json!({
        "status": if database.is_ok() { "healthy" } else { "unhealthy" },
        "container_type": flavor.container_type(),
        "async_enabled": flavor.async_enabled(),
        "checks": {"database": "ok", "cache": "ok"},
    });
    if flavor == Flavor::Asgi {
        body["checks"]["channels"] = json!("configured");
    }
    match database {
        Ok(()) => Json(body).into_response(),
        Err(e) => {
            body["checks"]["database"] = json!(e);
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

async fn not_found(uri: Uri) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not found")
        .with("path", uri.path())
        .into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method `{method}` not allowed"),
    )
    .with("path", uri.path())
    .with("method", method.as_str())
    .into_response()
}
