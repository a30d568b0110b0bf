//! `OrderFulfilment`, one test per row of its table (see `saga::orchestrated`), on the
//! process fixture: no store, no runner, time moved by hand. The fixture decides through the
//! engine's own `decide_input`, so what holds here holds on the runner.

use std::time::Duration;

use cqrs_core::process::{EventRef, Input, ProcessFixture, Step};
use cqrs_core::{EventId, Position, StreamId, Version};
use quickstart::inventory::{InventoryCommand, InventoryError};
use quickstart::order::{OrderCommand, OrderEvent, OrderLine};
use quickstart::payment::{PaymentCommand, PaymentEvent};
use quickstart::saga::commands::{ShopCommand, ShopRejection};
use quickstart::saga::orchestrated::{OrderFulfilment, Stage, SHIPPING};
use quickstart::saga::ShopEvent;
use quickstart::shipping::{ShipmentCommand, ShipmentEvent};

type Fixture = ProcessFixture<OrderFulfilment>;

/// `trigger`, as recorded in `stream` (the saga reads the order id from the stream).
fn event(stream: &str, trigger: ShopEvent) -> Input<OrderFulfilment> {
    Input::Event {
        trigger,
        source: EventRef {
            stream: StreamId::new(stream).expect("stream id"),
            version: Version::new(1),
            position: Position::START,
            event_id: EventId::new(),
        },
    }
}

/// Order 7: two widgets and a gadget, 34.99.
fn placed() -> Input<OrderFulfilment> {
    event(
        "order-7",
        ShopEvent::Order(OrderEvent::OrderPlaced {
            customer: "alice".into(),
            lines: vec![
                OrderLine::new("widget", 2, 12_50),
                OrderLine::new("gadget", 1, 9_99),
            ],
        }),
    )
}

fn authorize() -> ShopCommand {
    ShopCommand::payment(
        "7",
        PaymentCommand::Authorize {
            order_id: "7".into(),
            customer: "alice".into(),
            amount: 34_99,
        },
    )
}

fn authorized() -> Input<OrderFulfilment> {
    event(
        "payment-7",
        ShopEvent::Payment(PaymentEvent::PaymentAuthorized {
            order_id: "7".into(),
            amount: 34_99,
        }),
    )
}

fn reserve(sku: &str, quantity: u64) -> ShopCommand {
    ShopCommand::stock(
        sku,
        InventoryCommand::Reserve {
            order_id: "7".into(),
            quantity,
        },
    )
}

fn stock(sku: &str, command: fn(String) -> InventoryCommand) -> ShopCommand {
    ShopCommand::stock(sku, command("7".into()))
}

fn release(order_id: String) -> InventoryCommand {
    InventoryCommand::Release { order_id }
}

fn ship(order_id: String) -> InventoryCommand {
    InventoryCommand::Ship { order_id }
}

fn cancel(reason: &str) -> ShopCommand {
    ShopCommand::order(
        "7",
        OrderCommand::Cancel {
            reason: reason.into(),
        },
    )
}

fn request_shipment() -> ShopCommand {
    ShopCommand::shipping(
        "7",
        ShipmentCommand::Request {
            order_id: "7".into(),
        },
    )
}

/// Inputs 0..=4: placed, authorize accepted, authorized, widget reserved (step 2/0), gadget
/// reserved (step 3/0): a shipment is requested at input 4, action 0.
fn all_reserved() -> Vec<Input<OrderFulfilment>> {
    vec![
        placed(),
        Input::accepted(Step::nth(0, 0), authorize()),
        authorized(),
        Input::accepted(Step::nth(2, 0), reserve("widget", 2)),
        Input::accepted(Step::nth(3, 0), reserve("gadget", 1)),
    ]
}

#[test]
fn a_placed_order_is_paid_for_first() {
    Fixture::new("7")
        .when(placed())
        .then_expect_commands([authorize()])
        .then_expect_nothing_scheduled();
}

#[test]
fn a_refused_payment_cancels_the_order_and_completes() {
    let refused = event(
        "payment-7",
        ShopEvent::Payment(PaymentEvent::PaymentRefused {
            order_id: "7".into(),
            amount: 34_99,
            reason: "over the card limit of 20.00".into(),
        }),
    );
    Fixture::new("7")
        .given([placed(), Input::accepted(Step::nth(0, 0), authorize())])
        .when(refused)
        .then_expect_commands([cancel("payment refused: over the card limit of 20.00")])
        .then_expect_completed();
}

