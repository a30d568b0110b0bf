//! Group commit: appends to different streams that arrive while earlier ones are being written
//! share one statement, and so one transaction and one WAL flush.
//!
//! An append in autocommit costs PostgreSQL a statement, a commit and a flush, and its client a
//! round trip; with many concurrent writers that overhead, not the rows, is what limits
//! throughput. With [`GroupCommit`] on, an eligible append (expected version known, no command
//! id) is handed to one of a few *lanes*, chosen by the stream's hash. Each lane writes one group
//! at a time: whatever appends queued up while its previous group was in flight, at most one per
//! stream, in one `INSERT` (`sql/append_group.sql`).
//!
//! Nothing about an append's outcome changes: each writer's events are checked on their own
//! (stream exactly at the expected version) and land all together or not at all. A writer left
//! out by the checks, every writer of a group the database refused, and every writer whose lane
//! is gone, append on their own through the usual path, which finds and reports what happened:
//! a conflict, a repeated batch, or the events the group did write before its connection broke.
//! Appends to one stream always take the same lane, so a group never holds two appends that
//! would fail each other.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_core::{AppendOutcome, StreamId};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres, Row};
use tokio::sync::{mpsc, oneshot};

use crate::append::{Columns, Landed};
use crate::schema::Queries;

/// How appends are grouped; see [`PgEventStore::with_group_commit`](crate::PgEventStore::with_group_commit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCommit {
    lanes: usize,
    max_appends: usize,
    max_events: usize,
}

impl Default for GroupCommit {
    /// One lane; groups of at most 64 appends and 4,096 events.
    fn default() -> Self {
        Self {
            lanes: 1,
            max_appends: 64,
            max_events: 4_096,
        }
    }
}

impl GroupCommit {
    /// Appends are written by `lanes` statements at a time at most (at least 1). Each lane
    /// holds a pool connection while it has work.
    ///
    /// One lane makes the largest groups and was fastest in `pg-bench` on a 2-core machine
    /// (16 clients: 1 lane 12.5k commands/s, 2 lanes 10.2k, 4 lanes 6.4k); a server with many
    /// cores and many clients may gain from a few more.
    #[must_use]
    pub fn lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes.max(1);
        self
    }

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
}

/// One append waiting for its group.
struct Request {
    stream_id: StreamId,
    expected: i64,
    columns: Arc<Columns>,
    /// `None`: append on your own.
    reply: oneshot::Sender<Option<AppendOutcome>>,
}

/// The lanes of one store.
#[derive(Debug)]
pub(crate) struct Committer {
    options: GroupCommit,
    lanes: Vec<Mutex<Option<mpsc::UnboundedSender<Request>>>>,
}

impl Committer {
    pub(crate) fn new(options: GroupCommit) -> Self {
        Self {
            options,
            lanes: (0..options.lanes).map(|_| Mutex::new(None)).collect(),
        }
    }

    pub(crate) fn options(&self) -> GroupCommit {
        self.options
    }

