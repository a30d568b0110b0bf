//! Outage: the search node (one of this test's own) is stopped in the middle of a projection
//! while orders keep being appended to PostgreSQL. The runner goes to `Retrying` with its
//! breaker `Open`; once the node is back (same data), it recovers by itself (`Running`,
//! breaker `Closed`) and the read model equals a fold from scratch: nothing lost, nothing
//! applied twice, nothing crashed.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::projection::{BreakerState, PoisonPolicy, ProjectionState};
use cqrs_core::CheckpointStore;
use cqrs_elastic::EsQueries;
use integration_tests::domain::OrderCommand;
use integration_tests::*;

/// The node's port (transport on 9351+) and work directory; `scripts/opensearch.sh` keeps its
/// pid there, apart from the shared node's.
const PORT: u16 = 9251;
const WORKDIR: &str = "/var/tmp/cqrs-opensearch-outage";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_node_outage_trips_the_breaker_and_loses_nothing() {
    let started = std::time::Instant::now();
    let progress = |what: &str| eprintln!("[{:>6.1?}] {what}", started.elapsed());
    let store = pg_store().await;
    let node = OutageNode::start(WORKDIR, PORT).await;
    progress("node started");
    let client = client_for(&node.url());
    let read_model = summaries_read_model(&client, "outage").await;
    let summaries = read_model.projection();
    let shop = Arc::new(Shop::new(&store));
    shop.register_customers().await;

    // Short options: batches of 20, retries from 20 ms to 500 ms, the breaker open for 500 ms
    // after 2 failures. Poison stops the runner, so a failure misread as poison would show.
    let options = quick_options().poison(PoisonPolicy::Stop);
    let handle = pg_runner(read_model.projector(), &store, options).spawn();
    let load = Load::start(&shop, "w", 2, 5, Duration::from_millis(5));
    wait_for_status(
        &handle,
        PATIENCE,
        "the projection to apply a first batch",
        |s| s.applied >= 20 && s.breaker == BreakerState::Closed,
    )
    .await;

    progress("stopping the node");
    node.stop().await;
    progress("node stopped");
    let tripped = wait_for_status(
        &handle,
        PATIENCE,
        "the runner to retry behind an open breaker",
        |s| s.state == ProjectionState::Retrying && s.breaker == BreakerState::Open,
    )
    .await;
    assert!(tripped.last_error.is_some(), "{tripped:?}");
    assert!(!tripped.is_ready() && tripped.is_live(), "{tripped:?}");
    let during = shop.executed();
    eventually(PATIENCE, "appends to go on while the node is down", || {
        let shop = shop.clone();
        async move { (shop.executed() >= during + 20).then_some(()) }
    })
    .await;
    let stuck = handle.status();
    assert_eq!(
        (stuck.position, stuck.applied),
        (tripped.position, tripped.applied),
        "no progress without the node: {stuck:?}"
    );
    assert_eq!(
        store.load_checkpoint(&summaries.name).await.unwrap(),
        Some(tripped.position),
        "the checkpoint waits for the node"
    );

    let orders = load.stop().await;
    progress("restarting the node");
    node.restart().await;
    progress("node restarted");
    let recovered = wait_for_status(
        &handle,
        PATIENCE,
        "the runner to recover once the node is back",
        |s| {
            matches!(
                s.state,
                ProjectionState::Running | ProjectionState::CatchingUp
            ) && s.breaker == BreakerState::Closed
                && s.applied > tripped.applied
        },
    )
    .await;
    assert!(recovered.is_live(), "{recovered:?}");
    progress("recovered");

    // New commands are read back as usual.
    let model: EsQueries<OrderSummary> = read_model.queries().clone();
    let after = shop
        .order(
            "after-the-outage",
            OrderCommand::Place {
                customer: "c0".to_owned(),
            },
        )
        .await;
    assert!(model
        .wait_for_position(&store, &summaries.name, after, PATIENCE)
        .await
        .unwrap());
    assert!(model.get("after-the-outage").await.unwrap().is_some());
    let status = wait_caught_up(&handle, &store).await;
    assert!(status.is_ready(), "{status:?}");
    assert_eq!(status.breaker, BreakerState::Closed);
    handle.shutdown().await;

    let documents = assert_read_model_is_the_fold(&client, &summaries.name, &store).await;
    assert_eq!(documents, orders + 1, "one document per order");
    node.stop().await;
    drop_schema(&store).await;
}
