//! [`Order`]: placed with lines, then confirmed and shipped, or cancelled.

use std::fmt;

use cqrs_core::{Aggregate, DomainEvent, StreamId};
use serde::{Deserialize, Serialize};

use crate::inventory::Inventory;

/// One line of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The item ordered (an [`Inventory`] id).
    pub sku: String,
    /// How many.
    pub quantity: u64,
    /// The price of one, in cents.
    pub unit_price: u64,
}

impl OrderLine {
    /// A line of `quantity` times `sku` at `unit_price` cents each.
    pub fn new(sku: &str, quantity: u64, unit_price: u64) -> Self {
        Self {
            sku: sku.to_owned(),
            quantity,
            unit_price,
        }
    }
}

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Not placed yet: the stream has no events.
    #[default]
    New,
    /// Placed; stock and payment are being arranged.
    Placed,
    /// Stock reserved and payment authorized.
    Confirmed,
    /// On its way.
    Shipped,
    /// Called off, with a reason.
    Cancelled,
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OrderStatus::New => "new",
            OrderStatus::Placed => "placed",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Cancelled => "cancelled",
        })
    }
}

/// A customer's order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Where the order is.
    pub status: OrderStatus,
    /// Who placed it.
    pub customer: String,
    /// What was ordered.
    pub lines: Vec<OrderLine>,
    /// Why it was cancelled, if it was.
    pub cancel_reason: Option<String>,
}

impl Order {
    /// The order's total, in cents.
    pub fn total(&self) -> u64 {
        total(&self.lines)
    }
}

/// The most an order's total (in cents) or item count may be: what a signed 64-bit number
/// holds, as read models (a search node's `long`, PostgreSQL's `bigint`) store them.
pub const MAX_AMOUNT: u64 = i64::MAX as u64;

/// The longest customer's name an order takes, in bytes.
pub const MAX_CUSTOMER_LEN: usize = 256;

/// The total of `lines`, in cents.
pub fn total(lines: &[OrderLine]) -> u64 {
    checked_total(lines).unwrap_or(MAX_AMOUNT)
}

/// The items of `lines`.
pub fn items(lines: &[OrderLine]) -> u64 {
    checked_items(lines).unwrap_or(MAX_AMOUNT)
}

/// The total of `lines`, `None` past [`MAX_AMOUNT`]: `place` refuses such an order, and the
/// figures of one placed before it did are capped there.
fn checked_total(lines: &[OrderLine]) -> Option<u64> {
    line_sum(lines, |l| l.quantity.checked_mul(l.unit_price))
}

/// The items of `lines`, `None` past [`MAX_AMOUNT`].
fn checked_items(lines: &[OrderLine]) -> Option<u64> {
    line_sum(lines, |l| Some(l.quantity))
}

/// The sum of `amount` over `lines`, `None` when an amount or the sum passes [`MAX_AMOUNT`].
fn line_sum(lines: &[OrderLine], amount: fn(&OrderLine) -> Option<u64>) -> Option<u64> {
    lines
        .iter()
        .try_fold(0_u64, |sum, line| sum.checked_add(amount(line)?))
        .filter(|&sum| sum <= MAX_AMOUNT)
}

/// What can be asked of an order. Commands are serde: a process manager records the ones it
/// sends in its journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderCommand {
    /// Place a new order.
    Place {
        /// Who orders.
        customer: String,
        /// What they order.
        lines: Vec<OrderLine>,
    },
    /// Confirm it: stock and payment are arranged.
    Confirm,
    /// Ship it.
    Ship,
    /// Record that its shipment is scheduled, from placed or confirmed (the saga's last step:
    /// payment and stock are settled by then). Marking a shipped order again changes nothing.
    MarkShipped,
    /// Call it off.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// What happens to an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, DomainEvent)]
