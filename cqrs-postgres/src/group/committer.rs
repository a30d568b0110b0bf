//! [`Committer`]: the lanes of one store, and a writer's wait for its group.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::{AppendOutcome, StreamId};
use sqlx::postgres::PgRow;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::conn::LaneConn;
use super::lane::Lane;
use super::loads::Loads;
use super::request::{Reply, Request, ABANDONED, QUEUED, TAKEN};
use super::slot::LaneSlot;
use super::statement::Writer;
use super::GroupCommit;
use crate::columns::Columns;
use crate::schema::Queries;
use crate::{PgError, TimeoutStage};

/// How long past its connection's acquisition and its statement's own `statement_timeout` a
/// lane waits for the statement's answer before giving the statement up.
const STATEMENT_GRACE: Duration = Duration::from_secs(1);

/// What became of an append handed to a lane.
#[derive(Debug)]
pub(crate) enum Grouped {
    /// Written in a group.
    Appended(AppendOutcome),
    /// Not written in a group: append on your own, with the same event ids.
    Alone,
    /// Perhaps written in a group whose connection broke (or whose lane went) before anyone
    /// could tell: append on your own, with the same event ids, and take your own events
    /// found at your versions for the group's, not for an earlier append's.
    Unknown,
}

/// The lanes of one store.
#[derive(Debug)]
pub(crate) struct Committer {
    options: GroupCommit,
    lanes: Vec<LaneSlot<Request>>,
    /// Eligible appends in flight, alone or grouped (see [`Admission`]).
    in_flight: AtomicUsize,
    /// The load lane, and how long recent loads were (see `loads.rs`).
    loads: Loads,
    /// Loads in flight, grouped or alone.
    loads_in_flight: AtomicUsize,
    /// Test seams: see `tests.rs`.
    #[cfg(test)]
    pub(crate) seams: Arc<super::tests::Seams>,
}

impl Committer {
    pub(crate) fn new(options: GroupCommit) -> Self {
        Self {
            options,
            lanes: (0..options.lanes).map(|_| LaneSlot::default()).collect(),
            in_flight: AtomicUsize::new(0),
            loads: Loads::default(),
            loads_in_flight: AtomicUsize::new(0),
            #[cfg(test)]
            seams: Arc::default(),
        }
    }

    /// A committer with the same options and nothing of this one's lanes: for a store whose
    /// schema or event type changed, since a lane writes with the statements of its store.
    pub(crate) fn renewed(self: Arc<Self>) -> Arc<Self> {
        Arc::new(Self::new(self.options))
    }

    pub(crate) fn options(&self) -> GroupCommit {
        self.options
    }

