//! The same order saga as a choreography: three small process managers, one per service's
//! policy, each knowing only its own step. They find each other's events by correlation id
//! (every command a process sends carries its instance's correlation id, the one of the
//! `OrderPlaced` that started it), so each instance id is that correlation id.
//!
//! - [`PaymentPolicy`]: `OrderPlaced` -> authorize; `OrderCancelled` -> refund;
//!   `OrderShipped` -> capture.
//! - [`StockPolicy`]: `PaymentAuthorized` -> reserve each line; a rejected reserve -> cancel
//!   the order; `OrderCancelled` -> release each line.
//! - [`OrderPolicy`]: `PaymentRefused` -> cancel; every line reserved -> request a shipment
//!   (time out after 30 s: cancel the shipment and the order); `ShipmentScheduled` -> ship the
//!   lines, mark the order shipped.
//!
//! Nobody holds the whole flow, and no compensation is sent by the step that failed: the order's
//! cancellation is the one fact that makes stock and payment give back what they hold.

use std::collections::BTreeSet;

use cqrs_core::process::{Action, Context, Input, ProcessManager, Route};
use cqrs_core::{Aggregate, Error, EventFilter, RecordedEvent};
use serde::{Deserialize, Serialize};

use super::commands::{ShopCommand, ShopRejection};
use super::orchestrated::{SHIPPING, SHIPPING_TIMEOUT};
use super::ShopEvent;
use crate::inventory::{Inventory, InventoryCommand, InventoryEvent};
use crate::order::{self, Order, OrderCommand, OrderEvent, OrderLine};
use crate::payment::{Payment, PaymentCommand, PaymentEvent};
use crate::shipping::{Shipment, ShipmentCommand, ShipmentEvent};

/// What every policy knows of its order: learnt from `OrderPlaced`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedOrder {
    /// The order id.
    pub order_id: String,
    /// Who ordered.
    pub customer: String,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
}

impl PlacedOrder {
    /// Learns the order from `input`, if it is the `OrderPlaced` that started the instance.
    fn learn(&mut self, input: &Input<impl ProcessManager<Trigger = ShopEvent>>) {
        if let Input::Event {
            trigger: ShopEvent::Order(OrderEvent::OrderPlaced { customer, lines }),
            source,
        } = input
        {
            self.order_id = source.stream.instance().to_owned();
            self.customer.clone_from(customer);
            self.lines.clone_from(lines);
        }
    }
}

impl PlacedOrder {
    /// Sends `command` to the stock of each line.
    fn to_each_line<P>(&self, command: impl Fn(&OrderLine) -> InventoryCommand) -> Vec<Action<P>>
    where
        P: ProcessManager<Command = ShopCommand>,
    {
        (self.lines.iter())
            .map(|line| Action::send(ShopCommand::stock(&line.sku, command(line))))
            .collect()
    }
}

/// Routes the shop's events by correlation id: `OrderPlaced` starts, `continues` continue.
fn route_by_correlation(
    event: &RecordedEvent,
    continues: fn(&ShopEvent) -> bool,
) -> Result<Route<ShopEvent>, Error> {
    let Some(trigger) = ShopEvent::decode(event)? else {
        return Ok(Route::Ignore);
    };
    if matches!(trigger, ShopEvent::Order(OrderEvent::OrderPlaced { .. })) {
        Route::start_by_correlation(event, trigger)
    } else if continues(&trigger) {
        Route::continue_by_correlation(event, trigger)
    } else {
        Ok(Route::Ignore)
    }
}

/// The event in `input`, if it is one.
fn event<P: ProcessManager<Trigger = ShopEvent>>(input: &Input<P>) -> Option<&ShopEvent> {
    match input {
        Input::Event { trigger, .. } => Some(trigger),
        _ => None,
    }
}

/// The payment service's policy: pay for placed orders, refund cancelled ones, capture shipped
/// ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPolicy {
    /// The order.
    pub order: PlacedOrder,
}

impl ProcessManager for PaymentPolicy {
    const TYPE: &'static str = "payment_policy";
    type Trigger = ShopEvent;
    type Command = ShopCommand;
    type Rejection = ShopRejection;
    type Timeout = ();

