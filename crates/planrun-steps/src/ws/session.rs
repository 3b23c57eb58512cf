//! One step's view of a socket: sending and reading frames before a time
//! limit, and the step's transcript (every frame both ways, the messages
//! received, when each arrived) that becomes the result document.
//!
//! Owns what a frame means (a ping is answered, a close frame ends the
//! connection) and how it is written down. Must not decide whether a message
//! is the right one: the conversation does.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use planrun_runner::executor::{Observer, StepError};
use serde_json::{Map, Value as Json, json};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Bytes, Message};

use super::connect::{Handshake, Socket};
use super::text::{count, describe_close, human};
use crate::kept::{Caps, Kept, Passed, held};
use crate::pace::Pace;
use crate::util::{human_size, millis};

/// An open (or ended) connection, kept between steps when named.
pub(super) struct Conn {
    pub(super) socket: Socket,
    /// The socket URL.
    pub(super) url: String,
    /// What the handshake answered.
    pub(super) handshake: Handshake,
    /// Messages read but not yet taken by an action (read during `wait`,
    /// `ping`, …); the next `expect` takes them first.
    pub(super) pending: VecDeque<Incoming>,
    /// The estimated memory `pending` holds.
    pending_bytes: usize,
    /// The close frame this side sent, while waiting for the answer.
    closing: Option<(u16, String)>,
    /// How the connection ended, once it has.
    pub(super) ended: Option<Ended>,
}

impl Conn {
    pub(super) fn new(socket: Socket, url: String, handshake: Handshake) -> Self {
        Self {
            socket,
            url,
            handshake,
            pending: VecDeque::new(),
            pending_bytes: 0,
            closing: None,
            ended: None,
        }
    }

    /// Keeps a message for a later action unless the messages waiting
    /// already fill `caps`; false when it was left out.
    pub(super) fn hold(&mut self, incoming: Incoming, caps: Caps) -> bool {
        let size = held(&incoming.doc);
        if self.pending.len() >= caps.docs || self.pending_bytes.saturating_add(size) > caps.bytes {
            return false;
        }
        self.pending_bytes += size;
        self.pending.push_back(incoming);
        true
    }

    /// The oldest message kept for a later action.
    fn take(&mut self) -> Option<Incoming> {
        let incoming = self.pending.pop_front()?;
        self.pending_bytes = self.pending_bytes.saturating_sub(held(&incoming.doc));
        Some(incoming)
    }

    /// Closes with 1000 unless already closed, waiting at most `grace` for
    /// the server's answer; nothing is reported (the end of a spec run).
    pub(super) async fn close_quietly(mut self, grace: Duration) {
        if self.ended.is_some() {
            return;
        }
        let until = Instant::now() + grace;
        let frame = Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: tungstenite::Utf8Bytes::from_static(""),
        }));
        if timeout_at(until, self.socket.send(frame)).await.is_err() {
            return;
        }
        // read until the server's close frame, the end of the stream or `grace`
        let drain = async { while let Some(Ok(_)) = self.socket.next().await {} };
        let _ = timeout_at(until, drain).await;
    }
}

/// A message as it arrived.
#[derive(Debug, Clone)]
pub(super) struct Incoming {
    /// The message document, with its `offset`.
    pub(super) doc: Json,
    /// When it arrived.
    pub(super) at: Instant,
}

/// Which side ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum By {
    Client,
    Server,
}

/// How a connection ended.
#[derive(Debug, Clone)]
pub(super) struct Ended {
    /// The close code (1006 when the connection ended without a close frame,
    /// 1005 when the close frame had no code).
    pub(super) code: u16,
    /// The close reason.
    pub(super) reason: String,
    /// Who closed.
    pub(super) by: By,
    /// For an end without a close frame: what happened.
    pub(super) abnormal: Option<String>,
}

