//! `sse`: a request whose answer is a Server-Sent Events stream, read event by
//! event until the server closes it, an event matches `until`, `listen` runs
//! out or `max_events` arrived; reconnecting with `Last-Event-ID` on request.
//!
//! This module owns when a stream ends and why, the time limit of the whole
//! stream, reconnections, and the result document. The request is built by
//! [`crate::http`] (same keys, cookie jar and TLS clients); bytes become
//! blocks in `decode` and blocks become events in `source`. It must not
//! judge the stream (the events that came, their order, their timing): a
//! 401 or a stream without the expected event is data for expectations. Only
//! what keeps the stream from being read is an error: no connection, no
//! answer (within the time limit or `listen`), a stream still open at the
//! time limit, a stream cut in the middle of an event or by a failed
//! connection when no reconnection is left, a line or an event longer than
//! `max_body`, and more events than a step keeps when the step does not
//! read for a fixed time.
//!
//! What a step holds is bounded whatever the server sends: one line or one
//! event's data at most `max_body` (checked before the parser holds it), and
//! the events kept at most 10,000 or `max_body` of memory (the `kept`
//! module). Past that cap a `listen` step keeps the first and last events
//! and counts the others in `dropped`; any other step fails, since the
//! events it would return are not the stream's. The time limit is checked
//! at every read, so a server that never pauses cannot hold a step past it.
//!
//! Result document (durations and offsets in milliseconds):
//!
//! ```json
//! {"status": 200, "headers": {"content-type": "text/event-stream"}, "url": "<final URL>",
//!  "events": [{"type": "message", "data": "<text>", "json": <data as JSON or null>,
//!              "id": "<last event id or null>", "offset": <ms since the request was sent>}],
//!  "dropped": <events left out past the cap, with `listen`; else 0>,
//!  "first_event": <ms or null>, "gaps": [<ms between consecutive events>], "max_gap": <ms or null>,
//!  "end": "closed" | "until" | "listen" | "max_events",
//!  "last_event_id": "<id or null>", "retry": <ms or null>, "text": "<every data, joined>",
//!  "comments": 0, "ignored_lines": 0, "reconnects": 0,
//!  "body": null, "json": null, "duration": <ms>}
//! ```
//!
//! An answer that is not a 2xx `text/event-stream` is not read as a stream:
//! `body` and `json` hold it as `http` reads it (a body past `max_body` is an
//! error; bytes that are no text give `body_error`), `events` is empty and
//! `end` is `closed`.

mod decode;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod source;

use std::fmt::Write as _;
use std::time::Duration;

use planrun_runner::executor::{BoxFuture, Observer, StepError, StepExecutor, StepInput};
use planrun_runner::test_matcher;
use planrun_spec::duration::human;
use planrun_spec::kinds::{Reconnect, Sse, SseConfig};
use planrun_spec::model::{Matcher, StepKind};
use planrun_spec::value::{Span, ValueKind};
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{Client, Request, Response};
use serde_json::{Value as Json, json};
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::http::text::BodyFields;
use crate::http::{BodyRead, BuiltRequest, build_request, error, headers_doc, read_body};
use crate::kept::{Caps, Passed};
use crate::pace::Pace;
use crate::util::{count, human_size, millis, span_of};
use decode::{Decoder, Problem};
use source::{Resume, Source};

/// Reconnections when `reconnect` does not say.
const DEFAULT_RECONNECT_ATTEMPTS: u32 = 3;

/// Pause before reconnecting when neither `reconnect.delay` nor the stream's
/// `retry` says.
const DEFAULT_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Headers an event stream request carries unless the step sets them.
const DEFAULT_HEADERS: [(HeaderName, &str); 2] =
    [(ACCEPT, "text/event-stream"), (CACHE_CONTROL, "no-cache")];

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Longest piece of an event quoted in an error message.
const QUOTE_CHARS: usize = 120;

