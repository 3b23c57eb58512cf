//! `sse`: a request whose response is a Server-Sent Events stream.

use schemars::JsonSchema;
use serde::Deserialize;

use super::http::request_config;
use super::{ConfigMatcher, ConfigProblem, EvidenceField, Kind, Problems, method_and_url};
use crate::duration::Dur;
use crate::error::{Diagnostic, DiagnosticKind, Diagnostics};
use crate::value::{Value, ValueKind};

/// The `sse` kind.
pub struct Sse;

/// The fields of an event in an `sse` step's result, as `until` and the
/// matchers of `events` see it.
pub const EVENT_FIELDS: &[&str] = &["type", "data", "id", "json", "offset", "retry"];

impl Kind for Sse {
    const KEY: &'static str = "sse";
    const SUMMARY: &'static str = "A request whose response is a Server-Sent Events stream, read event by event: `sse = { get = \"{{ base_url }}/events/\", until = { type = \"done\" } }`.";
    const RESULT_FIELDS: &'static [&'static str] = &[
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
        "body_error",
        "json",
        "duration",
    ];
    const EVIDENCE: &'static [EvidenceField] = &[
        EvidenceField::first("body"),
        EvidenceField::first("body_error"),
        EvidenceField::last("text"),
    ];
    const STREAMS: &'static [(&'static str, &'static str, &'static [&'static str])] =
        &[("events", "an sse event", EVENT_FIELDS)];
    const PATHS: &'static [&'static str] = &["ca_cert"];
    const INSECURE: Option<&'static str> = Some("insecure");
    type Config = SseConfig;

    fn check(config: &SseConfig, problems: &mut Problems) {
        let method = method_and_url(
            "sse",
            "`get = \"{{ base_url }}/events/\"`",
            &[
                ("GET", &config.get),
                ("POST", &config.post),
                ("PUT", &config.put),
                ("PATCH", &config.patch),
                ("DELETE", &config.delete),
            ],
            config.method.as_deref(),
            config.url.as_deref(),
        );
        problems.note(method.map(drop));
        if config.request().body_count() > 1 {
            problems.push(ConfigProblem::whole(
                "set at most one of `json`, `form`, `body`",
            ));
        }
        problems.note(super::http::check_basic_auth(
            config.basic_auth.as_ref(),
            &config.headers,
        ));
        if config.max_events == Some(0) {
            problems.push(ConfigProblem::key(
                "max_events",
                "`max_events` must be at least 1",
            ));
        }
    }

    fn secrets(config: &Value, out: &mut Vec<(String, crate::value::Span)>) {
        super::http::basic_auth_secrets(config, out);
    }

    /// `until` as a table is a matcher over an event; as a string it is the
    /// data of the last event, compared by the executor.
    fn matchers(config: &Value, out: &mut Vec<ConfigMatcher>, diags: &mut Diagnostics) {
        let Some(until) = config.get("until") else {
            return;
        };
        match until.kind {
            ValueKind::Str(_) => {}
            ValueKind::Map(_) => {
                let event = crate::lower::Doc::Fields("an sse event", EVENT_FIELDS);
                if let Some(matcher) = crate::lower::lower_matcher_of(until, event, diags) {
                    out.push(ConfigMatcher {
                        path: String::from("until"),
                        matcher,
                    });
                }
            }
            _ => diags.push(
                Diagnostic::new(
                    DiagnosticKind::InvalidValue,
                    until.span.clone(),
                    format!(
                        "`until` is {}, not the data of the last event or a table matching it",
                        until.type_name()
                    ),
                )
                .label("this value")
                .help("write `until = \"[DONE]\"` (the data) or `until = { type = \"done\" }`"),
            ),
        }
    }
}

request_config! {
    /// The configuration of an `sse` step: a request whose response is a
    /// Server-Sent Events stream, read event by event until the server closes
    /// it, an event matches `until`, `listen` runs out or `max_events` arrived.
    ///
    /// The request keys are those of `http` (`get`/`post`/…, `url`, `headers`,
    /// `query`, `json`, `form`, `body`, `cookies`, TLS); `Accept:
    /// text/event-stream` is added unless set.
    #[schemars(extend(
        "oneOf" = [
            {"required": ["get"]}, {"required": ["post"]}, {"required": ["put"]},
            {"required": ["patch"]}, {"required": ["delete"]}, {"required": ["url"]}
        ],
        "dependentRequired" = {"method": ["url"]}
    ))]
    pub struct SseConfig {
        /// Sent as the `Last-Event-ID` header.
        pub last_event_id: Option<String>,
        /// A matcher over an event (`{ type = "done" }`, `{ data = "[DONE]" }`);
        /// the first event that matches ends the stream. A string means "data
        /// equals": `until = "[DONE]"`.
        #[schemars(
            with = "Option<serde_json::Value>",
            extend(
                "anyOf" = [{"type": "string"}, {"type": "object", "$ref": "#/$defs/Matcher"}],
                "examples" = [{"type": "done"}, "[DONE]"]
            )
        )]
        pub until: Option<serde_json::Value>,
        /// Listen this long, then stop reading and check what arrived.
        pub listen: Option<Dur>,
        /// Stop after this many events.
        #[schemars(range(min = 1))]
        pub max_events: Option<usize>,
        /// Reconnect when the server closes the stream early (off by default).
        pub reconnect: Option<Reconnect>,
    }
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
