//! Group commit only pays when writers queue: an append that finds fewer than
//! `GroupCommit::alone_below` others in flight is written on its own, as without group commit
//! (no `group` on its span). So is a batch of `GroupCommit::alone_from_events` events or more,
//! whose rows, not its commit, are its cost. One test in this binary: it reads spans through a scoped
//! subscriber, which another test's callsites could leave uninterested.

mod support;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId, Version};
use cqrs_postgres::{GroupCommit, PgEventStore};
use serde_json::json;
use support::grouped_spans::GroupedSpans;
use tracing_subscriber::layer::SubscriberExt;

async fn append_one_at_a_time(store: &PgEventStore, prefix: &str) {
    for n in 0..5 {
        let stream = StreamId::new(format!("{prefix}-{n}")).expect("id");
        let event = NewEvent::new("Counted", 1, json!({ "n": n }));
        store
            .append(&stream, ExpectedVersion::Exact(Version::ZERO), vec![event])
            .await
            .expect("append");
    }
}

// One thread, so every writer and the lane see this test's subscriber.
#[tokio::test]
async fn appends_one_at_a_time_are_written_alone_and_only_with_alone_below_zero_grouped_but_never_a_large_batch(
) {
    let grouped = GroupedSpans::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(grouped.clone()));
    let store = support::store_with(4)
        .await
        .with_group_commit(GroupCommit::default());
    append_one_at_a_time(&store, "default").await;
    assert_eq!(grouped.count(), 0, "none went to a lane");

    let always = support::store_with(4)
        .await
        .with_group_commit(GroupCommit::default().alone_below(0));
    append_one_at_a_time(&always, "always").await;
    assert_eq!(grouped.count(), 5, "each went to a lane");

    let batch = (0..16)
        .map(|n| NewEvent::new("Counted", 1, json!({ "n": n })))
        .collect();
    let stream = StreamId::new("always-batch").expect("id");
    let outcome = always
        .append(&stream, ExpectedVersion::Exact(Version::ZERO), batch)
        .await
        .expect("a batch appends");
    assert_eq!(outcome.last_version, Version::new(16));
    assert_eq!(grouped.count(), 5, "a batch of 16 events was written alone");
}
