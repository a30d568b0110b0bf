//! [`EsProjector`]: runs an [`ElasticProjection`] as a [`Projection`], one `_mget` and one
//! `_bulk` per batch (a large one split into parallel requests), idempotent and order-safe.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError, Rejected};
use cqrs_core::{BoxError, EventFilter, Position, RecordedEvent};
use elasticsearch::params::Refresh;
use elasticsearch::{BulkParts, Elasticsearch};
use tracing::Instrument;

use crate::bulk::{self, DocWrite, ItemOutcome, Precondition};
use crate::document::source_json;
use crate::fold::{fold, group, Group, Start};
use crate::index::{refresh, validate_name};
use crate::mget::{mget, Current};
use crate::refresh::Refresher;
use crate::{http, ElasticProjection, EsError, Result};

/// When the documents a batch wrote become visible to searches (`get` sees them at once
/// whatever the policy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshPolicy {
    /// Refresh before the checkpoint moves past a batch: a caller waiting on the checkpoint
    /// reads its own write. The default. The refresh is
    /// [`make_visible`](Projection::make_visible), which the runner calls while it applies the
    /// next batch, so bulks never wait for refreshes; while catching up, once per checkpoint
    /// interval for all the batches applied since. Code that calls `apply` without a runner
    /// calls `make_visible` after it.
    #[default]
    Immediate,
    /// Wait for the next periodic refresh before answering (`refresh=wait_for`). Never use it on
    /// an index whose refresh is disabled.
    WaitFor,
    /// Do not refresh: the index's own refresh interval decides. For rebuilds and bulk loads.
    None,
}

impl RefreshPolicy {
    /// The bulk's own `refresh` parameter.
    fn param(self) -> Option<Refresh> {
        match self {
            RefreshPolicy::WaitFor => Some(Refresh::WaitFor),
            RefreshPolicy::Immediate | RefreshPolicy::None => None,
        }
    }
}

/// Writes an [`ElasticProjection`]'s documents; a [`Projection`] for the core's runner.
///
/// For each batch: the events are grouped by document id in feed order; the touched documents
/// are read with one `_mget` (state, last applied position, `_seq_no` / `_primary_term`); only
/// events after a document's last applied position are folded, so a replay changes nothing; the
/// changes go out in one `_bulk` (a large batch in [`parallel_bulks`](Self::parallel_bulks)
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
/// an error, never an auto-created index); [`into_index`](Self::into_index) points it at one
/// versioned index, which is what a rebuild does.
pub struct EsProjector<P: ElasticProjection> {
    client: Elasticsearch,
    projection: P,
    target: String,
    via_alias: bool,
    checkpoint_name: String,
    refresh: RefreshPolicy,
    max_conflict_retries: u32,
    /// Documents as this projector last wrote them, so the next batch need not read them back.
    /// A stale entry (someone else wrote the document) fails its write with 409 and is read
    /// again: the `if_seq_no` check keeps the cache honest. An event a document refuses is
    /// folded again over the document read from the index before it counts as poison, and the
    /// memory is dropped whenever leading starts or ends.
    cache: Mutex<HashMap<String, Known<P::Document>>>,
    cache_capacity: usize,
    /// At most this many `_bulk` requests per batch, sent at once.
    parallel_bulks: usize,
    /// Shares refreshes between the batches settling at once.
    refresher: Refresher,
}

/// A document as this projector knows it before a batch: what its write must expect, and its
/// decoded state.
struct Known<D> {
    precondition: Precondition,
    /// Its state, or why its metadata is unreadable (its events are rejected).
    start: Result<Start<D>, String>,
}

impl<D: serde::de::DeserializeOwned> Known<D> {
    fn absent() -> Self {
        Self {
            precondition: Precondition::Absent,
            start: Ok(Start::absent()),
        }
    }

