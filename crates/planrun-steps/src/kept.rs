//! What a streaming step keeps of what it reads: a list of documents bounded
//! in count and in the memory they hold, which past its cap keeps the first
//! documents and the latest ones and counts those it left out.
//!
//! Owns the caps, the estimate of a document's memory and the choice of what
//! stays. Must not decide what passing the cap means for a step: a read for
//! a fixed time goes on with the first and last documents, a read until
//! something happens fails; that is the executor's (`sse`, `ws`).

use std::collections::VecDeque;
use std::mem::size_of;

use serde_json::Value as Json;

use crate::util::{count, human_size};

/// The most documents a list keeps.
pub(crate) const KEPT_DOCS: usize = 10_000;

/// How much a list may keep: documents, and the memory they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// Documents at most.
    pub(crate) docs: usize,
    /// Estimated bytes at most (see [`held`]).
    pub(crate) bytes: usize,
}

impl Caps {
    /// [`KEPT_DOCS`] documents, or `bytes` of memory (the step's `max_body`).
    pub(crate) fn new(bytes: u64) -> Self {
        Self {
            docs: KEPT_DOCS,
            bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
        }
    }
}

/// Which cap a list passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Passed {
    /// More documents than [`Caps::docs`].
    Docs(usize),
    /// More memory than [`Caps::bytes`].
    Bytes(usize),
}

impl Passed {
    /// The cap in words, with the noun of a document: "10000 events",
    /// "16 MiB of events".
    pub(crate) fn describe(self, noun: &str) -> String {
        match self {
            Passed::Docs(n) => count(n, noun),
            Passed::Bytes(bytes) => format!("{} of {noun}s", human_size(bytes as u64)),
        }
    }
}

/// A list that keeps every document while they fit under its [`Caps`], and
/// past them the first ones (up to half of each cap) and the latest ones, in
/// order, counting the others in [`dropped`](Self::dropped). The latest
/// document is always kept, even alone over the memory cap: what bounds one
/// document is the step's cap on a line, an event or a message.
#[derive(Debug)]
pub(crate) struct Kept<T> {
    caps: Caps,
    first: Vec<T>,
    first_bytes: usize,
    /// The latest documents with their sizes, once the first are settled.
    last: VecDeque<(T, usize)>,
    last_bytes: usize,
    dropped: usize,
    passed: Option<Passed>,
}

impl<T> Kept<T> {
    pub(crate) fn new(caps: Caps) -> Self {
        Self {
            caps,
            first: Vec::new(),
            first_bytes: 0,
            last: VecDeque::new(),
            last_bytes: 0,
            dropped: 0,
            passed: None,
        }
    }

    /// Adds a document of `size` estimated bytes (the list adds its own
    /// slot); false when this made the list leave one out.
    pub(crate) fn push(&mut self, item: T, size: usize) -> bool {
        let size = size.saturating_add(size_of::<T>());
        if self.last.is_empty()
            && self.first.len() < self.caps.docs / 2
            && self.first_bytes.saturating_add(size) <= self.caps.bytes / 2
        {
            self.first.push(item);
            self.first_bytes += size;
            return true;
        }
        self.last.push_back((item, size));
        self.last_bytes = self.last_bytes.saturating_add(size);
        let mut whole = true;
        while self.last.len() > 1 {
            let docs = self.first.len() + self.last.len();
            let bytes = self.first_bytes.saturating_add(self.last_bytes);
            let over = if docs > self.caps.docs {
                Passed::Docs(self.caps.docs)
            } else if bytes > self.caps.bytes {
                Passed::Bytes(self.caps.bytes)
            } else {
                break;
            };
            self.passed.get_or_insert(over);
            if let Some((_, size)) = self.last.pop_front() {
                self.last_bytes -= size;
            }
            self.dropped += 1;
            whole = false;
        }
        whole
    }

    /// How many documents were pushed, kept or not.
    pub(crate) fn seen(&self) -> usize {
        self.len() + self.dropped
    }

    /// How many documents are kept.
    pub(crate) fn len(&self) -> usize {
        self.first.len() + self.last.len()
    }

    /// How many documents were left out.
    pub(crate) fn dropped(&self) -> usize {
        self.dropped
    }

    /// The cap passed first, once one was.
    pub(crate) fn passed(&self) -> Option<Passed> {
        self.passed
    }

    /// The latest document.
    pub(crate) fn latest(&self) -> Option<&T> {
        self.last
            .back()
            .map(|(item, _)| item)
            .or_else(|| self.first.last())
    }

