//! The `http` executor against real servers: the testkit's fixture server on
//! 127.0.0.1:0 and, for TLS, a rustls server with a throwaway CA.

mod common;

use std::time::{Duration, Instant};

use common::{
    HANG_GUARD, MAX_BODY, TLS_DIR, answer_once, config, context, run, run_spec, run_step,
    start_tls, start_tls_as,
};
use planrun_runner::events::{RunEvent, StepReport};
use planrun_runner::executor::SpecContext;
use planrun_steps::http::HttpExecutor;
use planrun_testkit::{CUT_BODY, FixtureServer, STALL_BODY};
use serde_json::json;

fn setup() -> HttpExecutor {
    planrun_steps::install_crypto_provider();
    HttpExecutor::new()
}

#[tokio::test]
async fn get_json_fills_the_result_document() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/json");
    let doc = run(&http, &ctx, &format!("get = \"{url}\"")).await.unwrap();

    assert_eq!(doc["status"], 200);
    assert_eq!(doc["version"], "HTTP/1.1");
    assert_eq!(doc["url"], url.as_str());
    assert_eq!(doc["headers"]["content-type"], "application/json");
    assert_eq!(doc["json"]["n"], 42);
    assert_eq!(doc["json"]["nested"]["name"], "planrun");
    let body = doc["body"].as_str().unwrap();
    assert!(body.starts_with("{\"ok\":true"), "{body}");
    assert_eq!(doc["size"], body.len());
    assert_eq!(doc["redirects"], 0);
    assert_eq!(doc["cookies"], json!({}));
    let ttfb = doc["timings"]["ttfb"].as_f64().unwrap();
    let total = doc["timings"]["total"].as_f64().unwrap();
    assert!(ttfb > 0.0 && ttfb <= total, "ttfb {ttfb}, total {total}");
    assert!((doc["duration"].as_f64().unwrap() - total).abs() < f64::EPSILON);
    assert_eq!(doc["request"]["method"], "GET");
    assert_eq!(doc["request"]["url"], url.as_str());
    assert!(doc["request"]["headers"].is_object());
}

