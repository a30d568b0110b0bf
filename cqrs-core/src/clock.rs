//! [`Clock`]: the time as an aggregate's services see it, so that tests can set it.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

/// Where an aggregate (or anything else that decides by the time) reads the time from.
///
/// Put a clock in the aggregate's services instead of calling `OffsetDateTime::now_utc()` in
/// `handle`: production code gets the [`SystemClock`], tests a clock they set and advance
/// (`TestClock`, in `cqrs_core::testing` with the `testing` feature). [`SharedClock`] holds
/// either, and is the system clock by default, so an aggregate whose services are a
/// `SharedClock` still gets [`Repository::new`](crate::Repository::new).
///
/// ```
/// use cqrs_core::{Clock, SharedClock, SystemClock};
///
/// let clock = SharedClock::default();
/// let before = SystemClock.now();
/// assert!(clock.now() >= before);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The machine's clock: [`OffsetDateTime::now_utc`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Any [`Clock`] behind an `Arc`, cheap to clone into services: the [`SystemClock`] by
/// default, a test clock in tests.
#[derive(Clone)]
pub struct SharedClock(Arc<dyn Clock>);

impl SharedClock {
    /// Shares `clock`.
    pub fn new(clock: impl Clock) -> Self {
        Self(Arc::new(clock))
    }
}

impl Default for SharedClock {
    /// The [`SystemClock`].
    fn default() -> Self {
        Self::new(SystemClock)
    }
}

impl Clock for SharedClock {
    fn now(&self) -> OffsetDateTime {
        self.0.now()
    }
}

impl fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedClock").field(&self.0.now()).finish()
    }
}

impl<C: Clock> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        C::now(self)
    }
}
