//! `ws` steps against in-process servers: the testkit's WebSocket fixture
//! server, the demo target's chat, and a rustls server for `wss://`.

mod common;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{
    HANG_GUARD, MAX_BODY, TLS_DIR, config, context, run, run_spec, run_spec_live, run_step,
    start_tls,
};
use planrun_runner::executor::{SpecContext, StepError};
use planrun_steps::http::HttpExecutor;
use planrun_steps::ws::WsExecutor;
use planrun_testkit::{DemoServer, FixtureServer, Flavor, WsServer};
use serde_json::{Value, json};

fn setup() -> WsExecutor {
    planrun_steps::install_crypto_provider();
    WsExecutor::new()
}

/// Runs a test body, failing (instead of hanging) if it never ends.
async fn guarded<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, body)
        .await
        .unwrap_or_else(|elapsed| panic!("the test hung: {elapsed}"))
}

async fn ws(ctx: &SpecContext, toml: &str) -> Result<Value, StepError> {
    guarded(run(&setup(), ctx, toml)).await
}

/// The text of the spec a span points at.
fn spanned<'a>(toml: &'a str, err: &StepError) -> &'a str {
    let span = err.span.clone().expect("the error points at the spec");
    &toml[span]
}

#[tokio::test]
async fn send_and_expect_fill_the_result_document() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/echo");
    let doc = ws(
        &ctx,
        &format!(
            r#"url = "{url}"
conversation = [
  {{ send = "hello" }},
  {{ expect = {{ text = "hello" }}, name = "echo" }},
  {{ send_json = {{ type = "chat_message", message = "hi" }} }},
  {{ expect = {{ json = {{ type = "chat_message", message = "hi" }} }} }},
]"#
        ),
    )
    .await
    .unwrap();

    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "url",
            "status",
            "headers",
            "protocol",
            "connect",
            "messages",
            "received",
            "dropped",
            "replies",
            "latencies",
            "close",
            "open",
            "body",
            "json",
            "duration"
        ]
    );
    assert_eq!(doc["url"], url.as_str());
    assert_eq!(doc["status"], 101);
    assert_eq!(doc["headers"]["upgrade"], "websocket");
    assert_eq!(doc["protocol"], Value::Null);
    assert!(doc["connect"].as_f64().unwrap() > 0.0);
    assert_eq!(doc["open"], false);
    assert_eq!(
        doc["close"],
        json!({"code": 1000, "reason": "", "by": "client"})
    );

    let frames: Vec<(String, String)> = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["dir"].to_string(), m["type"].to_string()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("out", "text"),
        ("in", "text"),
        ("out", "text"),
        ("in", "text"),
        ("out", "close"),
        ("in", "close"),
    ]
    .iter()
    .map(|(d, t)| (format!("\"{d}\""), format!("\"{t}\"")))
    .collect();
    assert_eq!(frames, expected);
    let first = &doc["messages"][0];
    assert_eq!(first["text"], "hello");
    assert_eq!(first["size"], 5);
    // offsets count from the step's start: the first send comes after the
    // handshake, and the transcript is in order
    let offsets: Vec<f64> = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["offset"].as_f64().unwrap())
        .collect();
    assert!(
        offsets[0] >= doc["connect"].as_f64().unwrap(),
        "{offsets:?}"
    );
    assert!(offsets.is_sorted(), "{offsets:?}");
    assert!(
        offsets[5] <= doc["duration"].as_f64().unwrap(),
        "{offsets:?}"
    );

    let received = doc["received"].as_array().unwrap();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1]["json"]["type"], "chat_message");
    assert_eq!(received[1]["base64"], Value::Null);
    assert!(received[1].get("dir").is_none());

    assert_eq!(doc["replies"]["echo"]["message"]["text"], "hello");
    assert_eq!(doc["replies"]["3"]["message"]["json"]["message"], "hi");
    let latencies = doc["latencies"].as_array().unwrap();
    assert_eq!(latencies.len(), 2);
    assert_eq!(latencies[0], doc["replies"]["echo"]["latency"]);
    // a latency runs from the send before the reply to the reply
    for (latency, (sent, reply)) in latencies.iter().zip([(0, 1), (2, 3)]) {
        let between = offsets[reply] - offsets[sent];
        assert!(
            (latency.as_f64().unwrap() - between).abs() < 1e-6,
            "latency {latency} is not the {between} ms from message {sent} to {reply}"
        );
    }
    assert!(doc["duration"].as_f64().unwrap() >= doc["connect"].as_f64().unwrap());
}

#[tokio::test]
async fn http_urls_mean_websocket_urls_and_strings_match_text() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let url = format!("http://{}/echo", server.addr);
    let doc = ws(
        &ctx,
        &format!("url = \"{url}\"\nconversation = [{{ send = \"hi\" }}, {{ expect = \"hi\" }}]"),
    )
    .await
    .unwrap();
    assert_eq!(doc["url"], server.url("/echo").as_str());
    assert_eq!(doc["replies"]["1"]["message"]["text"], "hi");
}

