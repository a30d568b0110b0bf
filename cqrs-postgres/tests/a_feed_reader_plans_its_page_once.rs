//! A reader following the feed has its page statement planned once per connection, not once
//! per page. PostgreSQL plans a prepared statement's first five executions for their values and
//! keeps a generic plan only if it does not look dearer. On a table of many small transactions
//! a page's custom plans, which see its keyset and limit, looked far cheaper than the generic
//! one, so nearly every page was planned again: 117 us of planning per page of 1,000 events
//! against 1,274 us of execution, by `pg_stat_statements` in `pg-bench --only feed`.

mod support;

use cqrs_core::{
    AppendEvents, EventFilter, ExpectedVersion, NewEvent, Position, ReadAll, StreamId,
};
use serde_json::json;

#[tokio::test]
async fn a_feed_reader_plans_its_page_once_per_connection() {
    // One connection, so every page and the check below run on the same session.
    let store = support::store_with(1).await;
    // Many small transactions, with statistics: what a real table gives the planner.
    let mut last = Position::START;
    for n in 0..3_000 {
        let stream = StreamId::new(format!("feed-{n}")).expect("valid");
        let events = (0..10)
            .map(|i| NewEvent::new("E", 1, json!({ "i": i })))
            .collect();
        last = store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .expect("append")
            .position;
    }
    support::wait_for_feed(&store, last).await;
    sqlx::query(&format!("ANALYZE {}.events", store.schema().as_str()))
        .execute(store.pool())
        .await
        .expect("analyze");

    let mut pages = 0_i64;
    let mut after = Position::START;
    loop {
        let page = store
            .read_all(after, 1_000, &EventFilter::all())
            .await
            .expect("a page");
        pages += 1;
        if page.events.is_empty() {
            break;
        }
        after = page.next;
    }

    let (generic, custom): (i64, i64) = sqlx::query_as(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE statement LIKE '%The gap-safe feed without a filter%' \
           AND strpos(statement, $1) > 0",
    )
    .bind(store.schema().as_str())
    .fetch_one(store.pool())
    .await
    .expect("the page statement is prepared on the pool's one connection");
    assert!(
        pages >= 31,
        "30,000 events in pages of 1,000, then an empty one"
    );
    assert_eq!(generic + custom, pages, "every page ran the statement");
    assert!(
        custom <= 5,
        "only the first five pages may be planned for their values: {custom} custom, \
         {generic} generic"
    );
}
