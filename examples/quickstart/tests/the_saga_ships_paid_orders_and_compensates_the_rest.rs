//! The whole flow on the in-memory store: orders placed, the saga driving them to shipping or
//! calling them off, and the states that result.

use std::collections::BTreeMap;

use cqrs_core::{
    EventFilter, InMemoryEventStore, Position, ReadAll, ReadStream, RecordedEvent, StreamId,
    Version,
};
use quickstart::inventory::InventoryCommand;
use quickstart::order::{OrderCommand, OrderLine, OrderStatus};
use quickstart::payment::{CardLimits, PaymentStatus};
use quickstart::read_side::{OrderSummaries, ReadSide};
use quickstart::saga::Saga;
use quickstart::shop::Shop;

/// A shop with 10 widgets and 5 gadgets, where carol may spend 50.00 at most.
async fn stocked_shop() -> Shop<InMemoryEventStore> {
    let shop = Shop::new(
        InMemoryEventStore::new(),
        CardLimits::new().limit("carol", 50_00),
    );
    for (sku, quantity) in [("widget", 10), ("gadget", 5)] {
        shop.stock
            .execute(sku, &InventoryCommand::Restock { quantity })
            .await
            .expect("restock");
    }
    shop
}

async fn place(shop: &Shop<InMemoryEventStore>, id: &str, customer: &str, lines: Vec<OrderLine>) {
    let place = OrderCommand::Place {
        customer: customer.into(),
        lines,
    };
    shop.orders.execute(id, &place).await.expect("placed");
}

async fn reserved(shop: &Shop<InMemoryEventStore>, sku: &str) -> BTreeMap<String, u64> {
    shop.stock.load(sku).await.expect("load").0.reserved
}

async fn feed(store: &InMemoryEventStore) -> Vec<RecordedEvent> {
    let batch = store
        .read_all(Position::START, 1000, &EventFilter::all())
        .await
        .expect("feed");
    batch.events
}

#[tokio::test]
async fn a_paid_order_is_reserved_confirmed_and_shipped() {
    let shop = stocked_shop().await;
    let mut saga = Saga::after(Position::START);
    place(
        &shop,
        "1",
        "alice",
        vec![
            OrderLine::new("widget", 2, 12_50),
            OrderLine::new("gadget", 1, 9_99),
        ],
    )
    .await;
    saga.catch_up(&shop).await.expect("saga");

    let (order, version) = shop.orders.load("1").await.expect("order");
    assert_eq!(
        (order.status, version),
        (OrderStatus::Shipped, Version::new(3))
    );
    let (payment, _) = shop.payments.load("1").await.expect("payment");
    assert_eq!(
        (payment.status, payment.amount),
        (PaymentStatus::Authorized, 34_99)
    );
    assert_eq!(
        reserved(&shop, "widget").await,
        BTreeMap::from([("1".into(), 2)])
    );
    assert_eq!(
        reserved(&shop, "gadget").await,
        BTreeMap::from([("1".into(), 1)])
    );
}

#[tokio::test]
async fn a_stock_shortage_cancels_the_order_and_releases_what_was_reserved() {
    let shop = stocked_shop().await;
    let mut saga = Saga::after(Position::START);
    place(
        &shop,
        "2",
        "bob",
        vec![
            OrderLine::new("widget", 1, 12_50),
            OrderLine::new("gadget", 6, 9_99),
        ],
    )
    .await;
    saga.catch_up(&shop).await.expect("saga");

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
    let (_, payment_version) = shop.payments.load("2").await.expect("payment");
    assert_eq!(payment_version, Version::ZERO, "no payment was asked for");
}

