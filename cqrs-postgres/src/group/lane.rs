//! [`Lane`]: one lane's task, which writes a group at a time and tells each writer what
//! happened.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::postgres::{PgDatabaseError, PgSeverity};
use tokio::sync::mpsc;

use super::gather::gather;
use super::request::{Reply, Request, QUEUED, TAKEN};
use super::statement::Writer;
use super::GroupCommit;
use crate::bounded::SpoilsConnection as _;

/// How long a lane keeps its connection with nothing to write.
const IDLE: Duration = Duration::from_millis(10);

/// One lane's task: writes a group at a time until the store is dropped.
pub(super) struct Lane {
    pub(super) requests: mpsc::UnboundedReceiver<Request>,
    pub(super) options: GroupCommit,
    /// Writes the groups, on a connection kept between groups while busy.
    pub(super) writer: Writer,
}

impl Lane {
    pub(super) async fn run(mut self) {
        // Appends that could not join the last group, in arrival order.
        let mut waiting: VecDeque<Request> = VecDeque::new();
        loop {
            if waiting.is_empty() {
                let next = if self.writer.conn.is_open() {
                    match tokio::time::timeout(IDLE, self.requests.recv()).await {
                        Ok(next) => next,
                        Err(_) => {
                            // Idle: give the connection back to the pool.
                            self.writer.conn.release(self.writer.answer).await;
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
            gather(&mut self.requests, &mut waiting, self.options.max_appends).await;
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
        record_wait(&group);
        // How many appends each written one rode with (its span's `group` field).
        let mut together = group.len();
        let replies = match self.writer.insert(&group).await {
            Ok(outcomes) => {
                record_written(outcomes.iter().flatten().count());
                outcomes
                    .into_iter()
                    .map(|outcome| outcome.map_or(Reply::Alone, Reply::Appended))
                    .collect()
            }
            Err(error) if is_timeout(&error) && group.len() > 1 => {
                // One append may be stuck on a lock: try each on its own, so the others land.
                tracing::debug!(%error, appends = group.len(), "group timed out; one by one");
                together = 1;
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
            let reply = replies.next().unwrap_or(Reply::Alone);
            if matches!(reply, Reply::Appended(_)) {
                request.span.record("group", together);
            }
            // The writer may have stopped waiting; nothing to tell it then.
            let _ = request.reply.send(reply);
        }
    }

    /// Writes one append of a group whose statement timed out, as a group of one.
    async fn write_one(&mut self, request: &Request) -> Reply {
        let group = std::slice::from_ref(request);
        match self.writer.insert(group).await {
            Ok(mut outcomes) => {
                record_written(outcomes.iter().flatten().count());
                outcomes
                    .pop()
                    .flatten()
                    .map_or(Reply::Alone, Reply::Appended)
            }
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
        if rolled_back(error) || never_sent(error) {
            // A unique violation (a writer outside the group, a repeated event id), or no
            // connection to send on: nothing was written, each writer finds out on its own.
            if error.spoils_connection() {
                // It would refuse every group after this one too.
                self.writer.conn.discard();
            }
            return group.iter().map(|_| Reply::Alone).collect();
        }
        // The connection broke (an I/O error, or a FATAL error such as a terminated backend),
        // perhaps after the group committed: take a fresh one, and look before anyone appends
        // again (they would find their own events and take them for an earlier append's).
        self.writer.conn.discard();
        match self.writer.written(group).await {
            Ok(replies) => {
                // The group committed before its connection broke: it wrote these.
                record_written(
                    (replies.iter())
                        .filter(|reply| matches!(reply, Reply::Appended(_)))
                        .count(),
                );
                replies
            }
            Err(error) => {
                tracing::warn!(%error, "could not look up a broken group's events");
                self.writer.conn.discard();
                group.iter().map(|_| Reply::Unknown).collect()
            }
        }
    }
}

/// Records how long a group's oldest append waited for its statement to start.
fn record_wait(group: &[Request]) {
    use cqrs_core::telemetry::metrics::GROUP_COMMIT_WAIT;
    if let Some(oldest) = group.iter().map(|r| r.queued_at).min() {
        metrics::histogram!(GROUP_COMMIT_WAIT).record(oldest.elapsed());
    }
}

/// Records the appends a statement wrote, if any: one that timed out or failed wrote none,
/// those written one by one after it count one each, and one its checks left out (a stale
/// expected version) is written alone, outside the lane.
fn record_written(appends: usize) {
    use cqrs_core::telemetry::metrics::GROUP_COMMIT_APPENDS;
    if appends > 0 {
        metrics::histogram!(GROUP_COMMIT_APPENDS).record(appends as f64);
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

/// Whether the statement was never sent: the lane got no connection within the timeout, or
/// the pool was closed.
fn never_sent(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
}

/// Whether a statement was cancelled by its `statement_timeout`.
fn is_timeout(error: &sqlx::Error) -> bool {
    // query_canceled: what statement_timeout raises.
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "57014")
}
