//! The EventSource side of WHATWG's processing: raw blocks become events with
//! a type (`message` by default), the last event id (which persists across
//! events and connections) and the reconnection time (`retry`).
//!
//! Owns the event documents, bounded by [`Kept`], and the stream's totals;
//! must not read bytes ([`super::decode`]) nor decide when the stream ends
//! or what passing the caps means ([`super`]).

use std::time::Duration;

use serde_json::{Map, Value as Json};
use sse_stream::Sse;

use crate::kept::{Caps, Kept, Passed, held};
use crate::util::millis;

/// A kept event: its document, and the gap from the event before it (kept
/// or not), in ms.
struct Event {
    doc: Json,
    gap: Option<f64>,
}

/// The events of one step, across reconnections.
pub(super) struct Source {
    /// Per WHATWG an empty id means "none"; it is sent on reconnection only when set.
    last_event_id: String,
    /// Whether the stream ever sent an `id` field (an empty one too).
    id_sent: bool,
    retry: Option<u64>,
    events: Kept<Event>,
    first_offset: Option<f64>,
    last_offset: Option<f64>,
    /// The largest gap between two events that arrived one after the other.
    max_gap: Option<f64>,
}

impl Source {
    /// The events of a stream, keeping at most `caps` of them.
    pub(super) fn new(caps: Caps) -> Self {
        Self {
            last_event_id: String::new(),
            id_sent: false,
            retry: None,
            events: Kept::new(caps),
            first_offset: None,
            last_offset: None,
            max_gap: None,
        }
    }

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
        let gap = self.last_offset.map(|last| offset - last);
        if let Some(gap) = gap {
            self.max_gap = Some(self.max_gap.map_or(gap, |max| max.max(gap)));
        }
        self.first_offset.get_or_insert(offset);
        self.last_offset = Some(offset);
        // `text` holds the data a second time, and `gaps` a number
        let size = data.len() + held(&Json::Null);
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
        let doc = Json::Object(event);
        let size = size + held(&doc);
        self.events.push(Event { doc, gap }, size);
        let index = self.events.seen() - 1;
        self.events.latest().map(|event| (index, &event.doc))
    }

    /// The latest event.
    pub(super) fn latest(&self) -> Option<&Json> {
        self.events.latest().map(|event| &event.doc)
    }

    /// How many events were left out, and the cap passed first.
    pub(super) fn dropped(&self) -> (usize, Option<Passed>) {
        (self.events.dropped(), self.events.passed())
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

    /// How many events were dispatched, kept or not.
    pub(super) fn len(&self) -> usize {
        self.events.seen()
    }

    /// When the last event arrived (ms since the request was sent).
    pub(super) fn last_offset(&self) -> Option<f64> {
        self.last_offset
    }

    /// The stream part of the result document.
    pub(super) fn into_doc(self) -> StreamDoc {
        let dropped = self.events.dropped();
        let kept = self.events.into_vec();
        let mut text = String::new();
        for event in &kept {
            text.push_str(event.doc["data"].as_str().unwrap_or_default());
        }
        let gaps = kept.iter().filter_map(|event| event.gap).collect();
        StreamDoc {
            first_event: self.first_offset,
            max_gap: self.max_gap,
            gaps,
            last_event_id: Some(self.last_event_id).filter(|id| !id.is_empty()),
            retry: self.retry,
            text,
            dropped,
            events: kept.into_iter().map(|event| event.doc).collect(),
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
    pub(super) dropped: usize,
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
        let mut source = Source::new(Caps::new(u64::MAX));
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
