//! One batch: group the events by document, read what is not remembered, fold, write, and
//! sort each document's outcome (written, conflict to retry, refusal to recheck, poison).

use std::collections::{HashMap, HashSet};

use cqrs_core::projection::{ProjectionError, Rejected};
use cqrs_core::{Position, RecordedEvent};
use tracing::Instrument;

use super::cache::Known;
use super::EsProjector;
use crate::bulk::{DocWrite, ItemOutcome};
use crate::document::source_json;
use crate::error::chain;
use crate::fold::{fold, group, Group};
use crate::mget::mget;
use crate::{ElasticProjection, EsError};

impl<P: ElasticProjection> EsProjector<P> {
    pub(super) async fn write(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
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
                self.cache.take(&ids)
            } else {
                HashMap::new()
            };
            let unknown: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| !current.contains_key(*id))
                .collect();
            let span = tracing::debug_span!("es_projector.mget", documents = unknown.len());
            let read = mget(&self.client, &self.target, &unknown)
                .instrument(span)
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
            // A plan to try again later rejects nothing, so it is among those to write.
            if let Some(error) = plans.iter_mut().find_map(|plan| plan.transient.take()) {
                return Err(ProjectionError::Transient(error));
            }
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
                        self.cache.remember(write.id, version, position, document);
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
                if attempt > self.options.max_conflict_retries {
                    return Err(ProjectionError::Transient(
                        format!(
                            "{} document(s) still written by someone else after {} retries",
                            retry.len(),
                            self.options.max_conflict_retries
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
            transient: None,
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
        plan.transient = folded.transient;
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
                    .map(|&p| Rejected::new(p, chain(&error))),
            ),
        }
        plan
    }
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
    /// Why the batch is to be tried again before anything of it is written (see
    /// [`Folded::transient`](crate::fold::Folded::transient)).
    transient: Option<cqrs_core::BoxError>,
}

/// A failure a retry may cure.
fn transient(error: EsError) -> ProjectionError {
    ProjectionError::Transient(Box::new(error))
}
