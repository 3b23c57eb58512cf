//! `sse` steps against in-process servers: the testkit's fixture server on
//! 127.0.0.1:0, whose `/sse/*` routes stall, burst, resume, break off and bend
//! the event stream format, and for TLS a rustls server with the throwaway CA
//! of the `http` tests.
//!
//! Time limits here are short (300 ms) so that the tests of `listen` and
//! timeouts are quick; assertions are on how a stream ended and on messages,
//! never on how long something took. What a test counts at a time limit is
//! sent by the fixture in one write before it goes silent, so the count does
//! not depend on how loaded the machine is.

mod common;

use std::time::Duration;

use common::{
    HANG_GUARD, MAX_BODY, TLS_DIR, answer_once, config, context, run_spec, run_spec_live, run_step,
    start_tls,
};
use planrun_runner::executor::{SpecContext, StepError};
use planrun_steps::http::HttpExecutor;
use planrun_steps::sse::SseExecutor;
use planrun_testkit::{CUT_BODY, FixtureServer, STALL_BODY};
use serde_json::{Value, json};

/// Runs an `sse` step from the TOML of its table, with a 10 s step limit.
async fn sse(ctx: &SpecContext, toml: &str) -> Result<Value, StepError> {
    sse_within(ctx, toml, Duration::from_secs(10)).await
}

/// Runs an `sse` step with the step limit `limit`.
async fn sse_within(ctx: &SpecContext, toml: &str, limit: Duration) -> Result<Value, StepError> {
    planrun_steps::install_crypto_provider();
    let executor = SseExecutor::new();
    let step_config = config(toml);
    let step = run_step(&executor, ctx, &step_config, limit, MAX_BODY);
    match tokio::time::timeout(HANG_GUARD, step).await {
        Ok(result) => result,
        Err(elapsed) => panic!("the sse step hung ({elapsed}): {toml}"),
    }
}

async fn ok(ctx: &SpecContext, toml: &str) -> Value {
    match sse(ctx, toml).await {
        Ok(doc) => doc,
        Err(err) => panic!("expected a result, got the error `{err}` for {toml}"),
    }
}

async fn fails(ctx: &SpecContext, toml: &str) -> StepError {
    match sse(ctx, toml).await {
        Ok(doc) => panic!("expected an error, got {doc:#} for {toml}"),
        Err(err) => err,
    }
}

/// `(type, data, id)` of every event.
fn events(doc: &Value) -> Vec<(String, String, Value)> {
    doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["data"].as_str().unwrap().to_string(),
                e["id"].clone(),
            )
        })
        .collect()
}

fn offsets(doc: &Value) -> Vec<f64> {
    doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["offset"].as_f64().unwrap())
        .collect()
}

fn ev(kind: &str, data: &str, id: Option<&str>) -> (String, String, Value) {
    (kind.to_string(), data.to_string(), json!(id))
}

#[tokio::test]
async fn a_stream_fills_the_result_document() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/sse/basic");
    let doc = ok(&ctx, &format!("get = \"{url}\"")).await;

    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "status",
            "headers",
            "url",
            "events",
            "dropped",
            "first_event",
            "gaps",
            "max_gap",
            "end",
            "last_event_id",
            "retry",
            "text",
            "comments",
            "ignored_lines",
            "reconnects",
            "body",
            "json",
            "duration"
        ]
    );
    assert_eq!(doc["status"], 200);
    assert_eq!(doc["headers"]["content-type"], "text/event-stream");
    assert_eq!(doc["url"], url.as_str());
    assert_eq!(
        events(&doc),
        [
            ev("tick", "{\"n\":1}", Some("1")),
            ev("tick", "{\"n\":2}", Some("2")),
            ev("tick", "{\"n\":3}", Some("3")),
        ]
    );
    assert_eq!(doc["events"][1]["json"], json!({"n": 2}));
    assert_eq!(doc["end"], "closed");
    assert_eq!(doc["last_event_id"], "3");
    assert_eq!(doc["retry"], Value::Null);
    assert_eq!(doc["text"], "{\"n\":1}{\"n\":2}{\"n\":3}");
    assert_eq!(doc["comments"], 0);
    assert_eq!(doc["ignored_lines"], 0);
    assert_eq!(doc["reconnects"], 0);
    assert_eq!(doc["body"], Value::Null);
    assert_eq!(doc["json"], Value::Null);

    // the events were sent 20 ms apart, but a busy client may read two at
    // once: offsets never decrease, gaps are their differences
    let at = offsets(&doc);
    assert!(at[0] > 0.0 && at[0] <= at[1] && at[1] <= at[2], "{at:?}");
    assert_eq!(doc["first_event"].as_f64(), Some(at[0]));
    let gaps: Vec<f64> = doc["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_f64().unwrap())
        .collect();
    assert_eq!(gaps, [at[1] - at[0], at[2] - at[1]]);
    assert_eq!(doc["max_gap"].as_f64(), Some(gaps[0].max(gaps[1])));
    assert!(doc["duration"].as_f64().unwrap() >= at[2]);
}

