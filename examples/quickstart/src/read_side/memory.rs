//! [`OrderSummaries`]: the order summaries in a `HashMap`, a core [`Projection`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError, Rejected};
use cqrs_core::{CheckpointStore, EventFilter, Position, RecordedEvent};

use crate::summary::{self, OrderSummary};

/// The order summaries in memory, by order id: a [`Projection`] for the core's
/// [`ProjectionRunner`](cqrs_core::projection::ProjectionRunner), and the queries' answers.
///
/// Idempotent by position: each summary remembers the last event folded into it, and older
/// events are skipped, so a batch delivered twice changes nothing. It keeps its own checkpoint
/// too (it is its [`CheckpointStore`]): the documents and the checkpoint live and die together,
/// so a new process starts both from scratch instead of trusting a durable checkpoint for
/// documents it has lost. Clones share the same summaries.
#[derive(Clone, Debug, Default)]
pub struct OrderSummaries {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    summaries: HashMap<String, OrderSummary>,
    checkpoints: HashMap<String, Position>,
}

impl OrderSummaries {
    /// No summaries yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The summary of order `id`.
    pub fn get(&self, id: &str) -> Option<OrderSummary> {
        self.read().summaries.get(id).cloned()
    }

    /// The summaries that satisfy `condition`, by order id.
    pub fn find(&self, condition: impl Fn(&OrderSummary) -> bool) -> Vec<OrderSummary> {
        let mut found: Vec<OrderSummary> = (self.read().summaries.values())
            .filter(|s| condition(s))
            .cloned()
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Projection for OrderSummaries {
    fn name(&self) -> &str {
        "order-summaries"
    }

    fn filter(&self) -> EventFilter {
        summary::filter()
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        summary::order_id(event)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut inner = self.write();
        let mut rejected = Vec::new();
        // An order whose event was rejected takes no later event of the batch: each summary
        // sees its events in order or not at all.
        let mut held_back = HashSet::new();
        for event in events {
            let Some(id) = summary::order_id(event) else {
                continue;
            };
            if held_back.contains(&id) {
                rejected.push(Rejected::new(
                    event.position,
                    "an earlier event was rejected",
                ));
                continue;
            }
            let current = inner.summaries.get(&id);
            if current.is_some_and(|s| s.position >= event.position) {
                continue; // Folded in already: this is a redelivery.
            }
            match summary::fold(current, event) {
                Ok(Some(next)) => {
                    inner.summaries.insert(id, next);
                }
                Ok(None) => {}
                // Written by a newer release: the batch waits for it (what was folded is
                // folded again as a redelivery, which changes nothing).
                Err(error) if cqrs_core::Error::is_transient_boxed(&*error) => {
                    return Err(ProjectionError::Transient(error));
                }
                Err(error) => {
                    rejected.push(Rejected::new(event.position, error));
                    held_back.insert(id);
                }
            }
        }
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(ProjectionError::Poison(rejected))
        }
    }
}

#[async_trait]
impl CheckpointStore for OrderSummaries {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        Ok(self.read().checkpoints.get(name).copied())
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        // Forward only, as the trait asks: a late save never moves it back.
        let mut inner = self.write();
        let checkpoint = inner.checkpoints.entry(name.to_owned()).or_insert(position);
        *checkpoint = (*checkpoint).max(position);
        Ok(())
    }

    async fn reset_checkpoint(&self, name: &str) -> cqrs_core::Result<()> {
        self.write().checkpoints.remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use cqrs_core::projection::{Projection, ProjectionError};
    use cqrs_core::{
        AppendEvents, EventFilter, ExpectedVersion, InMemoryEventStore, NewEvent, Position,
        ReadAll, StreamId,
    };

    use super::OrderSummaries;

    /// An order event a newer release wrote (its schema version ahead of this code's) waits
    /// for that release: parked, the order's summary would be held back for an operator.
    #[tokio::test]
    async fn an_event_written_by_newer_code_is_retried_not_parked() {
        let store = InMemoryEventStore::new();
        store
            .append(
                &StreamId::new("order-o-1").expect("id"),
                ExpectedVersion::NoStream,
                vec![NewEvent::new(
                    "OrderPlaced",
                    9,
                    serde_json::json!({ "customer": "c", "lines": [], "channel": "web" }),
                )],
            )
            .await
            .expect("append");
        let batch = store
            .read_all(Position::START, 10, &EventFilter::all())
            .await
            .expect("the event")
            .events;
        let applied = OrderSummaries::new().apply(&batch).await;
        assert!(
            matches!(applied, Err(ProjectionError::Transient(_))),
            "{applied:?}"
        );
    }
}
