//! Status as data: instances by state, stuck ones, and one instance's timeline, for operators
//! and the operations console. Needs no `P`: payloads come back as JSON.
//!
//! The store keeps one status row per instance (written with each journal append); this
//! module adds what the rows cannot know: an instance whose event is parked as a dead letter
//! under `"process:{TYPE}"` is held back, so operators see it as failed. `timeline.rs` reads
//! an instance's journal back as entries people can follow.

#[cfg(test)]
mod tests;
mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use time::OffsetDateTime;

use super::instance::{Bookkeeping, Instance};
use super::life::InstanceState;
use super::manager::ProcessManager;
use super::store::{InstanceCounts, InstanceFilter, InstanceQuery, InstanceRow, ProcessStore};
use crate::projection::{DeadLetter, DeadLetterStore, PartitionBy, Partitions, StreamPartition};
use crate::{EventStore, ReadStream, Result, SnapshotStore, StreamId, Upcasters, Version};

pub use timeline::{TimelineEntry, TimelineKind};

use timeline::Timeline;

/// How many journal events one read of a timeline takes.
const READ_BATCH: usize = 256;
/// How many parked letters of one instance a timeline shows.
const PARKED_SHOWN: usize = 100;

/// Reads the status of process managers from a store: counts by state, pages of instances,
/// one instance's timeline.
///
/// It needs no process manager type, so an operations console can serve every process of a
/// store; `process` is a [`ProcessManager::TYPE`](super::ProcessManager::TYPE).
///
/// An instance is **failed** when it decided [`Action::Fail`](super::Action::Fail), or when
/// one of its events is parked as a dead letter of the process's projection
/// (`"process:{TYPE}"`, keyed by the instance's stream): it is held back until an operator
/// retries or skips the letter. It is **stuck** when it is running, has not progressed for
/// `stuck_after`, and has no timeout due later (an overdue one counts: nobody fired it).
pub struct Processes<S> {
    store: S,
    upcasters: Upcasters,
    partitions: Vec<Partitions>,
}

impl<S> Processes<S> {
    /// Status over `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            upcasters: Upcasters::new(),
            partitions: Vec::new(),
        }
    }

    /// For processes run split into `partitions`
    /// ([`PartitionedRunner`](crate::projection::PartitionedRunner)): their events are parked
    /// under each partition's name ([`Partitions::name`]: `process:{TYPE}/partitions/by-key/{n}/{i}`
    /// by key), read here along with `process:{TYPE}`'s. After a change of layout, add the old
    /// one too while its letters remain.
    #[must_use]
    pub fn with_partitions(mut self, partitions: Partitions) -> Self {
        self.partitions.push(partitions);
        self
    }

    /// With the upcasters the process's runner has: [`instance`](Self::instance) routes the
    /// recorded triggers again, after upcasting them.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// The store it reads.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: ProcessStore + DeadLetterStore> Processes<S> {
    /// How many instances of `process` are running, completed, failed and stuck at `now`
    /// (the process clock's time). An instance held back by a parked event counts as failed,
    /// not running.
    pub async fn counts(
        &self,
        process: &str,
        now: OffsetDateTime,
        stuck_after: Duration,
    ) -> Result<InstanceCounts> {
        let mut counts = self
            .store
            .instance_counts(process, now, stuck_after)
            .await?;
        for instance in self.parked_instances(process).await? {
            match self.store.instance(process, &instance).await? {
                Some(row) if row.state == InstanceState::Running => {
                    counts.running = counts.running.saturating_sub(1);
                    if row.is_stuck(now, stuck_after) {
                        counts.stuck = counts.stuck.saturating_sub(1);
                    }
                    counts.failed += 1;
                }
                Some(_) => {}
                // Parked before it recorded anything: its first event is held back.
                None => counts.failed += 1,
            }
        }
        Ok(counts)
    }

    /// One page of the instances of `process` that `query` picks, ordered by instance id;
    /// the next page starts [`after`](InstanceQuery::after) the last id of this one.
    ///
    /// A row of an instance held back by a parked event reads as failed, with
    /// `last_input` saying which event and why, and `finished_at` when it was parked; an
    /// instance parked before it recorded anything gets such a row at version 0.
    pub async fn instances(
        &self,
        process: &str,
        query: &InstanceQuery,
    ) -> Result<Vec<InstanceRow>> {
        let parked = self.parked_instances(process).await?;
        let mut page: BTreeMap<String, InstanceRow> = BTreeMap::new();
        let mut after = query.after.clone();
        // Rows the store returns may be dropped (running ones that are parked), so read on
        // until the page is full or the store has no more.
        loop {
            let mut store_query = query.clone();
            store_query.after = after.clone();
            let rows = self.store.instances(process, &store_query).await?;
            let exhausted = rows.len() < query.limit;
            after = rows.last().map(|r| r.instance.clone()).or(after);
            for row in rows {
                let held = row.state == InstanceState::Running && parked.contains(&row.instance);
                if held {
                    if keeps_failed(&query.filter) {
                        let row = self.as_parked(process, row).await?;
                        page.insert(row.instance.clone(), row);
                    }
                } else {
                    page.insert(row.instance.clone(), row);
                }
            }
            if exhausted || page.len() >= query.limit {
                break;
            }
        }
        if keeps_failed(&query.filter) {
            // Running instances the store did not list as failed, and instances with no row.
            for instance in &parked {
                if page.contains_key(instance)
                    || query
                        .after
                        .as_deref()
                        .is_some_and(|a| instance.as_str() <= a)
                {
                    continue;
                }
                match self.store.instance(process, instance).await? {
                    Some(row) if row.state == InstanceState::Running => {
                        let row = self.as_parked(process, row).await?;
                        page.insert(row.instance.clone(), row);
                    }
                    Some(_) => {}
                    None => {
                        if let Some(row) = self.parked_row(process, instance).await? {
                            page.insert(row.instance.clone(), row);
                        }
                    }
                }
            }
        }
        Ok(page.into_values().take(query.limit).collect())
    }

    /// The ids of the instances of `process` with an event parked under their stream.
    async fn parked_instances(&self, process: &str) -> Result<Vec<String>> {
        let prefix = format!("{process}-");
        let mut instances = BTreeSet::new();
        for projection in self.projections(process, None) {
            let keys = self.store.parked_keys(&projection).await?;
            instances.extend(
                (keys.into_iter()).filter_map(|key| key.strip_prefix(&prefix).map(str::to_owned)),
            );
        }
        Ok(instances.into_iter().collect())
    }

    /// The first letter parked under `instance`.
    async fn first_letter(&self, process: &str, instance: &str) -> Result<Option<DeadLetter>> {
        Ok(self.letters(process, instance, 1).await?.into_iter().next())
    }

    /// `row`, read as failed because of its first parked letter.
    async fn as_parked(&self, process: &str, row: InstanceRow) -> Result<InstanceRow> {
        Ok(match self.first_letter(process, &row.instance).await? {
            Some(letter) => parked(row, &letter),
            None => row,
        })
    }

    /// A row for an instance that is parked and never recorded anything.
    async fn parked_row(&self, process: &str, instance: &str) -> Result<Option<InstanceRow>> {
        Ok(self.first_letter(process, instance).await?.map(|letter| {
            parked(
                InstanceRow::new(instance, Version::ZERO, letter.parked_at),
                &letter,
            )
        }))
    }
}

