//! [`ProjectionStore`]: a backend that plays every role a projection runner needs.

use crate::{CheckpointStore, InMemoryEventStore, ReadAll, ReadStream};

use super::{DeadLetterStore, FeedSignal, LeaseStore};

/// A store that plays every role of a [`ProjectionRunner`](super::ProjectionRunner): the feed
/// it reads, the checkpoint it keeps, the lease it shares the projection by, the dead letters
/// it parks poison in (and reads again from the streams), and the signal that wakes it on
/// appends. [`ProjectionRunner::for_store`](super::ProjectionRunner::for_store) wires a runner
/// to one in a call.
///
/// Implemented by [`InMemoryEventStore`] and by PostgreSQL's store. Code generic over a store
/// that runs projections can take `S: ProjectionStore`.
pub trait ProjectionStore:
    ReadAll + ReadStream + CheckpointStore + LeaseStore + DeadLetterStore + Clone + 'static
{
    /// The wake-up signal a runner subscribes to.
    type Signal: FeedSignal + 'static;

    /// The signal that fires when appends to this store commit.
    fn signal(&self) -> Self::Signal;
}

impl ProjectionStore for InMemoryEventStore {
    type Signal = InMemoryEventStore;

    fn signal(&self) -> Self::Signal {
        self.clone()
    }
}
