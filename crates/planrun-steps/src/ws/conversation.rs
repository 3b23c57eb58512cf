//! The conversation of a `ws` step: its actions read from the configuration
//! (checked before anything connects) and performed in order on a session.
//!
//! Owns what each action waits for and the words of its failure, prefixed
//! with the action ("conversation item 2 (`expect`): …") and pointed at its
//! place in the spec. Must not open or keep connections.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use planrun_runner::executor::{StepError, StepInput};
use planrun_runner::test_matcher;
use planrun_spec::kinds::{WsConfig, end_of};
use planrun_spec::model::Matcher;
use planrun_spec::value::{Span, Value};
use serde_json::{Map, Value as Json, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::session::{AtCap, By, Read, Session};
use super::text::{count, describe_close, describe_message, human};

/// How long an action waits when neither it nor the step says.
const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(5);

/// One action, ready to perform.
#[derive(Debug)]
enum Action {
    Send(String),
    SendBinary(Vec<u8>),
    Expect {
        matcher: Option<Matcher>,
        skip: bool,
        key: String,
        timeout: Duration,
    },
    NoMessage(Duration),
    Ping {
        payload: Vec<u8>,
        timeout: Duration,
    },
    Close {
        code: u16,
        reason: String,
        timeout: Duration,
    },
    ExpectClose {
        matcher: Option<Matcher>,
        timeout: Duration,
    },
    Wait(Duration),
}

/// An action with its place in the conversation.
#[derive(Debug)]
pub(super) struct Item {
    index: usize,
    key: &'static str,
    span: Span,
    action: Action,
}

impl Item {
    fn fail(&self, message: impl std::fmt::Display) -> StepError {
        StepError::new(format!(
            "conversation item {} (`{}`): {message}",
            self.index, self.key
        ))
        .at(self.span.clone())
    }

    fn wrap(&self, err: StepError) -> StepError {
        let mut wrapped = self.fail(err.message);
        wrapped.help = err.help;
        wrapped
    }
}

/// The replies of `expect` actions.
#[derive(Debug, Default)]
pub(super) struct Replies {
    /// By the action's `name` or index.
    pub(super) by_key: Map<String, Json>,
    /// Each reply's latency, in order.
    pub(super) latencies: Vec<Json>,
}

/// Reads every action of the conversation and checks what
/// `WsConfig::check` does not: payloads, close frames, names. The matchers of
/// `expect` and `expect_close` come lowered and rendered with the input.
pub(super) fn prepare(config: &WsConfig, input: &StepInput<'_>) -> Result<Vec<Item>, StepError> {
    let value = input.config;
    let values = value
        .get("conversation")
        .and_then(Value::as_seq)
        .unwrap_or_default();
    let step_timeout = config.action_timeout.map(|d| d.0);
    let mut items = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (index, action) in config.conversation.iter().enumerate() {
        let item_value = values.get(index);
        let item_span = item_value.map_or_else(|| value.span.clone(), |v| v.span.clone());
        let key = action.key().map_err(|message| {
            StepError::new(format!("conversation item {index}: {message}")).at(item_span.clone())
        })?;
        // failures underline the action, `expect = { … }`: the span of a
        // YAML block mapping (the whole item) covers only its first character
        let span = action_span(item_value, key).unwrap_or(item_span);
        let key_span = |key: &str| {
            item_value
                .and_then(|v| v.get(key))
                .map_or_else(|| span.clone(), |v| v.span.clone())
        };
        let fail = |message: String, at: Span| {
            StepError::new(format!("conversation item {index} (`{key}`): {message}")).at(at)
        };
        // which options go with which action is `WsConfig::check`'s to say;
        // here a `timeout` only matters to the actions that wait
        let timeout = action
            .timeout
            .map(|d| d.0)
            .or(step_timeout)
            .unwrap_or(DEFAULT_ACTION_TIMEOUT);
        let prepared = match key {
            "send" => Action::Send(action.send.clone().unwrap_or_default()),
            "send_json" => {
                let json = action.send_json.as_ref().unwrap_or(&Json::Null);
                Action::Send(json.to_string())
            }
            "send_binary" => {
                let text = action.send_binary.as_deref().unwrap_or_default();
                let bytes = decode_base64(text)
                    .map_err(|why| fail(format!("not valid base64: {why}"), key_span(key)))?;
                Action::SendBinary(bytes)
            }
            "expect" => {
                let reply_key = action.name.clone().unwrap_or_else(|| index.to_string());
                if names.contains(&reply_key) {
                    return Err(fail(
                        format!("another `expect` already has the name `{reply_key}`"),
                        key_span("name"),
                    ));
                }
                names.push(reply_key.clone());
                Action::Expect {
                    matcher: input
                        .matcher(&format!("conversation.{index}.{key}"))
                        .cloned(),
                    skip: action.skip,
                    key: reply_key,
                    timeout,
                }
            }
            "no_message" => Action::NoMessage(action.no_message.map(|d| d.0).unwrap_or_default()),
            "ping" => Action::Ping {
                payload: action.ping.clone().unwrap_or_default().into_bytes(),
                timeout,
            },
            "close" => {
                let (code, reason) = close_frame(action.close.as_ref().unwrap_or(&Json::Null))
                    .map_err(|message| fail(message, key_span(key)))?;
                Action::Close {
                    code,
                    reason,
                    timeout,
                }
            }
            "expect_close" => Action::ExpectClose {
                matcher: input
                    .matcher(&format!("conversation.{index}.{key}"))
                    .cloned(),
                timeout,
            },
            _ => Action::Wait(action.wait.map(|d| d.0).unwrap_or_default()),
        };
        items.push(Item {
            index,
            key,
            span,
            action: prepared,
        });
    }
    Ok(items)
}

/// From the action key to the end of its value.
fn action_span(item: Option<&Value>, key: &str) -> Option<Span> {
    let (k, v) = item?.as_map()?.iter().find(|(k, _)| k.name == key)?;
    Some(k.span.start..end_of(v).max(k.span.end))
}

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::DecodeError as D;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64.decode(compact.as_bytes()).map_err(|err| match err {
        D::InvalidByte(at, byte) => format!(
            "`{}` at offset {at} is not a base64 character",
            char::from(byte).escape_default()
        ),
        D::InvalidLength(len) => {
            format!("{len} base64 characters cannot be whole bytes (missing `=` padding?)")
        }
        D::InvalidLastSymbol(at, byte) => format!(
            "the last character `{}` (offset {at}) leaves stray bits",
            char::from(byte).escape_default()
        ),
        D::InvalidPadding => String::from("the `=` padding is wrong"),
    })
}

