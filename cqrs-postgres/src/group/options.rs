//! [`GroupCommit`]: how appends are grouped.

use std::time::Duration;

/// How appends are grouped; see [`PgEventStore::with_group_commit`](crate::PgEventStore::with_group_commit).
/// A new store groups with [`GroupCommit::default`];
/// [`without_group_commit`](crate::PgEventStore::without_group_commit) turns grouping off.
///
/// ```
/// use cqrs_postgres::GroupCommit;
///
/// // Group every append, even a lone writer's (what the group tests do).
/// let always = GroupCommit::default().alone_below(0);
/// assert_ne!(always, GroupCommit::default());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCommit {
    pub(super) lanes: usize,
    pub(super) max_appends: usize,
    pub(super) max_events: usize,
    pub(super) max_bytes: usize,
    pub(super) timeout: Duration,
    pub(super) alone_below: usize,
    pub(super) alone_from_events: usize,
    pub(super) loads: bool,
}

/// The default of [`GroupCommit::alone_below`].
const ALONE_BELOW: usize = 2;

/// The default of [`GroupCommit::alone_from_events`].
const ALONE_FROM_EVENTS: usize = 16;

impl Default for GroupCommit {
    /// One lane; groups of at most 64 appends, 4,096 events and 8 MiB; a timeout of 5
    /// seconds; an append with fewer than 2 others in flight, or of 16 events or more, written
    /// alone; loads grouped too.
    fn default() -> Self {
        Self {
            lanes: 1,
            max_appends: 64,
            max_events: 4_096,
            max_bytes: 8 << 20,
            timeout: Duration::from_secs(5),
            alone_below: ALONE_BELOW,
            alone_from_events: ALONE_FROM_EVENTS,
            loads: true,
        }
    }
}

impl GroupCommit {
    /// Appends are written by `lanes` statements at a time at most (at least 1, at most
    /// [`MAX_LANES`](Self::MAX_LANES)). Each lane
    /// holds a pool connection while it has work.
    ///
    /// One lane makes the largest groups and was fastest in `pg-bench` on a 2-core machine
    /// (many streams, 16 clients, the state cache: 1 lane 16.4k to 17.0k commands/s, 2 lanes
    /// 14.5k, 4 lanes 12.2k to 12.5k): each group is a commit and a WAL flush of its own, and a
    /// statement's fixed cost is shared by fewer appends. A server with many cores and many
    /// clients may gain from a few more.
    #[must_use]
    pub fn lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes.clamp(1, Self::MAX_LANES);
        self
    }

    /// The most [`lanes`](Self::lanes): each is a task and a connection of its own.
    pub const MAX_LANES: usize = 1024;

    /// A group holds at most `appends` appends (at least 1).
    #[must_use]
    pub fn max_appends(mut self, appends: usize) -> Self {
        self.max_appends = appends.max(1);
        self
    }

    /// A group holds at most `events` events, unless its first append alone has more.
    #[must_use]
    pub fn max_events(mut self, events: usize) -> Self {
        self.max_events = events.max(1);
        self
    }

    /// A group holds at most `bytes` bytes of payloads and metadata (8 MiB by default), unless
    /// its first append alone has more: so one statement never binds thousands of large
    /// payloads at once.
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }

    /// An append that finds fewer than `others` other appends in flight is written on its
    /// own, as without group commit; from `others` on, it joins a group (0: always). Grouping
    /// pays when writers queue: one lane writes one group at a time, so with a writer or two
    /// it only adds a hop and takes away PostgreSQL's own concurrent commits.
    #[must_use]
    pub fn alone_below(mut self, others: usize) -> Self {
        self.alone_below = others;
        self
    }

    /// An append of `events` events or more is written on its own, as without group commit
    /// (16 by default, at least 1). A batch's cost is its rows more than its transaction, and
    /// a lane writes one group at a time on one connection, where batches written alone run on
    /// as many backends as there are writers (and a new stream's batch of 64 events or more
    /// goes by binary `COPY`). In `pg-bench`'s workload 2 (16 clients, each batch to a new
    /// stream), every batch grouped ran at 1.3x to 1.6x the same batches alone with 10 events
    /// a batch, 0.95x with 20 and 30, 0.67x with 60 and 0.47x with 100.
    #[must_use]
    pub fn alone_from_events(mut self, events: usize) -> Self {
        self.alone_from_events = events.max(1);
        self
    }

    /// Whether loads are grouped too (on by default): a stream's load from its first version
    /// ([`ReadStream::replay`](cqrs_core::ReadStream::replay), what a `Repository` reads when
    /// it has neither a cached state nor a snapshot of the stream) that finds another load in
    /// flight goes to a load lane (a lone load reads on its own, as without grouping), which
    /// reads whatever loads queued while its last group was read in one statement, the first
    /// 100 events of each; a longer stream's load reads the rest on its own. While most recent
    /// loads were longer than that, loads are read alone. A load from a later version (a
    /// catch-up behind the cache or a snapshot, often a retry after a conflict) always reads
    /// on its own. What a load folds is what it would have folded alone; a group whose
    /// statement fails leaves each of its loads to read on its own.
    #[must_use]
    pub fn group_loads(mut self, on: bool) -> Self {
        self.loads = on;
        self
    }

    /// Bounds how long a grouped append may wait (at least 1 ms, at most
    /// [`MAX_TIMEOUT`](Self::MAX_TIMEOUT); 5 s by default): a group's
    /// statement runs under this `statement_timeout`, and a writer whose append its lane has not
    /// taken within it stops waiting. Either way the append fails with
    /// [`PgError::AppendTimedOut`](crate::PgError::AppendTimedOut) and nothing of it is written. When a group's statement times
    /// out, its appends are tried again one by one, so only those that are stuck (say, on a
    /// stream whose next version an open transaction holds) fail, each after its own second
    /// timeout; the others land. That bound is the server's; on a network gone silent, no
    /// answer comes at all, and the store's
    /// [answer timeout](crate::PgEventStore::with_answer_timeout) bounds the group instead:
    /// its connection is dropped, and its appends are looked up (or fail with
    /// [`PgError::NoAnswer`](crate::PgError::NoAnswer), perhaps written).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.clamp(Duration::from_millis(1), Self::MAX_TIMEOUT);
        self
    }

    /// The longest [`timeout`](Self::timeout): the longest `statement_timeout` PostgreSQL
    /// takes (`i32::MAX` milliseconds, about 24.8 days). A longer one would be refused on
    /// every lane's connection, and every append written alone.
    pub const MAX_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);
}
