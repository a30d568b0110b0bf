//! Two workers run the quick start's saga on one PostgreSQL schema (leases of 4 s): one leads,
//! the other stands by. The leader is killed once mid-run; the other takes over when its lease
//! runs out. Still one recorded input per input id (so one decision each), one firing per
//! timeout, and stock and money conserved.

use std::time::Duration;

use cqrs_core::process::{ProcessManager, ProcessStore};
use cqrs_core::testing::TestClock;
use cqrs_core::{Clock, SharedClock};
use integration_tests::saga::{
    assert_conserved, carrier_runner, drive_to_the_end, end_state, expected, place_orders,
    saga_runner, saga_runner_options, saga_seed, Plan,
};
use integration_tests::{drop_schema, eventually, lease_holder, pg_store};
use quickstart::saga::orchestrated::OrderFulfilment;
use quickstart::shop::Shop;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_make_one_decision_per_input_and_fire_each_timeout_once() {
    let store = pg_store().await;
    let plan = Plan::new(saga_seed(), 300);
    println!("{}", plan.describe());
    let clock = TestClock::new();
    let worker = |owner: &str| {
        let shop = Shop::new(store.clone(), plan.cards.clone());
        let options = saga_runner_options(owner, Duration::from_secs(4));
        saga_runner(&store, shop, &clock, options).spawn()
    };
    let mut a = Some(worker("worker-a"));
    let mut b = Some(worker("worker-b"));
    let carrier = carrier_runner(&store, &plan).spawn();

    place_orders(&store, &plan, 16).await;
    // Kill whoever leads once the saga is under way (a few dozen orders finished).
    let leader = eventually(
        Duration::from_secs(30),
        "a leader with work done",
        || async {
            let now = SharedClock::new(clock.clone()).now();
            let counts =
                (store.instance_counts(OrderFulfilment::TYPE, now, Duration::from_secs(10)))
                    .await
                    .expect("counts");
            if counts.completed < 30 {
                return None;
            }
            lease_holder(&store, "process:order_fulfilment").await
        },
    )
    .await;
    println!("killing the leader, {leader}");
    let killed = if leader == "worker-a" {
        a.take()
    } else {
        b.take()
    };
    killed.expect("the leader runs").abort();

    drive_to_the_end(&store, &plan, &clock, Duration::from_secs(50)).await;
    for survivor in [a, b].into_iter().flatten() {
        survivor.shutdown().await;
    }
    carrier.shutdown().await;

    assert_eq!(end_state(&store, &plan).await, expected(&plan));
    assert_conserved(&store, &plan, &clock).await;
    drop_schema(&store).await;
}
