//! Stream ids are identifiers: the indexes on them compare bytes (`COLLATE "C"`), not the
//! database's language collation, whose comparisons made every append's index insert slower
//! (migration 8). A new store is made so; an older one is brought there with its events kept.

mod support;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, ReadStream, StreamId, Version};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use sqlx::PgPool;

/// The collation the first column of `index` (in the store's schema) orders by.
async fn index_collation(store: &PgEventStore, index: &str) -> String {
    sqlx::query_scalar(
        "SELECT c.collname::text
         FROM pg_index i JOIN pg_collation c ON c.oid = i.indcollation[0]
         WHERE i.indexrelid = to_regclass($1)",
    )
    .bind(format!("\"{}\".{index}", store.schema().as_str()))
    .fetch_one(store.pool())
    .await
    .expect("the index's collation")
}

/// The collation of `table.stream_id` in the store's schema, when it names one.
async fn column_collation(store: &PgEventStore, table: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT collation_name::text FROM information_schema.columns
         WHERE table_schema = $1 AND table_name = $2 AND column_name = 'stream_id'",
    )
    .bind(store.schema().as_str())
    .bind(table)
    .fetch_one(store.pool())
    .await
    .expect("the column's collation")
}

async fn execute(pool: &PgPool, store: &PgEventStore, statement: &str) {
    sqlx::query(&statement.replace("{schema}", &format!("\"{}\"", store.schema().as_str())))
        .execute(pool)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

#[tokio::test]
async fn a_new_store_s_stream_indexes_compare_bytes() {
    let store = support::store().await;

    for table in ["events", "snapshots"] {
        assert_eq!(
            column_collation(&store, table).await.as_deref(),
            Some("C"),
            "{table}.stream_id"
        );
    }
    assert_eq!(
        index_collation(&store, "events_stream_version_key").await,
        "C"
    );
    assert_eq!(index_collation(&store, "snapshots_pkey").await, "C");
}

#[tokio::test]
async fn an_older_store_is_upgraded_with_its_events_kept_and_its_versions_still_unique() {
    let pool = support::pool(4).await;
    let store = PgEventStore::new(pool.clone()).with_schema(support::unique_schema());
    store.migrate().await.expect("migrate");
    // The store as migration 7 left it: stream ids in the database's collation.
    for statement in [
        "ALTER TABLE {schema}.events ALTER COLUMN stream_id TYPE text COLLATE \"default\"",
        "ALTER TABLE {schema}.snapshots ALTER COLUMN stream_id TYPE text COLLATE \"default\"",
        "DELETE FROM {schema}.schema_migrations WHERE version >= 8",
    ] {
        execute(&pool, &store, statement).await;
    }
    assert_eq!(
        index_collation(&store, "events_stream_version_key").await,
        "default"
    );
    let streams = ["B-1", "a-1", "b-1"].map(|s| StreamId::new(s).expect("stream id"));
    for stream in &streams {
        let events = (1..=3)
            .map(|n| NewEvent::new("Counted", 1, json!({ "n": n })))
            .collect();
        store
            .append(stream, ExpectedVersion::NoStream, events)
            .await
            .expect("append before the upgrade");
    }

    assert_eq!(store.migrate().await.expect("upgrade"), [8, 9]);

    assert_eq!(
        index_collation(&store, "events_stream_version_key").await,
        "C"
    );
    for stream in &streams {
        let events = store
            .read_stream(stream, Version::new(1), 10)
            .await
            .expect("read after the upgrade");
        let numbers: Vec<_> = events.iter().map(|e| e.payload["n"].clone()).collect();
        assert_eq!(numbers, [json!(1), json!(2), json!(3)], "{stream}");
    }
    // The rebuilt index still refuses a second event at a version.
    let duplicate = sqlx::query(&format!(
        "INSERT INTO \"{}\".events
             (stream_id, version, event_id, event_type, schema_version, payload, metadata)
         VALUES ('a-1', 2, gen_random_uuid(), 'Counted', 1, '{{}}', '{{}}')",
        store.schema().as_str()
    ))
    .execute(&pool)
    .await
    .expect_err("a second event at version 2");
    let database = duplicate.as_database_error().expect("the server's error");
    assert_eq!(database.constraint(), Some("events_stream_version_key"));
    // And the store appends after them as before.
    let outcome = store
        .append(
            &streams[1],
            ExpectedVersion::Exact(Version::new(3)),
            vec![NewEvent::new("Counted", 1, json!({ "n": 4 }))],
        )
        .await
        .expect("append after the upgrade");
    assert_eq!(outcome.last_version, Version::new(4));
}