    fn subscriptions() -> EventFilter {
        EventFilter::all().category(Order::TYPE).event_types([
            "OrderPlaced",
            "OrderCancelled",
            "OrderShipped",
        ])
    }

    fn route(event: &RecordedEvent) -> Result<Route<ShopEvent>, Error> {
        route_by_correlation(event, |e| matches!(e, ShopEvent::Order(_)))
    }

    fn apply(&mut self, input: &Input<Self>) {
        self.order.learn(input);
    }

    fn decide(&self, input: &Input<Self>, _: &Context<'_>) -> Vec<Action<Self>> {
        let order_id = self.order.order_id.as_str();
        let pay = |command| vec![Action::send(ShopCommand::payment(order_id, command))];
        match event(input) {
            Some(ShopEvent::Order(OrderEvent::OrderPlaced { .. })) => {
                pay(PaymentCommand::Authorize {
                    order_id: order_id.to_owned(),
                    customer: self.order.customer.clone(),
                    amount: order::total(&self.order.lines),
                })
            }
            Some(ShopEvent::Order(OrderEvent::OrderCancelled { .. })) => {
                let mut actions = pay(PaymentCommand::Refund);
                actions.push(Action::Complete);
                actions
            }
            Some(ShopEvent::Order(OrderEvent::OrderShipped)) => {
                let mut actions = pay(PaymentCommand::Capture);
                actions.push(Action::Complete);
                actions
            }
            _ => Vec::new(),
        }
    }
}

/// The warehouse's policy: reserve the lines of paid orders (cancelling the order when one is
/// short), release the lines of cancelled ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockPolicy {
    /// The order.
    pub order: PlacedOrder,
    /// Reserves refused so far.
    pub short: Vec<String>,
}

impl ProcessManager for StockPolicy {
    const TYPE: &'static str = "stock_policy";
    type Trigger = ShopEvent;
    type Command = ShopCommand;
    type Rejection = ShopRejection;
    type Timeout = ();

    fn subscriptions() -> EventFilter {
        EventFilter::all()
            .category(Order::TYPE)
            .category(Payment::TYPE)
            .event_types([
                "OrderPlaced",
                "OrderCancelled",
                "OrderShipped",
                "PaymentAuthorized",
            ])
    }

    fn route(event: &RecordedEvent) -> Result<Route<ShopEvent>, Error> {
        route_by_correlation(event, |e| {
            matches!(
                e,
                ShopEvent::Order(_) | ShopEvent::Payment(PaymentEvent::PaymentAuthorized { .. })
            )
        })
    }

    fn apply(&mut self, input: &Input<Self>) {
        self.order.learn(input);
        if let Input::Rejected {
            command: ShopCommand::Stock { sku, .. },
            error,
            ..
        } = input
        {
            self.short.push(match error {
                ShopRejection::Stock(short) => format!("{sku} ({short})"),
                other => format!("{sku} ({other})"),
            });
        }
    }

    fn decide(&self, input: &Input<Self>, _: &Context<'_>) -> Vec<Action<Self>> {
        let order_id = self.order.order_id.as_str();
        match input {
            Input::Event { trigger, .. } => match trigger {
                ShopEvent::Payment(PaymentEvent::PaymentAuthorized { .. }) => {
                    self.order.to_each_line(|line| InventoryCommand::Reserve {
                        order_id: order_id.to_owned(),
                        quantity: line.quantity,
                    })
                }
                ShopEvent::Order(OrderEvent::OrderCancelled { .. }) => {
                    let mut actions = self.order.to_each_line(|_| InventoryCommand::Release {
                        order_id: order_id.to_owned(),
                    });
                    actions.push(Action::Complete);
                    actions
                }
                ShopEvent::Order(OrderEvent::OrderShipped) => vec![Action::Complete],
                _ => Vec::new(),
            },
            // The first shortage cancels the order; its cancellation releases every line.
            Input::Rejected { .. } if self.short.len() == 1 => {
                vec![Action::send(ShopCommand::order(
                    order_id,
                    OrderCommand::Cancel {
                        reason: format!("out of stock: {}", self.short.join(", ")),
                    },
                ))]
            }
            _ => Vec::new(),
        }
    }
}

