//! The read model under test: one [`OrderSummary`] document per order, kept by the
//! [`OrderSummaries`] projection in an index with a strict mapping.

use std::collections::BTreeMap;

use cqrs_core::{Aggregate, BoxError, EventFilter, RecordedEvent};
use cqrs_elastic::{Change, ElasticProjection};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::domain::{Order, OrderEvent};

/// An order as the read model shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    /// The customer id.
    pub customer: String,
    /// `open`, `shipped` or `cancelled`.
    pub status: String,
    /// How many items, all lines together.
    pub items: u64,
    /// The total, in cents.
    pub total_cents: u64,
    /// The distinct items ordered, in order of first appearance.
    pub skus: Vec<String>,
    /// Why it was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// The gift note. Deliberately **not** in the mapping: a summary with a gift note is a
    /// document the strict mapping refuses, i.e. a poison event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_note: Option<String>,
}

/// Order summaries, one document per order (id: the order id), deleted when archived.
#[derive(Clone, Debug)]
pub struct OrderSummaries {
    /// The read model's name (alias), unique per test.
    pub name: String,
}

impl OrderSummaries {
    /// The projection of read model `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl ElasticProjection for OrderSummaries {
    type Document = OrderSummary;

    fn name(&self) -> &str {
        &self.name
    }

    fn mappings(&self) -> Value {
        json!({
            "customer": { "type": "keyword" },
            "status": { "type": "keyword" },
            "items": { "type": "long" },
            "total_cents": { "type": "long" },
            "skus": { "type": "keyword" },
            "cancel_reason": { "type": "text" }
        })
    }

    fn filter(&self) -> EventFilter {
        EventFilter::all().category(Order::TYPE)
    }

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(Some(event.stream_id.instance().to_owned()))
    }

    fn apply(
        &self,
        current: Option<&OrderSummary>,
        event: &RecordedEvent,
    ) -> Result<Change<OrderSummary>, BoxError> {
        summarize(current, event)
    }
}

/// The fold behind [`OrderSummaries`]: what one order event does to its summary. Shared with
/// [`expected_summaries`], which the tests compare the read model with.
pub fn summarize(
    current: Option<&OrderSummary>,
    event: &RecordedEvent,
) -> Result<Change<OrderSummary>, BoxError> {
    let order = event.stream_id.instance();
    let event: OrderEvent = event.decode()?;
    let existing = || {
        current
            .cloned()
            .ok_or_else(|| format!("order {order} has no summary to change"))
    };
    Ok(match event {
        OrderEvent::OrderPlaced { customer } => Change::Upsert(OrderSummary {
            customer,
            status: "open".to_owned(),
            items: 0,
            total_cents: 0,
            skus: Vec::new(),
            cancel_reason: None,
            gift_note: None,
        }),
        OrderEvent::ItemAdded {
            sku,
            quantity,
            unit_cents,
        } => {
            let mut summary = existing()?;
            summary.items += u64::from(quantity);
            summary.total_cents += u64::from(quantity) * unit_cents;
            if !summary.skus.contains(&sku) {
                summary.skus.push(sku);
            }
            Change::Upsert(summary)
        }
        OrderEvent::GiftNoteAdded { note } => Change::Upsert(OrderSummary {
            gift_note: Some(note),
            ..existing()?
        }),
        OrderEvent::OrderShipped => Change::Upsert(OrderSummary {
            status: "shipped".to_owned(),
            ..existing()?
        }),
        OrderEvent::OrderCancelled { reason } => Change::Upsert(OrderSummary {
            status: "cancelled".to_owned(),
            cancel_reason: Some(reason),
            ..existing()?
        }),
        OrderEvent::OrderArchived => Change::Delete,
    })
}

/// The summaries a fold from scratch of `events` (the whole feed, any categories) gives, by
/// order id: `Some(summary)`, or `None` for an archived (deleted) order. Panics on an event the
/// fold refuses: the tests that use it append only valid events.
pub fn expected_summaries(events: &[RecordedEvent]) -> BTreeMap<String, Option<OrderSummary>> {
    let mut summaries: BTreeMap<String, Option<OrderSummary>> = BTreeMap::new();
    for event in events
        .iter()
        .filter(|e| e.stream_id.category() == Order::TYPE)
    {
        let id = event.stream_id.instance().to_owned();
        let current = summaries.get(&id).cloned().flatten();
        match summarize(current.as_ref(), event) {
            Ok(Change::Upsert(summary)) => {
                summaries.insert(id, Some(summary));
            }
            Ok(Change::Delete) => {
                summaries.insert(id, None);
            }
            Ok(Change::Unchanged) => {}
            Err(error) => panic!(
                "the fold refuses {}@{} ({}): {error}",
                event.stream_id, event.version, event.event_type
            ),
        }
    }
    summaries
}
