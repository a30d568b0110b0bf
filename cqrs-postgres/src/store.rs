//! [`PgEventStore`]: construction, migration and operational queries.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use crate::bounded::Bounded;
use crate::connect;
use crate::group::Committer;
use crate::notify::Notifier;
use crate::schema::Queries;
use crate::signal::{Hub, PgFeedSignal};
use crate::xid::XidGuard;
use crate::{migrate, EventJson, GroupCommit, PgError, PgSchema};

/// The PostgreSQL event store. Implements every store role trait of `cqrs-core`
/// ([`AppendEvents`](cqrs_core::AppendEvents), [`ReadStream`](cqrs_core::ReadStream),
/// [`ReadAll`](cqrs_core::ReadAll), [`SnapshotStore`](cqrs_core::SnapshotStore),
/// [`CheckpointStore`](cqrs_core::CheckpointStore), the projection runner's leases and dead
/// letters, and process managers' [`ProcessStore`](cqrs_core::process::ProcessStore)).
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
///     .with_schema(PgSchema::new("billing")?);
/// store.migrate().await?; // explicit and idempotent: run it at startup
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PgEventStore {
    pub(crate) pool: PgPool,
    pub(crate) schema: PgSchema,
    pub(crate) event_json: EventJson,
    pub(crate) queries: Arc<Queries>,
    pub(crate) max_payload_bytes: usize,
    pub(crate) max_append_bytes: usize,
    pub(crate) notifier: Arc<Notifier>,
    pub(crate) signal: Arc<Hub>,
    pub(crate) group: Option<Arc<Committer>>,
    pub(crate) xid: Arc<XidGuard>,
    pub(crate) answer_timeout: Duration,
}

/// The default bound on one append, in bytes: 16 MiB of payloads and metadata (headers
/// included) in all, as every store's. See [`PgEventStore::with_max_append_bytes`].
pub const DEFAULT_MAX_APPEND_BYTES: usize = cqrs_core::backend::DEFAULT_MAX_APPEND_BYTES;

/// The default of [`PgEventStore::with_answer_timeout`]: 30 seconds.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

impl PgEventStore {
    /// A store on `pool`, in schema `cqrs`, refusing payloads over
    /// [`DEFAULT_MAX_PAYLOAD_BYTES`](cqrs_core::backend::DEFAULT_MAX_PAYLOAD_BYTES) and appends over
    /// [`DEFAULT_MAX_APPEND_BYTES`], grouping concurrent appends with the default
    /// [`GroupCommit`] (see [`with_group_commit`](Self::with_group_commit); a writer alone
    /// appends as without it). Does not touch the database: call [`migrate`](Self::migrate)
    /// to create the tables.
    pub fn new(pool: PgPool) -> Self {
        let schema = PgSchema::default();
        let event_json = EventJson::default();
        Self {
            queries: Arc::new(Queries::new(&schema, event_json)),
            event_json,
            signal: Arc::new(Hub::new(
                pool.clone(),
                schema.channel(),
                DEFAULT_ANSWER_TIMEOUT,
            )),
            xid: Arc::new(XidGuard::new(&schema)),
            schema,
            max_payload_bytes: cqrs_core::backend::DEFAULT_MAX_PAYLOAD_BYTES,
            max_append_bytes: DEFAULT_MAX_APPEND_BYTES,
            notifier: Arc::default(),
            group: Some(Arc::new(Committer::new(GroupCommit::default()))),
            answer_timeout: DEFAULT_ANSWER_TIMEOUT,
            pool,
        }
    }

    /// Connects a pool of 10 connections to `url` and makes a store on it. The pool is made
    /// from [`pool_options`](crate::pool_options): a connection is checked with a round trip
    /// before use only once it sat idle for a second.
    ///
    /// A first connection is made at once, so a wrong URL fails here, within seconds, not on
    /// the first request: a URL that does not parse or lacks the `postgres://` scheme is
    /// [`PgError::InvalidUrl`]; an address that refuses, an unknown host, no answer within 5
    /// seconds, or a refused login is [`PgError::Connect`], whose message names the address
    /// and the cause. Neither shows the password.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// match cqrs_postgres::PgEventStore::connect("postgres://app:secret@127.0.0.1:1/app").await {
    ///     Ok(_) => {}
    ///     // "could not connect to PostgreSQL at 127.0.0.1:1: error communicating with
    ///     // database: Connection refused (os error 111)"
    ///     Err(error) => eprintln!("{error}"),
    /// }
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, PgError> {
        Ok(Self::new(connect::pool(url, 10).await?))
    }

