//! The orchestrated saga (`OrderFulfilment`) on the engine's runner, on the in-memory store
//! with a `TestClock`: orders placed, the saga driving them to shipping or calling them off, the
//! carrier's timeout firing when the clock moves, and the states that result.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cqrs_core::process::ProcessManager;
use cqrs_core::projection::RunnerOptions;
use cqrs_core::{EventFilter, InMemoryEventStore, Position, ReadAll, RecordedEvent, Version};
use quickstart::carrier::Answers;
use quickstart::order::{OrderLine, OrderStatus};
use quickstart::payment::{CardLimits, PaymentStatus};
use quickstart::read_side::{OrderSummaries, ReadSide};
use quickstart::saga::{self, orchestrated::OrderFulfilment};
use quickstart::shipping::ShipmentStatus;
use quickstart::shop::Shop;
use support::{cards, finished, options, place, spawn, start, stocked_shop, Running};

fn run_saga(shop: &Shop<InMemoryEventStore>, answers: Answers) -> Running {
    start(shop.store(), answers, |store, clock| {
        vec![spawn::<OrderFulfilment>(store, clock)]
    })
}

async fn reserved(shop: &Shop<InMemoryEventStore>, sku: &str) -> BTreeMap<String, u64> {
    shop.stock.load(sku).await.expect("load").0.reserved
}

/// The shop's own events (not the saga's journal or timer streams), in feed order.
async fn shop_events(store: &InMemoryEventStore) -> Vec<RecordedEvent> {
    let batch = store
        .read_all(Position::START, 1000, &EventFilter::all())
        .await
        .expect("feed");
    let journal = [OrderFulfilment::TYPE, "order_fulfilment_timer", "carrier"];
    (batch.events.into_iter())
        .filter(|e| !journal.contains(&e.stream_id.category()))
        .collect()
}

#[tokio::test]
async fn a_paid_order_is_reserved_shipped_and_captured() {
    let shop = stocked_shop().await;
    let running = run_saga(&shop, Answers::All);
    let lines = vec![
        OrderLine::new("widget", 2, 12_50),
        OrderLine::new("gadget", 1, 9_99),
    ];
    place(&shop, "1", "alice", lines).await;
    finished::<OrderFulfilment>(shop.store(), &running, 1).await;

    let (order, version) = shop.orders.load("1").await.expect("order");
    assert_eq!(
        (order.status, version),
        (OrderStatus::Shipped, Version::new(2))
    );
    let (payment, _) = shop.payments.load("1").await.expect("payment");
    assert_eq!(
        (payment.status, payment.amount),
        (PaymentStatus::Captured, 34_99)
    );
    let (widget, _) = shop.stock.load("widget").await.expect("widget");
    assert_eq!((widget.on_hand, widget.available()), (8, 8));
    let (gadget, _) = shop.stock.load("gadget").await.expect("gadget");
    assert_eq!((gadget.on_hand, gadget.available()), (4, 4));
    let (shipment, _) = shop.shipments.load("1").await.expect("shipment");
    assert_eq!(shipment.status, ShipmentStatus::Scheduled);
    running.stop().await;
}

#[tokio::test]
async fn a_stock_shortage_releases_what_was_reserved_refunds_and_cancels() {
    let shop = stocked_shop().await;
    let running = run_saga(&shop, Answers::All);
    let lines = vec![
        OrderLine::new("widget", 1, 12_50),
        OrderLine::new("gadget", 6, 9_99),
    ];
    place(&shop, "2", "bob", lines).await;
    finished::<OrderFulfilment>(shop.store(), &running, 1).await;

    let (order, _) = shop.orders.load("2").await.expect("order");
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(
        order.cancel_reason.as_deref(),
        Some("out of stock: gadget (6 wanted, 5 available)")
    );
    let (widget, widget_version) = shop.stock.load("widget").await.expect("widget");
    assert_eq!(
        (widget.available(), widget_version),
        (10, Version::new(3)),
        "reserved, then released"
    );
    assert!(reserved(&shop, "gadget").await.is_empty());
    let (payment, _) = shop.payments.load("2").await.expect("payment");
    assert_eq!(payment.status, PaymentStatus::Refunded);
    let (_, shipment_version) = shop.shipments.load("2").await.expect("shipment");
    assert_eq!(shipment_version, Version::ZERO, "no carrier was asked");
    running.stop().await;
}

#[tokio::test]
async fn a_refused_payment_cancels_the_order_before_anything_is_reserved() {
    let shop = stocked_shop().await;
    let running = run_saga(&shop, Answers::All);
    let lines = vec![OrderLine::new("widget", 6, 12_50)];
    place(&shop, "3", "carol", lines).await;
    finished::<OrderFulfilment>(shop.store(), &running, 1).await;

    let (order, _) = shop.orders.load("3").await.expect("order");
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(
        order.cancel_reason.as_deref(),
        Some("payment refused: over the card limit of 50.00")
    );
    let (payment, _) = shop.payments.load("3").await.expect("payment");
    assert_eq!(payment.status, PaymentStatus::Refused);
    let (_, widget_version) = shop.stock.load("widget").await.expect("widget");
    assert_eq!(widget_version, Version::new(1), "only the restock");
    running.stop().await;
}

