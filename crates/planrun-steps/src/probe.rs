//! Readiness probes shared by `exec` (a background process's `ready`) and
//! `wait`: does a TCP address accept connections, does an HTTP URL answer with
//! a 2xx or 3xx status, and the polling loop around them.
//!
//! A probe is one attempt with its own short time limit. This module must not
//! keep connections, cookies or clients between attempts: a probe sees the
//! system the way a fresh client would.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest a single attempt may take; the caller's deadline bounds the rest.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(2);

/// What to wait for.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A TCP address (`127.0.0.1:8080`, `localhost:5432`).
    Tcp(String),
    /// An HTTP(S) URL that must answer 2xx/3xx.
    Http(String),
}

impl Target {
    /// How the target reads in messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Target::Tcp(addr) => format!("`{addr}` accepting connections"),
            Target::Http(url) => format!("`{url}` answering 2xx/3xx"),
        }
    }

    /// One attempt; `Err` says why the target is not ready yet.
    pub(crate) async fn check(&self, remaining: Duration) -> Result<(), String> {
        let limit = remaining.min(ATTEMPT_LIMIT);
        match self {
            Target::Tcp(addr) => tcp(addr, limit).await,
            Target::Http(url) => http(url, limit).await,
        }
    }
}

/// How a poll ended without the target becoming ready.
#[derive(Debug)]
pub(crate) struct NotReady {
    /// How many attempts were made.
    pub(crate) attempts: u64,
    /// Why the last attempt failed.
    pub(crate) last_error: String,
}

/// Checks `target` every `interval` until it is ready or `limit` has passed;
/// returns the number of attempts.
pub(crate) async fn poll(
    target: &Target,
    interval: Duration,
    limit: Duration,
) -> Result<u64, NotReady> {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let remaining = limit.saturating_sub(started.elapsed());
        match target.check(remaining).await {
            Ok(()) => return Ok(attempts),
            Err(last_error) => {
                let remaining = limit.saturating_sub(started.elapsed());
                if remaining.is_zero() {
                    return Err(NotReady {
                        attempts,
                        last_error,
                    });
                }
                tokio::time::sleep(interval.min(remaining)).await;
            }
        }
    }
}

/// Whether `addr` accepts a TCP connection within `limit`.
pub(crate) async fn tcp(addr: &str, limit: Duration) -> Result<(), String> {
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(err)) => Err(io_reason(&err)),
        Err(_) => Err(String::from("no answer to the connection attempt")),
    }
}

/// Whether `url` answers with a 2xx or 3xx status within `limit`.
pub(crate) async fn http(url: &str, limit: Duration) -> Result<(), String> {
    let status = match tokio::time::timeout(limit, status_of(url)).await {
        Ok(result) => result?,
        Err(_) => return Err(String::from("no answer within the attempt's time limit")),
    };
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("answered with status {status}"))
    }
}

async fn status_of(url: &str) -> Result<u16, String> {
    if let Some(rest) = url.strip_prefix("http://") {
        return plain_http_status(rest).await;
    }
    if url.starts_with("https://") {
        return tls_http_status(url).await;
    }
    Err(format!("`{url}` is not an http:// or https:// URL"))
}

/// A bare HTTP/1.1 GET over TCP: enough to read a status line, and no client
/// state that could make a probe succeed where a fresh client would not.
async fn plain_http_status(rest: &str) -> Result<u16, String> {
    let (authority, target) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let target = target.split('#').next().unwrap_or("/");
    let target = if target.starts_with('?') {
        format!("/{target}")
    } else if target.is_empty() {
        String::from("/")
    } else {
        target.to_string()
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.is_empty() {
        return Err(String::from("the URL has no host"));
    }
    let has_port = match host.rfind(']') {
        Some(bracket) => host[bracket..].contains(':'),
        None => host.contains(':'),
    };
    let addr = if has_port {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let mut stream = TcpStream::connect(&addr).await.map_err(|e| io_reason(&e))?;
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: planrun-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| io_reason(&e))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf).await.map_err(|e| io_reason(&e))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|s| s.parse::<u16>().ok()),
    ) {
        (Some(version), Some(status)) if version.starts_with("HTTP/") => Ok(status),
        _ if head.is_empty() => Err(String::from("the connection closed without an answer")),
        _ => Err(format!(
            "answered something that is not HTTP: `{}`",
            line.trim()
        )),
    }
}

#[cfg(feature = "http")]
async fn tls_http_status(url: &str) -> Result<u16, String> {
    crate::install_crypto_provider();
    // a probe asks "is it up", not "is its certificate right": that is for
    // the http steps that follow
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("cannot build an HTTPS client: {e}"))?;
    let response = client.get(url).send().await.map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    })?;
    Ok(response.status().as_u16())
}

#[cfg(not(feature = "http"))]
async fn tls_http_status(url: &str) -> Result<u16, String> {
    Err(format!(
        "`{url}` needs TLS, and this planrun was built without the `http` feature"
    ))
}

fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => String::from("connection refused"),
        std::io::ErrorKind::ConnectionReset => String::from("connection reset"),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn answer_once(listener: TcpListener, response: &'static str) {
        if let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(response.as_bytes()).await;
        }
    }

    #[tokio::test]
    async fn http_probe_reads_the_status_line() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(answer_once(listener, "HTTP/1.1 204 No Content\r\n\r\n"));
        let url = format!("http://127.0.0.1:{port}/health?x=1");
        assert_eq!(http(&url, ATTEMPT_LIMIT).await, Ok(()));
    }

    #[tokio::test]
    async fn http_probe_rejects_5xx() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(answer_once(listener, "HTTP/1.1 503 Busy\r\n\r\n"));
        let url = format!("http://127.0.0.1:{port}");
        assert_eq!(
            http(&url, ATTEMPT_LIMIT).await,
            Err(String::from("answered with status 503"))
        );
    }

    #[tokio::test]
    async fn tcp_probe_reports_refusal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        assert_eq!(
            tcp(&addr, ATTEMPT_LIMIT).await,
            Err(String::from("connection refused"))
        );
    }

    #[tokio::test]
    async fn poll_gives_up_after_the_limit() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let started = Instant::now();
        let err = poll(
            &Target::Tcp(addr),
            Duration::from_millis(20),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(err.attempts >= 2, "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
