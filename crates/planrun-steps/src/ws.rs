//! `ws`: a WebSocket connection and a conversation on it, as a result
//! document with the whole transcript.
//!
//! This module owns reading a [`WsConfig`], opening or continuing the
//! connection, running the conversation within the step's time limit and the
//! shape of the result document. Submodules own the handshake (`connect`),
//! TLS (`tls`), frames and the transcript (`session`), the actions
//! (`conversation`) and named connections (`connections`).
//! It must not judge the result (expectations do) beyond the conversation's
//! own `expect` actions, and must not keep anything between steps but named
//! connections, which the spec's cleanup closes, and the cookies a handshake
//! sets, which go to the spec run's jar like an `http` response's.
//!
//! A refused handshake (an answer other than 101) is an error, since the
//! conversation cannot happen, unless the step says `allow_refusal = true`:
//! then the answer is the result, for expectations on its `status`, and the
//! conversation is skipped. The choice is the step's, in its configuration,
//! because the runner checks expectations without knowing the kind.

mod connect;
mod connections;
mod conversation;
mod session;
mod text;
mod tls;

use std::time::Duration;

use planrun_runner::executor::{BoxFuture, Observer, StepError, StepExecutor, StepInput};
use planrun_spec::kinds::{Ws, WsConfig};
use planrun_spec::model::StepKind;
use serde_json::json;
use tokio::time::Instant;

use crate::http::cookies;
use crate::kept::Caps;
use crate::util::{millis, span_of};
use connect::{Handshake, Opened, Refusal, Target};
use connections::WsConnections;
use conversation::{Item, Replies};
use session::{Conn, Session};

/// How long the end of a step waits for the server to answer its close.
const FINISH_GRACE: Duration = Duration::from_secs(1);

/// Runs `ws` steps.
///
/// Result document:
///
/// ```json
/// {"url": "ws://…", "status": 101, "headers": {"upgrade": "websocket"},
///  "protocol": "<chosen subprotocol or null>", "connect": <handshake ms or null>,
///  "messages": [{"dir": "out", "type": "text", "text": "hi", "json": null,
///                "base64": null, "size": 2, "offset": 0.4}, …],
///  "received": [{"type": "text", "text": "…", "json": …, "base64": null,
///                "size": 15, "offset": 1.2}],
///  "dropped": {"messages": 0, "received": 0, "pending": 0},
///  "replies": {"<name or index>": {"message": {…}, "latency": 0.8}},
///  "latencies": [0.8], "close": {"code": 1000, "reason": "", "by": "client"},
///  "open": false, "body": null, "json": null, "duration": 3.1}
/// ```
///
/// `messages` holds every frame both ways (pings, pongs and close frames
/// with `type` `ping`/`pong`/`close`, a close with `code` and `reason`);
/// `received` the incoming text and binary messages. Offsets are ms since the
/// step started, or got its named connection when it had to wait for another
/// step. Both keep at most 10,000 documents or the run's `max_body` of
/// memory (the `kept` module): past that, a `wait` keeps the first and the
/// latest, counting the others in `dropped`, and an action that reads until
/// something happens fails. `connect` is null when the step continues a
/// named connection.
///
/// With `allow_refusal = true`, a handshake answered with another status
/// than 101 gives the same document with that `status` and `headers`, the
/// answer's `body` (and `json` when it is JSON), no messages, `close` null
/// and `open` false.
#[derive(Debug, Default, Clone, Copy)]
pub struct WsExecutor;

impl WsExecutor {
    /// The executor.
    pub fn new() -> Self {
        Self
    }
}

impl StepExecutor for WsExecutor {
    fn kind(&self) -> StepKind {
        StepKind::Ws
    }

    fn execute<'a>(
        &'a self,
        input: StepInput<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(run(input))
    }
}

/// What a step needs to talk on a connection.
struct Talk<'a> {
    items: &'a [Item],
    /// Where offsets, latencies and the duration count from: the step's
    /// start, or the moment it got its named connection from another step.
    started: Instant,
    /// When the step's time limit, counted from its start, runs out.
    deadline: Instant,
    limit: Duration,
    observer: Observer,
    /// The handshake time, when this step connected.
    connect: Option<f64>,
    /// Whether the connection stays open after the conversation.
    keep_open: bool,
    /// What the transcript may hold.
    caps: Caps,
}

