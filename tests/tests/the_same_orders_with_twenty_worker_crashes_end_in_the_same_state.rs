//! The thousand orders of `a_thousand_concurrent_orders_end_shipped_or_fully_compensated`
//! (same seed, same plan), with the saga's worker aborted 20 times at seeded points: while a
//! command is about to be sent (its input recorded), and just after a command landed (its
//! outcome not recorded). Each time a new worker takes over from the checkpoint. The end state
//! is the one the plan calls for, field by field: the state without crashes.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::testing::TestClock;
use integration_tests::saga::{
    assert_conserved, carrier_runner, drive_to_the_end, end_state, expected, place_orders,
    saga_runner, saga_runner_options, saga_seed, Crashes, CrashingShop, Plan,
};
use integration_tests::{drop_schema, pg_store};
use quickstart::shop::Shop;

const CRASHES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_orders_with_twenty_worker_crashes_end_in_the_same_state() {
    let store = pg_store().await;
    let seed = saga_seed();
    let plan = Plan::new(seed, 1000);
    println!("{}", plan.describe());
    let clock = TestClock::new();
    let shop = Arc::new(Shop::new(store.clone(), plan.cards.clone()));
    // About 6 commands per order: crash points over the first 4,000 dispatch calls.
    let (crashes, mut heard) = Crashes::seeded(seed, CRASHES, 4000);
    let carrier = carrier_runner(&store, &plan).spawn();
    let start = || {
        let dispatcher = CrashingShop::new(shop.clone(), crashes.clone());
        // A crashed worker's lease is left to expire (a crash cannot release it, and a new
        // worker cannot tell a dead one from one that lingers): short leases keep the waits
        // short.
        let options = saga_runner_options("worker-a", Duration::from_secs(1));
        saga_runner(&store, dispatcher, &clock, options).spawn()
    };

    let mut worker = start();
    let placing = place_orders(&store, &plan, 16);
    // Up to a lease's time per crash on top of the run.
    let driving = drive_to_the_end(&store, &plan, &clock, Duration::from_secs(90));
    tokio::pin!(placing, driving);
    let mut placed = false;
    let mut crashed = Vec::new();
    loop {
        tokio::select! {
            () = &mut placing, if !placed => placed = true,
            () = &mut driving, if placed => break,
            hit = heard.recv() => {
                let (call, point) = hit.expect("the crash plan lives as long as the test");
                worker.abort();
                crashed.push((call, point));
                worker = start();
            }
        }
    }
    worker.shutdown().await;
    carrier.shutdown().await;
    println!("crashed {} times: {crashed:?}", crashed.len());
    assert_eq!(
        crashed.len(),
        CRASHES,
        "every seeded crash point was reached"
    );

    assert_eq!(end_state(&store, &plan).await, expected(&plan));
    assert_conserved(&store, &plan, &clock).await;
    drop_schema(&store).await;
}