/// `close = true`, `close = 4000` or `close = { code = 4000, reason = "…" }`.
fn close_frame(value: &Json) -> Result<(u16, String), String> {
    const SHAPE: &str =
        "`close` takes `true`, a close code (`1000`) or `{ code = 1000, reason = \"…\" }`";
    let (code, reason) = match value {
        Json::Bool(true) => (Some(1000), String::new()),
        Json::Number(n) => (n.as_u64(), String::new()),
        Json::Object(map) => {
            if let Some(other) = map.keys().find(|k| *k != "code" && *k != "reason") {
                return Err(format!("unknown key `{other}`: {SHAPE}"));
            }
            let code = match map.get("code") {
                None => Some(1000),
                Some(c) => c.as_u64(),
            };
            let reason = match map.get("reason") {
                None => String::new(),
                Some(Json::String(r)) => r.clone(),
                Some(_) => return Err(String::from("`reason` must be a string")),
            };
            (code, reason)
        }
        _ => return Err(SHAPE.to_string()),
    };
    let Some(code) = code.and_then(|c| u16::try_from(c).ok()) else {
        return Err(String::from(
            "the close code must be a whole number such as 1000 or 4000",
        ));
    };
    // the codes a peer may send that tungstenite also accepts: a tungstenite
    // peer fails the connection on 1014 (IANA's "bad gateway"), unknown to it
    if !matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999) {
        return Err(format!(
            "{code} cannot be sent as a close code (use 1000–1003, 1007–1013 or 3000–4999; 1005, 1006 and 1015 only describe a close)"
        ));
    }
    if reason.len() > 123 {
        return Err(format!(
            "the close reason is {} bytes; a close frame holds at most 123",
            reason.len()
        ));
    }
    Ok((code, reason))
}