impl Ended {
    /// The end in words, as the subject of a sentence: "the server closed
    /// the connection with 1011 (`internal error`)".
    pub(super) fn describe(&self) -> String {
        match (&self.abnormal, self.by) {
            (Some(what), _) => format!("the connection ended without a close frame ({what})"),
            (None, By::Server) => format!(
                "the server closed the connection with {}",
                describe_close(self.code, &self.reason)
            ),
            (None, By::Client) => format!(
                "the connection was closed by this side with {}",
                describe_close(self.code, &self.reason)
            ),
        }
    }

    /// The `close` field of the result.
    pub(super) fn doc(&self) -> Json {
        json!({
            "code": self.code,
            "reason": self.reason,
            "by": match self.by { By::Client => "client", By::Server => "server" },
        })
    }
}

/// What a read produced.
#[derive(Debug)]
pub(super) enum Read {
    /// A text or binary message (already in the transcript).
    Message(Incoming),
    /// A pong with this payload.
    Pong(Bytes),
    /// The connection has ended (see [`Conn::ended`]).
    Closed,
    /// Nothing more before the time given.
    TimedOut,
}

/// What a read does when the transcript passes its caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AtCap {
    /// Goes on, keeping the first and the latest frames (a read for a fixed
    /// time: `wait`, and the close at the end of the step).
    KeepFirstAndLast,
    /// Fails, naming the cap (a read until a message, a pong or the close).
    Fail,
}

/// One step's use of a connection, and its transcript.
pub(super) struct Session<'c> {
    pub(super) conn: &'c mut Conn,
    /// Where offsets count from: when the step started, or got its named
    /// connection.
    pub(super) started: Instant,
    /// The step's time limit and when it runs out.
    pub(super) limit: Duration,
    pub(super) deadline: Instant,
    observer: Observer,
    pace: Pace,
    /// What the transcript and the messages kept for later actions may hold.
    caps: Caps,
    /// What the read under way does at the caps.
    pub(super) at_cap: AtCap,
    /// Every frame, both ways.
    messages: Kept<Json>,
    /// Incoming text and binary messages.
    received: Kept<Json>,
    /// Messages read while no action wanted one and left out of those kept
    /// for later actions (see [`Conn::hold`]).
    unheld: usize,
    last_in: Option<Instant>,
    /// When each text or binary message was sent.
    sends: Vec<Instant>,
    /// How the connection ended, when it did during this step.
    pub(super) close: Option<Json>,
}

impl<'c> Session<'c> {
    /// A session on `conn` that counts offsets from `started`, may last
    /// until `deadline` (the step's `limit` from its start) and keeps at
    /// most `caps` of its transcript. Messages an earlier step read and left
    /// untaken are carried over: they count as arriving at `started`, and
    /// are in both steps' transcripts.
    pub(super) fn new(
        conn: &'c mut Conn,
        started: Instant,
        deadline: Instant,
        limit: Duration,
        observer: Observer,
        caps: Caps,
    ) -> Self {
        let mut session = Self {
            conn,
            started,
            limit,
            deadline,
            observer,
            pace: Pace::default(),
            caps,
            at_cap: AtCap::KeepFirstAndLast,
            messages: Kept::new(caps),
            received: Kept::new(caps),
            unheld: 0,
            last_in: None,
            sends: Vec::new(),
            close: None,
        };
        let carried: Vec<Incoming> = session.conn.pending.drain(..).collect();
        session.conn.pending_bytes = 0;
        for mut incoming in carried {
            incoming.at = started;
            if let Some(map) = incoming.doc.as_object_mut() {
                map.insert(String::from("offset"), json!(0.0));
            }
            let kept = session.note_message(incoming.doc, started);
            session.hold(kept);
        }
        session
    }

    /// Keeps a message for a later action, or counts it as left out.
    pub(super) fn hold(&mut self, incoming: Incoming) {
        if !self.conn.hold(incoming, self.caps) {
            self.unheld += 1;
        }
    }

