//! [`EsReadModel`]: one object per read model, built from a client and an
//! [`ElasticProjection`]: its index, its projector and its queries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{CheckpointStore, Position, ReadAll};
use elasticsearch::Elasticsearch;

use crate::{
    ElasticProjection, EsIndex, EsProjector, EsQueries, IndexSettings, IndexVersion, Page,
    ProjectorOptions, Query, RebuildOptions, RebuildReport, Result, Search,
};

/// A read model in Elasticsearch: the one object to build from a client and your
/// [`ElasticProjection`]. It holds the read model's index (alias `{name}` over `{name}_v{n}`),
/// makes the [`EsProjector`] to hand to a runner, answers typed queries and rebuilds.
///
/// ```no_run
/// # use cqrs_core::{BoxError, RecordedEvent, InMemoryEventStore};
/// # use cqrs_core::projection::ProjectionRunner;
/// # use cqrs_elastic::{Change, ElasticProjection, EsReadModel, Query};
/// # use serde::{Deserialize, Serialize};
/// # use serde_json::{json, Value};
/// # #[derive(Clone, Serialize, Deserialize)]
/// # struct Balance { cents: i64 }
/// # struct Balances;
/// # impl ElasticProjection for Balances {
/// #     type Document = Balance;
/// #     fn name(&self) -> &str { "balances" }
/// #     fn mappings(&self) -> Value { json!({ "cents": { "type": "long" } }) }
/// #     fn document_id(&self, e: &RecordedEvent) -> Result<Option<String>, BoxError> {
/// #         Ok(Some(e.stream_id.to_string()))
/// #     }
/// #     fn apply(&self, _: Option<&Balance>, _: &RecordedEvent) -> Result<Change<Balance>, BoxError> {
/// #         Ok(Change::Unchanged)
/// #     }
/// # }
/// # async fn run() -> Result<(), BoxError> {
/// # let store = InMemoryEventStore::new();
/// let client = cqrs_elastic::connect("http://127.0.0.1:9200")?;
/// let balances = EsReadModel::new(client, Balances)?;
/// balances.ensure().await?; // the index balances_v1 and the alias balances
///
/// // The writing side: a projector for the core's runner.
/// let worker = ProjectionRunner::new(balances.projector(), store.clone(), store.clone()).spawn();
///
/// // The reading side: typed queries through the alias.
/// let rich = balances.count(&Query::range("cents").gte(100_000).into()).await?;
/// let one: Option<Balance> = balances.get("account-1").await?;
/// # let _ = (worker, rich, one);
/// # Ok(())
/// # }
/// ```
///
/// Cloning is cheap (clones share one projection, index and client). Its `Debug` output
/// leaves the client out.
pub struct EsReadModel<P: ElasticProjection> {
    parts: Arc<Parts<P>>,
}

/// What a read model is made of; shared by its clones.
struct Parts<P: ElasticProjection> {
    projection: Arc<P>,
    client: Elasticsearch,
    index: EsIndex,
    queries: EsQueries<P::Document>,
    projector_options: ProjectorOptions,
}

impl<P: ElasticProjection> Clone for EsReadModel<P> {
    fn clone(&self) -> Self {
        Self {
            parts: Arc::clone(&self.parts),
        }
    }
}

impl<P: ElasticProjection> Clone for Parts<P> {
    fn clone(&self) -> Self {
        Self {
            projection: Arc::clone(&self.projection),
            client: self.client.clone(),
            index: self.index.clone(),
            queries: self.queries.clone(),
            projector_options: self.projector_options.clone(),
        }
    }
}

impl<P: ElasticProjection> fmt::Debug for EsReadModel<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EsReadModel")
            .field("index", &self.parts.index)
            .finish_non_exhaustive()
    }
}

