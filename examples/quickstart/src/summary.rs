//! [`OrderSummary`]: the read side's view of an order, and [`fold`], the one function that
//! builds it from events. Both read models use it: the in-memory one and the search node's.

use cqrs_core::{Aggregate, BoxError, EventFilter, Position, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::order::{self, Order, OrderEvent, OrderStatus};
use crate::payment::{Payment, PaymentEvent, PaymentStatus};

/// One order as the read side shows it: fed by the order's stream (`order-7`) and its payment's
/// (`payment-7`), so it answers questions that neither aggregate answers alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    /// The order id (`7` for `order-7`), which is also the document id.
    pub id: String,
    /// Who placed it.
    pub customer: String,
    /// Where it is.
    pub status: OrderStatus,
    /// Its total, in cents.
    pub total: u64,
    /// Units ordered, all lines together.
    pub items: u64,
    /// Why it was cancelled, if it was.
    pub cancel_reason: Option<String>,
    /// What the card issuer said, once it did.
    pub payment: Option<PaymentStatus>,
    /// The feed position of the last event folded in: a read model that has it skips older
    /// events, so delivering the feed again changes nothing.
    pub position: Position,
}

/// The events summaries are made of: those of orders and payments.
pub fn filter() -> EventFilter {
    EventFilter::all()
        .category(Order::TYPE)
        .category(Payment::TYPE)
}

/// The summary `event` changes: the order id in `order-7` or `payment-7`, `None` for other
/// streams.
pub fn order_id(event: &RecordedEvent) -> Option<String> {
    let category = event.stream_id.category();
    (category == Order::TYPE || category == Payment::TYPE)
        .then(|| event.stream_id.instance().to_owned())
}

/// What `event` makes of the summary `current`: the new summary, or `None` when nothing changes.
/// An `Err` means the event can never be applied (it does not decode, or it is about an order
/// that was never placed).
///
/// Plain and deterministic, so a replay folds to the same summaries: everything comes from the
/// event, nothing from the clock.
pub fn fold(
    current: Option<&OrderSummary>,
    event: &RecordedEvent,
) -> Result<Option<OrderSummary>, BoxError> {
    use OrderEvent::{OrderCancelled, OrderConfirmed, OrderPlaced, OrderShipped};
    use PaymentEvent::{PaymentAuthorized, PaymentCaptured, PaymentRefunded, PaymentRefused};
    let Some(id) = order_id(event) else {
        return Ok(None);
    };
    let fact = if event.stream_id.category() == Order::TYPE {
        Fact::Order(event.decode()?)
    } else {
        Fact::Payment(event.decode()?)
    };
    let next = match (fact, current) {
        (Fact::Order(OrderPlaced { customer, lines }), _) => OrderSummary {
            id,
            customer,
            status: OrderStatus::Placed,
            total: order::total(&lines),
            items: order::items(&lines),
            cancel_reason: None,
            payment: None,
            position: event.position,
        },
        // Everything else comes after OrderPlaced in the feed (the saga asks for a payment only
        // once the order is placed): a summary missing here is a broken stream.
        (_, None) => {
            let kind = &event.event_type;
            return Err(format!("{kind} for order {id}, which was never placed").into());
        }
        (Fact::Order(OrderConfirmed), Some(s)) => OrderSummary {
            status: OrderStatus::Confirmed,
            ..s.clone()
        },
        (Fact::Order(OrderShipped), Some(s)) => OrderSummary {
            status: OrderStatus::Shipped,
            ..s.clone()
        },
        (Fact::Order(OrderCancelled { reason }), Some(s)) => OrderSummary {
            status: OrderStatus::Cancelled,
            cancel_reason: Some(reason),
            ..s.clone()
        },
        (Fact::Payment(PaymentAuthorized { .. }), Some(s)) => OrderSummary {
            payment: Some(PaymentStatus::Authorized),
            ..s.clone()
        },
        (Fact::Payment(PaymentRefused { .. }), Some(s)) => OrderSummary {
            payment: Some(PaymentStatus::Refused),
            ..s.clone()
        },
        (Fact::Payment(PaymentCaptured { .. }), Some(s)) => OrderSummary {
            payment: Some(PaymentStatus::Captured),
            ..s.clone()
        },
        (Fact::Payment(PaymentRefunded { .. }), Some(s)) => OrderSummary {
            payment: Some(PaymentStatus::Refunded),
            ..s.clone()
        },
    };
    Ok(Some(OrderSummary {
        position: event.position,
        ..next
    }))
}

/// An event a summary is made of, decoded.
enum Fact {
    Order(OrderEvent),
    Payment(PaymentEvent),
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_core::{DomainEvent, Metadata, NewEvent, StreamId, Version};
    use time::OffsetDateTime;

    use crate::order::OrderLine;

    fn recorded(stream: &str, at: u64, event: &impl DomainEvent) -> RecordedEvent {
        let new = NewEvent::from_domain(event, Metadata::default()).expect("encodes");
        let stream = StreamId::new(stream).expect("stream id");
        let position = Position::from_parts(0, at);
        RecordedEvent::new(
            stream,
            Version::new(at),
            position,
            new,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn fold_all(events: &[RecordedEvent]) -> Option<OrderSummary> {
        events.iter().fold(None, |current, event| {
            fold(current.as_ref(), event).expect("folds").or(current)
        })
    }

    #[test]
    fn an_order_placed_with_amounts_past_any_number_folds_without_a_panic() {
        let placed = OrderEvent::OrderPlaced {
            customer: "dan".into(),
            lines: vec![
                OrderLine::new("widget", u64::MAX, 2),
                OrderLine::new("gadget", 1, 1),
            ],
        };
        let summary = fold_all(&[recorded("order-4", 1, &placed)]).expect("a summary");
        let most = crate::order::MAX_AMOUNT;
        assert_eq!(
            (summary.items, summary.total),
            (most, most),
            "what the node can store"
        );
    }

    #[test]
    fn a_summary_follows_its_order_and_its_payment() {
        let placed = OrderEvent::OrderPlaced {
            customer: "carol".into(),
            lines: vec![OrderLine::new("widget", 6, 12_50)],
        };
        let refused = PaymentEvent::PaymentRefused {
            order_id: "3".into(),
            amount: 75_00,
            reason: "over the limit".into(),
        };
        let cancelled = OrderEvent::OrderCancelled {
            reason: "payment refused".into(),
        };
        let summary = fold_all(&[
            recorded("order-3", 1, &placed),
            recorded("payment-3", 2, &refused),
            recorded("order-3", 3, &cancelled),
        ]);
        assert_eq!(
            summary,
            Some(OrderSummary {
                id: "3".into(),
                customer: "carol".into(),
                status: OrderStatus::Cancelled,
                total: 75_00,
                items: 6,
                cancel_reason: Some("payment refused".into()),
                payment: Some(PaymentStatus::Refused),
                position: Position::from_parts(0, 3),
            })
        );
    }

    #[test]
    fn events_of_an_order_never_placed_cannot_be_folded() {
        let shipped = recorded("order-9", 2, &OrderEvent::OrderShipped);
        let error = fold(None, &shipped).expect_err("no summary to ship");
        assert_eq!(
            error.to_string(),
            "OrderShipped for order 9, which was never placed"
        );
        let other = recorded("inventory-widget", 1, &OrderEvent::OrderShipped);
        assert_eq!(order_id(&other), None);
        assert_eq!(fold(None, &other).expect("ignored"), None);
    }
}