#[tokio::test]
async fn binary_messages_go_as_base64_and_bad_base64_is_pointed_at() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ send_binary = \"AAEC/w==\" }}, {{ expect = {{ type = \"binary\", base64 = \"AAEC/w==\", size = 4 }} }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["received"][0]["text"], Value::Null);
    assert_eq!(doc["messages"][0]["type"], "binary");

    let toml = format!(
        "url = \"{}\"\nconversation = [{{ send = \"x\" }}, {{ send_binary = \"AA-C\" }}]",
        server.url("/echo")
    );
    let err = ws(&ctx, &toml).await.unwrap_err();
    assert_eq!(
        err.message,
        "conversation item 1 (`send_binary`): not valid base64: `-` at offset 2 is not a base64 character"
    );
    assert_eq!(spanned(&toml, &err), "\"AA-C\"");
}

#[tokio::test]
async fn skip_passes_over_other_messages_and_without_it_they_fail() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/greet");
    let doc = ws(
        &ctx,
        &format!("url = \"{url}\"\nconversation = [{{ expect = \"greeting 2\", skip = true }}]"),
    )
    .await
    .unwrap();
    assert_eq!(doc["replies"]["0"]["message"]["text"], "greeting 2");
    assert_eq!(doc["received"].as_array().unwrap().len(), 2);

    let toml = format!(
        "url = \"{url}\"\nconversation = [\n  {{ expect = {{ text = \"greeting 2\" }} }},\n]"
    );
    let err = ws(&ctx, &toml).await.unwrap_err();
    assert!(
        err.message.starts_with(
            "conversation item 0 (`expect`): got `greeting 1`, which does not match: `text`:"
        ),
        "{}",
        err.message
    );
    assert!(err.message.contains("greeting 2"), "{}", err.message);
    assert_eq!(spanned(&toml, &err), "expect = { text = \"greeting 2\" }");
    assert!(err.help.unwrap().contains("skip = true"));
}

#[tokio::test]
async fn a_json_type_field_is_matched_as_a_field() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let toml = format!(
        "url = \"{}\"\nconversation = [{{ send = '{{\"type\":\"pong\"}}' }}, {{ expect = {{ json = {{ type = \"chat_message\" }} }} }}]",
        server.url("/echo")
    );
    let err = ws(&ctx, &toml).await.unwrap_err();
    assert!(
        err.message.starts_with(
            "conversation item 1 (`expect`): got `{\"type\":\"pong\"}`, which does not match: `json`: `type`:"
        ),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_silent_peer_makes_expect_time_out_precisely() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let toml = format!(
        "url = \"{}\"\nconversation = [{{ send = \"anyone?\" }}, {{ expect = true, timeout = \"200ms\" }}]",
        server.url("/silent")
    );
    let err = ws(&ctx, &toml).await.unwrap_err();
    assert_eq!(
        err.message,
        "conversation item 1 (`expect`): no message within 200 ms (no message received so far)"
    );
    assert_eq!(spanned(&toml, &err), "expect = true");

    // the step's time limit ends the wait before the action's 5 s
    let err = guarded(run_step(
        &setup(),
        &ctx,
        &config(&format!(
            "url = \"{}\"\nconversation = [{{ expect = true }}]",
            server.url("/silent")
        )),
        Duration::from_secs(1),
        MAX_BODY,
    ))
    .await
    .unwrap_err();
    assert_eq!(
        err.message,
        "conversation item 0 (`expect`): the step's time limit of 1 s ran out while waiting for a message (no message received so far)"
    );
}