#[tokio::test]
async fn a_refused_payment_cancels_the_order_and_releases_its_stock() {
    let shop = stocked_shop().await;
    let mut saga = Saga::after(Position::START);
    place(
        &shop,
        "3",
        "carol",
        vec![OrderLine::new("widget", 6, 12_50)],
    )
    .await;
    saga.catch_up(&shop).await.expect("saga");

    let (order, _) = shop.orders.load("3").await.expect("order");
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(
        order.cancel_reason.as_deref(),
        Some("payment refused: over the card limit of 50.00")
    );
    let (payment, _) = shop.payments.load("3").await.expect("payment");
    assert_eq!(payment.status, PaymentStatus::Refused);
    let (widget, _) = shop.stock.load("widget").await.expect("widget");
    assert_eq!((widget.on_hand, widget.available()), (10, 10));
}

#[tokio::test]
async fn an_order_the_customer_cancelled_first_is_left_alone() {
    let shop = stocked_shop().await;
    let mut saga = Saga::after(Position::START);
    place(
        &shop,
        "4",
        "alice",
        vec![OrderLine::new("widget", 1, 12_50)],
    )
    .await;
    let cancel = OrderCommand::Cancel {
        reason: "changed my mind".into(),
    };
    shop.orders.execute("4", &cancel).await.expect("cancelled");
    saga.catch_up(&shop).await.expect("saga");

    assert!(reserved(&shop, "widget").await.is_empty());
    let (_, payment_version) = shop.payments.load("4").await.expect("payment");
    assert_eq!(payment_version, Version::ZERO);
}

#[tokio::test]
async fn every_event_of_a_flow_carries_its_correlation_and_cause() {
    let shop = stocked_shop().await;
    let store = shop.store().clone();
    let before = feed(&store).await.len();
    let mut saga = Saga::after(Position::START);
    place(
        &shop,
        "1",
        "alice",
        vec![OrderLine::new("widget", 2, 12_50)],
    )
    .await;
    saga.catch_up(&shop).await.expect("saga");

    let flow: Vec<RecordedEvent> = feed(&store).await.split_off(before);
    let types: Vec<&str> = flow.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "StockReserved",
            "PaymentAuthorized",
            "OrderConfirmed",
            "OrderShipped"
        ]
    );
    let correlation = flow[0].metadata.correlation_id;
    assert!(correlation.is_some());
    for (cause, effect) in [(0, 1), (0, 2), (2, 3), (3, 4)] {
        assert_eq!(flow[effect].metadata.correlation_id, correlation);
        assert_eq!(
            flow[effect].metadata.causation_id,
            Some(flow[cause].metadata.event_id.as_uuid()),
            "{} is caused by {}",
            flow[effect].event_type,
            flow[cause].event_type
        );
        assert!(
            flow[effect].metadata.command_id.is_some(),
            "saga commands are idempotent"
        );
    }
}

#[tokio::test]
async fn handling_the_feed_again_records_nothing_new() {
    let shop = stocked_shop().await;
    let mut saga = Saga::after(Position::START);
    place(
        &shop,
        "1",
        "alice",
        vec![OrderLine::new("widget", 2, 12_50)],
    )
    .await;
    place(
        &shop,
        "2",
        "bob",
        vec![
            OrderLine::new("widget", 1, 12_50),
            OrderLine::new("gadget", 6, 9_99),
        ],
    )
    .await;
    place(
        &shop,
        "3",
        "carol",
        vec![OrderLine::new("widget", 6, 12_50)],
    )
    .await;
    let first = saga.catch_up(&shop).await.expect("saga");
    let recorded = shop.store().len();

    saga.rewind();
    let again = saga.catch_up(&shop).await.expect("saga again");
    assert_eq!(again, first);
    assert_eq!(shop.store().len(), recorded);
    let order_1 = StreamId::new("order-1").expect("stream id");
    let events = shop
        .store()
        .read_stream(&order_1, Version::new(1), 10)
        .await;
    assert_eq!(
        events.expect("read").len(),
        3,
        "placed, confirmed, shipped: once each"
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
    assert_eq!((widget.on_hand, widget.available()), (15, 13));
    let (gadget, _) = shop.stock.load("gadget").await.expect("gadget");
    assert_eq!((gadget.on_hand, gadget.available()), (10, 9));
    let (refused, _) = shop.payments.load("3").await.expect("payment");
    assert_eq!(refused.status, PaymentStatus::Refused);
}
