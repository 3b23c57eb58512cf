//! The configuration of each step kind, as typed structs.
//!
//! The spec crate owns these types so that `planrun validate` and the JSON
//! Schema know every key of every kind; executors in `planrun-steps` read the
//! rendered configuration into the same types with [`crate::de::from_value`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::{ByteSize, Dur};

/// What a kind's own check finds wrong, and where in the configuration it
/// belongs, so that a diagnostic can point there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// What is wrong (lowercase, no trailing period).
    pub message: String,
    /// Where.
    pub at: ConfigPlace,
}

/// The part of a step's configuration a [`ConfigProblem`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigPlace {
    /// The configuration as a whole.
    Whole,
    /// The value of one key.
    Key(&'static str),
    /// One item of a `ws` step's `conversation`.
    Item(usize),
}

impl ConfigProblem {
    /// A problem of the configuration as a whole.
    pub fn whole(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            at: ConfigPlace::Whole,
        }
    }

    /// A problem of one key's value.
    pub fn key(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            at: ConfigPlace::Key(key),
        }
    }

    /// A problem of a conversation item (the message says which).
    pub fn item(index: usize, message: impl std::fmt::Display) -> Self {
        Self {
            message: format!("conversation item {index}: {message}"),
            at: ConfigPlace::Item(index),
        }
    }
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The method and URL of a request step, from its shorthand keys
/// (`get = URL`, …) or `method` + `url`. `kind` and `example` make the
/// message for neither.
fn method_and_url<'a>(
    kind: &str,
    example: &str,
    shorthand: &[(&str, &'a Option<String>)],
    method: Option<&str>,
    url: Option<&'a str>,
) -> Result<(String, &'a str), ConfigProblem> {
    let set: Vec<(&str, &str)> = shorthand
        .iter()
        .filter_map(|(m, u)| u.as_deref().map(|u| (*m, u)))
        .collect();
    match (set.as_slice(), method, url) {
        ([(m, u)], None, None) => Ok(((*m).to_string(), u)),
        ([], Some(m), Some(u)) => Ok((m.to_ascii_uppercase(), u)),
        ([], None, Some(u)) => Ok((String::from("GET"), u)),
        ([], Some(_), None) => Err(ConfigProblem::key("method", "`method` needs a `url`")),
        ([], None, None) => Err(ConfigProblem::whole(format!(
            "an {kind} step needs a method and a URL, e.g. {example}"
        ))),
        _ => {
            let keys: Vec<String> = shorthand
                .iter()
                .map(|(m, _)| m.to_ascii_lowercase())
                .collect();
            Err(ConfigProblem::whole(format!(
                "set exactly one of {}, or method + url",
                keys.join(", ")
            )))
        }
    }
}

/// `http`: one HTTP request.
///
/// The method is a key whose value is the URL (`get = "{{ base_url }}/health/"`),
/// or `method` plus `url` for any other method.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// GET this URL.
    pub get: Option<String>,
    /// POST to this URL.
    pub post: Option<String>,
    /// PUT to this URL.
    pub put: Option<String>,
    /// PATCH this URL.
    pub patch: Option<String>,
    /// DELETE this URL.
    pub delete: Option<String>,
    /// HEAD this URL.
    pub head: Option<String>,
    /// OPTIONS on this URL.
    pub options: Option<String>,
    /// Any method (with `url`).
    pub method: Option<String>,
    /// The URL (with `method`).
    pub url: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters added to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, serde_json::Value>,
    /// A JSON body (sets `Content-Type: application/json`).
    pub json: Option<serde_json::Value>,
    /// A form body (`application/x-www-form-urlencoded`).
    pub form: Option<BTreeMap<String, serde_json::Value>>,
    /// A multipart body: text fields, or `{ file = "path", content_type = "…" }`.
    pub multipart: Option<BTreeMap<String, MultipartField>>,
    /// A raw body.
    pub body: Option<String>,
    /// Extra cookies for this request (the spec's cookie jar is sent anyway).
    #[serde(default)]
    pub cookies: BTreeMap<String, String>,
    /// Follow redirects (default `true`).
    pub follow_redirects: Option<bool>,
    /// Most redirects followed (default 10).
    pub max_redirects: Option<usize>,
    /// Accept any TLS certificate. Only for test systems.
    #[serde(default)]
    pub insecure: bool,
    /// A PEM file of extra CA certificates to trust.
    pub ca_cert: Option<String>,
    /// Time limit of the request (default: the step's timeout).
    pub timeout: Option<Dur>,
    /// Cap on the body read into memory (default 16 MiB).
    pub max_body: Option<ByteSize>,
}

