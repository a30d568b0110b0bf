//! [`ConsumerStatus`]: what a running consumer reports, and the board its parts write it on.

use std::collections::BTreeMap;
use std::fmt;

use cqrs_core::projection::BreakerState;

/// Where an [`IntegrationConsumer`](super::IntegrationConsumer) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsumerState {
    /// Joining the group.
    Starting,
    /// Handling messages.
    Running,
    /// A message failed transiently and is being retried (its partition waits).
    Retrying,
    /// Stopped by a message it could not handle ([`PoisonPolicy::Stop`]) or an error it
    /// cannot go on after: the offset of that message is not committed.
    ///
    /// [`PoisonPolicy::Stop`]: cqrs_core::projection::PoisonPolicy::Stop
    Failed,
    /// Shut down.
    Stopped,
}

impl fmt::Display for ConsumerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            ConsumerState::Starting => "starting",
            ConsumerState::Running => "running",
            ConsumerState::Retrying => "retrying",
            ConsumerState::Failed => "failed",
            ConsumerState::Stopped => "stopped",
        })
    }
}

/// One partition as the consumer saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionStatus {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Whether it is assigned to this consumer now.
    pub assigned: bool,
    /// The offset after the last message handled or parked (the next to handle), if any.
    pub handled_up_to: Option<i64>,
    /// The last offset this consumer committed (the next the group reads), if any.
    pub committed: Option<i64>,
    /// The partition's high-water mark (the offset the next message written will get), as
    /// last fetched from the broker (every [`ConsumerOptions::lag_interval`]), if fetched yet.
    ///
    /// [`ConsumerOptions::lag_interval`]: super::ConsumerOptions::lag_interval
    pub high_water: Option<i64>,
    /// How many messages of an assigned partition wait: the high-water mark less the next
    /// offset to handle (before this consumer handled any, less the group's committed offset,
    /// or the partition's start if it committed none); `None` until both are known.
    pub lag: Option<i64>,
    /// Messages received and waiting for the handler in this process.
    pub buffered: usize,
    /// Their size in bytes (keys, payloads, headers).
    pub buffered_bytes: usize,
}

/// What a consumer reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStatus {
    /// The consumer's name (its group).
    pub name: String,
    /// Its state.
    pub state: ConsumerState,
    /// Messages handled since it started (replays and re-driven letters included).
    pub handled: u64,
    /// Messages parked since it started, less those re-driven since.
    pub parked: u64,
    /// The circuit breaker in front of the handler.
    pub breaker: BreakerState,
    /// How many times the breaker opened.
    pub breaker_trips: u64,
    /// The last error (a transient failure, a commit that failed, why it stopped).
    pub last_error: Option<String>,
    /// The partitions it handled or holds, by topic and partition.
    pub partitions: Vec<PartitionStatus>,
}

impl ConsumerStatus {
    /// The partition `topic`/`partition`, if the consumer saw it.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionStatus> {
        self.partitions
            .iter()
            .find(|p| p.topic == topic && p.partition == partition)
    }
}

impl fmt::Display for ConsumerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "consumer {} {}: {} handled, {} parked, breaker {}",
            self.name, self.state, self.handled, self.parked, self.breaker
        )?;
        if let Some(error) = &self.last_error {
            write!(f, ", last error: {error}")?;
        }
        Ok(())
    }
}

/// A topic and partition.
pub(crate) type Tp = (String, i32);

/// One partition's progress: what this assignment handled, what was committed.
#[derive(Debug, Default)]
struct Part {
    /// The worker generation that owns it now; 0 when not assigned.
    epoch: u64,
    /// The next offset after what this assignment handled or parked.
    handled: Option<i64>,
    /// The highest `handled` ever (for waiters and the status).
    handled_ever: Option<i64>,
    committed: Option<i64>,
    /// Where the group stood when this assignment began (its committed offset, or the
    /// partition's start when it committed none), as fetched from the broker with the
    /// high-water mark: the lag counts from it until this assignment handles a message.
    group_start: Option<i64>,
    high_water: Option<i64>,
}

/// The consumer's shared state: counters, state, and each partition's progress. Workers mark
/// messages handled; the committer takes what is due; a revoke takes the revoked partitions.
#[derive(Debug)]
pub(crate) struct Board {
    name: String,
    state: ConsumerState,
    /// Messages being retried now, in any partition.
    retrying: usize,
    handled: u64,
    parked: u64,
    last_error: Option<String>,
    parts: BTreeMap<Tp, Part>,
    next_epoch: u64,
}

