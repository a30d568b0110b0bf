//! [`Probe`]: a projection that passes every call to the real one and counts the `apply`
//! calls that started, finished, or were cut off mid-way (the task aborted while it ran).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::{BoxError, EventFilter, RecordedEvent};
use tokio::sync::Notify;

/// What a [`Probe`] counted, shared by every probe made with it.
#[derive(Debug, Default)]
pub struct ApplyCounts {
    started: AtomicU64,
    finished: AtomicU64,
    interrupted: AtomicU64,
    start: Notify,
}

impl ApplyCounts {
    /// Calls that started.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }

    /// Calls that returned (with any result).
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::SeqCst)
    }

    /// Calls dropped before they returned: the runner's task was aborted mid-batch.
    pub fn interrupted(&self) -> u64 {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Returns as soon as more than `calls` calls have started (at once if they have).
    pub async fn wait_started(&self, calls: u64) {
        loop {
            let started = self.start.notified();
            tokio::pin!(started);
            started.as_mut().enable();
            if self.started() > calls {
                return;
            }
            started.await;
        }
    }

    /// Whether a call is running now.
    pub fn in_flight(&self) -> bool {
        self.started() > self.finished() + self.interrupted()
    }
}

/// Wraps a projection, counting its `apply` calls into shared [`ApplyCounts`].
pub struct Probe<P> {
    inner: P,
    counts: Arc<ApplyCounts>,
}

impl<P> Probe<P> {
    /// Probes `inner`, counting into `counts`.
    pub fn new(inner: P, counts: Arc<ApplyCounts>) -> Self {
        Self { inner, counts }
    }
}

/// Counts the call as interrupted when dropped before [`Flight::land`].
struct Flight<'a> {
    counts: &'a ApplyCounts,
    landed: bool,
}

impl Flight<'_> {
    fn land(mut self) {
        self.landed = true;
        self.counts.finished.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        if !self.landed {
            self.counts.interrupted.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl<P: Projection> Projection for Probe<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn filter(&self) -> EventFilter {
        self.inner.filter()
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        self.inner.key(event)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        self.counts.started.fetch_add(1, Ordering::SeqCst);
        self.counts.start.notify_waiters();
        let flight = Flight {
            counts: &self.counts,
            landed: false,
        };
        let result = self.inner.apply(events).await;
        flight.land();
        result
    }

    async fn make_visible(&self) -> Result<(), BoxError> {
        self.inner.make_visible().await
    }
}
