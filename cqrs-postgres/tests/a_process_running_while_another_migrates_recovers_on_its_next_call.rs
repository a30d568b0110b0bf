//! A migration that changes a column another process's connections have prepared statements
//! on (migration 8 changed `stream_id`'s collation) makes PostgreSQL refuse each of those
//! statements once per connection ("cached plan must not change result type", 0A000), and
//! again on every later call on that connection until the pool recycles it. Such a refusal is
//! a retry's to cure, and drops its connection: the running process recovers on its next call
//! during a rolling deploy, instead of failing its projections for good.

mod support;

use cqrs_core::{
    AppendEvents, ExpectedVersion, NewEvent, Position, ReadAll, ReadStream, StreamId, Version,
};
use cqrs_postgres::{GroupCommit, PgEventStore};
use serde_json::json;
use sqlx::PgPool;
use support::grouped_spans::GroupedSpans;
use tracing_subscriber::layer::SubscriberExt;

async fn execute(pool: &PgPool, store: &PgEventStore, statement: &str) {
    sqlx::query(&statement.replace("{schema}", &format!("\"{}\"", store.schema().as_str())))
        .execute(pool)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

/// The store as migration 7 left it: stream ids in the database's collation.
async fn before_migration_8(pool: &PgPool, store: &PgEventStore) {
    for statement in [
        "ALTER TABLE {schema}.events ALTER COLUMN stream_id TYPE text COLLATE \"default\"",
        "ALTER TABLE {schema}.snapshots ALTER COLUMN stream_id TYPE text COLLATE \"default\"",
        "DELETE FROM {schema}.schema_migrations WHERE version >= 8",
    ] {
        execute(pool, store, statement).await;
    }
}

fn event(n: u64) -> Vec<NewEvent> {
    vec![NewEvent::new("Counted", 1, json!({ "n": n }))]
}

/// Runs `call` at most twice: a first failure must be a retry's to cure.
async fn twice<T, F, Fut>(what: &str, call: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = cqrs_core::Result<T>>,
{
    match call().await {
        Ok(value) => value,
        Err(error) => {
            assert!(
                error.is_transient(),
                "{what}: the first failure after the migration is not transient: {error}"
            );
            call()
                .await
                .unwrap_or_else(|error| panic!("{what} failed again on its retry: {error}"))
        }
    }
}

// One thread, so the lane reports its spans to this test's subscriber.
#[tokio::test]
async fn a_running_process_reads_and_appends_again_after_another_runs_migration_8() {
    let grouped = GroupedSpans::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(grouped.clone()));
    let admin = support::pool(2).await;
    // The running process: one connection for its calls, one for its group commit lane.
    let running = PgEventStore::new(support::pool(2).await)
        .with_schema(support::unique_schema())
        .with_group_commit(GroupCommit::default().lanes(1).alone_below(0));
    running.migrate().await.expect("migrate");
    before_migration_8(&admin, &running).await;
    let stream = StreamId::new("counter-1").expect("a stream id");
    // Its connections prepare the statements it runs.
    running
        .append(&stream, ExpectedVersion::NoStream, event(1))
        .await
        .expect("append before the upgrade");
    running
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read before the upgrade");
    let all = cqrs_core::EventFilter::all();
    running
        .read_all(Position::START, 10, &all)
        .await
        .expect("feed before the upgrade");

    // Another process of the new release migrates.
    let upgrading = PgEventStore::new(admin.clone()).with_schema(running.schema().clone());
    assert_eq!(upgrading.migrate().await.expect("upgrade"), [8, 9]);

    let read = twice("the feed", || running.read_all(Position::START, 10, &all)).await;
    assert_eq!(read.events.len(), 1);
    let events = twice("the stream", || {
        running.read_stream(&stream, Version::new(1), 10)
    })
    .await;
    assert_eq!(events.len(), 1);
    let grouped_before = grouped.count();
    let mut version = 1;
    for n in 2..=4 {
        // The grouped append's lane, then calls alone.
        let outcome = twice("an append", || {
            running.append(
                &stream,
                ExpectedVersion::Exact(Version::new(version)),
                event(n),
            )
        })
        .await;
        version = outcome.last_version.get();
    }
    assert_eq!(version, 4);
    // The lane refused one group at most: it took another connection for the next.
    assert!(
        grouped.count() - grouped_before >= 2,
        "the lane kept the connection that refuses its statement: {} of 3 appends grouped",
        grouped.count() - grouped_before
    );
}