#[tokio::test]
async fn expect_timeout_counts_what_arrived() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    // the echoes of `a` and `b` come before the pong, so the ping keeps them
    // for the `expect`, whatever the machine's speed
    let err = ws(
        &ctx,
        &format!(
            "url = \"{}\"\naction_timeout = \"150ms\"\nconversation = [{{ send = \"a\" }}, {{ send = \"b\" }}, {{ ping = \"x\", timeout = \"5s\" }}, {{ expect = \"nope\", skip = true }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap_err();
    let message = err.message;
    assert!(
        message.starts_with("conversation item 3 (`expect`): no matching message within 150 ms (2 messages received so far, the last "),
        "{message}"
    );
    assert!(
        message.contains("; 2 messages passed over, the last `b`: `text`:"),
        "{message}"
    );
}

#[tokio::test]
async fn a_server_close_surfaces_with_its_code() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/close-1011");
    let err = ws(
        &ctx,
        &format!("url = \"{url}\"\nconversation = [{{ send = \"x\" }}, {{ expect = true }}]"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.message,
        "conversation item 1 (`expect`): the server closed the connection with 1011 (`internal error`, reason `boom`) while waiting for a message"
    );

    let doc = ws(
        &ctx,
        &format!(
            "url = \"{url}\"\nconversation = [{{ send = \"x\" }}, {{ expect_close = {{ code = 1011, reason = \"boom\" }} }}]"
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        doc["close"],
        json!({"code": 1011, "reason": "boom", "by": "server"})
    );
    let last_two: Vec<(&str, &str)> = doc["messages"].as_array().unwrap()[1..]
        .iter()
        .map(|m| (m["dir"].as_str().unwrap(), m["type"].as_str().unwrap()))
        .collect();
    assert_eq!(last_two, [("in", "close"), ("out", "close")]);
    assert_eq!(doc["messages"][1]["code"], 1011);

    let err = ws(
        &ctx,
        &format!(
            "url = \"{url}\"\nconversation = [{{ send = \"x\" }}, {{ expect_close = {{ code = 1000 }} }}]"
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.starts_with(
            "conversation item 1 (`expect_close`): the server closed with 1011 (`internal error`, reason `boom`), which does not match: `code`:"
        ),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn server_close_on_request_and_expect_close() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ send = \"close 4002 bye\" }}, {{ expect_close = true }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        doc["close"],
        json!({"code": 4002, "reason": "bye", "by": "server"})
    );

    let err = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ expect_close = true, timeout = \"100ms\" }}]",
            server.url("/silent")
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.message,
        "conversation item 0 (`expect_close`): the server did not close the connection within 100 ms (0 messages meanwhile)"
    );
}

#[tokio::test]
async fn no_message_passes_on_silence_and_shows_what_broke_it() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ send = \"x\" }}, {{ no_message = \"200ms\" }}]",
            server.url("/silent")
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["received"], json!([]));

    let toml = format!(
        "url = \"{}\"\nconversation = [{{ send = \"echo me\" }}, {{ no_message = \"5s\" }}]",
        server.url("/echo")
    );
    let err = ws(&ctx, &toml).await.unwrap_err();
    assert!(
        err.message.starts_with(
            "conversation item 1 (`no_message`): expected no message for 5 s, got `echo me` after "
        ),
        "{}",
        err.message
    );
    assert_eq!(spanned(&toml, &err), "no_message = \"5s\"");

    // a quiet period longer than the step may take fails at once
    let err = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ no_message = \"1m\" }}]",
            server.url("/silent")
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.starts_with(
            "conversation item 0 (`no_message`): 1 min of quiet would run past the step's time limit of 10 s"
        ),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn ping_waits_for_its_pong_and_server_pings_are_answered() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ ping = \"p1\" }}]",
            server.url("/silent")
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["messages"][0]["dir"], "out");
    assert_eq!(doc["messages"][0]["type"], "ping");
    assert_eq!(doc["messages"][1]["dir"], "in");
    assert_eq!(doc["messages"][1]["type"], "pong");
    assert_eq!(doc["messages"][1]["text"], "p1");
    assert_eq!(doc["received"], json!([]));

    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ expect = {{ json = {{ pong = \"{}\" }} }} }}]",
            server.url("/ping"),
            WsServer::PING_PAYLOAD
        ),
    )
    .await
    .unwrap();
    let frames: Vec<(&str, &str)> = doc["messages"].as_array().unwrap()[..3]
        .iter()
        .map(|m| (m["dir"].as_str().unwrap(), m["type"].as_str().unwrap()))
        .collect();
    assert_eq!(frames, [("in", "ping"), ("out", "pong"), ("in", "text")]);
}

#[tokio::test]
async fn client_close_sends_the_code_and_waits_for_the_answer() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ send = \"a\" }}, {{ expect = \"a\" }}, {{ close = {{ code = 4001, reason = \"done\" }} }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        doc["close"],
        json!({"code": 4001, "reason": "done", "by": "client"})
    );
    let closes: Vec<&Value> = doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "close")
        .collect();
    assert_eq!(closes.len(), 2, "{closes:?}");
    assert_eq!(closes[0]["dir"], "out");
    assert_eq!(closes[0]["code"], 4001);
    assert_eq!(closes[1]["dir"], "in");

    // sending after the close is an error naming the close
    let err = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ close = true }}, {{ send = \"late\" }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.message,
        "conversation item 1 (`send`): cannot send: the connection was closed by this side with 1000 (`normal closure`)"
    );

    let toml = format!(
        "url = \"{}\"\nconversation = [{{ close = 1005 }}]",
        server.url("/echo")
    );
    let err = ws(&ctx, &toml).await.unwrap_err();
    assert!(
        err.message.contains("1005 cannot be sent"),
        "{}",
        err.message
    );
    assert_eq!(spanned(&toml, &err), "1005");
}

