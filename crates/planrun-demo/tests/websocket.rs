//! The WebSocket chat (TC-006) over real TCP with a tokio-tungstenite client:
//! greeting, broadcast between two clients of a room, room isolation, JSON and
//! protocol pings, clean closes and the non-upgrade answer on the same port.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use planrun_demo::{DemoServer, Flavor};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::{call, start};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(server: &DemoServer, session: &str) -> Socket {
    let url = format!("{}/ws/chat/session/{session}/", server.ws_url());
    let (socket, response) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket handshake");
    assert_eq!(response.status(), 101);
    assert_eq!(
        response
            .headers()
            .get("x-served-by")
            .map(|value| value.to_str().expect("ascii")),
        Some(server.flavor().as_str())
    );
    socket
}

/// The next text frame as JSON (fails after 2 s).
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(2), socket.next())
            .await
            .expect("a message within 2 s")
            .expect("stream open")
            .expect("valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn send_json(socket: &mut Socket, value: &Value) {
    socket
        .send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// Asserts nothing arrives for a while.
async fn assert_silent(socket: &mut Socket) {
    let waited = tokio::time::timeout(Duration::from_millis(200), socket.next()).await;
    assert!(waited.is_err(), "unexpected {waited:?}");
}

#[tokio::test]
async fn connect_greets_and_echoes_the_sender_tc_006() {
    let server = start(Flavor::Asgi).await;
    let mut socket = connect(&server, "test123").await;
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "connection_established", "session_id": "test123", "user": null, "connection": 1, "members": 1})
    );
    send_json(
        &mut socket,
        &json!({"type": "chat_message", "message": "hi"}),
    )
    .await;
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "chat_message", "message": "hi", "session_id": "test123", "sender": 1})
    );
    socket
        .send(Message::text("plain words"))
        .await
        .expect("send");
    assert_eq!(next_json(&mut socket).await["message"], "plain words");
    drop(socket);
    server.shutdown().await;
}

#[tokio::test]
async fn messages_are_broadcast_to_the_room_only() {
    let server = start(Flavor::Wsgi).await;
    let mut alice = connect(&server, "room").await;
    let mut bob = connect(&server, "room").await;
    let mut eve = connect(&server, "other").await;
    for socket in [&mut alice, &mut bob, &mut eve] {
        assert_eq!(next_json(socket).await["type"], "connection_established");
    }
    send_json(
        &mut bob,
        &json!({"type": "chat_message", "message": {"text": "hey"}}),
    )
    .await;
    let expected = json!({
        "type": "chat_message",
        "message": {"text": "hey"},
        "session_id": "room",
        "sender": 2,
    });
    assert_eq!(next_json(&mut alice).await, expected);
    assert_eq!(next_json(&mut bob).await, expected);
    assert_silent(&mut eve).await;

    send_json(
        &mut eve,
        &json!({"type": "chat_message", "message": "alone"}),
    )
    .await;
    assert_eq!(next_json(&mut eve).await["sender"], 1);
    assert_silent(&mut alice).await;
    drop((alice, bob, eve));
    server.shutdown().await;
}

#[tokio::test]
async fn pings_and_errors_go_to_the_sender_only() {
    let server = start(Flavor::Asgi).await;
    let mut alice = connect(&server, "p").await;
    let mut bob = connect(&server, "p").await;
    next_json(&mut alice).await;
    next_json(&mut bob).await;

    send_json(&mut alice, &json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut alice).await, json!({"type": "pong"}));
    send_json(&mut alice, &json!({"type": "dance"})).await;
    assert_eq!(
        next_json(&mut alice).await,
        json!({"type": "error", "error": "unknown message type `dance`"})
    );
    alice
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    assert_eq!(next_json(&mut alice).await["type"], "error");
    assert_silent(&mut bob).await;

    alice
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("send ping");
    let pong = tokio::time::timeout(Duration::from_secs(2), alice.next())
        .await
        .expect("pong within 2 s")
        .expect("open")
        .expect("frame");
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
    drop((alice, bob));
    server.shutdown().await;
}