    /// Decodes a document read by `_mget`.
    fn read(id: &str, current: Current) -> Self {
        Self {
            precondition: current.precondition,
            start: current
                .stored
                .map(|stored| Start::from_stored(id, stored.as_ref())),
        }
    }
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
            refresh: RefreshPolicy::default(),
            max_conflict_retries: 5,
            cache: Mutex::new(HashMap::new()),
            cache_capacity: 10_000,
            parallel_bulks: 2,
            refresher: Refresher::default(),
        }
    }

    /// Writes into the concrete index `index` instead of the alias (a rebuild's new index). The
    /// index must exist: each batch's `_mget` fails on a missing index before anything is
    /// written.
    #[must_use]
    pub fn into_index(mut self, index: impl Into<String>) -> Self {
        self.target = index.into();
        self.via_alias = false;
        self
    }

    /// The name it reports to the runner, which keys its checkpoint (default: the read
    /// model's name; a rebuild uses `{name}@v{n}`).
    #[must_use]
    pub fn checkpoint_name(mut self, name: impl Into<String>) -> Self {
        self.checkpoint_name = name.into();
        self
    }

    /// When written documents become searchable (default [`RefreshPolicy::Immediate`]).
    #[must_use]
    pub fn refresh(mut self, policy: RefreshPolicy) -> Self {
        self.refresh = policy;
        self
    }

    /// How many documents to remember as last written, sparing their `_mget` in later batches
    /// (default 10 000; 0 reads every document every batch). The memory is dropped after any
    /// transient failure and whenever the runner says leading started or ended
    /// ([`Projection::leadership_changed`]); an event a document refuses is tried again on the
    /// document read from the index, and only a refusal there is poison. An index deleted and recreated under a running projector without one
    /// (a manual reset) needs the projector restarted, as its checkpoint does.
    #[must_use]
    pub fn cache_documents(mut self, documents: usize) -> Self {
        self.cache_capacity = documents;
        self
    }

    /// Drops every remembered document: the next batch reads its documents from the index.
    fn forget(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn cached(&self, ids: &[&str]) -> HashMap<String, Known<P::Document>> {
        if self.cache_capacity == 0 {
            return HashMap::new();
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        ids.iter()
            .filter_map(|id| cache.remove(*id).map(|c| ((*id).to_owned(), c)))
            .collect()
    }

    /// Keeps a document as written: `document` after the events up to `position`.
    fn remember(
        &self,
        id: String,
        precondition: Precondition,
        position: Position,
        document: Option<P::Document>,
    ) {
        if self.cache_capacity == 0 {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.cache_capacity && !cache.contains_key(&id) {
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
            }
        }
        cache.insert(
            id,
            Known {
                precondition,
                start: Ok(Start {
                    position: Some(position),
                    document: Ok(document),
                }),
            },
        );
    }

    /// Splits a large batch's writes into up to `requests` `_bulk` requests sent at once
    /// (default 2), of at least 100 documents each. A single bulk into one shard is indexed by
    /// one write thread; parallel parts let a node index on more. Each document is still
    /// written once, with its own precondition, and the batch stands only when every part
    /// does. 1 sends one request per batch.
    #[must_use]
    pub fn parallel_bulks(mut self, requests: usize) -> Self {
        self.parallel_bulks = requests.max(1);
        self
    }

    /// How many times documents that someone else wrote meanwhile are read again and retried
    /// within one batch before the batch fails as transient (default 5).
    #[must_use]
    pub fn max_conflict_retries(mut self, retries: u32) -> Self {
        self.max_conflict_retries = retries;
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

    async fn write(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let grouped = group(events, |event| self.projection.document_id(event));
        let mut rejected = grouped.rejected;
        let mut pending: Vec<&Group<'_>> = grouped.groups.iter().collect();
        let mut attempt = 0;
        let mut first_round = true;
        // Documents whose refusal was checked on a second read.
        let mut rechecked: HashSet<&str> = HashSet::new();
        while !pending.is_empty() {
            let ids: Vec<&str> = pending.iter().map(|g| g.id.as_str()).collect();
            // Documents written by someone else (a retry) and documents that refused an event
            // (a recheck) are always read again.
            let mut current = if std::mem::take(&mut first_round) {
                self.cached(&ids)
            } else {
                HashMap::new()
            };
            let unknown: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| !current.contains_key(*id))
                .collect();
            let read = mget(&self.client, &self.target, &unknown)
                .await
                .map_err(transient)?;
            current.extend(read.into_iter().map(|(id, c)| {
                let known = Known::read(&id, c);
                (id, known)
            }));
            let (recheck, mut plans): (Vec<_>, Vec<_>) = pending
                .iter()
                .map(|g| self.plan(g, current.remove(&g.id)))
                .partition(|plan: &Plan<'_, '_, P::Document>| {
                    // Another worker may have moved the document on since this one wrote it
                    // (it led while this one had lost its lease) or read it: a refusal is
                    // poison only once the document, read from the index again, refuses too.
                    // Nothing of the document is written until then.
                    !plan.rejected.is_empty() && rechecked.insert(plan.group.id.as_str())
                });
            let writes: Vec<DocWrite> = plans.iter_mut().filter_map(|p| p.write.take()).collect();
            let outcomes = if writes.is_empty() {
                Vec::new()
            } else {
                self.bulk(&writes).await.map_err(transient)?
            };
            let mut outcomes = outcomes.into_iter();
            let mut sent = writes.into_iter();
            let mut retry = Vec::new();
            let mut failure = None;
            let mut blocked = false;
            for plan in plans {
                let outcome = if let Some((position, document)) = plan.kept {
                    let (outcome, version) =
                        outcomes.next().unwrap_or((ItemOutcome::Written, None));
                    let write = sent.next();
                    if let (ItemOutcome::Written, Some(version), Some(write)) =
                        (&outcome, version, write)
                    {
                        self.remember(write.id, version, position, document);
                    }
                    outcome
                } else {
                    ItemOutcome::Written
                };
                match outcome {
                    ItemOutcome::Written => rejected.extend(plan.rejected),
                    ItemOutcome::Conflict => retry.push(plan.group),
                    ItemOutcome::Transient(reason) => {
                        failure = Some(format!("document {}: {reason}", plan.group.id));
                    }
                    ItemOutcome::Blocked(reason) => {
                        blocked = true;
                        failure = Some(format!("document {}: {reason}", plan.group.id));
                    }
                    ItemOutcome::Rejected(reason) => {
                        rejected.extend(plan.rejected);
                        rejected.extend(plan.applied.iter().map(|&position| {
                            Rejected::new(
                                position,
                                format!("document {} refused: {reason}", plan.group.id),
                            )
                        }));
                    }
                }
            }
            if let Some(reason) = failure {
                // A rebuild's write block: say whose, and release it if its rebuild died. Only
                // then: any other failure (an overloaded or absent node) costs no extra reads.
                if blocked {
                    if let Some(error) = crate::block::recover(&self.client, &self.target).await {
                        return Err(ProjectionError::Transient(Box::new(error)));
                    }
                }
                return Err(ProjectionError::Transient(reason.into()));
            }
            if !recheck.is_empty() {
                tracing::debug!(
                    documents = recheck.len(),
                    "re-reading documents that refused an event"
                );
            }
            if !retry.is_empty() {
                attempt += 1;
                if attempt > self.max_conflict_retries {
                    return Err(ProjectionError::Transient(
                        format!(
                            "{} document(s) still written by someone else after {} retries",
                            retry.len(),
                            self.max_conflict_retries
                        )
                        .into(),
                    ));
                }
                tracing::debug!(
                    documents = retry.len(),
                    attempt,
                    "re-reading documents written concurrently"
                );
            }
            retry.extend(recheck.into_iter().map(|plan| plan.group));
            pending = retry;
        }
        if rejected.is_empty() {
            Ok(())
        } else {
            rejected.sort_by_key(|r| r.position);
            Err(ProjectionError::Poison(rejected))
        }
    }

    fn plan<'g, 'e>(
        &self,
        group: &'g Group<'e>,
        known: Option<Known<P::Document>>,
    ) -> Plan<'g, 'e, P::Document> {
        let known = known.unwrap_or_else(Known::absent);
        let mut plan = Plan {
            group,
            write: None,
            kept: None,
            applied: Vec::new(),
            rejected: Vec::new(),
        };
        let start = match known.start {
            Ok(start) => start,
            Err(why) => {
                plan.rejected = group
                    .events
                    .iter()
                    .map(|e| Rejected::new(e.position, &why))
                    .collect();
                return plan;
            }
        };
        let folded = fold(&self.projection, &group.id, start, &group.events);
        plan.rejected = folded.rejected;
        let Some((document, position)) = folded.write else {
            return plan;
        };
        match source_json(&group.id, document.as_ref(), position) {
            Ok(source) => {
                plan.write = Some(DocWrite {
                    id: group.id.clone(),
                    source,
                    precondition: known.precondition,
                });
                plan.kept = Some((position, document));
                plan.applied = folded.applied;
            }
            Err(error) => plan.rejected.extend(
                folded
                    .applied
                    .iter()
                    .map(|&p| Rejected::new(p, error_text(&error))),
            ),
        }
        plan
    }

    /// Writes `writes` (one per document) and classifies each item, in order. A batch large
    /// enough goes out as up to `parallel_bulks` requests at once, so a node with more than
    /// one write thread indexes them side by side; the documents are distinct, so the parts
    /// are independent.
    async fn bulk(&self, writes: &[DocWrite]) -> Result<Vec<(ItemOutcome, Option<Precondition>)>> {
        let parts = parts(writes.len(), self.parallel_bulks);
        if parts == 1 {
            return bulk::send_split(writes, |w| self.bulk_part(w)).await;
        }
        let size = writes.len().div_ceil(parts);
        let answers = futures_util::future::join_all(
            writes
                .chunks(size)
                .map(|part| bulk::send_split(part, |w| self.bulk_part(w))),
        )
        .await;
        let mut outcomes = Vec::with_capacity(writes.len());
        for answer in answers {
            outcomes.extend(answer?);
        }
        Ok(outcomes)
    }

    async fn bulk_part(
        &self,
        writes: &[DocWrite],
    ) -> Result<Vec<(ItemOutcome, Option<Precondition>)>> {
        let mut request = self
            .client
            .bulk(BulkParts::Index(&self.target))
            .filter_path(&[
                "errors",
                "items.*.status",
                "items.*.error",
                "items.*._seq_no",
                "items.*._primary_term",
            ]);
        if self.via_alias {
            request = request.require_alias(true);
        }
        if let Some(refresh) = self.refresh.param() {
            request = request.refresh(refresh);
        }
        let response = request.body(vec![bulk::body(writes)?]).send().await?;
        let answer = http::json_ok(response, "bulk").await?;
        let outcomes = bulk::classify(&answer, writes.len())
            .map_err(|detail| http::unexpected("bulk", detail))?;
        let mut versions = bulk::versions(&answer).into_iter();
        Ok(outcomes
            .into_iter()
            .map(|outcome| (outcome, versions.next().flatten()))
            .collect())
    }
}

/// The fewest documents worth a `_bulk` request of their own: below it, a second round trip
/// costs more than the parallel indexing saves.
const MIN_PART: usize = 100;

/// Into how many requests a bulk of `documents` is split, at most `parallel`.
fn parts(documents: usize, parallel: usize) -> usize {
    (documents / MIN_PART).clamp(1, parallel.max(1))
}

/// One document's part of a batch.
struct Plan<'g, 'e, D> {
    group: &'g Group<'e>,
    write: Option<DocWrite>,
    /// The written state when there is a write (taken out into the bulk body), kept for the
    /// cache once the write stands.
    kept: Option<(Position, Option<D>)>,
    /// Events folded into the write.
    applied: Vec<Position>,
    /// Events that cannot be applied.
    rejected: Vec<Rejected>,
}

fn transient(error: EsError) -> ProjectionError {
    ProjectionError::Transient(Box::new(error))
}

fn error_text(error: &EsError) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
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
        if self.refresh != RefreshPolicy::Immediate {
            return Ok(());
        }
        let refresh = || refresh(&self.client, &self.target);
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
            self.forget();
        }
        result
    }

    /// Drops the remembered documents whenever leading starts or ends: while this worker did
    /// not lead, another one may have written them.
    async fn leadership_changed(&self, _leading: bool) {
        self.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::parts;

    #[test]
    fn only_batches_of_a_hundred_documents_a_part_are_split() {
        assert_eq!(parts(0, 2), 1);
        assert_eq!(parts(1, 2), 1);
        assert_eq!(parts(199, 2), 1);
        assert_eq!(parts(200, 2), 2);
        assert_eq!(parts(500, 2), 2);
        assert_eq!(parts(500, 4), 4);
        assert_eq!(parts(350, 8), 3);
        assert_eq!(parts(10_000, 1), 1);
        assert_eq!(parts(10_000, 0), 1);
    }
}