/// Performs the actions in order; the first failure ends the conversation.
pub(super) async fn perform(
    items: &[Item],
    session: &mut Session<'_>,
    replies: &mut Replies,
) -> Result<(), StepError> {
    for item in items {
        perform_one(item, session, replies).await?;
    }
    Ok(())
}

async fn perform_one(
    item: &Item,
    session: &mut Session<'_>,
    replies: &mut Replies,
) -> Result<(), StepError> {
    // a read for a fixed time goes on past the transcript's caps; a read
    // until something happens stops there, so that a flood fails early
    session.at_cap = match item.action {
        Action::Wait(_) | Action::NoMessage(_) => AtCap::KeepFirstAndLast,
        _ => AtCap::Fail,
    };
    match &item.action {
        Action::Send(text) => session
            .send(Message::text(text.clone()))
            .await
            .map_err(|e| item.wrap(e)),
        Action::SendBinary(bytes) => session
            .send(Message::binary(bytes.clone()))
            .await
            .map_err(|e| item.wrap(e)),
        Action::Expect {
            matcher,
            skip,
            key,
            timeout,
        } => expect(item, session, matcher.as_ref(), *skip, *timeout)
            .await
            .map(|(doc, latency)| {
                replies
                    .by_key
                    .insert(key.clone(), json!({"message": doc, "latency": latency}));
                replies.latencies.push(json!(latency));
            }),
        Action::NoMessage(quiet) => no_message(item, session, *quiet).await,
        Action::Ping { payload, timeout } => ping(item, session, payload, *timeout).await,
        Action::Close {
            code,
            reason,
            timeout,
        } => close(item, session, *code, reason, *timeout).await,
        Action::ExpectClose { matcher, timeout } => {
            expect_close(item, session, matcher.as_ref(), *timeout).await
        }
        Action::Wait(pause) => wait(item, session, *pause).await,
    }
}

/// The time an action may wait until, and whether that is the step's limit.
fn until(session: &Session<'_>, timeout: Duration) -> (Instant, bool) {
    let own = Instant::now() + timeout;
    let capped = session.cap(own);
    (capped, capped < own)
}

/// The words for running out of time: `own` for the action's own timeout,
/// or the step's time limit "while waiting for {waiting}".
fn ran_out(session: &Session<'_>, step_limit: bool, own: String, waiting: &str) -> String {
    if step_limit {
        format!(
            "the step's time limit of {} ran out while waiting for {waiting}",
            human(session.limit)
        )
    } else {
        own
    }
}

fn ended_text(session: &Session<'_>) -> String {
    session.conn.ended.as_ref().map_or_else(
        || String::from("the connection ended"),
        super::session::Ended::describe,
    )
}

async fn expect(
    item: &Item,
    session: &mut Session<'_>,
    matcher: Option<&Matcher>,
    skip: bool,
    timeout: Duration,
) -> Result<(Json, f64), StepError> {
    let (until, step_limit) = until(session, timeout);
    let mut passed_over = 0usize;
    let mut last_passed: Option<(String, String)> = None;
    let passed_text = |passed_over: usize, last: &Option<(String, String)>| match last {
        Some((message, why)) => format!(
            "; {} passed over, the last {message}: {why}",
            count(passed_over, "message")
        ),
        None => String::new(),
    };
    loop {
        match session
            .next_message(until)
            .await
            .map_err(|e| item.wrap(e))?
        {
            Read::Message(incoming) => {
                let verdict = matcher.map_or(Ok(()), |m| test_matcher(m, &incoming.doc));
                match verdict {
                    Ok(()) => {
                        let latency = session.latency(incoming.at);
                        return Ok((incoming.doc, latency));
                    }
                    Err(why) if skip => {
                        passed_over += 1;
                        last_passed = Some((describe_message(&incoming.doc), why));
                    }
                    Err(why) => {
                        return Err(item
                            .fail(format!(
                                "got {}, which does not match: {why}",
                                describe_message(&incoming.doc)
                            ))
                            .help("set `skip = true` on the action to pass over other messages"));
                    }
                }
            }
            Read::Pong(_) => {}
            Read::Closed => {
                return Err(item.fail(format!(
                    "{} while waiting for a {}message{}",
                    ended_text(session),
                    if passed_over > 0 { "matching " } else { "" },
                    passed_text(passed_over, &last_passed)
                )));
            }
            Read::TimedOut => {
                let matching = if passed_over > 0 { "matching " } else { "" };
                let what = ran_out(
                    session,
                    step_limit,
                    format!("no {matching}message within {}", human(timeout)),
                    &format!("a {matching}message"),
                );
                return Err(item.fail(format!(
                    "{what} ({}){}",
                    session.received_so_far(),
                    passed_text(passed_over, &last_passed)
                )));
            }
        }
    }
}

