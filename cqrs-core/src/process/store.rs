//! [`ProcessStore`]: what a backend keeps for process managers besides their journals: durable
//! timeouts and one status row per instance, both written atomically with the journal append.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::life::InstanceState;
use crate::projection::ProjectionStore;
use crate::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, Position, Result, SnapshotStore,
    StreamId, Version,
};

/// Timeouts and instance status for process managers. Object-safe; names no database type.
///
/// `process` is always a [`ProcessManager::TYPE`](super::ProcessManager::TYPE).
#[async_trait]
pub trait ProcessStore: Send + Sync {
    /// Appends `record.events` to `record.stream` (like
    /// [`AppendEvents::append`](crate::AppendEvents::append): `expected` is enforced, and
    /// events whose ids were appended before make a duplicate that writes nothing) and, in the
    /// same atomic step, applies `record.timeouts` and upserts `record.status`. All of it or
    /// none of it is written.
    async fn record(&self, process: &str, record: ProcessRecord) -> Result<AppendOutcome>;

    /// Fires up to `limit` timeouts of `process` due at or before `now` (the process clock,
    /// not the store's), earliest first. Firing one removes it and appends a
    /// [`TimeoutFired`](super::TimeoutFired) event to `"{process}_timer-{timeout id}"` with the
    /// timeout id as its event id, atomically: each timeout fires once however many callers
    /// race, and one removed by a cancel never fires.
    async fn fire_due(
        &self,
        process: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<FiredTimeout>>;

    /// When the earliest live timeout of `process` is due.
    async fn next_due(&self, process: &str) -> Result<Option<OffsetDateTime>>;

    /// The live timeouts of one instance, by key.
    async fn instance_timeouts(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Vec<ScheduledTimeout>>;

    /// One page of instances, ordered by instance id.
    async fn instances(&self, process: &str, query: &InstanceQuery) -> Result<Vec<InstanceRow>>;

    /// One instance's status row.
    async fn instance(&self, process: &str, instance: &str) -> Result<Option<InstanceRow>>;

    /// How many instances are in each state; `stuck` counts running instances that have not
    /// progressed since `now - stuck_after` and have no timeout due after `now`.
    async fn instance_counts(
        &self,
        process: &str,
        now: OffsetDateTime,
        stuck_after: Duration,
    ) -> Result<InstanceCounts>;
}

/// Every role a process manager's runner needs of one store: write users name this one bound.
pub trait ProcessManagerStore: ProjectionStore + EventStore + SnapshotStore + ProcessStore {}

impl<T> ProcessManagerStore for T where
    T: ProjectionStore + EventStore + SnapshotStore + ProcessStore
{
}

/// One atomic write of an instance: journal events, timeout changes, status.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ProcessRecord {
    /// The instance's stream, `"{TYPE}-{instance}"`.
    pub stream: StreamId,
    /// The version the stream must be at.
    pub expected: ExpectedVersion,
    /// The journal events (an input and its decision).
    pub events: Vec<NewEvent>,
    /// Timeout changes, at most one per key (netted by the caller).
    pub timeouts: Vec<TimeoutChange>,
    /// The instance's status after this record.
    pub status: InstanceRow,
}

impl ProcessRecord {
    /// A record, for the engine and store tests.
    pub fn new(
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        timeouts: Vec<TimeoutChange>,
        status: InstanceRow,
    ) -> Self {
        Self {
            stream,
            expected,
            events,
            timeouts,
            status,
        }
    }

    /// Checks that every time it holds (due times, the status's) has a UTC form within the
    /// calendar, as a store keeps them: [`in_utc`] for each. Every store checks this before it
    /// writes anything.
    ///
    /// # Errors
    ///
    /// [`Error::Process`](crate::Error::Process) for the first time without one.
    pub fn check_times(&self, process: &str) -> crate::Result<()> {
        let status = &self.status;
        let due = self.timeouts.iter().filter_map(|change| match change {
            TimeoutChange::Schedule { due_at, .. } => Some(*due_at),
            _ => None,
        });
        let times = [status.started_at, status.progressed_at]
            .into_iter()
            .chain(status.next_timeout_at)
            .chain(status.finished_at)
            .chain(due);
        for at in times {
            in_utc(process, at)?;
        }
        Ok(())
    }
}

/// `at` in UTC, as a store keeps a process's times. A time `time` holds may have no UTC form it
/// holds (`9999-12-31 23:30 -01:00` is past year 9999 in UTC): a process manager scheduling a
/// timeout at a time read from an event (`Action::at`) gets its process's error, not a panic of
/// the store's encoder.
///
/// # Errors
///
/// [`Error::Process`](crate::Error::Process) naming the time.
pub fn in_utc(process: &str, at: OffsetDateTime) -> crate::Result<OffsetDateTime> {
    at.checked_to_offset(time::UtcOffset::UTC).ok_or_else(|| {
        crate::Error::process(
            process,
            format!("the time {at} is past the calendar in UTC (years -9999 to 9999)"),
        )
    })
}

/// A change to an instance's timeouts.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TimeoutChange {
    /// Schedule (or replace) the timeout under `key`.
    Schedule {
        /// The key.
        key: String,
        /// The new timeout's id.
        timeout_id: Uuid,
        /// When it is due.
        due_at: OffsetDateTime,
        /// What it brings back.
        payload: Value,
    },
    /// Remove the timeout under `key` if it is still the one with `timeout_id` (a fired or
    /// replaced one is left alone).
    Cancel {
        /// The key.
        key: String,
        /// The id of the timeout to remove.
        timeout_id: Uuid,
    },
    /// Remove every timeout of the instance (it ended).
    CancelAll,
}

