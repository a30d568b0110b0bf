//! The `PgError` variants that only a broken database produces: a migration that fails
//! (`Migration`, and nothing of it stays), a stored row that breaks the schema's promises
//! (`CorruptRow`), and a store whose pool is gone (`Database`).

mod support;

use cqrs_core::{AppendEvents, Error, ExpectedVersion, NewEvent, ReadStream, StreamId, Version};
use cqrs_postgres::{PgError, PgEventStore};
use serde_json::json;

/// The `PgError` inside a store error.
fn pg_error(error: &Error) -> Option<&PgError> {
    std::error::Error::source(error).and_then(|source| source.downcast_ref::<PgError>())
}

#[tokio::test]
async fn a_failing_migration_is_a_typed_error_and_leaves_nothing_of_itself() {
    let pool = support::pool(2).await;
    let schema = support::unique_schema();
    // Something already holds a name migration 1 creates.
    for statement in [
        "CREATE SCHEMA \"{schema}\"",
        "CREATE TABLE \"{schema}\".commands (unrelated integer)",
    ] {
        sqlx::query(&statement.replace("{schema}", schema.as_str()))
            .execute(&pool)
            .await
            .expect("occupy the name");
    }
    let store = PgEventStore::new(pool.clone()).with_schema(schema.clone());

    match store.migrate().await {
        Err(PgError::Migration { version: 1, source }) => {
            let database = source.as_database_error().expect("the server's error");
            assert_eq!(database.code().as_deref(), Some("42P07"), "{database}");
        }
        other => panic!("expected migration 1 to fail, got {other:?}"),
    }
    let events: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(format!("\"{}\".events", schema.as_str()))
        .fetch_one(&pool)
        .await
        .expect("look the table up");
    assert_eq!(
        events, None,
        "the failed migration's events table was rolled back"
    );
    // Once the name is free, the migrations run from the first: none was recorded as done.
    sqlx::query(&format!("DROP TABLE \"{}\".commands", schema.as_str()))
        .execute(&pool)
        .await
        .expect("free the name");
    assert_eq!(
        store.migrate().await.expect("migrate"),
        [1, 2, 3, 4, 5, 6, 7, 8, 9]
    );
}

#[tokio::test]
async fn a_stored_row_breaking_the_schema_s_promise_is_a_corrupt_row() {
    let store = support::store().await;
    let stream = StreamId::new("corrupt-1").expect("id");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .expect("append");
    // Only a hand edit (or a bad migration) can store a negative schema version.
    sqlx::query(&format!(
        "UPDATE \"{}\".events SET schema_version = -1 WHERE stream_id = $1",
        store.schema().as_str()
    ))
    .bind(stream.as_str())
    .execute(store.pool())
    .await
    .expect("corrupt the row");

    let err = store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect_err("a corrupt row does not read");
    assert!(
        matches!(
            pg_error(&err),
            Some(PgError::CorruptRow {
                what: "negative schema version"
            })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_store_whose_pool_is_closed_reports_a_database_error() {
    let store = support::store().await;
    store.pool().close().await;
    let err = store
        .append(
            &StreamId::new("closed-1").expect("id"),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .expect_err("no connection to append with");
    assert!(
        matches!(
            pg_error(&err),
            Some(PgError::Database(sqlx::Error::PoolClosed))
        ),
        "{err:?}"
    );
}