/// A multipart field: text, or a file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MultipartField {
    /// Text content.
    pub text: Option<String>,
    /// A file to upload.
    pub file: Option<String>,
    /// The part's content type.
    pub content_type: Option<String>,
    /// The file name sent (default: the file's name).
    pub filename: Option<String>,
}

impl HttpConfig {
    /// The method and URL, or what is wrong with them.
    pub fn method_url(&self) -> Result<(String, &str), ConfigProblem> {
        method_and_url(
            "http",
            "`get = \"{{ base_url }}/health/\"`",
            &[
                ("GET", &self.get),
                ("POST", &self.post),
                ("PUT", &self.put),
                ("PATCH", &self.patch),
                ("DELETE", &self.delete),
                ("HEAD", &self.head),
                ("OPTIONS", &self.options),
            ],
            self.method.as_deref(),
            self.url.as_deref(),
        )
    }

    /// How many body kinds are set (at most one is allowed).
    pub fn body_count(&self) -> usize {
        [
            self.json.is_some(),
            self.form.is_some(),
            self.multipart.is_some(),
            self.body.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count()
    }
}

/// `exec`: run a process, in the foreground or in the background.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program and its arguments, run without a shell.
    pub cmd: Option<Vec<String>>,
    /// A command line run by `/bin/sh -c`.
    pub shell: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory (relative paths are relative to the spec file).
    pub cwd: Option<String>,
    /// Text written to standard input.
    pub stdin: Option<String>,
    /// Keep it running for the rest of the spec; stopped when the spec ends.
    #[serde(default)]
    pub background: bool,
    /// When a background process counts as ready.
    pub ready: Option<Readiness>,
    /// How long to wait for readiness (default 30s).
    pub ready_timeout: Option<Dur>,
    /// Grace period between SIGTERM and SIGKILL when stopping (default 5s).
    pub stop_timeout: Option<Dur>,
}

impl ExecConfig {
    /// What is wrong with the command, if anything.
    pub fn check(&self) -> Result<(), ConfigProblem> {
        match (&self.cmd, &self.shell) {
            (Some(cmd), None) if cmd.is_empty() => {
                return Err(ConfigProblem::key("cmd", "`cmd` is empty"));
            }
            (Some(_), None) | (None, Some(_)) => {}
            (None, None) => {
                return Err(ConfigProblem::whole(
                    "an exec step needs `cmd = [\"program\", \"arg\"]` or `shell = \"command line\"`",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(ConfigProblem::whole("set `cmd` or `shell`, not both"));
            }
        }
        if self.ready.is_some() && !self.background {
            return Err(ConfigProblem::key(
                "ready",
                "`ready` only applies with `background = true`",
            ));
        }
        Ok(())
    }
}

/// When something counts as ready. Exactly one key.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    /// A TCP address that accepts connections (`127.0.0.1:8080`).
    pub tcp: Option<String>,
    /// An HTTP URL that answers with a 2xx or 3xx status.
    pub http: Option<String>,
    /// A regular expression that a line of the process's output matches.
    pub log: Option<String>,
    /// Pause between checks (default 100ms).
    pub interval: Option<Dur>,
}

impl Readiness {
    /// What is wrong, if anything.
    pub fn check(&self) -> Result<(), ConfigProblem> {
        let n = [self.tcp.is_some(), self.http.is_some(), self.log.is_some()]
            .into_iter()
            .filter(|b| *b)
            .count();
        if n == 1 {
            Ok(())
        } else {
            Err(ConfigProblem::whole(
                "set exactly one of `tcp`, `http` or `log`",
            ))
        }
    }
}

/// `wait`: a pause (`wait = "2s"`), or a wait until something is ready.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitConfig {
    /// Pause this long.
    pub duration: Option<Dur>,
    /// Wait until a TCP address accepts connections.
    pub tcp: Option<String>,
    /// Wait until an HTTP URL answers 2xx/3xx.
    pub http: Option<String>,
    /// Pause between checks (default 100ms).
    pub interval: Option<Dur>,
}

impl WaitConfig {
    /// What is wrong, if anything.
    pub fn check(&self) -> Result<(), ConfigProblem> {
        let n = [
            self.duration.is_some(),
            self.tcp.is_some(),
            self.http.is_some(),
        ]
        .into_iter()
        .filter(|b| *b)
        .count();
        if n == 1 {
            Ok(())
        } else {
            Err(ConfigProblem::whole(
                "set exactly one of `duration`, `tcp` or `http` (or write `wait = \"2s\"`)",
            ))
        }
    }
}

