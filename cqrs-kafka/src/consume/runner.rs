//! [`IntegrationConsumer`]: reads the subscribed topics as one member of the consumer group
//! named after it, hands each partition's messages to that partition's worker, and commits
//! what the workers handled.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cqrs_core::backend::CircuitBreaker;
use cqrs_core::bus::BusDeadLetterStore;
use cqrs_core::projection::PoisonPolicy;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::commit::commit_offsets;
use super::context::BusContext;
use super::status::{Board, ConsumerState, Tp};
use super::{partition, ConsumerHandle, ConsumerOptions, IntegrationHandler};
use crate::consumer::group_config;
use crate::{KafkaConfig, KafkaError, Received, Result};

/// A consumer that turns integration events into this service's effects, exactly once in
/// effect: each message is handled by an [`IntegrationHandler`] whose commands carry an id
/// derived from the message ([`Incoming::command_context`](super::Incoming::command_context)),
/// and its offset is committed only after the handler returned (or the message was parked).
///
/// - One consumer group per name (`group.id` = the name); Kafka assigns the partitions.
/// - Per-key order: a partition's messages are handled one after another; partitions run
///   concurrently, up to [`ConsumerOptions::concurrency`].
/// - A subscribed topic the broker does not show yet (created after the consumer started) is
///   looked for every 5 s (`topic.metadata.refresh.interval.ms`; a
///   [`KafkaConfig::with_setting`] of it wins) and read from its start once it shows; until
///   then the status's last error says the topic is unknown.
/// - Commits every [`ConsumerOptions::commit_interval`], when partitions are revoked, and at
///   shutdown; a crash replays what was handled since the last commit, and the replay changes
///   nothing.
/// - Transient failures are retried with backoff behind a circuit breaker; the partition waits
///   (and is paused once its buffer fills).
/// - A message that does not decode, of a type the handler does not declare, or that the
///   handler calls poison, is parked whole in the [`BusDeadLetterStore`] with every later
///   message of its key ([`PoisonPolicy::Park`]), or stops the consumer before its offset
///   ([`PoisonPolicy::Stop`]).
pub struct IntegrationConsumer {
    name: String,
    config: KafkaConfig,
    topics: Vec<String>,
    handler: Arc<dyn IntegrationHandler>,
    dead_letters: Option<Arc<dyn BusDeadLetterStore>>,
    options: ConsumerOptions,
}

impl fmt::Debug for IntegrationConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntegrationConsumer")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("topics", &self.topics)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl IntegrationConsumer {
    /// Consumer `name` (its group) of `topics` on the brokers of `config`, handling with
    /// `handler`. Without [`with_dead_letters`](Self::with_dead_letters) it stops at the first
    /// message it cannot handle.
    pub fn new(
        config: &KafkaConfig,
        name: &str,
        topics: &[&str],
        handler: impl IntegrationHandler,
    ) -> Self {
        Self {
            name: name.to_owned(),
            config: config.clone(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            handler: Arc::new(handler),
            dead_letters: None,
            options: ConsumerOptions::default(),
        }
    }

    /// Parks messages it cannot handle in `store` (and makes [`PoisonPolicy::Park`] the
    /// default).
    #[must_use]
    pub fn with_dead_letters(mut self, store: Arc<dyn BusDeadLetterStore>) -> Self {
        self.dead_letters = Some(store);
        self
    }

    /// With `options`.
    #[must_use]
    pub fn with_options(mut self, options: ConsumerOptions) -> Self {
        self.options = options;
        self
    }

    /// Creates the client, subscribes and starts consuming on the current tokio runtime.
    /// Fails if the client cannot be created or the subscription is refused (no broker is
    /// contacted before).
    pub fn spawn(self) -> Result<ConsumerHandle> {
        let policy = match (self.options.poison, &self.dead_letters) {
            (Some(policy), Some(_)) => policy,
            (_, None) => PoisonPolicy::Stop,
            (None, Some(_)) => PoisonPolicy::Park,
        };
        let core = Arc::new(Core::new(&self.name, &self.options));
        let consumer: StreamConsumer<BusContext> = group_config(&self.config, &self.name)
            .create_with_context(BusContext { core: core.clone() })
            .map_err(KafkaError::client("create the consumer"))?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(KafkaError::client("subscribe"))?;
        let types: HashSet<&'static str> = self.handler.event_types().into_iter().collect();
        let shared = Arc::new(Shared {
            core: core.clone(),
            consumer: Arc::new(consumer),
            handler: self.handler,
            types,
            dead_letters: self.dead_letters,
            policy,
            permits: Semaphore::new(self.options.concurrency),
            options: self.options,
        });
        tokio::spawn(watch_lag(shared.clone()));
        let task = tokio::spawn(supervise(shared));
        Ok(ConsumerHandle::new(core, task))
    }
}

