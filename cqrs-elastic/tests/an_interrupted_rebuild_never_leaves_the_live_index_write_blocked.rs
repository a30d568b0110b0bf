//! A rebuild blocks writes to the serving index for its last catch-up and the alias swap. A
//! rebuild interrupted there never leaves that block for good: cancelled (its future dropped),
//! it releases the block at once; killed (here: its future forgotten, so none of its code runs
//! again), the block shows in the live runner's status as held by that rebuild, and it is
//! released by the next rebuild when it starts, or by the live projector once the rebuild has
//! stopped renewing it past its time to live. The live projector's writes then land.

mod support;

use std::future::Future;
use std::time::Duration;

use cqrs_core::projection::{ProjectionHandle, ProjectionRunner, ProjectionState, RunnerOptions};
use cqrs_core::{InMemoryEventStore, Position, RetryPolicy};
use cqrs_elastic::{EsIndex, EsQueries, RebuildOptions};
use elasticsearch::indices::{IndicesDeleteParts, IndicesGetSettingsParts};
use elasticsearch::Elasticsearch;
use serde_json::{json, Value};
use support::*;

/// Whether writes to `index` are blocked, as an operator would look.
async fn write_blocked(client: &Elasticsearch, index: &str) -> bool {
    let response = client
        .indices()
        .get_settings(IndicesGetSettingsParts::IndexName(
            &[index],
            &["index.blocks.write"],
        ))
        .flat_settings(true)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body[index]["settings"]["index.blocks.write"] == json!("true")
}

/// A read model of 30 accounts, built by a live projector through the alias.
async fn read_model(prefix: &str) -> (Elasticsearch, InMemoryEventStore, Accounts, EsIndex) {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 30, 2).await;
    let accounts = Accounts {
        name: unique_name(prefix),
    };
    let live = projector(&client, accounts.clone()).await;
    drive(&live, &store, Position::START, 200).await;
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();
    (client, store, accounts, index)
}

/// Runs `rebuild` until its feed pauses (it is then at the step the feed was told), and
/// returns the future, still pending.
async fn run_until_paused<F: Future>(
    rebuild: F,
    paused: &mut tokio::sync::mpsc::UnboundedReceiver<&'static str>,
) -> std::pin::Pin<Box<F>> {
    let mut rebuild = Box::pin(rebuild);
    tokio::select! {
        _ = &mut rebuild => panic!("the rebuild ended before its pause"),
        step = paused.recv() => assert!(step.is_some()),
    }
    rebuild
}

/// The live runner on `store`, retrying quickly.
fn live_runner(
    client: &Elasticsearch,
    accounts: &Accounts,
    store: &InMemoryEventStore,
) -> ProjectionHandle {
    let projector = cqrs_elastic::EsProjector::new(client.clone(), accounts.clone()).unwrap();
    ProjectionRunner::new(projector, store.clone(), store.clone())
        .with_signal(store.clone())
        .with_options(
            RunnerOptions::new()
                .poll_interval(Duration::from_millis(50))
                .retry(
                    RetryPolicy::new(u32::MAX)
                        .delays(Duration::from_millis(20), Duration::from_millis(200)),
                )
                .breaker(1000, Duration::from_millis(100)),
        )
        .spawn()
}

async fn wait_status(
    handle: &ProjectionHandle,
    what: &str,
    condition: impl Fn(&cqrs_core::projection::ProjectionStatus) -> bool,
) {
    let reached = tokio::time::timeout(Duration::from_secs(20), handle.wait_until(condition)).await;
    assert!(
        matches!(reached, Ok(Some(_))),
        "waiting for {what}: {:?}",
        handle.status()
    );
}

