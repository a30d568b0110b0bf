//! The operators' list of readers (the console samples it every few seconds, `cqrs status`
//! and every console page read it) counts each reader's lag up to a bound, and finds the
//! oldest unapplied event by one index probe. Counting every row past a checkpoint, a reader
//! with none (a partition member's lease, a bus consumer) or a stale one (a finished rebuild's)
//! cost a scan of the whole events table per reader and per sample: minutes at tens of millions
//! of events. A progress line, which follows one reader, still counts it whole.

mod support;

use std::time::Duration;

use cqrs_core::projection::LeaseStore;
use cqrs_postgres::LAG_COUNT_LIMIT;

#[tokio::test]
async fn a_reader_without_a_checkpoint_counts_its_lag_up_to_the_limit() {
    let store = support::store_with(4).await;
    let beyond = LAG_COUNT_LIMIT + 50;
    sqlx::query(&format!(
        "INSERT INTO \"{}\".events
             (stream_id, version, event_id, event_type, schema_version, payload, metadata)
         SELECT 'bulk-1', n, gen_random_uuid(), 'Counted', 1, '{{}}', '{{}}'
         FROM generate_series(1, $1::bigint) AS n",
        store.schema().as_str()
    ))
    .bind(i64::try_from(beyond).expect("a bigint"))
    .execute(store.pool())
    .await
    .expect("insert the events");
    store
        .try_acquire(
            "orders/members/worker-1",
            "worker-1",
            Duration::from_secs(60),
        )
        .await
        .expect("a member's lease")
        .expect("taken");
    let head = cqrs_core::ReadAll::head(&store).await.expect("head");
    support::wait_for_feed(&store, head).await;

    let readers = store.subscribers().await.expect("the readers");

    let member = readers
        .iter()
        .find(|r| r.name == "orders/members/worker-1")
        .expect("the member's row");
    assert_eq!(
        member.lag_events, LAG_COUNT_LIMIT,
        "counted up to the limit"
    );
    assert!(member.oldest_unapplied_at.is_some(), "{member:?}");

    // A progress line follows one reader: its rate and time left need the whole count.
    let followed = store
        .subscribers_starting_with("orders/members/")
        .await
        .expect("the reader followed");
    assert_eq!(followed.len(), 1);
    assert_eq!(followed[0].lag_events, beyond, "counted whole");
}