impl<S: DeadLetterStore> Processes<S> {
    /// The projections `process`'s events are parked under: its own, and each partition's;
    /// for the letters of `key` alone, only the one partition of each by-key count it is in.
    fn projections(&self, process: &str, key: Option<&str>) -> Vec<String> {
        let whole = projection(process);
        let mut names = vec![whole.clone()];
        for partitions in &self.partitions {
            match (partitions.by(), key) {
                (PartitionBy::Key, Some(key)) => {
                    let index = StreamPartition::index_of(key, partitions.count());
                    names.push(partitions.name(&whole, index));
                }
                _ => names.extend((0..partitions.count()).map(|i| partitions.name(&whole, i))),
            }
        }
        names
    }

    /// The first `limit` letters parked under `instance`, in feed order, whichever
    /// partition parked them.
    async fn letters(
        &self,
        process: &str,
        instance: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        let key = instance_stream(process, instance)?;
        let mut letters = Vec::new();
        for projection in self.projections(process, Some(key.as_str())) {
            letters.extend(
                self.store
                    .key_letters(&projection, key.as_str(), limit)
                    .await?,
            );
        }
        letters.sort_by_key(|letter| letter.position);
        letters.truncate(limit);
        Ok(letters)
    }
}

impl<S: ProcessStore + DeadLetterStore + ReadStream> Processes<S> {
    /// The timeline of one instance: what it received and decided, in journal order, with
    /// feed positions, store times and process-clock times; then its live timeouts, earliest
    /// first; then the events parked under it. Empty when the instance never recorded
    /// anything and nothing is parked under it.
    pub async fn timeline(&self, process: &str, instance: &str) -> Result<Vec<TimelineEntry>> {
        let stream = instance_stream(process, instance)?;
        let mut timeline = Timeline::default();
        let mut from = Version::new(1);
        loop {
            let events = self.store.read_stream(&stream, from, READ_BATCH).await?;
            for event in &events {
                timeline.push(process, event)?;
            }
            match events.last() {
                Some(last) if events.len() == READ_BATCH => from = last.version.next(),
                _ => break,
            }
        }
        timeline.live(self.store.instance_timeouts(process, instance).await?);
        timeline.parked(self.letters(process, instance, PARKED_SHOWN).await?);
        Ok(timeline.into_entries())
    }
}

impl<S: EventStore + SnapshotStore> Processes<S> {
    /// The typed state and bookkeeping of instance `instance` of `P`, loaded as the engine
    /// loads it (the newest snapshot, then the journal's tail, decisions read back and never
    /// re-run); `None` when it never recorded anything. For tests and debugging.
    pub async fn instance<P: ProcessManager>(
        &self,
        instance: &str,
    ) -> Result<Option<(P, Bookkeeping)>> {
        let stream = Instance::<P>::stream(instance)?;
        let loaded = Instance::<P>::load(&self.store, &stream, &self.upcasters).await?;
        Ok(loaded
            .books
            .has_started()
            .then_some((loaded.state, loaded.books)))
    }
}

/// Whether instances held back by a parked event belong in a page of `filter`.
fn keeps_failed(filter: &InstanceFilter) -> bool {
    matches!(
        filter,
        InstanceFilter::All | InstanceFilter::State(InstanceState::Failed)
    )
}

fn parked(row: InstanceRow, letter: &DeadLetter) -> InstanceRow {
    let mut row = row.state(InstanceState::Failed).last_input(format!(
        "parked {} from {}@{}: {}",
        letter.event_type, letter.stream_id, letter.version, letter.error
    ));
    row.finished_at = Some(letter.parked_at);
    row
}

/// The projection (checkpoint, lease, dead letters) a process runs as.
fn projection(process: &str) -> String {
    format!("process:{process}")
}

/// An instance's journal stream, `"{TYPE}-{instance}"`: also its dead letters' key.
fn instance_stream(process: &str, instance: &str) -> Result<StreamId> {
    Ok(StreamId::with_category(process, instance)?)
}