    /// Appends `columns` to `stream_id` in a group. `None`: it was not written in one (and may
    /// or may not have been written at all); append on your own, with the same event ids.
    pub(crate) async fn append(
        &self,
        pool: &PgPool,
        queries: &Arc<Queries>,
        stream_id: &StreamId,
        expected: i64,
        columns: Arc<Columns>,
    ) -> Option<AppendOutcome> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            stream_id: stream_id.clone(),
            expected,
            columns,
            reply,
        };
        self.lane(stream_id, pool, queries)?.send(request).ok()?;
        answer.await.ok().flatten()
    }

    /// The sender of `stream_id`'s lane; starts its task on first use, or after the runtime
    /// that ran it went away. `None` outside a runtime.
    fn lane(
        &self,
        stream_id: &StreamId,
        pool: &PgPool,
        queries: &Arc<Queries>,
    ) -> Option<mpsc::UnboundedSender<Request>> {
        let mut hasher = DefaultHasher::new();
        stream_id.as_str().hash(&mut hasher);
        let lanes = self.lanes.len() as u64;
        // Below `lanes`, so it fits.
        let index = usize::try_from(hasher.finish() % lanes).unwrap_or(0);
        let mut sender = self.lanes[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = sender.as_ref().filter(|s| !s.is_closed()) {
            return Some(sender.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let lane = Lane {
            requests: rx,
            pool: pool.clone(),
            conn: None,
            queries: Arc::clone(queries),
            options: self.options,
        };
        runtime.spawn(lane.run());
        *sender = Some(tx.clone());
        Some(tx)
    }
}

/// How long a lane keeps its connection with nothing to write.
const IDLE: Duration = Duration::from_millis(10);

/// One lane's task: writes a group at a time until the store is dropped.
struct Lane {
    requests: mpsc::UnboundedReceiver<Request>,
    pool: PgPool,
    /// Kept between groups while busy: no pool round trip per group.
    conn: Option<PoolConnection<Postgres>>,
    queries: Arc<Queries>,
    options: GroupCommit,
}

impl Lane {
    async fn run(mut self) {
        // Appends that could not join the last group, in arrival order.
        let mut waiting: VecDeque<Request> = VecDeque::new();
        loop {
            if waiting.is_empty() {
                let next = if self.conn.is_some() {
                    match tokio::time::timeout(IDLE, self.requests.recv()).await {
                        Ok(next) => next,
                        Err(_) => {
                            // Idle: give the connection back to the pool.
                            self.conn = None;
                            self.requests.recv().await
                        }
                    }
                } else {
                    self.requests.recv().await
                };
                match next {
                    Some(request) => waiting.push_back(request),
                    None => return,
                }
            }
            while let Ok(request) = self.requests.try_recv() {
                waiting.push_back(request);
            }
            let group = self.next_group(&mut waiting);
            if !group.is_empty() {
                self.write(group).await;
            }
        }
    }

    /// Takes the next group from `waiting`: in arrival order, one append per stream, within
    /// the limits; appends whose writer stopped waiting are dropped.
    fn next_group(&self, waiting: &mut VecDeque<Request>) -> Vec<Request> {
        let mut group: Vec<Request> = Vec::new();
        let mut events = 0;
        let mut later = VecDeque::new();
        while let Some(request) = waiting.pop_front() {
            if request.reply.is_closed() {
                continue;
            }
            let size = request.columns.len();
            let fits = group.is_empty()
                || (group.len() < self.options.max_appends
                    && events + size <= self.options.max_events);
            // A linear scan: groups are small, and it allocates nothing.
            let taken = group.iter().any(|r| r.stream_id == request.stream_id);
            if fits && !taken {
                events += size;
                group.push(request);
            } else {
                later.push_back(request);
            }
        }
        *waiting = later;
        group
    }

    async fn write(&mut self, group: Vec<Request>) {
        let outcomes = match self.insert(&group).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                if error.as_database_error().is_none() {
                    // The connection may be broken: take a fresh one next time.
                    self.conn = None;
                }
                // A unique violation (a writer outside the group, a repeated event id) or a
                // broken connection: each writer finds out on its own.
                tracing::debug!(%error, appends = group.len(), "group append refused");
                Vec::new()
            }
        };
        let mut outcomes = outcomes.into_iter();
        for request in group {
            // The writer may have stopped waiting; nothing to tell it then.
            let _ = request.reply.send(outcomes.next().flatten());
        }
    }

    /// Writes `group` in one statement: each append's outcome, `None` for those the checks
    /// left out.
    async fn insert(
        &mut self,
        group: &[Request],
    ) -> Result<Vec<Option<AppendOutcome>>, sqlx::Error> {
        let rows: usize = group.iter().map(|r| r.columns.len()).sum();
        let mut streams: Vec<&str> = Vec::with_capacity(rows);
        let mut expected: Vec<i64> = Vec::with_capacity(rows);
        let mut versions: Vec<i64> = Vec::with_capacity(rows);
        let mut event_ids = Vec::with_capacity(rows);
        let mut event_types: Vec<&str> = Vec::with_capacity(rows);
        let mut schema_versions: Vec<i32> = Vec::with_capacity(rows);
        let mut payloads: Vec<&str> = Vec::with_capacity(rows);
        let mut metadata: Vec<&str> = Vec::with_capacity(rows);
        for request in group {
            let c = &request.columns;
            let mut version = request.expected;
            for i in 0..c.len() {
                version += 1;
                streams.push(request.stream_id.as_str());
                expected.push(request.expected);
                versions.push(version);
                event_ids.push(c.event_ids[i]);
                event_types.push(&c.event_types[i]);
                schema_versions.push(c.schema_versions[i]);
                payloads.push(&c.payloads[i]);
                metadata.push(&c.metadata[i]);
            }
        }
        let returned = sqlx::query(&self.queries.append_group)
            .bind(&streams)
            .bind(&expected)
            .bind(&versions)
            .bind(&event_ids)
            .bind(&event_types)
            .bind(&schema_versions)
            .bind(&payloads)
            .bind(&metadata);
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.pool.acquire().await?),
        };
        let returned = returned.fetch_all(&mut **conn).await?;

        let mut landed: Vec<Landed> = group.iter().map(|_| Landed::default()).collect();
        for row in &returned {
            // Rows come back in no promised order: each names its stream (one append each).
            let stream: &str = row.try_get(3)?;
            if let Some(i) = group.iter().position(|r| r.stream_id.as_str() == stream) {
                landed[i].add(row)?;
            }
        }
        Ok(group
            .iter()
            .zip(landed)
            .map(|(request, landed)| {
                // All of an append's events or none pass the checks; anything else is read
                // back by the lone path.
                (landed.rows() == request.columns.len())
                    .then(|| landed.outcome(&request.stream_id).ok())
                    .flatten()
            })
            .collect())
    }
}