async fn cleanup(client: &Elasticsearch, index: &EsIndex) {
    let names = [index.version_name(1), index.version_name(2)];
    let _ = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&names[0], &names[1]]))
        .ignore_unavailable(true)
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_rebuild_releases_the_block_at_once() {
    let (client, store, accounts, index) = read_model("cancelled").await;
    let serving = index.version_name(1);
    // Held at its last catch-up's head: the serving index is blocked.
    let (feed, mut paused) = PausingFeed::new(store.clone(), None, Some(2));
    // A time to live far beyond the test's patience: only the cancellation can release it.
    let options = RebuildOptions::default().write_block_ttl(Duration::from_secs(600));
    let rebuild = run_until_paused(
        index.rebuild(accounts.clone(), feed, store.clone(), options),
        &mut paused,
    )
    .await;
    assert!(
        write_blocked(&client, &serving).await,
        "blocked at the pause"
    );
    drop(rebuild);

    let live = live_runner(&client, &accounts, &store);
    let last = append(&store, "account-4", "Deposited", json!({ "cents": 500 })).await;
    wait_status(&live, "the deposit written into the serving index", |s| {
        s.position >= last && s.state == ProjectionState::Running
    })
    .await;
    live.shutdown().await;
    assert!(!write_blocked(&client, &serving).await);
    assert_eq!(index.current().await.unwrap().unwrap().index, serving);
    let model: EsQueries<AccountView> =
        EsQueries::for_projection(client.clone(), &accounts).unwrap();
    let expected = expected_accounts(&all_events(&store).await);
    assert_eq!(model.get("account-4").await.unwrap(), expected["account-4"]);
    cleanup(&client, &index).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_rebuilds_block_shows_in_status_and_the_next_rebuild_releases_it() {
    let (client, store, accounts, index) = read_model("killed-next").await;
    let serving = index.version_name(1);
    let (feed, mut paused) = PausingFeed::new(store.clone(), None, Some(2));
    let options = RebuildOptions::default().write_block_ttl(Duration::from_secs(600));
    let rebuild = run_until_paused(
        index.rebuild(accounts.clone(), feed, store.clone(), options),
        &mut paused,
    )
    .await;
    // Killed: none of its code runs again, not even its destructors.
    std::mem::forget(rebuild);
    assert!(write_blocked(&client, &serving).await);

    let live = live_runner(&client, &accounts, &store);
    let last = append(&store, "account-4", "Deposited", json!({ "cents": 500 })).await;
    wait_status(&live, "the block in the live runner's status", |s| {
        s.state == ProjectionState::Retrying
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("write-blocked by a rebuild"))
    })
    .await;
    let block = index
        .write_block()
        .await
        .unwrap()
        .expect("the block, visible");
    assert!(!block.expired(), "{block:?}");

    // The next rebuild releases it as it starts, before filling the new index.
    let (feed, mut paused) = PausingFeed::new(store.clone(), None, Some(1));
    let next = run_until_paused(
        index.rebuild(
            accounts.clone(),
            feed,
            store.clone(),
            RebuildOptions::default(),
        ),
        &mut paused,
    )
    .await;
    assert!(
        !write_blocked(&client, &serving).await,
        "released at the start"
    );
    wait_status(&live, "the deposit written into the serving index", |s| {
        s.position >= last && s.state == ProjectionState::Running
    })
    .await;
    drop(next);
    live.shutdown().await;
    assert!(index.write_block().await.unwrap().is_none());
    cleanup(&client, &index).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_rebuilds_block_is_released_by_the_live_projector_once_expired() {
    let (client, store, accounts, index) = read_model("killed-expired").await;
    let serving = index.version_name(1);
    let (feed, mut paused) = PausingFeed::new(store.clone(), None, Some(2));
    let options = RebuildOptions::default().write_block_ttl(Duration::from_secs(1));
    let rebuild = run_until_paused(
        index.rebuild(accounts.clone(), feed, store.clone(), options),
        &mut paused,
    )
    .await;
    std::mem::forget(rebuild);
    assert!(write_blocked(&client, &serving).await);

    let live = live_runner(&client, &accounts, &store);
    let last = append(&store, "account-4", "Deposited", json!({ "cents": 500 })).await;
    wait_status(&live, "the deposit written once the block expired", |s| {
        s.position >= last && s.state == ProjectionState::Running
    })
    .await;
    let seen = live.status().last_error.unwrap_or_default();
    live.shutdown().await;
    assert!(seen.contains("write-blocked by a rebuild"), "{seen}");
    assert!(!write_blocked(&client, &serving).await);
    let model: EsQueries<AccountView> =
        EsQueries::for_projection(client.clone(), &accounts).unwrap();
    let expected = expected_accounts(&all_events(&store).await);
    assert_eq!(model.get("account-4").await.unwrap(), expected["account-4"]);
    cleanup(&client, &index).await;
}
