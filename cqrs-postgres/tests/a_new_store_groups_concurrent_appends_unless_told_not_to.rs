//! Group commit is on by default: a new store groups appends once writers queue (a writer
//! alone appends as without it, see `group_commit_writes_an_append_alone_unless_others_are_in_flight.rs`),
//! and `without_group_commit` writes every append on its own. Only one test in this binary
//! appends: it reads spans through a scoped subscriber, which another test's callsites could
//! leave uninterested.

mod support;

use std::sync::{Arc, Mutex};

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId, Version};
use cqrs_postgres::{GroupCommit, PgEventStore};
use futures_util::future::join_all;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::span::{Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// How many `pg_append` spans recorded a `group` (appends that went through a lane).
#[derive(Clone, Default)]
struct Grouped(Arc<Mutex<u64>>);

impl Grouped {
    fn count(&self) -> u64 {
        *self.0.lock().expect("count")
    }
}

struct IsGroup(bool);

impl Visit for IsGroup {
    fn record_u64(&mut self, field: &Field, _: u64) {
        self.0 |= field.name() == "group";
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Grouped {
    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut is_group = IsGroup(false);
        values.record(&mut is_group);
        if is_group.0 {
            *self.0.lock().expect("count") += 1;
        }
    }
}

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
    let grouped = Grouped::default();
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
