//! Readiness probes shared by `exec` (a background process's `ready`),
//! `docker` (a container's `ready`) and `wait`: does a TCP address accept
//! connections, does an HTTP URL answer with a 2xx or 3xx status, does a
//! line of output match, and the polling loop around them.
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

    /// One attempt, given the time left; `Err` says why the target is not
    /// ready yet.
    pub(crate) async fn check(&self, remaining: Duration) -> Result<(), Failure> {
        let limit = remaining.min(ATTEMPT_LIMIT);
        let attempt = match self {
            Target::Tcp(addr) => tcp(addr, limit).await,
            Target::Http(url) => http(url, limit).await,
        };
        attempt.map_err(|(reason, timed_out)| Failure {
            reason,
            cut_short: timed_out && limit < ATTEMPT_LIMIT,
        })
    }
}

/// Why one attempt failed.
#[derive(Debug)]
pub(crate) struct Failure {
    reason: String,
    /// The attempt ran out of the caller's time, not its own.
    cut_short: bool,
}

/// The most telling reason a target was not ready: a last attempt cut short
/// by the deadline says less than the full attempt before it.
#[derive(Debug, Default)]
pub(crate) struct LastFailure(Option<String>);

impl LastFailure {
    /// Notes a failed attempt.
    pub(crate) fn record(&mut self, failure: Failure) {
        if !(failure.cut_short && self.0.is_some()) {
            self.0 = Some(failure.reason);
        }
    }

    /// The reason to show, if any attempt failed.
    pub(crate) fn reason(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// How a poll ended without the target becoming ready.
#[cfg_attr(not(feature = "wait"), allow(dead_code))]
#[derive(Debug)]
pub(crate) struct NotReady {
    /// How many attempts were made.
    pub(crate) attempts: u64,
    /// Why the last attempt failed.
    pub(crate) last_error: String,
}

/// Checks `target` every `interval` until it is ready or `limit` has passed;
/// returns the number of attempts.
#[cfg_attr(not(feature = "wait"), allow(dead_code))]
pub(crate) async fn poll(
    target: &Target,
    interval: Duration,
    limit: Duration,
) -> Result<u64, NotReady> {
    let started = Instant::now();
    let mut attempts = 0;
    let mut last = LastFailure::default();
    loop {
        attempts += 1;
        let remaining = limit.saturating_sub(started.elapsed());
        match target.check(remaining).await {
            Ok(()) => return Ok(attempts),
            Err(failure) => {
                last.record(failure);
                let remaining = limit.saturating_sub(started.elapsed());
                if remaining.is_zero() {
                    return Err(NotReady {
                        attempts,
                        last_error: last.reason().unwrap_or_default().to_string(),
                    });
                }
                tokio::time::sleep(interval.min(remaining)).await;
            }
        }
    }
}

/// Why an attempt failed, and whether it ran out of time.
type Attempt = Result<(), (String, bool)>;

/// Whether `addr` accepts a TCP connection within `limit`.
async fn tcp(addr: &str, limit: Duration) -> Attempt {
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => Ok(()),
        Ok(Err(err)) => Err((io_reason(&err), false)),
        Err(_) => Err((String::from("no answer to the connection attempt"), true)),
    }
}

/// Whether `url` answers with a 2xx or 3xx status within `limit`.
async fn http(url: &str, limit: Duration) -> Attempt {
    let status = match tokio::time::timeout(limit, status_of(url)).await {
        Ok(result) => result.map_err(|reason| (reason, false))?,
        Err(_) => {
            return Err((
                String::from("no answer within the attempt's time limit"),
                true,
            ));
        }
    };
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err((format!("answered with status {status}"), false))
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
#[allow(
    clippy::unused_async,
    reason = "the same signature as with the `http` feature"
)]
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

/// The first line of output that matched the `ready.log` pattern.
#[cfg(any(feature = "exec", feature = "docker"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadyMatch {
    /// The whole line, without its line ending.
    pub(crate) line: String,
    /// The groups by number (`"0"` is the whole match, then `"1"`, `"2"`, …)
    /// and by name; a group that took no part in the match is `null`.
    pub(crate) groups: serde_json::Map<String, serde_json::Value>,
}

#[cfg(any(feature = "exec", feature = "docker"))]
impl ReadyMatch {
    /// The match of `pattern` in `line`, if it matches.
    pub(crate) fn find(pattern: &regex::Regex, line: &str) -> Option<Self> {
        let found = pattern.captures(line)?;
        let mut groups = serde_json::Map::new();
        for (index, name) in pattern.capture_names().enumerate() {
            let text = found
                .get(index)
                .map_or(serde_json::Value::Null, |m| m.as_str().into());
            if let Some(name) = name {
                groups.insert(name.to_string(), text.clone());
            }
            groups.insert(index.to_string(), text);
        }
        Some(Self {
            line: line.to_string(),
            groups,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Catches a hang only (polling would otherwise go on forever); not a speed check.
    const HANG_GUARD: Duration = Duration::from_secs(20);

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
            Err((String::from("answered with status 503"), false))
        );
    }

    #[tokio::test]
    async fn tcp_probe_reports_refusal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        assert_eq!(
            tcp(&addr, ATTEMPT_LIMIT).await,
            Err((String::from("connection refused"), false))
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
        assert_eq!(err.last_error, "connection refused");
        assert!(started.elapsed() < HANG_GUARD);
    }

    #[test]
    fn a_cut_short_attempt_does_not_hide_the_real_reason() {
        let mut last = LastFailure::default();
        last.record(Failure {
            reason: String::from("answered with status 503"),
            cut_short: false,
        });
        last.record(Failure {
            reason: String::from("no answer"),
            cut_short: true,
        });
        assert_eq!(last.reason(), Some("answered with status 503"));
        last.record(Failure {
            reason: String::from("connection refused"),
            cut_short: false,
        });
        assert_eq!(last.reason(), Some("connection refused"));
    }
}
