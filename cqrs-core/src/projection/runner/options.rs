//! [`RunnerOptions`] and [`PoisonPolicy`]: how a runner reads, retries and shares work.

use std::time::Duration;

use crate::{RetryPolicy, Upcasters};

/// What the runner does with an event the projection can never apply.
///
/// The default depends on the runner: [`Park`](Self::Park) when it was given a dead-letter
/// store ([`ProjectionRunner::with_dead_letters`], or
/// [`ProjectionRunner::for_store`], which gives it one), [`Stop`](Self::Stop) otherwise. A
/// policy set with [`RunnerOptions::poison`] wins.
///
/// [`ProjectionRunner::with_dead_letters`]: super::ProjectionRunner::with_dead_letters
/// [`ProjectionRunner::for_store`]: super::ProjectionRunner::for_store
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoisonPolicy {
    /// Stop the projection (state `Failed`) with the checkpoint just before the event, so an
    /// operator can fix the cause and restart. The default without a dead-letter store.
    Stop,
    /// Park the event as a dead letter, park later events with the same key too (so each
    /// document keeps its order), and go on. The default with a dead-letter store; without
    /// one, the projection fails at the first poison event.
    Park,
}

/// How a [`ProjectionRunner`](super::ProjectionRunner) reads, retries and shares work.
#[derive(Clone, Debug)]
#[must_use]
pub struct RunnerOptions {
    pub(super) batch_size: usize,
    pub(super) buffered_batches: usize,
    pub(super) poll_interval: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) breaker_threshold: u32,
    pub(super) breaker_open_for: Duration,
    /// `None`: [`PoisonPolicy::Park`] with a dead-letter store, [`PoisonPolicy::Stop`] without.
    pub(super) poison: Option<PoisonPolicy>,
    pub(in crate::projection) lease_ttl: Duration,
    pub(in crate::projection) owner: String,
    /// The name one running worker holds leases as: `owner` and a suffix of its own, made
    /// when it spawns ([`instance`](Self::instance)); `None` until then.
    pub(in crate::projection) lease_owner: Option<String>,
    pub(in crate::projection) checkpoint_name: Option<String>,
    pub(super) upcasters: Upcasters,
    pub(super) checkpoint_interval: Duration,
}

impl Default for RunnerOptions {
    /// Batches of 500, two batches read ahead, a poll every second when idle, transient
    /// failures retried without end from 50 ms up to 10 s, a breaker opening for 5 s after 5
    /// failures in a row, poison parked when the runner has a dead-letter store and stopping
    /// the projection otherwise, leases of 10 s, a checkpoint at most
    /// every 250 ms while catching up.
    fn default() -> Self {
        Self {
            batch_size: 500,
            buffered_batches: 2,
            poll_interval: Duration::from_secs(1),
            retry: RetryPolicy::new(u32::MAX)
                .delays(Duration::from_millis(50), Duration::from_secs(10)),
            breaker_threshold: 5,
            breaker_open_for: Duration::from_secs(5),
            poison: None,
            lease_ttl: Duration::from_secs(10),
            // Unique without help: in containers every replica may be process 1.
            owner: format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple()),
            lease_owner: None,
            checkpoint_name: None,
            upcasters: Upcasters::new(),
            checkpoint_interval: Duration::from_millis(250),
        }
    }
}

impl RunnerOptions {
    /// The most batches a reader buffers ahead of the projection
    /// ([`buffered_batches`](Self::buffered_batches)).
    pub const MAX_BUFFERED_BATCHES: usize = 1 << 16;

    /// The shortest [`poll_interval`](Self::poll_interval): zero woke an idle runner again at
    /// once, reading the feed (or trying the lease) back to back.
    pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(1);

    /// These options for one running worker: its lease owner made unique to it, unless it
    /// was given one (a partitioned worker's, for its partitions' runners).
    pub(in crate::projection) fn instance(mut self) -> Self {
        if self.lease_owner.is_none() {
            let random = uuid::Uuid::now_v7().simple().to_string();
            let suffix = &random[random.len() - 8..];
            self.lease_owner = Some(format!("{}~{suffix}", self.owner));
        }
        self
    }