#[tokio::test]
async fn the_request_carries_method_body_headers_and_the_spec_cookies() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    // a login over http: its cookie lands in the spec run's jar
    let login = run_step(
        &HttpExecutor::new(),
        &ctx,
        &config(&format!("get = \"{}\"", server.url("/set-cookie"))),
        Duration::from_secs(10),
        MAX_BODY,
    )
    .await
    .unwrap();
    assert_eq!(login["cookies"]["token"], "abc");

    let doc = ok(
        &ctx,
        &format!(
            "post = \"{}\"\njson = {{ session_id = \"s1\", n = 3 }}\nlast_event_id = \"41\"\nheaders = {{ X-Trace = \"t-1\" }}\ncookies = {{ theme = \"dark\" }}\nquery = {{ a = 1 }}",
            server.url("/sse/echo")
        ),
    )
    .await;
    assert_eq!(doc["end"], "closed");
    assert_eq!(doc["events"][0]["type"], "echo");
    let seen = &doc["events"][0]["json"];
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["json"], json!({"session_id": "s1", "n": 3}));
    assert_eq!(seen["headers"]["content-type"], "application/json");
    assert_eq!(seen["headers"]["accept"], "text/event-stream");
    assert_eq!(seen["headers"]["cache-control"], "no-cache");
    assert_eq!(seen["headers"]["last-event-id"], "41");
    assert_eq!(seen["headers"]["x-trace"], "t-1");
    assert_eq!(seen["cookies"], json!({"token": "abc", "theme": "dark"}));
    assert!(doc["url"].as_str().unwrap().ends_with("/sse/echo?a=1"));
}

#[tokio::test]
async fn headers_set_by_the_step_win_over_the_defaults() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(
        &ctx,
        &format!(
            "get = \"{}\"\nheaders = {{ Accept = \"*/*\", Cache-Control = \"max-age=0\" }}",
            server.url("/sse/echo")
        ),
    )
    .await;
    let seen = &doc["events"][0]["json"];
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["headers"]["accept"], "*/*");
    assert_eq!(seen["headers"]["cache-control"], "max-age=0");
    assert_eq!(seen["headers"].get("last-event-id"), None);
}

/// What `/sse/quirks/*` holds, read per WHATWG.
fn assert_quirks(doc: &Value, route: &str) {
    assert_eq!(
        events(doc),
        [
            ev("message", "first", None),
            ev("update", "multi\nline", Some("7")),
            ev("message", "no space", None),
            ev("message", "", Some("8")),
            ev("message", " two spaces", Some("8")),
            ev("message", "ünïcödé ✓", Some("8")),
        ],
        "{route}"
    );
    assert_eq!(doc["comments"], 2, "{route}");
    assert_eq!(doc["ignored_lines"], 3, "{route}");
    assert_eq!(doc["retry"], 250, "{route}");
    assert_eq!(doc["last_event_id"], "8", "{route}");
    assert_eq!(
        doc["text"], "firstmulti\nlineno space two spacesünïcödé ✓",
        "{route}"
    );
    assert_eq!(doc["end"], "closed", "{route}");
}

#[tokio::test]
async fn quirks_read_the_same_with_every_line_ending_and_split() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    for ending in ["lf", "crlf", "cr"] {
        for split in ["", "?bytewise"] {
            let route = format!("/sse/quirks/{ending}{split}");
            let doc = ok(&ctx, &format!("get = \"{}\"", server.url(&route))).await;
            assert_quirks(&doc, &route);
        }
    }
}