/// `sse`: a request whose response is a Server-Sent Events stream, read event
/// by event until the server closes it, an event matches `until`, `listen`
/// runs out or `max_events` arrived.
///
/// The request keys are those of `http` (`get`/`post`/…, `url`, `headers`,
/// `query`, `json`, `form`, `body`, `cookies`, TLS).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SseConfig {
    /// GET this URL.
    pub get: Option<String>,
    /// POST to this URL.
    pub post: Option<String>,
    /// PUT to this URL.
    pub put: Option<String>,
    /// PATCH this URL.
    pub patch: Option<String>,
    /// DELETE this URL.
    pub delete: Option<String>,
    /// Any method (with `url`).
    pub method: Option<String>,
    /// The URL (with `method`, or alone for GET).
    pub url: Option<String>,
    /// Request headers (`Accept: text/event-stream` is added unless set).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters added to the URL.
    #[serde(default)]
    pub query: BTreeMap<String, serde_json::Value>,
    /// A JSON body.
    pub json: Option<serde_json::Value>,
    /// A form body.
    pub form: Option<BTreeMap<String, serde_json::Value>>,
    /// A raw body.
    pub body: Option<String>,
    /// Extra cookies (the spec's cookie jar is sent anyway).
    #[serde(default)]
    pub cookies: BTreeMap<String, String>,
    /// Accept any TLS certificate. Only for test systems.
    #[serde(default)]
    pub insecure: bool,
    /// A PEM file of extra CA certificates to trust.
    pub ca_cert: Option<String>,
    /// Sent as the `Last-Event-ID` header.
    pub last_event_id: Option<String>,
    /// A matcher over an event (`{ type = "done" }`, `{ data = "[DONE]" }`);
    /// the first event that matches ends the stream. A string means "data
    /// equals": `until = "[DONE]"`.
    #[schemars(with = "serde_json::Value")]
    pub until: Option<serde_json::Value>,
    /// Listen this long, then stop reading and check what arrived.
    pub listen: Option<Dur>,
    /// Stop after this many events.
    pub max_events: Option<usize>,
    /// Reconnect when the server closes the stream early (off by default).
    pub reconnect: Option<Reconnect>,
    /// Time limit of the whole stream (default: the step's timeout); a stream
    /// still open then is an error.
    pub timeout: Option<Dur>,
    /// Cap on the bytes of the stream read in all (default 16 MiB).
    pub max_body: Option<ByteSize>,
}

/// How an `sse` step reconnects after the server closed the stream before
/// `until` matched.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reconnect {
    /// Reconnections at most (default 3).
    pub attempts: Option<u32>,
    /// Pause before reconnecting (default: the stream's `retry`, else 1s).
    pub delay: Option<Dur>,
}

impl SseConfig {
    /// The request part as an `http` configuration.
    pub fn request(&self) -> HttpConfig {
        HttpConfig {
            get: self.get.clone(),
            post: self.post.clone(),
            put: self.put.clone(),
            patch: self.patch.clone(),
            delete: self.delete.clone(),
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            query: self.query.clone(),
            json: self.json.clone(),
            form: self.form.clone(),
            body: self.body.clone(),
            cookies: self.cookies.clone(),
            insecure: self.insecure,
            ca_cert: self.ca_cert.clone(),
            timeout: self.timeout,
            max_body: self.max_body,
            ..HttpConfig::default()
        }
    }

    /// What is wrong, if anything.
    pub fn check(&self) -> Result<(), ConfigProblem> {
        method_and_url(
            "sse",
            "`get = \"{{ base_url }}/events/\"`",
            &[
                ("GET", &self.get),
                ("POST", &self.post),
                ("PUT", &self.put),
                ("PATCH", &self.patch),
                ("DELETE", &self.delete),
            ],
            self.method.as_deref(),
            self.url.as_deref(),
        )?;
        if self.request().body_count() > 1 {
            return Err(ConfigProblem::whole(
                "set at most one of `json`, `form`, `body`",
            ));
        }
        if self.max_events == Some(0) {
            return Err(ConfigProblem::key(
                "max_events",
                "`max_events` must be at least 1",
            ));
        }
        Ok(())
    }
}

