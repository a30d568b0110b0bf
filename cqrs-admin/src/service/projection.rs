//! [`AdminProjection`]: a projection the admin commands can rebuild and reset, and the two
//! ways to make one ([`CatchUpProjection`], [`RebuildWith`]).

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use cqrs_core::projection::ProjectionRunner;
use cqrs_core::{BoxError, CheckpointStore, Position};
use cqrs_postgres::PgEventStore;
use serde::{Deserialize, Serialize};

use super::ProgressTarget;

/// What a rebuild did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RebuildOutcome {
    /// The projection.
    pub name: String,
    /// The feed position it reached.
    #[serde(with = "crate::inspect::serde_pos")]
    pub position: Position,
    /// Events handled, when the rebuild counts them.
    pub events: Option<u64>,
    /// What it did, for people (`"rebuilt orders_v3 from orders_v2"`).
    pub detail: String,
}

impl RebuildOutcome {
    /// A rebuild of `name` that reached `position`.
    pub fn new(name: impl Into<String>, position: Position) -> Self {
        Self {
            name: name.into(),
            position,
            events: None,
            detail: String::new(),
        }
    }

    /// With the number of events handled.
    #[must_use]
    pub fn events(mut self, events: u64) -> Self {
        self.events = Some(events);
        self
    }

    /// With a description for people.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// A projection a service registers with [`Admin`](super::Admin) for `projections rebuild`
/// and `projections reset`.
#[async_trait]
pub trait AdminProjection: Send + Sync {
    /// Its name (its checkpoint's).
    fn name(&self) -> &str;

    /// Which checkpoint shows a rebuild's progress (for the progress line).
    fn progress(&self) -> ProgressTarget {
        ProgressTarget::Exact(self.name().to_owned())
    }

    /// Builds it again from the start of the feed, up to the head read when it started.
    async fn rebuild(&self) -> Result<RebuildOutcome, BoxError>;

    /// Forgets its checkpoint and its dead letters, and ends the term of the runner leading
    /// it, so whoever leads next starts again from the start of the feed
    /// ([`CheckpointStore::reset_checkpoint`]).
    async fn reset(&self) -> Result<(), BoxError>;
}

/// A projection rebuilt by resetting its checkpoint and catching up with a runner the
/// service makes (`ProjectionRunner::for_store(MyProjection, &store)`), on the one engine.
///
/// For a projection whose sink keeps what was applied (a table), make the sink idempotent or
/// clear it before: a rebuild replays every event. The service's own runner may go on: the
/// reset ends its term (its saves are refused from then on), whoever takes the lease next
/// replays from the start, and the rebuild ends once the projection, led by either, has
/// caught up with the head read when it started.
pub struct CatchUpProjection<F> {
    name: String,
    store: PgEventStore,
    runner: F,
}

impl<F> CatchUpProjection<F>
where
    F: Fn() -> ProjectionRunner + Send + Sync,
{
    /// Projection `name` on `store`, caught up with the runners `runner` makes.
    pub fn new(name: impl Into<String>, store: PgEventStore, runner: F) -> Self {
        Self {
            name: name.into(),
            store,
            runner,
        }
    }
}

#[async_trait]
impl<F> AdminProjection for CatchUpProjection<F>
where
    F: Fn() -> ProjectionRunner + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn rebuild(&self) -> Result<RebuildOutcome, BoxError> {
        self.store.reset_checkpoint(&self.name).await?;
        let position = (self.runner)().catch_up().await?;
        Ok(RebuildOutcome::new(self.name.clone(), position)
            .detail(format!("replayed {} from the start of the feed", self.name)))
    }

    async fn reset(&self) -> Result<(), BoxError> {
        Ok(self.store.reset_checkpoint(&self.name).await?)
    }
}

/// The future a [`RebuildWith`] closure returns.
pub type RebuildFuture = Pin<Box<dyn Future<Output = Result<RebuildOutcome, BoxError>> + Send>>;

/// A projection rebuilt by a closure: a search read model's `EsReadModel::rebuild` (which
/// fills a new index and swaps the alias, queries never stopping), or anything else. Its
/// progress shows the rebuild's own checkpoint, `{name}@v{n}#{uuid}`.
pub struct RebuildWith<F> {
    name: String,
    store: PgEventStore,
    rebuild: F,
    progress: ProgressTarget,
}

impl<F> RebuildWith<F>
where
    F: Fn() -> RebuildFuture + Send + Sync,
{
    /// Projection `name` on `store`, rebuilt by `rebuild`; progress read from the checkpoints
    /// named `{name}@v...` (a search read model's rebuild).
    pub fn new(name: impl Into<String>, store: PgEventStore, rebuild: F) -> Self {
        let name = name.into();
        Self {
            progress: ProgressTarget::Prefix(format!("{name}@v")),
            name,
            store,
            rebuild,
        }
    }

    /// Progress read from `target` instead.
    #[must_use]
    pub fn with_progress(mut self, target: ProgressTarget) -> Self {
        self.progress = target;
        self
    }
}

#[async_trait]
impl<F> AdminProjection for RebuildWith<F>
where
    F: Fn() -> RebuildFuture + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn progress(&self) -> ProgressTarget {
        self.progress.clone()
    }

    async fn rebuild(&self) -> Result<RebuildOutcome, BoxError> {
        (self.rebuild)().await
    }

    async fn reset(&self) -> Result<(), BoxError> {
        Ok(self.store.reset_checkpoint(&self.name).await?)
    }
}