/// A timeout [`ProcessStore::fire_due`] fired.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FiredTimeout {
    /// The instance that scheduled it.
    pub instance: String,
    /// Its key.
    pub key: String,
    /// Its id (and the fired event's id).
    pub timeout_id: Uuid,
    /// When it was due.
    pub due_at: OffsetDateTime,
    /// The feed position of the fired event.
    pub position: Position,
}

impl FiredTimeout {
    /// A fired timeout, for store implementations.
    pub fn new(
        instance: String,
        key: String,
        timeout_id: Uuid,
        due_at: OffsetDateTime,
        position: Position,
    ) -> Self {
        Self {
            instance,
            key,
            timeout_id,
            due_at,
            position,
        }
    }
}

/// A live timeout, as the store keeps it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ScheduledTimeout {
    /// Its key.
    pub key: String,
    /// Its id.
    pub timeout_id: Uuid,
    /// When it is due.
    pub due_at: OffsetDateTime,
    /// What it brings back.
    pub payload: Value,
}

impl ScheduledTimeout {
    /// A scheduled timeout, for store implementations.
    pub fn new(key: String, timeout_id: Uuid, due_at: OffsetDateTime, payload: Value) -> Self {
        Self {
            key,
            timeout_id,
            due_at,
            payload,
        }
    }
}

/// One instance's status row: what operators list and count.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InstanceRow {
    /// The instance id.
    pub instance: String,
    /// Running, completed or failed.
    pub state: InstanceState,
    /// Its correlation id.
    pub correlation_id: Option<Uuid>,
    /// Its journal's version.
    pub version: Version,
    /// The last input, for people: `"event OrderPlaced"`, `"timeout shipping"`, `"accepted
    /// Reserve"`...
    pub last_input: String,
    /// Commands sent and not answered.
    pub pending_commands: u32,
    /// When its earliest live timeout is due.
    pub next_timeout_at: Option<OffsetDateTime>,
    /// When it started (process clock).
    pub started_at: OffsetDateTime,
    /// When it last recorded an input (process clock).
    pub progressed_at: OffsetDateTime,
    /// When it ended, if it has.
    pub finished_at: Option<OffsetDateTime>,
}

impl InstanceRow {
    /// A running instance's row that started and progressed at `at`; set the other fields
    /// with struct update syntax inside the crate, or the builder methods outside it.
    pub fn new(instance: impl Into<String>, version: Version, at: OffsetDateTime) -> Self {
        Self {
            instance: instance.into(),
            state: InstanceState::Running,
            correlation_id: None,
            version,
            last_input: String::new(),
            pending_commands: 0,
            next_timeout_at: None,
            started_at: at,
            progressed_at: at,
            finished_at: None,
        }
    }

    /// With this state; a final state sets `finished_at` to `progressed_at`.
    #[must_use]
    pub fn state(mut self, state: InstanceState) -> Self {
        self.state = state;
        self.finished_at = state.is_final().then_some(self.progressed_at);
        self
    }

    /// With this last input.
    #[must_use]
    pub fn last_input(mut self, last_input: impl Into<String>) -> Self {
        self.last_input = last_input.into();
        self
    }

    /// With this many pending commands.
    #[must_use]
    pub fn pending_commands(mut self, n: u32) -> Self {
        self.pending_commands = n;
        self
    }

    /// With this next timeout.
    #[must_use]
    pub fn next_timeout_at(mut self, at: Option<OffsetDateTime>) -> Self {
        self.next_timeout_at = at;
        self
    }

