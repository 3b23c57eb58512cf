//! `ws`: a WebSocket connection and a conversation on it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ConfigMatcher, ConfigProblem, EvidenceField, Kind, Problems};
use crate::duration::{ByteSize, Dur};
use crate::error::{Diagnostic, DiagnosticKind, Diagnostics};
use crate::value::{Key, Value, ValueKind};

/// The `ws` kind.
pub struct Ws;

/// The fields of a message in a `ws` step's result, as `expect` and the
/// matchers of `messages` and `received` see it (`dir` in `messages` only).
pub const MESSAGE_FIELDS: &[&str] = &["type", "text", "json", "base64", "size", "offset", "dir"];

/// The fields of the close a `ws` step's `expect_close` matches.
pub const CLOSE_FIELDS: &[&str] = &["code", "reason"];

impl Kind for Ws {
    const KEY: &'static str = "ws";
    const SUMMARY: &'static str = "A WebSocket connection and a conversation on it: `ws = { url = \"{{ ws_url }}/ws/chat/\", conversation = [{ send = \"hi\" }, { expect = \"hi\" }] }`.";
    const RESULT_FIELDS: &'static [&'static str] = &[
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
        "duration",
    ];
    const EVIDENCE: &'static [EvidenceField] = &[EvidenceField::last("received")];
    const STREAMS: &'static [(&'static str, &'static str, &'static [&'static str])] = &[
        ("messages", "a ws message", MESSAGE_FIELDS),
        ("received", "a ws message", MESSAGE_FIELDS),
    ];
    const PATHS: &'static [&'static str] = &["ca_cert"];
    const INSECURE: Option<&'static str> = Some("insecure");
    type Config = WsConfig;

    fn check(config: &WsConfig, problems: &mut Problems) {
        config.problems(problems);
    }

    /// Each `expect` and `expect_close` of the conversation: `true` matches
    /// anything (no matcher), a string after `expect` is short for
    /// `{ text = "…" }`.
    fn matchers(config: &Value, out: &mut Vec<ConfigMatcher>, diags: &mut Diagnostics) {
        let items = config
            .get("conversation")
            .and_then(Value::as_seq)
            .unwrap_or_default();
        for (index, item) in items.iter().enumerate() {
            for key in ["expect", "expect_close"] {
                let Some(value) = item.get(key) else {
                    continue;
                };
                let wrapped;
                let value = match &value.kind {
                    ValueKind::Bool(true) => continue,
                    ValueKind::Bool(false) => {
                        let hint = if key == "expect" {
                            "use `no_message = \"1s\"` to check that nothing arrives"
                        } else {
                            "leave the action out, or write `true` or a matcher over `{ code, reason }`"
                        };
                        diags.push(
                            Diagnostic::new(
                                DiagnosticKind::InvalidValue,
                                value.span.clone(),
                                format!(
                                    "conversation item {index}: `{key} = false` checks nothing"
                                ),
                            )
                            .label("this value")
                            .help(hint),
                        );
                        continue;
                    }
                    ValueKind::Str(_) if key == "expect" => {
                        wrapped = Value::new(
                            ValueKind::Map(vec![(
                                Key {
                                    name: String::from("text"),
                                    span: value.span.clone(),
                                },
                                value.clone(),
                            )]),
                            value.span.clone(),
                        );
                        &wrapped
                    }
                    _ => value,
                };
                let doc = if key == "expect" {
                    crate::lower::Doc::Fields("a ws message", MESSAGE_FIELDS)
                } else {
                    crate::lower::Doc::Fields("a ws close", CLOSE_FIELDS)
                };
                if let Some(matcher) = crate::lower::lower_matcher_of(value, doc, diags) {
                    out.push(ConfigMatcher {
                        path: format!("conversation.{index}.{key}"),
                        matcher,
                    });
                }
            }
        }
    }
}

/// The configuration of a `ws` step.
///
/// `url` opens a connection (`ws://`, `wss://`, or `http://`/`https://`,
/// which mean the same). With `connection = "name"` the connection stays open
/// for later steps, which continue it with `connection = "name"` and no `url`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [{"required": ["url"]}, {"required": ["connection"]}]))]
pub struct WsConfig {
    /// The URL to connect to.
    #[schemars(extend("examples" = ["{{ ws_url }}/ws/chat/"]))]
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
    #[schemars(extend("examples" = [[{"send": "hi"}, {"expect": "hi"}, {"close": true}]]))]
    pub conversation: Vec<WsAction>,
    /// Time limit of an action that waits (default 5s).
    pub action_timeout: Option<Dur>,
    /// Cap on one incoming message (default: the run's `max_body`, 16 MiB
    /// unless `defaults.max_body` says otherwise).
    pub max_message: Option<ByteSize>,
    /// A refused handshake (an answer other than 101) is the result, with its
    /// `status`, `headers` and `body`, instead of an error; the conversation
    /// is skipped. For checking that a socket is refused: pair it with
    /// `expect.status`.
    #[serde(default)]
    pub allow_refusal: bool,
}