/// What the consumer's parts share with its handle and the rebalance callback.
pub(crate) struct Core {
    pub(crate) name: Arc<str>,
    board: Mutex<Board>,
    breaker: Mutex<CircuitBreaker>,
    lanes: Mutex<HashMap<Tp, LaneEntry>>,
    changed: watch::Sender<u64>,
    stop: watch::Sender<bool>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its state whole; a panic elsewhere cannot tear it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Core {
    /// Each partition's messages received and waiting for the handler, in `status`.
    pub(crate) fn fill_buffers(&self, status: &mut super::ConsumerStatus) {
        let lanes = lock(&self.lanes);
        for partition in &mut status.partitions {
            let tp: Tp = (partition.topic.clone(), partition.partition);
            if let Some(entry) = lanes.get(&tp) {
                partition.buffered = entry.lane.queued.load(Ordering::Acquire);
                partition.buffered_bytes = entry.lane.bytes.load(Ordering::Acquire);
            }
        }
    }

    pub(super) fn new(name: &str, options: &ConsumerOptions) -> Self {
        Self {
            name: Arc::from(name),
            board: Mutex::new(Board::new(name)),
            breaker: Mutex::new(CircuitBreaker::new(
                options.breaker_threshold,
                options.breaker_open_for,
            )),
            lanes: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
            stop: watch::channel(false).0,
        }
    }

    pub(crate) fn board(&self) -> MutexGuard<'_, Board> {
        lock(&self.board)
    }

    pub(crate) fn breaker(&self) -> MutexGuard<'_, CircuitBreaker> {
        lock(&self.breaker)
    }

    /// Wakes the handle's waiters.
    pub(crate) fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub(crate) fn request_stop(&self) {
        self.stop.send_replace(true);
    }

    pub(crate) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// The revoked partitions' workers stop after the message in hand.
    pub(crate) fn revoke_lanes(&self, tps: &[Tp]) {
        let mut lanes = lock(&self.lanes);
        for tp in tps {
            if let Some(entry) = lanes.remove(tp) {
                entry.lane.revoked.store(true, Ordering::Release);
            }
        }
    }
}

/// One partition's worker as the dispatcher sees it.
struct LaneEntry {
    lane: Arc<Lane>,
    messages: UnboundedSender<Received>,
    /// Messages before this offset were dispatched already (a resumed partition may send them
    /// again).
    next_offset: i64,
}

/// What the dispatcher and a partition's worker share.
pub(crate) struct Lane {
    pub(crate) tp: Tp,
    pub(crate) epoch: u64,
    queued: AtomicUsize,
    /// The bytes of the messages queued.
    bytes: AtomicUsize,
    paused: AtomicBool,
    /// Held while deciding to pause or resume and doing it, so a pause decided on a full queue
    /// and a resume decided on a drained one never cross (a partition paused with nothing
    /// left to take stays paused for good).
    switch: Mutex<()>,
    pub(crate) revoked: AtomicBool,
}

