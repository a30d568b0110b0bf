//! [`ProcessOptions`]: how a process manager's projection runs.

use std::time::Duration;

use crate::{RetryPolicy, SharedClock};

/// How a [`ProcessManagerProjection`](super::ProcessManagerProjection) runs. A by-value builder.
///
/// ```
/// use std::time::Duration;
/// use cqrs_core::process::ProcessOptions;
///
/// let options = ProcessOptions::default().concurrency(32).timer_poll(Duration::from_millis(200));
/// assert_eq!(options.concurrency, 32);
/// ```
#[derive(Clone, Debug)]
#[must_use]
#[non_exhaustive]
pub struct ProcessOptions {
    /// How many instances one batch drives at once (default 16; at least 1, however set).
    pub concurrency: usize,
    /// How many instances stay loaded between batches (default 10,000; 0 turns the cache off).
    pub cache: usize,
    /// A snapshot every this many journal events (default 50; 0 never).
    pub snapshot_every: u64,
    /// The process clock: decisions' `now`, `Due::After`, when timeouts are due, status times
    /// (default the system clock; tests pass a `TestClock`).
    pub clock: SharedClock,
    /// How often the timer pump looks for due timeouts when it knows of none sooner (default 1 s).
    pub timer_poll: Duration,
    /// How many timeouts one firing takes (default 100; at least 1, however set).
    pub timer_batch: usize,
    /// How long without progress makes a running instance stuck (default 5 min).
    pub stuck_after: Duration,
    /// Retries of a conflicting record and of the timer pump (default [`RetryPolicy::default`]).
    pub retry: RetryPolicy,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            cache: 10_000,
            snapshot_every: 50,
            clock: SharedClock::default(),
            timer_poll: Duration::from_secs(1),
            timer_batch: 100,
            stuck_after: Duration::from_secs(300),
            retry: RetryPolicy::default(),
        }
    }
}

impl ProcessOptions {
    /// Instances driven at once per batch (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Instances kept loaded between batches.
    pub fn cache(mut self, n: usize) -> Self {
        self.cache = n;
        self
    }

    /// A snapshot every `n` journal events (0: never).
    pub fn snapshot_every(mut self, n: u64) -> Self {
        self.snapshot_every = n;
        self
    }

    /// The process clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The timer pump's longest sleep.
    pub fn timer_poll(mut self, every: Duration) -> Self {
        self.timer_poll = every;
        self
    }

    /// Timeouts fired per store call (at least 1).
    pub fn timer_batch(mut self, n: usize) -> Self {
        self.timer_batch = n.max(1);
        self
    }

    /// How long without progress makes an instance stuck.
    pub fn stuck_after(mut self, after: Duration) -> Self {
        self.stuck_after = after;
        self
    }

    /// Retries for conflicts and the timer pump.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}
