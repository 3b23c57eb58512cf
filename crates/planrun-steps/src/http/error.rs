//! Turning reqwest's errors into messages a QA engineer can act on: what
//! failed (connect, DNS, TLS, timeout, a connection closed mid-response, a
//! body that would not decode), for which URL, and what to check: the
//! variables the URL was built from, as the spec wrote them ([`url_origin`]).
//!
//! This module must not decide whether a response is a failure: a 500 is a
//! result document, not an error.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use planrun_runner::executor::StepError;
use planrun_spec::duration::human;
use planrun_spec::template::{BUILTIN_NAMES, Template};

use super::BodyRead;

/// The help of every failed TLS handshake (`http`, `sse`, `ws`).
pub(crate) const TLS_HELP: &str = "for a test system with its own certificate authority set `ca_cert = \"path/to/ca.pem\"`, or `insecure = true` to skip verification";

/// The error and all its sources, joined with `: `, minus repeats.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        // reqwest repeats its source's text in its own message, and adds the URL
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

fn io_kind(err: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        current = e.source();
    }
    None
}

/// Whether the process ran out of file descriptors (`EMFILE`).
fn too_many_open_files(err: &(dyn StdError + 'static)) -> bool {
    const EMFILE: i32 = 24;
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.raw_os_error() == Some(EMFILE)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The hint for a step that ran out of file descriptors, naming the limit.
fn open_files_help() -> String {
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, hard)) => format!(
            "planrun may hold {soft} open files at once (the system's hard limit is {hard}): run fewer connections at once (`concurrency`), or raise the limit (`ulimit -n`)"
        ),
        Err(_) => String::from(
            "run fewer connections at once (`concurrency`), or raise the open-file limit (`ulimit -n`)",
        ),
    }
}

/// The rustls error in a chain, also one inside (nested) `io::Error`s,
/// whose `source` skips the error they wrap.
fn tls_cause<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    fn inside<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let wrapped: &(dyn StdError + 'static) = e.downcast_ref::<io::Error>()?.get_ref()?;
        inside(wrapped)
    }
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(tls) = inside(e) {
            return Some(tls);
        }
        current = e.source();
    }
    None
}

/// A failed TLS handshake with `url`: a certificate without a trusted
/// issuer says why (self-signed, or which authority) and what to do.
pub(crate) fn tls_failure(url: &str, tls: &rustls::Error) -> StepError {
    if let Some(why) = super::untrusted::untrusted(tls) {
        return StepError::new(format!("TLS handshake with `{url}` failed: {why}"))
            .help(why.help());
    }
    StepError::new(format!("TLS handshake with `{url}` failed: {tls}")).help(TLS_HELP)
}

