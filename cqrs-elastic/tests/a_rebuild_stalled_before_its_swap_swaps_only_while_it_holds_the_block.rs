//! A rebuild swaps the alias only while it still holds its write block on the serving index,
//! in the one request that swaps it. A rebuild that stalled once it had checked its block (a
//! pause, a VM migration) lost the block to the live projector when it expired, and the live
//! projector wrote through the alias into the serving index meanwhile; the late swap then
//! moved the alias onto an index lacking those writes, for good.

mod support;

use std::time::Duration;

use cqrs_core::projection::{ProjectionHandle, ProjectionRunner, ProjectionState, RunnerOptions};
use cqrs_core::{InMemoryEventStore, Position, RetryPolicy};
use cqrs_elastic::{EsIndex, EsQueries, RebuildOptions};
use elasticsearch::indices::IndicesDeleteParts;
use elasticsearch::Elasticsearch;
use serde_json::json;
use support::holding_proxy::HoldingProxy;
use support::*;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_rebuild_whose_block_was_released_leaves_the_alias_on_the_complete_index() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 30, 2).await;
    let accounts = Accounts {
        name: unique_name("stalled-swap"),
    };
    let live_projector = projector(&client, accounts.clone()).await;
    drive(&live_projector, &store, Position::START, 200).await;
    let live = live_runner(&client, &accounts, &store);
    let proxy = HoldingProxy::start().await;
    let stalling = EsIndex::for_projection(proxy.client(), &accounts).unwrap();

    // The rebuild's process stalls as it sends its swap (its second `_aliases` request, after
    // the one that adds its block's lock alias), once it checked its block: the swap and all
    // it sends after wait.
    proxy.arm(2);
    let options = RebuildOptions::default().write_block_ttl(Duration::from_millis(300));
    let rebuild = tokio::spawn({
        let (accounts, store) = (accounts.clone(), store.clone());
        async move {
            stalling
                .rebuild(accounts, store.clone(), store, options)
                .await
        }
    });
    proxy.wait_held().await;

    // Meanwhile its block expires; the live projector releases it and writes a deposit into
    // the serving index.
    let last = append(&store, "account-4", "Deposited", json!({ "cents": 500 })).await;
    let written = tokio::time::timeout(
        Duration::from_secs(20),
        live.wait_until(|s| s.position >= last && s.state == ProjectionState::Running),
    )
    .await;
    assert!(
        matches!(written, Ok(Some(_))),
        "the deposit was never written: {:?}",
        live.status()
    );

    // The rebuild goes on where it stalled.
    proxy.release();
    let ended = tokio::time::timeout(Duration::from_secs(30), rebuild)
        .await
        .expect("the rebuild ends")
        .expect("the rebuild's task");
    println!("the rebuild ended with {ended:?}");
    live.shutdown().await;

    let model: EsQueries<AccountView> =
        EsQueries::for_projection(client.clone(), &accounts).unwrap();
    let expected = expected_accounts(&all_events(&store).await);
    assert_eq!(
        model.get("account-4").await.unwrap(),
        expected["account-4"],
        "the alias serves an index without the deposit"
    );
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();
    let names = [index.version_name(1), index.version_name(2)];
    let _ = client
        .indices()
        .delete(IndicesDeleteParts::Index(&[&names[0], &names[1]]))
        .ignore_unavailable(true)
        .send()
        .await;
}
