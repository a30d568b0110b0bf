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
//! a conflict or a repeated batch.
//! Appends to one stream always take the same lane, so a group never holds two appends that
//! would fail each other.
//!
//! Every wait is bounded by [`GroupCommit::timeout`]: the lane's session runs with that
//! `statement_timeout`, so a group stuck on a lock (an open `append_in` transaction holding a
//! stream's next version) is cancelled, and its appends are tried again one by one: the others
//! land, the stuck one fails with [`PgError::AppendTimedOut`]. A writer whose append the lane has
//! not taken within the timeout takes it back and fails the same way. If a group's connection
//! breaks, the lane looks its events up before anyone appends on their own: a group that
//! committed before the break is reported as written, not as a repeat of itself.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_core::{AppendOutcome, StreamId};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgDatabaseError, PgSeverity};
use sqlx::{PgPool, Postgres, Row};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::append::{Columns, Landed};
use crate::convert;
use crate::schema::Queries;
use crate::{PgError, TimeoutStage};

/// How appends are grouped; see [`PgEventStore::with_group_commit`](crate::PgEventStore::with_group_commit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCommit {
    lanes: usize,
    max_appends: usize,
    max_events: usize,
    max_bytes: usize,
    timeout: Duration,
}

impl Default for GroupCommit {
    /// One lane; groups of at most 64 appends, 4,096 events and 8 MiB; a timeout of 5
    /// seconds.
    fn default() -> Self {
        Self {
            lanes: 1,
            max_appends: 64,
            max_events: 4_096,
            max_bytes: 8 << 20,
            timeout: Duration::from_secs(5),
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

    /// A group holds at most `bytes` bytes of payloads and metadata (8 MiB by default), unless
    /// its first append alone has more: so one statement never binds thousands of large
    /// payloads at once.
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }

    /// Bounds how long a grouped append may wait (at least 1 ms; 5 s by default): a group's
    /// statement runs under this `statement_timeout`, and a writer whose append its lane has not
    /// taken within it stops waiting. Either way the append fails with
    /// [`PgError::AppendTimedOut`] and nothing of it is written. When a group's statement times
    /// out, its appends are tried again one by one, so only those that are stuck (say, on a
    /// stream whose next version an open transaction holds) fail, each after its own second
    /// timeout; the others land.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }
}

/// Where a request is: queued, taken into a group by its lane, or taken back by its writer.
const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

/// What a lane tells a writer.
enum Reply {
    /// Written in a group.
    Appended(AppendOutcome),
    /// Not written in a group: append on your own.
    Alone,
    /// The statement timed out: nothing was written.
    TimedOut,
}

/// One append waiting for its group.
struct Request {
    stream_id: StreamId,
    expected: i64,
    columns: Arc<Columns>,
    /// [`QUEUED`], [`TAKEN`] or [`ABANDONED`], shared with the writer.
    state: Arc<AtomicU8>,
    reply: oneshot::Sender<Reply>,
}

/// The lanes of one store.
#[derive(Debug)]
pub(crate) struct Committer {
    options: GroupCommit,
    lanes: Vec<Mutex<Option<mpsc::UnboundedSender<Request>>>>,
    /// Test seam: the next group commits, then its connection is really broken before the
    /// reply is read (see `Lane::lose_reply`).
    #[cfg(test)]
    pub(crate) lose_next_reply: Arc<std::sync::atomic::AtomicBool>,
}

impl Committer {
    pub(crate) fn new(options: GroupCommit) -> Self {
        Self {
            options,
            lanes: (0..options.lanes).map(|_| Mutex::new(None)).collect(),
            #[cfg(test)]
            lose_next_reply: Arc::default(),
        }
    }

    pub(crate) fn options(&self) -> GroupCommit {
        self.options
    }