#[tokio::test]
async fn post_json_is_sent_as_json() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = run(
        &http,
        &ctx,
        &format!(
            "post = \"{}\"\njson = {{ username = \"qa\", n = 3, tags = [\"a\"] }}",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    let echo = &doc["json"];
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    assert_eq!(
        echo["json"],
        json!({"username": "qa", "n": 3, "tags": ["a"]})
    );
    assert_eq!(
        doc["request"]["headers"]["content-type"],
        "application/json"
    );
}

#[tokio::test]
async fn form_fields_are_urlencoded() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = run(
        &http,
        &ctx,
        &format!(
            "post = \"{}\"\nform = {{ name = \"a b\", n = 2, ok = true }}",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    let echo = &doc["json"];
    assert_eq!(
        echo["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(echo["body"], "n=2&name=a+b&ok=true");
}

#[tokio::test]
async fn multipart_sends_text_and_file_fields() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, dir) = context();
    common::write(dir.path(), "report.csv", "a,b\n1,2\n");
    let doc = run(
        &http,
        &ctx,
        &format!(
            "post = \"{}\"\n[multipart]\nnote = {{ text = \"hello\" }}\nupload = {{ file = \"report.csv\", content_type = \"text/csv\" }}",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    let echo = &doc["json"];
    let content_type = echo["headers"]["content-type"].as_str().unwrap();
    assert!(
        content_type.starts_with("multipart/form-data; boundary="),
        "{content_type}"
    );
    let body = echo["body"].as_str().unwrap();
    assert!(body.contains("name=\"note\"\r\n\r\nhello\r\n"), "{body}");
    assert!(
        body.contains("name=\"upload\"; filename=\"report.csv\""),
        "{body}"
    );
    assert!(
        body.contains("Content-Type: text/csv\r\n\r\na,b\n1,2\n"),
        "{body}"
    );
}

#[tokio::test]
async fn multipart_file_missing_is_an_error() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let err = run(
        &http,
        &ctx,
        &format!(
            "post = \"{}\"\nmultipart = {{ f = {{ file = \"nope.bin\" }} }}",
            server.url("/echo")
        ),
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("nope.bin"), "{}", err.message);
    assert!(err.span.is_some());
}

#[tokio::test]
async fn query_and_headers_are_sent() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = run(
        &http,
        &ctx,
        &format!(
            "get = \"{}\"\nquery = {{ n = 3, flag = true, s = \"a b\", tag = [\"x\", \"y\"] }}\nheaders = {{ X-Trace = \"t-1\", Accept = \"application/json\" }}",
            server.url("/echo?keep=1")
        ),
    )
    .await
    .unwrap();
    let echo = &doc["json"];
    assert_eq!(
        echo["query"],
        json!({"keep": "1", "flag": "true", "n": "3", "s": "a b", "tag": ["x", "y"]})
    );
    assert_eq!(echo["headers"]["x-trace"], "t-1");
    assert_eq!(echo["headers"]["accept"], "application/json");
    assert_eq!(doc["request"]["headers"]["x-trace"], "t-1");
}

#[tokio::test]
async fn method_and_url_with_a_raw_body() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = run(
        &http,
        &ctx,
        &format!(
            "method = \"put\"\nurl = \"{}\"\nbody = \"plain text\"\nheaders = {{ content-type = \"text/plain\" }}",
            server.url("/echo/items/1")
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["json"]["method"], "PUT");
    assert_eq!(doc["json"]["path"], "/echo/items/1");
    assert_eq!(doc["json"]["body"], "plain text");
    assert_eq!(doc["request"]["method"], "PUT");
}

#[tokio::test]
async fn an_error_status_is_a_document_not_an_error() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = run(
        &http,
        &ctx,
        &format!("delete = \"{}\"", server.url("/status/503")),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 503);
    assert_eq!(doc["json"]["status"], 503);
}

#[tokio::test]
async fn the_cookie_jar_carries_a_session_across_steps() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();

    let before = run(
        &http,
        &ctx,
        &format!("get = \"{}\"", server.url("/needs-cookie")),
    )
    .await
    .unwrap();
    assert_eq!(before["status"], 401);

    let login = run(
        &http,
        &ctx,
        &format!("get = \"{}\"", server.url("/set-cookie")),
    )
    .await
    .unwrap();
    assert_eq!(login["cookies"], json!({"token": "abc"}));
    assert_eq!(login["headers"]["set-cookie"], "token=abc; Path=/");

    let after = run(
        &http,
        &ctx,
        &format!("get = \"{}\"", server.url("/needs-cookie")),
    )
    .await
    .unwrap();
    assert_eq!(after["status"], 200);

    // a step with extra cookies still sends the session
    let echo = run(
        &http,
        &ctx,
        &format!(
            "get = \"{}\"\ncookies = {{ extra = \"1\" }}",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        echo["json"]["cookies"],
        json!({"token": "abc", "extra": "1"})
    );

    // another spec run has a jar of its own
    let other = SpecContext::new(ctx.base_dir());
    let fresh = run(
        &http,
        &other,
        &format!("get = \"{}\"", server.url("/needs-cookie")),
    )
    .await
    .unwrap();
    assert_eq!(fresh["status"], 401);
}

#[tokio::test]
async fn the_jar_is_shared_with_differently_configured_clients() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    run(
        &http,
        &ctx,
        &format!("get = \"{}\"", server.url("/set-cookie")),
    )
    .await
    .unwrap();
    // `insecure` needs a client of its own; the session must follow
    let doc = run(
        &http,
        &ctx,
        &format!("get = \"{}\"\ninsecure = true", server.url("/needs-cookie")),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 200);
}

#[tokio::test]
async fn redirects_are_followed_and_counted() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = run(
        &http,
        &ctx,
        &format!("get = \"{}\"", server.url("/redirect/3")),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 200);
    assert_eq!(doc["redirects"], 3);
    assert_eq!(doc["url"], server.url("/json"));
    assert_eq!(doc["json"]["n"], 42);
}

