//! [`OrderFulfilment`]: the orchestrated saga. One process manager per order (its instance id is
//! the order id) that knows the whole flow:
//!
//! | input | decide |
//! |---|---|
//! | `OrderPlaced` | send `Payment::Authorize` |
//! | `PaymentRefused` | send `Order::Cancel`; complete |
//! | `PaymentAuthorized` | send `Stock::Reserve` for line 1 |
//! | accepted `Reserve` of line n | reserve line n+1; after the last line: send `Shipping::Request`, time out `"shipping"` after 30 s |
//! | rejected `Reserve` | send `Stock::Release` for each line reserved so far and the rejected one, `Payment::Refund`, `Order::Cancel`; complete |
//! | `ShipmentScheduled` | cancel `"shipping"`; send `Stock::Ship` for each line, `Payment::Capture`, `Order::MarkShipped`; complete |
//! | timeout `"shipping"` | send `Shipping::Cancel`, `Stock::Release` for each line, `Payment::Refund`, `Order::Cancel`; complete |
//!
//! Reserves go one at a time, so a rejection never has a later reserve still in flight, and the
//! compensation knows exactly which lines to give back. Every compensation is idempotent by
//! order (a release gives back what the order holds, a refund what is authorized and not
//! captured), as the framework asks of them: a rejected command sent again after a crash may be
//! handled again.

use std::time::Duration;

use cqrs_core::process::{Action, Context, Input, ProcessManager, Route};
use cqrs_core::{Aggregate, Error, EventFilter, RecordedEvent};
use serde::{Deserialize, Serialize};

use super::commands::{ShopCommand, ShopRejection};
use super::ShopEvent;
use crate::inventory::InventoryCommand;
use crate::order::{self, Order, OrderCommand, OrderEvent, OrderLine};
use crate::payment::{Payment, PaymentCommand, PaymentEvent};
use crate::shipping::{Shipment, ShipmentCommand, ShipmentEvent};

/// How long the carrier has to answer a shipment request before the order is called off.
pub const SHIPPING_TIMEOUT: Duration = Duration::from_secs(30);

/// The key of the carrier's timeout.
pub const SHIPPING: &str = "shipping";

/// Where an order's fulfilment is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Nothing received yet.
    #[default]
    New,
    /// The payment is asked for.
    Paying,
    /// Paid; lines are being reserved, one at a time.
    Reserving,
    /// Every line reserved; a carrier is asked and has not answered.
    AwaitingCarrier,
    /// The carrier scheduled the shipment: ship, capture, mark shipped.
    Shipping,
    /// The payment was refused: cancel the order.
    Refused,
    /// A line was short: give back what was reserved, refund, cancel.
    OutOfStock,
    /// The carrier never answered: call everything off.
    TimedOut,
}

/// The orchestrated order saga (instance id: the order id; journal `order_fulfilment-{id}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFulfilment {
    /// Where it is.
    pub stage: Stage,
    /// The order.
    pub order_id: String,
    /// Who ordered.
    pub customer: String,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
    /// How many lines (from the first) are reserved.
    pub reserved: usize,
    /// Why the order is called off, once it is.
    pub reason: Option<String>,
}

impl ProcessManager for OrderFulfilment {
    const TYPE: &'static str = "order_fulfilment";
    type Trigger = ShopEvent;
    type Command = ShopCommand;
    type Rejection = ShopRejection;
    type Timeout = ();

    fn subscriptions() -> EventFilter {
        EventFilter::all()
            .category(Order::TYPE)
            .category(Payment::TYPE)
            .category(Shipment::TYPE)
            .event_types([
                "OrderPlaced",
                "PaymentAuthorized",
                "PaymentRefused",
                "ShipmentScheduled",
            ])
    }

