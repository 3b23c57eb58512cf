//! Smoke tests of every fixture route over raw TCP, so the fixtures are checked
//! without trusting any HTTP client (they exist to test planrun's client).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use planrun_testkit::{DemoServer, FixtureServer, Flavor};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response read to the end of the connection.
struct Raw {
    text: String,
}

impl Raw {
    fn status(&self) -> u16 {
        self.text
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {:?}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        let (head, _) = self.text.split_once("\r\n\r\n")?;
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn body(&self) -> &str {
        self.text
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.body())
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.text))
    }
}

/// Sends `method path` with extra header lines and a body, `Connection: close`.
async fn exchange(addr: SocketAddr, method: &str, path: &str, extra: &str, body: &str) -> Raw {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: fixture\r\nconnection: close\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut bytes))
        .await
        .expect("answer within 5 s")
        .expect("read");
    Raw {
        text: String::from_utf8(bytes).expect("utf-8"),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Raw {
    exchange(addr, "GET", path, "", "").await
}

#[tokio::test]
async fn json_route_and_url_helper() {
    let server = FixtureServer::start().await;
    assert_eq!(server.url("/json"), format!("http://{}/json", server.addr));
    assert_eq!(server.url("json"), server.url("/json"));
    let reply = get(server.addr, "/json").await;
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"ok": true, "n": 42, "items": [1, 2, 3], "nested": {"name": "planrun"}})
    );
}

#[tokio::test]
async fn status_route_answers_any_status() {
    let server = FixtureServer::start().await;
    let reply = exchange(server.addr, "POST", "/status/418", "", "").await;
    assert_eq!(reply.status(), 418);
    assert_eq!(reply.json(), json!({"status": 418}));
    let reply = get(server.addr, "/status/204").await;
    assert_eq!(reply.status(), 204);
    assert_eq!(reply.body(), "");
    for bad in ["/status/99", "/status/600", "/status/teapot"] {
        assert_eq!(get(server.addr, bad).await.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn echo_reflects_the_request() {
    let server = FixtureServer::start().await;
    let reply = exchange(
        server.addr,
        "PATCH",
        "/echo/deeper?a=1&a=2&b=x%20y",
        "X-Custom: yes\r\ncookie: token=abc; theme=dark\r\ncontent-type: application/json\r\n",
        r#"{"k": [1]}"#,
    )
    .await;
    assert_eq!(reply.status(), 200);
    let echo = reply.json();
    assert_eq!(echo["method"], "PATCH");
    assert_eq!(echo["path"], "/echo/deeper");
    assert_eq!(echo["query"], json!({"a": ["1", "2"], "b": "x y"}));
    assert_eq!(echo["headers"]["x-custom"], "yes");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    assert_eq!(echo["body"], r#"{"k": [1]}"#);
    assert_eq!(echo["json"], json!({"k": [1]}));
    assert_eq!(echo["cookies"], json!({"token": "abc", "theme": "dark"}));

    let reply = exchange(server.addr, "PUT", "/echo", "", "plain").await;
    assert_eq!(reply.json()["json"], Value::Null);
    assert_eq!(reply.json()["body"], "plain");
    assert_eq!(reply.json()["query"], json!({}));
}

#[tokio::test]
async fn delay_waits_before_answering() {
    let server = FixtureServer::start().await;
    let started = Instant::now();
    let reply = get(server.addr, "/delay/150").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(reply.json(), json!({"delayed_ms": 150}));
    assert_eq!(get(server.addr, "/delay/soon").await.status(), 400);
}

#[tokio::test]
async fn hang_holds_the_connection_without_answering() {
    let server = FixtureServer::start().await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /hang HTTP/1.1\r\nhost: fixture\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
    assert!(read.is_err(), "hang answered: {read:?}");
    // The server keeps serving others meanwhile.
    assert_eq!(get(server.addr, "/json").await.status(), 200);
}

#[tokio::test]
async fn close_mid_headers_cuts_the_header_block() {
    let server = FixtureServer::start().await;
    let reply = get(server.addr, "/close-mid-headers?x=1").await;
    assert_eq!(reply.text, "HTTP/1.1 200 OK\r\nContent-Ty");
}

#[tokio::test]
async fn endless_never_ends() {
    let server = FixtureServer::start().await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /endless HTTP/1.1\r\nhost: fixture\r\n\r\n")
        .await
        .expect("write");
    let mut seen = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while seen.len() < 4 * 1024 * 1024 {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("more bytes keep coming")
            .expect("read");
        assert_ne!(n, 0, "endless body ended");
        seen.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{}", &text[..100]);
    assert!(
        text.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{}",
        &text[..200]
    );
    assert!(text.contains(&"x".repeat(1000)));
}

#[tokio::test]
async fn big_sends_exactly_that_many_bytes() {
    let server = FixtureServer::start().await;
    let reply = get(server.addr, "/big/100000").await;
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.header("content-length"), Some("100000"));
    assert_eq!(reply.header("transfer-encoding"), None);
    assert_eq!(reply.body().len(), 100_000);
    assert!(reply.body().bytes().all(|byte| byte == b'x'));
    let reply = get(server.addr, "/big/0").await;
    assert_eq!(reply.header("content-length"), Some("0"));
    assert_eq!(reply.body(), "");
}

#[tokio::test]
async fn redirect_chains_down_to_json() {
    let server = FixtureServer::start().await;
    let reply = get(server.addr, "/redirect/3").await;
    assert_eq!(reply.status(), 302);
    assert_eq!(reply.header("location"), Some("/redirect/2"));
    let reply = get(server.addr, "/redirect/1").await;
    assert_eq!(reply.status(), 302);
    assert_eq!(reply.header("location"), Some("/json"));
    let reply = get(server.addr, "/redirect/0").await;
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.json()["n"], 42);
}

#[tokio::test]
async fn cookie_routes_set_and_require_the_token() {
    let server = FixtureServer::start().await;
    let reply = get(server.addr, "/set-cookie").await;
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.header("set-cookie"), Some("token=abc; Path=/"));
    assert_eq!(get(server.addr, "/needs-cookie").await.status(), 401);
    let reply = exchange(
        server.addr,
        "GET",
        "/needs-cookie",
        "cookie: a=b; token=abc\r\n",
        "",
    )
    .await;
    assert_eq!(reply.status(), 200);
    let reply = exchange(
        server.addr,
        "GET",
        "/needs-cookie",
        "cookie: token=abd\r\n",
        "",
    )
    .await;
    assert_eq!(reply.status(), 401);
}

#[tokio::test]
async fn flaky_fails_n_times_per_key_then_succeeds() {
    let server = FixtureServer::start().await;
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(get(server.addr, "/flaky/a/2").await.status());
        }
        statuses
    };
    assert_eq!(statuses, [503, 503, 200, 200]);
    let reply = get(server.addr, "/flaky/b/1").await;
    assert_eq!(reply.status(), 503);
    assert_eq!(reply.header("retry-after"), Some("0"));
    assert_eq!(reply.json(), json!({"attempt": 1, "ok": false}));
    assert_eq!(get(server.addr, "/flaky/b/1").await.json()["attempt"], 2);
    // Counters belong to one server.
    let other = FixtureServer::start().await;
    assert_eq!(get(other.addr, "/flaky/a/2").await.status(), 503);
}

