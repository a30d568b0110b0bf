//! [`Saga`]: the process manager that takes a placed order to shipping, or calls it off.
//!
//! It follows the store's global feed and reacts to order and payment events:
//!
//! ```text
//! OrderPlaced       -> reserve each line's stock -> all reserved: authorize the payment
//!                                                -> one short:    cancel the order
//! PaymentAuthorized -> confirm the order
//! PaymentRefused    -> cancel the order
//! OrderConfirmed    -> ship the order
//! OrderCancelled    -> release the order's stock (the compensation)
//! ```
//!
//! Every command it issues carries the event's correlation id, names the event as its cause, and
//! has a command id derived from the event's id: handling an event twice (after a crash, or in a
//! replay) records nothing twice.

use cqrs_core::{
    Aggregate, CommandContext, CommandError, CommandId, EventFilter, EventStore, Metadata,
    Position, RecordedEvent, SnapshotStore, StreamId,
};
use uuid::Uuid;

use crate::inventory::{InventoryCommand, InventoryError};
use crate::order::{self, Order, OrderCommand, OrderError, OrderEvent, OrderLine, OrderStatus};
use crate::payment::{Payment, PaymentCommand, PaymentError, PaymentEvent};
use crate::shop::Shop;

/// Why the saga stopped. It stops at the event it could not handle, and starts again from that
/// event on the next [`Saga::catch_up`].
#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    /// The feed could not be read, or an event not decoded.
    #[error("the saga could not read its feed")]
    Store(#[from] cqrs_core::Error),
    /// An order command failed.
    #[error("the saga's order command failed")]
    Order(#[from] CommandError<OrderError>),
    /// A stock command failed.
    #[error("the saga's stock command failed")]
    Stock(#[from] CommandError<InventoryError>),
    /// A payment command failed.
    #[error("the saga's payment command failed")]
    Payment(#[from] CommandError<PaymentError>),
}

/// The order saga: where it is in the feed. Everything else it needs is in the events and the
/// aggregates, so it can start again from any position.
#[derive(Debug)]
pub struct Saga {
    start: Position,
    position: Position,
}

impl Saga {
    /// A saga that will handle the events after `position`.
    pub fn after(position: Position) -> Self {
        Self {
            start: position,
            position,
        }
    }

    /// Where the saga is in the feed.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Goes back to where the saga started, to handle everything again.
    pub fn rewind(&mut self) {
        self.position = self.start;
    }

    /// Handles every order and payment event after its position, including those its own
    /// commands record, until it reaches the end of the feed. Returns how many it handled.
    ///
    /// A long-running service calls this in a loop (or when told of new events) and saves its
    /// position with a [`CheckpointStore`](cqrs_core::CheckpointStore).
    pub async fn catch_up<S>(&mut self, shop: &Shop<S>) -> Result<usize, SagaError>
    where
        S: EventStore + SnapshotStore + Clone,
    {
        let filter = EventFilter::all()
            .category(Order::TYPE)
            .category(Payment::TYPE);
        let mut handled = 0;
        loop {
            let batch = shop.store().read_all(self.position, 100, &filter).await?;
            if batch.events.is_empty() && batch.next == self.position {
                return Ok(handled);
            }
            for event in &batch.events {
                react(shop, event).await?;
                self.position = event.position;
                handled += 1;
            }
            self.position = batch.next;
        }
    }
}

async fn react<S>(shop: &Shop<S>, event: &RecordedEvent) -> Result<(), SagaError>
where
    S: EventStore + SnapshotStore + Clone,
{
    let category = event.stream_id.category();
    if category == Order::TYPE {
        let order_id = instance_id(&event.stream_id);
        on_order(shop, order_id, event.decode()?, &event.metadata).await
    } else if category == Payment::TYPE {
        on_payment(shop, event.decode()?, &event.metadata).await
    } else {
        Ok(())
    }
}

async fn on_order<S>(
    shop: &Shop<S>,
    order_id: &str,
    event: OrderEvent,
    cause: &Metadata,
) -> Result<(), SagaError>
where
    S: EventStore + SnapshotStore + Clone,
{
    match event {
        OrderEvent::OrderPlaced { customer, lines } => {
            reserve_then_pay(shop, order_id, &customer, &lines, cause).await
        }
        OrderEvent::OrderConfirmed => {
            let context = CommandContext::caused_by(cause);
            let shipped = shop
                .orders
                .execute_with(order_id, &OrderCommand::Ship, context)
                .await;
            match shipped {
                // Cancelled after it was confirmed: nothing to ship.
                Ok(_) | Err(CommandError::Rejected(OrderError::CannotShip(_))) => Ok(()),
                Err(other) => Err(other.into()),
            }
        }
        OrderEvent::OrderCancelled { .. } => release(shop, order_id, cause).await,
        OrderEvent::OrderShipped => Ok(()),
    }
}

async fn on_payment<S>(
    shop: &Shop<S>,
    event: PaymentEvent,
    cause: &Metadata,
) -> Result<(), SagaError>
where
    S: EventStore + SnapshotStore + Clone,
{
    let context = CommandContext::caused_by(cause);
    match event {
        PaymentEvent::PaymentAuthorized { order_id, .. } => {
            let confirmed = shop
                .orders
                .execute_with(&order_id, &OrderCommand::Confirm, context)
                .await;
            match confirmed {
                // Cancelled while the payment was being authorized: a real shop would void the
                // payment here.
                Ok(_) | Err(CommandError::Rejected(OrderError::CannotConfirm(_))) => Ok(()),
                Err(other) => Err(other.into()),
            }
        }
        PaymentEvent::PaymentRefused {
            order_id, reason, ..
        } => {
            let cancel = OrderCommand::Cancel {
                reason: format!("payment refused: {reason}"),
            };
            shop.orders
                .execute_with(&order_id, &cancel, context)
                .await?;
            Ok(())
        }
        PaymentEvent::PaymentCaptured { .. } | PaymentEvent::PaymentRefunded { .. } => Ok(()),
    }
}

/// Reserves every line; then asks for the payment, or cancels the order if an item is short.
async fn reserve_then_pay<S>(
    shop: &Shop<S>,
    order_id: &str,
    customer: &str,
    lines: &[OrderLine],
    cause: &Metadata,
) -> Result<(), SagaError>
where
    S: EventStore + SnapshotStore + Clone,
{
    let (current, _) = shop.orders.load(order_id).await?;
    if current.status != OrderStatus::Placed {
        return Ok(()); // The flow has moved on: this is a replay, or the customer cancelled.
    }
    for line in lines {
        let reserve = InventoryCommand::Reserve {
            order_id: order_id.to_owned(),
            quantity: line.quantity,
        };
        let context = step(cause, &format!("reserve {}", line.sku));
        match shop.stock.execute_with(&line.sku, &reserve, context).await {
            Ok(_) => {}
            Err(CommandError::Rejected(short @ InventoryError::InsufficientStock { .. })) => {
                // What was reserved already is released when the cancellation comes by.
                let cancel = OrderCommand::Cancel {
                    reason: format!("out of stock: {} ({short})", line.sku),
                };
                let context = step(cause, "cancel");
                shop.orders.execute_with(order_id, &cancel, context).await?;
                return Ok(());
            }
            Err(other) => return Err(other.into()),
        }
    }
    let authorize = PaymentCommand::Authorize {
        order_id: order_id.to_owned(),
        customer: customer.to_owned(),
        amount: order::total(lines),
    };
    let context = step(cause, "authorize");
    shop.payments
        .execute_with(order_id, &authorize, context)
        .await?;
    Ok(())
}

/// Releases every line of a cancelled order (lines never reserved release nothing).
async fn release<S>(shop: &Shop<S>, order_id: &str, cause: &Metadata) -> Result<(), SagaError>
where
    S: EventStore + SnapshotStore + Clone,
{
    let (order, _) = shop.orders.load(order_id).await?;
    for line in &order.lines {
        let release = InventoryCommand::Release {
            order_id: order_id.to_owned(),
        };
        let context = step(cause, &format!("release {}", line.sku));
        shop.stock
            .execute_with(&line.sku, &release, context)
            .await?;
    }
    Ok(())
}

/// The context of one of several commands that one event causes. [`CommandContext::caused_by`]
/// derives the command id from the event id alone, so each step gets its own, derived from the
/// event id and the step's name (a name-based UUID: the same on every run).
fn step(cause: &Metadata, name: &str) -> CommandContext {
    let id = Uuid::new_v5(&cause.event_id.as_uuid(), name.as_bytes());
    CommandContext::caused_by(cause).command_id(CommandId::from_uuid(id))
}

/// The aggregate id in a stream id: `"7"` in `"order-7"`.
pub(crate) fn instance_id(stream_id: &StreamId) -> &str {
    let id = stream_id.as_str();
    id.split_once('-').map_or(id, |(_, instance)| instance)
}
