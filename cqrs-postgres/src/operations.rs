//! Read-only queries for operators' tools (`cqrs-admin`): every reader of the feed the store
//! knows of, with its progress, and the events one correlation id caused. Neither is on a hot
//! path: each statement is built from its `.sql` file when it runs.

use cqrs_core::projection::BreakerState;
use cqrs_core::{Position, RecordedEvent};
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::convert::{self, limit, to_u64};
use crate::row::recorded_events;
use crate::timestamp::optional;
use crate::{PgError, PgEventStore};

/// How far [`PgSubscriber::lag_events`] counts: operators' lists read every reader's lag
/// often (the console samples it every few seconds), and a count of every row past a
/// checkpoint cost a scan of the events table per reader. Past this, a reader is far behind,
/// whatever the exact figure; its runner's own status counts on.
pub const LAG_COUNT_LIMIT: u64 = 100_000;

/// One reader of the feed as the store sees it: a projection, a process manager
/// (`process:{TYPE}`), a rebuild's checkpoint, or an event-bus consumer with parked messages.
/// See [`PgEventStore::subscribers`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgSubscriber {
    /// The name its checkpoint, lease and dead letters are kept under.
    pub name: String,
    /// Its saved checkpoint, if it saved one.
    pub checkpoint: Option<Position>,
    /// When the checkpoint was last saved.
    pub checkpoint_updated_at: Option<OffsetDateTime>,
    /// Its lease, if it ever held one (an ended lease shows as expired).
    pub lease: Option<PgLease>,
    /// Events parked as its dead letters.
    pub dead_letters: u64,
    /// Event-bus messages parked for it (when it is a bus consumer).
    pub bus_dead_letters: u64,
    /// Committed, visible events past its checkpoint, whatever its filter, counted up to
    /// [`LAG_COUNT_LIMIT`] in the list of every reader (a reader further behind shows the
    /// limit).
    pub lag_events: u64,
    /// When the oldest of those was recorded; `None` when it is caught up.
    pub oldest_unapplied_at: Option<OffsetDateTime>,
    /// Its runner's circuit breaker as last recorded, if it recorded one.
    pub breaker: Option<PgBreaker>,
}

/// A runner's circuit breaker as it recorded it when it changed
/// ([`CheckpointStore::record_breaker`](cqrs_core::CheckpointStore::record_breaker)). A runner
/// that died leaves its last record: read it with the lease (is a worker leading?).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgBreaker {
    /// Where it was.
    pub state: BreakerState,
    /// The transient error that opened it, while it is not closed.
    pub last_error: Option<String>,
    /// When the runner recorded it (by the database clock).
    pub changed_at: OffsetDateTime,
}

/// A lease row: who holds it, its fencing epoch and until when. See [`PgSubscriber::lease`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgLease {
    /// The holder's id.
    pub owner: String,
    /// The fencing epoch: it grows with every new holder.
    pub epoch: u64,
    /// When it expires unless renewed (by the database clock).
    pub expires_at: OffsetDateTime,
}

impl PgEventStore {
    /// Every reader of the feed this store knows of, by name: what has a checkpoint, a lease,
    /// dead letters, process-manager instances (as `process:{TYPE}`) or parked bus messages.
    pub async fn subscribers(&self) -> Result<Vec<PgSubscriber>, PgError> {
        self.subscribers_where(None, Some(LAG_COUNT_LIMIT)).await
    }

    /// The readers whose names start with `prefix` (a progress line follows one reader, or a
    /// rebuild's `{name}@v...`, without counting every other reader's lag). Their lag is
    /// counted whole, not up to [`LAG_COUNT_LIMIT`]: a progress line's rate and time left
    /// come from it.
    pub async fn subscribers_starting_with(
        &self,
        prefix: &str,
    ) -> Result<Vec<PgSubscriber>, PgError> {
        self.subscribers_where(Some(prefix), None).await
    }

    /// The readers starting with `prefix` (all: `None`), their lag counted up to `limit`
    /// (whole: `None`).
    async fn subscribers_where(
        &self,
        prefix: Option<&str>,
        limit: Option<u64>,
    ) -> Result<Vec<PgSubscriber>, PgError> {
        let sql = self.fill(include_str!("sql/subscribers.sql"));
        let rows = sqlx::query(&sql)
            .bind(prefix)
            .bind(limit.map(|limit| i64::try_from(limit).unwrap_or(i64::MAX)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(subscriber).collect()
    }

    /// Up to `max` events whose metadata carries `correlation_id`, in feed order after `after`
    /// (everything one request caused). It scans the events table: an operator's query.
    pub async fn correlated_events(
        &self,
        correlation_id: Uuid,
        after: Position,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, PgError> {
        let sql = self.fill(include_str!("sql/correlated_events.sql"));
        let (major, minor) = convert::position_parts(after)?;
        let rows = sqlx::query(&sql)
            .bind(correlation_id.to_string())
            .bind(major)
            .bind(minor)
            .bind(limit(max))
            .fetch(&self.pool);
        recorded_events(rows).await
    }

    /// `sql` with this store's schema filled in.
    fn fill(&self, sql: &str) -> String {
        sql.replace("{schema}", &self.schema().quoted())
    }
}

fn subscriber(row: &sqlx::postgres::PgRow) -> Result<PgSubscriber, PgError> {
    let transaction_id: Option<&str> = row.try_get("checkpoint_transaction_id")?;
    let position: Option<i64> = row.try_get("checkpoint_position")?;
    let checkpoint = match (transaction_id, position) {
        (Some(t), Some(p)) => Some(convert::position(t, p)?),
        _ => None,
    };
    let owner: Option<String> = row.try_get("lease_owner")?;
    let epoch: Option<i64> = row.try_get("lease_epoch")?;
    let expires_at = optional(row, "lease_expires_at")?;
    let lease = match (owner, epoch, expires_at) {
        (Some(owner), Some(epoch), Some(expires_at)) => Some(PgLease {
            owner,
            epoch: to_u64("negative lease epoch", epoch)?,
            expires_at,
        }),
        _ => None,
    };
    let state: Option<String> = row.try_get("breaker_state")?;
    let changed_at = optional(row, "breaker_changed_at")?;
    let breaker = match (state, changed_at) {
        (Some(state), Some(changed_at)) => Some(PgBreaker {
            state: BreakerState::from_name(&state).ok_or(PgError::CorruptRow {
                what: "unknown breaker state",
            })?,
            last_error: row.try_get("breaker_last_error")?,
            changed_at,
        }),
        _ => None,
    };
    Ok(PgSubscriber {
        name: row.try_get("name")?,
        checkpoint,
        checkpoint_updated_at: optional(row, "checkpoint_updated_at")?,
        lease,
        dead_letters: to_u64("negative count", row.try_get("dead_letters")?)?,
        bus_dead_letters: to_u64("negative count", row.try_get("bus_dead_letters")?)?,
        lag_events: to_u64("negative count", row.try_get("lag_events")?)?,
        oldest_unapplied_at: optional(row, "oldest_unapplied_at")?,
        breaker,
    })
}
