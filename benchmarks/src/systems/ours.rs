//! Ours: `cqrs_postgres::PgEventStore` under `cqrs_core::Repository`.

use anyhow::{bail, Result};
use cqrs_core::{
    AppendEvents, CommandContext, EventFilter, EventId, ExpectedVersion, Metadata, NewEvent,
    Position, ReadAll, Repository, SnapshotPolicy, SnapshotStore, StreamId, Version,
};
use cqrs_postgres::PgEventStore;
use sqlx::PgPool;
use uuid::Uuid;

use super::{amount_of, BatchSystem, Command, CommandSystem, FeedSystem};
use crate::domain::{payload, Account, Deposit, CATEGORY, EVENT_TYPE};

/// How many account states the caching repository keeps: room for every stream of the largest
/// command workload (10,000 streams) and its warm-up streams.
pub(crate) const CACHE_CAPACITY: usize = 20_000;

/// The store on `pool` as a new one is (group commit on), migrated (schema `cqrs`): the rows
/// that say "group commit".
pub(crate) async fn grouped_store(pool: PgPool) -> Result<PgEventStore> {
    let store = PgEventStore::new(pool).with_event_json(super::event_json());
    store.migrate().await?;
    Ok(store)
}

/// [`grouped_store`] without group commit: every other row of ours, so they keep measuring
/// each append on its own.
pub(crate) async fn store(pool: PgPool) -> Result<PgEventStore> {
    Ok(grouped_store(pool).await?.without_group_commit())
}

/// The stream of account `id`.
pub(crate) fn stream_of(id: &str) -> Result<StreamId> {
    Ok(StreamId::with_category(CATEGORY, id)?)
}

/// A repository over `store` retrying conflicts as every system does.
fn repository(store: PgEventStore) -> Repository<Account, PgEventStore> {
    Repository::new(store).with_retry(super::retry_policy())
}

/// Deposits through `Repository::execute` (which retries conflicts itself).
pub(crate) struct OursCommands {
    repository: Repository<Account, PgEventStore>,
    claim_new: bool,
}

impl OursCommands {
    /// A repository over `store`, keeping states in memory when `cached`.
    pub(crate) fn new(store: PgEventStore, cached: bool) -> Self {
        let repository = repository(store);
        let repository = if cached {
            repository.with_cache(CACHE_CAPACITY)
        } else {
            repository
        };
        Self {
            repository,
            claim_new: false,
        }
    }

    /// The same, telling the repository that a stream's first command is on a new stream
    /// ([`CommandContext::new_stream`]), as a service creating an aggregate under a fresh id
    /// can: the command then reads nothing before its append.
    pub(crate) fn claiming_new_streams(mut self) -> Self {
        self.claim_new = true;
        self
    }

    /// A repository over `store` taking a snapshot every `events` events.
    pub(crate) fn with_snapshots(store: PgEventStore, events: u64) -> Self {
        let repository = repository(store).with_snapshots(SnapshotPolicy::every(events));
        Self {
            repository,
            claim_new: false,
        }
    }

    /// The account `id`: balance and version.
    pub(crate) async fn load(&self, id: &str) -> Result<(u64, u64)> {
        let (account, version) = self.repository.load(id).await?;
        Ok((account.balance, version.get()))
    }
}

impl CommandSystem for OursCommands {
    async fn deposit(&self, command: &Command) -> Result<u64> {
        let deposit = Deposit {
            amount: command.amount,
        };
        let context = if self.claim_new && command.version == 1 {
            CommandContext::new().new_stream()
        } else {
            CommandContext::new()
        };
        let outcome = (self.repository)
            .execute_with(&command.id, &deposit, context)
            .await?;
        Ok(u64::from(outcome.attempts.saturating_sub(1)))
    }
}

/// The events of versions `from..=to` of a prepared stream, sharing one correlation id: the
/// raw rows' metadata (`raw.rs`), so both sides write the same bytes.
pub(crate) fn new_events(from: u64, to: u64) -> Vec<NewEvent> {
    let correlation = Uuid::now_v7();
    (from..=to)
        .map(|version| {
            // One event id each, as the raw rows have (`NewEvent::new` would draw one more).
            NewEvent::from_parts(
                EVENT_TYPE,
                1,
                payload(amount_of(version)),
                Metadata::new(EventId::new()).with_correlation_id(correlation),
            )
        })
        .collect()
}

/// Appends the events of versions `from..=to` to `stream`, which must be at `from - 1`.
pub(crate) async fn append_range(
    store: &PgEventStore,
    stream: &StreamId,
    from: u64,
    to: u64,
) -> Result<()> {
    let expected = ExpectedVersion::Exact(Version::new(from.saturating_sub(1)));
    let outcome = store.append(stream, expected, new_events(from, to)).await?;
    if outcome.last_version.get() != to {
        bail!(
            "{stream} is at {} after the append, not {to}",
            outcome.last_version
        );
    }
    Ok(())
}

/// The version of the snapshot of `stream`, if it has one.
pub(crate) async fn snapshot_version(
    store: &PgEventStore,
    stream: &StreamId,
) -> Result<Option<u64>> {
    Ok(store.load_snapshot(stream).await?.map(|s| s.version.get()))
}

/// Batch appends through `AppendEvents::append`.
pub(crate) struct OursBatch {
    store: PgEventStore,
}

impl OursBatch {
    /// Over `store`.
    pub(crate) fn new(store: PgEventStore) -> Self {
        Self { store }
    }
}

impl BatchSystem for OursBatch {
    async fn append_batch(&self, stream: &str, events: u64) -> Result<()> {
        append_range(&self.store, &StreamId::new(stream)?, 1, events).await
    }
}

/// Feed reads through `ReadAll::read_all`.
pub(crate) struct OursFeed {
    store: PgEventStore,
}

impl OursFeed {
    /// Over `store`.
    pub(crate) fn new(store: PgEventStore) -> Self {
        Self { store }
    }
}

impl FeedSystem for OursFeed {
    async fn read_feed(&self, batch: u64, category: Option<&'static str>) -> Result<u64> {
        let filter = category.map_or_else(EventFilter::all, |c| EventFilter::all().category(c));
        read_feed_from(
            &self.store,
            Position::START,
            usize::try_from(batch)?,
            &filter,
        )
        .await
    }
}

/// Reads the whole feed after `after` that `filter` lets through, `batch` events at a time,
/// checking that positions only grow and that the filter holds; returns how many events it
/// read.
pub(crate) async fn read_feed_from(
    store: &PgEventStore,
    mut after: Position,
    batch: usize,
    filter: &EventFilter,
) -> Result<u64> {
    let mut read = 0_u64;
    loop {
        let page = store.read_all(after, batch, filter).await?;
        if page.events.is_empty() && !page.more {
            return Ok(read);
        }
        for event in &page.events {
            if event.position <= after {
                bail!("position {} after {after}", event.position);
            }
            if !filter.matches(event.stream_id.as_str(), &event.event_type) {
                bail!(
                    "{} at {} is not what the filter asked for",
                    event.stream_id,
                    event.position
                );
            }
            after = event.position;
            read += 1;
        }
        after = after.max(page.next);
    }
}
