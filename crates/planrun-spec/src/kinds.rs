//! The configuration of each step kind, as typed structs.
//!
//! The spec crate owns these types so that `planrun validate` and the JSON
//! Schema know every key of every kind; executors in `planrun-steps` read the
//! rendered configuration into the same types with [`crate::de::from_value`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::{ByteSize, Dur};

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
    pub fn method_url(&self) -> Result<(String, &str), String> {
        let shorthand = [
            ("GET", &self.get),
            ("POST", &self.post),
            ("PUT", &self.put),
            ("PATCH", &self.patch),
            ("DELETE", &self.delete),
            ("HEAD", &self.head),
            ("OPTIONS", &self.options),
        ];
        let set: Vec<_> = shorthand
            .iter()
            .filter_map(|(m, u)| u.as_deref().map(|u| (*m, u)))
            .collect();
        match (set.as_slice(), &self.method, &self.url) {
            ([(m, u)], None, None) => Ok(((*m).to_string(), u)),
            ([], Some(m), Some(u)) => Ok((m.to_ascii_uppercase(), u.as_str())),
            ([], None, Some(u)) => Ok((String::from("GET"), u.as_str())),
            ([], Some(_), None) => Err(String::from("`method` needs a `url`")),
            ([], None, None) => Err(String::from(
                "an http step needs a method and a URL, e.g. `get = \"{{ base_url }}/health/\"`",
            )),
            _ => Err(String::from(
                "set exactly one of get, post, put, patch, delete, head, options, or method + url",
            )),
        }
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
    pub fn check(&self) -> Result<(), String> {
        match (&self.cmd, &self.shell) {
            (Some(cmd), None) if cmd.is_empty() => return Err(String::from("`cmd` is empty")),
            (Some(_), None) | (None, Some(_)) => {}
            (None, None) => {
                return Err(String::from(
                    "an exec step needs `cmd = [\"program\", \"arg\"]` or `shell = \"command line\"`",
                ));
            }
            (Some(_), Some(_)) => return Err(String::from("set `cmd` or `shell`, not both")),
        }
        if self.ready.is_some() && !self.background {
            return Err(String::from(
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
    pub fn check(&self) -> Result<(), String> {
        let n = [self.tcp.is_some(), self.http.is_some(), self.log.is_some()]
            .into_iter()
            .filter(|b| *b)
            .count();
        if n == 1 {
            Ok(())
        } else {
            Err(String::from("set exactly one of `tcp`, `http` or `log`"))
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
    pub fn check(&self) -> Result<(), String> {
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
            Err(String::from(
                "set exactly one of `duration`, `tcp` or `http` (or write `wait = \"2s\"`)",
            ))
        }
    }
}