    /// The kept documents, in order.
    pub(crate) fn into_vec(self) -> Vec<T> {
        let mut items = self.first;
        items.extend(self.last.into_iter().map(|(item, _)| item));
        items
    }
}

/// The memory a JSON document holds, estimated from its shape: the value
/// itself, its strings' buffers, and the tables of its arrays and objects
/// (objects keep their order, so an entry costs its key, its value, a hash
/// and an index slot). Allocations count in 16-byte steps, as allocators
/// round them.
pub(crate) fn held(doc: &Json) -> usize {
    size_of::<Json>() + held_inside(doc)
}

/// [`held`] without the value itself (which sits in its parent's table).
fn held_inside(doc: &Json) -> usize {
    match doc {
        Json::Null | Json::Bool(_) | Json::Number(_) => 0,
        Json::String(text) => heap(text.capacity()),
        Json::Array(items) => {
            heap(items.capacity() * size_of::<Json>())
                + items.iter().map(held_inside).sum::<usize>()
        }
        Json::Object(map) => {
            let len = map.len();
            // an entry: hash, key, value; the index: a position and a
            // control byte per bucket, at most 7/8 of them full, and a
            // group of control bytes more
            let entries = len * (size_of::<usize>() + size_of::<String>() + size_of::<Json>());
            let buckets = match len {
                0 => 0,
                1..4 => 4,
                4..8 => 8,
                _ => (len * 8 / 7).next_power_of_two(),
            };
            let index = buckets * (size_of::<usize>() + 1) + 16;
            heap(entries)
                + heap(index)
                + map
                    .iter()
                    .map(|(key, value)| heap(key.capacity()) + held_inside(value))
                    .sum::<usize>()
        }
    }
}

/// An allocation of `bytes`, as the allocator hands it out.
fn heap(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else {
        bytes.next_multiple_of(16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn caps(docs: usize, bytes: usize) -> Caps {
        Caps { docs, bytes }
    }

    #[test]
    fn everything_is_kept_under_the_caps() {
        let mut kept = Kept::new(caps(4, 1000));
        for n in 0..4 {
            assert!(kept.push(n, 10));
        }
        assert_eq!(kept.dropped(), 0);
        assert_eq!(kept.passed(), None);
        assert_eq!(kept.into_vec(), [0, 1, 2, 3]);
    }

    #[test]
    fn past_the_count_the_first_and_the_latest_stay() {
        let mut kept = Kept::new(caps(4, 1_000_000));
        let whole: Vec<bool> = (0..10).map(|n| kept.push(n, 10)).collect();
        assert_eq!(
            whole,
            [
                true, true, true, true, false, false, false, false, false, false
            ]
        );
        assert_eq!(kept.into_vec(), [0, 1, 8, 9]);
    }

    #[test]
    fn past_the_memory_the_first_and_the_latest_stay() {
        let slot = size_of::<u32>();
        let mut kept = Kept::new(caps(1000, 4 * (100 + slot)));
        for n in 0..10u32 {
            kept.push(n, 100);
        }
        assert_eq!(kept.seen(), 10);
        assert_eq!(kept.dropped(), 6);
        assert_eq!(kept.passed(), Some(Passed::Bytes(4 * (100 + slot))));
        assert_eq!(kept.latest(), Some(&9));
        assert_eq!(kept.into_vec(), [0, 1, 8, 9]);
    }

    #[test]
    fn the_latest_stays_even_alone_over_the_cap() {
        let mut kept = Kept::new(caps(10, 100));
        kept.push("small", 10);
        kept.push("huge", 1000);
        assert_eq!(kept.latest(), Some(&"huge"));
        kept.push("next", 10);
        assert_eq!(kept.into_vec(), ["small", "next"]);
    }

    #[test]
    fn the_cap_passed_is_named() {
        assert_eq!(Passed::Docs(10_000).describe("event"), "10000 events");
        assert_eq!(
            Passed::Bytes(16 * 1024 * 1024).describe("message"),
            "16 MiB of messages"
        );
    }

    #[test]
    fn memory_grows_with_the_strings_and_the_tables() {
        let small = held(&json!({"type": "message", "data": "x"}));
        let big = held(&json!({"type": "message", "data": "x".repeat(1000)}));
        assert!(big >= small + 990, "{small} {big}");
        assert!(held(&json!([1, 2, 3])) > held(&json!([])));
        assert!(held(&json!(null)) > 0);
    }
}