#[test]
fn an_authorized_payment_reserves_the_first_line_only() {
    Fixture::new("7")
        .given([placed(), Input::accepted(Step::nth(0, 0), authorize())])
        .when(authorized())
        .then_expect_commands([reserve("widget", 2)]);
}

#[test]
fn each_accepted_reserve_reserves_the_next_line() {
    Fixture::new("7")
        .given([
            placed(),
            Input::accepted(Step::nth(0, 0), authorize()),
            authorized(),
        ])
        .when(Input::accepted(Step::nth(2, 0), reserve("widget", 2)))
        .then_expect_commands([reserve("gadget", 1)])
        .then_expect_nothing_scheduled();
}

#[test]
fn the_last_reserve_asks_a_carrier_and_starts_the_shipping_timeout() {
    let mut given = all_reserved();
    let last = given.pop().expect("five inputs");
    let fixture = Fixture::new("7")
        .given(given)
        .when(last)
        .then_expect_commands([request_shipment()])
        .then_expect_scheduled(SHIPPING);
    let due = fixture
        .bookkeeping()
        .timeouts
        .get(SHIPPING)
        .map(|t| t.due_at);
    assert_eq!(due, Some(Fixture::START + Duration::from_secs(30)));
    assert_eq!(fixture.state().stage, Stage::AwaitingCarrier);
}

/// The rejected line is released too: a `Reserve` delivered again after its rejection (a
/// consumer that crashed before committing its offset, after a restock) may pass, and its
/// units would stay reserved for an order that was cancelled. `Release` of nothing reserved
/// changes nothing, and on the bus it follows the `Reserve` on the item's partition.
#[test]
fn a_rejected_reserve_releases_the_lines_before_it_and_its_own_then_refunds_and_cancels() {
    let short = ShopRejection::Stock(InventoryError::InsufficientStock {
        requested: 1,
        available: 0,
    });
    Fixture::new("7")
        .given([
            placed(),
            Input::accepted(Step::nth(0, 0), authorize()),
            authorized(),
            Input::accepted(Step::nth(2, 0), reserve("widget", 2)),
        ])
        .when(Input::rejected(
            Step::nth(3, 0),
            reserve("gadget", 1),
            short,
        ))
        .then_expect_commands([
            stock("widget", release),
            stock("gadget", release),
            ShopCommand::payment("7", PaymentCommand::Refund),
            cancel("out of stock: gadget (1 wanted, 0 available)"),
        ])
        .then_expect_completed();
}

#[test]
fn a_scheduled_shipment_cancels_the_timeout_ships_captures_and_completes() {
    let scheduled = event(
        "shipment-7",
        ShopEvent::Shipping(ShipmentEvent::ShipmentScheduled {
            order_id: "7".into(),
            carrier: "parcel-co".into(),
        }),
    );
    let mut given = all_reserved();
    given.push(Input::accepted(Step::nth(4, 0), request_shipment()));
    Fixture::new("7")
        .given(given)
        .when(scheduled)
        .then_expect_cancelled(SHIPPING)
        .then_expect_commands([
            stock("widget", ship),
            stock("gadget", ship),
            ShopCommand::payment("7", PaymentCommand::Capture),
            ShopCommand::order("7", OrderCommand::MarkShipped),
        ])
        .then_expect_nothing_scheduled()
        .then_expect_completed();
}

#[test]
fn a_carrier_silent_for_thirty_seconds_calls_everything_off() {
    let mut given = all_reserved();
    given.push(Input::accepted(Step::nth(4, 0), request_shipment()));
    let reason = "no carrier answered within 30 s";
    let waiting = Fixture::new("7")
        .given(given.clone())
        .when_time_passes(Duration::from_secs(29))
        .then_expect_commands([]);
    assert!(
        waiting.bookkeeping().timeouts.contains_key(SHIPPING),
        "still due at 30 s"
    );
    Fixture::new("7")
        .given(given)
        .when_time_passes(Duration::from_secs(31))
        .then_expect_commands([
            ShopCommand::shipping(
                "7",
                ShipmentCommand::Cancel {
                    reason: reason.into(),
                },
            ),
            stock("widget", release),
            stock("gadget", release),
            ShopCommand::payment("7", PaymentCommand::Refund),
            cancel(reason),
        ])
        .then_expect_completed();
}
