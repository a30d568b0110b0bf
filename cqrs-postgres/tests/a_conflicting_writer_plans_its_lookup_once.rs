//! A writer whose append conflicts has the lookup that follows (are these events already in?)
//! planned once per connection, not once per conflict. The lookup reads the batch's event ids
//! as an array; the custom plans PostgreSQL makes for a prepared statement's first five
//! executions see its length and looked cheaper than the generic plan, so every conflict was
//! planned again: 4,582 plans in 4,465 calls, 72 us of planning for 14 us of execution, by
//! `pg_stat_statements` in a `pg-bench --quick` run.

mod support;

use cqrs_core::{AppendEvents, Error, ExpectedVersion, NewEvent, StreamId, Version};
use serde_json::json;

#[tokio::test]
async fn a_conflicting_writer_plans_its_lookup_once_per_connection() {
    // One connection, so every lookup and the check below run on the same session.
    let store = support::store_with(1).await;
    // A table with statistics, as a real one has.
    for n in 0..1_000 {
        let stream = StreamId::new(format!("account-{n}")).expect("valid");
        let events = (0..10)
            .map(|i| NewEvent::new("E", 1, json!({ "i": i })))
            .collect();
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .expect("append");
    }
    sqlx::query(&format!("ANALYZE {}.events", store.schema().as_str()))
        .execute(store.pool())
        .await
        .expect("analyze");

    // Thirty writers behind the stream's head, with batches of one to three events.
    let stream = StreamId::new("account-7").expect("valid");
    let conflicts = 30_u64;
    for n in 0..conflicts {
        let events = (0..=n % 3)
            .map(|i| NewEvent::new("E", 1, json!({ "late": i })))
            .collect();
        let stale = ExpectedVersion::Exact(Version::new(1 + n % 9));
        let refused = store.append(&stream, stale, events).await;
        assert!(
            matches!(refused, Err(Error::Conflict { .. })),
            "a writer behind the head conflicts: {refused:?}"
        );
    }

    let (generic, custom): (i64, i64) = sqlx::query_as(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE statement LIKE '%The events with these ids%' \
           AND strpos(statement, $1) > 0",
    )
    .bind(store.schema().as_str())
    .fetch_one(store.pool())
    .await
    .expect("the lookup is prepared on the pool's one connection");
    assert_eq!(
        u64::try_from(generic + custom).ok(),
        Some(conflicts),
        "every conflict looked up its events"
    );
    assert!(
        custom <= 5,
        "only the first five lookups may be planned for their values: {custom} custom, \
         {generic} generic"
    );
}
