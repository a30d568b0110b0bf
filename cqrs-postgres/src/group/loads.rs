//! [`Loads`]: loads of different streams that arrive while earlier ones are being read share
//! one statement (`sql/replay_group.sql`), as appends share a group commit.
//!
//! A load of a short stream costs PostgreSQL a statement and its client a round trip, for a
//! row or none: with many concurrent commands missing the state cache (new streams, a
//! restarted process) that overhead, not the rows, is what limits them.
//!
//! A load from a stream's first version that finds another load in flight
//! (`Committer::admit_load`; a lone reader keeps its one statement, with no hop; a catch-up
//! from a later version, behind the cache or a snapshot, never waits for the lane) hands its
//! stream to the store's load lane, a task which reads one group at a time:
//! whatever queued while its last group was read, at most [`ROWS`] events of each load. A
//! longer stream's load reads the rest on its own, so long loads still run side by side (on as
//! many backends as they need) and none sits in memory whole. The lane holds a pool
//! connection only while loads are queued, so it never keeps one from a small pool's other
//! users between loads.
//!
//! Long loads gain nothing from a group (their rows, not the statement, are the cost) and
//! would read twice: so while most recent loads were longer than [`ROWS`] events, loads are
//! read alone, as without grouping ([`Loads::grouping`]).
//!
//! A group whose statement fails leaves each of its loads to read on its own: a load writes
//! nothing, so reading again is always safe. A group's statement starts after each of its
//! loads was asked for, so a load sees at least what it would have seen alone.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::StreamId;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::gather::gather;
use super::slot::LaneSlot;
use crate::bounded::Bounded;
use crate::schema::Queries;

/// The most rows one load reads in a group; a longer load reads the rest on its own.
pub(crate) const ROWS: i64 = 100;

/// The most loads one statement reads.
const MAX_LOADS: usize = 64;

/// How long the recent loads were, in [`Loads::long`]: up to this, one up per load past
/// [`ROWS`] events, one down per shorter one.
const LONG_MAX: u32 = 16;

/// Loads are grouped while [`Loads::long`] is below this: while at least about half of the
/// recent loads were short.
const LONG_AT: u32 = LONG_MAX / 2;

/// The load lane of one store, started on first use, and how long its recent loads were.
#[derive(Debug, Default)]
pub(super) struct Loads {
    lane: LaneSlot<Request>,
    /// Up per long load, down per short one, within `0..=LONG_MAX`. Long loads gain nothing
    /// from a group (their rows, not the statement, are the cost) and would read twice: in
    /// the group, then the rest alone.
    long: AtomicU32,
}

/// One load waiting for its group: `replay.sql`'s parameters, and where its rows go.
#[derive(Debug)]
struct Request {
    stream_id: StreamId,
    from: i64,
    max: i64,
    /// Dropped unanswered when the group failed: the load then reads on its own.
    reply: oneshot::Sender<Vec<PgRow>>,
}

impl Loads {
    /// Whether a load goes to a group: while the recent loads were mostly short.
    pub(super) fn grouping(&self) -> bool {
        self.long.load(Ordering::Relaxed) < LONG_AT
    }

    /// Records how many events a load read, grouped or not.
    pub(super) fn read(&self, events: usize) {
        let long = events > usize::try_from(ROWS).unwrap_or(usize::MAX);
        // Relaxed: a hint, not a guarantee; a lost update only delays a switch by a load.
        let _ = self
            .long
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(if long {
                    (n + 1).min(LONG_MAX)
                } else {
                    n.saturating_sub(1)
                })
            });
    }

    /// The rows `replay.sql` returns for `(stream_id, from, max)` (`max` at most [`ROWS`]),
    /// read in a group; `None` when the group failed or there is no lane: read on your own.
    pub(super) async fn load(
        &self,
        pool: &PgPool,
        answer_timeout: Duration,
        queries: &Arc<Queries>,
        stream_id: &StreamId,
        from: i64,
        max: i64,
    ) -> Option<Vec<PgRow>> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            stream_id: stream_id.clone(),
            from,
            max,
            reply,
        };
        self.lane(pool, answer_timeout, queries)?
            .send(request)
            .ok()?;
        answer.await.ok()
    }

    /// The lane's sender; starts its task on first use, or after the runtime that ran it went
    /// away. `None` outside a runtime.
    fn lane(
        &self,
        pool: &PgPool,
        answer: Duration,
        queries: &Arc<Queries>,
    ) -> Option<mpsc::UnboundedSender<Request>> {
        (self.lane).sender(|requests| run(requests, pool.clone(), answer, Arc::clone(queries)))
    }
}