pub enum OrderEvent {
    /// The order was placed.
    OrderPlaced {
        /// Who ordered.
        customer: String,
        /// What they ordered.
        lines: Vec<OrderLine>,
    },
    /// Stock and payment are arranged.
    OrderConfirmed,
    /// The order left the warehouse.
    OrderShipped,
    /// The order was called off.
    OrderCancelled {
        /// Why.
        reason: String,
    },
}

/// Why an order refuses a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum OrderError {
    /// `Place` on an order that exists.
    #[error("the order was placed already")]
    AlreadyPlaced,
    /// `Place` with no lines.
    #[error("an order needs at least one line")]
    NoLines,
    /// `Place` with a line of quantity 0.
    #[error("line {sku} has quantity 0")]
    ZeroQuantity {
        /// The line's item.
        sku: String,
    },
    /// `Place` with a line whose item could not be an inventory item's id (empty, too long,
    /// with a control character): the saga could never reserve it.
    #[error("line {sku:?} names no item: {reason}")]
    InvalidSku {
        /// The line's item.
        sku: String,
        /// Why it is no item's id.
        reason: String,
    },
    /// `Place` whose total (in cents) or item count passes [`MAX_AMOUNT`].
    #[error("the order's total or item count passes {max}")]
    TooLarge {
        /// The most either may be.
        max: u64,
    },
    /// `Place` with a customer's name longer than [`MAX_CUSTOMER_LEN`] bytes.
    #[error("the customer's name is {len} bytes long, more than {max}")]
    CustomerTooLong {
        /// Its length in bytes.
        len: usize,
        /// The most it may be.
        max: usize,
    },
    /// `Confirm` on an order that is not placed.
    #[error("only a placed order can be confirmed; this one is {0}")]
    CannotConfirm(OrderStatus),
    /// `Ship` on an order that is not confirmed.
    #[error("only a confirmed order can ship; this one is {0}")]
    CannotShip(OrderStatus),
    /// `Cancel` on an order that does not exist or has shipped.
    #[error("a {0} order cannot be cancelled")]
    CannotCancel(OrderStatus),
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    fn apply(&mut self, event: &OrderEvent) {
        match event {
            OrderEvent::OrderPlaced { customer, lines } => {
                self.status = OrderStatus::Placed;
                self.customer.clone_from(customer);
                self.lines.clone_from(lines);
            }
            OrderEvent::OrderConfirmed => self.status = OrderStatus::Confirmed,
            OrderEvent::OrderShipped => self.status = OrderStatus::Shipped,
            OrderEvent::OrderCancelled { reason } => {
                self.status = OrderStatus::Cancelled;
                self.cancel_reason = Some(reason.clone());
            }
        }
    }

    async fn handle(&self, command: &OrderCommand, _: &()) -> Result<Vec<OrderEvent>, OrderError> {
        use OrderStatus::{Cancelled, Confirmed, New, Placed, Shipped};
        match (command, self.status) {
            (OrderCommand::Place { customer, lines }, New) => place(customer, lines),
            (OrderCommand::Place { .. }, _) => Err(OrderError::AlreadyPlaced),
            (OrderCommand::Confirm, Placed) => Ok(vec![OrderEvent::OrderConfirmed]),
            (OrderCommand::Confirm, status) => Err(OrderError::CannotConfirm(status)),
            (OrderCommand::Ship, Confirmed) => Ok(vec![OrderEvent::OrderShipped]),
            (OrderCommand::Ship, status) => Err(OrderError::CannotShip(status)),
            (OrderCommand::MarkShipped, Placed | Confirmed) => Ok(vec![OrderEvent::OrderShipped]),
            (OrderCommand::MarkShipped, Shipped) => Ok(Vec::new()),
            (OrderCommand::MarkShipped, status) => Err(OrderError::CannotShip(status)),
            // Cancelling twice is harmless: compensations may arrive more than once.
            (OrderCommand::Cancel { .. }, Cancelled) => Ok(Vec::new()),
            (OrderCommand::Cancel { reason }, Placed | Confirmed) => {
                Ok(vec![OrderEvent::OrderCancelled {
                    reason: reason.clone(),
                }])
            }
            (OrderCommand::Cancel { .. }, status @ (New | Shipped)) => {
                Err(OrderError::CannotCancel(status))
            }
        }
    }
}

