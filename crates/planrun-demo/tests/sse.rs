//! The SSE endpoint (TC-005, TC-007) over real TCP: framing, headers, that events
//! really arrive one by one, forced chunk counts, validation and concurrency.

mod common;

use std::time::Duration;

use common::{SseEvent, call, parse_events, start, timed_frames};
use planrun_demo::Flavor;
use serde_json::{Value, json};

fn data(event: &SseEvent) -> Value {
    serde_json::from_str(&event.data).expect("JSON data")
}

#[tokio::test]
async fn streams_one_event_per_word_then_done() {
    let server = start(Flavor::Asgi).await;
    let reply = call(server.addr, "POST", "/api/messages/stream/?delay_ms=1")
        .json(&json!({"session_id": "s1", "message": "hello  streaming world"}))
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    assert_eq!(reply.header("x-served-by"), Some("asgi"));
    let events = parse_events(reply.text());
    assert_eq!(events.len(), 4, "{events:?}");
    for (i, word) in ["hello", "streaming", "world"].iter().enumerate() {
        assert_eq!(events[i].id, i.to_string());
        assert_eq!(events[i].event, "message");
        assert_eq!(data(&events[i]), json!({"chunk": word, "index": i}));
    }
    assert_eq!(
        events[3],
        SseEvent {
            id: "3".into(),
            event: "done".into(),
            data: "[DONE]".into()
        }
    );
    server.shutdown().await;
}

#[tokio::test]
async fn chunks_arrive_incrementally() {
    let server = start(Flavor::Wsgi).await;
    let response = call(server.addr, "POST", "/api/messages/stream/?delay_ms=150")
        .json(&json!({"session_id": "s1", "message": "one two three four"}))
        .open()
        .await;
    assert_eq!(response.status(), 200);
    let frames = timed_frames(response).await;
    // Each event is its own write; the first comes at once, the rest ~150 ms apart.
    assert_eq!(frames.len(), 5, "{frames:?}");
    let (first, _) = frames[0];
    let (last, _) = frames[frames.len() - 1];
    assert!(
        first < Duration::from_millis(140),
        "first event after {first:?}"
    );
    assert!(
        last.saturating_sub(first) >= Duration::from_millis(400),
        "events spread over {:?} only",
        last.saturating_sub(first)
    );
    for pair in frames[..4].windows(2) {
        let gap = pair[1].0.saturating_sub(pair[0].0);
        assert!(
            gap >= Duration::from_millis(100),
            "gap {gap:?} in {frames:?}"
        );
    }
    let text: String = frames
        .iter()
        .map(|(_, bytes)| std::str::from_utf8(bytes).expect("utf-8"))
        .collect();
    assert_eq!(parse_events(&text).len(), 5);
    server.shutdown().await;
}

#[tokio::test]
async fn the_wsgi_only_flavor_buffers_the_whole_stream() {
    let server = start(Flavor::WsgiOnly).await;
    let response = call(server.addr, "POST", "/api/messages/stream/?delay_ms=20")
        .json(&json!({"session_id": "s1", "message": "one two three"}))
        .open()
        .await;
    assert_eq!(response.status(), 200);
    let frames = timed_frames(response).await;
    let text: String = frames
        .iter()
        .map(|(_, bytes)| std::str::from_utf8(bytes).expect("utf-8"))
        .collect();
    // the same four events, in one piece
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(parse_events(&text).len(), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn chunks_parameter_forces_the_count() {
    let server = start(Flavor::Asgi).await;
    let reply = call(
        server.addr,
        "POST",
        "/api/messages/stream/?delay_ms=0&chunks=5",
    )
    .json(&json!({"session_id": "s1", "message": "ping pong"}))
    .send()
    .await;
    let events = parse_events(reply.text());
    let chunks: Vec<Value> = events[..5]
        .iter()
        .map(|event| data(event)["chunk"].clone())
        .collect();
    assert_eq!(chunks, ["ping", "pong", "ping", "pong", "ping"]);
    assert_eq!(events[5].event, "done");
    assert_eq!(events.len(), 6);

    let reply = call(
        server.addr,
        "POST",
        "/api/messages/stream/?delay_ms=0&chunks=2",
    )
    .json(&json!({"session_id": "s1", "message": "a b c"}))
    .send()
    .await;
    let events = parse_events(reply.text());
    assert_eq!(data(&events[0])["chunk"], "a b");
    assert_eq!(data(&events[1])["chunk"], "c");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let server = start(Flavor::Asgi).await;
    let reply = call(server.addr, "POST", "/api/messages/stream/")
        .json(&json!({"message": "hi"}))
        .send()
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({
            "error": "invalid request",
            "status": 400,
            "fields": {"session_id": "this field is required"},
        })
    );
    for query in ["delay_ms=5001", "delay_ms=soon", "chunks=0"] {
        let reply = call(
            server.addr,
            "POST",
            &format!("/api/messages/stream/?{query}"),
        )
        .json(&json!({"session_id": "s1", "message": "hi"}))
        .send()
        .await;
        assert_eq!(reply.status, 400, "{query}");
        assert_eq!(reply.json()["status"], 400, "{query}");
    }
    let reply = call(server.addr, "GET", "/api/messages/stream/")
        .send()
        .await;
    assert_eq!(reply.status, 405);
    server.shutdown().await;
}

#[tokio::test]
async fn ten_concurrent_streams_all_complete_tc_007() {
    let server = start(Flavor::Asgi).await;
    let started = std::time::Instant::now();
    let streams = (0..10).map(|i| {
        let addr = server.addr;
        tokio::spawn(async move {
            call(addr, "POST", "/api/messages/stream/?delay_ms=100")
                .json(&json!({"session_id": format!("s{i}"), "message": "a b c d e"}))
                .send()
                .await
        })
    });
    for stream in streams.collect::<Vec<_>>() {
        let reply = stream.await.expect("task");
        let events = parse_events(reply.text());
        assert_eq!(events.len(), 6);
        assert_eq!(events[5].data, "[DONE]");
    }
    // Served side by side: ten 400 ms streams take well under 10 × 400 ms.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.shutdown().await;
}
