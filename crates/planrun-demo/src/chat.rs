//! `/ws/chat/session/{id}/`: the WebSocket chat of TC-006, one room per session id.
//!
//! Owns the upgrade handshake on the shared HTTP port (hyper's upgrade, then
//! tokio-tungstenite on the raw connection) and the rooms. Every chat message is
//! broadcast to all connections of the room, the sender included, which gives the
//! seed's "echo or confirmation". Rooms of different ids never see each other.

use std::collections::HashMap;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::app::{AppState, stopping};
use crate::error::ApiError;

/// Messages a slow reader may fall behind by before it skips some.
const ROOM_BACKLOG: usize = 256;

/// Longest accepted session id.
const MAX_SESSION_ID_LEN: usize = 128;

/// The chat rooms of one server by session id.
#[derive(Default)]
pub(crate) struct Rooms {
    by_id: HashMap<String, Room>,
}

struct Room {
    tx: broadcast::Sender<String>,
    members: usize,
    /// Connection numbers start at 1 in each room.
    last_connection: u64,
}

impl Rooms {
    fn join(
        &mut self,
        session_id: &str,
    ) -> (u64, broadcast::Sender<String>, broadcast::Receiver<String>) {
        let room = self
            .by_id
            .entry(session_id.to_owned())
            .or_insert_with(|| Room {
                tx: broadcast::channel(ROOM_BACKLOG).0,
                members: 0,
                last_connection: 0,
            });
        room.members += 1;
        room.last_connection += 1;
        (room.last_connection, room.tx.clone(), room.tx.subscribe())
    }

    fn leave(&mut self, session_id: &str) {
        if let Some(room) = self.by_id.get_mut(session_id) {
            room.members -= 1;
            if room.members == 0 {
                self.by_id.remove(session_id);
            }
        }
    }
}

/// Leaves the room when the connection task ends, however it ends.
struct Membership {
    state: AppState,
    session_id: String,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.state.rooms().leave(&self.session_id);
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

/// `GET /ws/chat/session/{id}/`: answers 101 and serves the socket in a task.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    mut request: Request,
) -> Response {
    let accept = match check_upgrade(&state, &request) {
        Ok(accept) => accept,
        Err(refusal) => return refusal,
    };
    if session_id.is_empty() || session_id.len() > MAX_SESSION_ID_LEN {
        return ApiError::bad_request(format!(
            "session id must be 1 to {MAX_SESSION_ID_LEN} bytes long"
        ))
        .into_response();
    }
    // the session cookie of an http login authenticates the socket
    let user = crate::auth::session_user(request.headers());
    let served = state.clone();
    serve_socket(&state, &mut request, accept, move |socket| {
        run_connection(served, session_id, user, socket)
    })
}

/// `/ws/echo/`: every text or binary message comes back as it was sent, at
/// once and in order (a socket to measure round trips against).
pub(crate) async fn echo(State(state): State<AppState>, mut request: Request) -> Response {
    let accept = match check_upgrade(&state, &request) {
        Ok(accept) => accept,
        Err(refusal) => return refusal,
    };
    let mut shutdown = state.shutdown_signal();
    serve_socket(&state, &mut request, accept, |socket| async move {
        let (mut sink, mut stream) = socket.split();
        loop {
            tokio::select! {
                incoming = stream.next() => match incoming {
                    None | Some(Err(_)) => break,
                    Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                        if sink.send(message).await.is_err() {
                            break;
                        }
                    }
                    // pings and the close handshake are answered by tungstenite
                    Some(Ok(_)) => {}
                },
                () = stopping(&mut shutdown) => {
                    let frame = CloseFrame {
                        code: CloseCode::Away,
                        reason: tungstenite::Utf8Bytes::from_static("server shutting down"),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
            }
        }
    })
}

/// A socket once the switch from HTTP is done.
type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Answers an accepted upgrade with 101 and runs `serve` on the socket once
/// the switch is done, as a task the server waits for when it stops.
fn serve_socket<F, Fut>(
    state: &AppState,
    request: &mut Request,
    accept: HeaderValue,
    serve: F,
) -> Response
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let on_upgrade = hyper::upgrade::on(request);
    let token = state.task_token();
    tokio::spawn(async move {
        let _token = token;
        // The client went away before the switch: nothing to serve.
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        serve(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await)
            .await;
    });
    switching(accept)
}

/// The `Sec-WebSocket-Accept` of a valid upgrade request, or the answer that
/// refuses it.
fn check_upgrade(state: &AppState, request: &Request) -> Result<HeaderValue, Response> {
    if !state.flavor().streams() {
        // a WSGI server has no route for sockets
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not found")
            .with("path", request.uri().path())
            .into_response());
    }
    let headers = request.headers();
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err((
            [(header::UPGRADE, HeaderValue::from_static("websocket"))],
            ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "this endpoint only speaks WebSocket",
            ),
        )
            .into_response());
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return Err((
            [(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            )],
            ApiError::bad_request("unsupported `Sec-WebSocket-Version`, expected `13`"),
        )
            .into_response());
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err(ApiError::bad_request("missing `Sec-WebSocket-Key` header").into_response());
    };
    Ok(HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .expect("invariant: base64 is a valid header value"))
}