#[tokio::test]
async fn sse_basic_sends_three_spaced_events_then_closes() {
    let server = FixtureServer::start().await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /sse/basic HTTP/1.1\r\nhost: fixture\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("stream ends within 5 s")
            .expect("read");
        if n == 0 {
            break;
        }
        let part = String::from_utf8_lossy(&chunk[..n]).into_owned();
        if part.contains("event: tick") {
            arrivals.push(started.elapsed());
        }
        text.push_str(&part);
    }
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    for n in 1..=3 {
        assert!(
            text.contains(&format!("id: {n}\nevent: tick\ndata: {{\"n\":{n}}}\n\n")),
            "{text}"
        );
    }
    assert_eq!(arrivals.len(), 3, "events arrived together: {text:?}");
    assert!(arrivals[2].saturating_sub(arrivals[0]) >= Duration::from_millis(35));
}

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let server = FixtureServer::start().await;
    let reply = get(server.addr, "/nothing/here").await;
    assert_eq!(reply.status(), 404);
    assert_eq!(reply.json()["status"], 404);
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let server = FixtureServer::start().await;
    let addr = server.addr;
    drop(server);
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "{addr} still accepts connections");
}

#[tokio::test]
async fn the_demo_server_is_re_exported() {
    let demo = DemoServer::start("127.0.0.1:0".parse().expect("addr"), Flavor::Asgi)
        .await
        .expect("demo starts");
    let reply = get(demo.addr, "/health/").await;
    assert_eq!(reply.json()["container_type"], "asgi");
    demo.shutdown().await;
}
