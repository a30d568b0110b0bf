//! The [`Aggregate`] trait: the user's domain model.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::DomainEvent;

/// An event-sourced aggregate: state folded from its events, and decisions that produce new ones.
///
/// `apply` is the only way state changes, on every path (full replay, snapshot plus tail, after a
/// command), so those paths cannot disagree. `handle` decides: it reads the state and the command
/// and returns the events to record, or the aggregate's own typed error. It must not change
/// anything itself: the pipeline may run it again after a concurrency conflict.
///
/// ```
/// use cqrs_core::{Aggregate, DomainEvent};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Default, Serialize, Deserialize)]
/// struct Counter { value: u64 }
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
/// enum CounterEvent { Incremented { by: u64 } }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the counter would pass its limit")]
/// struct TooMuch;
///
/// impl Aggregate for Counter {
///     const TYPE: &'static str = "counter";
///     type Command = u64;
///     type Event = CounterEvent;
///     type Error = TooMuch;
///     type Services = ();
///
///     fn apply(&mut self, event: &CounterEvent) {
///         match event { CounterEvent::Incremented { by } => self.value += by }
///     }
///
///     async fn handle(&self, by: &u64, _: &()) -> Result<Vec<CounterEvent>, TooMuch> {
///         if self.value + by > 100 { return Err(TooMuch); }
///         Ok(vec![CounterEvent::Incremented { by: *by }])
///     }
/// }
/// ```
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The aggregate's type name. It is the category of its streams: an instance with id `42`
    /// lives in stream `"{TYPE}-42"`. It must not contain `-`.
    const TYPE: &'static str;

    /// The schema version of the serialized state in snapshots. Bump it when the state's shape
    /// changes: older snapshots are then ignored and the aggregate loads by full replay.
    const SNAPSHOT_VERSION: u32 = 1;

    /// What callers ask the aggregate to do.
    type Command: Send + Sync;
    /// What the aggregate records.
    type Event: DomainEvent;
    /// Why the aggregate refuses a command.
    type Error: std::error::Error + Send + Sync + 'static;
    /// What `handle` may call out to (a price list, a clock...). Use `()` for none.
    type Services: Send + Sync;

    /// Folds one event into the state. Never fails: the event already happened.
    fn apply(&mut self, event: &Self::Event);

    /// Decides what `command` does to the current state.
    fn handle(
        &self,
        command: &Self::Command,
        services: &Self::Services,
    ) -> impl Future<Output = Result<Vec<Self::Event>, Self::Error>> + Send;
}