    /// Keeps the tables in `schema` instead of `cqrs`.
    #[must_use]
    pub fn with_schema(mut self, schema: PgSchema) -> Self {
        self.queries = Arc::new(Queries::new(&schema, self.event_json));
        self.xid = Arc::new(XidGuard::new(&schema));
        self.schema = schema;
        self.notifier = Arc::default();
        self.signal = self.renewed_signal();
        self.group = self.group.map(Committer::renewed);
        self
    }

    /// Stores each event's payload and metadata as `event_json` ([`EventJson::Jsonb`] by
    /// default). [`migrate`](Self::migrate) creates the events table with that type, and
    /// checks that an existing one has it: [`PgError::EventJsonMismatch`] if not. A store
    /// that never runs `migrate` must be configured as its table is: on the other type, a new
    /// stream's batch of 64 events or more (sent by binary `COPY`, in the column's binary
    /// form) fails with the database's error and writes nothing.
    ///
    /// [`EventJson::Json`] spares PostgreSQL the parse into `jsonb`'s binary form on every
    /// append and the print back to text on every read (a load, the feed). On a hot stream's
    /// load of about 500 events the print is a fifth of the server's work (`pg-bench`, see
    /// `benchmarks/README.md`). What it costs: `jsonb`'s operators and GIN indexes in your own
    /// SQL over the events table need a cast. The store looks inside only for an operator's
    /// query of one correlation's events (`metadata->>'correlation_id'`, which `json` has
    /// too, parsing each row's text as it scans).
    ///
    /// ```no_run
    /// use cqrs_postgres::{EventJson, PgEventStore};
    ///
    /// # async fn demo() -> Result<(), cqrs_postgres::PgError> {
    /// let store = PgEventStore::connect("postgres://localhost/app").await?
    ///     .with_event_json(EventJson::Json);
    /// store.migrate().await?; // a new events table stores json
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_event_json(mut self, event_json: EventJson) -> Self {
        self.event_json = event_json;
        self.queries = Arc::new(Queries::new(&self.schema, event_json));
        self.group = self.group.map(Committer::renewed);
        self
    }

    /// Groups concurrent appends to different streams into shared transactions as `options`
    /// say (a new store groups with [`GroupCommit::default`]; see
    /// [`without_group_commit`](Self::without_group_commit)). Under many concurrent writers
    /// this multiplies append throughput (one statement, commit and WAL flush per group
    /// instead of per append); an append's outcome and guarantees do not change, and a writer
    /// with fewer than [`GroupCommit::alone_below`] others in flight, or with a batch of
    /// [`GroupCommit::alone_from_events`] events or more, appends on its own. Applies to appends
    /// through [`AppendEvents::append`](cqrs_core::AppendEvents::append) with an exact
    /// expected version and no command id (every [`Repository`](cqrs_core::Repository)
    /// command without one); the others append on their own.
    ///
    /// Appends to one stream from this store go through one lane, so they never refuse each
    /// other's group; an append from elsewhere racing for the same version can make a group's
    /// statement fail, and then each of its appends is retried on its own.
    ///
    /// A grouped append waits at most about [`GroupCommit::timeout`] (twice, if its group's
    /// statement timed out and it is stuck itself, e.g. on a version an open
    /// [`append_in`](Self::append_in) transaction holds); then it fails with
    /// [`PgError::AppendTimedOut`], having written nothing. On a network gone silent, where no
    /// answer comes, an append its lane took waits at most twice the lane's answer bound (see
    /// [`with_answer_timeout`](Self::with_answer_timeout)), then fails with
    /// [`PgError::NoAnswer`], perhaps written.
    #[must_use]
    pub fn with_group_commit(mut self, options: GroupCommit) -> Self {
        self.group = Some(Arc::new(Committer::new(options)));
        self
    }