#[tokio::test]
async fn redirects_can_be_left_alone() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = run(
        &http,
        &ctx,
        &format!(
            "get = \"{}\"\nfollow_redirects = false",
            server.url("/redirect/3")
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 302);
    assert_eq!(doc["headers"]["location"], "/redirect/2");
    assert_eq!(doc["redirects"], 0);
    assert_eq!(doc["url"], server.url("/redirect/3"));
}

#[tokio::test]
async fn too_many_redirects_is_an_error() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let err = run(
        &http,
        &ctx,
        &format!("get = \"{}\"\nmax_redirects = 2", server.url("/redirect/3")),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.contains("more than 2 redirects"),
        "{}",
        err.message
    );
    assert!(err.help.unwrap().contains("max_redirects"));
    // exactly the limit is fine
    let doc = run(
        &http,
        &ctx,
        &format!("get = \"{}\"\nmax_redirects = 3", server.url("/redirect/3")),
    )
    .await
    .unwrap();
    assert_eq!(doc["redirects"], 3);
}

#[tokio::test]
async fn an_endless_body_stops_at_the_cap() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let started = Instant::now();
    let err = run(
        &http,
        &ctx,
        &format!("get = \"{}\"\nmax_body = \"64KiB\"", server.url("/endless")),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < HANG_GUARD);
    assert!(
        err.message.contains("exceeds the 64 KiB cap"),
        "{}",
        err.message
    );
    assert!(err.help.unwrap().contains("max_body"));

    // the step's default cap comes from the runner
    let err = run_step(
        &http,
        &ctx,
        &config(&format!("get = \"{}\"", server.url("/endless"))),
        Duration::from_secs(10),
        1024 * 1024,
    )
    .await
    .unwrap_err();
    assert!(
        err.message.contains("exceeds the 1 MiB cap"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_declared_length_over_the_cap_fails_before_reading() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let ok = run(
        &http,
        &ctx,
        &format!("get = \"{}\"\nmax_body = 100", server.url("/big/100")),
    )
    .await
    .unwrap();
    assert_eq!(ok["size"], 100);
    let err = run(
        &http,
        &ctx,
        &format!(
            "get = \"{}\"\nmax_body = 100",
            server.url("/big/10000000000")
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.contains("exceeds the 100 bytes cap"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_connection_closed_mid_headers_is_an_error() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/close-mid-headers");
    let err = run(&http, &ctx, &format!("get = \"{url}\""))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "`{url}` closed the connection before its response headers were complete: no status line came, or only part of the headers"
        )
    );
    assert!(err.span.is_some());
}

#[tokio::test]
async fn connection_refused_says_what_to_check() {
    let http = setup();
    let (ctx, _dir) = context();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/health/");
    let text = format!("get = \"{url}\"");
    let err = run(&http, &ctx, &text).await.unwrap_err();
    assert_eq!(
        err.message,
        format!("cannot connect to `{url}`: connection refused")
    );
    // written literally: the URL itself is what to check
    assert_eq!(
        err.help.as_deref(),
        Some("is the server running? check the URL")
    );
    assert_eq!(&text[err.span.unwrap()], format!("\"{url}\""));
}

#[tokio::test]
async fn an_unresolvable_host_is_named() {
    let http = setup();
    let (ctx, _dir) = context();
    let err = run(
        &http,
        &ctx,
        "get = \"http://planrun-no-such-host.invalid/\"",
    )
    .await
    .unwrap_err();
    assert!(err.message.contains("does not resolve"), "{}", err.message);
}

#[tokio::test]
async fn a_hanging_server_hits_the_step_timeout() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let started = Instant::now();
    let err = run(
        &http,
        &ctx,
        &format!("get = \"{}\"\ntimeout = \"200ms\"", server.url("/hang")),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < HANG_GUARD);
    assert!(
        err.message.ends_with("did not answer within 200 ms"),
        "{}",
        err.message
    );

    // without `timeout` the step's limit applies
    let err = run_step(
        &http,
        &ctx,
        &config(&format!("get = \"{}\"", server.url("/hang"))),
        Duration::from_millis(150),
        MAX_BODY,
    )
    .await
    .unwrap_err();
    assert!(
        err.message.ends_with("did not answer within 150 ms"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn config_mistakes_point_at_the_spec() {
    let http = setup();
    let (ctx, _dir) = context();
    let text = "get = \"localhost:8000/health\"";
    let err = run(&http, &ctx, text).await.unwrap_err();
    assert!(
        err.message.contains("is not a valid URL"),
        "{}",
        err.message
    );
    assert_eq!(&text[err.span.unwrap()], "\"localhost:8000/health\"");

    let err = run(&http, &ctx, "post = \"http://h/\"\njson = {}\nbody = \"x\"")
        .await
        .unwrap_err();
    assert!(
        err.message.starts_with("set at most one of"),
        "{}",
        err.message
    );

    let err = run(&http, &ctx, "get = \"http://h/\"\nretries = 3")
        .await
        .unwrap_err();
    assert_eq!(err.message, "unknown key `retries`");

    let err = run(&http, &ctx, "get = \"ftp://h/\"").await.unwrap_err();
    assert!(
        err.message.contains("not an http:// or https:// URL"),
        "{}",
        err.message
    );
}

// --- bodies that lie ---------------------------------------------------------

/// `/bytes` with this content type and body.
fn bytes_url(server: &FixtureServer, content_type: &str, body: &[u8]) -> String {
    use std::fmt::Write as _;

    let mut url = String::from("/bytes?type=");
    for b in content_type.bytes() {
        if b.is_ascii_alphanumeric() {
            url.push(char::from(b));
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
    url.push_str("&hex=");
    for b in body {
        let _ = write!(url, "{b:02x}");
    }
    server.url(&url)
}

/// Runs a spec of steps through the runner; the report of each step.
async fn run_steps(steps: &str) -> Vec<StepReport> {
    let (_ctx, dir) = context();
    let text = format!("id = \"bodies\"\ndefaults.needs = []\n{steps}");
    let (_, events) = run_spec(dir.path(), &text).await;
    events
        .into_iter()
        .filter_map(|event| match event {
            RunEvent::StepFinished { report, .. } => Some((*report).clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_body_that_is_not_utf8_has_no_text_but_a_reason() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = bytes_url(
        &server,
        "text/plain; charset=utf-8",
        b"valid caf\xE9 \xFF end",
    );
    let doc = run(&http, &ctx, &format!("get = \"{url}\"")).await.unwrap();
    assert_eq!(doc["status"], 200);
    assert_eq!(doc["body"], json!(null));
    assert_eq!(doc["json"], json!(null));
    // the bytes are all there
    assert_eq!(doc["size"], 16);
    assert_eq!(
        doc["body_error"],
        "the body is not UTF-8 text (the declared charset `utf-8`): the first byte that cannot be decoded is 0xE9, at offset 9; it starts `valid caf\\xE9 \\xFF end`"
    );
    // text bodies have no reason
    let doc = run(&http, &ctx, &format!("get = \"{}\"", server.url("/json")))
        .await
        .unwrap();
    assert!(doc.get("body_error").is_none(), "{doc}");
}

#[tokio::test]
async fn a_declared_charset_decodes_the_body() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = bytes_url(&server, "text/html; charset=iso-8859-1", b"<p>caf\xE9</p>");
    let doc = run(&http, &ctx, &format!("get = \"{url}\"")).await.unwrap();
    assert_eq!(doc["body"], "<p>café</p>");
    assert_eq!(doc["size"], 11);
    assert!(doc.get("body_error").is_none(), "{doc}");
}

#[tokio::test]
async fn text_checks_fail_on_a_body_that_is_no_text_and_byte_checks_hold() {
    let server = FixtureServer::start().await;
    let url = bytes_url(
        &server,
        "text/plain; charset=utf-8",
        b"valid caf\xE9 \xFF end",
    );
    let said = "the body is not UTF-8 text (the declared charset `utf-8`): the first byte that cannot be decoded is 0xE9, at offset 9; it starts `valid caf\\xE9 \\xFF end`";
    let steps = format!(
        "[[steps]]\nid = \"text\"\nhttp = {{ get = \"{url}\" }}\nexpect.body = {{ contains = \"valid\" }}\n\
         [[steps]]\nid = \"negated\"\nhttp = {{ get = \"{url}\" }}\nexpect.body = {{ not = {{ contains = \"error\" }} }}\n\
         [[steps]]\nid = \"bytes\"\nhttp = {{ get = \"{url}\" }}\nexpect.status = 200\nexpect.size = 16\nexpect.header.content-type = {{ starts_with = \"text/plain\" }}\n"
    );
    let mut reports = run_steps(&steps).await;
    reports.sort_by_key(|r| r.index);
    let [text, negated, bytes] = reports.as_slice() else {
        panic!("three steps: {reports:#?}");
    };
    for report in [text, negated] {
        let [outcome] = report.expectations.as_slice() else {
            panic!("one outcome: {report:#?}");
        };
        assert!(!outcome.passed);
        assert_eq!(outcome.message, format!("body: {said}"));
        assert_eq!(outcome.expected, "a text body");
        // the failure says the reason: the evidence does not repeat it
        assert!(report.evidence.is_empty(), "{:#?}", report.evidence);
    }
    assert!(bytes.expectations.iter().all(|o| o.passed), "{bytes:#?}");
}

#[tokio::test]
async fn json_checks_on_a_body_that_does_not_parse_name_the_parser_error() {
    let server = FixtureServer::start().await;
    let url = bytes_url(&server, "application/json", b"{\"ok\": tru, \"n\": 1}");
    let steps = format!(
        "[[steps]]\nid = \"path\"\nhttp = {{ get = \"{url}\" }}\nexpect.json.ok = true\n\
         [[steps]]\nid = \"whole\"\nhttp = {{ get = \"{url}\" }}\nexpect.json.eq = {{ ok = true }}\n\
         [[steps]]\nid = \"capture\"\nhttp = {{ get = \"{url}\" }}\ncapture.ok = \"json.ok\"\n"
    );
    let mut reports = run_steps(&steps).await;
    reports.sort_by_key(|r| r.index);
    let said = "the body is not valid JSON: expected ident at line 1 column 11; it starts `{\"ok\": tru, \"n\": 1}`";
    for (report, target) in reports.iter().zip(["json.ok", "json"]) {
        let [outcome] = report.expectations.as_slice() else {
            panic!("one outcome: {report:#?}");
        };
        assert!(!outcome.passed);
        assert_eq!(outcome.message, format!("{target}: {said}"));
        assert_eq!(outcome.expected, "a JSON body");
    }
    let error = reports[2]
        .error
        .as_ref()
        .expect("a capture that cannot be taken");
    assert_eq!(
        error.message,
        format!("capture `ok`: `json.ok` cannot be read: {said}")
    );
    // bytes that are no text are no JSON either: the reason says why
    let url = bytes_url(&server, "application/json", b"{\"name\": \"\xFF\"}");
    let again = run_steps(&format!(
        "[[steps]]\nhttp = {{ get = \"{url}\" }}\nexpect.json.name = \"x\"\n"
    ))
    .await;
    let outcome = &again[0].expectations[0];
    assert!(
        outcome.message.starts_with("json.name: the body is not UTF-8 text (no charset is declared, so UTF-8 is assumed): the first byte that cannot be decoded is 0xFF, at offset 10;"),
        "{}",
        outcome.message
    );
}

#[tokio::test]
async fn a_body_cut_short_of_its_length_says_how_far_it_came() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/cut-body");
    let err = run(&http, &ctx, &format!("get = \"{url}\""))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "the response body of `{url}` ended after {} of 100 bytes (the connection closed)",
            CUT_BODY.len()
        )
    );
    assert!(err.help.unwrap().contains("check its logs"));
    assert!(err.span.is_some());

    let url = server.url("/cut-chunked");
    let err = run(&http, &ctx, &format!("get = \"{url}\""))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "the response body of `{url}` ended after {} bytes, before the last chunk of its chunked encoding (the connection closed)",
            CUT_BODY.len()
        )
    );
}

#[tokio::test]
async fn an_empty_reply_says_so() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/empty-reply");
    let err = run(&http, &ctx, &format!("get = \"{url}\""))
        .await
        .unwrap_err();
    // the HTTP client tells an empty reply from one cut inside its headers
    // by nothing: the message names both
    assert_eq!(
        err.message,
        format!(
            "`{url}` closed the connection before its response headers were complete: no status line came, or only part of the headers"
        )
    );
    assert!(err.help.unwrap().contains("an empty reply"));
}

#[tokio::test]
async fn a_body_that_stalls_after_its_headers_says_where() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let url = server.url("/stall-body");
    let started = Instant::now();
    let err = run(
        &http,
        &ctx,
        &format!("get = \"{url}\"\ntimeout = \"300ms\""),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < HANG_GUARD);
    let prefix = format!(
        "the response body of `{url}` stalled after {} of 100 bytes: the headers came after ",
        STALL_BODY.len()
    );
    assert!(err.message.starts_with(&prefix), "{}", err.message);
    assert!(
        err.message
            .ends_with(", then the time limit (300 ms) ran out before the rest of the body"),
        "{}",
        err.message
    );
    assert!(err.help.unwrap().contains("timeout"));
}

// --- TLS -------------------------------------------------------------------

/// A one-thread HTTPS server answering `200 ok` to every request, with the
/// test CA's `localhost`/`127.0.0.1` certificate.
fn start_tls_server() -> std::net::SocketAddr {
    start_tls(|tls| {
        answer_once(
            tls,
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
        );
    })
}

#[tokio::test]
async fn tls_with_an_unknown_ca_explains_the_options() {
    let http = setup();
    let addr = start_tls_server();
    let (ctx, _dir) = context();
    let url = format!("https://localhost:{}/", addr.port());
    let err = run(&http, &ctx, &format!("get = \"{url}\""))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "TLS handshake with `{url}` failed: the server's certificate was issued by `CN=planrun test CA`, which is not a trusted authority"
        )
    );
    let help = err.help.unwrap();
    assert!(
        help.contains("trust `CN=planrun test CA` with `ca_cert")
            && help.contains("insecure = true"),
        "{help}"
    );
}

