//! [`ConsoleStore`]: the store roles the console reads and the requests it makes.

use cqrs_core::process::ProcessStore;
use cqrs_core::projection::DeadLetterStore;
use cqrs_core::{CheckpointStore, ReadAll, ReadStream};

/// Every store role the console uses: checkpoints, the feed and streams (the event browser),
/// dead letters (list, retry, skip) and process instances. Implemented for every store that
/// has them all, `PgEventStore` and `InMemoryEventStore` among them.
pub trait ConsoleStore:
    DeadLetterStore + ReadStream + ReadAll + ProcessStore + CheckpointStore + 'static
{
}

impl<S> ConsoleStore for S where
    S: DeadLetterStore + ReadStream + ReadAll + ProcessStore + CheckpointStore + 'static
{
}