    /// The name this worker holds leases as.
    pub(in crate::projection) fn lease_owner(&self) -> &str {
        self.lease_owner.as_deref().unwrap_or(&self.owner)
    }

    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Events per feed read and per `apply` (small batches that queued up while the projection
    /// was busy are applied together, up to twice this many).
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch_size = events.max(1);
        self
    }
    /// How many batches the reader may fetch ahead of the projection (the bulkhead's buffer):
    /// at least one, at most [`MAX_BUFFERED_BATCHES`](Self::MAX_BUFFERED_BATCHES).
    pub fn buffered_batches(mut self, batches: usize) -> Self {
        self.buffered_batches = batches.clamp(1, Self::MAX_BUFFERED_BATCHES);
        self
    }
    /// How often to look for new events when no signal comes (and for the lease while another
    /// worker holds it): at least [`MIN_POLL_INTERVAL`](Self::MIN_POLL_INTERVAL).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Self::MIN_POLL_INTERVAL);
        self
    }
    /// Backoff for transient failures.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
    /// The circuit breaker: opens after `threshold` failures in a row, for `open_for`.
    pub fn breaker(mut self, threshold: u32, open_for: Duration) -> Self {
        self.breaker_threshold = threshold;
        self.breaker_open_for = open_for;
        self
    }
    /// What to do with poison events. Default: [`PoisonPolicy::Park`] when the runner has a
    /// dead-letter store, [`PoisonPolicy::Stop`] when it has none.
    pub fn poison(mut self, policy: PoisonPolicy) -> Self {
        self.poison = Some(policy);
        self
    }
    /// How long a lease lasts without renewal. A keeper task renews it every third of that,
    /// beside the work; a worker that cannot confirm its lease before it expires stops
    /// leading at once (its apply in flight is dropped, nothing more is saved). At least
    /// [`MIN_LEASE_TTL`](crate::backend::MIN_LEASE_TTL), at most
    /// [`MAX_LEASE_TTL`](crate::backend::MAX_LEASE_TTL): what every store takes.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.clamp(crate::backend::MIN_LEASE_TTL, crate::backend::MAX_LEASE_TTL);
        self
    }
    /// This worker's name (default: the process id and a random part, unique among workers,
    /// as a partitioned worker's id must be). In leases each spawned
    /// worker adds a suffix of its own (`{owner}~{8 hex digits}`): two workers given the same
    /// name (replicas configured alike, a restart while the old process lingers) never hold
    /// one lease at once, the second stands by until the first lets go.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self.lease_owner = None;
        self
    }
    /// The name of this run of the projection (default: the projection's name): its
    /// checkpoint's, its lease's and its dead letters', and its status's and metrics' label.
    /// A rebuild or a replay into another sink uses its own, and neither holds back nor
    /// re-drives the live run's letters nor counts in its metrics.
    pub fn checkpoint_name(mut self, name: impl Into<String>) -> Self {
        self.checkpoint_name = Some(name.into());
        self
    }
    /// Upcasts events before the projection sees them.
    pub fn upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }
    /// While catching up (full batches back to back), settle applied batches (make them
    /// visible, save the checkpoint) at most this often, as one: a catch-up of many batches
    /// then costs a few checkpoint commits, not one per batch. A batch that reaches the head
    /// of the feed settles at once, so a live projection's readers wait for nothing more, and
    /// none waits longer than this. A crash replays at most this much more (the projections
    /// the framework ships are idempotent). `Duration::ZERO` settles every batch;
    /// `Duration::MAX` settles only at the head of the feed.
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::RunnerOptions;

    #[test]
    fn a_zero_poll_interval_is_raised_to_the_least_one() {
        // Zero woke the reader, and a worker waiting for the lease, again at once: an idle
        // runner read the feed (or tried the lease) back to back, a core and the database busy.
        let options = RunnerOptions::new().poll_interval(Duration::ZERO);
        assert_eq!(options.poll_interval, RunnerOptions::MIN_POLL_INTERVAL);
        let options = RunnerOptions::new().poll_interval(Duration::from_millis(250));
        assert_eq!(options.poll_interval, Duration::from_millis(250));
    }
}