    fn route(event: &RecordedEvent) -> Result<Route<ShopEvent>, Error> {
        let Some(trigger) = ShopEvent::decode(event)? else {
            return Ok(Route::Ignore);
        };
        // Orders, payments and shipments are all keyed by the order id.
        let order_id = event.stream_id.instance().to_owned();
        Ok(match trigger {
            ShopEvent::Order(OrderEvent::OrderPlaced { .. }) => Route::start(order_id, trigger),
            ShopEvent::Payment(
                PaymentEvent::PaymentAuthorized { .. } | PaymentEvent::PaymentRefused { .. },
            )
            | ShopEvent::Shipping(ShipmentEvent::ShipmentScheduled { .. }) => {
                Route::continue_with(order_id, trigger)
            }
            _ => Route::Ignore,
        })
    }

    fn apply(&mut self, input: &Input<Self>) {
        match (input, self.stage) {
            (
                Input::Event {
                    trigger: ShopEvent::Order(OrderEvent::OrderPlaced { customer, lines }),
                    source,
                },
                Stage::New,
            ) => {
                self.stage = Stage::Paying;
                self.order_id = source.stream.instance().to_owned();
                self.customer.clone_from(customer);
                self.lines.clone_from(lines);
            }
            (Input::Event { trigger, .. }, Stage::Paying) => match trigger {
                ShopEvent::Payment(PaymentEvent::PaymentAuthorized { .. }) => {
                    self.stage = Stage::Reserving;
                }
                ShopEvent::Payment(PaymentEvent::PaymentRefused { reason, .. }) => {
                    self.stage = Stage::Refused;
                    self.reason = Some(format!("payment refused: {reason}"));
                }
                _ => {}
            },
            (Input::Accepted { command, .. }, Stage::Reserving) if is_reserve(command) => {
                self.reserved += 1;
                if self.reserved >= self.lines.len() {
                    self.stage = Stage::AwaitingCarrier;
                }
            }
            (Input::Rejected { command, error, .. }, Stage::Reserving) if is_reserve(command) => {
                self.stage = Stage::OutOfStock;
                let sku = self
                    .lines
                    .get(self.reserved)
                    .map_or("?", |l| l.sku.as_str());
                self.reason = Some(match error {
                    ShopRejection::Stock(short) => format!("out of stock: {sku} ({short})"),
                    other => format!("could not reserve {sku}: {other}"),
                });
            }
            (
                Input::Event {
                    trigger: ShopEvent::Shipping(ShipmentEvent::ShipmentScheduled { .. }),
                    ..
                },
                Stage::AwaitingCarrier,
            ) => self.stage = Stage::Shipping,
            (Input::Timeout { key, .. }, Stage::AwaitingCarrier) if key == SHIPPING => {
                self.stage = Stage::TimedOut;
                let after = SHIPPING_TIMEOUT.as_secs();
                self.reason = Some(format!("no carrier answered within {after} s"));
            }
            _ => {}
        }
    }

    fn decide(&self, input: &Input<Self>, _: &Context<'_>) -> Vec<Action<Self>> {
        use OrderEvent::OrderPlaced;
        use PaymentEvent::{PaymentAuthorized, PaymentRefused};
        use ShipmentEvent::ShipmentScheduled;
        let order_id = self.order_id.as_str();
        match (input, self.stage) {
            (Input::Event { trigger, .. }, stage) => match (trigger, stage) {
                (ShopEvent::Order(OrderPlaced { .. }), Stage::Paying) => {
                    vec![Action::send(ShopCommand::payment(
                        order_id,
                        PaymentCommand::Authorize {
                            order_id: order_id.to_owned(),
                            customer: self.customer.clone(),
                            amount: order::total(&self.lines),
                        },
                    ))]
                }
                (ShopEvent::Payment(PaymentRefused { .. }), Stage::Refused) => {
                    vec![Action::send(self.cancel_order()), Action::Complete]
                }
                (ShopEvent::Payment(PaymentAuthorized { .. }), Stage::Reserving) => {
                    self.reserve_next()
                }
                (ShopEvent::Shipping(ShipmentScheduled { .. }), Stage::Shipping) => self.ship(),
                _ => Vec::new(),
            },
            (Input::Accepted { command, .. }, Stage::Reserving) if is_reserve(command) => {
                self.reserve_next()
            }
            (Input::Accepted { command, .. }, Stage::AwaitingCarrier) if is_reserve(command) => {
                vec![
                    Action::send(ShopCommand::shipping(
                        order_id,
                        ShipmentCommand::Request {
                            order_id: order_id.to_owned(),
                        },
                    )),
                    Action::after(SHIPPING, SHIPPING_TIMEOUT, ()),
                ]
            }
            (Input::Rejected { command, .. }, Stage::OutOfStock) if is_reserve(command) => {
                // The rejected line too: its `Reserve`, delivered again after the rejection,
                // may pass (see `compensate`).
                let tried = self.reserved.saturating_add(1).min(self.lines.len());
                self.compensate(&self.lines[..tried], false)
            }
            (Input::Timeout { key, .. }, Stage::TimedOut) if key == SHIPPING => {
                self.compensate(&self.lines, true)
            }
            // A step that always passes in this flow was refused: an operator looks at it.
            (Input::Rejected { command, error, .. }, _) => {
                vec![Action::fail(format!("{command:?} was rejected: {error}"))]
            }
            _ => Vec::new(),
        }
    }
}

