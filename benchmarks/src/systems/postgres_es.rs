//! postgres-es 0.5 (with cqrs-es 0.5): the framework we compare against, used as its README
//! shows: `postgres_cqrs(pool, queries, services)`, tables from its `db/init.sql`.

use anyhow::{bail, Context as _, Result};
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{AggregateError, EventStore};
use postgres_es::{postgres_cqrs, postgres_snapshot_cqrs, PostgresCqrs, PostgresEventRepository};
use sqlx::PgPool;

use super::{amount_of, retrying, Attempt, Command, CommandSystem};
use crate::domain::{payload, Deposit, EsAccount, CATEGORY, EVENT_TYPE};

/// Creates the `events` and `snapshots` tables.
pub(crate) async fn migrate(pool: &PgPool) -> Result<()> {
    sqlx::raw_sql(include_str!("postgres_es.sql"))
        .execute(pool)
        .await
        .context("creating the postgres-es tables")?;
    Ok(())
}

/// Deposits through `CqrsFramework::execute`. cqrs-es does not retry a conflict (it returns
/// `AggregateError::AggregateConflict`), so this retries it the way our repository does.
pub(crate) struct EsCommands {
    cqrs: PostgresCqrs<EsAccount>,
}

impl EsCommands {
    /// Without snapshots: every command loads the whole stream.
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            cqrs: postgres_cqrs(pool, Vec::new(), ()),
        }
    }

    /// With a snapshot every `events` events.
    pub(crate) fn with_snapshots(pool: PgPool, events: usize) -> Self {
        Self {
            cqrs: postgres_snapshot_cqrs(pool, Vec::new(), events, ()),
        }
    }

    async fn attempt(&self, id: &str, amount: u64) -> Result<Attempt> {
        match self.cqrs.execute(id, Deposit { amount }).await {
            Ok(()) => Ok(Attempt::Done),
            Err(AggregateError::AggregateConflict) => Ok(Attempt::Conflict),
            Err(error) => Err(error.into()),
        }
    }
}

impl CommandSystem for EsCommands {
    async fn deposit(&self, command: &Command) -> Result<u64> {
        retrying(|| self.attempt(&command.id, command.amount)).await
    }
}

/// Loads accounts as the framework does before a command.
pub(crate) struct EsLoader {
    store: PersistedEventStore<PostgresEventRepository, EsAccount>,
}

impl EsLoader {
    /// Replays whole streams.
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            store: PersistedEventStore::new_event_store(PostgresEventRepository::new(pool)),
        }
    }

    /// Starts from the snapshot, if any, as a `postgres_snapshot_cqrs` of `events` does.
    pub(crate) fn with_snapshots(pool: PgPool, events: usize) -> Self {
        let repository = PostgresEventRepository::new(pool);
        Self {
            store: PersistedEventStore::new_snapshot_store(repository, events),
        }
    }

    /// The account `id`: balance and version.
    pub(crate) async fn load(&self, id: &str) -> Result<(u64, u64)> {
        let context: EventStoreAggregateContext<EsAccount> = self.store.load_aggregate(id).await?;
        let version = u64::try_from(context.current_sequence)?;
        Ok((context.aggregate.balance, version))
    }
}

/// Writes the events of versions `from..=to` of account `id` straight into `events`, in the
/// shape postgres-es writes them: the fast way to prepare a long stream.
pub(crate) async fn insert_events(pool: &PgPool, id: &str, from: u64, to: u64) -> Result<()> {
    let mut versions = Vec::new();
    let mut payloads = Vec::new();
    for version in from..=to {
        versions.push(i64::try_from(version)?);
        payloads.push(payload(amount_of(version)));
    }
    let inserted = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT $1, $2, v, $3, '1', p, '{}' FROM UNNEST($4::bigint[], $5::json[]) AS t(v, p)",
    )
    .bind(CATEGORY)
    .bind(id)
    .bind(EVENT_TYPE)
    .bind(&versions)
    .bind(&payloads)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted != u64::try_from(versions.len())? {
        bail!("inserted {inserted} of {} events", versions.len());
    }
    Ok(())
}

/// The version of the newest snapshot of account `id`, if any.
pub(crate) async fn snapshot_version(pool: &PgPool, id: &str) -> Result<Option<u64>> {
    let version: Option<i64> = sqlx::query_scalar(
        "SELECT max(last_sequence) FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(CATEGORY)
    .bind(id)
    .fetch_one(pool)
    .await?;
    version.map(u64::try_from).transpose().map_err(Into::into)
}