#[tokio::test]
async fn client_close_is_answered_and_the_room_keeps_working() {
    let server = start(Flavor::Asgi).await;
    let mut alice = connect(&server, "c").await;
    let mut bob = connect(&server, "c").await;
    next_json(&mut alice).await;
    next_json(&mut bob).await;

    bob.close(None).await.expect("close");
    let rest = tokio::time::timeout(Duration::from_secs(2), async {
        let mut frames = Vec::new();
        while let Some(frame) = bob.next().await {
            frames.push(frame.expect("clean close"));
        }
        frames
    })
    .await
    .expect("server finishes the close handshake");
    assert!(
        rest.iter().all(|frame| matches!(frame, Message::Close(_))),
        "{rest:?}"
    );

    send_json(
        &mut alice,
        &json!({"type": "chat_message", "message": "still here"}),
    )
    .await;
    assert_eq!(next_json(&mut alice).await["message"], "still here");

    // A newcomer to the same room gets the next connection number.
    let mut carol = connect(&server, "c").await;
    next_json(&mut carol).await;
    send_json(
        &mut carol,
        &json!({"type": "chat_message", "message": "hi"}),
    )
    .await;
    assert_eq!(next_json(&mut carol).await["sender"], 3);
    assert_eq!(next_json(&mut alice).await["sender"], 3);
    drop((alice, carol));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let server = start(Flavor::Asgi).await;
    let mut socket = connect(&server, "bye").await;
    next_json(&mut socket).await;
    let shutdown = tokio::spawn(server.shutdown());
    let frame = tokio::time::timeout(Duration::from_secs(2), socket.next())
        .await
        .expect("close within 2 s")
        .expect("open")
        .expect("frame");
    let Message::Close(Some(close)) = frame else {
        panic!("expected a close frame, got {frame:?}");
    };
    assert_eq!(close.code, CloseCode::Away);
    drop(socket);
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown finishes")
        .expect("task");
}

#[tokio::test]
async fn plain_get_on_the_socket_path_asks_for_an_upgrade() {
    let server = start(Flavor::Wsgi).await;
    let reply = call(server.addr, "GET", "/ws/chat/session/x/").send().await;
    assert_eq!(reply.status, 426);
    assert_eq!(reply.header("upgrade"), Some("websocket"));
    assert_eq!(reply.json()["status"], 426);

    let reply = call(server.addr, "GET", "/ws/chat/session/x/")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "8")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("sec-websocket-version"), Some("13"));

    let reply = call(server.addr, "GET", "/ws/other/").send().await;
    assert_eq!(reply.status, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn a_login_cookie_names_the_user_in_the_greeting() {
    let server = start(Flavor::Asgi).await;
    let login = call(server.addr, "POST", "/api/auth/login/")
        .json(&json!({"username": "qa", "password": "secret"}))
        .send()
        .await;
    assert_eq!(login.status, 200);
    let mut request = format!("{}/ws/chat/session/s1/", server.ws_url())
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "cookie",
        login.cookie_pair().parse().expect("cookie header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("handshake");
    let hello = next_json(&mut socket).await;
    assert_eq!(hello["user"], "qa");
    drop(socket);
    server.shutdown().await;
}

#[tokio::test]
async fn the_wsgi_only_flavor_refuses_sockets_with_a_404() {
    let server = start(Flavor::WsgiOnly).await;
    let url = format!("{}/ws/chat/session/s1/", server.ws_url());
    let err = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("no socket on a WSGI server");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 404);
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_echo_socket_returns_every_message_in_order() {
    let server = start(Flavor::Asgi).await;
    let url = format!("{}/ws/echo/", server.ws_url());
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("handshake");
    // pipelined: all sent before any is read
    for i in 0..300 {
        socket
            .send(Message::text(format!("m{i}")))
            .await
            .expect("send");
    }
    socket
        .send(Message::binary(vec![0u8, 1, 255]))
        .await
        .expect("send");
    for i in 0..300 {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("an echo within 5 s")
            .expect("open")
            .expect("frame");
        assert_eq!(message, Message::text(format!("m{i}")));
    }
    let last = socket.next().await.expect("open").expect("frame");
    assert_eq!(last, Message::binary(vec![0u8, 1, 255]));
    socket.close(None).await.expect("close");
    server.shutdown().await;
}