impl Board {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            state: ConsumerState::Starting,
            retrying: 0,
            handled: 0,
            parked: 0,
            last_error: None,
            parts: BTreeMap::new(),
            next_epoch: 1,
        }
    }

    /// Moves to `state`, unless the consumer already failed or stopped (the end is kept).
    pub(crate) fn set_state(&mut self, state: ConsumerState) {
        if !matches!(self.state, ConsumerState::Failed | ConsumerState::Stopped) {
            self.state = state;
        }
    }

    /// A message began to be retried: the consumer is retrying until every such message is
    /// done with ([`retry_ended`](Self::retry_ended)), whichever partition it is in.
    pub(crate) fn retry_began(&mut self) {
        self.retrying += 1;
        self.set_state(ConsumerState::Retrying);
    }

    /// A message that was retried is done with (handled, parked, or given up at a stop).
    pub(crate) fn retry_ended(&mut self) {
        self.retrying = self.retrying.saturating_sub(1);
        if self.retrying == 0 && self.state == ConsumerState::Retrying {
            self.set_state(ConsumerState::Running);
        }
    }

    pub(crate) fn fail(&mut self, error: String) {
        self.state = ConsumerState::Failed;
        self.last_error = Some(error);
    }

    pub(crate) fn error(&mut self, error: String) {
        self.last_error = Some(error);
    }

    /// A new worker generation owns `tp`; its epoch.
    pub(crate) fn assign(&mut self, tp: Tp) -> u64 {
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        let part = self.parts.entry(tp).or_default();
        part.epoch = epoch;
        part.handled = None;
        // Fetched anew: another member may have moved the group on since this consumer last
        // owned the partition (what it committed then tells nothing of now).
        part.group_start = None;
        epoch
    }

    /// The message before `next` of `tp` was handled (`parked`: parked) by generation `epoch`.
    /// A generation that lost the partition changes nothing but the counters.
    pub(crate) fn done(&mut self, tp: &Tp, epoch: u64, next: i64, parked: bool) {
        if parked {
            self.parked += 1;
        } else {
            self.handled += 1;
        }
        if let Some(part) = self.parts.get_mut(tp) {
            if part.epoch == epoch {
                part.handled = Some(next);
                part.handled_ever = Some(part.handled_ever.map_or(next, |h| h.max(next)));
            }
        }
    }

    /// A parked message was handled again and its letter taken.
    pub(crate) fn redriven(&mut self) {
        self.handled += 1;
        self.parked = self.parked.saturating_sub(1);
    }

    /// Offsets handled and not committed yet, of assigned partitions.
    pub(crate) fn due(&self) -> Vec<(Tp, i64)> {
        self.parts
            .iter()
            .filter(|(_, p)| p.epoch != 0)
            .filter_map(|(tp, p)| match (p.handled, p.committed) {
                (Some(h), Some(c)) if h <= c => None,
                (Some(h), _) => Some((tp.clone(), h)),
                (None, _) => None,
            })
            .collect()
    }

    pub(crate) fn committed(&mut self, offsets: &[(Tp, i64)]) {
        for (tp, next) in offsets {
            if let Some(part) = self.parts.get_mut(tp) {
                part.committed = Some(*next);
            }
        }
    }

    /// `tps` are revoked: their owners lose them; what they handled and did not commit yet.
    pub(crate) fn revoke(&mut self, tps: &[Tp]) -> Vec<(Tp, i64)> {
        let due: Vec<(Tp, i64)> = self
            .due()
            .into_iter()
            .filter(|(tp, _)| tps.contains(tp))
            .collect();
        for tp in tps {
            if let Some(part) = self.parts.get_mut(tp) {
                part.epoch = 0;
            }
        }
        due
    }

    /// The assigned partitions.
    pub(crate) fn assigned(&self) -> Vec<Tp> {
        self.parts
            .iter()
            .filter(|(_, p)| p.epoch != 0)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The assigned partitions whose lag has nothing to count from yet (this assignment has
    /// handled nothing, and the group's start is not fetched), with their assignment's epoch.
    pub(crate) fn without_start(&self) -> Vec<(Tp, u64)> {
        self.parts
            .iter()
            .filter(|(_, p)| p.epoch != 0 && p.handled.is_none() && p.group_start.is_none())
            .map(|(tp, p)| (tp.clone(), p.epoch))
            .collect()
    }

    /// Where the group stood on `tp` when its assignment `epoch` began, just fetched; nothing
    /// if the partition was assigned again meanwhile (the group may have moved on).
    pub(crate) fn group_start(&mut self, tp: &Tp, epoch: u64, next: i64) {
        if let Some(part) = self.parts.get_mut(tp) {
            if part.epoch == epoch {
                part.group_start = Some(next);
            }
        }
    }

    /// The broker's high-water mark of `tp`, just fetched.
    pub(crate) fn high_water(&mut self, tp: &Tp, high: i64) {
        if let Some(part) = self.parts.get_mut(tp) {
            part.high_water = Some(high);
        }
    }

    pub(crate) fn handled_ever(&self, tp: &Tp) -> Option<i64> {
        self.parts.get(tp).and_then(|p| p.handled_ever)
    }

    pub(crate) fn status(&self, breaker: BreakerState, breaker_trips: u64) -> ConsumerStatus {
        ConsumerStatus {
            name: self.name.clone(),
            state: self.state,
            handled: self.handled,
            parked: self.parked,
            breaker,
            breaker_trips,
            last_error: self.last_error.clone(),
            partitions: self
                .parts
                .iter()
                .map(|((topic, partition), p)| PartitionStatus {
                    topic: topic.clone(),
                    partition: *partition,
                    assigned: p.epoch != 0,
                    handled_up_to: p.handled_ever,
                    committed: p.committed,
                    high_water: p.high_water,
                    lag: match (p.epoch, p.high_water, p.handled.or(p.group_start)) {
                        (0, _, _) | (_, None, _) | (_, _, None) => None,
                        (_, Some(high), Some(next)) => Some(high.saturating_sub(next).max(0)),
                    },
                    buffered: 0,
                    buffered_bytes: 0,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_retries_while_any_of_its_messages_does() {
        // Two partitions fail; one recovers while the other still fails.
        let mut board = Board::new("c");
        board.set_state(ConsumerState::Running);
        board.retry_began();
        board.retry_began();
        assert_eq!(board.state, ConsumerState::Retrying);
        board.retry_ended();
        assert_eq!(board.state, ConsumerState::Retrying, "one still retries");
        board.retry_ended();
        assert_eq!(board.state, ConsumerState::Running);
        // A retry that ended by parking its message, or by a stop, ends all the same; the
        // end of a consumer stays.
        board.retry_began();
        board.set_state(ConsumerState::Stopped);
        board.retry_ended();
        assert_eq!(board.state, ConsumerState::Stopped);
    }

    #[test]
    fn a_group_start_fetched_for_an_assignment_since_replaced_is_not_taken() {
        let mut board = Board::new("c");
        let tp = ("t".to_owned(), 0);
        let first = board.assign(tp.clone());
        assert_eq!(board.without_start(), [(tp.clone(), first)]);
        // Revoked and assigned again while the fetch was on its way.
        board.revoke(std::slice::from_ref(&tp));
        let second = board.assign(tp.clone());
        board.high_water(&tp, 10);
        board.group_start(&tp, first, 2);
        let lag = |board: &Board| board.status(BreakerState::Closed, 0).partitions[0].lag;
        assert_eq!(lag(&board), None, "the old fetch counts for nothing");
        board.group_start(&tp, second, 7);
        assert_eq!(lag(&board), Some(3));
    }

    #[test]
    fn only_the_owning_generation_moves_the_offset_and_a_revoke_takes_what_is_due() {
        let mut board = Board::new("c");
        let tp = ("t".to_owned(), 0);
        let old = board.assign(tp.clone());
        board.done(&tp, old, 5, false);
        assert_eq!(board.due(), [(tp.clone(), 5)]);
        board.committed(&[(tp.clone(), 5)]);
        assert!(board.due().is_empty(), "nothing new to commit");
        board.done(&tp, old, 7, true);
        assert_eq!(board.revoke(std::slice::from_ref(&tp)), [(tp.clone(), 7)]);
        board.committed(&[(tp.clone(), 7)]);
        board.done(&tp, old, 9, false);
        assert!(
            board.due().is_empty(),
            "a revoked generation commits nothing"
        );
        let new = board.assign(tp.clone());
        assert!(
            board.due().is_empty(),
            "a new owner starts from what it handles"
        );
        board.done(&tp, new, 6, false);
        assert!(
            board.due().is_empty(),
            "behind the last commit: nothing to commit"
        );
        board.done(&tp, new, 8, false);
        assert_eq!(board.due(), [(tp.clone(), 8)]);
        let status = board.status(BreakerState::Closed, 0);
        assert_eq!((status.handled, status.parked), (4, 1));
        assert_eq!(status.partitions[0].handled_up_to, Some(8));
    }
}