fn place(customer: &str, lines: &[OrderLine]) -> Result<Vec<OrderEvent>, OrderError> {
    if lines.is_empty() {
        return Err(OrderError::NoLines);
    }
    if let Some(line) = lines.iter().find(|l| l.quantity == 0) {
        return Err(OrderError::ZeroQuantity {
            sku: line.sku.clone(),
        });
    }
    for line in lines {
        if let Err(error) = StreamId::with_category(Inventory::TYPE, &line.sku) {
            return Err(OrderError::InvalidSku {
                sku: line.sku.clone(),
                reason: error.to_string(),
            });
        }
    }
    if checked_total(lines).is_none() || checked_items(lines).is_none() {
        return Err(OrderError::TooLarge { max: MAX_AMOUNT });
    }
    if customer.len() > MAX_CUSTOMER_LEN {
        return Err(OrderError::CustomerTooLong {
            len: customer.len(),
            max: MAX_CUSTOMER_LEN,
        });
    }
    Ok(vec![OrderEvent::OrderPlaced {
        customer: customer.to_owned(),
        lines: lines.to_vec(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_core::AggregateFixture;

    fn placed() -> OrderEvent {
        OrderEvent::OrderPlaced {
            customer: "alice".into(),
            lines: vec![OrderLine::new("widget", 2, 1250)],
        }
    }

    fn fixture() -> AggregateFixture<Order> {
        AggregateFixture::new(())
    }

    #[tokio::test]
    async fn a_new_order_is_placed_with_its_lines() {
        let lines = vec![
            OrderLine::new("widget", 2, 1250),
            OrderLine::new("gadget", 1, 999),
        ];
        let order = fixture()
            .when(&OrderCommand::Place {
                customer: "alice".into(),
                lines: lines.clone(),
            })
            .await
            .then_expect_events([OrderEvent::OrderPlaced {
                customer: "alice".into(),
                lines,
            }]);
        assert_eq!((order.status, order.total()), (OrderStatus::Placed, 3499));
    }

    #[tokio::test]
    async fn an_order_needs_lines_with_a_quantity() {
        let place = |lines| OrderCommand::Place {
            customer: "alice".into(),
            lines,
        };
        fixture()
            .when(&place(Vec::new()))
            .await
            .then_expect_error(OrderError::NoLines);
        fixture()
            .when(&place(vec![OrderLine::new("widget", 0, 1250)]))
            .await
            .then_expect_error(OrderError::ZeroQuantity {
                sku: "widget".into(),
            });
    }

    #[tokio::test]
    async fn an_order_refuses_items_no_inventory_has_and_amounts_no_read_model_holds() {
        let place = |customer: &str, lines| OrderCommand::Place {
            customer: customer.into(),
            lines,
        };
        for sku in ["", "a\u{7}b", &"s".repeat(200)] {
            let refused = fixture()
                .when(&place("alice", vec![OrderLine::new(sku, 1, 1)]))
                .await
                .then_expect_failure();
            assert!(
                matches!(&refused, OrderError::InvalidSku { sku: s, .. } if s == sku),
                "{refused:?}"
            );
        }
        let too_large = OrderError::TooLarge { max: MAX_AMOUNT };
        for lines in [
            vec![
                OrderLine::new("widget", u64::MAX, 1),
                OrderLine::new("w", 1, 1),
            ],
            vec![OrderLine::new("widget", 2, 1 << 62)],
            vec![OrderLine::new("widget", 1, 1 << 63)],
        ] {
            fixture()
                .when(&place("alice", lines))
                .await
                .then_expect_error(too_large.clone());
        }
        let at_most = vec![OrderLine::new("widget", 1, MAX_AMOUNT)];
        fixture()
            .when(&place("alice", at_most))
            .await
            .then_expect_events([OrderEvent::OrderPlaced {
                customer: "alice".into(),
                lines: vec![OrderLine::new("widget", 1, MAX_AMOUNT)],
            }]);
        fixture()
            .when(&place(
                &"c".repeat(257),
                vec![OrderLine::new("widget", 1, 1)],
            ))
            .await
            .then_expect_error(OrderError::CustomerTooLong { len: 257, max: 256 });
    }

    #[tokio::test]
    async fn an_order_is_placed_once() {
        fixture()
            .given([placed()])
            .when(&OrderCommand::Place {
                customer: "bob".into(),
                lines: vec![OrderLine::new("gadget", 1, 999)],
            })
            .await
            .then_expect_error(OrderError::AlreadyPlaced);
    }

    #[tokio::test]
    async fn a_placed_order_is_confirmed_then_shipped() {
        fixture()
            .given([placed()])
            .when(&OrderCommand::Confirm)
            .await
            .then_expect_events([OrderEvent::OrderConfirmed]);
        let order = fixture()
            .given([placed(), OrderEvent::OrderConfirmed])
            .when(&OrderCommand::Ship)
            .await
            .then_expect_events([OrderEvent::OrderShipped]);
        assert_eq!(order.status, OrderStatus::Shipped);
    }

    #[tokio::test]
    async fn only_a_confirmed_order_ships() {
        fixture()
            .given([placed()])
            .when(&OrderCommand::Ship)
            .await
            .then_expect_error(OrderError::CannotShip(OrderStatus::Placed));
        fixture()
            .when(&OrderCommand::Confirm)
            .await
            .then_expect_error(OrderError::CannotConfirm(OrderStatus::New));
    }

    #[tokio::test]
    async fn cancelling_records_the_reason_once() {
        let cancelled = OrderEvent::OrderCancelled {
            reason: "payment refused".into(),
        };
        let cancel = OrderCommand::Cancel {
            reason: "payment refused".into(),
        };
        let order = fixture()
            .given([placed()])
            .when(&cancel)
            .await
            .then_expect_events([cancelled.clone()]);
        assert_eq!(order.cancel_reason.as_deref(), Some("payment refused"));
        fixture()
            .given([placed(), cancelled.clone()])
            .when(&cancel)
            .await
            .then_expect_events([]);
        fixture()
            .given([placed(), cancelled])
            .when(&OrderCommand::Confirm)
            .await
            .then_expect_error(OrderError::CannotConfirm(OrderStatus::Cancelled));
    }

    #[tokio::test]
    async fn a_shipped_order_cannot_be_cancelled() {
        fixture()
            .given([
                placed(),
                OrderEvent::OrderConfirmed,
                OrderEvent::OrderShipped,
            ])
            .when(&OrderCommand::Cancel {
                reason: "changed my mind".into(),
            })
            .await
            .then_expect_error(OrderError::CannotCancel(OrderStatus::Shipped));
    }

    #[tokio::test]
    async fn a_placed_order_is_marked_shipped_once_and_a_cancelled_one_never() {
        let order = fixture()
            .given([placed()])
            .when(&OrderCommand::MarkShipped)
            .await
            .then_expect_events([OrderEvent::OrderShipped]);
        assert_eq!(order.status, OrderStatus::Shipped);
        fixture()
            .given([placed(), OrderEvent::OrderShipped])
            .when(&OrderCommand::MarkShipped)
            .await
            .then_expect_events([]);
        fixture()
            .given([
                placed(),
                OrderEvent::OrderCancelled {
                    reason: "out of stock".into(),
                },
            ])
            .when(&OrderCommand::MarkShipped)
            .await
            .then_expect_error(OrderError::CannotShip(OrderStatus::Cancelled));
    }
}