/// Runs `sse` steps (see the [module docs](self) for the result document).
#[derive(Debug, Default, Clone, Copy)]
pub struct SseExecutor;

impl SseExecutor {
    /// The executor.
    pub fn new() -> Self {
        Self
    }
}

impl StepExecutor for SseExecutor {
    fn kind(&self) -> StepKind {
        StepKind::Sse
    }

    fn execute<'a>(
        &'a self,
        input: StepInput<'a>,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(run(input))
    }
}

/// Why reading a stream stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The server closed the stream between events.
    Closed,
    /// An event matched `until`.
    Until,
    /// `listen` ran out.
    Listen,
    /// `max_events` events arrived.
    MaxEvents,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::Until => "until",
            End::Listen => "listen",
            End::MaxEvents => "max_events",
        }
    }
}

/// How reading one connection's stream stopped.
enum Stop {
    /// Reading is over, or, with [`End::Closed`], the server closed the
    /// stream between events (a reconnection may follow).
    End(End),
    /// The stream broke off in the middle of an event, or the connection
    /// failed: the step fails with this unless a reconnection follows.
    Cut(StepError),
}

/// What comes after the server closed a stream.
enum Next {
    /// A new connection's stream, to read on.
    Read(Response),
    /// The end.
    End(End),
}

async fn run(input: StepInput<'_>) -> Result<Json, StepError> {
    let started = Instant::now();
    let value = input.config;
    let config: SseConfig = crate::util::config::<Sse>(value)?;
    let until = Until::read(&input)?;
    let limit = config
        .timeout
        .map_or(input.timeout, |t| t.0.min(input.timeout));
    if let Some(listen) = config.listen
        && listen.0 > limit
    {
        return Err(StepError::new(format!(
            "`listen` ({}) is longer than the step's time limit ({})",
            human(listen.0),
            human(limit)
        ))
        .at(span_of(value, "listen"))
        .help("raise the step's `timeout` above `listen`, or listen for less"));
    }
    let BuiltRequest {
        client,
        mut request,
        url,
        url_span,
        ..
    } = build_request(&config.request(), value, input.ctx, None, &DEFAULT_HEADERS).await?;
    if let Some(id) = &config.last_event_id {
        let header = HeaderValue::from_bytes(id.as_bytes()).map_err(|_| {
            StepError::new(format!("`last_event_id` `{id}` cannot be sent as a header"))
                .at(span_of(value, "last_event_id"))
        })?;
        request.headers_mut().insert(LAST_EVENT_ID, header);
    }
    let max_body = config.max_body.map_or(input.max_body, |b| b.0);

    let template = request.try_clone();
    let sent = Instant::now();
    let deadline = started + limit;
    let mut stream = Stream {
        target: Target {
            url: url.to_string(),
            origin: error::url_origin(input.written(&url_span)),
            url_span,
            limit,
            deadline,
            listen_at: config.listen.map(|l| (sent + l.0).min(deadline)),
        },
        sent,
        headers_after: Duration::ZERO,
        until,
        max_events: config.max_events,
        max_body_span: span_of(value, "max_body"),
        bytes: 0,
        source: Source::new(Caps::new(max_body)),
        decoder: Decoder::new(usize::try_from(max_body).unwrap_or(usize::MAX)),
        last_miss: None,
        reconnects: 0,
        observer: input.observer.clone(),
        pace: Pace::default(),
    };

    let Some(mut response) = stream.target.connect(&client, request).await? else {
        // nothing to check: not even a status
        let listen = config.listen.map_or(limit, |l| l.0);
        return Err(StepError::new(format!(
            "`{url}` sent no response headers within `listen` ({})",
            human(listen)
        ))
        .at(stream.target.url_span.clone())
        .help("is the server stuck or overloaded? listen longer if it is just slow to answer"));
    };
    stream.headers_after = sent.elapsed();
    let status = response.status().as_u16();
    let headers = headers_doc(response.headers());
    let final_url = response.url().to_string();
    if !is_event_stream(&response) {
        let read = BodyRead {
            url: &final_url,
            max_body,
            limit,
            headers_after: stream.headers_after,
            deadline: Some(deadline),
        };
        let body = read_body(&mut response, &read)
            .await
            .map_err(|e| e.at(stream.target.url_span.clone()))?;
        let content_type = headers.get("content-type").and_then(Json::as_str);
        let body = BodyFields::of(body, content_type);
        return Ok(stream.into_doc(End::Closed, status, headers, final_url, Some(body)));
    }

    let end = loop {
        let cut = match stream.read(&mut response).await? {
            Stop::End(End::Closed) => None,
            Stop::End(end) => break end,
            Stop::Cut(err) => Some(err),
        };
        match stream
            .reconnect(&client, template.as_ref(), config.reconnect.as_ref(), cut)
            .await?
        {
            Next::Read(again) => response = again,
            Next::End(end) => break end,
        }
    };
    Ok(stream.into_doc(end, status, headers, final_url, None))
}

