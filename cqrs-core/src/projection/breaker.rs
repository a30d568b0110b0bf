//! [`CircuitBreaker`]: stop hammering a sink that keeps failing.

use std::time::Duration;

// tokio's clock: the runner sleeps on it, and tests can pause and advance it.
use tokio::time::Instant;

/// Where a [`CircuitBreaker`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are held back until the open period ends.
    Open,
    /// One trial call goes through; its outcome closes or reopens the breaker.
    HalfOpen,
}

impl BreakerState {
    /// Its name: `closed`, `open`, `half-open` (as stores record it).
    ///
    /// ```
    /// use cqrs_core::projection::BreakerState;
    ///
    /// for state in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
    ///     assert_eq!(BreakerState::from_name(state.as_str()), Some(state));
    /// }
    /// assert_eq!(BreakerState::from_name("ajar"), None);
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    /// The state named `name` ([`as_str`](Self::as_str)), if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ]
        .into_iter()
        .find(|state| state.as_str() == name)
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A runner's circuit breaker as it recorded it in the store
/// ([`CheckpointStore::record_breaker`](crate::CheckpointStore::record_breaker)), so people
/// outside the runner's process (`cqrs status`, the console) see a sink that keeps failing.
///
/// ```
/// use cqrs_core::projection::{BreakerRecord, BreakerState};
///
/// let open = BreakerRecord::new(BreakerState::Open, Some("search node: 503".repeat(200)));
/// assert!(open.last_error.as_ref().is_some_and(|e| e.len() <= BreakerRecord::MAX_ERROR_BYTES));
/// // A closed breaker carries no error.
/// assert_eq!(BreakerRecord::new(BreakerState::Closed, Some("gone".into())).last_error, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerRecord {
    /// Where the breaker is.
    pub state: BreakerState,
    /// The transient error that opened it (or the last one seen while it was not closed).
    pub last_error: Option<String>,
}

impl BreakerRecord {
    /// The longest error text kept, in bytes (cut at a character boundary).
    pub const MAX_ERROR_BYTES: usize = 1000;

    /// A record of `state`; the error is dropped when closed, and cut to
    /// [`MAX_ERROR_BYTES`](Self::MAX_ERROR_BYTES).
    pub fn new(state: BreakerState, last_error: Option<String>) -> Self {
        let last_error = last_error
            .filter(|_| state != BreakerState::Closed)
            .map(|mut error| {
                if error.len() > Self::MAX_ERROR_BYTES {
                    let mut end = Self::MAX_ERROR_BYTES;
                    while !error.is_char_boundary(end) {
                        end -= 1;
                    }
                    error.truncate(end);
                }
                error
            });
        Self { state, last_error }
    }
}

/// A circuit breaker: after `threshold` consecutive failures it opens for `open_for`, then lets
/// one trial through (half-open): a success closes it, a failure opens it again.
///
/// Time is tokio's clock ([`tokio::time::Instant`]), so a paused test runtime controls it.
///
/// ```
/// use cqrs_core::backend::CircuitBreaker;
/// use cqrs_core::projection::BreakerState;
/// use std::time::Duration;
///
/// let mut breaker = CircuitBreaker::new(2, Duration::from_secs(30));
/// breaker.record_failure();
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// breaker.record_failure();
/// assert_eq!(breaker.state(), BreakerState::Open);
/// assert!(breaker.wait_time() > Duration::ZERO);
/// ```
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    open_for: Duration,
    failures: u32,
    opened_at: Option<Instant>,
    trips: u64,
}

impl CircuitBreaker {
    /// A closed breaker opening after `threshold` consecutive failures, for `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            failures: 0,
            opened_at: None,
            trips: 0,
        }
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(at) if at.elapsed() < self.open_for => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// How long until a call may go through (zero unless open).
    pub fn wait_time(&self) -> Duration {
        match self.opened_at {
            Some(at) => self.open_for.saturating_sub(at.elapsed()),
            None => Duration::ZERO,
        }
    }

    /// A call succeeded: close.
    pub fn record_success(&mut self) {
        self.failures = 0;
        self.opened_at = None;
    }

    /// A call failed: count it, and open when the threshold is reached (or the trial failed).
    pub fn record_failure(&mut self) {
        self.failures = self.failures.saturating_add(1);
        let trial_failed = self.state() == BreakerState::HalfOpen;
        if trial_failed || (self.opened_at.is_none() && self.failures >= self.threshold) {
            self.opened_at = Some(Instant::now());
            self.trips += 1;
        }
    }

    /// How many times the breaker has opened.
    pub fn trips(&self) -> u64 {
        self.trips
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The open window runs on tokio's clock: paused, only `advance` moves it, so the test
    /// sees each side of the window without racing real time.
    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_and_closes_after_a_good_trial() {
        let mut b = CircuitBreaker::new(3, Duration::from_millis(20));
        b.record_failure();
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.trips(), 1);
        tokio::time::advance(Duration::from_millis(19)).await;
        assert_eq!(b.state(), BreakerState::Open, "still inside the window");
        assert_eq!(b.wait_time(), Duration::from_millis(1));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen, "the window is over");
        assert_eq!(b.wait_time(), Duration::ZERO);
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open, "a failed trial reopens");
        assert_eq!(b.trips(), 2);
        assert_eq!(
            b.wait_time(),
            Duration::from_millis(20),
            "a full new window"
        );
        tokio::time::advance(Duration::from_millis(20)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.wait_time(), Duration::ZERO);
    }
}