    /// Counts an eligible append of `events` events in flight until the admission is dropped,
    /// and says whether it goes to a group: only when at least [`GroupCommit::alone_below`]
    /// others are in flight, and it has fewer than [`GroupCommit::alone_from_events`] events.
    /// With fewer others, PostgreSQL's own concurrent commits do better than one lane taking
    /// the appends one group at a time (the lane serializes them, and a group of one costs
    /// more than a plain append); a large batch's rows, not its commit, are its cost, and
    /// written alone they run beside the others on backends of their own.
    pub(crate) fn admit(&self, events: usize) -> Admission<'_> {
        let others = self.in_flight.fetch_add(1, Ordering::Relaxed);
        Admission {
            in_flight: &self.in_flight,
            grouped: others >= self.options.alone_below && events < self.options.alone_from_events,
        }
    }

    /// Counts a load in flight until the admission is dropped, and says whether it goes to a
    /// group: when grouped loads are on, the load reads its stream from `from` version 1 (see
    /// below), another load is in flight (a lone reader keeps its one statement, with no hop to
    /// the lane), and the recent loads were mostly short (see `loads.rs`).
    ///
    /// A load from a later version catches up on a stream this process knows already (behind
    /// a cached state or a snapshot): most often a command retrying after a conflict, on a
    /// stream others are writing. Its latency decides whether the retry wins, so it never waits
    /// for the lane: with every load grouped, the saga benchmark's commands on its eight busy
    /// items ran out of retries (`Conflict` after 5 attempts) behind the lane.
    pub(crate) fn admit_load(&self, from: i64) -> Admission<'_> {
        let others = self.loads_in_flight.fetch_add(1, Ordering::Relaxed);
        Admission {
            in_flight: &self.loads_in_flight,
            grouped: from == 1 && others >= 1 && self.options.loads && self.loads.grouping(),
        }
    }

    /// Records how many events a load read (grouped or not), which decides whether the next
    /// ones are grouped.
    pub(crate) fn loaded(&self, events: usize) {
        if self.options.loads {
            self.loads.read(events);
        }
    }

    /// The rows `sql/replay.sql` returns for `(stream_id, from, max)` (`max` at most
    /// [`ROWS`](super::ROWS)), read in a group of loads. `None`: read on your own.
    pub(crate) async fn load(
        &self,
        pool: &PgPool,
        answer_timeout: Duration,
        queries: &Arc<Queries>,
        stream_id: &StreamId,
        from: i64,
        max: i64,
    ) -> Option<Vec<PgRow>> {
        (self.loads)
            .load(pool, answer_timeout, queries, stream_id, from, max)
            .await
    }

    /// Appends `columns` to `stream_id` in a group: see [`Grouped`].
    /// [`PgError::AppendTimedOut`]: nothing was written within the timeout.
    pub(crate) async fn append(
        &self,
        pool: &PgPool,
        answer_timeout: Duration,
        queries: &Arc<Queries>,
        stream_id: &StreamId,
        expected: i64,
        columns: Arc<Columns>,
    ) -> Result<Grouped, PgError> {
        let (reply, mut answer) = oneshot::channel();
        let state = Arc::new(AtomicU8::new(QUEUED));
        let request = Request {
            stream_id: stream_id.clone(),
            expected,
            columns,
            state: Arc::clone(&state),
            reply,
            queued_at: Instant::now(),
            span: tracing::Span::current(),
        };
        let Some(lane) = self.lane(stream_id, pool, answer_timeout, queries) else {
            return Ok(Grouped::Alone);
        };
        if lane.send(request).is_err() {
            return Ok(Grouped::Alone);
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
                // In a group already: its statement is bounded by the same timeout on the
                // server, and by the lane's answer bound here; a statement given up is looked
                // up within as long again. Past both, the network is silent: the group may
                // still land, and this append with it.
                let lane_answer = self.lane_answer(answer_timeout);
                match tokio::time::timeout(lane_answer.saturating_mul(2), answer).await {
                    Ok(reply) => reply,
                    Err(_) => {
                        return Err(PgError::NoAnswer {
                            within: answer_timeout,
                        })
                    }
                }
            }
        };
        match reply {
            Ok(Reply::Appended(outcome)) => Ok(Grouped::Appended(outcome)),
            Ok(Reply::Alone) => Ok(Grouped::Alone),
            Ok(Reply::Unknown) => Ok(Grouped::Unknown),
            // The lane is gone (its runtime shut down): append on your own, knowing that a
            // group that took the append may have committed it before the lane went.
            Err(_) if state.load(Ordering::SeqCst) == TAKEN => Ok(Grouped::Unknown),
            Err(_) => Ok(Grouped::Alone),
            Ok(Reply::TimedOut) => Err(timed_out(stream_id, timeout, TimeoutStage::Statement)),
        }
    }

    /// How long a lane waits for a statement's answer before giving it up: the store's
    /// `answer_timeout`, and at least the group commit's timeout twice (a connection's
    /// acquisition, then the statement's own `statement_timeout`) and a grace. So on a live
    /// server the server's error, which says nothing was written, comes first: a statement
    /// given up is left to a lookup, and one still running could land after it.
    fn lane_answer(&self, answer_timeout: Duration) -> Duration {
        answer_timeout.max(
            self.options
                .timeout
                .saturating_mul(2)
                .saturating_add(STATEMENT_GRACE),
        )
    }

    /// The sender of `stream_id`'s lane; starts its task on first use, or after the runtime
    /// that ran it went away. `None` outside a runtime.
    fn lane(
        &self,
        stream_id: &StreamId,
        pool: &PgPool,
        answer: Duration,
        queries: &Arc<Queries>,
    ) -> Option<mpsc::UnboundedSender<Request>> {
        let mut hasher = DefaultHasher::new();
        stream_id.as_str().hash(&mut hasher);
        let lanes = self.lanes.len() as u64;
        // Below `lanes`, so it fits.
        let index = usize::try_from(hasher.finish() % lanes).unwrap_or(0);
        self.lanes[index].sender(|requests| {
            let writer = Writer {
                pool: pool.clone(),
                conn: LaneConn::default(),
                queries: Arc::clone(queries),
                timeout: self.options.timeout,
                answer: self.lane_answer(answer),
                sent: false,
                #[cfg(test)]
                seams: Arc::clone(&self.seams),
            };
            let lane = Lane {
                requests,
                options: self.options,
                writer,
            };
            lane.run()
        })
    }
}