/// Whether an answer is a 2xx `text/event-stream`.
fn is_event_stream(response: &Response) -> bool {
    response.status().is_success()
        && response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// The event that ends the stream.
enum Until {
    /// `until = "[DONE]"`: the data equals this text.
    Data(String),
    /// `until = { type = "done" }`: a matcher over the event document.
    Matcher(Matcher),
}

impl Until {
    /// The string form from the configuration, the table form from the
    /// matchers lowered at plan time.
    fn read(input: &StepInput<'_>) -> Result<Option<Self>, StepError> {
        if let Some(matcher) = input.matcher("until") {
            return Ok(Some(Until::Matcher(matcher.clone())));
        }
        match input.config.get("until").map(|v| &v.kind) {
            None => Ok(None),
            Some(ValueKind::Str(text)) => Ok(Some(Until::Data(text.clone()))),
            Some(_) => Err(StepError::new(
                "`until` was not lowered to a matcher when the spec was planned",
            )),
        }
    }

    /// `Err` says why the event does not match.
    fn test(&self, event: &Json) -> Result<(), String> {
        match self {
            Until::Data(text) => {
                let data = event["data"].as_str().unwrap_or_default();
                if data == text {
                    Ok(())
                } else {
                    Err(format!(
                        "`data`: expected `{}`, got `{}`",
                        quote(text),
                        quote(data)
                    ))
                }
            }
            Until::Matcher(matcher) => test_matcher(matcher, event),
        }
    }
}

/// Where a stream comes from, and until when it may take.
struct Target {
    url: String,
    /// What to check when the server cannot be reached.
    origin: String,
    url_span: Span,
    /// The time limit of the whole step.
    limit: Duration,
    deadline: Instant,
    /// When `listen` runs out (never after the deadline).
    listen_at: Option<Instant>,
}

impl Target {
    /// Sends a request and waits for the answer's headers; `None` when
    /// `listen` runs out first.
    async fn connect(
        &self,
        client: &Client,
        request: Request,
    ) -> Result<Option<Response>, StepError> {
        let connecting = self.headers(client, request);
        let Some(listen_at) = self.listen_at else {
            return connecting.await.map(Some);
        };
        match timeout_at(listen_at, connecting).await {
            Ok(answer) => answer.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Sends a request and waits for the answer's headers until the deadline.
    async fn headers(&self, client: &Client, request: Request) -> Result<Response, StepError> {
        match timeout_at(self.deadline, client.execute(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => {
                Err(
                    error::request_error(&err, &self.url, &self.origin, self.limit)
                        .at(self.url_span.clone()),
                )
            }
            Err(_) => Err(StepError::new(format!(
                "`{}` sent no response headers within {}",
                self.url,
                human(self.limit)
            ))
            .at(self.url_span.clone())
            .help(
                "is the server stuck or overloaded? raise the step's `timeout` if it is just slow",
            )),
        }
    }
}

/// One step's stream, across reconnections.
struct Stream {
    target: Target,
    /// When the first request was sent: offsets count from here.
    sent: Instant,
    headers_after: Duration,
    until: Option<Until>,
    max_events: Option<usize>,
    max_body_span: Span,
    /// Bytes of the stream read so far, over every connection.
    bytes: u64,
    source: Source,
    decoder: Decoder,
    /// Why the last event did not match `until`.
    last_miss: Option<String>,
    reconnects: u32,
    observer: Observer,
    pace: Pace,
}

impl Stream {
    /// When reading must stop: the deadline, or `listen` running out.
    fn stop_at(&self) -> Instant {
        self.target.listen_at.unwrap_or(self.target.deadline)
    }

    /// Whether the step reads for a fixed time (`listen`): past the cap on
    /// events kept it keeps the first and last, where another step fails.
    fn reads_for_a_time(&self) -> bool {
        self.target.listen_at.is_some()
    }

    /// Reads one connection's stream until it ends.
    async fn read(&mut self, response: &mut Response) -> Result<Stop, StepError> {
        loop {
            // a server that never pauses has a chunk ready at every read, and
            // the timeout below only fires on a read that waits
            if Instant::now() >= self.stop_at() {
                return self.out_of_time(false).map(Stop::End);
            }
            let read = timeout_at(self.stop_at(), response.chunk()).await;
            let at = self.sent.elapsed();
            let chunk = match read {
                Err(_) => return self.out_of_time(false).map(Stop::End),
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => return self.closed(at, None).await,
                Ok(Err(err)) if cut_short(&err) => return self.closed(at, None).await,
                Ok(Err(err)) => return self.closed(at, Some(&err)).await,
            };
            self.bytes += chunk.len() as u64;
            let blocks = self.decoder.push(&chunk).map_err(|p| self.problem(p))?;
            if let Some(end) = self.dispatch(blocks, at).await? {
                return Ok(Stop::End(end));
            }
        }
    }

    /// The stream stopped: the server closed it cleanly between events, or
    /// not, or the connection failed (`failed`). The events it completed
    /// count; an unfinished one is dropped.
    async fn closed(
        &mut self,
        at: Duration,
        failed: Option<&reqwest::Error>,
    ) -> Result<Stop, StepError> {
        let blocks = self.decoder.finish().map_err(|p| self.problem(p))?;
        if let Some(end) = self.dispatch(blocks, at).await? {
            return Ok(Stop::End(end));
        }
        if let Some(err) = failed {
            let mut e = error::request_error(
                err,
                &self.target.url,
                &self.target.origin,
                self.target.limit,
            )
                .at(self.target.url_span.clone());
            let _ = write!(
                e.message,
                " ({} had arrived)",
                count(self.source.len(), "event")
            );
            return Ok(Stop::Cut(e));
        }
        if self.decoder.mid_event() {
            return Ok(Stop::Cut(StepError::new(format!(
                "the server closed the stream in the middle of an event after {}",
                count(self.source.len(), "event")
            ))
            .at(self.target.url_span.clone())
            .help("the unfinished event is dropped; did the server crash, or a proxy cut the response? check the server's logs")));
        }
        Ok(Stop::End(End::Closed))
    }

    /// Turns blocks into events; says when one of them ends the stream, or
    /// when one passed the cap on events kept in a step that must keep them
    /// all.
    async fn dispatch(
        &mut self,
        blocks: Vec<sse_stream::Sse>,
        at: Duration,
    ) -> Result<Option<End>, StepError> {
        for block in blocks {
            // one read may complete thousands of events, each observed
            self.pace.keep().await;
            let Some((index, _)) = self.source.apply(block, at) else {
                continue;
            };
            if let (1.., Some(passed)) = self.source.dropped()
                && !self.reads_for_a_time()
            {
                return Err(self.over_cap(passed));
            }
            let Some(event) = self.source.latest() else {
                continue;
            };
            if self.observer.wanted() {
                self.observer.observe(json!({
                    "event": index,
                    "type": event["type"],
                    "offset": event["offset"],
                }));
                self.pace.observed();
            }
            if let Some(until) = &self.until {
                match until.test(event) {
                    Ok(()) => return Ok(Some(End::Until)),
                    Err(why) => self.last_miss = Some(why),
                }
            }
            if self.max_events.is_some_and(|max| self.source.len() >= max) {
                return Ok(Some(End::MaxEvents));
            }
        }
        Ok(None)
    }

    /// The error of a step that must keep every event and cannot.
    fn over_cap(&self, passed: Passed) -> StepError {
        let mut help = String::from(
            "read the stream for a fixed time with `listen = \"5s\"`, which keeps the first and last events and counts the others in `dropped`, or end it sooner with `until` or `max_events`",
        );
        let at = match passed {
            Passed::Docs(_) => self.target.url_span.clone(),
            Passed::Bytes(_) => {
                help.push_str(", or raise `max_body`, the memory cap");
                self.max_body_span.clone()
            }
        };
        StepError::new(format!(
            "the event stream of `{}` passed the cap on what a step keeps, {}, after {}",
            self.target.url,
            passed.describe("event"),
            count(self.source.len(), "event")
        ))
        .at(at)
        .help(help)
    }

    /// The error of input the decoder cannot take.
    fn problem(&self, problem: Problem) -> StepError {
        let cap = human_size(self.decoder.cap() as u64);
        let so_far = format!(
            "{} received, {}",
            human_size(self.bytes),
            count(self.source.len(), "event")
        );
        match problem {
            Problem::Parse(message) => self.internal(&message),
            Problem::LongLine(_) => StepError::new(format!(
                "one line of the event stream of `{}` passed {cap} without ending ({so_far})",
                self.target.url
            ))
            .at(self.max_body_span.clone())
            .help("does the server end its lines? `max_body` is the cap on one line; raise it if lines this long are expected"),
            Problem::LongEvent(_) => StepError::new(format!(
                "one event of the event stream of `{}` passed {cap} of data without the blank line that ends it ({so_far})",
                self.target.url
            ))
            .at(self.max_body_span.clone())
            .help("does the server end its events with a blank line? `max_body` is the cap on one event; raise it if events this large are expected"),
        }
    }

    /// After the server closed the stream, cleanly or with `cut`: opens it
    /// again when `reconnect` says so, or says how the stream ended (with
    /// `cut`, in an error).
    async fn reconnect(
        &mut self,
        client: &Client,
        template: Option<&Request>,
        reconnect: Option<&Reconnect>,
        cut: Option<StepError>,
    ) -> Result<Next, StepError> {
        let Some(reconnect) = reconnect else {
            return cut.map_or(Ok(Next::End(End::Closed)), Err);
        };
        let attempts = reconnect.attempts.unwrap_or(DEFAULT_RECONNECT_ATTEMPTS);
        if self.reconnects >= attempts {
            let Some(mut err) = cut else {
                return Ok(Next::End(End::Closed));
            };
            let _ = write!(
                err.message,
                "; {} made, none left",
                count(self.reconnects as usize, "reconnection")
            );
            return Err(err);
        }
        // like EventSource: the unfinished event of a cut stream is dropped,
        // the next connection resumes after the last complete one
        let delay = reconnect
            .delay
            .map(|d| d.0)
            .or_else(|| self.source.retry())
            .unwrap_or(DEFAULT_RECONNECT_DELAY);
        if let Some(end) = self.pause(delay).await? {
            return Ok(Next::End(end));
        }
        self.reconnects += 1;
        let Some(mut request) = template.and_then(Request::try_clone) else {
            return Err(StepError::internal(
                "the request of an `sse` step cannot be sent twice",
            ));
        };
        match self.source.resume_from() {
            Resume::AsConfigured => {}
            Resume::FromStart => {
                request.headers_mut().remove(LAST_EVENT_ID);
            }
            Resume::After(id) => {
                let header = HeaderValue::from_bytes(id.as_bytes()).map_err(|_| {
                    StepError::new(format!(
                        "cannot reconnect: the last event id `{id}` cannot be sent as a header"
                    ))
                    .at(self.target.url_span.clone())
                })?;
                request.headers_mut().insert(LAST_EVENT_ID, header);
            }
        }
        // `listen` may run out while connecting again
        let Some(again) = self
            .target
            .connect(client, request)
            .await
            .map_err(|mut e| {
                e.message = format!(
                    "reconnection {} of {attempts}: {} ({} before)",
                    self.reconnects,
                    e.message,
                    count(self.source.len(), "event")
                );
                e
            })?
        else {
            return Ok(Next::End(End::Listen));
        };
        if !is_event_stream(&again) {
            // WHATWG: an answer that is not an event stream (204 above all)
            // means "do not reconnect"
            return Ok(Next::End(End::Closed));
        }
        self.decoder.restart();
        Ok(Next::Read(again))
    }

    /// Waits before reconnecting; `Some` when the stream ends meanwhile.
    async fn pause(&mut self, delay: Duration) -> Result<Option<End>, StepError> {
        let wake = Instant::now() + delay;
        if wake < self.stop_at() {
            sleep_until(wake).await;
            return Ok(None);
        }
        sleep_until(self.stop_at()).await;
        self.out_of_time(true).map(Some)
    }

    /// The time is up: `listen` ran out (a normal end) or the time limit
    /// passed with the stream still open (an error).
    fn out_of_time(&self, reconnecting: bool) -> Result<End, StepError> {
        if self.target.listen_at.is_some() {
            return Ok(End::Listen);
        }
        let limit = human(self.target.limit);
        let mut message = match self.source.last_offset() {
            None => {
                let mut text = format!(
                    "no event arrived within {limit} (the server sent headers after {}",
                    human(self.headers_after)
                );
                match self.decoder.comments() {
                    0 => text.push(')'),
                    n => {
                        let _ = write!(text, ", then {})", count(n as usize, "comment"));
                    }
                }
                text
            }
            Some(last) => {
                let ago = millis(self.sent.elapsed()) - last;
                format!(
                    "the stream did not end within {limit}: {} arrived, the last {} ago",
                    count(self.source.len(), "event"),
                    human(Duration::from_secs_f64(ago.max(0.0) / 1000.0))
                )
            }
        };
        if reconnecting {
            let _ = write!(
                message,
                "; the server had closed it and reconnection {} was not due before the time limit",
                self.reconnects + 1
            );
        }
        if self.until.is_some() {
            message.push_str("; no event matched `until`");
            if let Some(why) = &self.last_miss {
                let _ = write!(message, " (the last one: {why})");
            }
        }
        if let Some(max) = self.max_events {
            let _ = write!(message, "; `max_events` ({max}) was not reached");
        }
        let help = if self.until.is_some() {
            "check `until` against the events the server sends, stop after a while with `listen = \"5s\"`, or raise `timeout`"
        } else {
            "end the stream with `until` (e.g. `until = { type = \"done\" }`), stop after a while with `listen = \"5s\"`, or raise `timeout`"
        };
        Err(StepError::new(message)
            .at(self.target.url_span.clone())
            .help(help))
    }

    fn internal(&self, message: &str) -> StepError {
        StepError::new(format!("{message} (from `{}`)", self.target.url))
            .at(self.target.url_span.clone())
    }

    /// The result document; `body` is the answer when it was not a stream.
    fn into_doc(
        self,
        end: End,
        status: u16,
        headers: serde_json::Map<String, Json>,
        url: String,
        body: Option<BodyFields>,
    ) -> Json {
        let duration = millis(self.sent.elapsed());
        let comments = self.decoder.comments();
        let ignored_lines = self.decoder.ignored_lines();
        let doc = self.source.into_doc();
        // built in place: `json!` would copy the events by serializing them
        let fields: [(&str, Json); 18] = [
            ("status", Json::from(status)),
            ("headers", Json::Object(headers)),
            ("url", Json::String(url)),
            ("events", Json::Array(doc.events)),
            ("dropped", Json::from(doc.dropped)),
            (
                "first_event",
                doc.first_event.map_or(Json::Null, Json::from),
            ),
            ("gaps", Json::from(doc.gaps)),
            ("max_gap", doc.max_gap.map_or(Json::Null, Json::from)),
            ("end", Json::from(end.as_str())),
            (
                "last_event_id",
                doc.last_event_id.map_or(Json::Null, Json::String),
            ),
            ("retry", doc.retry.map_or(Json::Null, Json::from)),
            ("text", Json::String(doc.text)),
            ("comments", Json::from(comments)),
            ("ignored_lines", Json::from(ignored_lines)),
            ("reconnects", Json::from(self.reconnects)),
            ("body", Json::Null),
            ("json", Json::Null),
            ("duration", Json::from(duration)),
        ];
        let mut doc: serde_json::Map<String, Json> = fields
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect();
        if let Some(body) = body {
            doc.insert("body".into(), body.body);
            doc.insert("json".into(), body.json);
            if let Some(reason) = body.error {
                doc.insert("body_error".into(), Json::String(reason));
            }
        }
        Json::Object(doc)
    }
}

/// Whether a body error is the server going away without ending the body
/// properly (a chunked body without its last chunk): a close like any other,
/// judged by where in the stream it happened.
fn cut_short(err: &reqwest::Error) -> bool {
    let text = error::chain(err).to_ascii_lowercase();
    text.contains("incomplete message")
        || text.contains("connection closed before message completed")
        || text.contains("unexpected eof")
        || text.contains("end of file before message length reached")
}

/// A piece of an event for a message, shortened.
fn quote(text: &str) -> String {
    if text.chars().count() <= QUOTE_CHARS {
        return text.to_string();
    }
    let mut short: String = text.chars().take(QUOTE_CHARS).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(0, "event"), "0 events");
        assert_eq!(count(1, "event"), "1 event");
        assert_eq!(count(2, "comment"), "2 comments");
    }

    fn stream() -> Stream {
        let now = Instant::now();
        Stream {
            target: Target {
                url: String::from("http://127.0.0.1:1/"),
                origin: String::from("the URL"),
                url_span: 0..0,
                limit: Duration::from_secs(1),
                deadline: now,
                listen_at: None,
            },
            sent: now,
            headers_after: Duration::ZERO,
            until: None,
            max_events: None,
            max_body_span: 0..0,
            bytes: 0,
            source: Source::new(Caps::new(u64::MAX)),
            decoder: Decoder::new(usize::MAX),
            last_miss: None,
            reconnects: 0,
            observer: Observer::none(),
            pace: Pace::default(),
        }
    }

    /// What makes a burst sent in one piece look like one (`incremental`).
    #[tokio::test]
    async fn events_completed_by_one_read_share_its_offset() {
        let mut stream = stream();
        let blocks = stream
            .decoder
            .push(b"data: a\n\ndata: b\n\ndata: c\n\ndata: d")
            .unwrap();
        assert_eq!(
            stream
                .dispatch(blocks, Duration::from_millis(7))
                .await
                .unwrap(),
            None
        );
        let blocks = stream.decoder.push(b"\n\n").unwrap();
        assert_eq!(
            stream
                .dispatch(blocks, Duration::from_millis(9))
                .await
                .unwrap(),
            None
        );
        let doc = stream.source.into_doc();
        assert_eq!(doc.first_event, Some(7.0));
        assert_eq!(doc.gaps, [0.0, 0.0, 2.0]);
    }

    #[test]
    fn long_data_is_shortened_in_messages() {
        let long = "x".repeat(500);
        assert_eq!(quote(&long).chars().count(), QUOTE_CHARS + 1);
        assert_eq!(quote("short"), "short");
    }
}
