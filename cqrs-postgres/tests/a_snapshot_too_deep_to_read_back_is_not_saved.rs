//! A snapshot is a shortcut for later loads, saved after a command. A state nested deeper than
//! serde_json reads back (a tree, an outline) was saved whole, and every later load of its
//! stream failed to decode it (on PostgreSQL, which parses the state as it reads the row): no
//! command on that stream passed again until someone deleted the row by hand. Such a state is
//! not saved; loads replay the stream.

mod support;

use cqrs_core::{Aggregate, DomainEvent, Repository, SnapshotPolicy, Version};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
enum OutlineEvent {
    Indented { levels: u32 },
}

#[derive(Debug)]
struct Indent(u32);

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// Each event nests the outline `levels` deeper.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Outline {
    tree: Value,
}

impl Aggregate for Outline {
    const TYPE: &'static str = "outline";
    type Command = Indent;
    type Event = OutlineEvent;
    type Error = Never;
    type Services = ();

    fn apply(&mut self, event: &OutlineEvent) {
        let OutlineEvent::Indented { levels } = event;
        for _ in 0..*levels {
            self.tree = json!([std::mem::take(&mut self.tree)]);
        }
    }

    async fn handle(&self, command: &Indent, _: &()) -> Result<Vec<OutlineEvent>, Never> {
        Ok(vec![OutlineEvent::Indented { levels: command.0 }])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_too_deep_to_read_back_is_not_saved() {
    let store = support::store().await;
    let outlines =
        Repository::<Outline, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(1));
    outlines
        .execute("o-1", &Indent(200))
        .await
        .expect("indents 200 levels");

    // A process without the state in memory loads the stream.
    let fresh =
        Repository::<Outline, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(1));
    let outcome = fresh
        .execute("o-1", &Indent(1))
        .await
        .expect("the stream still loads");
    assert_eq!(outcome.version, Version::new(2));
    let sql = format!(
        "SELECT count(*) FROM \"{}\".snapshots",
        store.schema().as_str()
    );
    let snapshots: i64 = sqlx::query_scalar(&sql)
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(snapshots, 0, "no snapshot that cannot be read back");
}