/// `ws`: a WebSocket connection and a conversation on it.
///
/// `url` opens a connection (`ws://`, `wss://`, or `http://`/`https://`,
/// which mean the same). With `connection = "name"` the connection stays open
/// for later steps, which continue it with `connection = "name"` and no `url`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsConfig {
    /// The URL to connect to.
    pub url: Option<String>,
    /// Keep the connection open under this name, or continue the one opened
    /// under it by an earlier step.
    pub connection: Option<String>,
    /// Handshake headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Extra cookies (the spec's cookie jar is sent anyway).
    #[serde(default)]
    pub cookies: BTreeMap<String, String>,
    /// Subprotocols offered (`Sec-WebSocket-Protocol`).
    #[serde(default)]
    pub subprotocols: Vec<String>,
    /// Accept any TLS certificate. Only for test systems.
    #[serde(default)]
    pub insecure: bool,
    /// A PEM file of extra CA certificates to trust.
    pub ca_cert: Option<String>,
    /// What to do once connected, in order.
    #[serde(default)]
    pub conversation: Vec<WsAction>,
    /// Time limit of an action that waits (default 5s).
    pub action_timeout: Option<Dur>,
    /// Cap on one incoming message (default: the run's `max_body`, 16 MiB
    /// unless `defaults.max_body` says otherwise).
    pub max_message: Option<ByteSize>,
}

/// One action of a WebSocket conversation: exactly one action key, plus
/// options.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WsAction {
    /// Send a text message.
    pub send: Option<String>,
    /// Send a value as JSON text.
    #[schemars(with = "serde_json::Value")]
    pub send_json: Option<serde_json::Value>,
    /// Send a binary message, given as base64.
    pub send_binary: Option<String>,
    /// Wait for a message that matches (a matcher over `{type, text, json,
    /// base64, size}`).
    #[schemars(with = "serde_json::Value")]
    pub expect: Option<serde_json::Value>,
    /// Expect no message for this long.
    pub no_message: Option<Dur>,
    /// Send a ping with this payload and wait for its pong.
    pub ping: Option<String>,
    /// Close the connection: `true`, a code (`1000`), or `{ code, reason }`.
    #[schemars(with = "serde_json::Value")]
    pub close: Option<serde_json::Value>,
    /// Wait for the server to close; a matcher over `{code, reason}` or `true`.
    #[schemars(with = "serde_json::Value")]
    pub expect_close: Option<serde_json::Value>,
    /// Pause this long.
    pub wait: Option<Dur>,
    /// How long this action may wait (default: the step's `action_timeout`).
    pub timeout: Option<Dur>,
    /// With `expect`: pass over messages that do not match (default false:
    /// the next message must match).
    #[serde(default)]
    pub skip: bool,
    /// With `expect`: the name of the reply in the result (`replies.NAME`).
    pub name: Option<String>,
}

impl WsAction {
    /// The action keys, in the order they are documented.
    pub const KEYS: [&'static str; 9] = [
        "send",
        "send_json",
        "send_binary",
        "expect",
        "no_message",
        "ping",
        "close",
        "expect_close",
        "wait",
    ];

    /// The action key that is set, or what is wrong.
    pub fn key(&self) -> Result<&'static str, String> {
        let set = [
            self.send.is_some(),
            self.send_json.is_some(),
            self.send_binary.is_some(),
            self.expect.is_some(),
            self.no_message.is_some(),
            self.ping.is_some(),
            self.close.is_some(),
            self.expect_close.is_some(),
            self.wait.is_some(),
        ];
        let keys: Vec<&'static str> = Self::KEYS
            .iter()
            .zip(set)
            .filter_map(|(k, s)| s.then_some(*k))
            .collect();
        match keys.as_slice() {
            [key] => Ok(key),
            [] => Err(String::from(
                "an action needs one of `send`, `send_json`, `send_binary`, `expect`, `no_message`, `ping`, `close`, `expect_close` or `wait`",
            )),
            many => Err(format!(
                "an action has exactly one action key, this one has {}",
                crate::error::code_list(many.iter())
            )),
        }
    }
}

impl WsConfig {
    /// What is wrong, if anything.
    pub fn check(&self) -> Result<(), ConfigProblem> {
        if self.url.is_none() && self.connection.is_none() {
            return Err(ConfigProblem::whole(
                "a ws step needs a `url`, or `connection` naming one opened by an earlier step",
            ));
        }
        for (i, action) in self.conversation.iter().enumerate() {
            let key = action.key().map_err(|e| ConfigProblem::item(i, e))?;
            if action.skip && key != "expect" {
                return Err(ConfigProblem::item(i, "`skip` only applies to `expect`"));
            }
            if action.timeout.is_some()
                && !matches!(key, "expect" | "ping" | "close" | "expect_close")
            {
                return Err(ConfigProblem::item(
                    i,
                    format!(
                        "`timeout` only applies to actions that wait for the server (`expect`, `ping`, `close`, `expect_close`); `{key}` does not"
                    ),
                ));
            }
            if action.name.is_some() && key != "expect" {
                return Err(ConfigProblem::item(i, "`name` only applies to `expect`"));
            }
        }
        Ok(())
    }
}