/// A one-thread HTTPS server answering `200 ok` with the certificate
/// `name` of the test material.
fn start_tls_server_as(name: &str) -> std::net::SocketAddr {
    start_tls_as(name, |tls| {
        answer_once(
            tls,
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
        );
    })
}

#[tokio::test]
async fn tls_with_a_self_signed_certificate_says_so() {
    let http = setup();
    let addr = start_tls_server_as("self-signed");
    let (ctx, dir) = context();
    let url = format!("https://localhost:{}/", addr.port());
    let err = run(&http, &ctx, &format!("get = \"{url}\""))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        format!(
            "TLS handshake with `{url}` failed: the server's certificate (`CN=planrun self-signed`) is self-signed: no trusted authority issued it"
        )
    );
    let help = err.help.unwrap();
    assert!(
        help.contains("ca_cert") && help.contains("insecure = true"),
        "{help}"
    );
    // as the hint says: the certificate is its own authority
    let own = std::fs::read_to_string(format!("{TLS_DIR}/self-signed.pem")).unwrap();
    common::write(dir.path(), "own.pem", &own);
    let doc = run(
        &http,
        &ctx,
        &format!("get = \"{url}\"\nca_cert = \"own.pem\""),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 200);
}

#[tokio::test]
async fn tls_with_a_self_signed_authority_says_so() {
    let http = setup();
    let addr = start_tls_server_as("self-signed-ca");
    let (ctx, dir) = context();
    let url = format!("https://localhost:{}/", addr.port());
    let said = format!(
        "TLS handshake with `{url}` failed: the server's certificate (`CN=planrun self-signed CA`) is self-signed and marked as a certificate authority (`CA:TRUE`), which cannot identify a server even when trusted"
    );
    let err = run(&http, &ctx, &format!("get = \"{url}\""))
        .await
        .unwrap_err();
    assert_eq!(err.message, said);
    assert!(err.help.unwrap().contains("insecure = true"));
    // trusting it does not help, as the message says
    let own = std::fs::read_to_string(format!("{TLS_DIR}/self-signed-ca.pem")).unwrap();
    common::write(dir.path(), "own.pem", &own);
    let err = run(
        &http,
        &ctx,
        &format!("get = \"{url}\"\nca_cert = \"own.pem\""),
    )
    .await
    .unwrap_err();
    assert_eq!(err.message, said);
    let doc = run(&http, &ctx, &format!("get = \"{url}\"\ninsecure = true"))
        .await
        .unwrap();
    assert_eq!(doc["body"], "ok");
}