/// One action of a WebSocket conversation: exactly one action key, plus
/// options.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend(
    "oneOf" = super::one_of_keys(&WsAction::KEYS),
    "dependentRequired" = {"name": ["expect"]},
    "dependentSchemas" = {
        "skip": {"anyOf": [{"required": ["expect"]}, {"properties": {"skip": {"const": false}}}]},
        "timeout": {"anyOf": [
            {"required": ["expect"]}, {"required": ["ping"]},
            {"required": ["close"]}, {"required": ["expect_close"]}
        ]}
    }
))]
pub struct WsAction {
    /// Send a text message.
    pub send: Option<String>,
    /// Send a value as JSON text.
    #[schemars(with = "Option<serde_json::Value>")]
    pub send_json: Option<serde_json::Value>,
    /// Send a binary message, given as base64.
    pub send_binary: Option<String>,
    /// Wait for a message that matches (a matcher over `{type, text, json,
    /// base64, size}`).
    #[schemars(
        with = "Option<serde_json::Value>",
        extend(
            "$ref" = "#/$defs/Matcher",
            "not" = {"const": false},
            "examples" = ["hi", {"json": {"type": "chat_message"}}]
        )
    )]
    pub expect: Option<serde_json::Value>,
    /// Expect no message for this long.
    pub no_message: Option<Dur>,
    /// Send a ping with this payload and wait for its pong.
    pub ping: Option<String>,
    /// Close the connection: `true`, a code (`1000`), or `{ code, reason }`.
    #[schemars(with = "Option<serde_json::Value>")]
    pub close: Option<serde_json::Value>,
    /// Wait for the server to close; a matcher over `{code, reason}` or `true`.
    #[schemars(
        with = "Option<serde_json::Value>",
        extend("$ref" = "#/$defs/Matcher", "not" = {"const": false}, "examples" = [true, {"code": 1000}])
    )]
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
    /// What is wrong, if anything: the first problem.
    pub fn check(&self) -> Result<(), ConfigProblem> {
        let mut problems = Problems::default();
        self.problems(&mut problems);
        problems.first()
    }

    /// Every problem.
    fn problems(&self, problems: &mut Problems) {
        if self.url.is_none() && self.connection.is_none() {
            problems.push(ConfigProblem::whole(
                "a ws step needs a `url`, or `connection` naming one opened by an earlier step",
            ));
        } else if self.allow_refusal && self.url.is_none() {
            problems.push(ConfigProblem::key(
                "allow_refusal",
                "`allow_refusal` applies to the handshake of a step that opens a connection (with `url`); this step continues one",
            ));
        }
        for (i, action) in self.conversation.iter().enumerate() {
            let key = match action.key() {
                Ok(key) => key,
                Err(e) => {
                    problems.push(ConfigProblem::item(i, e));
                    continue;
                }
            };
            if action.skip && key != "expect" {
                problems.push(ConfigProblem::item(i, "`skip` only applies to `expect`"));
            }
            if action.timeout.is_some()
                && !matches!(key, "expect" | "ping" | "close" | "expect_close")
            {
                problems.push(ConfigProblem::item(
                    i,
                    format!(
                        "`timeout` only applies to actions that wait for the server (`expect`, `ping`, `close`, `expect_close`); `{key}` does not"
                    ),
                ));
            }
            if action.name.is_some() && key != "expect" {
                problems.push(ConfigProblem::item(i, "`name` only applies to `expect`"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::ConfigPlace;

    #[test]
    fn allow_refusal_needs_a_handshake() {
        let continues = WsConfig {
            connection: Some(String::from("alice")),
            allow_refusal: true,
            ..WsConfig::default()
        };
        let problem = continues.check().unwrap_err();
        assert_eq!(problem.at, ConfigPlace::Key("allow_refusal"));
        let opens = WsConfig {
            url: Some(String::from("ws://127.0.0.1:1/")),
            ..continues
        };
        assert!(opens.check().is_ok());
    }
}
