//! [`Overview`]: every reader of the feed the store knows of, with its progress.

use cqrs_core::projection::{BreakerState, Partitions};
use cqrs_core::Position;
use cqrs_postgres::{PgBreaker, PgLease, PgSubscriber};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Every projection, process manager, rebuild and bus consumer the store knows of, at one
/// moment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Overview {
    /// When it was read (this machine's clock).
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: OffsetDateTime,
    /// The last position a feed reader can see now.
    #[serde(with = "super::serde_pos")]
    pub head: Position,
    /// One row per reader, by name.
    pub subscribers: Vec<SubscriberView>,
}

/// What kind of reader a name is, from how the framework names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubscriberKind {
    /// A projection.
    Projection,
    /// A process manager's projection (`process:{TYPE}`).
    Process,
    /// A search read model's rebuild (`{name}@v{n}#{uuid}`).
    Rebuild,
    /// An event-bus consumer (known by its parked messages).
    Consumer,
    /// One partition of a partitioned projection (`{name}/partitions/{count}/{index}`, or
    /// `{name}/partitions/by-key/{count}/{index}`).
    Partition,
    /// A worker of a partitioned projection, by its member lease (`{name}/members/{worker}`).
    Worker,
}

impl SubscriberKind {
    /// The kind of the reader named `name`.
    ///
    /// ```
    /// use cqrs_admin::inspect::SubscriberKind;
    ///
    /// assert_eq!(SubscriberKind::of("orders", 0, true), SubscriberKind::Projection);
    /// assert_eq!(SubscriberKind::of("process:order_saga", 0, true), SubscriberKind::Process);
    /// assert_eq!(SubscriberKind::of("orders/partitions/8/3", 0, true), SubscriberKind::Partition);
    /// assert_eq!(SubscriberKind::of("orders/partitions/by-key/8/3", 0, true), SubscriberKind::Partition);
    /// assert_eq!(SubscriberKind::of("orders/members/worker-a", 0, false), SubscriberKind::Worker);
    /// assert_eq!(SubscriberKind::of("orders/partitions/x/3", 0, true), SubscriberKind::Projection);
    /// ```
    pub fn of(name: &str, bus_dead_letters: u64, has_checkpoint: bool) -> Self {
        if name.starts_with("process:") {
            SubscriberKind::Process
        } else if Partitions::parse_name(name).is_some() {
            SubscriberKind::Partition
        } else if Partitions::parse_member(name).is_some() && !has_checkpoint {
            SubscriberKind::Worker
        } else if name.contains("@v") && name.contains('#') {
            SubscriberKind::Rebuild
        } else if bus_dead_letters > 0 && !has_checkpoint {
            SubscriberKind::Consumer
        } else {
            SubscriberKind::Projection
        }
    }

    /// Its name in tables: `projection`, `process`, `rebuild`, `consumer`, `partition`,
    /// `worker`.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberKind::Projection => "projection",
            SubscriberKind::Process => "process",
            SubscriberKind::Rebuild => "rebuild",
            SubscriberKind::Consumer => "consumer",
            SubscriberKind::Partition => "partition",
            SubscriberKind::Worker => "worker",
        }
    }
}

/// Whether a worker leads a reader now, as its lease says (its breaker is in
/// [`SubscriberView::breaker`]; its retries live in its process, in its `ProjectionStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeaderState {
    /// A worker holds an unexpired lease.
    Leading,
    /// The lease expired or was released: no worker leads it now.
    NoLeader,
    /// It never took a lease (a runner without a lease store, a rebuild, a consumer).
    Unleased,
}

impl LeaderState {
    /// Its name in tables: `leading`, `no leader`, `-`.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaderState::Leading => "leading",
            LeaderState::NoLeader => "no leader",
            LeaderState::Unleased => "-",
        }
    }
}

/// One reader's progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SubscriberView {
    /// Its name (checkpoint, lease and dead letters are kept under it).
    pub name: String,
    /// What it is.
    pub kind: SubscriberKind,
    /// Its checkpoint; `None` when it never saved one.
    #[serde(with = "super::serde_pos::option")]
    pub checkpoint: Option<Position>,
    /// When the checkpoint was last saved.
    #[serde(with = "time::serde::rfc3339::option")]
    pub checkpoint_updated_at: Option<OffsetDateTime>,
    /// Visible events past its checkpoint (whatever its filter: an upper bound for a
    /// filtered projection), counted up to the store's limit (PostgreSQL's
    /// `LAG_COUNT_LIMIT`, 100,000): a reader further behind shows the limit
    /// ([`lag_label`](Self::lag_label) says `100000+`).
    pub lag_events: u64,
    /// When the oldest of those was recorded; `None` when caught up.
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_unapplied_at: Option<OffsetDateTime>,
    /// How far behind it is in time: seconds from the oldest unapplied event to `taken_at`;
    /// 0 when caught up.
    pub lag_seconds: f64,
    /// Its lease, if one was ever taken.
    pub lease: Option<LeaseView>,
    /// Whether a worker leads it now (from the lease).
    pub leader: LeaderState,
    /// Events parked as its dead letters (plus bus messages parked for a consumer).
    pub dead_letters: u64,
    /// Its runner's circuit breaker as the runner last recorded it (`None`: never recorded).
    pub breaker: Option<BreakerView>,
}

