//! Dead letters: events a projection cannot apply, parked with the error, and an operator's
//! requests to retry or skip them.
//!
//! One letter per event, on purpose: a parked key holds back every later event of the key, and
//! each of them is a letter, because re-driving the key must apply exactly those events, in
//! feed order. They cannot be found again otherwise: the key is computed by the projection from
//! the payload, a document may be fed by several streams, and the projection's filter picks
//! event types. A letter is small (ids and the error, no payload), and an operator drains a
//! key's letters with [`DeadLetterStore::retry`] or [`DeadLetterStore::skip`].

use async_trait::async_trait;
use time::OffsetDateTime;

use super::Lease;
use crate::{FencedSave, Position, Result, StreamId, Version};

/// An event a projection parked instead of applying.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The projection.
    pub projection: String,
    /// The event's feed position.
    pub position: Position,
    /// The event's stream.
    pub stream_id: StreamId,
    /// The event's version.
    pub version: Version,
    /// The event's type.
    pub event_type: String,
    /// The projection's key for the event (its document), if any: later events with the same
    /// key are parked too.
    pub key: Option<String>,
    /// Why it was parked.
    pub error: String,
    /// When.
    pub parked_at: OffsetDateTime,
    /// What an operator asked for, until the projection's leading runner has done it.
    pub request: Option<Redrive>,
}

/// What an operator asks of parked letters; the projection's leading runner carries it out
/// between two batches.
///
/// Exhaustive on purpose: every store must keep each request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redrive {
    /// Read the event again, upcast and apply it: with every letter of its key, in feed order,
    /// when it has one (so the document keeps its order; letters of the key parked after the
    /// request are included). On success the letters go and the key is no longer held back;
    /// on failure they stay, with the new error and without the request. A letter without a
    /// key is applied alone, after whatever later events were applied meanwhile: only keys
    /// keep an order.
    Retry,
    /// Drop the letter without applying it. Once no letter of its key is left, the key is no
    /// longer held back: later events flow (the skipped ones stay missing from the document).
    /// A letter of the key parked between the request and the runner's next look is not
    /// skipped and keeps holding the key back: skip again.
    Skip,
}

/// Which dead letters a request is about.
///
/// Exhaustive on purpose: every store must find each target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LetterTarget {
    /// Every letter parked under this key (document).
    Key(String),
    /// The letter of the event at this position.
    Position(Position),
}

/// Keeps dead letters per projection, and the requests to retry or skip them.
///
/// Operators call [`retry`](Self::retry) and [`skip`](Self::skip) (they only mark letters);
/// the projection's leading runner finds the marked letters with
/// [`requested`](Self::requested) and carries them out with [`key_letters`](Self::key_letters),
/// [`remove`](Self::remove) and [`redrive_failed`](Self::redrive_failed).
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    /// Parks `letter` (parking the same projection and position twice keeps the first).
    async fn park(&self, letter: DeadLetter) -> Result<()>;

    /// Like [`park`](Self::park), but only while `lease` (named like the letter's projection)
    /// is held, checked atomically with the write, as a fenced checkpoint save: a worker
    /// fenced off (by a takeover, or a reset that dropped the letters) cannot park a letter
    /// whose key the next term would hold back. Otherwise nothing is written and the outcome
    /// is [`FencedSave::LeaseLost`].
    ///
    /// Stores that keep leases beside their letters implement it; the default parks unfenced.
    async fn park_fenced(&self, letter: DeadLetter, lease: &Lease) -> Result<FencedSave> {
        let _ = lease;
        self.park(letter).await.map(|()| FencedSave::Saved)
    }

    /// A page of the dead letters of `projection`, in feed order: at most `limit` letters
    /// after position `after` (`Position::START` for the first page; the last letter's
    /// position for the next).
    async fn dead_letters(
        &self,
        projection: &str,
        after: Position,
        limit: usize,
    ) -> Result<Vec<DeadLetter>>;

    /// The keys `projection` holds back: each key with at least one letter, once. The runner
    /// loads these when it starts leading, not the letters.
    async fn parked_keys(&self, projection: &str) -> Result<Vec<String>>;

    /// The first `limit` letters parked under `key`, in feed order.
    async fn key_letters(
        &self,
        projection: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>>;

    /// Marks the letters `target` names with `request` (`None` withdraws a request), and
    /// returns how many it marked.
    async fn request(
        &self,
        projection: &str,
        target: &LetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64>;

    /// Asks the projection's runner to apply the letters `target` names again
    /// ([`Redrive::Retry`]); how many letters it marked.
    async fn retry(&self, projection: &str, target: &LetterTarget) -> Result<u64> {
        self.request(projection, target, Some(Redrive::Retry)).await
    }

    /// Asks the projection's runner to drop the letters `target` names
    /// ([`Redrive::Skip`]); how many letters it marked.
    async fn skip(&self, projection: &str, target: &LetterTarget) -> Result<u64> {
        self.request(projection, target, Some(Redrive::Skip)).await
    }

    /// At most `limit` letters of `projection` with a request, in feed order (for the runner:
    /// a cheap check when none has one).
    async fn requested(&self, projection: &str, limit: usize) -> Result<Vec<DeadLetter>>;

    /// Removes the letters at `positions` (re-driven or skipped); how many there were.
    async fn remove(&self, projection: &str, positions: &[Position]) -> Result<u64>;

    /// Re-driving the letter at `position` failed with `error`: it stays, with this error and
    /// without its request.
    async fn redrive_failed(&self, projection: &str, position: Position, error: &str)
        -> Result<()>;
}
