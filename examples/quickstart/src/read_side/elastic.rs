//! [`EsOrderSummaries`]: the order summaries as documents in Elasticsearch or OpenSearch.

use cqrs_core::{BoxError, EventFilter, RecordedEvent};
use cqrs_elastic::{Change, ElasticProjection, EsIndex};
use elasticsearch::indices::IndicesDeleteParts;
use serde_json::{json, Value};

use crate::summary::{self, OrderSummary};

/// The order summaries as an [`ElasticProjection`]: one document per order, the same
/// [`fold`](summary::fold) as the in-memory read model, in the read model `name` (an alias over
/// a versioned index).
#[derive(Clone, Debug)]
pub struct EsOrderSummaries {
    name: String,
}

impl EsOrderSummaries {
    /// The summaries in the read model `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl ElasticProjection for EsOrderSummaries {
    type Document = OrderSummary;

    fn name(&self) -> &str {
        &self.name
    }

    fn mappings(&self) -> Value {
        json!({
            "id": { "type": "keyword" },
            "customer": { "type": "keyword" },
            "status": { "type": "keyword" },
            "total": { "type": "long" },
            "items": { "type": "long" },
            "cancel_reason": { "type": "text" },
            "payment": { "type": "keyword" },
            // Kept for the reader, not searched (the framework's `cqrs.position` is the one
            // that makes replays idempotent).
            "position": { "type": "object", "enabled": false },
        })
    }

    fn filter(&self) -> EventFilter {
        summary::filter()
    }

    fn document_id(&self, event: &RecordedEvent) -> Result<Option<String>, BoxError> {
        Ok(summary::order_id(event))
    }

    fn apply(
        &self,
        current: Option<&OrderSummary>,
        event: &RecordedEvent,
    ) -> Result<Change<OrderSummary>, BoxError> {
        Ok(summary::fold(current, event)?.map_or(Change::Unchanged, Change::Upsert))
    }
}

/// Empties the read model `index`: deletes the index its alias points to, then creates version 1
/// and the alias again ([`EsIndex::ensure`], idempotent).
///
/// A read model must never be ahead of its feed: its documents remember feed positions, so
/// documents left over from an earlier run on an emptied store would make the new run's events
/// look old, and be skipped. The quick start starts its store afresh, so it starts this too.
pub(crate) async fn reset(
    index: &EsIndex,
    client: &elasticsearch::Elasticsearch,
) -> Result<(), BoxError> {
    if let Some(current) = index.current().await? {
        let response = client
            .indices()
            .delete(IndicesDeleteParts::Index(&[&current.index]))
            .send()
            .await?;
        // The client answers `Ok` for error statuses too: check (404: someone deleted it first).
        let status = response.status_code();
        if !status.is_success() && status.as_u16() != 404 {
            let body = response.text().await.unwrap_or_default();
            return Err(
                format!("deleting index {} answered {status}: {body}", current.index).into(),
            );
        }
    }
    index.ensure().await?;
    Ok(())
}
