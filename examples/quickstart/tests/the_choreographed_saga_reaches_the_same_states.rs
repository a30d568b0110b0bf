//! The same orders through the orchestrated saga (one `OrderFulfilment`) and through the
//! choreography (`PaymentPolicy`, `StockPolicy`, `OrderPolicy`, routed by correlation id), each
//! on its own store: orders, stock, payments and shipments end the same. One order's carrier
//! never answers, so both call it off once the test clock passes the shipping timeout.

mod support;

use std::time::Duration;

use cqrs_core::InMemoryEventStore;
use quickstart::carrier::Answers;
use quickstart::inventory::Inventory;
use quickstart::order::{Order, OrderLine, OrderStatus};
use quickstart::payment::{Payment, PaymentStatus};
use quickstart::saga::choreographed::{OrderPolicy, PaymentPolicy, StockPolicy};
use quickstart::saga::orchestrated::OrderFulfilment;
use quickstart::shipping::{Shipment, ShipmentStatus};
use quickstart::shop::Shop;
use support::{finished, place, spawn, start, stocked_shop};

/// Every order, item, payment and shipment the orders touch, as loaded.
#[derive(Debug, PartialEq)]
struct EndState {
    orders: Vec<Order>,
    stock: Vec<Inventory>,
    payments: Vec<Payment>,
    shipments: Vec<Shipment>,
}

const ORDERS: [&str; 5] = ["1", "2", "3", "4", "5"];
const N: u64 = 5;

async fn place_orders(shop: &Shop<InMemoryEventStore>) {
    let orders: [(&str, &str, Vec<OrderLine>); 5] = [
        ("1", "alice", vec![line("widget", 2), line("gadget", 1)]),
        ("2", "bob", vec![line("widget", 1), line("gadget", 6)]),
        ("3", "carol", vec![line("widget", 6)]),
        ("4", "dave", vec![line("gadget", 3)]),
        ("5", "erin", vec![line("widget", 3)]),
    ];
    for (id, customer, lines) in orders {
        place(shop, id, customer, lines).await;
        // One order at a time: both variants see the same stock when they reserve.
        support::eventually(&format!("order {id} settles"), || settled(shop, id)).await;
    }
}

fn line(sku: &str, quantity: u64) -> OrderLine {
    OrderLine::new(sku, quantity, 12_50)
}

/// Whether order `id` is as far as it goes without the clock moving: shipped and captured, or
/// cancelled with its money and stock given back; or, for order 5, waiting for the carrier.
async fn settled(shop: &Shop<InMemoryEventStore>, id: &str) -> bool {
    if id == "5" {
        let (shipment, _) = shop.shipments.load(id).await.expect("shipment");
        return shipment.status == ShipmentStatus::Requested;
    }
    let (order, _) = shop.orders.load(id).await.expect("order");
    let (payment, _) = shop.payments.load(id).await.expect("payment");
    let final_payment = matches!(
        (order.status, payment.status),
        (OrderStatus::Shipped, PaymentStatus::Captured)
            | (
                OrderStatus::Cancelled,
                PaymentStatus::Refused | PaymentStatus::Refunded
            )
    );
    let mut holds_stock = false;
    for sku in ["widget", "gadget"] {
        let (item, _) = shop.stock.load(sku).await.expect("stock");
        holds_stock |= item.reserved.contains_key(id);
    }
    final_payment && !holds_stock
}

async fn end_state(shop: &Shop<InMemoryEventStore>) -> EndState {
    let mut state = EndState {
        orders: Vec::new(),
        stock: Vec::new(),
        payments: Vec::new(),
        shipments: Vec::new(),
    };
    for id in ORDERS {
        state
            .orders
            .push(shop.orders.load(id).await.expect("order").0);
        state
            .payments
            .push(shop.payments.load(id).await.expect("payment").0);
        state
            .shipments
            .push(shop.shipments.load(id).await.expect("shipment").0);
    }
    for sku in ["widget", "gadget"] {
        state
            .stock
            .push(shop.stock.load(sku).await.expect("stock").0);
    }
    state
}

async fn orchestrated() -> EndState {
    let shop = stocked_shop().await;
    let running = start(shop.store(), silent_for_5(), |store, clock| {
        vec![spawn::<OrderFulfilment>(store, clock)]
    });
    place_orders(&shop).await;
    running.clock.advance(Duration::from_secs(31));
    finished::<OrderFulfilment>(shop.store(), &running, N).await;
    running.stop().await;
    end_state(&shop).await
}

async fn choreographed() -> EndState {
    let shop = stocked_shop().await;
    let running = start(shop.store(), silent_for_5(), |store, clock| {
        vec![
            spawn::<PaymentPolicy>(store, clock),
            spawn::<StockPolicy>(store, clock),
            spawn::<OrderPolicy>(store, clock),
        ]
    });
    place_orders(&shop).await;
    running.clock.advance(Duration::from_secs(31));
    let n = N;
    finished::<OrderPolicy>(shop.store(), &running, n).await;
    finished::<PaymentPolicy>(shop.store(), &running, n).await;
    finished::<StockPolicy>(shop.store(), &running, n).await;
    running.stop().await;
    end_state(&shop).await
}

/// A rule under which the carrier ignores order 5 only.
fn silent_for_5() -> Answers {
    (0..)
        .map(|seed| Answers::AllBut {
            seed,
            silent_percent: 30,
        })
        .find(|rule| ORDERS.iter().all(|id| rule.answers(id) == (*id != "5")))
        .expect("some seed silences order 5 alone")
}

#[tokio::test]
async fn the_choreographed_saga_reaches_the_same_states_as_the_orchestrated_one() {
    let orchestrated = orchestrated().await;
    let choreographed = choreographed().await;
    let statuses: Vec<String> = (orchestrated.orders.iter())
        .map(|o| o.status.to_string())
        .collect();
    assert_eq!(
        statuses,
        ["shipped", "cancelled", "cancelled", "shipped", "cancelled"],
        "{orchestrated:#?}"
    );
    assert_eq!(choreographed, orchestrated);
}
