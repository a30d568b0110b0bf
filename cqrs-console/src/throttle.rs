//! [`LoginThrottle`]: at most so many wrong tokens in a window, then no token is checked until
//! the window has room again, so the token cannot be guessed at the speed of the network.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts wrong tokens (at the login form and as bearer tokens) across all clients: a client's
/// address is not always known behind a proxy, and one budget for everyone bounds the guesses
/// whoever makes them. While it is spent, logins and bearer requests get 429; sessions already
/// open go on working.
pub(crate) struct LoginThrottle {
    max: usize,
    window: Duration,
    failures: Mutex<VecDeque<Instant>>,
}

impl LoginThrottle {
    /// At most `max` (at least one) wrong tokens per `window`.
    pub(crate) fn new(max: u32, window: Duration) -> Self {
        let max = usize::try_from(max.max(1)).unwrap_or(usize::MAX);
        Self {
            max,
            window,
            failures: Mutex::new(VecDeque::with_capacity(max.min(1024))),
        }
    }

    /// `Ok` when a token may be checked now; else how long until one may.
    pub(crate) fn check(&self) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        self.forget_old(&mut failures, now);
        match failures.front() {
            Some(oldest) if failures.len() >= self.max => {
                Err(self.window.saturating_sub(now.duration_since(*oldest)))
            }
            _ => Ok(()),
        }
    }

    /// A wrong token was given.
    pub(crate) fn failed(&self) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        self.forget_old(&mut failures, now);
        if failures.len() >= self.max {
            failures.pop_front();
        }
        failures.push_back(now);
    }

    fn forget_old(&self, failures: &mut VecDeque<Instant>, now: Instant) {
        while failures
            .front()
            .is_some_and(|at| now.duration_since(*at) >= self.window)
        {
            failures.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_spent_by_wrong_tokens() {
        let throttle = LoginThrottle::new(2, Duration::from_secs(60));
        assert!(throttle.check().is_ok());
        throttle.failed();
        assert!(throttle.check().is_ok());
        throttle.failed();
        let wait = throttle.check().expect_err("spent after two");
        assert!(wait <= Duration::from_secs(60), "{wait:?}");
        assert!(wait > Duration::from_secs(50), "{wait:?}");
    }

    #[test]
    fn the_budget_comes_back_once_the_window_has_passed() {
        let throttle = LoginThrottle::new(2, Duration::from_millis(1));
        throttle.failed();
        throttle.failed();
        std::thread::sleep(Duration::from_millis(5));
        assert!(throttle.check().is_ok(), "the window moved on");
    }
}
