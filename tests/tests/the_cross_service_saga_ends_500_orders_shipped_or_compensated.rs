//! The quick start's order flow as four services (examples/services), each on its own
//! PostgreSQL schema, talking only through Kafka: 500 orders placed by 8 writers, about 20% of
//! cards declined, 15% short of an item, 10% of carriers silent (the shipping timeout, on a
//! test clock, calls those off). Every order ends shipped or fully compensated, exactly as the
//! plan says; stock and money are conserved; each command landed once across the four
//! services; each step's outcome was recorded once. `SAGA_SEED` replays a run.

use std::time::{Duration, Instant};

use cqrs_core::testing::TestClock;
use integration_tests::bus::kafka;
use integration_tests::saga::{
    assert_conserved_on, end_state_on, expected, place_orders_on, saga_options, saga_seed,
    try_drive_to_the_end, Plan,
};
use integration_tests::{drop_schema, pg_store};
use services::contracts::Topics;
use services::{Services, ServicesOptions, Stores};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cross_service_saga_ends_500_orders_shipped_or_compensated() {
    let started = Instant::now();
    let plan = Plan::new(saga_seed(), 500);
    println!("{}", plan.describe());
    let stores = Stores {
        order: pg_store().await,
        payment: pg_store().await,
        inventory: pg_store().await,
        shipping: pg_store().await,
    };
    let broker = kafka();
    let topics = Topics::create(&broker, 8).await.expect("topics");
    let clock = TestClock::new();
    let options = ServicesOptions {
        cards: plan.cards.clone(),
        answers: plan.answers,
        process: saga_options(&clock),
    };
    let services = Services::start(&stores, broker.config(), &topics, options).expect("services");

    place_orders_on(&stores.order, &stores.inventory, &plan, 8).await;
    // Generous: the machine may be busy (a build on two cores slowed a run 4x); the run
    // itself settles in about 20 s.
    let driven = try_drive_to_the_end(&stores.order, &plan, &clock, Duration::from_secs(150)).await;
    if let Err(stalled) = driven {
        panic!("{stalled}\n{}", services.status_report());
    }
    let settled = started.elapsed();
    let replies = services.order.replies.status();
    let partners = services.order.partners.status();
    println!("replies: {replies}\npartner events: {partners}");
    assert_eq!((replies.parked, partners.parked), (0, 0));
    services.shutdown().await;

    let state = end_state_on(
        [
            &stores.order,
            &stores.payment,
            &stores.shipping,
            &stores.inventory,
        ],
        &plan,
    )
    .await;
    assert_eq!(state, expected(&plan));
    assert_conserved_on(
        &stores.order,
        &[
            (&stores.order, Some(&["order"][..])),
            (&stores.payment, Some(&["payment"][..])),
            (&stores.inventory, Some(&["inventory"][..])),
            (&stores.shipping, Some(&["shipment"][..])),
        ],
        &plan,
        &clock,
    )
    .await;
    println!("settled in {settled:?}, checked in {:?}", started.elapsed());
    broker.delete_topics().await.expect("delete topics");
    for store in [
        &stores.order,
        &stores.payment,
        &stores.inventory,
        &stores.shipping,
    ] {
        drop_schema(store).await;
    }
}