#[tokio::test]
async fn wait_keeps_messages_for_later_actions() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    // `/greet` sends both greetings right after the handshake: the `wait`
    // reads them, and the `expect` actions (with no time to wait themselves)
    // only find them if the `wait` kept them
    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ wait = \"300ms\" }}, {{ expect = \"greeting 1\", timeout = \"1ms\" }}, {{ expect = \"greeting 2\", timeout = \"1ms\" }}]",
            server.url("/greet")
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["replies"]["1"]["message"]["text"], "greeting 1");
    assert_eq!(doc["replies"]["2"]["message"]["text"], "greeting 2");
    // read during the wait, not after it
    let wait_ends = doc["connect"].as_f64().unwrap() + 300.0;
    for reply in ["1", "2"] {
        let offset = doc["replies"][reply]["message"]["offset"].as_f64().unwrap();
        assert!(
            offset < wait_ends,
            "greeting read at {offset} ms, after the wait"
        );
    }
    assert_eq!(doc["received"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn subprotocols_are_offered_and_the_choice_reported() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nsubprotocols = [\"x.unknown\", \"chat.v2\"]\nconversation = [{{ send = \"handshake\" }}, {{ expect = {{ json = {{ protocol = \"chat.v2\" }} }} }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["protocol"], "chat.v2");
    assert_eq!(doc["headers"]["sec-websocket-protocol"], "chat.v2");
    assert_eq!(
        doc["replies"]["1"]["message"]["json"]["headers"]["sec-websocket-protocol"],
        "x.unknown, chat.v2"
    );

    let err = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nsubprotocols = [\"x.unknown\"]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.message
            .ends_with("failed: the server chose none of the offered `subprotocols`"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn the_jar_of_an_http_login_authenticates_the_socket() {
    planrun_steps::install_crypto_provider();
    let fixture = FixtureServer::start().await;
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let login = guarded(run(
        &HttpExecutor::new(),
        &ctx,
        &format!("get = \"{}\"", fixture.url("/set-cookie")),
    ))
    .await
    .unwrap();
    assert_eq!(login["cookies"], json!({"token": "abc"}));

    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nheaders = {{ X-Test = \"yes\", Cookie = \"from_header=2\" }}\ncookies = {{ extra = \"1\" }}\nconversation = [{{ send = \"handshake\" }}, {{ expect = true, name = \"handshake\" }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    let seen = &doc["replies"]["handshake"]["message"]["json"];
    assert_eq!(seen["cookie"], "token=abc; from_header=2; extra=1");
    assert_eq!(seen["headers"]["x-test"], "yes");
    assert!(
        seen["headers"]["user-agent"]
            .as_str()
            .unwrap()
            .starts_with("planrun/")
    );

    // another spec run has its own jar
    let (fresh, _dir) = context();
    let doc = ws(
        &fresh,
        &format!(
            "url = \"{}\"\nconversation = [{{ send = \"handshake\" }}, {{ expect = {{ json = {{ cookie = {{ exists = false }} }} }} }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 101);
}

#[tokio::test]
async fn handshake_cookies_join_the_jar_for_later_steps() {
    planrun_steps::install_crypto_provider();
    let fixture = FixtureServer::start().await;
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let doc = ws(&ctx, &format!("url = \"{}\"", server.url("/set-cookie")))
        .await
        .unwrap();
    // repeated `set-cookie` headers are joined with a newline, as by `http`
    assert_eq!(
        doc["headers"]["set-cookie"],
        WsServer::SET_COOKIES.join("\n")
    );

    // the jar is the spec run's: an `http` step to another port sends them
    let echoed = guarded(run(
        &HttpExecutor::new(),
        &ctx,
        &format!("get = \"{}\"", fixture.url("/echo")),
    ))
    .await
    .unwrap();
    assert_eq!(
        echoed["json"]["cookies"],
        json!({"ws_session": "opened", "ws_theme": "dark"})
    );

    // and so does the next handshake
    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nconversation = [{{ send = \"handshake\" }}, {{ expect = true }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    let sent = doc["replies"]["1"]["message"]["json"]["cookie"]
        .as_str()
        .unwrap();
    let mut sent: Vec<&str> = sent.split("; ").collect();
    sent.sort_unstable();
    assert_eq!(sent, ["ws_session=opened", "ws_theme=dark"]);
}

#[tokio::test]
async fn waiting_for_a_named_connection_is_not_in_the_timings() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let opened = ws(
        &ctx,
        &format!("url = \"{}\"\nconnection = \"shared\"", server.url("/echo")),
    )
    .await
    .unwrap();
    assert_eq!(opened["open"], true);

    // the first step holds the connection for 500 ms; the second waits for
    // it, then talks: its offsets, latency and duration start when it has it
    let holder = ws(
        &ctx,
        "connection = \"shared\"\nconversation = [{ wait = \"500ms\" }]",
    );
    let waiter = async {
        let asked = tokio::time::Instant::now();
        let doc = ws(
            &ctx,
            "connection = \"shared\"\nconversation = [{ send = \"after you\" }, { expect = \"after you\" }]",
        )
        .await
        .unwrap();
        (doc, asked.elapsed())
    };
    let (held, (doc, waited)) = tokio::join!(holder, waiter);
    held.unwrap();
    // lower bounds only (a sleep guarantees a minimum, load only adds): the
    // 500 ms spent waiting for the connection are outside the duration
    let duration = doc["duration"].as_f64().unwrap();
    let outside = waited.as_secs_f64() * 1000.0 - duration;
    assert!(
        outside >= 200.0,
        "the wait is in the duration: waited {waited:?}, duration {duration} ms"
    );
    assert!(
        doc["messages"][0]["offset"].as_f64().unwrap() <= duration,
        "{doc}"
    );
    assert!(doc["latencies"][0].as_f64().unwrap() <= duration, "{doc}");
}

#[tokio::test]
async fn option_errors_point_at_their_conversation_item() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let toml = format!(
        "url = \"{}\"\nconversation = [\n  {{ send = \"x\" }},\n  {{ send = \"y\", skip = true }},\n]",
        server.url("/echo")
    );
    let err = ws(&ctx, &toml).await.unwrap_err();
    assert_eq!(
        err.message,
        "conversation item 1: `skip` only applies to `expect`"
    );
    assert_eq!(spanned(&toml, &err), "send");

    // an action that never waits refuses a `timeout` instead of ignoring it
    let toml = format!(
        "url = \"{}\"\nconversation = [{{ wait = \"10ms\", timeout = \"1s\" }}]",
        server.url("/echo")
    );
    let err = ws(&ctx, &toml).await.unwrap_err();
    assert!(
        err.message
            .starts_with("conversation item 0: `timeout` only applies to actions that wait"),
        "{}",
        err.message
    );
    assert_eq!(spanned(&toml, &err), "wait");
}

#[tokio::test]
async fn a_named_connection_receives_what_another_client_sent() {
    let demo = DemoServer::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), Flavor::Asgi)
        .await
        .unwrap();
    let (ctx, _dir) = context();
    let room = format!("{}/ws/chat/session/room-1/", demo.base_url());

    let alice = ws(
        &ctx,
        &format!(
            "url = \"{room}\"\nconnection = \"alice\"\nconversation = [{{ expect = {{ json = {{ type = \"connection_established\", session_id = \"room-1\" }} }} }}]"
        ),
    )
    .await
    .unwrap();
    assert_eq!(alice["open"], true);
    assert_eq!(alice["close"], Value::Null);

    let bob = ws(
        &ctx,
        &format!(
            r#"url = "{room}"
conversation = [
  {{ expect = {{ json = {{ type = "connection_established" }} }} }},
  {{ send_json = {{ type = "chat_message", message = "hi from bob" }} }},
  {{ expect = {{ json = {{ type = "chat_message", message = "hi from bob" }} }}, name = "own" }},
  {{ send_json = {{ type = "ping" }} }},
  {{ expect = {{ json = {{ type = "pong" }} }} }},
]"#
        ),
    )
    .await
    .unwrap();
    assert_eq!(bob["open"], false);
    let sender = bob["replies"]["own"]["message"]["json"]["sender"].clone();

    let later = ws(
        &ctx,
        r#"connection = "alice"
conversation = [
  { expect = { json = { type = "chat_message", message = "hi from bob" } }, name = "broadcast" },
  { no_message = "100ms" },
]"#,
    )
    .await
    .unwrap();
    assert_eq!(later["connect"], Value::Null);
    assert_eq!(later["open"], true);
    assert_eq!(later["url"], alice["url"]);
    assert_eq!(later["status"], 101);
    assert_eq!(
        later["replies"]["broadcast"]["message"]["json"]["sender"],
        sender
    );

    let closed = ws(
        &ctx,
        "connection = \"alice\"\nconversation = [{ close = true }]",
    )
    .await
    .unwrap();
    assert_eq!(closed["open"], false);
    assert_eq!(closed["close"]["by"], "client");
    let err = ws(&ctx, "connection = \"alice\"").await.unwrap_err();
    assert_eq!(
        err.message,
        "connection `alice` ended in an earlier step: the connection was closed by this side with 1000 (`normal closure`)"
    );

    let err = ws(&ctx, "connection = \"carol\"").await.unwrap_err();
    assert_eq!(
        err.message,
        "no connection named `carol`: the known connections are `alice`"
    );

    // a name whose opening failed is not open; one left open is closed at the end
    let err = ws(
        &ctx,
        &format!(
            "url = \"{}/ws/chat/session/x/\"\nconnection = \"eve\"\nconversation = [{{ expect = \"never\" }}]",
            demo.base_url()
        ),
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("does not match"), "{}", err.message);
    let err = ws(&ctx, "connection = \"eve\"").await.unwrap_err();
    assert_eq!(
        err.message,
        "connection `eve` is not open: the step that opens it failed, or its handshake was refused"
    );
    let dave = ws(&ctx, &format!("url = \"{room}\"\nconnection = \"dave\""))
        .await
        .unwrap();
    assert_eq!(dave["open"], true);

    let cleaned = guarded(ctx.cleanup()).await;
    assert_eq!(
        cleaned,
        [
            "ws connection `dave`",
            "ws connection `eve`",
            "ws connection `alice`"
        ]
    );
    demo.shutdown().await;
}

#[tokio::test]
async fn connection_refused_is_named() {
    let (ctx, _dir) = context();
    // port 1 (tcpmux) has no listener, and no other test can take it
    let toml = "url = \"ws://127.0.0.1:1/socket\"";
    let err = ws(&ctx, toml).await.unwrap_err();
    assert_eq!(
        err.message,
        "cannot connect to `127.0.0.1:1` (for `ws://127.0.0.1:1/socket`): connection refused"
    );
    assert_eq!(spanned(toml, &err), "\"ws://127.0.0.1:1/socket\"");
}

#[tokio::test]
async fn a_refused_handshake_shows_status_and_body() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/forbidden");
    let err = ws(&ctx, &format!("url = \"{url}\"")).await.unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "the server refused the WebSocket handshake of `{url}` with 403 Forbidden: {}",
            WsServer::FORBIDDEN_BODY
        )
    );
    assert!(err.help.unwrap().contains("log in"));

    // a plain HTTP route is not a socket either
    let fixture = FixtureServer::start().await;
    let err = ws(&ctx, &format!("url = \"{}\"", fixture.url("/json")))
        .await
        .unwrap_err();
    assert!(err.message.contains("with 200 OK"), "{}", err.message);
}

/// With `allow_refusal`, a refused handshake is the result: its status,
/// headers and body, no conversation, nothing left open.
#[tokio::test]
async fn an_allowed_refusal_is_the_result() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/forbidden");
    // the conversation would fail: it is not run
    let doc = ws(
        &ctx,
        &format!(
            "url = \"{url}\"\nallow_refusal = true\nconversation = [{{ expect = \"never\" }}]"
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 403);
    assert_eq!(doc["body"], WsServer::FORBIDDEN_BODY);
    assert_eq!(doc["json"], Value::Null);
    assert_eq!(doc["open"], false);
    assert_eq!(doc["close"], Value::Null);
    assert_eq!(doc["messages"], json!([]));
    assert_eq!(doc["url"], url);
    assert!(doc["headers"].is_object(), "{doc}");
    assert!(doc["connect"].is_number(), "{doc}");

    // an accepted handshake with the key set is an ordinary conversation
    let doc = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nallow_refusal = true\nconversation = [{{ send = \"hi\" }}, {{ expect = \"hi\" }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 101);
    assert_eq!(doc["body"], Value::Null);
    assert_eq!(doc["received"][0]["text"], "hi");

    // without it, the refusal is still an error, and says how to check it
    let err = ws(&ctx, &format!("url = \"{url}\"")).await.unwrap_err();
    assert!(
        err.help
            .unwrap_or_default()
            .contains("allow_refusal = true"),
        "{}",
        err.message
    );

    // a name the refused step would have opened is not open
    let err = ws(
        &ctx,
        &format!("url = \"{url}\"\nconnection = \"gate\"\nallow_refusal = true"),
    )
    .await
    .map(|doc| doc["open"].clone());
    assert_eq!(err.unwrap(), false);
    let err = ws(
        &ctx,
        "connection = \"gate\"\nconversation = [{ send = \"hi\" }]",
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("is not open"), "{}", err.message);
}

/// Through the runner: `expect.status` checks a refusal like any status,
/// and a refusal the step does not allow fails it, whatever it expects.
#[tokio::test]
async fn a_refusal_is_checked_by_expectations() {
    use planrun_runner::events::{RunEvent, StepStatus};

    let server = WsServer::start().await;
    let demo = DemoServer::start("127.0.0.1:0".parse().unwrap(), Flavor::Wsgi)
        .await
        .unwrap();
    let (_ctx, dir) = context();
    let text = format!(
        r#"id = "refusals"
[[steps]]
id = "forbidden"
needs = []
ws = {{ url = "{forbidden}", allow_refusal = true }}
expect.status = 403
expect.body = {{ contains = "no entry" }}

[[steps]]
id = "unknown-socket"
needs = []
ws = {{ url = "{demo}/ws/no-such-socket/", allow_refusal = true }}
expect.status = 404
expect.json.error = "not found"
expect.open = false

[[steps]]
id = "wrong-status"
needs = []
ws = {{ url = "{forbidden}", allow_refusal = true }}
expect.status = 101

[[steps]]
id = "not-allowed"
needs = []
ws = {{ url = "{forbidden}" }}
expect.status = 403
"#,
        forbidden = server.url("/forbidden"),
        demo = demo.base_url(),
    );
    let (summary, events) = run_spec(dir.path(), &text).await;
    assert_eq!(summary.failed, 1);
    let reports: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            RunEvent::StepFinished { report, .. } => Some(report.clone()),
            _ => None,
        })
        .collect();
    let status = |id: &str| {
        reports
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no report of `{id}`"))
    };
    for id in ["forbidden", "unknown-socket"] {
        let report = status(id);
        assert_eq!(report.status, StepStatus::Passed, "{id}: {report:?}");
    }
    let wrong = status("wrong-status");
    assert_eq!(wrong.status, StepStatus::Failed);
    assert!(
        wrong.expectations[0].message.contains("403"),
        "{:?}",
        wrong.expectations
    );
    let refused = status("not-allowed");
    assert_eq!(refused.status, StepStatus::Errored);
    let message = &refused.error.as_ref().expect("an error").message;
    assert!(
        message.starts_with("the server refused the WebSocket handshake of `ws://"),
        "{message}"
    );
    demo.shutdown().await;
}

#[tokio::test]
async fn max_message_caps_incoming_messages() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let big = "x".repeat(2000);
    let err = ws(
        &ctx,
        &format!(
            "url = \"{}\"\nmax_message = \"1KiB\"\nconversation = [{{ send = \"{big}\" }}, {{ expect = true }}]",
            server.url("/echo")
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.message
            .starts_with("conversation item 1 (`expect`): a message of "),
        "{}",
        err.message
    );
    assert!(
        err.message.ends_with("over the `max_message` cap of 1 KiB"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn max_message_defaults_to_the_runs_max_body() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let big = "x".repeat(2000);
    let toml = format!(
        "url = \"{}\"\nconversation = [{{ send = \"{big}\" }}, {{ expect = true }}]",
        server.url("/echo")
    );
    let err = guarded(run_step(
        &setup(),
        &ctx,
        &config(&toml),
        Duration::from_secs(10),
        1024,
    ))
    .await
    .unwrap_err();
    assert!(
        err.message.ends_with("over the `max_message` cap of 1 KiB"),
        "{}",
        err.message
    );
}

// --- TLS -------------------------------------------------------------------

/// A threaded `wss://` echo server with the test CA's `localhost`/`127.0.0.1`
/// certificate.
fn start_wss_server() -> SocketAddr {
    start_tls(|tls| {
        let Ok(mut socket) = tokio_tungstenite::tungstenite::accept(tls) else {
            return;
        };
        while let Ok(message) = socket.read() {
            if message.is_text() && socket.send(message).is_err() {
                return;
            }
        }
    })
}

#[tokio::test]
async fn wss_trusts_ca_cert_and_explains_an_unknown_ca() {
    let addr = start_wss_server();
    let (ctx, dir) = context();
    let url = format!("wss://localhost:{}/", addr.port());
    let echo = "conversation = [{ send = \"secure\" }, { expect = \"secure\" }]";

    let err = ws(&ctx, &format!("url = \"{url}\"\n{echo}"))
        .await
        .unwrap_err();
    assert!(
        err.message
            .starts_with(&format!("TLS handshake with `{url}` failed:")),
        "{}",
        err.message
    );
    let help = err.help.unwrap();
    assert!(
        help.contains("ca_cert") && help.contains("insecure"),
        "{help}"
    );

    let ca = std::fs::read_to_string(format!("{TLS_DIR}/ca.pem")).unwrap();
    common::write(dir.path(), "ca.pem", &ca);
    let doc = ws(
        &ctx,
        &format!("url = \"{url}\"\nca_cert = \"ca.pem\"\n{echo}"),
    )
    .await
    .unwrap();
    assert_eq!(doc["replies"]["1"]["message"]["text"], "secure");

    let doc = ws(
        &ctx,
        &format!(
            "url = \"https://127.0.0.1:{}/\"\ninsecure = true\n{echo}",
            addr.port()
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 101);
}

#[tokio::test]
async fn a_captured_value_is_matched_as_it_is_even_when_it_looks_like_a_template() {
    use planrun_runner::events::RunEvent;

    let http = FixtureServer::start().await;
    let ws = WsServer::start().await;
    let (_ctx, dir) = context();
    // the server hands back `{{ nobody }}`: the matcher's template is rendered
    // once, to that text, and the text is compared as it is
    let text = format!(
        r#"id = "literal"
[[steps]]
id = "get"
http = {{ get = "{echo}", query = {{ x = "{{{{ '{{{{' }}}} nobody }}}}" }} }}
capture.x = "json.query.x"

[[steps]]
ws = {{ url = "{ws}", conversation = [{{ send = "{{{{ get.x }}}}" }}, {{ expect = "{{{{ get.x }}}}" }}] }}
expect.received.len = 1
"#,
        echo = http.url("/echo"),
        ws = ws.url("/echo"),
    );
    let (summary, events) = run_spec(dir.path(), &text).await;
    let reports: Vec<String> = events
        .iter()
        .filter_map(|event| match event {
            RunEvent::StepFinished { report, .. } => Some(format!(
                "{} {:?} {:?} {:?}",
                report.id,
                report.status,
                report.error.as_ref().map(|e| &e.message),
                report
                    .expectations
                    .iter()
                    .map(|e| &e.message)
                    .collect::<Vec<_>>()
            )),
            _ => None,
        })
        .collect();
    assert_eq!(summary.passed, 1, "{reports:#?}");
}

/// The cap on kept message documents the `ws` executor documents.
const KEPT_MESSAGES: usize = 10_000;

/// The peak resident memory of this test process, from `VmHWM`. A bound on
/// what a flood may cost, not a timing: without the caps a flooded step held
/// gigabytes.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

const FLOOD_MEMORY_BOUND: u64 = 1024 * 1024 * 1024;

#[tokio::test]
async fn an_action_that_reads_until_something_fails_at_the_cap() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/flood");
    // a long limit: the cap, not the time, ends these steps
    let limit = Duration::from_mins(1);
    let toml = format!(
        "url = \"{url}\"\nconversation = [{{ expect = \"never\", skip = true, timeout = \"1m\" }}]"
    );
    let err = guarded(run_step(&setup(), &ctx, &config(&toml), limit, MAX_BODY))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "conversation item 0 (`expect`): the transcript passed its cap of 10000 frames after 10001 frames in this step (the server sends more than a step keeps)"
    );
    assert!(err.help.unwrap().contains("`wait`"));

    // after a `wait` kept the first and last frames, the transcript is full
    let toml = format!(
        "url = \"{url}\"\nconversation = [{{ wait = \"200ms\" }}, {{ expect_close = {{}}, timeout = \"1m\" }}]"
    );
    let err = guarded(run_step(&setup(), &ctx, &config(&toml), limit, MAX_BODY))
        .await
        .unwrap_err();
    assert!(
        err.message.starts_with(
            "conversation item 1 (`expect_close`): the transcript passed its cap of 10000 frames after "
        ),
        "{}",
        err.message
    );
    assert!(
        peak_memory() < FLOOD_MEMORY_BOUND,
        "peak memory {}",
        peak_memory()
    );
}

#[tokio::test]
async fn a_wait_past_the_time_limit_fails_at_once_while_a_server_floods() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/flood");
    let toml = format!("url = \"{url}\"\nconversation = [{{ wait = \"2s\" }}]");
    let err = guarded(run_step(
        &setup(),
        &ctx,
        &config(&toml),
        Duration::from_secs(1),
        MAX_BODY,
    ))
    .await
    .unwrap_err();
    assert!(
        err.message
            .contains("would run past the step's time limit of 1 s"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_flood_keeps_the_first_and_last_messages_and_counts_the_rest() {
    let server = WsServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/flood");
    let doc = ws(
        &ctx,
        &format!("url = \"{url}\"\nconversation = [{{ wait = \"1s\" }}]"),
    )
    .await
    .unwrap();
    let received = doc["received"].as_array().unwrap();
    let messages = doc["messages"].as_array().unwrap();
    assert_eq!(received.len(), KEPT_MESSAGES);
    assert_eq!(messages.len(), KEPT_MESSAGES);
    assert!(
        doc["dropped"]["received"].as_u64().unwrap() > 0,
        "{}",
        doc["dropped"]
    );
    assert!(
        doc["dropped"]["messages"].as_u64().unwrap() > 0,
        "{}",
        doc["dropped"]
    );
    assert_eq!(received[0]["text"], WsServer::FLOOD_FRAME);
    assert_eq!(received.last().unwrap()["text"], WsServer::FLOOD_FRAME);
    assert_eq!(doc["close"]["by"], "client");
    assert!(
        peak_memory() < FLOOD_MEMORY_BOUND,
        "peak memory {}",
        peak_memory()
    );
}

/// Reporters run on the step's thread: frames read from a buffer are always
/// ready, and each observed must not pile up for them.
#[tokio::test(flavor = "current_thread")]
async fn a_flood_observed_live_does_not_pile_up_observations() {
    let server = WsServer::start().await;
    let (_ctx, dir) = context();
    let text = format!(
        "id = \"live\"\n[[steps]]\nws = {{ url = \"{}\", conversation = [{{ wait = \"1s\" }}] }}\nexpect.dropped.received = {{ gt = 0 }}\n",
        server.url("/flood")
    );
    let (summary, observed, backlog) = run_spec_live(dir.path(), &text).await;
    assert_eq!(summary.passed, 1);
    assert!(observed > KEPT_MESSAGES, "{observed}");
    assert!(
        backlog < 1000,
        "{backlog} observations waited for the reporter"
    );
}