async fn no_message(
    item: &Item,
    session: &mut Session<'_>,
    quiet: Duration,
) -> Result<(), StepError> {
    if let Some(early) = session.conn.pending.front() {
        return Err(item.fail(format!(
            "expected no message for {}, but {} had already arrived",
            human(quiet),
            describe_message(&early.doc)
        )));
    }
    let what = format!("{} of quiet", human(quiet));
    let until = end_within_limit(item, session, quiet, &what, "no_message")?;
    let start = until - quiet;
    loop {
        match session.read(until).await.map_err(|e| item.wrap(e))? {
            Read::Message(incoming) => {
                return Err(item.fail(format!(
                    "expected no message for {}, got {} after {}",
                    human(quiet),
                    describe_message(&incoming.doc),
                    human(incoming.at.saturating_duration_since(start))
                )));
            }
            Read::Pong(_) => {}
            Read::Closed => {
                return Err(item.fail(format!(
                    "expected no message for {}, but {} after {}",
                    human(quiet),
                    ended_text(session),
                    human(start.elapsed())
                )));
            }
            Read::TimedOut => return Ok(()),
        }
    }
}

async fn ping(
    item: &Item,
    session: &mut Session<'_>,
    payload: &[u8],
    timeout: Duration,
) -> Result<(), StepError> {
    if payload.len() > 125 {
        return Err(item.fail(format!(
            "a ping payload holds at most 125 bytes, this one has {}",
            payload.len()
        )));
    }
    session
        .send(Message::Ping(payload.to_vec().into()))
        .await
        .map_err(|e| item.wrap(e))?;
    let (until, step_limit) = until(session, timeout);
    loop {
        match session.read(until).await.map_err(|e| item.wrap(e))? {
            Read::Pong(answer) if answer.as_ref() == payload => return Ok(()),
            Read::Pong(_) => {}
            Read::Message(incoming) => session.hold(incoming),
            Read::Closed => {
                return Err(item.fail(format!(
                    "{} while waiting for the pong",
                    ended_text(session)
                )));
            }
            Read::TimedOut => {
                return Err(item.fail(ran_out(
                    session,
                    step_limit,
                    format!("no pong within {}", human(timeout)),
                    "the pong",
                )));
            }
        }
    }
}

async fn close(
    item: &Item,
    session: &mut Session<'_>,
    code: u16,
    reason: &str,
    timeout: Duration,
) -> Result<(), StepError> {
    session
        .send_close(code, reason)
        .await
        .map_err(|e| item.wrap(e))?;
    let (until, step_limit) = until(session, timeout);
    loop {
        match session.read(until).await.map_err(|e| item.wrap(e))? {
            Read::Message(incoming) => session.hold(incoming),
            Read::Pong(_) => {}
            Read::Closed => return Ok(()),
            Read::TimedOut => {
                return Err(item.fail(ran_out(
                    session,
                    step_limit,
                    format!(
                        "the server did not answer the close frame within {}",
                        human(timeout)
                    ),
                    "the server's close frame",
                )));
            }
        }
    }
}

