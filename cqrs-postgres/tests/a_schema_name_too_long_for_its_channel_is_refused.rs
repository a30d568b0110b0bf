//! The `NOTIFY` channel of a schema is `{schema}_events`, and PostgreSQL channel names hold at
//! most 63 bytes. A schema name that leaves no room for the suffix must be refused when it is
//! validated, not discovered by every `append_in` failing.

mod support;

use cqrs_core::{ExpectedVersion, NewEvent, StreamId};
use cqrs_postgres::{PgError, PgEventStore, PgSchema};
use serde_json::json;
use sqlx::Connection;

#[tokio::test]
async fn a_sixty_character_schema_name_is_refused_or_appends_in_a_transaction_work() {
    let name = format!("t_{}", "x".repeat(58));
    assert_eq!(name.len(), 60);
    let schema = match PgSchema::new(&name) {
        Err(PgError::ChannelTooLong { schema, .. }) => {
            assert_eq!(schema, name);
            return;
        }
        Err(other) => panic!("expected ChannelTooLong, got {other:?}"),
        Ok(schema) => schema,
    };
    // Accepted: then it must work, notifications included.
    let store = PgEventStore::new(support::pool(2).await).with_schema(schema);
    store.migrate().await.expect("migrate");
    let mut conn = store.pool().acquire().await.expect("connection");
    let mut tx = conn.begin().await.expect("begin");
    let stream = StreamId::new("long-1").expect("id");
    let appended = store
        .append_in(
            &mut tx,
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("E", 1, json!({}))],
        )
        .await;
    tx.rollback().await.expect("rollback");
    sqlx::query(&format!("DROP SCHEMA \"{name}\" CASCADE"))
        .execute(store.pool())
        .await
        .expect("drop schema");
    appended.expect("append_in on a schema the store accepted");
}

#[test]
fn the_longest_schema_name_whose_channel_fits_is_accepted() {
    let longest = "a".repeat(56);
    let schema = PgSchema::new(&longest).expect("56 bytes leave room for `_events`");
    assert_eq!(schema.channel().len(), 63);
    assert!(matches!(
        PgSchema::new(&"a".repeat(57)),
        Err(PgError::ChannelTooLong { .. })
    ));
}
