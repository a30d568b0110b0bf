//! The real `ProjectionRunner`, wired to PostgreSQL the way a service would wire it: the PG
//! store is the feed, the checkpoint store and the dead-letter store, and `LISTEN` wakes it.

use std::time::Duration;

use cqrs_core::projection::{Projection, ProjectionRunner, RunnerOptions};
use cqrs_core::RetryPolicy;
use cqrs_postgres::PgEventStore;

/// Options that keep tests quick: batches of 20, a poll every 100 ms, transient failures
/// retried from 20 ms up to 500 ms without end, a breaker opening for 500 ms after 2 failures.
pub fn quick_options() -> RunnerOptions {
    RunnerOptions::new()
        .batch_size(20)
        .poll_interval(Duration::from_millis(100))
        .retry(
            RetryPolicy::new(u32::MAX)
                .delays(Duration::from_millis(20), Duration::from_millis(500)),
        )
        .breaker(2, Duration::from_millis(500))
}

/// A runner for `projection` on `store`: feed, checkpoints and dead letters in PostgreSQL,
/// `LISTEN` wake-ups, with `options`.
pub fn pg_runner(
    projection: impl Projection + 'static,
    store: &PgEventStore,
    options: RunnerOptions,
) -> ProjectionRunner {
    ProjectionRunner::new(projection, store.clone(), store.clone())
        .with_signal(store.feed_signal())
        .with_dead_letters(store.clone())
        .with_options(options)
}
