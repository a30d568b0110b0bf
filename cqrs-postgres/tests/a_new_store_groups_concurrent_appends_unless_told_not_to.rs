//! Group commit is on by default: a new store groups appends once writers queue (a writer
//! alone appends as without it, see `group_commit_writes_an_append_alone_unless_others_are_in_flight.rs`),
//! and `without_group_commit` writes every append on its own. Only one test in this binary
//! appends: it reads spans through a scoped subscriber, which another test's callsites could
//! leave uninterested.

mod support;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId, Version};
use cqrs_postgres::{GroupCommit, PgEventStore};
use futures_util::future::join_all;
use serde_json::json;
use support::grouped_spans::GroupedSpans;
use tracing_subscriber::layer::SubscriberExt;

/// 32 single-event appends to new streams, all in flight at once.
async fn append_together(store: &PgEventStore, prefix: &str) {
    let appends = (0..32).map(|n| async move {
        let stream = StreamId::new(format!("{prefix}-{n}")).expect("id");
        let event = NewEvent::new("Counted", 1, json!({ "n": n }));
        store
            .append(&stream, ExpectedVersion::Exact(Version::ZERO), vec![event])
            .await
            .expect("append")
    });
    let outcomes = join_all(appends).await;
    assert!(outcomes.iter().all(|o| o.last_version == Version::new(1)));
}

// One thread, so every writer and the lane see this test's subscriber, and the 32 appends are
// all admitted before the first one ends.
#[tokio::test]
async fn a_new_store_groups_appends_that_queue_and_without_group_commit_writes_each_alone() {
    let grouped = GroupedSpans::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(grouped.clone()));

    let store = support::store_with(20).await;
    assert_eq!(store.group_commit(), Some(GroupCommit::default()));
    append_together(&store, "default").await;
    let by_default = grouped.count();
    assert!(
        by_default >= 16,
        "most of 32 appends in flight together went to a lane, not {by_default}"
    );

    let plain = support::store_with(20).await.without_group_commit();
    assert_eq!(plain.group_commit(), None);
    append_together(&plain, "plain").await;
    assert_eq!(grouped.count(), by_default, "none went to a lane");
}

#[tokio::test]
async fn a_schema_or_event_type_chosen_later_keeps_the_store_s_grouping() {
    let pool = support::pool(2).await;
    let store = PgEventStore::new(pool.clone()).with_schema(support::unique_schema());
    assert_eq!(store.group_commit(), Some(GroupCommit::default()));
    let tuned = PgEventStore::new(pool.clone())
        .with_group_commit(GroupCommit::default().lanes(2))
        .with_schema(support::unique_schema())
        .with_event_json(cqrs_postgres::EventJson::Json);
    assert_eq!(tuned.group_commit(), Some(GroupCommit::default().lanes(2)));
    let plain = PgEventStore::new(pool)
        .without_group_commit()
        .with_schema(support::unique_schema());
    assert_eq!(plain.group_commit(), None);
}