#[tokio::test]
async fn tls_insecure_accepts_any_certificate() {
    let http = setup();
    let addr = start_tls_server();
    let (ctx, _dir) = context();
    let doc = run(
        &http,
        &ctx,
        &format!(
            "get = \"https://127.0.0.1:{}/\"\ninsecure = true",
            addr.port()
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 200);
    assert_eq!(doc["body"], "ok");
}

#[tokio::test]
async fn tls_ca_cert_is_read_relative_to_the_spec() {
    let http = setup();
    let addr = start_tls_server();
    let (ctx, dir) = context();
    let ca = std::fs::read_to_string(format!("{TLS_DIR}/ca.pem")).unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    common::write(dir.path(), "certs/ca.pem", &ca);
    let doc = run(
        &http,
        &ctx,
        &format!(
            "get = \"https://localhost:{}/\"\nca_cert = \"certs/ca.pem\"",
            addr.port()
        ),
    )
    .await
    .unwrap();
    assert_eq!(doc["status"], 200);

    let err = run(
        &http,
        &ctx,
        &format!(
            "get = \"https://localhost:{}/\"\nca_cert = \"missing.pem\"",
            addr.port()
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.contains("cannot read the CA certificate"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn basic_auth_sends_an_authorization_header() {
    let http = setup();
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let doc = run(
        &http,
        &ctx,
        &format!(
            "get = \"{}\"\nbasic_auth = {{ user = \"qa\", password = \"pä ss:w\" }}",
            server.url("/echo")
        ),
    )
    .await
    .unwrap();
    // RFC 7617: base64 of `user:password` in UTF-8
    let sent = "Basic cWE6cMOkIHNzOnc=";
    assert_eq!(doc["json"]["headers"]["authorization"], sent);
    assert_eq!(doc["request"]["headers"]["authorization"], sent);
}

#[tokio::test]
async fn an_sse_request_sends_basic_auth_too() {
    let server = FixtureServer::start().await;
    let (ctx, _dir) = context();
    let step = config(&format!(
        "post = \"{}\"\nbasic_auth = {{ user = \"qa\", password = \"pw\" }}",
        server.url("/sse/echo")
    ));
    let doc = run_step(
        &planrun_steps::sse::SseExecutor::new(),
        &ctx,
        &step,
        Duration::from_secs(10),
        MAX_BODY,
    )
    .await
    .unwrap();
    assert_eq!(
        doc["events"][0]["json"]["headers"]["authorization"],
        "Basic cWE6cHc="
    );
}

#[tokio::test]
async fn basic_auth_beside_an_authorization_header_is_refused() {
    let http = setup();
    let (ctx, _dir) = context();
    let err = run(
        &http,
        &ctx,
        "get = \"http://127.0.0.1:9/\"\nheaders = { Authorization = \"Bearer t\" }\nbasic_auth = { user = \"qa\", password = \"pw\" }",
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.message,
        "set either `basic_auth` or an `Authorization` header, not both"
    );
}