    /// Appends `columns` to `stream_id` in a group. `Ok(None)`: it was not written in one (and
    /// may or may not have been written at all); append on your own, with the same event ids.
    /// [`PgError::AppendTimedOut`]: nothing was written within the timeout.
    pub(crate) async fn append(
        &self,
        pool: &PgPool,
        queries: &Arc<Queries>,
        stream_id: &StreamId,
        expected: i64,
        columns: Arc<Columns>,
    ) -> Result<Option<AppendOutcome>, PgError> {
        let (reply, mut answer) = oneshot::channel();
        let state = Arc::new(AtomicU8::new(QUEUED));
        let request = Request {
            stream_id: stream_id.clone(),
            expected,
            columns,
            state: Arc::clone(&state),
            reply,
        };
        let Some(lane) = self.lane(stream_id, pool, queries) else {
            return Ok(None);
        };
        if lane.send(request).is_err() {
            return Ok(None);
        }
        let timeout = self.options.timeout;
        let reply = match tokio::time::timeout(timeout, &mut answer).await {
            Ok(reply) => reply,
            Err(_) => {
                if state
                    .compare_exchange(QUEUED, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    // The lane will drop it unwritten.
                    return Err(timed_out(stream_id, timeout, TimeoutStage::Queued));
                }
                // In a group already: its statement is bounded by the same timeout.
                answer.await
            }
        };
        match reply {
            Ok(Reply::Appended(outcome)) => Ok(Some(outcome)),
            // The lane is gone (its runtime shut down): append on your own.
            Ok(Reply::Alone) | Err(_) => Ok(None),
            Ok(Reply::TimedOut) => Err(timed_out(stream_id, timeout, TimeoutStage::Statement)),
        }
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
            conn: LaneConn::default(),
            queries: Arc::clone(queries),
            options: self.options,
            #[cfg(test)]
            lose_next_reply: Arc::clone(&self.lose_next_reply),
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
    conn: LaneConn,
    queries: Arc<Queries>,
    options: GroupCommit,
    #[cfg(test)]
    lose_next_reply: Arc<std::sync::atomic::AtomicBool>,
}

impl Lane {
    async fn run(mut self) {
        // Appends that could not join the last group, in arrival order.
        let mut waiting: VecDeque<Request> = VecDeque::new();
        loop {
            if waiting.is_empty() {
                let next = if self.conn.is_open() {
                    match tokio::time::timeout(IDLE, self.requests.recv()).await {
                        Ok(next) => next,
                        Err(_) => {
                            // Idle: give the connection back to the pool.
                            self.conn.release().await;
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
    /// the limits; appends whose writer stopped waiting (or took them back) are dropped.
    fn next_group(&self, waiting: &mut VecDeque<Request>) -> Vec<Request> {
        let mut group: Vec<Request> = Vec::new();
        let (mut events, mut bytes) = (0, 0);
        let mut later = VecDeque::new();
        while let Some(request) = waiting.pop_front() {
            if request.reply.is_closed() {
                continue;
            }
            let (size, weight) = (request.columns.len(), request.columns.bytes);
            let fits = group.is_empty()
                || (group.len() < self.options.max_appends
                    && events + size <= self.options.max_events
                    && bytes + weight <= self.options.max_bytes);
            // A linear scan: groups are small, and it allocates nothing.
            let taken = group.iter().any(|r| r.stream_id == request.stream_id);
            if fits && !taken {
                if request
                    .state
                    .compare_exchange(QUEUED, TAKEN, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    // Its writer's deadline passed: never write it.
                    continue;
                }
                events += size;
                bytes += weight;
                group.push(request);
            } else {
                later.push_back(request);
            }
        }
        *waiting = later;
        group
    }

    async fn write(&mut self, group: Vec<Request>) {
        let replies = match self.insert(&group).await {
            Ok(outcomes) => outcomes
                .into_iter()
                .map(|outcome| outcome.map_or(Reply::Alone, Reply::Appended))
                .collect(),
            Err(error) if is_timeout(&error) && group.len() > 1 => {
                // One append may be stuck on a lock: try each on its own, so the others land.
                tracing::debug!(%error, appends = group.len(), "group timed out; one by one");
                let mut replies = Vec::with_capacity(group.len());
                for request in &group {
                    replies.push(self.write_one(request).await);
                }
                replies
            }
            Err(error) if is_timeout(&error) => vec![Reply::TimedOut],
            Err(error) => self.refused(&group, &error).await,
        };
        let mut replies = replies.into_iter();
        for request in group {
            // The writer may have stopped waiting; nothing to tell it then.
            let _ = request.reply.send(replies.next().unwrap_or(Reply::Alone));
        }
    }

    /// Writes one append of a group whose statement timed out, as a group of one.
    async fn write_one(&mut self, request: &Request) -> Reply {
        let group = std::slice::from_ref(request);
        match self.insert(group).await {
            Ok(mut outcomes) => outcomes
                .pop()
                .flatten()
                .map_or(Reply::Alone, Reply::Appended),
            Err(error) if is_timeout(&error) => Reply::TimedOut,
            Err(error) => self
                .refused(group, &error)
                .await
                .pop()
                .unwrap_or(Reply::Alone),
        }
    }

    /// What to tell the writers of a group whose statement failed with `error`.
    async fn refused(&mut self, group: &[Request], error: &sqlx::Error) -> Vec<Reply> {
        tracing::debug!(%error, appends = group.len(), "group append refused");
        if rolled_back(error) {
            // A unique violation (a writer outside the group, a repeated event id): nothing
            // was written, each writer finds out on its own.
            return group.iter().map(|_| Reply::Alone).collect();
        }
        // The connection broke (an I/O error, or a FATAL error such as a terminated backend),
        // perhaps after the group committed: take a fresh one, and look before anyone appends
        // again (they would find their own events and take them for an earlier append's).
        self.conn.discard();
        match self.written(group).await {
            Ok(replies) => replies,
            Err(error) => {
                tracing::warn!(%error, "could not look up a broken group's events");
                self.conn.discard();
                group.iter().map(|_| Reply::Alone).collect()
            }
        }
    }

    /// After a broken connection: each append of `group` whose events are all in, at the
    /// versions it asked for, was written by the group (its events are ours: a repeat of the
    /// same batch from this store goes through this lane after the group, and one from
    /// elsewhere would have failed the group on the event ids); the others were not.
    async fn written(&mut self, group: &[Request]) -> Result<Vec<Reply>, sqlx::Error> {
        let ids: Vec<Uuid> = group
            .iter()
            .flat_map(|r| r.columns.event_ids.iter().copied())
            .collect();
        let query = sqlx::query(&self.queries.events_by_id).bind(&ids);
        let conn = self.conn.get(&self.pool, self.options.timeout).await?;
        let rows = query.fetch_all(&mut **conn).await?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let event_id: Uuid = row.try_get("event_id")?;
            let stream_id: String = row.try_get("stream_id")?;
            let version: i64 = row.try_get("version")?;
            let transaction_id: String = row.try_get("transaction_id")?;
            let position: i64 = row.try_get("position")?;
            found.insert(event_id, (stream_id, version, transaction_id, position));
        }
        Ok(group
            .iter()
            .map(|request| {
                let mut last = None;
                for (i, id) in request.columns.event_ids.iter().enumerate() {
                    let version = request.expected + 1 + i64::try_from(i).unwrap_or(i64::MAX);
                    match found.get(id) {
                        Some((stream, v, xid, position))
                            if stream == request.stream_id.as_str() && *v == version =>
                        {
                            last = Some((*v, xid, *position));
                        }
                        _ => return Reply::Alone,
                    }
                }
                let Some((last_version, xid, position)) = last else {
                    return Reply::Alone;
                };
                let outcome = (|| -> Result<AppendOutcome, PgError> {
                    Ok(AppendOutcome::new(
                        request.stream_id.clone(),
                        convert::version(request.expected + 1)?,
                        convert::version(last_version)?,
                        convert::position(xid, position)?,
                        false,
                    ))
                })();
                outcome.map_or(Reply::Alone, Reply::Appended)
            })
            .collect())
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
        let conn = self.conn.get(&self.pool, self.options.timeout).await?;
        let returned = returned.fetch_all(&mut **conn).await?;
        #[cfg(test)]
        if self
            .lose_next_reply
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(Self::lose_reply(&self.pool, conn).await);
        }

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

/// Whether the statement surely wrote nothing: it failed with an ERROR, which in autocommit
/// rolls its transaction back. A FATAL error ends the session, which may have committed.
fn rolled_back(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
        .is_some_and(|e| e.severity() == PgSeverity::Error)
}

/// Whether a statement was cancelled by its `statement_timeout`.
fn is_timeout(error: &sqlx::Error) -> bool {
    // query_canceled: what statement_timeout raises.
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "57014")
}

fn timed_out(stream_id: &StreamId, timeout: Duration, stage: TimeoutStage) -> PgError {
    PgError::AppendTimedOut {
        stream_id: stream_id.as_str().to_owned(),
        timeout,
        stage,
    }
}

/// A lane's pooled connection, its session's `statement_timeout` set to the group commit's
/// timeout. It goes back to the pool only with the setting reset; dropped any other way (a
/// broken connection, the lane's task ending midway) it is closed, so no other user of the pool
/// inherits the timeout.
#[derive(Default)]
struct LaneConn(Option<PoolConnection<Postgres>>);

impl LaneConn {
    fn is_open(&self) -> bool {
        self.0.is_some()
    }

    /// The connection, acquired (within `timeout`) and set up if there is none.
    async fn get(
        &mut self,
        pool: &PgPool,
        timeout: Duration,
    ) -> Result<&mut PoolConnection<Postgres>, sqlx::Error> {
        if self.0.is_none() {
            let conn = tokio::time::timeout(timeout, pool.acquire())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            // Closed if the setup fails midway.
            let conn = self.0.insert(conn);
            sqlx::query("SELECT set_config('statement_timeout', $1, false)")
                .bind(format!("{}ms", timeout.as_millis().max(1)))
                .execute(&mut **conn)
                .await?;
        }
        self.0.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Gives the connection back to the pool, its setting reset.
    async fn release(&mut self) {
        if let Some(mut conn) = self.0.take() {
            if sqlx::query("RESET statement_timeout")
                .execute(&mut *conn)
                .await
                .is_err()
            {
                conn.close_on_drop();
            }
        }
    }

    /// Closes the connection (it may be broken).
    fn discard(&mut self) {
        if let Some(mut conn) = self.0.take() {
            conn.close_on_drop();
        }
    }
}

impl Drop for LaneConn {
    fn drop(&mut self) {
        self.discard();
    }
}

#[cfg(test)]
impl Lane {
    /// The seam behind `lose_next_reply`: the group's statement has committed on `conn`; end
    /// that connection's backend for real (`pg_terminate_backend` from another session) and
    /// return the error that using it then gives, as if the connection had broken before the
    /// reply arrived.
    async fn lose_reply(pool: &PgPool, conn: &mut PoolConnection<Postgres>) -> sqlx::Error {
        use sqlx::Connection;
        let pid: i32 = match sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut **conn)
            .await
        {
            Ok(pid) => pid,
            Err(error) => return error,
        };
        let killer = sqlx::PgConnection::connect_with(&pool.connect_options()).await;
        let terminated = match killer {
            Ok(mut killer) => sqlx::query("SELECT pg_terminate_backend($1, 10000)")
                .bind(pid)
                .execute(&mut killer)
                .await
                .map(|_| ()),
            Err(error) => Err(error),
        };
        if let Err(error) = terminated {
            return error;
        }
        match sqlx::query("SELECT 1").execute(&mut **conn).await {
            Err(error) => error,
            Ok(_) => sqlx::Error::Protocol("the terminated backend still answered".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, ReadStream, Version};
    use sqlx::postgres::PgPoolOptions;

    use super::*;
    use crate::{PgEventStore, PgSchema};

    #[tokio::test]
    async fn a_grouped_append_whose_reply_was_lost_after_commit_is_reported_as_written_not_duplicate(
    ) {
        let url = std::env::var("DATABASE_URL").expect("DATABASE_URL: a real PostgreSQL");
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .expect("connect");
        let schema = PgSchema::new(&format!("t_{}", uuid::Uuid::now_v7().simple())).expect("name");
        let store = PgEventStore::new(pool)
            .in_schema(schema)
            .with_group_commit(GroupCommit::default());
        store.migrate().await.expect("migrate");
        let stream = StreamId::new("lost-reply-1").expect("id");
        let seam = Arc::clone(&store.group.as_ref().expect("grouped").lose_next_reply);
        seam.store(true, std::sync::atomic::Ordering::SeqCst);

        let outcome = store
            .append(
                &stream,
                ExpectedVersion::NoStream,
                vec![NewEvent::new("E", 1, serde_json::json!({ "n": 1 }))],
            )
            .await
            .expect("append");
        assert!(
            !seam.load(std::sync::atomic::Ordering::SeqCst),
            "the group's connection was broken after its commit"
        );
        assert_eq!(
            (outcome.first_version, outcome.last_version),
            (Version::new(1), Version::new(1))
        );
        assert!(
            !outcome.duplicate,
            "this append wrote its events, yet came back as a duplicate: {outcome:?}"
        );
        let events = store
            .read_stream(&stream, Version::new(1), 10)
            .await
            .expect("read");
        assert_eq!(events.len(), 1, "written once");
        assert_eq!(events[0].position, outcome.position);
    }
}
