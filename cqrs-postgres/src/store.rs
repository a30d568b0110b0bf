//! [`PgEventStore`]: construction, migration and operational queries.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

use crate::group::Committer;
use crate::notify::Notifier;
use crate::schema::Queries;
use crate::xid::XidGuard;
use crate::{migrate, GroupCommit, PgError, PgSchema};

/// The PostgreSQL event store. Implements every store role trait of `cqrs-core`
/// ([`AppendEvents`](cqrs_core::AppendEvents), [`ReadStream`](cqrs_core::ReadStream),
/// [`ReadAll`](cqrs_core::ReadAll), [`SnapshotStore`](cqrs_core::SnapshotStore),
/// [`CheckpointStore`](cqrs_core::CheckpointStore)).
///
/// Appends take one statement (one round trip); the global feed is gap-safe: ordered by the
/// writing transaction and a sequence, it only hands out events of transactions older than every
/// transaction still open. Cloning is cheap and clones share the pool.
///
/// ```no_run
/// use cqrs_postgres::{PgEventStore, PgSchema};
///
/// # async fn demo() -> Result<(), cqrs_postgres::PgError> {
/// let store = PgEventStore::connect("postgres://localhost/app").await?
///     .in_schema(PgSchema::new("billing")?);
/// store.migrate().await?; // explicit and idempotent: run it at startup
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PgEventStore {
    pub(crate) pool: PgPool,
    pub(crate) schema: PgSchema,
    pub(crate) queries: Arc<Queries>,
    pub(crate) max_payload_bytes: usize,
    pub(crate) notifier: Arc<Notifier>,
    pub(crate) group: Option<Arc<Committer>>,
    pub(crate) xid: Arc<XidGuard>,
}

/// What holds the global feed back right now.
///
/// Feed readers only see events of transactions older than the oldest transaction still open in
/// the cluster, so one long transaction (any writer, even outside this store) delays every
/// projection until it ends. Watch these figures.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FeedHorizon {
    /// How long the oldest open transaction holding an id has been running, if any.
    pub oldest_open_transaction: Option<Duration>,
    /// Committed events that readers cannot see yet because of it.
    pub waiting_events: u64,
}

impl PgEventStore {
    /// A store on `pool`, in schema `cqrs`, refusing payloads over
    /// [`DEFAULT_MAX_PAYLOAD_BYTES`](cqrs_core::DEFAULT_MAX_PAYLOAD_BYTES). Does not touch the
    /// database: call [`migrate`](Self::migrate) to create the tables.
    pub fn new(pool: PgPool) -> Self {
        let schema = PgSchema::default();
        Self {
            pool,
            queries: Arc::new(Queries::new(&schema)),
            xid: Arc::new(XidGuard::new(&schema)),
            schema,
            max_payload_bytes: cqrs_core::DEFAULT_MAX_PAYLOAD_BYTES,
            notifier: Arc::default(),
            group: None,
        }
    }

    /// Connects a pool of 10 connections to `url` and makes a store on it.
    pub async fn connect(url: &str) -> Result<Self, PgError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        Ok(Self::new(pool))
    }

    /// Keeps the tables in `schema` instead of `cqrs`.
    #[must_use]
    pub fn in_schema(mut self, schema: PgSchema) -> Self {
        self.queries = Arc::new(Queries::new(&schema));
        self.xid = Arc::new(XidGuard::new(&schema));
        self.schema = schema;
        self.notifier = Arc::default();
        self.group = self
            .group
            .map(|group| Arc::new(Committer::new(group.options())));
        self
    }

    /// Groups concurrent appends to different streams into shared transactions: see
    /// [`GroupCommit`]. Under many concurrent writers this multiplies append throughput (one
    /// statement, commit and WAL flush per group instead of per append); an append's outcome
    /// and guarantees do not change, and a lone writer waits for no one. Applies to appends
    /// through [`AppendEvents::append`](cqrs_core::AppendEvents::append) with an exact
    /// expected version and no command id (every [`Repository`](cqrs_core::Repository)
    /// command without one); the others append on their own.
    ///
    /// Appends to one stream from this store go through one lane, so they never refuse each
    /// other's group; an append from elsewhere racing for the same version can make a group's
    /// statement fail, and then each of its appends is retried on its own.
    #[must_use]
    pub fn with_group_commit(mut self, options: GroupCommit) -> Self {
        self.group = Some(Arc::new(Committer::new(options)));
        self
    }

    /// Refuses payloads larger than `bytes` of JSON.
    #[must_use]
    pub fn with_max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// Creates or upgrades the schema's tables. Idempotent, versioned, safe to run from several
    /// processes at once. Returns the migration versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i32>, PgError> {
        let applied = migrate::migrate(&self.pool, &self.schema).await?;
        self.xid.check(&self.pool).await?;
        Ok(applied)
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema.
    pub fn schema(&self) -> &PgSchema {
        &self.schema
    }

    /// The `NOTIFY` channel signalled after appends commit (no payload), for `LISTEN`. Several
    /// appends in quick succession may share one notification.
    pub fn channel(&self) -> String {
        self.schema.channel()
    }

    /// What holds the feed back now: see [`FeedHorizon`].
    pub async fn feed_horizon(&self) -> Result<FeedHorizon, PgError> {
        let row = sqlx::query(&self.queries.feed_horizon)
            .fetch_one(&self.pool)
            .await?;
        let oldest: Option<f64> = row.try_get("oldest_open_seconds")?;
        let waiting: i64 = row.try_get("waiting_events")?;
        Ok(FeedHorizon {
            oldest_open_transaction: oldest
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64),
            waiting_events: u64::try_from(waiting).unwrap_or(0),
        })
    }
}