    /// Writes every append on its own, each in its own transaction, as PostgreSQL's
    /// concurrent commits allow, and reads every load on its own. Unlike a grouped append, a
    /// plain one never waits for a lane, so [`GroupCommit::timeout`] does not bound it: blocked
    /// on a version an open transaction holds, it waits as long as the server lets it, up to
    /// the [answer timeout](Self::with_answer_timeout).
    /// `pg-bench`'s workload 6 (single-event appends, `benchmarks/README.md`) measured the
    /// default grouping at 0.97x of this with one or two writers (the same path, within the
    /// noise) and 2x to 7x from four to 128.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), cqrs_postgres::PgError> {
    /// let store = cqrs_postgres::PgEventStore::connect("postgres://localhost/app").await?
    ///     .without_group_commit();
    /// assert_eq!(store.group_commit(), None);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn without_group_commit(mut self) -> Self {
        self.group = None;
        self
    }

    /// How this store groups appends: `None` after
    /// [`without_group_commit`](Self::without_group_commit).
    pub fn group_commit(&self) -> Option<GroupCommit> {
        self.group.as_ref().map(|group| group.options())
    }

    /// Refuses payloads larger than `bytes` of JSON.
    #[must_use]
    pub fn with_max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// Refuses appends larger than `bytes` in all (default [`DEFAULT_MAX_APPEND_BYTES`]): the
    /// JSON of every event's payload and metadata, headers included. Such an append fails with
    /// [`cqrs_core::Error::AppendTooLarge`] (invalid input) and writes nothing.
    #[must_use]
    pub fn with_max_append_bytes(mut self, bytes: usize) -> Self {
        self.max_append_bytes = bytes;
        self
    }

    /// How long a call waits for PostgreSQL's answers (default [`DEFAULT_ANSWER_TIMEOUT`]).
    ///
    /// A network can go silent without closing anything (a failover that left the old address
    /// dead, a dropped NAT mapping, a host gone without a word), and then no answer comes, not
    /// even the server's `statement_timeout`. A call that got no answer in time fails with
    /// [`PgError::NoAnswer`] (transient; a write may or may not have landed), and its
    /// connection is dropped rather than pooled. It bounds each call of the store's traits
    /// (appends, loads, the feed, checkpoints, leases, snapshots, dead letters, process
    /// managers' state): a call of one statement or a few short ones as a whole; a replay, or
    /// a batch of timeouts firing, as long as each row or statement comes within it. Set it
    /// well above the longest statement you expect (a page of the feed, an append waiting on
    /// a lock). A call may also wait for a pooled connection first (the pool's acquire
    /// timeout), and a grouped append for its group: its lane waits for a statement at least
    /// twice [`GroupCommit::timeout`] and a second (the server's `statement_timeout` ends a
    /// live statement first), and an append in a group stops waiting after twice that (the
    /// statement, then the lookup of its events).
    ///
    /// It also bounds the feed signal's `LISTEN` connection, which only listens: whenever it
    /// has heard nothing for this long it is asked a question, and with no answer within this
    /// long either, it is replaced (see [`PgFeedSignal`]).
    ///
    /// Set it when you build the store: the group commit lanes, the notifier and the feed
    /// signal, shared by the store's clones, keep the value they started with. Migrations, the transaction id
    /// repair and the operational queries are not bounded; nor is an
    /// [`append_in`](Self::append_in), whose transaction is yours.
    ///
    /// ```
    /// # fn demo(pool: sqlx::PgPool) {
    /// use std::time::Duration;
    ///
    /// let store = cqrs_postgres::PgEventStore::new(pool).with_answer_timeout(Duration::from_secs(10));
    /// assert_eq!(store.answer_timeout(), Duration::from_secs(10));
    /// # }
    /// ```
    #[must_use]
    pub fn with_answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = timeout.max(Duration::from_millis(1));
        self.signal = self.renewed_signal();
        self
    }

    /// A feed signal hub of its own, for the store's schema and answer timeout.
    fn renewed_signal(&self) -> Arc<Hub> {
        Arc::new(Hub::new(
            self.pool.clone(),
            self.schema.channel(),
            self.answer_timeout,
        ))
    }

    /// How long a call waits for PostgreSQL's answers: see
    /// [`with_answer_timeout`](Self::with_answer_timeout).
    pub fn answer_timeout(&self) -> Duration {
        self.answer_timeout
    }

    /// A connection of the pool whose calls wait at most the answer timeout.
    pub(crate) async fn bounded(&self) -> Result<Bounded, sqlx::Error> {
        Bounded::acquire(&self.pool, self.answer_timeout).await
    }

    /// `call` on a connection of the pool, waiting at most the answer timeout.
    pub(crate) async fn call<T>(
        &self,
        call: impl AsyncFnOnce(&mut PgConnection) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        self.bounded().await?.run(call).await
    }

    /// Asks for a `pg_notify` on the store's channel soon (see [`Notifier`]).
    pub(crate) fn notify_listeners(&self) {
        (self.notifier).signal(&self.pool, self.answer_timeout, &self.schema.channel());
    }

    /// Checks the stored transaction ids once per store (see [`XidGuard::ensure`]), on a
    /// bounded connection. A check that cannot run is not an answer: the caller's own
    /// statement will report what is wrong.
    pub(crate) async fn ensure_xids(&self) -> Result<(), PgError> {
        if self.xid.is_checked() {
            return Ok(());
        }
        self.suspect_xids().await
    }

    /// Checks the stored transaction ids again (see [`XidGuard::suspect`]), on a bounded
    /// connection: a typed [`PgError::TransactionIdsAhead`] if they moved, else nothing.
    pub(crate) async fn suspect_xids(&self) -> Result<(), PgError> {
        match self.call(async |conn| self.xid.suspect(conn).await).await {
            Err(error @ PgError::TransactionIdsAhead { .. }) => Err(error),
            _ => Ok(()),
        }
    }

    /// Creates or upgrades the schema's tables. Idempotent, versioned, safe to run from several
    /// processes at once. Returns the migration versions it applied.
    ///
    /// A migration that alters a table waits at most 5 s for a lock another session holds on
    /// it (a `pg_dump`, a transaction left open), then fails with a transient error (retry
    /// later): meanwhile the store's appends and reads of that table wait behind it.
    ///
    /// A store at the latest version is left as it is, asking for no privilege to create: an
    /// application whose role may only use the schema and read and write its tables can call
    /// it at every start, once the schema's owner has migrated it (`cqrs migrate`). A store
    /// behind then fails here, by name, rather than at the first statement that needs what a
    /// migration brings.
    pub async fn migrate(&self) -> Result<Vec<i32>, PgError> {
        let applied = migrate::migrate(&self.pool, &self.schema, self.event_json).await?;
        self.event_json.check(&self.pool, &self.schema).await?;
        self.xid.check(&self.pool).await?;
        Ok(applied)
    }

    /// How the store's events table stores payload and metadata; `None` before
    /// [`migrate`](Self::migrate) created it. A tool that works on stores it did not create
    /// (an operations CLI, say) configures [`with_event_json`](Self::with_event_json) from it.
    pub async fn stored_event_json(&self) -> Result<Option<EventJson>, PgError> {
        EventJson::stored(&self.pool, &self.schema, self.event_json).await
    }

    /// The type it stores payload and metadata as ([`with_event_json`](Self::with_event_json)).
    pub fn event_json(&self) -> EventJson {
        self.event_json
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
}

impl PgEventStore {
    /// The wake-up signal for this store's feed, for
    /// [`ProjectionRunner::with_signal`](cqrs_core::projection::ProjectionRunner::with_signal).
    /// Every signal of a store (and of its clones) shares one `LISTEN` connection, its own,
    /// beside the store's pool.
    pub fn feed_signal(&self) -> PgFeedSignal {
        PgFeedSignal::new(Arc::clone(&self.signal))
    }
}