/// What one run's tasks share.
pub(crate) struct Shared {
    pub(crate) core: Arc<Core>,
    consumer: Arc<StreamConsumer<BusContext>>,
    pub(crate) handler: Arc<dyn IntegrationHandler>,
    pub(crate) types: HashSet<&'static str>,
    pub(crate) dead_letters: Option<Arc<dyn BusDeadLetterStore>>,
    pub(crate) policy: PoisonPolicy,
    pub(crate) permits: Semaphore,
    pub(crate) options: ConsumerOptions,
}

impl Shared {
    /// A worker took `message` off its lane: resume the partition once half its buffer is
    /// free, by count and by bytes.
    pub(crate) fn took(&self, lane: &Lane, message: &Received) {
        lane.queued.fetch_sub(1, Ordering::AcqRel);
        lane.bytes.fetch_sub(message.size(), Ordering::AcqRel);
        let _switching = lock(&lane.switch);
        if lane.paused.load(Ordering::Acquire) && self.drained(lane) {
            lane.paused.store(false, Ordering::Release);
            self.pause_or_resume(lane, false);
        }
    }

    /// Whether `lane`'s queue is full, by count or by bytes.
    fn full(&self, lane: &Lane) -> bool {
        lane.queued.load(Ordering::Acquire) >= self.options.buffered
            || lane.bytes.load(Ordering::Acquire) >= self.options.buffered_bytes
    }

    /// Whether half of `lane`'s queue is free again, by count and by bytes.
    fn drained(&self, lane: &Lane) -> bool {
        lane.queued.load(Ordering::Acquire) <= self.options.buffered / 2
            && lane.bytes.load(Ordering::Acquire) <= self.options.buffered_bytes / 2
    }

    fn pause_or_resume(&self, lane: &Lane, pause: bool) {
        let mut list = TopicPartitionList::with_capacity(1);
        list.add_partition(&lane.tp.0, lane.tp.1);
        let result = if pause {
            self.consumer.pause(&list)
        } else {
            self.consumer.resume(&list)
        };
        if let Err(error) = result {
            // A partition revoked meanwhile cannot be paused or resumed: nothing to do.
            tracing::debug!(consumer = %self.core.name, %error, pause, "pause or resume failed");
        }
    }

    /// A lane and its worker for the newly assigned partition `tp`.
    fn start_lane(self: &Arc<Self>, tp: Tp, workers: &mut JoinSet<()>) -> LaneEntry {
        let epoch = self.core.board().assign(tp.clone());
        let lane = Arc::new(Lane {
            tp,
            epoch,
            queued: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            switch: Mutex::new(()),
            revoked: AtomicBool::new(false),
        });
        let (sender, receiver) = mpsc::unbounded_channel();
        workers.spawn(partition::work(self.clone(), lane.clone(), receiver));
        LaneEntry {
            lane,
            messages: sender,
            next_offset: i64::MIN,
        }
    }

    /// Starts a worker for each assigned partition that has none: only a worker carries out
    /// the re-drive requests of its partition's letters, and a partition no message comes to
    /// (a quiet one after a restart or a rebalance) would otherwise never get one.
    fn start_quiet_lanes(self: &Arc<Self>, workers: &mut JoinSet<()>) {
        let assigned = match self.consumer.assignment() {
            Ok(assigned) => assigned,
            Err(error) => {
                tracing::debug!(consumer = %self.core.name, %error, "no assignment to look at");
                return;
            }
        };
        let mut lanes = lock(&self.core.lanes);
        for element in assigned.elements() {
            let tp: Tp = (element.topic().to_owned(), element.partition());
            lanes
                .entry(tp.clone())
                .or_insert_with(|| self.start_lane(tp, workers));
        }
    }

