//! [`RetryPolicy`]: bounded exponential backoff with full jitter.

use std::time::Duration;

/// How often, and how patiently, to try again.
///
/// The delay before retry `n` (counting from 1) is a random duration between zero and
/// `min(max_delay, initial_delay * 2^(n-1))` ("full jitter"), so racing clients spread out.
///
/// ```
/// use cqrs_core::RetryPolicy;
/// use std::time::Duration;
///
/// let policy = RetryPolicy::new(5).delays(Duration::from_millis(10), Duration::from_secs(1));
/// assert_eq!(policy.max_attempts(), 5);
/// assert!(policy.delay(3) <= Duration::from_millis(40));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_delay: Duration,
    max_delay: Duration,
    jitter: bool,
}

impl RetryPolicy {
    /// At most `max_attempts` attempts in all (at least one), with delays from 1 ms up to 100 ms.
    pub fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(100),
            jitter: true,
        }
    }

    /// Whether each delay is a random part of its ceiling (`true`, the default: racing clients
    /// spread out) or the whole ceiling (`false`: for a single client, such as a rebuild, whose
    /// caller counts on the backoff).
    #[must_use]
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// One attempt, no retry.
    pub fn never() -> Self {
        Self::new(1)
    }

    /// Sets the first delay's ceiling and the cap on all delays.
    #[must_use]
    pub fn delays(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_delay = initial;
        self.max_delay = max.max(initial);
        self
    }

    /// How many attempts in all.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The ceiling of the delay before retry `retry` (1 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// The delay before retry `retry` (1 for the first retry): jittered unless
    /// [`jitter(false)`](Self::jitter).
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        if !self.jitter {
            return ceiling;
        }
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }
}

impl Default for RetryPolicy {
    /// Ten attempts, delays from 1 ms up to 100 ms.
    fn default() -> Self {
        Self::new(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let p = RetryPolicy::new(20).delays(Duration::from_millis(2), Duration::from_millis(50));
        assert_eq!(p.ceiling(1), Duration::from_millis(2));
        assert_eq!(p.ceiling(2), Duration::from_millis(4));
        assert_eq!(p.ceiling(5), Duration::from_millis(32));
        assert_eq!(p.ceiling(6), Duration::from_millis(50));
        assert_eq!(p.ceiling(60), Duration::from_millis(50));
        for retry in 1..40 {
            assert!(p.delay(retry) <= p.ceiling(retry));
        }
    }

    #[test]
    fn without_jitter_each_delay_is_its_ceiling() {
        let p = RetryPolicy::new(5)
            .delays(Duration::from_millis(100), Duration::from_secs(1))
            .jitter(false);
        for retry in 1..6 {
            assert_eq!(p.delay(retry), p.ceiling(retry));
        }
        assert_eq!(p.delay(2), Duration::from_millis(200));
    }

    #[test]
    fn at_least_one_attempt() {
        assert_eq!(RetryPolicy::new(0).max_attempts(), 1);
    }
}