    /// The `dropped` field of the result: how many documents the caps left
    /// out of `messages`, `received` and the messages kept for later actions.
    pub(super) fn dropped(&self) -> Json {
        json!({
            "messages": self.messages.dropped(),
            "received": self.received.dropped(),
            "pending": self.unheld,
        })
    }

    /// The `messages` and `received` fields of the result; the transcript
    /// is empty afterwards.
    pub(super) fn take_transcript(&mut self) -> (Json, Json) {
        let messages = std::mem::replace(&mut self.messages, Kept::new(self.caps));
        let received = std::mem::replace(&mut self.received, Kept::new(self.caps));
        (
            Json::Array(messages.into_vec()),
            Json::Array(received.into_vec()),
        )
    }

    /// Documents left out of the transcript so far.
    fn transcript_dropped(&self) -> usize {
        self.messages.dropped() + self.received.dropped()
    }

    /// The error of a read that passed the transcript's caps.
    fn over_cap(&self) -> StepError {
        let passed = self
            .messages
            .passed()
            .or(self.received.passed())
            .unwrap_or(Passed::Docs(self.caps.docs));
        let mut help = String::from(
            "only a `wait` reads on past the cap, keeping the first and last frames and counting the others in `dropped`: read a server that floods with a `wait` at the end of the conversation",
        );
        if let Passed::Bytes(_) = passed {
            help.push_str(", or raise `defaults.max_body`, which sets the memory cap");
        }
        StepError::new(format!(
            "the transcript passed its cap of {} after {} in this step (the server sends more than a step keeps)",
            passed.describe("frame"),
            count(self.messages.seen(), "frame")
        ))
        .help(help)
    }

    /// `until`, or the step's deadline when that comes first.
    pub(super) fn cap(&self, until: Instant) -> Instant {
        until.min(self.deadline)
    }

    fn offset(&self, at: Instant) -> f64 {
        millis(at.saturating_duration_since(self.started))
    }

    /// Adds a frame to the transcript and reports it (without its payload).
    fn log(&mut self, dir: &str, mut doc: Map<String, Json>, at: Instant) {
        let offset = self.offset(at);
        if self.observer.wanted() {
            let kind = doc.get("type").cloned().unwrap_or(Json::Null);
            self.observer
                .observe(json!({"dir": dir, "type": kind, "offset": offset}));
            self.pace.observed();
        }
        let mut entry = Map::new();
        entry.insert(String::from("dir"), json!(dir));
        entry.append(&mut doc);
        entry.insert(String::from("offset"), json!(offset));
        let entry = Json::Object(entry);
        let size = held(&entry);
        self.messages.push(entry, size);
    }

    /// Records an incoming message document (with its offset).
    fn note_message(&mut self, doc: Json, at: Instant) -> Incoming {
        let map = doc.as_object().cloned().unwrap_or_default();
        let mut without_offset = map;
        without_offset.remove("offset");
        self.log("in", without_offset, at);
        let size = held(&doc);
        self.received.push(doc.clone(), size);
        self.last_in = Some(at);
        Incoming { doc, at }
    }

    /// "2 messages received so far, the last 4.8 s ago".
    pub(super) fn received_so_far(&self) -> String {
        match (self.received.seen(), self.last_in) {
            (0, _) | (_, None) => String::from("no message received so far"),
            (n, Some(at)) => format!(
                "{} received so far, the last {} ago",
                super::text::count(n, "message"),
                human(at.elapsed())
            ),
        }
    }

    /// The time from the latest send at or before `at` (or from the step's
    /// start) to `at`, in ms.
    pub(super) fn latency(&self, at: Instant) -> f64 {
        let from = self
            .sends
            .iter()
            .rev()
            .find(|sent| **sent <= at)
            .copied()
            .unwrap_or(self.started);
        millis(at.saturating_duration_since(from))
    }

