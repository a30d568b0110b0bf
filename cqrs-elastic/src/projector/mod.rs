//! [`EsProjector`]: runs an [`ElasticProjection`] as a [`Projection`], one `_mget` and one
//! `_bulk` per batch (a large one split into parallel requests), idempotent and order-safe.
//!
//! `mod.rs` holds the projector and its [`Projection`] face, `options` its settings; `write` settles one
//! batch (group, read, fold, write, sort the outcomes), `send` sends the writes as one or
//! several `_bulk` requests, and `cache` remembers the documents last written.

mod cache;
mod options;
mod send;
mod write;

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::{BoxError, EventFilter, RecordedEvent};
use elasticsearch::Elasticsearch;
use tracing::Instrument;

use self::cache::DocumentCache;
pub use self::options::ProjectorOptions;
use crate::index::{refresh, validate_name};
use crate::refresh::Refresher;
use crate::{ElasticProjection, RefreshPolicy, Result};

/// Writes an [`ElasticProjection`]'s documents; a [`Projection`] for the core's runner.
///
/// For each batch: the events are grouped by document id in feed order; the touched documents
/// are read with one `_mget` (state, last applied position, `_seq_no` / `_primary_term`); only
/// events after a document's last applied position are folded, so a replay changes nothing; the
/// changes go out in one `_bulk` (a large batch in [`parallel_bulks`](ProjectorOptions::parallel_bulks)
/// requests at once), one action per document: `create` for new documents, `index` with
/// `if_seq_no` / `if_primary_term` for known ones. A document someone else wrote meanwhile
/// (409) is read again and refolded, a bounded number of times. An event the projection's
/// `apply` refuses is poison only if the document, read from the index once more, refuses it
/// too (another worker may have moved it on). Every item of the answer is
/// checked: 429, 5xx and connection failures are [`ProjectionError::Transient`]; a document the
/// server refuses (mapping or parse error) makes its events [`ProjectionError::Poison`] while
/// the other documents' writes stand.
///
/// It writes through the read model's alias by default (`require_alias`, so a missing alias is
/// an error, never an auto-created index); [`with_target_index`](Self::with_target_index) points it at one
/// versioned index, which is what a rebuild does.
pub struct EsProjector<P: ElasticProjection> {
    client: Elasticsearch,
    projection: P,
    target: String,
    via_alias: bool,
    checkpoint_name: String,
    options: ProjectorOptions,
    /// Documents as this projector last wrote them.
    cache: DocumentCache<P::Document>,
    /// Shares refreshes between the batches settling at once.
    refresher: Refresher,
}

impl<P: ElasticProjection> EsProjector<P> {
    /// A projector writing `projection`'s documents through its alias, under the checkpoint
    /// name `projection.name()`. Fails when the name cannot be an alias.
    pub fn new(client: Elasticsearch, projection: P) -> Result<Self> {
        validate_name(projection.name())?;
        Ok(Self::unchecked(client, projection))
    }

    /// [`new`](Self::new) for a projection whose name was checked.
    pub(crate) fn unchecked(client: Elasticsearch, projection: P) -> Self {
        let name = projection.name().to_owned();
        Self {
            client,
            projection,
            target: name.clone(),
            via_alias: true,
            checkpoint_name: name,
            cache: DocumentCache::new(ProjectorOptions::default().cache_documents),
            options: ProjectorOptions::default(),
            refresher: Refresher::default(),
        }
    }

    /// Writes with `options` (refresh policy, remembered documents, parallel bulks, conflict
    /// retries; see [`ProjectorOptions`]).
    #[must_use]
    pub fn with_options(mut self, options: ProjectorOptions) -> Self {
        self.cache.set_capacity(options.cache_documents);
        self.options = options;
        self
    }

    /// Writes into the concrete index `index` instead of the alias (a rebuild's new index). The
    /// index must exist: each batch's `_mget` fails on a missing index before anything is
    /// written.
    #[must_use]
    pub fn with_target_index(mut self, index: impl Into<String>) -> Self {
        self.target = index.into();
        self.via_alias = false;
        self
    }

    /// The name it reports to the runner, which keys its checkpoint (default: the read
    /// model's name; a rebuild uses `{name}@v{n}#{uuid}`).
    #[must_use]
    pub fn with_checkpoint_name(mut self, name: impl Into<String>) -> Self {
        self.checkpoint_name = name.into();
        self
    }

    /// The projection it runs.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// The alias or index it writes to.
    pub fn target(&self) -> &str {
        &self.target
    }
}

#[async_trait]
impl<P: ElasticProjection> Projection for EsProjector<P> {
    fn name(&self) -> &str {
        &self.checkpoint_name
    }

    fn filter(&self) -> EventFilter {
        self.projection.filter()
    }

    /// The document id, `None` when the event is not for this read model or its id fails
    /// (the event is then poison in [`apply`](Projection::apply)).
    fn key(&self, event: &RecordedEvent) -> Option<String> {
        self.projection.document_id(event).ok().flatten()
    }

    /// Under [`RefreshPolicy::Immediate`], returns once a refresh of the target that started
    /// after the call succeeded: what earlier bulks wrote is searchable. Calls in flight at
    /// once share refreshes, so there is at most one at a time. A failed shard is an error.
    async fn make_visible(&self) -> Result<(), BoxError> {
        if self.options.refresh != RefreshPolicy::Immediate {
            return Ok(());
        }
        let refresh = || {
            let span = tracing::debug_span!("es_projector.refresh", target = %self.target);
            refresh(&self.client, &self.target).instrument(span)
        };
        Ok(self.refresher.after_call(refresh).await?)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let span = tracing::debug_span!(
            "es_projector.apply",
            projection = %self.checkpoint_name,
            target = %self.target,
            events = events.len(),
        );
        let result = self.write(events).instrument(span).await;
        if let Err(ProjectionError::Transient(_)) = &result {
            // The index may have been blocked, swapped or recreated under us: trust nothing
            // remembered until documents are read again.
            self.cache.forget();
        }
        result
    }

    /// Drops the remembered documents whenever leading starts or ends: while this worker did
    /// not lead, another one may have written them.
    async fn leadership_changed(&self, _leading: bool) {
        self.cache.forget();
    }
}