async fn expect_close(
    item: &Item,
    session: &mut Session<'_>,
    matcher: Option<&Matcher>,
    timeout: Duration,
) -> Result<(), StepError> {
    let (until, step_limit) = until(session, timeout);
    let mut meanwhile = 0usize;
    loop {
        match session.read(until).await.map_err(|e| item.wrap(e))? {
            Read::Message(incoming) => {
                meanwhile += 1;
                session.hold(incoming);
            }
            Read::Pong(_) => {}
            Read::Closed => break,
            Read::TimedOut => {
                let what = ran_out(
                    session,
                    step_limit,
                    format!(
                        "the server did not close the connection within {}",
                        human(timeout)
                    ),
                    "the server to close the connection",
                );
                return Err(item.fail(format!(
                    "{what} ({} meanwhile)",
                    count(meanwhile, "message")
                )));
            }
        }
    }
    let Some(ended) = session.conn.ended.clone() else {
        return Err(item.fail("the connection ended"));
    };
    if ended.by == By::Client {
        return Err(item.fail(format!("{}, not by the server", ended.describe())));
    }
    let doc = json!({"code": ended.code, "reason": ended.reason});
    match matcher.map_or(Ok(()), |m| test_matcher(m, &doc)) {
        Ok(()) => Ok(()),
        Err(why) => Err(item.fail(format!(
            "the server closed with {}, which does not match: {why}",
            describe_close(ended.code, &ended.reason)
        ))),
    }
}

/// When an action that waits `length` ends, or an error saying that `what`
/// (the wait in words) would run past the step's time limit; `key` is the
/// action to shorten.
fn end_within_limit(
    item: &Item,
    session: &Session<'_>,
    length: Duration,
    what: &str,
    key: &str,
) -> Result<Instant, StepError> {
    let start = Instant::now();
    let until = start + length;
    if until <= session.deadline {
        return Ok(until);
    }
    Err(item
        .fail(format!(
            "{what} would run past the step's time limit of {} ({} left)",
            human(session.limit),
            human(session.deadline.saturating_duration_since(start))
        ))
        .help(format!("shorten `{key}` or raise the step's `timeout`")))
}

async fn wait(item: &Item, session: &mut Session<'_>, pause: Duration) -> Result<(), StepError> {
    let what = format!("a pause of {}", human(pause));
    let until = end_within_limit(item, session, pause, &what, "wait")?;
    loop {
        match session.read(until).await.map_err(|e| item.wrap(e))? {
            Read::Message(incoming) => session.hold(incoming),
            Read::Pong(_) => {}
            // later actions say what the end means for them
            Read::Closed => {
                let rest = until.saturating_duration_since(Instant::now());
                tokio::time::sleep(rest).await;
                return Ok(());
            }
            Read::TimedOut => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_frames_read_from_the_three_forms() {
        assert_eq!(close_frame(&json!(true)).unwrap(), (1000, String::new()));
        assert_eq!(close_frame(&json!(4001)).unwrap(), (4001, String::new()));
        assert_eq!(
            close_frame(&json!({"code": 1001, "reason": "bye"})).unwrap(),
            (1001, String::from("bye"))
        );
        assert!(
            close_frame(&json!(1006))
                .unwrap_err()
                .contains("cannot be sent")
        );
        assert!(
            close_frame(&json!({"cod": 1}))
                .unwrap_err()
                .contains("unknown key `cod`")
        );
        assert!(close_frame(&json!("x")).is_err());
        let err = close_frame(&json!(1014)).unwrap_err();
        assert!(
            err.contains("use 1000–1003, 1007–1013 or 3000–4999"),
            "{err}"
        );
    }

    #[test]
    fn sendable_close_codes_are_those_tungstenite_allows() {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        for code in 0..=u16::MAX {
            assert_eq!(
                close_frame(&json!(code)).is_ok(),
                CloseCode::from(code).is_allowed(),
                "close code {code}"
            );
        }
    }

    #[test]
    fn base64_errors_point_at_the_character() {
        assert_eq!(decode_base64("AAEC").unwrap(), vec![0, 1, 2]);
        assert_eq!(decode_base64("AA EC\n").unwrap(), vec![0, 1, 2]);
        let err = decode_base64("AA-C").unwrap_err();
        assert!(err.contains("`-` at offset 2"), "{err}");
    }
}