/// The lane's task: reads whatever loads queued while its last group was read (once
/// [`gather`] let the readers a turn away join), one group at a time, until the store is
/// dropped. It holds a pool connection only while loads are queued.
async fn run(
    mut requests: mpsc::UnboundedReceiver<Request>,
    pool: PgPool,
    answer: Duration,
    queries: Arc<Queries>,
) {
    let mut waiting = VecDeque::new();
    while let Some(first) = requests.recv().await {
        let mut conn = None;
        waiting.push_back(first);
        loop {
            gather(&mut requests, &mut waiting, MAX_LOADS).await;
            if waiting.is_empty() {
                break;
            }
            let mut group: Vec<Request> = waiting.drain(..waiting.len().min(MAX_LOADS)).collect();
            // Loads whose reader stopped waiting are not read.
            group.retain(|request| !request.reply.is_closed());
            if !group.is_empty() {
                read(&pool, answer, &mut conn, &queries, group).await;
            }
        }
        // Nothing queued: the connection goes back to the pool.
        drop(conn);
    }
}

/// Reads `group` in one statement on `conn` (acquired if there is none, its answer bounded by
/// `answer`) and hands each load its rows; on any failure, drops every reply (so each load
/// reads on its own) and gives the connection up (dropped if it did not answer, else handed
/// back, where the pool's check closes it if it is broken).
async fn read(
    pool: &PgPool,
    answer: Duration,
    conn: &mut Option<Bounded>,
    queries: &Queries,
    group: Vec<Request>,
) {
    let streams: Vec<&str> = group.iter().map(|r| r.stream_id.as_str()).collect();
    let from: Vec<i64> = group.iter().map(|r| r.from).collect();
    let max: Vec<i64> = group.iter().map(|r| r.max).collect();
    let query = sqlx::query(&queries.replay_group)
        .bind(&streams)
        .bind(&from)
        .bind(&max);
    let held = match conn {
        Some(held) => Ok(held),
        None => Bounded::acquire(pool, answer)
            .await
            .map(|acquired| conn.insert(acquired)),
    };
    let rows = match held {
        Ok(held) => held.run(async |c| query.fetch_all(c).await).await,
        Err(error) => Err(error),
    };
    match rows.and_then(|rows| by_load(rows, group.len())) {
        Ok(rows) => {
            // Counted once read: a group that failed read nothing, and its loads read alone.
            use cqrs_core::telemetry::metrics::GROUP_COMMIT_LOADS;
            metrics::histogram!(GROUP_COMMIT_LOADS).record(group.len() as f64);
            for (request, rows) in group.into_iter().zip(rows) {
                // The reader may have stopped waiting; nothing to tell it then.
                let _ = request.reply.send(rows);
            }
        }
        Err(error) => {
            tracing::debug!(%error, loads = group.len(), "group load failed; each alone");
            *conn = None;
        }
    }
}

/// The rows of `loads` loads, each load's in version order, from the rows of one statement.
fn by_load(rows: Vec<PgRow>, loads: usize) -> Result<Vec<Vec<PgRow>>, sqlx::Error> {
    let mut each: Vec<Vec<PgRow>> = (0..loads).map(|_| Vec::new()).collect();
    for row in rows {
        let index: i64 = row.try_get(4)?;
        let load = usize::try_from(index - 1)
            .ok()
            .and_then(|i| each.get_mut(i))
            .ok_or_else(|| sqlx::Error::Protocol(format!("no load at index {index}")))?;
        load.push(row);
    }
    for rows in &mut each {
        if !rows.is_sorted_by_key(version) {
            rows.sort_by_cached_key(version);
        }
    }
    Ok(each)
}

/// A row's version, for ordering only: one that does not decode fails the load's own decoding.
fn version(row: &PgRow) -> i64 {
    row.try_get(0).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_stop_being_grouped_when_most_are_long_and_start_again_when_most_are_short() {
        let loads = Loads::default();
        assert!(loads.grouping(), "grouped at first");
        let long = usize::try_from(ROWS).expect("small") + 1;
        for _ in 0..LONG_AT {
            loads.read(long);
        }
        assert!(!loads.grouping(), "after {LONG_AT} long loads in a row");
        for _ in 0..LONG_MAX * 2 {
            loads.read(long);
        }
        for _ in 0..LONG_MAX - LONG_AT {
            loads.read(0);
        }
        assert!(
            !loads.grouping(),
            "capped at LONG_MAX: as many short loads bring it back to the threshold"
        );
        loads.read(usize::try_from(ROWS).expect("small"));
        assert!(
            loads.grouping(),
            "one more (ROWS events is short) and loads are grouped"
        );
    }
}