    /// With this correlation id.
    #[must_use]
    pub fn correlation_id(mut self, id: Option<Uuid>) -> Self {
        self.correlation_id = id;
        self
    }

    /// Started at `at` (progressed stays as set).
    #[must_use]
    pub fn started_at(mut self, at: OffsetDateTime) -> Self {
        self.started_at = at;
        self
    }

    /// `now - stuck_after`: a running instance that has not progressed since is stuck (unless
    /// a timeout is due later). `None` when that lies before the calendar's start: nothing is
    /// stuck then. Stores that filter in their database bind it, so every store draws the line
    /// at the same instant.
    pub fn stuck_cutoff(now: OffsetDateTime, stuck_after: Duration) -> Option<OffsetDateTime> {
        time::Duration::try_from(stuck_after)
            .ok()
            .and_then(|by| now.checked_sub(by))
    }

    /// Whether the row counts as stuck at `now`: running, no progress since
    /// `now - stuck_after`, and no timeout due after `now` (an overdue one counts: nobody fired
    /// it).
    ///
    /// A `stuck_after` reaching back before the calendar's start makes nothing stuck.
    pub fn is_stuck(&self, now: OffsetDateTime, stuck_after: Duration) -> bool {
        self.state == InstanceState::Running
            && Self::stuck_cutoff(now, stuck_after)
                .is_some_and(|cutoff| self.progressed_at < cutoff)
            && self.next_timeout_at.is_none_or(|due| due <= now)
    }
}

/// Which instances [`ProcessStore::instances`] lists.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum InstanceFilter {
    /// Every instance.
    All,
    /// Instances in one state.
    State(InstanceState),
    /// Running instances that are stuck at `now` (see [`InstanceRow::is_stuck`]).
    Stuck {
        /// The process clock's now.
        now: OffsetDateTime,
        /// How long without progress makes an instance stuck.
        stuck_after: Duration,
    },
}

/// A page request for [`ProcessStore::instances`].
///
/// ```
/// use cqrs_core::process::{InstanceQuery, InstanceState};
///
/// let page = InstanceQuery::state(InstanceState::Failed).after("order-41").limit(50);
/// assert_eq!(page.limit, 50);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InstanceQuery {
    /// Which instances.
    pub filter: InstanceFilter,
    /// Only instance ids after this one (the last id of the previous page).
    pub after: Option<String>,
    /// At most this many (default 100).
    pub limit: usize,
}

impl InstanceQuery {
    /// Every instance, first page.
    pub fn all() -> Self {
        Self {
            filter: InstanceFilter::All,
            after: None,
            limit: 100,
        }
    }

    /// Instances in `state`.
    pub fn state(state: InstanceState) -> Self {
        Self {
            filter: InstanceFilter::State(state),
            ..Self::all()
        }
    }

    /// Stuck instances at `now`.
    pub fn stuck(now: OffsetDateTime, stuck_after: Duration) -> Self {
        Self {
            filter: InstanceFilter::Stuck { now, stuck_after },
            ..Self::all()
        }
    }

    /// After this instance id.
    #[must_use]
    pub fn after(mut self, instance: impl Into<String>) -> Self {
        self.after = Some(instance.into());
        self
    }

    /// At most `limit` rows.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Whether `row` passes the filter (stores that filter in memory use it).
    pub fn matches(&self, row: &InstanceRow) -> bool {
        let passes = match &self.filter {
            InstanceFilter::All => true,
            InstanceFilter::State(state) => row.state == *state,
            InstanceFilter::Stuck { now, stuck_after } => row.is_stuck(*now, *stuck_after),
        };
        passes
            && self
                .after
                .as_deref()
                .is_none_or(|after| row.instance.as_str() > after)
    }
}

/// How many instances of a process are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceCounts {
    /// Running (stuck ones included).
    pub running: u64,
    /// Completed.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
    /// Running and stuck.
    pub stuck: u64,
}

impl InstanceCounts {
    /// Counts, for store implementations.
    pub fn new(running: u64, completed: u64, failed: u64, stuck: u64) -> Self {
        Self {
            running,
            completed,
            failed,
            stuck,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::{InstanceQuery, InstanceRow};
    use crate::Version;

    #[test]
    fn a_stuck_after_longer_than_the_calendar_makes_nothing_stuck_and_panics_not() {
        let start = OffsetDateTime::UNIX_EPOCH;
        let row = InstanceRow::new("1", Version::new(1), start);
        let later = start + Duration::from_secs(3600);
        assert!(row.is_stuck(later, Duration::from_secs(60)));
        assert!(!row.is_stuck(later, Duration::MAX));
        assert!(!InstanceQuery::stuck(later, Duration::MAX).matches(&row));
    }
}
