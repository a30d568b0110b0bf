//! A rebuild moves its new index's primary terms past the serving index's by closing and
//! opening it. An attempt cut off between the close and the open leaves the index closed with
//! its terms already high enough, so the next attempt resumes without closing it again: it
//! opens it first, instead of failing on a closed index at every attempt until an operator
//! opened it by hand.

mod support;

use cqrs_core::InMemoryEventStore;
use cqrs_elastic::{EsIndex, RebuildOptions};
use elasticsearch::indices::{IndicesCloseParts, IndicesDeleteParts};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_opens_the_half_built_index_an_earlier_attempt_left_closed() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 20, 5).await; // 120 events
    let accounts = Accounts {
        name: unique_name("left-closed"),
    };
    let live = projector(&client, accounts.clone()).await;
    drive(&live, &store, cqrs_core::Position::START, 500).await;
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();
    let options = || RebuildOptions::default().batch_size(50).max_retries(1);

    // A first attempt creates v2 and stops for good at its first read.
    let (feed, mut paused) = PausingFeed::new(store.clone(), Some(1), None);
    tokio::select! {
        result = index.rebuild(accounts.clone(), feed, store.clone(), options()) => {
            panic!("the first attempt ended: {result:?}")
        }
        step = paused.recv() => assert_eq!(step, Some("read_all")),
    }
    let half_built = index.version_name(2);
    // As an attempt cut off between closing and opening it leaves it.
    let closed = client
        .indices()
        .close(IndicesCloseParts::Index(&[&half_built]))
        .send()
        .await
        .unwrap();
    assert!(closed.status_code().is_success());

    let report = index
        .rebuild(accounts.clone(), store.clone(), store.clone(), options())
        .await
        .expect("the rebuild resumes");
    assert_eq!(report.to.index, half_built);
    assert_index_is_the_fold(&client, &half_built, &store).await;

    let _ = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&half_built]))
        .send()
        .await;
}
