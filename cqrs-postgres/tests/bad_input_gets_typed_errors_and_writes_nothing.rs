//! Bad input against a real PostgreSQL: typed errors, and nothing written.

mod support;

use cqrs_core::{
    AppendEvents, DomainEvent, Error, EventFilter, ExpectedVersion, InvalidStreamId, NewEvent,
    Position, ReadAll, ReadStream, Repository, StreamId, Version,
};
use cqrs_postgres::{PgError, PgEventStore, PgSchema};
use serde::{Deserialize, Serialize};
use serde_json::json;

async fn event_count(store: &PgEventStore) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{}\".events",
        store.schema()
    ))
    .fetch_one(store.pool())
    .await
    .expect("count")
}

#[test]
fn invalid_stream_ids_are_refused_before_any_io() {
    assert_eq!(StreamId::new(""), Err(InvalidStreamId::Empty));
    assert!(matches!(
        StreamId::new("a\u{0}b"),
        Err(InvalidStreamId::ControlCharacter { index: 1 })
    ));
    assert!(matches!(
        StreamId::new("x".repeat(201)),
        Err(InvalidStreamId::TooLong { .. })
    ));
}

#[tokio::test]
async fn a_schema_name_with_sql_in_it_is_refused() {
    for name in [
        "cqrs; DROP TABLE users",
        "x\" CASCADE; --",
        "public.events",
        "",
    ] {
        assert!(
            matches!(PgSchema::new(name), Err(PgError::InvalidSchema(_))),
            "{name:?}"
        );
    }
    // A valid schema works, and it is where the tables go.
    let store = support::store().await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(store.schema().as_str())
    .fetch_one(store.pool())
    .await
    .expect("count tables");
    assert_eq!(
        tables, 11,
        "events, commands, snapshots, checkpoints, breakers, leases, dead_letters, \
         process_timeouts, process_instances, bus_dead_letters, schema_migrations"
    );
}

#[tokio::test]
async fn an_oversized_payload_is_refused_and_nothing_is_written() {
    let store = support::store().await.with_max_payload_bytes(1000);
    let stream = StreamId::new("big-1").expect("id");
    let events = vec![
        NewEvent::new("Small", 1, json!({ "ok": true })),
        NewEvent::new("Big", 1, json!({ "blob": "z".repeat(1000) })),
    ];
    let err = store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .expect_err("too large");
    assert!(
        matches!(err, Error::PayloadTooLarge { ref event_type, limit: 1000, .. } if event_type == "Big"),
        "{err:?}"
    );
    assert_eq!(event_count(&store).await, 0);
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Mislabelled {
    Shipped { parcel: String },
}

impl DomainEvent for Mislabelled {
    fn event_type(&self) -> &'static str {
        "Delivered"
    }
}

#[tokio::test]
async fn a_payload_that_does_not_match_its_event_type_is_refused() {
    let store = support::store().await;
    let event = Mislabelled::Shipped {
        parcel: "p1".into(),
    };
    let err = NewEvent::from_domain(&event, Default::default()).expect_err("mismatch");
    assert!(
        matches!(
            err,
            Error::EventTypeMismatch {
                declared: "Delivered",
                ..
            }
        ),
        "{err:?}"
    );

    // A stored payload of the wrong shape for its type is a typed decode error on load.
    let tallies = Repository::<cqrs_core::testing::Tally, _>::new(store.clone());
    let stream = tallies.stream_id("wrong").expect("id");
    store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Added", 2, json!({ "amount": [1, 2] }))],
        )
        .await
        .expect("raw append");
    match tallies.load("wrong").await {
        Err(Error::Decode {
            stream_id,
            version,
            event_type,
            ..
        }) => {
            assert_eq!(stream_id, Some(stream));
            assert_eq!(version, Some(Version::new(1)));
            assert_eq!(event_type, "Added");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_version_past_bigint_is_a_typed_error() {
    let store = support::store().await;
    let stream = StreamId::new("huge-1").expect("id");
    let err = store
        .append(
            &stream,
            ExpectedVersion::Exact(Version::new(u64::MAX)),
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .expect_err("out of range");
    assert!(matches!(err, Error::Backend(_)), "{err:?}");
    let source = std::error::Error::source(&err).expect("source");
    assert!(source
        .downcast_ref::<PgError>()
        .is_some_and(|e| matches!(e, PgError::OutOfRange { .. })));
    assert!(store
        .read_stream(&stream, Version::new(1), 10)
        .await
        .expect("read")
        .is_empty());
    // A far position reads as the end of the feed: nothing, and the reader stays where it
    // is (it is not sent back to the events it is past), with nothing more to read at once.
    let earlier = store
        .append(
            &StreamId::new("earlier-1").expect("id"),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await
        .expect("append an event the far position is past");
    let far = Position::from_parts(u64::MAX, u64::MAX);
    assert!(far > earlier.position);
    let batch = store
        .read_all(far, 10, &EventFilter::all())
        .await
        .expect("a far position is no error");
    assert!(batch.events.is_empty(), "{batch:?}");
    assert_eq!(batch.next, far, "the reader stays at its far position");
    assert!(!batch.more, "{batch:?}");
}

#[tokio::test]
async fn migrate_is_idempotent_and_refuses_a_newer_schema() {
    let store = support::store().await;
    assert_eq!(store.migrate().await.expect("again"), Vec::<i32>::new());
    let twins = futures_join(store.clone(), store.clone()).await;
    assert!(twins.iter().all(|applied| applied.is_empty()));
    sqlx::query(&format!(
        "INSERT INTO \"{}\".schema_migrations (version) VALUES (999)",
        store.schema()
    ))
    .execute(store.pool())
    .await
    .expect("fake a future migration");
    assert!(matches!(
        store.migrate().await,
        Err(PgError::SchemaTooNew { found: 999, .. })
    ));
}

async fn futures_join(a: PgEventStore, b: PgEventStore) -> Vec<Vec<i32>> {
    let a = tokio::spawn(async move { a.migrate().await.expect("migrate a") });
    let b = tokio::spawn(async move { b.migrate().await.expect("migrate b") });
    vec![a.await.expect("task a"), b.await.expect("task b")]
}

#[tokio::test]
async fn concurrent_first_migrations_apply_once() {
    let pool = support::pool(4).await;
    let schema = support::unique_schema();
    let a = PgEventStore::new(pool.clone()).with_schema(schema.clone());
    let b = PgEventStore::new(pool).with_schema(schema);
    let applied = futures_join(a, b).await;
    let mut all: Vec<i32> = applied.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
        "each migration applied exactly once"
    );
}