#[tokio::test]
async fn invalid_utf8_is_replaced_and_split_characters_joined() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(
        &ctx,
        &format!("get = \"{}\"", server.url("/sse/invalid-utf8")),
    )
    .await;
    let data: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].as_str().unwrap())
        .collect();
    assert_eq!(data, ["a\u{fffd}b", "café", "end\u{fffd}"]);
    assert_eq!(doc["end"], "closed");
}

/// Whether a burst shares one offset depends on how the bytes are read, which
/// one write does not decide; the unit tests of the executor check that the
/// events of one read share its offset.
#[tokio::test]
async fn a_burst_is_read_whole() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(&ctx, &format!("get = \"{}\"", server.url("/sse/burst/5"))).await;
    let ids: Vec<Value> = events(&doc).into_iter().map(|(_, _, id)| id).collect();
    assert_eq!(
        ids,
        [json!("1"), json!("2"), json!("3"), json!("4"), json!("5")]
    );
    let at = offsets(&doc);
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    assert_eq!(doc["gaps"].as_array().unwrap().len(), 4);
    assert_eq!(doc["end"], "closed");
}

#[tokio::test]
async fn listen_ends_an_open_stream_without_an_error() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(
        &ctx,
        &format!(
            "get = \"{}\"\nlisten = \"300ms\"",
            server.url("/sse/stall/2")
        ),
    )
    .await;
    assert_eq!(doc["end"], "listen");
    assert_eq!(doc["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn no_headers_before_listen_runs_out_is_an_error() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/hang");
    // the step's limit is 10 s: `listen` bounds the wait for headers too
    let err = fails(&ctx, &format!("get = \"{url}\"\nlisten = \"300ms\"")).await;
    assert_eq!(
        err.message,
        format!("`{url}` sent no response headers within `listen` (300 ms)")
    );
    assert!(err.help.unwrap().contains("listen longer"));
}

#[tokio::test]
async fn a_stream_open_at_the_time_limit_is_an_error() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let err = fails(
        &ctx,
        &format!(
            "get = \"{}\"\ntimeout = \"300ms\"",
            server.url("/sse/stall/2")
        ),
    )
    .await;
    assert!(
        err.message
            .starts_with("the stream did not end within 300 ms: 2 events arrived, the last "),
        "{}",
        err.message
    );
    assert!(err.message.ends_with(" ago"), "{}", err.message);
    let help = err.help.unwrap();
    assert!(
        help.contains("`until`") && help.contains("`listen"),
        "{help}"
    );

    let err = fails(
        &ctx,
        &format!(
            "get = \"{}\"\ntimeout = \"300ms\"",
            server.url("/sse/stall/0")
        ),
    )
    .await;
    assert!(
        err.message
            .starts_with("no event arrived within 300 ms (the server sent headers after "),
        "{}",
        err.message
    );
    assert!(err.message.ends_with(" ms)"), "{}", err.message);
}

#[tokio::test]
async fn the_step_limit_caps_the_stream_timeout() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/hang");
    let err = sse_within(
        &ctx,
        &format!("get = \"{url}\"\ntimeout = \"1m\""),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.message,
        format!("`{url}` sent no response headers within 300 ms")
    );
}

#[tokio::test]
async fn no_headers_within_the_time_limit_is_an_error() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/hang");
    let err = fails(&ctx, &format!("get = \"{url}\"\ntimeout = \"300ms\"")).await;
    assert_eq!(
        err.message,
        format!("`{url}` sent no response headers within 300 ms")
    );
}

#[tokio::test]
async fn until_with_a_string_matches_the_data() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(
        &ctx,
        &format!("get = \"{}\"\nuntil = \"[DONE]\"", server.url("/sse/words")),
    )
    .await;
    assert_eq!(doc["end"], "until");
    assert_eq!(
        events(&doc),
        [
            ev("message", "{\"chunk\":\"alpha\",\"index\":0}", Some("0")),
            ev("message", "{\"chunk\":\"beta\",\"index\":1}", Some("1")),
            ev("message", "{\"chunk\":\"gamma\",\"index\":2}", Some("2")),
            ev("done", "[DONE]", Some("3")),
        ]
    );
    assert_eq!(doc["last_event_id"], "3");
}

