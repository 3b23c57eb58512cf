//! The EventSource side of WHATWG's processing: raw blocks become events with
//! a type (`message` by default), the last event id (which persists across
//! events and connections) and the reconnection time (`retry`).
//!
//! Owns the event documents and the stream's totals; must not read bytes
//! ([`super::decode`]) nor decide when the stream ends ([`super`]).

use std::time::Duration;

use serde_json::{Map, Value as Json};
use sse_stream::Sse;

use crate::util::millis;

/// The events of one step, across reconnections.
#[derive(Default)]
pub(super) struct Source {
    /// Per WHATWG an empty id means "none"; it is sent on reconnection only when set.
    last_event_id: String,
    /// Whether the stream ever sent an `id` field (an empty one too).
    id_sent: bool,
    retry: Option<u64>,
    events: Vec<Json>,
    offsets: Vec<f64>,
    text: String,
}

impl Source {
    /// Applies one block; returns the event it dispatches and its index, if
    /// any.
    ///
    /// A block without data dispatches nothing, but its `id` and `retry`
    /// still count.
    pub(super) fn apply(&mut self, block: Sse, offset: Duration) -> Option<(usize, &Json)> {
        if let Some(id) = block.id {
            self.last_event_id = id;
            self.id_sent = true;
        }
        if let Some(retry) = block.retry {
            self.retry = Some(retry);
        }
        let data = block.data?;
        let kind = block
            .event
            .filter(|kind| !kind.is_empty())
            .unwrap_or_else(|| String::from("message"));
        let parsed = serde_json::from_str::<Json>(&data).unwrap_or(Json::Null);
        let offset = millis(offset);
        self.text.push_str(&data);
        self.offsets.push(offset);
        // built in place: `json!` would serialize `parsed` a second time
        let mut event = Map::with_capacity(5);
        event.insert(String::from("type"), Json::String(kind));
        event.insert(String::from("data"), Json::String(data));
        event.insert(String::from("json"), parsed);
        event.insert(
            String::from("id"),
            self.last_event_id()
                .map_or(Json::Null, |id| Json::String(id.to_string())),
        );
        event.insert(String::from("offset"), Json::from(offset));
        self.events.push(Json::Object(event));
        let index = self.events.len() - 1;
        self.events.last().map(|event| (index, event))
    }

    /// The last event id, when one is set.
    pub(super) fn last_event_id(&self) -> Option<&str> {
        Some(self.last_event_id.as_str()).filter(|id| !id.is_empty())
    }

    /// The `Last-Event-ID` of a reconnection.
    pub(super) fn resume_from(&self) -> Resume<'_> {
        match (self.id_sent, self.last_event_id()) {
            (false, _) => Resume::AsConfigured,
            (true, None) => Resume::FromStart,
            (true, Some(id)) => Resume::After(id),
        }
    }

    /// The reconnection time the server asked for.
    pub(super) fn retry(&self) -> Option<Duration> {
        self.retry.map(Duration::from_millis)
    }

    /// How many events were dispatched.
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    /// When the last event arrived (ms since the request was sent).
    pub(super) fn last_offset(&self) -> Option<f64> {
        self.offsets.last().copied()
    }

    /// The stream part of the result document.
    pub(super) fn into_doc(self) -> StreamDoc {
        let gaps: Vec<f64> = self.offsets.windows(2).map(|w| w[1] - w[0]).collect();
        let max_gap = gaps.iter().copied().reduce(f64::max);
        StreamDoc {
            first_event: self.offsets.first().copied(),
            max_gap,
            gaps,
            last_event_id: Some(self.last_event_id).filter(|id| !id.is_empty()),
            retry: self.retry,
            text: self.text,
            events: self.events,
        }
    }
}

/// Where a reconnection asks the server to resume.
pub(super) enum Resume<'a> {
    /// The stream sent no id: the step's own `last_event_id`, if any, stands.
    AsConfigured,
    /// The stream cleared the id: send no `Last-Event-ID`.
    FromStart,
    /// After this event.
    After(&'a str),
}

/// What [`Source`] contributes to the result document.
pub(super) struct StreamDoc {
    pub(super) events: Vec<Json>,
    pub(super) first_event: Option<f64>,
    pub(super) gaps: Vec<f64>,
    pub(super) max_gap: Option<f64>,
    pub(super) last_event_id: Option<String>,
    pub(super) retry: Option<u64>,
    pub(super) text: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn block(event: Option<&str>, data: Option<&str>, id: Option<&str>) -> Sse {
        Sse {
            event: event.map(str::to_string),
            data: data.map(str::to_string),
            id: id.map(str::to_string),
            retry: None,
        }
    }

    #[test]
    fn type_defaults_to_message_and_ids_persist() {
        let mut source = Source::default();
        let ms = Duration::from_millis;
        let first = source.apply(block(None, Some("{\"a\":1}"), Some("1")), ms(1));
        assert_eq!(
            first.map(|(i, e)| (i, e.clone())),
            Some((
                0,
                json!({"type": "message", "data": "{\"a\":1}", "json": {"a": 1}, "id": "1", "offset": 1.0})
            ))
        );
        assert!(source.apply(block(None, None, Some("2")), ms(2)).is_none());
        let third = source
            .apply(block(Some(""), Some("x"), None), ms(4))
            .map(|(_, e)| e.clone());
        assert_eq!(third.as_ref().map(|e| &e["id"]), Some(&json!("2")));
        assert_eq!(third.as_ref().map(|e| &e["type"]), Some(&json!("message")));
        assert_eq!(third.map(|e| e["json"].clone()), Some(Json::Null));
        let cleared = source
            .apply(block(Some("done"), Some(""), Some("")), ms(5))
            .map(|(_, e)| e.clone());
        assert_eq!(cleared.map(|e| e["id"].clone()), Some(Json::Null));
        let doc = source.into_doc();
        assert_eq!(doc.gaps, [3.0, 1.0]);
        assert_eq!(doc.max_gap, Some(3.0));
        assert_eq!(doc.first_event, Some(1.0));
        assert_eq!(doc.text, "{\"a\":1}x");
        assert_eq!(doc.last_event_id, None);
    }
}
