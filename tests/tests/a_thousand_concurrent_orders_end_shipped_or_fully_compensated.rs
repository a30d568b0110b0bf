//! A thousand orders placed by 16 writers at once on PostgreSQL, run through the quick start's
//! orchestrated saga: about 20% of cards declined, 15% of orders short of an item, 10% of
//! carriers silent (the shipping timeout, on a test clock, calls those off). Every order ends
//! shipped or fully compensated, no instance is left running or stuck, stock and money are
//! conserved, and each aggregate received each command once. `SAGA_SEED` replays a run.

use std::time::Duration;

use cqrs_core::testing::TestClock;
use integration_tests::saga::{
    assert_conserved, carrier_runner, drive_to_the_end, end_state, expected, place_orders,
    saga_runner, saga_runner_options, saga_seed, Plan,
};
use integration_tests::{drop_schema, pg_store};
use quickstart::shop::Shop;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_orders_end_shipped_or_fully_compensated() {
    let store = pg_store().await;
    let plan = Plan::new(saga_seed(), 1000);
    println!("{}", plan.describe());
    let clock = TestClock::new();
    let shop = Shop::new(store.clone(), plan.cards.clone());
    let options = saga_runner_options("worker-a", Duration::from_secs(10));
    let saga = saga_runner(&store, shop, &clock, options).spawn();
    let carrier = carrier_runner(&store, &plan).spawn();

    place_orders(&store, &plan, 16).await;
    drive_to_the_end(&store, &plan, &clock, Duration::from_secs(50)).await;
    saga.shutdown().await;
    carrier.shutdown().await;

    assert_eq!(end_state(&store, &plan).await, expected(&plan));
    assert_conserved(&store, &plan, &clock).await;
    drop_schema(&store).await;
}
