//! [`TailQuery`] and [`TailPage`]: the global feed from a position, filtered.

use cqrs_core::{EventFilter, Position};
use serde::{Deserialize, Serialize};

use super::EventView;

/// Which part of the feed to read: after a position, some categories and event types.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TailQuery {
    /// Read the events after this position ([`Position::START`]: from the first).
    pub after: Position,
    /// Only streams of these categories (the part of the stream id before the first `-`);
    /// empty: all.
    pub categories: Vec<String>,
    /// Only these event types; empty: all.
    pub event_types: Vec<String>,
    /// At most this many events (default 100).
    pub limit: usize,
}

impl Default for TailQuery {
    fn default() -> Self {
        Self {
            after: Position::START,
            categories: Vec::new(),
            event_types: Vec::new(),
            limit: 100,
        }
    }
}

impl TailQuery {
    /// The feed from its start, at most 100 events.
    pub fn new() -> Self {
        Self::default()
    }

    /// After this position.
    #[must_use]
    pub fn after(mut self, position: Position) -> Self {
        self.after = position;
        self
    }

    /// Only this category too.
    #[must_use]
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.categories.push(category.into());
        self
    }

    /// Only this event type too.
    #[must_use]
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_types.push(event_type.into());
        self
    }

    /// At most `limit` events.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub(crate) fn filter(&self) -> EventFilter {
        let mut filter = EventFilter::all().event_types(self.event_types.iter().cloned());
        for category in &self.categories {
            filter = filter.category(category.clone());
        }
        filter
    }
}

/// A page of the feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TailPage {
    /// The events, in feed order.
    pub events: Vec<EventView>,
    /// Where the next page starts (pass it as [`TailQuery::after`]); past filtered-out events
    /// too.
    #[serde(with = "super::serde_pos")]
    pub next: Position,
    /// Whether more events may be ready at once: the page is full, or the store stopped
    /// scanning early. `false`: this page reached the head of the feed.
    pub more: bool,
}
