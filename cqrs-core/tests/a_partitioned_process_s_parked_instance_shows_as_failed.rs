//! A process manager split over partitions (`PartitionedRunner::for_store_each`, as the docs
//! recommend) parks an instance's event under its partition's name
//! (`process:{TYPE}/partitions/by-key/{n}/{i}`). The status read letters under `process:{TYPE}`
//! alone: a parked instance counted as running, then stuck, never failed, and its timeline
//! left out the letter, so an operator looked for a stalled worker instead of retrying it.
//! `Processes::with_partitions` reads every partition's letters.

mod process_support;

use std::time::Duration;

use cqrs_core::process::{
    InstanceQuery, InstanceState, ProcessManagerProjection, ProcessOptions, Processes, TimelineKind,
};
use cqrs_core::projection::{PartitionedRunner, Partitions, RunnerOptions};
use cqrs_core::testing::TestClock;
use cqrs_core::{InMemoryEventStore, SharedClock};
use process_support::{eventually, place, Checkout, Shop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_process_s_parked_instance_shows_as_failed() {
    let store = InMemoryEventStore::new();
    place(&store, 1, 10, 0).await;
    place(&store, 2, 10, 1).await;
    let partitions = Partitions::by_key(2);
    let worker = {
        let store = store.clone();
        PartitionedRunner::for_store_each(partitions, &store.clone(), move |_| {
            let mut shop = Shop::new(&store);
            shop.broken_stock = Some("stock-1".to_owned());
            let options = ProcessOptions::default().clock(SharedClock::new(TestClock::new()));
            ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options)
        })
        .with_options(
            RunnerOptions::new()
                .owner("w")
                .lease_ttl(Duration::from_secs(3)),
        )
        .spawn()
    };
    let processes = Processes::new(store.clone()).with_partitions(partitions);
    eventually(
        "order 2's instance is parked and counted failed",
        || async {
            let counts = processes
                .counts("checkout", TestClock::START, Duration::from_secs(60))
                .await
                .expect("counts");
            counts.failed == 1
        },
    )
    .await;
    worker.shutdown().await;

    let failed = processes
        .instances("checkout", &InstanceQuery::state(InstanceState::Failed))
        .await
        .expect("instances");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].instance, "2");
    assert!(
        failed[0].last_input.contains("stock-1 is gone"),
        "{failed:?}"
    );
    let timeline = processes.timeline("checkout", "2").await.expect("timeline");
    assert!(
        timeline
            .iter()
            .any(|e| matches!(e.kind, TimelineKind::Parked { .. })),
        "{timeline:?}"
    );
}