/// The order service's policy: cancel orders whose payment is refused, ask a carrier once
/// every line is reserved (cancelling if it never answers), ship when it does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPolicy {
    /// The order.
    pub order: PlacedOrder,
    /// The items reserved so far.
    pub reserved: BTreeSet<String>,
}

impl OrderPolicy {
    fn all_reserved(&self) -> bool {
        !self.order.lines.is_empty()
            && (self.order.lines.iter()).all(|line| self.reserved.contains(&line.sku))
    }
}

impl ProcessManager for OrderPolicy {
    const TYPE: &'static str = "order_policy";
    type Trigger = ShopEvent;
    type Command = ShopCommand;
    type Rejection = ShopRejection;
    type Timeout = ();

    fn subscriptions() -> EventFilter {
        EventFilter::all()
            .category(Order::TYPE)
            .category(Payment::TYPE)
            .category(Inventory::TYPE)
            .category(Shipment::TYPE)
            .event_types([
                "OrderPlaced",
                "OrderCancelled",
                "PaymentRefused",
                "StockReserved",
                "ShipmentScheduled",
            ])
    }

    fn route(event: &RecordedEvent) -> Result<Route<ShopEvent>, Error> {
        route_by_correlation(event, |e| {
            matches!(
                e,
                ShopEvent::Order(OrderEvent::OrderCancelled { .. })
                    | ShopEvent::Payment(PaymentEvent::PaymentRefused { .. })
                    | ShopEvent::Stock(InventoryEvent::StockReserved { .. })
                    | ShopEvent::Shipping(ShipmentEvent::ShipmentScheduled { .. })
            )
        })
    }

    fn apply(&mut self, input: &Input<Self>) {
        self.order.learn(input);
        if let Input::Event {
            trigger: ShopEvent::Stock(InventoryEvent::StockReserved { .. }),
            source,
        } = input
        {
            self.reserved.insert(source.stream.instance().to_owned());
        }
    }

    fn decide(&self, input: &Input<Self>, _: &Context<'_>) -> Vec<Action<Self>> {
        let order_id = self.order.order_id.as_str();
        let to_order = |command| Action::send(ShopCommand::order(order_id, command));
        let to_shipping = |command| Action::send(ShopCommand::shipping(order_id, command));
        match input {
            Input::Event { trigger, .. } => match trigger {
                ShopEvent::Payment(PaymentEvent::PaymentRefused { reason, .. }) => vec![
                    to_order(OrderCommand::Cancel {
                        reason: format!("payment refused: {reason}"),
                    }),
                    Action::Complete,
                ],
                ShopEvent::Stock(InventoryEvent::StockReserved { .. }) if self.all_reserved() => {
                    vec![
                        to_shipping(ShipmentCommand::Request {
                            order_id: order_id.to_owned(),
                        }),
                        Action::after(SHIPPING, SHIPPING_TIMEOUT, ()),
                    ]
                }
                ShopEvent::Shipping(ShipmentEvent::ShipmentScheduled { .. }) => {
                    let mut actions = vec![Action::cancel(SHIPPING)];
                    actions.extend(self.order.to_each_line(|_| InventoryCommand::Ship {
                        order_id: order_id.to_owned(),
                    }));
                    actions.extend([to_order(OrderCommand::MarkShipped), Action::Complete]);
                    actions
                }
                ShopEvent::Order(OrderEvent::OrderCancelled { .. }) => vec![Action::Complete],
                _ => Vec::new(),
            },
            Input::Timeout { key, .. } if key == SHIPPING => {
                let reason = format!(
                    "no carrier answered within {} s",
                    SHIPPING_TIMEOUT.as_secs()
                );
                vec![
                    to_shipping(ShipmentCommand::Cancel {
                        reason: reason.clone(),
                    }),
                    to_order(OrderCommand::Cancel { reason }),
                    Action::Complete,
                ]
            }
            _ => Vec::new(),
        }
    }
}