/// The most specific text of the chain (its deepest source).
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// What to check when a URL cannot be reached, from the URL as the spec
/// wrote it: the variables and captures its template read (`` `asgi_url` ``,
/// `` `env.API` and `login.host` ``), or "the URL" when it was written
/// literally (or is not known). The executor sees only the rendered URL, so
/// naming `base_url` there would be a guess.
pub(crate) fn url_origin(written: Option<&str>) -> String {
    let names: Vec<String> = written
        .filter(|w| planrun_spec::is_template(w))
        .and_then(|w| Template::parse(w, 0..0).ok())
        .map(|t| {
            t.roots()
                .filter_map(|(root, field)| match field {
                    Some(field) => Some(format!("`{root}.{field}`")),
                    None if BUILTIN_NAMES.contains(&root) => None,
                    None => Some(format!("`{root}`")),
                })
                .collect()
        })
        .unwrap_or_default();
    match names.as_slice() {
        [] => String::from("the URL"),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Why sending a request or reading its response failed. `origin` is what to
/// check when the server cannot be reached ([`url_origin`]).
pub(crate) fn request_error(
    err: &reqwest::Error,
    url: &str,
    origin: &str,
    timeout: Duration,
) -> StepError {
    let text = chain(err);
    let lower = text.to_ascii_lowercase();
    if err.is_timeout() {
        return StepError::new(format!(
            "`{url}` did not answer within {}",
            planrun_spec::duration::Dur(timeout)
        ))
        .help("is the server overloaded or stuck? raise the step's `timeout` if it is just slow");
    }
    if err.is_redirect() {
        return StepError::new(format!(
            "cannot follow the redirects of `{url}`: {}",
            root_cause(err)
        ))
        .help(
            "raise `max_redirects`, or set `follow_redirects = false` to check the redirect itself",
        );
    }
    if let Some(tls) = tls_cause(err) {
        return tls_failure(url, tls);
    }
    if too_many_open_files(err) {
        return StepError::new(format!("cannot connect to `{url}`: too many open files"))
            .help(open_files_help());
    }
    if err.is_connect() {
        if io_kind(err) == Some(io::ErrorKind::ConnectionRefused)
            || lower.contains("connection refused")
        {
            return StepError::new(format!("cannot connect to `{url}`: connection refused"))
                .help(format!("is the server running? check {origin}"));
        }
        if lower.contains("dns error")
            || lower.contains("failed to lookup address")
            || lower.contains("name or service not known")
        {
            return StepError::new(format!(
                "cannot connect to `{url}`: the host name does not resolve ({})",
                root_cause(err)
            ))
            .help(format!("check the host name in {origin}"));
        }
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            return StepError::new(format!(
                "TLS handshake with `{url}` failed: {}",
                root_cause(err)
            ))
            .help(TLS_HELP);
        }
        return StepError::new(format!("cannot connect to `{url}`: {}", root_cause(err)))
            .help(format!(
                "is the server running and reachable from here? check {origin}"
            ));
    }
    if lower.contains("connection closed before message completed")
        || lower.contains("incomplete message")
    {
        // hyper says the same of an empty reply and of one cut inside its
        // headers: the message covers both
        return StepError::new(format!(
            "`{url}` closed the connection before its response headers were complete: no status line came, or only part of the headers"
        ))
        .help("the server crashed or dropped the request (an empty reply); check its logs");
    }
    if lower.contains("connection reset") || io_kind(err) == Some(io::ErrorKind::ConnectionReset) {
        return StepError::new(format!("`{url}` reset the connection"))
            .help("the server crashed or dropped the request; check its logs");
    }
    if err.is_body() || err.is_decode() {
        // planrun does not decompress: reqwest calls any failed body read a
        // decoding error
        return StepError::new(format!(
            "reading the response body of `{url}` failed: {}",
            root_cause(err)
        ));
    }
    if lower.contains("invalid http")
        || lower.contains("invalid uri")
        || lower.contains("message head is too large")
    {
        return StepError::new(format!(
            "`{url}` answered with something that is not valid HTTP: {}",
            root_cause(err)
        ));
    }
    StepError::new(format!("request to `{url}` failed: {text}"))
}

/// How far a response body came before it failed.
pub(crate) struct BodySoFar {
    /// Bytes received.
    pub(crate) received: u64,
    /// The `Content-Length`, if any.
    pub(crate) declared: Option<u64>,
    /// Whether the body came in chunked encoding.
    pub(crate) chunked: bool,
}

impl BodySoFar {
    /// `11 of 100 bytes`, `11 bytes`.
    fn bytes(&self) -> String {
        match self.declared {
            Some(declared) => format!("{} of {declared} bytes", self.received),
            None if self.received == 1 => String::from("1 byte"),
            None => format!("{} bytes", self.received),
        }
    }
}

/// A response body that stopped coming: its headers came in time, then the
/// time limit ran out in the middle of the body.
pub(crate) fn body_stalled(read: &BodyRead<'_>, so_far: &BodySoFar) -> StepError {
    StepError::new(format!(
        "the response body of `{}` stalled after {}: the headers came after {}, then the time limit ({}) ran out before the rest of the body",
        read.url,
        so_far.bytes(),
        human(read.headers_after),
        human(read.limit),
    ))
    .help("is the server stuck while writing the body? raise the step's `timeout` if it is just slow")
}

/// Why reading a response body failed once its headers had come: it
/// stalled, the connection closed or was reset before its end, or another
/// failure, each with how far the body came.
pub(crate) fn body_failed(err: &reqwest::Error, read: &BodyRead<'_>, so_far: &BodySoFar) -> StepError {
    if err.is_timeout() {
        return body_stalled(read, so_far);
    }
    let url = read.url;
    let text = chain(err).to_ascii_lowercase();
    let closed = text.contains("end of file before message length reached")
        || text.contains("incomplete message")
        || text.contains("connection closed before message completed")
        || text.contains("unexpected eof");
    if closed {
        let before = if so_far.declared.is_none() && so_far.chunked {
            ", before the last chunk of its chunked encoding"
        } else {
            ""
        };
        return StepError::new(format!(
            "the response body of `{url}` ended after {}{before} (the connection closed)",
            so_far.bytes()
        ))
        .help("the server closed the connection while sending the body: did it crash, or a proxy cut the response? check its logs");
    }
    if text.contains("connection reset") || io_kind(err) == Some(io::ErrorKind::ConnectionReset) {
        return StepError::new(format!(
            "`{url}` reset the connection after {} of the response body",
            so_far.bytes()
        ))
        .help("the server crashed or dropped the request; check its logs");
    }
    StepError::new(format!(
        "reading the response body of `{url}` failed after {}: {}",
        so_far.bytes(),
        root_cause(err)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_files_is_recognised_through_the_error_chain() {
        #[derive(Debug)]
        struct Wrapper(io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl StdError for Wrapper {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        assert!(too_many_open_files(&Wrapper(io::Error::from_raw_os_error(24))));
        assert!(!too_many_open_files(&Wrapper(io::Error::from(
            io::ErrorKind::ConnectionRefused
        ))));
        // the process's limit was raised to the hard one at start, and is named
        let (soft, _) = rlimit::Resource::NOFILE.get().expect("getrlimit");
        assert!(open_files_help().contains(&soft.to_string()));
    }

    #[test]
    fn the_origin_names_what_the_url_template_read() {
        assert_eq!(url_origin(Some("{{ asgi_url }}/health/")), "`asgi_url`");
        assert_eq!(
            url_origin(Some("http://{{ env.HOST }}:{{ port }}/{{ uuid() }}")),
            "`env.HOST` and `port`"
        );
        assert_eq!(
            url_origin(Some("{{ login.base }}/x/{{ a }}{{ b }}")),
            "`a`, `b` and `login.base`"
        );
        assert_eq!(url_origin(Some("http://127.0.0.1:9/")), "the URL");
        assert_eq!(url_origin(None), "the URL");
    }
}