impl<P: ElasticProjection> EsReadModel<P> {
    /// The read model of `projection` on `client`: its name, mappings and documents. Fails when
    /// the name cannot be an alias or the mappings are not an object of field definitions.
    /// Creates nothing: call [`ensure`](Self::ensure).
    pub fn new(client: Elasticsearch, projection: P) -> Result<Self> {
        let index = EsIndex::for_projection(client.clone(), &projection)?;
        let queries = EsQueries::new(client.clone(), projection.name())?;
        let parts = Parts {
            projection: Arc::new(projection),
            client,
            index,
            queries,
            projector_options: ProjectorOptions::default(),
        };
        Ok(Self {
            parts: Arc::new(parts),
        })
    }

    /// Creates its new versioned indices with `settings` (shards, replicas, strictness,
    /// refresh interval; see [`IndexSettings`]).
    #[must_use]
    pub fn with_index_settings(mut self, settings: IndexSettings) -> Self {
        let parts = Arc::make_mut(&mut self.parts);
        parts.index = parts.index.clone().with_settings(settings);
        self
    }

    /// Its projectors write with `options` (refresh policy, remembered documents, parallel
    /// bulks; see [`ProjectorOptions`]).
    #[must_use]
    pub fn with_projector_options(mut self, options: ProjectorOptions) -> Self {
        Arc::make_mut(&mut self.parts).projector_options = options;
        self
    }

    /// The read model's name: the alias queries use and the projector's checkpoint name.
    pub fn name(&self) -> &str {
        self.parts.index.name()
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.parts.projection
    }

    /// Its indices and alias, for what the read model does not wrap (the write block, the
    /// current version...).
    pub fn index(&self) -> &EsIndex {
        &self.parts.index
    }

    /// The queries alone, for code that only reads (cheap to clone, typed by the document).
    pub fn queries(&self) -> &EsQueries<P::Document> {
        &self.parts.queries
    }

    /// Creates version 1 and the alias unless the alias exists, else maps on the current index
    /// the fields the mappings added; returns the current index (see [`EsIndex::ensure`]).
    /// Idempotent, and safe when several processes call it at once.
    pub async fn ensure(&self) -> Result<IndexVersion> {
        self.parts.index.ensure().await
    }

    /// A projector writing the documents through the alias, to hand to a
    /// [`ProjectionRunner`](cqrs_core::projection::ProjectionRunner), with the
    /// [`with_projector_options`](Self::with_projector_options) given.
    pub fn projector(&self) -> EsProjector<Arc<P>> {
        EsProjector::unchecked(
            self.parts.client.clone(),
            Arc::clone(&self.parts.projection),
        )
        .with_options(self.parts.projector_options.clone())
    }

    /// Rebuilds the read model from the start of `feed` without downtime: see
    /// [`EsIndex::rebuild`] (which takes its parts by value: pass `store.clone()`).
    pub async fn rebuild(
        &self,
        feed: impl ReadAll + 'static,
        checkpoints: impl CheckpointStore + 'static,
        options: RebuildOptions,
    ) -> Result<RebuildReport>
    where
        P: 'static,
    {
        let projection = Arc::clone(&self.parts.projection);
        self.parts
            .index
            .rebuild(projection, feed, checkpoints, options)
            .await
    }

    /// The document `id`, `None` when absent or deleted: see [`EsQueries::get`].
    pub async fn get(&self, id: &str) -> Result<Option<P::Document>> {
        self.parts.queries.get(id).await
    }

    /// One page of documents matching `search`: see [`EsQueries::search`].
    pub async fn search(&self, search: &Search) -> Result<Page<P::Document>> {
        self.parts.queries.search(search).await
    }

    /// How many documents match `query`: see [`EsQueries::count`].
    pub async fn count(&self, query: &Query) -> Result<u64> {
        self.parts.queries.count(query).await
    }

    /// Waits until this read model's projector has checkpointed `position` (typically a
    /// command's [`CommandOutcome::position`](cqrs_core::CommandOutcome)), polling
    /// `checkpoints` until `timeout` has passed: see [`EsQueries::wait_for_position`]. `true`
    /// when it got there.
    pub async fn wait_for_position(
        &self,
        checkpoints: &dyn CheckpointStore,
        position: Position,
        timeout: Duration,
    ) -> Result<bool> {
        self.parts
            .queries
            .wait_for_position(checkpoints, self.name(), position, timeout)
            .await
    }
}
