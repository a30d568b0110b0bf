//! A rebuild resumes only into the index it was filling. When the half-built index is gone (an
//! operator deleted it, or reset the read model) and the rebuild creates it anew, the progress
//! an earlier attempt saved is not used: the new index is filled from the start of the feed,
//! so the index swapped in is complete.

mod support;

use cqrs_core::InMemoryEventStore;
use cqrs_elastic::{EsIndex, RebuildOptions};
use elasticsearch::indices::IndicesDeleteParts;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_into_a_recreated_index_starts_from_the_beginning() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 200, 5).await; // 1 200 events
    let accounts = Accounts {
        name: unique_name("recreated"),
    };
    let live = projector(&client, accounts.clone()).await;
    drive(&live, &store, cqrs_core::Position::START, 500).await;
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();
    let options = || RebuildOptions::default().batch_size(100);

    // A first attempt writes one batch into v2 and saves its progress (after the first
    // batch), then stops for good at its third read.
    let (feed, mut paused) = PausingFeed::new(store.clone(), Some(3), None);
    tokio::select! {
        result = index.rebuild(accounts.clone(), feed, store.clone(), options()) => {
            panic!("the first attempt ended: {result:?}")
        }
        step = paused.recv() => assert_eq!(step, Some("read_all")),
    }
    let half_built = index.version_name(2);
    assert!(index_exists(&client, &half_built).await);

    // The operator deletes the half-built index; the next rebuild creates it anew.
    let deleted = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&half_built]))
        .send()
        .await
        .unwrap();
    assert!(deleted.status_code().is_success());
    let report = index
        .rebuild(accounts.clone(), store.clone(), store.clone(), options())
        .await
        .expect("the second rebuild");
    assert_eq!(report.to.index, half_built);
    assert_eq!(
        index.current().await.unwrap().map(|v| v.index),
        Some(half_built.clone())
    );
    assert_index_is_the_fold(&client, &half_built, &store).await;
    assert_eq!(report.events, 1200, "every event went into the new index");

    let _ = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&half_built]))
        .send()
        .await;
}