#[tokio::test]
async fn until_with_a_table_matches_the_event() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/sse/words");
    let doc = ok(
        &ctx,
        &format!("get = \"{url}\"\nuntil = {{ type = \"done\" }}"),
    )
    .await;
    assert_eq!(doc["end"], "until");
    assert_eq!(doc["events"].as_array().unwrap().len(), 4);

    // the event that matches is the last one kept
    let doc = ok(
        &ctx,
        &format!("get = \"{url}\"\nuntil = {{ json = {{ chunk = \"beta\" }} }}"),
    )
    .await;
    assert_eq!(doc["end"], "until");
    assert_eq!(
        doc["text"],
        "{\"chunk\":\"alpha\",\"index\":0}{\"chunk\":\"beta\",\"index\":1}"
    );

    let doc = ok(
        &ctx,
        &format!("get = \"{url}\"\nuntil = {{ \"$.json.index\" = {{ ge = 2 }} }}"),
    )
    .await;
    assert_eq!(doc["end"], "until");
    assert_eq!(doc["events"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_until_that_never_matches_says_why_at_the_time_limit() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let err = fails(
        &ctx,
        &format!(
            "get = \"{}\"\nuntil = \"[END]\"\ntimeout = \"300ms\"",
            server.url("/sse/words")
        ),
    )
    .await;
    assert!(
        err.message
            .starts_with("the stream did not end within 300 ms: 4 events arrived, the last "),
        "{}",
        err.message
    );
    assert!(
        err.message.ends_with(
            " ago; no event matched `until` (the last one: `data`: expected `[END]`, got `[DONE]`)"
        ),
        "{}",
        err.message
    );
    assert!(err.help.unwrap().starts_with("check `until`"));
}

#[tokio::test]
async fn max_events_stops_the_stream() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(
        &ctx,
        &format!("get = \"{}\"\nmax_events = 2", server.url("/sse/stall/5")),
    )
    .await;
    assert_eq!(doc["end"], "max_events");
    assert_eq!(
        events(&doc),
        [
            ev("tick", "{\"n\":1}", Some("1")),
            ev("tick", "{\"n\":2}", Some("2"))
        ]
    );
}

#[tokio::test]
async fn an_error_status_is_data_not_an_error() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(&ctx, &format!("get = \"{}\"", server.url("/status/401"))).await;
    assert_eq!(doc["status"], 401);
    assert_eq!(doc["json"], json!({"status": 401}));
    assert_eq!(doc["body"], "{\"status\":401}");
    assert_eq!(doc["events"], json!([]));
    assert_eq!(doc["end"], "closed");
    assert_eq!(doc["first_event"], Value::Null);

    let doc = ok(&ctx, &format!("get = \"{}\"", server.url("/sse/nowhere"))).await;
    assert_eq!(doc["status"], 404);
    assert_eq!(doc["json"]["error"], "no fixture at `/sse/nowhere`");
    assert_eq!(doc["events"], json!([]));
}

#[tokio::test]
async fn a_response_that_is_not_an_event_stream_is_kept_as_a_body() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(&ctx, &format!("get = \"{}\"", server.url("/json"))).await;
    assert_eq!(doc["status"], 200);
    assert_eq!(doc["headers"]["content-type"], "application/json");
    assert_eq!(doc["json"]["n"], 42);
    assert_eq!(doc["events"], json!([]));
    assert_eq!(doc["end"], "closed");
    assert_eq!(doc["text"], "");
}

