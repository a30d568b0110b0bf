//! A rebuild keeps its progress under its own checkpoint: saved after the first batch (so an
//! interrupted rebuild resumes early on), then at most once per interval, and at the end of
//! every catch-up, never ahead of what is written. While it fills the new index, that index
//! has no replicas and no refresh; it gets the read model's own once it is filled.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::{CheckpointStore, InMemoryEventStore, Position};
use cqrs_elastic::{EsIndex, EsQueries, IndexSettings, Query, RebuildOptions};
use elasticsearch::indices::IndicesGetSettingsParts;
use elasticsearch::Elasticsearch;
use serde_json::Value;
use support::*;

/// Checkpoints as saved, in order, and the new index's settings at the first save (while the
/// rebuild fills it).
#[derive(Clone)]
struct Recorded {
    inner: InMemoryEventStore,
    saves: Arc<Mutex<Vec<Position>>>,
    client: Elasticsearch,
    filling: String,
    settings_while_filling: Arc<Mutex<Option<(Value, Value)>>>,
}

/// An index's `number_of_replicas` and `refresh_interval` settings (null when unset).
async fn settings(client: &Elasticsearch, index: &str) -> (Value, Value) {
    let response = client
        .indices()
        .get_settings(IndicesGetSettingsParts::Index(&[index]))
        .send()
        .await
        .expect("get settings");
    assert!(response.status_code().is_success(), "{index} settings");
    let body: Value = response.json().await.expect("settings answer");
    let settings = &body[index]["settings"]["index"];
    (
        settings["number_of_replicas"].clone(),
        settings["refresh_interval"].clone(),
    )
}

#[async_trait]
impl CheckpointStore for Recorded {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        self.inner.load_checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        let first = self.settings_while_filling.lock().expect("lock").is_none();
        if first {
            let seen = settings(&self.client, &self.filling).await;
            *self.settings_while_filling.lock().expect("lock") = Some(seen);
        }
        self.saves.lock().expect("lock").push(position);
        self.inner.save_checkpoint(name, position).await
    }
}

/// Rebuilds a fresh read model of `store` with `options`; the saves and the read model.
async fn rebuild(
    store: &InMemoryEventStore,
    options: RebuildOptions,
) -> (Vec<Position>, EsQueries<AccountView>) {
    let client = client();
    let accounts = Accounts {
        name: unique_name("progress"),
    };
    projector(&client, accounts.clone()).await;
    // One replica: a single node cannot place it, but the index serves all the same.
    let index = EsIndex::for_projection(client.clone(), &accounts)
        .unwrap()
        .with_settings(IndexSettings::default().replicas(1));
    let checkpoints = Recorded {
        inner: store.clone(),
        saves: Arc::default(),
        client: client.clone(),
        filling: index.version_name(2),
        settings_while_filling: Arc::default(),
    };
    let report = index
        .rebuild(
            accounts.clone(),
            store.clone(),
            checkpoints.clone(),
            options,
        )
        .await
        .expect("rebuild");
    assert_eq!(
        checkpoints
            .settings_while_filling
            .lock()
            .expect("lock")
            .clone(),
        Some((Value::from("0"), Value::from("-1"))),
        "filling: no replicas, no refresh"
    );
    assert_eq!(
        settings(&client, &report.to.index).await,
        (Value::from("1"), Value::Null),
        "filled: the read model's replicas and the default refresh"
    );
    let saves = checkpoints.saves.lock().expect("lock").clone();
    let head = all_events(store).await.last().unwrap().position;
    assert_eq!(report.position, head);
    assert_eq!(saves.last(), Some(&head));
    assert!(saves.windows(2).all(|w| w[0] <= w[1]), "{saves:?}");
    (saves, EsQueries::for_projection(client, &accounts).unwrap())
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