    /// Hands `message` to its partition's worker, starting one for a newly assigned partition.
    fn dispatch(self: &Arc<Self>, message: Received, workers: &mut JoinSet<()>) {
        let tp: Tp = (message.topic().to_owned(), message.partition());
        let mut lanes = lock(&self.core.lanes);
        let entry = lanes
            .entry(tp.clone())
            .or_insert_with(|| self.start_lane(tp, workers));
        if message.offset() < entry.next_offset {
            return;
        }
        entry.next_offset = message.offset().saturating_add(1);
        entry.lane.queued.fetch_add(1, Ordering::AcqRel);
        entry.lane.bytes.fetch_add(message.size(), Ordering::AcqRel);
        let lane = entry.lane.clone();
        if entry.messages.send(message).is_err() {
            // The worker ended (the consumer is stopping): the message stays uncommitted.
            return;
        }
        drop(lanes);
        // Decided on the queue as it is under the switch: the worker may have taken what was
        // just queued, and then there is nothing to pause for.
        let _switching = lock(&lane.switch);
        if !lane.paused.load(Ordering::Acquire) && self.full(&lane) {
            lane.paused.store(true, Ordering::Release);
            self.pause_or_resume(&lane, true);
        }
    }

    /// Commits what the workers handled since the last commit.
    async fn commit_due(&self) {
        let due = self.core.board().due();
        if due.is_empty() {
            return;
        }
        let consumer = self.consumer.clone();
        let offsets = due.clone();
        let result =
            tokio::task::spawn_blocking(move || commit_offsets(&*consumer, &offsets)).await;
        match result {
            Ok(Ok(())) => self.core.board().committed(&due),
            Ok(Err(error)) => {
                tracing::warn!(consumer = %self.core.name, %error, "commit failed");
                self.core.board().error(format!("commit failed: {error}"));
            }
            Err(error) => self
                .core
                .board()
                .error(format!("commit task failed: {error}")),
        }
        self.core.notify();
    }
}

/// Runs the consumer's loop; if it panics, the consumer is failed and stopped at once (the
/// handle's status said `Running` until someone shut it down, while nothing was read).
async fn supervise(shared: Arc<Shared>) {
    let core = shared.core.clone();
    if let Err(error) = tokio::spawn(run(shared)).await {
        if error.is_panic() {
            core.board()
                .fail(format!("the consumer's task panicked: {error}"));
            core.request_stop();
            core.notify();
        }
    }
}

/// Fetches the assigned partitions' high-water marks every `lag_interval`, until the consumer
/// stops, on a blocking thread (each fetch is a broker round trip).
async fn watch_lag(shared: Arc<Shared>) {
    let mut stop = shared.core.stop_signal();
    let mut tick = tokio::time::interval(shared.options.lag_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stopped(&mut stop) => return,
            _ = tick.tick() => {}
        }
        let (assigned, without_start) = {
            let board = shared.core.board();
            (board.assigned(), board.without_start())
        };
        let consumer = shared.consumer.clone();
        let timeout = watermark_timeout(shared.options.lag_interval);
        let (marks, starts) = tokio::task::spawn_blocking(move || {
            let marks: Vec<(Tp, i64, i64)> = assigned
                .into_iter()
                .filter_map(|tp| {
                    let (low, high) = consumer.fetch_watermarks(&tp.0, tp.1, timeout).ok()?;
                    Some((tp, low, high))
                })
                .collect();
            let starts = group_starts(&consumer, without_start, &marks, timeout);
            (marks, starts)
        })
        .await
        .unwrap_or_default();
        {
            let mut board = shared.core.board();
            for (tp, _, high) in &marks {
                board.high_water(tp, *high);
            }
            for (tp, epoch, next) in &starts {
                board.group_start(tp, *epoch, *next);
            }
        }
        shared.core.notify();
    }
}