#[tokio::test]
async fn a_silent_carrier_calls_the_order_off_once_the_test_clock_passes_thirty_seconds() {
    let shop = stocked_shop().await;
    let running = run_saga(&shop, Answers::None);
    let lines = vec![OrderLine::new("widget", 2, 12_50)];
    place(&shop, "4", "alice", lines).await;
    let store = shop.store().clone();
    support::eventually("the shipment is requested", || {
        let shop = &shop;
        async move { shop.shipments.load("4").await.expect("shipment").1 == Version::new(1) }
    })
    .await;

    running.clock.advance(Duration::from_secs(29));
    let clock = running.shared_clock();
    let counts = saga::finished(
        &store,
        OrderFulfilment::TYPE,
        1,
        &clock,
        Duration::from_millis(200),
    );
    assert!(counts.await.is_err(), "nothing is due at 29 s");
    assert_eq!(reserved(&shop, "widget").await.get("4"), Some(&2));

    running.clock.advance(Duration::from_secs(2));
    finished::<OrderFulfilment>(&store, &running, 1).await;
    let (order, _) = shop.orders.load("4").await.expect("order");
    assert_eq!(
        order.cancel_reason.as_deref(),
        Some("no carrier answered within 30 s")
    );
    assert!(reserved(&shop, "widget").await.is_empty());
    let (payment, _) = shop.payments.load("4").await.expect("payment");
    assert_eq!(payment.status, PaymentStatus::Refunded);
    let (shipment, _) = shop.shipments.load("4").await.expect("shipment");
    assert_eq!(shipment.status, ShipmentStatus::Cancelled);
    running.stop().await;
}

#[tokio::test]
async fn every_event_of_a_flow_carries_its_correlation_and_a_command_id() {
    let shop = stocked_shop().await;
    let before = shop_events(shop.store()).await.len();
    let running = run_saga(&shop, Answers::All);
    place(
        &shop,
        "1",
        "alice",
        vec![OrderLine::new("widget", 2, 12_50)],
    )
    .await;
    finished::<OrderFulfilment>(shop.store(), &running, 1).await;
    running.stop().await;

    let flow: Vec<RecordedEvent> = shop_events(shop.store()).await.split_off(before);
    let types: Vec<&str> = flow.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "PaymentAuthorized",
            "StockReserved",
            "ShipmentRequested",
            "ShipmentScheduled",
            "StockShipped",
            "PaymentCaptured",
            "OrderShipped",
        ]
    );
    let correlation = flow[0].metadata.correlation_id;
    assert!(correlation.is_some());
    for effect in &flow[1..] {
        assert_eq!(
            effect.metadata.correlation_id, correlation,
            "{}",
            effect.event_type
        );
        assert!(
            effect.metadata.command_id.is_some(),
            "{}",
            effect.event_type
        );
    }
    let caused = |effect: usize, cause: usize| {
        assert_eq!(
            flow[effect].metadata.causation_id,
            Some(flow[cause].metadata.event_id.as_uuid()),
            "{} is caused by {}",
            flow[effect].event_type,
            flow[cause].event_type
        );
    };
    caused(1, 0); // the saga authorizes because the order was placed
    caused(2, 1); // and reserves because the payment was authorized
    caused(4, 3); // the carrier answers the request
}

#[tokio::test]
async fn delivering_the_whole_feed_again_records_nothing_new() {
    let shop = stocked_shop().await;
    let running = run_saga(&shop, Answers::All);
    place(
        &shop,
        "1",
        "alice",
        vec![OrderLine::new("widget", 2, 12_50)],
    )
    .await;
    let short = vec![
        OrderLine::new("widget", 1, 12_50),
        OrderLine::new("gadget", 6, 9_99),
    ];
    place(&shop, "2", "bob", short).await;
    place(
        &shop,
        "3",
        "carol",
        vec![OrderLine::new("widget", 6, 12_50)],
    )
    .await;
    finished::<OrderFulfilment>(shop.store(), &running, 3).await;
    let clock = running.clock.clone();
    running.stop().await;
    let recorded = shop.store().len();

    let replay = RunnerOptions::new().checkpoint_name("process:order_fulfilment:replay");
    saga::runner_with::<OrderFulfilment, _>(shop.store(), cards(), options(&clock), replay)
        .catch_up()
        .await
        .expect("replayed");
    assert_eq!(
        shop.store().len(),
        recorded,
        "no event, journal entry or command twice"
    );
}

#[tokio::test]
async fn the_quick_start_runs_to_the_end() {
    let store = InMemoryEventStore::new();
    let read_side = ReadSide::in_memory(OrderSummaries::new(), store.clone(), store.clone());
    quickstart::run(store.clone(), read_side)
        .await
        .expect("the quick start runs");

    let shop = Shop::new(store, CardLimits::new());
    let status = |id: &'static str| {
        let shop = &shop;
        async move { shop.orders.load(id).await.expect("order").0.status }
    };
    assert_eq!(status("1").await, OrderStatus::Shipped);
    assert_eq!(status("2").await, OrderStatus::Cancelled);
    assert_eq!(status("3").await, OrderStatus::Cancelled);
    let (widget, _) = shop.stock.load("widget").await.expect("widget");
    assert_eq!((widget.on_hand, widget.available()), (13, 13));
    let (gadget, _) = shop.stock.load("gadget").await.expect("gadget");
    assert_eq!((gadget.on_hand, gadget.available()), (9, 9));
    let payment = |id: &'static str| {
        let shop = &shop;
        async move { shop.payments.load(id).await.expect("payment").0.status }
    };
    assert_eq!(payment("1").await, PaymentStatus::Captured);
    assert_eq!(payment("2").await, PaymentStatus::Refunded);
    assert_eq!(payment("3").await, PaymentStatus::Refused);
}