impl OrderFulfilment {
    /// Reserves the first line not reserved yet.
    fn reserve_next(&self) -> Vec<Action<Self>> {
        let Some(line) = self.lines.get(self.reserved) else {
            return Vec::new();
        };
        vec![Action::send(ShopCommand::stock(
            &line.sku,
            InventoryCommand::Reserve {
                order_id: self.order_id.clone(),
                quantity: line.quantity,
            },
        ))]
    }

    /// Cancels the carrier's timeout, ships every line, captures, marks the order shipped and
    /// completes.
    fn ship(&self) -> Vec<Action<Self>> {
        let order_id = self.order_id.as_str();
        let mut actions = vec![Action::cancel(SHIPPING)];
        actions.extend(self.lines.iter().map(|line| {
            Action::send(ShopCommand::stock(
                &line.sku,
                InventoryCommand::Ship {
                    order_id: order_id.to_owned(),
                },
            ))
        }));
        actions.push(Action::send(ShopCommand::payment(
            order_id,
            PaymentCommand::Capture,
        )));
        actions.push(Action::send(ShopCommand::order(
            order_id,
            OrderCommand::MarkShipped,
        )));
        actions.push(Action::Complete);
        actions
    }

    /// Gives back what `reserved` holds, refunds, cancels the order (and the shipment, once one
    /// was asked for), and completes. A `Release` of a line nothing is reserved for changes
    /// nothing; on the bus it goes to the item's partition after any `Reserve` of the order,
    /// so it also undoes a `Reserve` that passed when delivered again after its rejection.
    fn compensate(&self, reserved: &[OrderLine], shipment: bool) -> Vec<Action<Self>> {
        let order_id = self.order_id.as_str();
        let mut actions = Vec::new();
        if shipment {
            actions.push(Action::send(ShopCommand::shipping(
                order_id,
                ShipmentCommand::Cancel {
                    reason: self.reason.clone().unwrap_or_default(),
                },
            )));
        }
        actions.extend(reserved.iter().map(|line| {
            Action::send(ShopCommand::stock(
                &line.sku,
                InventoryCommand::Release {
                    order_id: order_id.to_owned(),
                },
            ))
        }));
        actions.push(Action::send(ShopCommand::payment(
            order_id,
            PaymentCommand::Refund,
        )));
        actions.push(Action::send(self.cancel_order()));
        actions.push(Action::Complete);
        actions
    }

    fn cancel_order(&self) -> ShopCommand {
        ShopCommand::order(
            &self.order_id,
            OrderCommand::Cancel {
                reason: self.reason.clone().unwrap_or_default(),
            },
        )
    }
}

fn is_reserve(command: &ShopCommand) -> bool {
    matches!(
        command,
        ShopCommand::Stock {
            command: InventoryCommand::Reserve { .. },
            ..
        }
    )
}