async fn run(input: StepInput<'_>) -> Result<serde_json::Value, StepError> {
    // the time limit counts from here, whatever the step waits for
    let deadline = Instant::now() + input.timeout;
    let value = input.config;
    let config: WsConfig = crate::util::config::<Ws>(value)?;
    let items = conversation::prepare(&config, &input)?;
    let talk = |started, connect, keep_open| Talk {
        items: &items,
        started,
        deadline,
        limit: input.timeout,
        observer: input.observer.clone(),
        connect,
        keep_open,
        caps: Caps::new(input.max_body),
    };

    let Some(url) = &config.url else {
        // `check` guarantees a `connection` without a `url`
        let name = config.connection.as_deref().unwrap_or_default();
        let at = span_of(value, "connection");
        let slot = WsConnections::of(input.ctx)?
            .slot(name)
            .map_err(|e| e.at(at.clone()))?;
        let mut guard = connections::lock(slot, name, deadline, input.timeout)
            .await
            .map_err(|e| e.at(at.clone()))?;
        // waiting for another step to finish with the connection is not
        // part of this step's timings
        let started = Instant::now();
        let Some(conn) = guard.as_mut() else {
            return Err(StepError::new(format!(
                "connection `{name}` is not open: the step that opens it failed, or its handshake was refused"
            ))
            .at(at));
        };
        if let Some(ended) = &conn.ended {
            return Err(StepError::new(format!(
                "connection `{name}` ended in an earlier step: {}",
                ended.describe()
            ))
            .at(at));
        }
        return converse(conn, talk(started, None, true)).await;
    };

    let url_span = span_of(value, "url");
    let target = Target::parse(url, input.written(&url_span), &url_span)?;
    // a named connection is locked before connecting, so that a step that
    // reopens a name closes the old connection first
    let mut slot_guard = match &config.connection {
        Some(name) => {
            let slot = WsConnections::of(input.ctx)?.slot_to_open(input.ctx, name);
            let guard = connections::lock(slot, name, deadline, input.timeout)
                .await
                .map_err(|e| e.at(span_of(value, "connection")))?;
            Some(guard)
        }
        None => None,
    };
    // as above: the wait for the name is not part of the step's timings
    let started = Instant::now();
    if let Some(old) = slot_guard.as_mut().and_then(|guard| guard.take()) {
        old.close_quietly(FINISH_GRACE.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }

    let clients = crate::http::HttpClients::of(input.ctx)?;
    let headers = connect::request_headers(
        &config,
        cookies::jar_line(clients.jar(), &target.http).as_deref(),
        &span_of(value, "headers"),
        &span_of(value, "cookies"),
    )?;
    let tls = if target.ws.scheme() == "wss" {
        let settings = tls::TlsSettings {
            insecure: config.insecure,
            ca_cert: config
                .ca_cert
                .as_ref()
                .map(|p| input.ctx.base_dir().join(p)),
        };
        Some(
            tls::client_config(input.ctx, &settings)
                .await
                .map_err(|e| e.at(span_of(value, "ca_cert")))?,
        )
    } else {
        None
    };
    let max_message = config.max_message.map_or(input.max_body, |b| b.0);
    let max_message = usize::try_from(max_message).unwrap_or(usize::MAX);
    let connecting = Instant::now();
    let opened = connect::open(&target, headers, tls, max_message, deadline, input.timeout)
        .await
        .map_err(|e| e.at(url_span.clone()))?;
    let connect_ms = millis(connecting.elapsed());
    let (socket, response) = match opened {
        Opened::Open(socket, response) => (*socket, response),
        Opened::Refused(refusal) if config.allow_refusal => {
            cookies::store(clients.jar(), &refusal.headers, &target.http);
            let cap = usize::try_from(input.max_body).unwrap_or(usize::MAX);
            return Ok(refused(&target, &refusal, cap, connect_ms, started));
        }
        Opened::Refused(refusal) => {
            return Err(refusal.error(target.ws.as_str()).at(url_span));
        }
    };
    // the handshake's cookies join the spec run's, as an `http` response's do
    cookies::store(clients.jar(), response.headers(), &target.http);
    let mut conn = Conn::new(socket, target.ws.to_string(), Handshake::new(&response));

    let outcome = converse(
        &mut conn,
        talk(started, Some(connect_ms), slot_guard.is_some()),
    )
    .await;
    match (&outcome, slot_guard.as_mut()) {
        // kept even when the conversation closed it, so that a step that
        // continues it learns how it ended
        (Ok(_), Some(guard)) => **guard = Some(conn),
        (Ok(_), None) => {}
        (Err(_), _) => {
            let rest = deadline.saturating_duration_since(Instant::now());
            conn.close_quietly(FINISH_GRACE.min(rest)).await;
        }
    }
    outcome
}

/// Runs the conversation on `conn` and writes the result document.
async fn converse(conn: &mut Conn, talk: Talk<'_>) -> Result<serde_json::Value, StepError> {
    let url = conn.url.clone();
    let handshake = conn.handshake.clone();
    let mut session = Session::new(
        conn,
        talk.started,
        talk.deadline,
        talk.limit,
        talk.observer,
        talk.caps,
    );
    let mut replies = Replies::default();
    conversation::perform(talk.items, &mut session, &mut replies).await?;
    if !talk.keep_open {
        let until = session.cap(Instant::now() + FINISH_GRACE);
        session.finish(until).await;
    }
    let open = talk.keep_open && session.conn.ended.is_none();
    let dropped = session.dropped();
    let (messages, received) = session.take_transcript();
    Ok(json!({
        "url": url,
        "status": handshake.status,
        "headers": handshake.headers,
        "protocol": handshake.protocol,
        "connect": talk.connect,
        "messages": messages,
        "received": received,
        "dropped": dropped,
        "replies": replies.by_key,
        "latencies": replies.latencies,
        "close": session.close,
        "open": open,
        "body": null,
        "json": null,
        "duration": millis(talk.started.elapsed()),
    }))
}

/// The result document of a refused handshake: the answer, and no
/// conversation.
fn refused(
    target: &Target,
    refusal: &Refusal,
    cap: usize,
    connect: f64,
    started: Instant,
) -> serde_json::Value {
    let body = refusal.body_text(cap);
    let parsed = serde_json::from_str::<serde_json::Value>(&body).ok();
    json!({
        "url": target.ws.as_str(),
        "status": refusal.status.as_u16(),
        "headers": crate::http::headers_doc(&refusal.headers),
        "protocol": null,
        "connect": connect,
        "messages": [],
        "received": [],
        "dropped": {"messages": 0, "received": 0, "pending": 0},
        "replies": {},
        "latencies": [],
        "close": null,
        "open": false,
        "body": body,
        "json": parsed,
        "duration": millis(started.elapsed()),
    })
}