fn timed_out(stream_id: &StreamId, timeout: Duration, stage: TimeoutStage) -> PgError {
    PgError::AppendTimedOut {
        stream_id: stream_id.as_str().to_owned(),
        timeout,
        stage,
    }
}

/// One eligible append (or load), counted in flight while it lives: hold it until the append
/// (or load) is done, grouped or not.
#[derive(Debug)]
pub(crate) struct Admission<'a> {
    in_flight: &'a AtomicUsize,
    grouped: bool,
}

impl Admission<'_> {
    /// Whether the append goes to a group (else it is written on its own).
    pub(crate) fn grouped(&self) -> bool {
        self.grouped
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_joins_a_group_only_when_enough_others_are_in_flight() {
        let committer = Committer::new(GroupCommit::default().alone_below(2));
        let first = committer.admit(1);
        let second = committer.admit(1);
        let third = committer.admit(1);
        assert_eq!(
            (first.grouped(), second.grouped(), third.grouped()),
            (false, false, true),
            "alone while fewer than 2 others are in flight"
        );
        drop((second, third));
        assert!(
            !committer.admit(1).grouped(),
            "a finished append is no longer counted"
        );
        drop(first);
        assert_eq!(committer.in_flight.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn only_a_load_from_the_first_version_with_another_in_flight_joins_a_group() {
        let committer = Committer::new(GroupCommit::default());
        let first = committer.admit_load(1);
        let second = committer.admit_load(1);
        let catching_up = committer.admit_load(524);
        assert_eq!(
            (first.grouped(), second.grouped(), catching_up.grouped()),
            (false, true, false),
            "the first alone; a catch-up from a later version never waits for the lane"
        );
        let off = Committer::new(GroupCommit::default().group_loads(false));
        let _first = off.admit_load(1);
        assert!(!off.admit_load(1).grouped(), "grouped loads off");
    }

    #[test]
    fn alone_below_zero_groups_every_append() {
        let committer = Committer::new(GroupCommit::default().alone_below(0));
        assert!(committer.admit(1).grouped());
    }

    #[test]
    fn an_append_of_alone_from_events_or_more_is_written_alone_but_counted_in_flight() {
        let committer = Committer::new(GroupCommit::default().alone_below(0));
        let batch = committer.admit(16);
        assert!(!batch.grouped(), "16 events: alone by default");
        assert!(committer.admit(15).grouped(), "15 events: grouped");
        assert_eq!(committer.in_flight.load(Ordering::Relaxed), 1, "the batch");
        let small = Committer::new(GroupCommit::default().alone_below(0).alone_from_events(3));
        assert!(!small.admit(3).grouped());
        assert!(small.admit(2).grouped());
    }
}