#[tokio::test]
async fn an_answer_that_is_no_stream_reads_its_body_as_http_does() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    // bytes that are no text: no body, and why
    let doc = ok(
        &ctx,
        &format!(
            "get = \"{}\"",
            server.url("/bytes?type=text%2Fplain%3B%20charset%3Dutf-8&hex=6f6bff")
        ),
    )
    .await;
    assert_eq!(doc["body"], Value::Null);
    assert_eq!(
        doc["body_error"],
        "the body is not UTF-8 text (the declared charset `utf-8`): the first byte that cannot be decoded is 0xFF, at offset 2; it starts `ok\\xFF`"
    );
    // a body cut short, and one that stalls, say how far they came (each
    // on a connection of its own: raw routes are told at a connection's start)
    let (ctx, _dir) = context();
    let url = server.url("/cut-body");
    let err = fails(&ctx, &format!("get = \"{url}\"")).await;
    assert_eq!(
        err.message,
        format!(
            "the response body of `{url}` ended after {} of 100 bytes (the connection closed)",
            CUT_BODY.len()
        )
    );
    let (ctx, _dir) = context();
    let url = server.url("/stall-body");
    let err = sse_within(
        &ctx,
        &format!("get = \"{url}\""),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.starts_with(&format!(
            "the response body of `{url}` stalled after {} of 100 bytes: the headers came after ",
            STALL_BODY.len()
        )),
        "{}",
        err.message
    );
    assert!(
        err.message
            .ends_with("then the time limit (300 ms) ran out before the rest of the body"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_clean_close_between_events_ends_the_stream() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    // the body ends with the connection (no length, no chunks)
    let doc = ok(
        &ctx,
        &format!("get = \"{}\"\nuntil = \"never\"", server.url("/sse/close")),
    )
    .await;
    assert_eq!(doc["end"], "closed");
    assert_eq!(
        events(&doc),
        [
            ev("message", "one", Some("1")),
            ev("message", "two", Some("2"))
        ]
    );
    // the fixture reads a request body before closing: a close with unread
    // input would be a reset, and the client might lose the stream
    let toml = format!(
        "post = \"{}\"\nbody = \"{}\"",
        server.url("/sse/close"),
        "x".repeat(1024 * 1024)
    );
    let doc = match sse(&ctx, &toml).await {
        Ok(doc) => doc,
        Err(err) => panic!("a POST of 1 MiB: {err}"),
    };
    assert_eq!(doc["end"], "closed");
    assert_eq!(doc["events"].as_array().unwrap().len(), 2);
    // a chunked body cut short between events
    let doc = ok(
        &ctx,
        &format!("get = \"{}\"", server.url("/sse/abort/between")),
    )
    .await;
    assert_eq!(doc["end"], "closed");
    assert_eq!(doc["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_close_in_the_middle_of_an_event_is_an_error() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let err = fails(
        &ctx,
        &format!("get = \"{}\"", server.url("/sse/close-mid-event")),
    )
    .await;
    assert_eq!(
        err.message,
        "the server closed the stream in the middle of an event after 1 event"
    );
    let err = fails(&ctx, &format!("get = \"{}\"", server.url("/sse/abort/mid"))).await;
    assert_eq!(
        err.message,
        "the server closed the stream in the middle of an event after 2 events"
    );
}

#[tokio::test]
async fn a_cut_stream_is_resumed_after_its_last_whole_event() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/sse/close-mid-event");
    // each connection sends one event after the Last-Event-ID, then half of
    // the next: the half is dropped, and so is its id
    let doc = ok(
        &ctx,
        &format!(
            "get = \"{url}\"\nuntil = {{ \"$.json.n\" = 3 }}\nreconnect = {{ attempts = 2, delay = \"5ms\" }}"
        ),
    )
    .await;
    assert_eq!(doc["end"], "until");
    assert_eq!(doc["reconnects"], 2);
    let seen: Vec<Value> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["json"].clone())
        .collect();
    assert_eq!(
        seen,
        [
            json!({"n": 1, "last_event_id": null}),
            json!({"n": 2, "last_event_id": "1"}),
            json!({"n": 3, "last_event_id": "2"}),
        ]
    );
    assert_eq!(doc["last_event_id"], "3");
}

#[tokio::test]
async fn a_cut_with_no_reconnection_left_is_an_error() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let err = fails(
        &ctx,
        &format!(
            "get = \"{}\"\nreconnect = {{ attempts = 1, delay = \"5ms\" }}",
            server.url("/sse/close-mid-event")
        ),
    )
    .await;
    assert_eq!(
        err.message,
        "the server closed the stream in the middle of an event after 2 events; 1 reconnection made, none left"
    );
    // a chunked body cut in the middle of an event
    let err = fails(
        &ctx,
        &format!(
            "get = \"{}\"\nreconnect = {{ attempts = 2, delay = \"5ms\" }}",
            server.url("/sse/abort/mid")
        ),
    )
    .await;
    assert_eq!(
        err.message,
        "the server closed the stream in the middle of an event after 6 events; 2 reconnections made, none left"
    );
}