fn switching(accept: HeaderValue) -> Response {
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::CONNECTION, HeaderValue::from_static("Upgrade")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response()
}

/// What the room or the sender gets for one incoming text frame.
#[derive(Debug, PartialEq)]
enum Reply {
    /// To everyone in the room, the sender included.
    Broadcast(Value),
    /// To the sender only.
    Direct(Value),
}

fn handle_text(text: &str, session_id: &str, connection: u64) -> Reply {
    let chat = |message: Value| {
        Reply::Broadcast(json!({
            "type": "chat_message",
            "message": message,
            "session_id": session_id,
            "sender": connection,
        }))
    };
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        // Plain text (or a bare JSON scalar) is a chat message as typed.
        return chat(Value::String(text.to_owned()));
    };
    match object.get("type").and_then(Value::as_str) {
        Some("chat_message") => match object.get("message") {
            Some(message) if !message.is_null() => chat(message.clone()),
            _ => Reply::Direct(json!({
                "type": "error",
                "error": "`chat_message` needs a `message`",
            })),
        },
        Some("ping") => Reply::Direct(json!({"type": "pong"})),
        Some(other) => Reply::Direct(json!({
            "type": "error",
            "error": format!("unknown message type `{other}`"),
        })),
        None => Reply::Direct(json!({
            "type": "error",
            "error": "a JSON message needs a string `type`",
        })),
    }
}

async fn run_connection<S>(
    state: AppState,
    session_id: String,
    user: Option<String>,
    socket: WebSocketStream<S>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (connection, room, mut inbox) = state.rooms().join(&session_id);
    let mut shutdown = state.shutdown_signal();
    let _membership = Membership {
        state,
        session_id: session_id.clone(),
    };
    let (mut sink, mut stream) = socket.split();
    let hello = json!({
        "type": "connection_established",
        "session_id": session_id,
        "user": user,
        "connection": connection,
        "members": room.receiver_count(),
    });
    if sink.send(Message::text(hello.to_string())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let result = match incoming {
                    // Closed, reset, or the close handshake finished.
                    None | Some(Err(_)) => break,
                    Some(Ok(Message::Text(text))) => match handle_text(text.as_str(), &session_id, connection) {
                        Reply::Broadcast(value) => {
                            // Our own subscription keeps the channel open.
                            let _ = room.send(value.to_string());
                            Ok(())
                        }
                        Reply::Direct(value) => sink.send(Message::text(value.to_string())).await,
                    },
                    Some(Ok(Message::Binary(_))) => {
                        let error = json!({"type": "error", "error": "binary messages are not supported"});
                        sink.send(Message::text(error.to_string())).await
                    }
                    // tungstenite answers pings and close frames itself on the next
                    // read; after a close the stream ends and the loop with it.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_))) => Ok(()),
                };
                if result.is_err() {
                    break;
                }
            }
            outgoing = inbox.recv() => match outgoing {
                Ok(text) => {
                    if sink.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                // Too slow to keep up: skip what was missed and carry on.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = stopping(&mut shutdown) => {
                let frame = CloseFrame {
                    code: CloseCode::Away,
                    reason: tungstenite::Utf8Bytes::from_static("server shutting down"),
                };
                if sink.send(Message::Close(Some(frame))).await.is_ok() {
                    // Give the client a moment to answer the close handshake.
                    let drain = async { while let Some(Ok(_)) = stream.next().await {} };
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
                }
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_messages_are_broadcast_with_sender_and_session() {
        let expected = Reply::Broadcast(json!({
            "type": "chat_message", "message": "hi", "session_id": "s1", "sender": 2,
        }));
        assert_eq!(
            handle_text(r#"{"type":"chat_message","message":"hi"}"#, "s1", 2),
            expected
        );
        assert_eq!(handle_text("hi", "s1", 2), expected);
    }

    #[test]
    fn ping_and_bad_messages_answer_the_sender_only() {
        assert_eq!(
            handle_text(r#"{"type":"ping"}"#, "s", 1),
            Reply::Direct(json!({"type": "pong"}))
        );
        for text in [
            r#"{"type":"nope"}"#,
            r#"{"message":"x"}"#,
            r#"{"type":"chat_message"}"#,
        ] {
            let Reply::Direct(value) = handle_text(text, "s", 1) else {
                panic!("{text} should be answered directly");
            };
            assert_eq!(value["type"], "error", "{text}");
        }
    }

    #[test]
    fn rooms_number_connections_and_vanish_when_empty() {
        let mut rooms = Rooms::default();
        assert_eq!(rooms.join("a").0, 1);
        assert_eq!(rooms.join("a").0, 2);
        assert_eq!(rooms.join("b").0, 1);
        rooms.leave("a");
        rooms.leave("a");
        assert!(!rooms.by_id.contains_key("a"));
        assert!(rooms.by_id.contains_key("b"));
    }
}
