//! [`RebuildOptions::max_retries`]: a batch that fails transiently is retried that many times,
//! with a backoff doubling from 100 ms, and then the rebuild gives up with the transient error,
//! before the swap. Here an operator blocked writes to the index the rebuild fills, so every
//! write into it fails transiently. (Not closed: a rebuild opens the index it resumes into.)

mod support;

use std::time::{Duration, Instant};

use cqrs_core::projection::ProjectionError;
use cqrs_core::InMemoryEventStore;
use cqrs_elastic::{EsError, EsIndex, RebuildOptions};
use elasticsearch::indices::{IndicesDeleteParts, IndicesPutSettingsParts};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_retries_a_failing_batch_max_retries_times_then_gives_up() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 10, 1).await;
    let accounts = Accounts {
        name: unique_name("retries"),
    };
    projector(&client, accounts.clone()).await;
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();

    // A first attempt creates v2 and stops for good at its first look at the feed's head.
    let (feed, mut paused) = PausingFeed::new(store.clone(), None, Some(1));
    tokio::select! {
        result = index.rebuild(accounts.clone(), feed, store.clone(), RebuildOptions::default()) => {
            panic!("the first attempt ended: {result:?}")
        }
        step = paused.recv() => assert_eq!(step, Some("head")),
    }
    let filling = index.version_name(2);
    let blocked = client
        .indices()
        .put_settings(IndicesPutSettingsParts::Index(&[&filling]))
        .body(serde_json::json!({ "index": { "blocks": { "write": true } } }))
        .send()
        .await
        .expect("block");
    assert!(blocked.status_code().is_success());

    let started = Instant::now();
    let given_up = index
        .rebuild(
            accounts.clone(),
            store.clone(),
            store.clone(),
            RebuildOptions::default().max_retries(2),
        )
        .await;
    let took = started.elapsed();
    match &given_up {
        Err(error @ EsError::Projection(ProjectionError::Transient(_))) => {
            assert!(error.is_transient(), "{error:?}");
        }
        other => panic!("expected the rebuild to give up on a transient failure, got {other:?}"),
    }
    // Two retries wait 100 ms and 200 ms before them: the rebuild cannot give up sooner.
    assert!(
        took >= Duration::from_millis(300),
        "gave up after {took:?}, before two retries could run"
    );
    assert_eq!(
        index.current().await.unwrap().map(|v| v.version),
        Some(1),
        "the alias stays on the serving index"
    );

    let _ = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[
            &index.version_name(1),
            &filling,
        ]))
        .send()
        .await;
}