/// Where the group stands on each of `without_start` (partition and assignment epoch): its
/// committed offset, or the partition's low watermark (in `marks`) where it committed none;
/// nothing when the broker could not say.
fn group_starts(
    consumer: &StreamConsumer<BusContext>,
    without_start: Vec<(Tp, u64)>,
    marks: &[(Tp, i64, i64)],
    timeout: Duration,
) -> Vec<(Tp, u64, i64)> {
    if without_start.is_empty() {
        return Vec::new();
    }
    let mut list = TopicPartitionList::with_capacity(without_start.len());
    for ((topic, partition), _) in &without_start {
        list.add_partition(topic, *partition);
    }
    let committed: HashMap<Tp, Offset> = match consumer.committed_offsets(list, timeout) {
        Ok(list) => (list.elements().iter())
            .map(|e| ((e.topic().to_owned(), e.partition()), e.offset()))
            .collect(),
        Err(error) => {
            tracing::debug!(%error, "the group's committed offsets could not be fetched");
            return Vec::new();
        }
    };
    without_start
        .into_iter()
        .filter_map(|(tp, epoch)| {
            let next = match committed.get(&tp)? {
                Offset::Offset(next) => *next,
                // The group committed nothing: it reads from the partition's start.
                _ => marks.iter().find(|(t, _, _)| *t == tp)?.1,
            };
            Some((tp, epoch, next))
        })
        .collect()
}

/// How long one high-water fetch may take: the lag interval, but never less than a second (a
/// broker round trip on a busy machine can take longer than a short interval, and a fetch that
/// always times out leaves the lag unknown forever) nor more than ten.
fn watermark_timeout(lag_interval: Duration) -> Duration {
    lag_interval.clamp(Duration::from_secs(1), Duration::from_secs(10))
}

/// Returns once the consumer is stopping.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A closed channel: its sender (the core) is gone, so is the consumer.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// The consumer's main task: receive and dispatch, commit on the interval; at the end, stop
/// the workers, commit what they handled, leave the group.
async fn run(shared: Arc<Shared>) {
    let mut workers = JoinSet::new();
    let mut stop = shared.core.stop_signal();
    let mut tick = tokio::time::interval(shared.options.commit_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet = tokio::time::interval(shared.options.redrive_interval);
    quiet.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    shared.core.board().set_state(ConsumerState::Running);
    shared.core.notify();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            Some(ended) = workers.join_next(), if !workers.is_empty() => {
                if let Err(error) = ended {
                    if error.is_panic() {
                        shared.core.board().fail(format!("a partition worker panicked: {error}"));
                        shared.core.request_stop();
                    }
                }
            }
            _ = tick.tick() => shared.commit_due().await,
            _ = quiet.tick(), if shared.dead_letters.is_some() => {
                shared.start_quiet_lanes(&mut workers);
            }
            received = shared.consumer.recv() => match received {
                Ok(message) => {
                    let message = Received::copy_of(&message);
                    shared.dispatch(message, &mut workers);
                }
                Err(error) => {
                    let error = KafkaError::client("receive a message")(error);
                    tracing::warn!(consumer = %shared.core.name, %error, "receive failed");
                    shared.core.board().error(error.to_string());
                    shared.core.notify();
                    let mut stop = shared.core.stop_signal();
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        () = stopped(&mut stop) => {}
                    }
                }
            },
        }
    }
    shared.core.request_stop();
    lock(&shared.core.lanes).clear();
    while let Some(ended) = workers.join_next().await {
        if let Err(error) = ended {
            if error.is_panic() {
                shared
                    .core
                    .board()
                    .fail(format!("a partition worker panicked: {error}"));
            }
        }
    }
    shared.commit_due().await;
    shared.consumer.unsubscribe();
    shared.core.board().set_state(ConsumerState::Stopped);
    shared.core.notify();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_lag_interval_still_gives_each_fetch_a_second() {
        assert_eq!(
            watermark_timeout(Duration::from_millis(20)),
            Duration::from_secs(1)
        );
        assert_eq!(
            watermark_timeout(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert_eq!(
            watermark_timeout(Duration::from_secs(60)),
            Duration::from_secs(10)
        );
    }
}
