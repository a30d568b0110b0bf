//! [`TestClock`]: a clock that tests set and advance.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use crate::Clock;

/// A [`Clock`] that stands still until a test sets or advances it. Clones share the time: keep
/// one in the test and hand another (in a [`SharedClock`](crate::SharedClock)) to the
/// aggregate's services.
///
/// ```
/// use std::time::Duration;
/// use cqrs_core::testing::TestClock;
/// use cqrs_core::{Clock, SharedClock};
///
/// let clock = TestClock::new();
/// let services = SharedClock::new(clock.clone());
/// let start = services.now();
/// clock.advance(Duration::from_secs(14 * 24 * 3600));
/// assert_eq!(services.now() - start, time::Duration::days(14));
/// ```
#[derive(Clone, Debug)]
pub struct TestClock(Arc<Mutex<OffsetDateTime>>);

impl TestClock {
    /// The instant a [`TestClock::new`] starts at: 2024-01-01 00:00:00 UTC, a fixed time so
    /// tests and their expected values do not depend on the day they run.
    pub const START: OffsetDateTime = match OffsetDateTime::from_unix_timestamp(1_704_067_200) {
        Ok(start) => start,
        Err(_) => OffsetDateTime::UNIX_EPOCH,
    };

    /// A clock at [`TestClock::START`].
    pub fn new() -> Self {
        Self::at(Self::START)
    }

    /// A clock at `now`.
    pub fn at(now: OffsetDateTime) -> Self {
        Self(Arc::new(Mutex::new(now)))
    }

    /// Sets the time (it may go back).
    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// Moves the time forward by `by` (stopping at the latest time representable).
    pub fn advance(&self, by: Duration) {
        let by = time::Duration::try_from(by).unwrap_or(time::Duration::MAX);
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.saturating_add(by);
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