    /// Sends a text or binary message, or a ping.
    pub(super) async fn send(&mut self, message: Message) -> Result<(), StepError> {
        if let Some(ended) = &self.conn.ended {
            return Err(StepError::new(format!("cannot send: {}", ended.describe())));
        }
        let doc = match &message {
            Message::Text(text) => text_doc(text.as_str()),
            Message::Binary(bytes) => binary_doc("binary", bytes),
            Message::Ping(bytes) => binary_doc("ping", bytes),
            _ => Map::new(),
        };
        let is_data = matches!(message, Message::Text(_) | Message::Binary(_));
        match timeout_at(self.deadline, self.conn.socket.send(message)).await {
            Err(_) => Err(StepError::new(format!(
                "the message could not be sent within the step's time limit of {} (the server does not read?)",
                human(self.limit)
            ))),
            Ok(Err(err)) => Err(self.broken(&err, "sending")),
            Ok(Ok(())) => {
                let at = Instant::now();
                if is_data {
                    self.sends.push(at);
                }
                self.log("out", doc, at);
                Ok(())
            }
        }
    }

    /// Sends a close frame; the answer is read by [`Session::read`].
    pub(super) async fn send_close(&mut self, code: u16, reason: &str) -> Result<(), StepError> {
        if let Some(ended) = &self.conn.ended {
            return Err(StepError::new(format!(
                "cannot close: {}",
                ended.describe()
            )));
        }
        let frame = Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: tungstenite::Utf8Bytes::from(reason.to_string()),
        }));
        match timeout_at(self.deadline, self.conn.socket.send(frame)).await {
            Err(_) => Err(StepError::new(format!(
                "the close frame could not be sent within the step's time limit of {}",
                human(self.limit)
            ))),
            Ok(Err(err)) => Err(self.broken(&err, "closing")),
            Ok(Ok(())) => {
                self.conn.closing = Some((code, reason.to_string()));
                self.log("out", close_doc(code, reason), Instant::now());
                Ok(())
            }
        }
    }

    /// A send that failed: the connection is over.
    fn broken(&mut self, err: &tungstenite::Error, doing: &str) -> StepError {
        use tungstenite::Error as E;
        let what = match err {
            E::ConnectionClosed
            | E::AlreadyClosed
            | E::Protocol(ProtocolError::SendAfterClosing) => {
                String::from("the connection is closed")
            }
            E::Io(io) => format!("the connection broke while {doing}: {io}"),
            other => format!("{doing} failed: {other}"),
        };
        if self.conn.ended.is_none() {
            self.end(Ended {
                code: 1006,
                reason: String::new(),
                by: By::Server,
                abnormal: Some(what.clone()),
            });
        }
        StepError::new(what)
    }

    fn end(&mut self, ended: Ended) {
        self.close = Some(ended.doc());
        self.conn.ended = Some(ended);
        self.conn.closing = None;
    }

    /// The next message: one already read, or the next from the socket.
    pub(super) async fn next_message(&mut self, until: Instant) -> Result<Read, StepError> {
        if let Some(incoming) = self.conn.take() {
            return Ok(Read::Message(incoming));
        }
        self.read(until).await
    }

    /// Reads from the socket until a message, a pong, the end of the
    /// connection, or `until`. Pings are answered on the way. With
    /// [`AtCap::Fail`], a frame the transcript cannot keep is an error.
    pub(super) async fn read(&mut self, until: Instant) -> Result<Read, StepError> {
        let dropped = self.transcript_dropped();
        let read = self.read_frames(until, dropped).await;
        if self.at_cap == AtCap::Fail && self.transcript_dropped() > dropped {
            return Err(self.over_cap());
        }
        read
    }

    /// [`Session::read`]; `dropped` is what the transcript had left out
    /// before.
    async fn read_frames(&mut self, until: Instant, dropped: usize) -> Result<Read, StepError> {
        use tungstenite::Error as E;
        loop {
            if self.conn.ended.is_some() {
                return Ok(Read::Closed);
            }
            // pings that never stop would keep this loop going to `until`
            if self.at_cap == AtCap::Fail && self.transcript_dropped() > dropped {
                return Err(self.over_cap());
            }
            // frames read from a buffer are always ready, each observed
            self.pace.keep().await;
            // a socket that always has a frame ready never lets the timeout
            // below fire, so the time is checked before every frame
            if Instant::now() >= until {
                return Ok(Read::TimedOut);
            }
            let Ok(next) = timeout_at(until, self.conn.socket.next()).await else {
                return Ok(Read::TimedOut);
            };
            let at = Instant::now();
            match next {
                Some(Ok(Message::Text(text))) => {
                    let mut doc = text_doc(text.as_str());
                    doc.insert(String::from("offset"), json!(self.offset(at)));
                    return Ok(Read::Message(self.note_message(Json::Object(doc), at)));
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let mut doc = binary_doc("binary", &bytes);
                    doc.insert(String::from("offset"), json!(self.offset(at)));
                    return Ok(Read::Message(self.note_message(Json::Object(doc), at)));
                }
                Some(Ok(Message::Ping(payload))) => {
                    self.log("in", binary_doc("ping", &payload), at);
                    if self.conn.closing.is_none() {
                        // tungstenite queued the pong; send it now, not at the next read
                        if let Ok(Ok(())) = timeout_at(until, self.conn.socket.flush()).await {
                            self.log("out", binary_doc("pong", &payload), Instant::now());
                        }
                    }
                }
                Some(Ok(Message::Pong(payload))) => {
                    self.log("in", binary_doc("pong", &payload), at);
                    return Ok(Read::Pong(payload));
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f| {
                        (u16::from(f.code), f.reason.as_str().to_string())
                    });
                    self.log("in", close_doc(code, &reason), at);
                    if let Some((ours, our_reason)) = self.conn.closing.take() {
                        // the answer to this side's close
                        self.end(Ended {
                            code: ours,
                            reason: our_reason,
                            by: By::Client,
                            abnormal: None,
                        });
                    } else {
                        // tungstenite queued the echo of the close frame
                        let _ = timeout_at(until, self.conn.socket.flush()).await;
                        self.log("out", close_doc(code, &reason), Instant::now());
                        self.end(Ended {
                            code,
                            reason,
                            by: By::Server,
                            abnormal: None,
                        });
                    }
                    return Ok(Read::Closed);
                }
                Some(Ok(Message::Frame(_))) => {}
                None | Some(Err(E::ConnectionClosed | E::AlreadyClosed)) => {
                    self.stream_ended("the server closed the TCP connection");
                    return Ok(Read::Closed);
                }
                Some(Err(E::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                    self.stream_ended("the connection was reset");
                    return Ok(Read::Closed);
                }
                Some(Err(E::Io(io))) => {
                    self.stream_ended(&format!("the connection broke: {io}"));
                    return Ok(Read::Closed);
                }
                Some(Err(E::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                    self.stream_ended("a message exceeded `max_message`");
                    return Err(StepError::new(format!(
                        "a message of {} arrived, over the `max_message` cap of {}",
                        human_size(size as u64),
                        human_size(max_size as u64)
                    ))
                    .help("raise `max_message` on the step, e.g. `max_message = \"64MiB\"`"));
                }
                Some(Err(err)) => {
                    let what = match &err {
                        E::Protocol(p) => format!("the server broke the WebSocket protocol: {p}"),
                        E::Utf8(_) => {
                            String::from("the server sent a text message that is not valid UTF-8")
                        }
                        other => format!("reading from the connection failed: {other}"),
                    };
                    self.stream_ended(&what);
                    return Err(StepError::new(what));
                }
            }
        }
    }

    /// The stream is over without a close frame (or after this side's close
    /// frame, which some servers answer by just closing).
    fn stream_ended(&mut self, what: &str) {
        if self.conn.ended.is_some() {
            return;
        }
        let ended = match self.conn.closing.take() {
            Some((code, reason)) => Ended {
                code,
                reason,
                by: By::Client,
                abnormal: None,
            },
            None => Ended {
                code: 1006,
                reason: String::new(),
                by: By::Server,
                abnormal: Some(what.to_string()),
            },
        };
        self.end(ended);
    }

    /// The end of an unnamed connection's step: close with 1000 unless the
    /// connection has ended, waiting for the answer until `until` at most. A
    /// server that does not answer in time is not an error.
    pub(super) async fn finish(&mut self, until: Instant) {
        if self.conn.ended.is_some() {
            return;
        }
        if self.send_close(1000, "").await.is_err() {
            return;
        }
        // a read for a fixed time: the grace given to the server's answer
        self.at_cap = AtCap::KeepFirstAndLast;
        loop {
            match self.read(until).await {
                Ok(Read::Message(incoming)) => self.hold(incoming),
                Ok(Read::Pong(_)) => {}
                Ok(Read::Closed) | Err(_) => break,
                Ok(Read::TimedOut) => {
                    self.end(Ended {
                        code: 1000,
                        reason: String::new(),
                        by: By::Client,
                        abnormal: None,
                    });
                    break;
                }
            }
        }
    }
}