#[tokio::test]
async fn reconnects_resume_from_the_last_event_id() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(
        &ctx,
        &format!(
            "get = \"{}\"\nuntil = {{ type = \"done\" }}\nreconnect = {{}}",
            server.url("/sse/resume/a")
        ),
    )
    .await;
    assert_eq!(doc["end"], "until");
    assert_eq!(doc["reconnects"], 2);
    assert_eq!(doc["retry"], 10);
    let seen: Vec<Value> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["json"].clone())
        .collect();
    assert_eq!(
        seen[..6],
        [
            json!({"n": 1, "connection": 1, "last_event_id": null}),
            json!({"n": 2, "connection": 1, "last_event_id": null}),
            json!({"n": 3, "connection": 2, "last_event_id": "2"}),
            json!({"n": 4, "connection": 2, "last_event_id": "2"}),
            json!({"n": 5, "connection": 3, "last_event_id": "4"}),
            json!({"n": 6, "connection": 3, "last_event_id": "4"}),
        ]
    );
    assert_eq!(doc["events"][6]["type"], "done");
    assert_eq!(doc["last_event_id"], "6");
    let at = offsets(&doc);
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
}

#[tokio::test]
async fn reconnects_stop_after_their_attempts_or_when_the_server_says_so() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(
        &ctx,
        &format!(
            "get = \"{}\"\nreconnect = {{ attempts = 1, delay = \"5ms\" }}",
            server.url("/sse/resume/b")
        ),
    )
    .await;
    assert_eq!(doc["end"], "closed");
    assert_eq!(doc["reconnects"], 1);
    assert_eq!(doc["events"].as_array().unwrap().len(), 4);

    // the third connection answers 204: stop, as EventSource does
    let doc = ok(
        &ctx,
        &format!(
            "get = \"{}\"\nreconnect = {{ attempts = 5 }}",
            server.url("/sse/resume/c?connections=2")
        ),
    )
    .await;
    assert_eq!(doc["end"], "closed");
    assert_eq!(doc["reconnects"], 2);
    assert_eq!(doc["status"], 200);
    assert_eq!(doc["events"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn events_past_max_body_in_memory_are_an_error() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/sse/endless");
    // a `tick` event holds far more memory than its 40 bytes on the wire
    let err = fails(&ctx, &format!("get = \"{url}\"\nmax_body = \"1KiB\"")).await;
    assert_eq!(
        err.message,
        format!(
            "the event stream of `{url}` passed the cap on what a step keeps, 1 KiB of events, after 2 events"
        )
    );
    let help = err.help.unwrap();
    assert!(
        help.contains("`listen") && help.contains("raise `max_body`"),
        "{help}"
    );
}

/// The most events a step keeps (`crate::kept::KEPT_DOCS`).
const KEPT_EVENTS: usize = 10_000;

#[tokio::test]
async fn a_flood_read_with_listen_keeps_the_first_and_last_events() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/sse/flood");
    let doc = ok(&ctx, &format!("get = \"{url}\"\nlisten = \"1s\"")).await;
    assert_eq!(doc["end"], "listen");
    let events = doc["events"].as_array().unwrap();
    let dropped = doc["dropped"].as_u64().unwrap();
    // the fixture sends tens of thousands of events a second, in writes of
    // thousands: the cap is passed at the first reads
    assert_eq!(events.len(), KEPT_EVENTS, "dropped {dropped}");
    assert!(dropped > 0);
    let data = FixtureServer::SSE_FLOOD_EVENT
        .trim_start_matches("data: ")
        .trim_end();
    assert!(events.iter().all(|e| e["data"] == data));
    assert_eq!(
        doc["text"].as_str().unwrap().len(),
        KEPT_EVENTS * data.len()
    );
    // a gap for every kept event but the first, each to the event before it
    assert_eq!(doc["gaps"].as_array().unwrap().len(), KEPT_EVENTS - 1);
    // the first events came at the start, the last ones near the end
    let first = events[0]["offset"].as_f64().unwrap();
    let last = events[KEPT_EVENTS - 1]["offset"].as_f64().unwrap();
    assert_eq!(doc["first_event"].as_f64(), Some(first));
    assert!(first < last, "{first} {last}");
}

#[tokio::test]
async fn a_flood_read_until_an_event_fails_at_the_cap() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/sse/flood");
    for extra in ["", "\nuntil = \"never\"", "\nmax_events = 20000"] {
        let err = fails(&ctx, &format!("get = \"{url}\"{extra}")).await;
        assert_eq!(
            err.message,
            format!(
                "the event stream of `{url}` passed the cap on what a step keeps, 10000 events, after 10001 events"
            ),
            "{extra}"
        );
        let help = err.help.unwrap();
        assert!(help.contains("`listen = \"5s\"`"), "{help}");
        assert!(!help.contains("max_body"), "{help}");
    }
}

