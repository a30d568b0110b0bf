//! The read side (the query side of CQRS): the order summaries, kept up to date from the feed by
//! a [`ProjectionRunner`], and the questions they answer. In memory ([`OrderSummaries`]) or in
//! Elasticsearch / OpenSearch ([`EsOrderSummaries`]); the same [`fold`](crate::summary::fold)
//! builds both.

mod elastic;
mod memory;

use cqrs_core::projection::{
    FeedSignal, ProjectionHandle, ProjectionRunner, ProjectionStatus, ProjectionStore,
};
use cqrs_core::{BoxError, ReadAll};
use cqrs_elastic::{EsReadModel, Query, Search, SortOrder};
use elasticsearch::Elasticsearch;

use crate::order::OrderStatus;
use crate::summary::OrderSummary;

#[doc(inline)]
pub use elastic::EsOrderSummaries;
#[doc(inline)]
pub use memory::OrderSummaries;

/// The order summaries' runner, not started yet, and the queries on what it writes.
pub struct ReadSide {
    runner: ProjectionRunner,
    summaries: Summaries,
}

impl ReadSide {
    /// `summaries` in memory, fed by `feed` and woken by `signal` (the store's, so it does not
    /// wait for its next poll). They keep their own checkpoint.
    pub fn in_memory(
        summaries: OrderSummaries,
        feed: impl ReadAll + 'static,
        signal: impl FeedSignal + 'static,
    ) -> Self {
        let runner =
            ProjectionRunner::new(summaries.clone(), feed, summaries.clone()).with_signal(signal);
        Self {
            runner,
            summaries: Summaries::InMemory(summaries),
        }
    }

    /// The summaries in the search node's read model `name`, emptied first, fed by `store`,
    /// which plays every other role of the runner too (checkpoint, lease, dead letters,
    /// wake-ups).
    pub async fn on_node(
        client: Elasticsearch,
        name: &str,
        store: &impl ProjectionStore,
    ) -> Result<Self, BoxError> {
        let summaries = EsReadModel::new(client.clone(), EsOrderSummaries::new(name))?;
        elastic::reset(summaries.index(), &client).await?;
        let runner = ProjectionRunner::for_store(summaries.projector(), store);
        Ok(Self {
            runner,
            summaries: Summaries::Node(summaries),
        })
    }

    /// Starts the runner in its own task. Returns its handle (status, `wait_for`, `shutdown`)
    /// and the queries.
    pub fn start(self) -> (ProjectionHandle, Summaries) {
        (self.runner.spawn(), self.summaries)
    }
}

/// Questions to the order summaries, wherever they are kept.
#[derive(Clone, Debug)]
pub enum Summaries {
    /// In this process.
    InMemory(OrderSummaries),
    /// In the search node: every answer is a query there.
    Node(EsReadModel<EsOrderSummaries>),
}

impl Summaries {
    /// The summary of order `id`.
    pub async fn get(&self, id: &str) -> Result<Option<OrderSummary>, BoxError> {
        match self {
            Summaries::InMemory(summaries) => Ok(summaries.get(id)),
            Summaries::Node(model) => Ok(model.get(id).await?),
        }
    }

    /// How many orders are `status`: a term query and a count on the node.
    pub async fn count_by_status(&self, status: OrderStatus) -> Result<u64, BoxError> {
        match self {
            Summaries::InMemory(summaries) => {
                let found = summaries.find(|s| s.status == status).len();
                Ok(u64::try_from(found)?)
            }
            Summaries::Node(model) => {
                let status = serde_json::to_value(status)?;
                Ok(model.count(&Query::term("status", status)).await?)
            }
        }
    }

    /// The cancelled orders of `customer`, by order id (the first 100).
    pub async fn cancelled_of(&self, customer: &str) -> Result<Vec<OrderSummary>, BoxError> {
        match self {
            Summaries::InMemory(summaries) => Ok(summaries
                .find(|s| s.customer == customer && s.status == OrderStatus::Cancelled)
                .into_iter()
                .take(100)
                .collect()),
            Summaries::Node(model) => {
                let cancelled = serde_json::to_value(OrderStatus::Cancelled)?;
                let query = Query::bool()
                    .filter(Query::term("customer", customer))
                    .filter(Query::term("status", cancelled));
                let search = Search::new(query).sort("id", SortOrder::Asc).size(100);
                let page = model.search(&search).await?;
                Ok(page.hits.into_iter().map(|hit| hit.document).collect())
            }
        }
    }
}

/// A projection's status in one line, as a health check shows it.
pub fn health(status: &ProjectionStatus) -> String {
    let state = format!("{:?}", status.state).to_lowercase();
    let breaker = format!("{:?}", status.breaker).to_lowercase();
    let ready = if status.is_ready() {
        "ready"
    } else {
        "not ready"
    };
    let error = (status.last_error.as_deref()).map(|e| format!(", last error: {e}"));
    format!(
        "{}: {state} at {}, {} events applied, lag {} events / {} ms, breaker {breaker}, {ready}{}",
        status.name,
        status.position,
        status.applied,
        status.lag_events,
        status.lag.as_millis(),
        error.unwrap_or_default()
    )
}