/// The message document of a text message.
pub(super) fn text_doc(text: &str) -> Map<String, Json> {
    let parsed = serde_json::from_str::<Json>(text).unwrap_or(Json::Null);
    let mut doc = Map::new();
    doc.insert(String::from("type"), json!("text"));
    doc.insert(String::from("text"), json!(text));
    doc.insert(String::from("json"), parsed);
    doc.insert(String::from("base64"), Json::Null);
    doc.insert(String::from("size"), json!(text.len()));
    doc
}

/// The document of a binary message, or of a ping or pong (`kind`); a
/// control frame's payload shows as text too when it is UTF-8.
pub(super) fn binary_doc(kind: &str, bytes: &[u8]) -> Map<String, Json> {
    let text = if kind == "binary" {
        Json::Null
    } else {
        std::str::from_utf8(bytes).map_or(Json::Null, |t| json!(t))
    };
    let mut doc = Map::new();
    doc.insert(String::from("type"), json!(kind));
    doc.insert(String::from("text"), text);
    doc.insert(String::from("json"), Json::Null);
    doc.insert(String::from("base64"), json!(BASE64.encode(bytes)));
    doc.insert(String::from("size"), json!(bytes.len()));
    doc
}

fn close_doc(code: u16, reason: &str) -> Map<String, Json> {
    let mut doc = Map::new();
    doc.insert(String::from("type"), json!("close"));
    doc.insert(String::from("code"), json!(code));
    doc.insert(String::from("reason"), json!(reason));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_messages_carry_their_json() {
        let doc = text_doc(r#"{"type":"pong"}"#);
        assert_eq!(doc["json"]["type"], "pong");
        assert_eq!(doc["size"], 15);
        assert_eq!(text_doc("hello")["json"], Json::Null);
    }

    #[test]
    fn binary_messages_are_base64() {
        let doc = binary_doc("binary", &[0, 1, 2]);
        assert_eq!(doc["base64"], "AAEC");
        assert_eq!(doc["text"], Json::Null);
        assert_eq!(binary_doc("ping", b"hi")["text"], "hi");
    }

    #[test]
    fn ends_read_as_sentences() {
        let ended = Ended {
            code: 1011,
            reason: String::new(),
            by: By::Server,
            abnormal: None,
        };
        assert_eq!(
            ended.describe(),
            "the server closed the connection with 1011 (`internal error`)"
        );
        assert_eq!(
            ended.doc(),
            json!({"code": 1011, "reason": "", "by": "server"})
        );
    }
}
