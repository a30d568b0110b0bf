//! Dead letters: [`DeadLetterView`] rows, a [`LetterFilter`], one letter's
//! [`DeadLetterDetail`] with its event.

use cqrs_core::projection::{DeadLetter, Redrive};
use cqrs_core::Position;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::EventView;

/// An operator's request pending on a letter: the leading runner acts on it between batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RedriveRequest {
    /// Apply the event again.
    Retry,
    /// Drop the letter; the event is never applied.
    Skip,
}

/// One parked event of one projection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeadLetterView {
    /// The projection that parked it.
    pub projection: String,
    /// The event's feed position (the letter's id within its projection).
    #[serde(with = "super::serde_pos")]
    pub position: Position,
    /// The event's stream.
    pub stream_id: String,
    /// The event's version in its stream.
    pub version: u64,
    /// The event's type.
    pub event_type: String,
    /// The key it holds back (its later events wait behind it); `None`: unkeyed.
    pub key: Option<String>,
    /// Why it was parked (for an event held back behind another: which one).
    pub error: String,
    /// When it was parked.
    #[serde(with = "time::serde::rfc3339")]
    pub parked_at: OffsetDateTime,
    /// A request pending on it.
    pub request: Option<RedriveRequest>,
}

impl From<&DeadLetter> for DeadLetterView {
    fn from(letter: &DeadLetter) -> Self {
        Self {
            projection: letter.projection.clone(),
            position: letter.position,
            stream_id: letter.stream_id.as_str().to_owned(),
            version: letter.version.get(),
            event_type: letter.event_type.clone(),
            key: letter.key.clone(),
            error: letter.error.clone(),
            parked_at: letter.parked_at,
            request: letter.request.map(|r| match r {
                Redrive::Retry => RedriveRequest::Retry,
                Redrive::Skip => RedriveRequest::Skip,
            }),
        }
    }
}

/// One letter with the event it parked (payload and metadata), when the event is still
/// there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeadLetterDetail {
    /// The letter.
    pub letter: DeadLetterView,
    /// Its event.
    pub event: Option<EventView>,
}

/// Which dead letters to list: every field narrows the list; the default lists every
/// projection's, up to 100.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LetterFilter {
    /// Only this projection's.
    pub projection: Option<String>,
    /// Only letters under this key.
    pub key: Option<String>,
    /// Only this stream's events.
    pub stream_id: Option<String>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// At most this many (0: the default, 100).
    pub limit: usize,
}

impl LetterFilter {
    /// Every letter, up to 100.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only `projection`'s letters.
    #[must_use]
    pub fn projection(mut self, projection: impl Into<String>) -> Self {
        self.projection = Some(projection.into());
        self
    }

    /// Only letters under `key`.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Only `stream_id`'s events.
    #[must_use]
    pub fn stream_id(mut self, stream_id: impl Into<String>) -> Self {
        self.stream_id = Some(stream_id.into());
        self
    }

    /// Only events of `event_type`.
    #[must_use]
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// At most `limit` letters.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub(crate) fn max(&self) -> usize {
        if self.limit == 0 {
            100
        } else {
            self.limit
        }
    }

    pub(crate) fn matches(&self, letter: &DeadLetter) -> bool {
        self.key
            .as_deref()
            .is_none_or(|k| letter.key.as_deref() == Some(k))
            && self
                .stream_id
                .as_deref()
                .is_none_or(|s| letter.stream_id.as_str() == s)
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| letter.event_type == t)
    }
}