/// A runner's circuit breaker as it recorded it when it changed. A runner that died leaves
/// its last record: read it with [`SubscriberView::leader`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BreakerView {
    /// `closed`, `open` or `half-open`.
    pub state: String,
    /// The transient error that opened it, while it is not closed.
    pub last_error: Option<String>,
    /// When the runner recorded it.
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
}

impl BreakerView {
    fn new(breaker: &PgBreaker) -> Self {
        Self {
            state: breaker.state.as_str().to_owned(),
            last_error: breaker.last_error.clone(),
            changed_at: breaker.changed_at,
        }
    }

    /// Whether the sink behind it is failing (open or half-open).
    pub fn is_tripped(&self) -> bool {
        self.state != BreakerState::Closed.as_str()
    }
}

/// A lease: who leads, with which fencing epoch, until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LeaseView {
    /// The holder's id.
    pub owner: String,
    /// The fencing epoch (grows with every new holder).
    pub epoch: u64,
    /// When it expires unless renewed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Whether it was unexpired when read (by this machine's clock).
    pub live: bool,
}

impl LeaseView {
    fn new(lease: &PgLease, now: OffsetDateTime) -> Self {
        Self {
            owner: lease.owner.clone(),
            epoch: lease.epoch,
            expires_at: lease.expires_at,
            live: lease.expires_at > now,
        }
    }
}

impl SubscriberView {
    /// [`lag_events`](Self::lag_events) for a person: `100000+` at the store's count limit,
    /// where the reader may be further behind.
    ///
    /// ```
    /// # let view: cqrs_admin::inspect::SubscriberView = serde_json::from_value(serde_json::json!({
    /// #   "name": "orders", "kind": "projection", "checkpoint": null, "checkpoint_updated_at": null,
    /// #   "lag_events": 100000, "oldest_unapplied_at": null, "lag_seconds": 0.0, "lease": null,
    /// #   "leader": "unleased", "dead_letters": 0, "breaker": null })).unwrap();
    /// assert_eq!(view.lag_label(), "100000+");
    /// ```
    pub fn lag_label(&self) -> String {
        if self.lag_events >= cqrs_postgres::LAG_COUNT_LIMIT {
            format!("{}+", cqrs_postgres::LAG_COUNT_LIMIT)
        } else {
            self.lag_events.to_string()
        }
    }

    pub(crate) fn new(row: &PgSubscriber, now: OffsetDateTime) -> Self {
        let lag_seconds = row
            .oldest_unapplied_at
            .map(|oldest| (now - oldest).as_seconds_f64().max(0.0))
            .unwrap_or(0.0);
        Self {
            name: row.name.clone(),
            kind: SubscriberKind::of(&row.name, row.bus_dead_letters, row.checkpoint.is_some()),
            checkpoint: row.checkpoint,
            checkpoint_updated_at: row.checkpoint_updated_at,
            lag_events: row.lag_events,
            oldest_unapplied_at: row.oldest_unapplied_at,
            lag_seconds,
            lease: row.lease.as_ref().map(|lease| LeaseView::new(lease, now)),
            leader: match &row.lease {
                Some(lease) if lease.expires_at > now => LeaderState::Leading,
                Some(_) => LeaderState::NoLeader,
                None => LeaderState::Unleased,
            },
            dead_letters: row.dead_letters + row.bus_dead_letters,
            breaker: row.breaker.as_ref().map(BreakerView::new),
        }
    }
}

/// A position for people: `major/minor`, or `major/end` for a position past every event of
/// transaction `major` (where a reader moves after rows it examined and skipped: its minor
/// part is the largest there is). JSON keeps the numbers.
///
/// ```
/// use cqrs_admin::inspect::position_label;
/// use cqrs_core::Position;
///
/// assert_eq!(position_label(Position::from_parts(812, 3)), "812/3");
/// assert_eq!(position_label(Position::from_parts(156998, i64::MAX as u64)), "156998/end");
/// ```
pub fn position_label(position: Position) -> String {
    let (major, minor) = position.parts();
    if minor >= i64::MAX.unsigned_abs() {
        format!("{major}/end")
    } else {
        position.to_string()
    }
}

impl Overview {
    /// The reader named `name`.
    pub fn subscriber(&self, name: &str) -> Option<&SubscriberView> {
        self.subscribers.iter().find(|s| s.name == name)
    }
}