#[tokio::test]
async fn a_line_that_never_ends_fails_at_max_body() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/sse/endless-line");
    for extra in ["", "\nlisten = \"5s\""] {
        let err = fails(
            &ctx,
            &format!("get = \"{url}\"\nmax_body = \"1MiB\"{extra}"),
        )
        .await;
        let start =
            format!("one line of the event stream of `{url}` passed 1 MiB without ending (");
        assert!(err.message.starts_with(&start), "{}", err.message);
        assert!(
            err.message.ends_with(" received, 0 events)"),
            "{}",
            err.message
        );
        assert!(err.help.unwrap().contains("`max_body`"));
    }
}

#[tokio::test]
async fn the_time_limit_binds_while_chunks_keep_coming() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    // comments without pause: never an event, always a chunk ready
    let url = server.url("/sse/keep-alive-flood");
    let err = sse_within(
        &ctx,
        &format!("get = \"{url}\""),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(
        err.message
            .starts_with("no event arrived within 300 ms (the server sent headers after "),
        "{}",
        err.message
    );
    assert!(err.message.ends_with(" comments)"), "{}", err.message);
    let doc = ok(&ctx, &format!("get = \"{url}\"\nlisten = \"300ms\"")).await;
    assert_eq!(doc["end"], "listen");
    assert_eq!(doc["events"], json!([]));
    assert!(doc["comments"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_refused_connection_is_an_error() {
    let (ctx, _dir) = context();
    // nothing listens on port 1 (a freed port 0 could be taken by a parallel test)
    let url = String::from("http://127.0.0.1:1/events");
    let err = fails(&ctx, &format!("get = \"{url}\"")).await;
    assert_eq!(
        err.message,
        format!("cannot connect to `{url}`: connection refused")
    );
}

#[tokio::test]
async fn configuration_mistakes_are_explained() {
    let (ctx, _dir) = context();
    let err = fails(&ctx, "listen = \"1s\"").await;
    assert_eq!(
        err.message,
        "an sse step needs a method and a URL, e.g. `get = \"{{ base_url }}/events/\"`"
    );
    let err = fails(&ctx, "get = \"http://127.0.0.1:1/\"\nuntil = 5").await;
    assert_eq!(
        err.message,
        "`until` is an integer, not the data of the last event or a table matching it"
    );
    let err = fails(
        &ctx,
        "get = \"http://127.0.0.1:1/\"\nlisten = \"1m\"\ntimeout = \"1s\"",
    )
    .await;
    assert_eq!(
        err.message,
        "`listen` (1 min) is longer than the step's time limit (1 s)"
    );
    let err = fails(&ctx, "get = \"http://127.0.0.1:1/\"\nmax_events = 0").await;
    assert_eq!(err.message, "`max_events` must be at least 1");
    let err = fails(
        &ctx,
        "get = \"http://127.0.0.1:1/\"\nuntil = { data = \"x\", len = 2 }",
    )
    .await;
    assert_eq!(err.message, "`data` is not an operator, but `len` is");
}

#[tokio::test]
async fn a_configured_last_event_id_starts_the_stream_there() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(
        &ctx,
        &format!(
            "get = \"{}\"\nlast_event_id = \"2\"\nreconnect = {{ attempts = 1 }}",
            server.url("/sse/resume/d")
        ),
    )
    .await;
    let seen: Vec<Value> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["json"].clone())
        .collect();
    assert_eq!(
        seen,
        [
            json!({"n": 3, "connection": 1, "last_event_id": "2"}),
            json!({"n": 4, "connection": 1, "last_event_id": "2"}),
            json!({"n": 5, "connection": 2, "last_event_id": "4"}),
            json!({"n": 6, "connection": 2, "last_event_id": "4"}),
            Value::Null,
        ]
    );
    assert_eq!(doc["end"], "closed");
}

#[tokio::test]
async fn the_wait_before_a_reconnection_counts_against_listen_and_the_limit() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = ok(
        &ctx,
        &format!(
            "get = \"{}\"\nreconnect = {{ delay = \"1m\" }}\nlisten = \"300ms\"",
            server.url("/sse/resume/e")
        ),
    )
    .await;
    assert_eq!(doc["end"], "listen");
    assert_eq!(doc["reconnects"], 0);
    assert_eq!(doc["events"].as_array().unwrap().len(), 2);

    let err = fails(
        &ctx,
        &format!(
            "get = \"{}\"\nreconnect = {{ delay = \"1m\" }}\ntimeout = \"300ms\"",
            server.url("/sse/resume/f")
        ),
    )
    .await;
    assert!(
        err.message
            .starts_with("the stream did not end within 300 ms: 2 events arrived, the last "),
        "{}",
        err.message
    );
    assert!(
        err.message.ends_with(
            " ago; the server had closed it and reconnection 1 was not due before the time limit"
        ),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn each_event_is_observed_as_it_arrives_without_its_data() {
    use planrun_runner::events::RunEvent;

    let server = FixtureServer::start().await;
    let (_ctx, dir) = context();
    let text = format!(
        "id = \"observed\"\n[[steps]]\nsse = {{ get = \"{}\" }}\nexpect.end = \"closed\"\n",
        server.url("/sse/basic")
    );
    let (summary, events) = run_spec(dir.path(), &text).await;
    assert_eq!(summary.passed, 1);

    let observed: Vec<Value> = events
        .into_iter()
        .filter_map(|event| match event {
            RunEvent::StepObserved { observation, .. } => Some(observation),
            _ => None,
        })
        .collect();
    let kinds: Vec<(&Value, &Value)> = observed.iter().map(|o| (&o["event"], &o["type"])).collect();
    assert_eq!(
        kinds,
        [
            (&json!(0), &json!("tick")),
            (&json!(1), &json!("tick")),
            (&json!(2), &json!("tick"))
        ]
    );
    for o in &observed {
        let mut keys: Vec<&str> = o.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["event", "offset", "type"]);
    }
}

/// Reporters run on the step's thread: a flood observed event by event must
/// let them take the observations as they come, not pile them up.
#[tokio::test(flavor = "current_thread")]
async fn a_flood_observed_live_does_not_pile_up_observations() {
    let server = FixtureServer::start().await;
    let (_ctx, dir) = context();
    let text = format!(
        "id = \"live\"\n[[steps]]\nsse = {{ get = \"{}\", listen = \"1s\" }}\nexpect.dropped = {{ gt = 0 }}\n",
        server.url("/sse/flood")
    );
    let (summary, observed, backlog) = run_spec_live(dir.path(), &text).await;
    assert_eq!(summary.passed, 1);
    // every event is observed, kept or not
    assert!(observed > KEPT_EVENTS, "{observed}");
    assert!(
        backlog < 1000,
        "{backlog} observations waited for the reporter"
    );
}

// --- TLS -------------------------------------------------------------------

/// An HTTPS server with the test CA's `localhost` certificate that answers
/// every request with a two-event stream, then closes.
fn start_tls_stream() -> std::net::SocketAddr {
    start_tls(|tls| {
        answer_once(
            tls,
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
              data: secure\n\nevent: done\ndata: bye\n\n",
        );
    })
}

#[tokio::test]
async fn tls_works_as_for_http() {
    let addr = start_tls_stream();
    let (ctx, dir) = context();
    let url = format!("https://localhost:{}/events", addr.port());

    let err = fails(&ctx, &format!("get = \"{url}\"")).await;
    assert_eq!(
        err.message,
        format!(
            "TLS handshake with `{url}` failed: the server's certificate was issued by `CN=planrun test CA`, which is not a trusted authority"
        )
    );

    let ca = std::fs::read_to_string(format!("{TLS_DIR}/ca.pem")).unwrap();
    common::write(dir.path(), "ca.pem", &ca);
    let doc = ok(&ctx, &format!("get = \"{url}\"\nca_cert = \"ca.pem\"")).await;
    assert_eq!(
        events(&doc),
        [ev("message", "secure", None), ev("done", "bye", None)]
    );
    assert_eq!(doc["end"], "closed");

    let doc = ok(
        &ctx,
        &format!(
            "get = \"https://127.0.0.1:{}/events\"\ninsecure = true\nuntil = {{ type = \"done\" }}",
            addr.port()
        ),
    )
    .await;
    assert_eq!(doc["end"], "until");
}
