//! A rebuild keeps its progress under its own checkpoint: saved after the first batch (so an
//! interrupted rebuild resumes early on), then at most once per interval, and at the end of
//! every catch-up, never ahead of what is written.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::{CheckpointStore, InMemoryEventStore, Position};
use cqrs_elastic::{EsIndex, Query, ReadModel, RebuildOptions};
use support::*;

/// Checkpoints as saved, in order.
#[derive(Clone)]
struct Recorded {
    inner: InMemoryEventStore,
    saves: Arc<Mutex<Vec<Position>>>,
}

#[async_trait]
impl CheckpointStore for Recorded {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        self.inner.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        self.saves.lock().expect("lock").push(position);
        self.inner.save_checkpoint(name, position).await
    }
}

/// Rebuilds a fresh read model of `store` with `options`; the saves and the read model.
async fn rebuild(
    store: &InMemoryEventStore,
    options: RebuildOptions,
) -> (Vec<Position>, ReadModel<AccountView>) {
    let client = client();
    let accounts = Accounts {
        name: unique_name("progress"),
    };
    projector(&client, accounts.clone()).await;
    let checkpoints = Recorded {
        inner: store.clone(),
        saves: Arc::default(),
    };
    let report = EsIndex::for_projection(client.clone(), &accounts)
        .unwrap()
        .rebuild(&accounts, store, &checkpoints, options)
        .await
        .expect("rebuild");
    let saves = checkpoints.saves.lock().expect("lock").clone();
    let head = all_events(store).await.last().unwrap().position;
    assert_eq!(report.position, head);
    assert_eq!(saves.last(), Some(&head));
    assert!(saves.windows(2).all(|w| w[0] <= w[1]), "{saves:?}");
    (saves, ReadModel::for_projection(client, &accounts).unwrap())
}

#[tokio::test]
async fn a_rebuild_saves_its_progress_per_interval_and_at_each_end() {
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 50, 9).await; // 500 events: 25 batches of 20
    let events = all_events(&store).await;
    let options = || {
        RebuildOptions::default()
            .batch_size(20)
            .drain(Duration::ZERO)
    };

    // Every batch saved: 25 saves, each at the end of its batch.
    let (saves, _) = rebuild(&store, options().checkpoint_interval(Duration::ZERO)).await;
    assert!(saves.len() >= 25, "{} saves", saves.len());
    assert_eq!(saves[0], events[19].position);

    // An interval no test outlives: the first batch, then the end of the catch-ups only.
    let (saves, model) = rebuild(
        &store,
        options().checkpoint_interval(Duration::from_secs(3600)),
    )
    .await;
    assert_eq!(saves[0], events[19].position, "the first batch is saved");
    assert!(saves.len() <= 4, "{saves:?}");

    assert_eq!(model.count(&Query::match_all()).await.unwrap(), 50);
    let expected = expected_accounts(&events);
    for (id, doc) in &expected {
        assert_eq!(&model.get(id).await.unwrap(), doc, "{id}");
    }
}
