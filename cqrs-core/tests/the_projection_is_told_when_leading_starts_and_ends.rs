//! The runner tells the projection when this worker starts leading and when leading ends
//! (lease lost, stop), so a projection can drop what it remembers of the sink: another worker
//! may have written it meanwhile.
//!
//! The in-memory leases run on tokio's clock, so these tests pause it: a renewal is never late
//! because the machine is busy, and every wait is bounded in (virtual) time instead of hanging.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    Lease, LeaseStore, Projection, ProjectionError, ProjectionRunner, ProjectionState,
    RunnerOptions,
};
use cqrs_core::{InMemoryEventStore, RecordedEvent, Result};
use tokio::sync::mpsc;

/// Reports each leadership change on a channel.
struct Told(mpsc::UnboundedSender<bool>);

#[async_trait]
impl Projection for Told {
    fn name(&self) -> &str {
        "told"
    }

    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        Ok(())
    }

    async fn leadership_changed(&self, leading: bool) {
        let _ = self.0.send(leading);
    }
}

/// The in-memory leases, except that while `revoked` is set this worker cannot hold its lease
/// (as when another worker took it).
#[derive(Clone)]
struct Revocable {
    store: InMemoryEventStore,
    revoked: Arc<AtomicBool>,
}

#[async_trait]
impl LeaseStore for Revocable {
    async fn try_acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<Lease>> {
        if self.revoked.load(Ordering::SeqCst) {
            return Ok(None);
        }
        self.store.try_acquire(name, owner, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        self.store.release(lease).await
    }
}

const WAIT: Duration = Duration::from_secs(10);
const TTL: Duration = Duration::from_secs(1);

async fn next(told: &mut mpsc::UnboundedReceiver<bool>) -> Option<bool> {
    tokio::time::timeout(WAIT, told.recv()).await.ok().flatten()
}

/// Nothing is told for a few lease lifetimes: a lease that is renewed in time is never lost.
async fn nothing_told_for(told: &mut mpsc::UnboundedReceiver<bool>, period: Duration) {
    if let Ok(news) = tokio::time::timeout(period, told.recv()).await {
        panic!("nothing should be told while the lease is renewed in time, got {news:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_projection_hears_of_taking_losing_retaking_and_ending_leadership() {
    let store = InMemoryEventStore::new();
    let leases = Revocable {
        store: store.clone(),
        revoked: Arc::new(AtomicBool::new(false)),
    };
    let (sender, mut told) = mpsc::unbounded_channel();
    let handle = ProjectionRunner::new(Told(sender), store.clone(), store.clone())
        .with_leases(leases.clone())
        .with_signal(store.clone())
        .with_options(
            RunnerOptions::new()
                .poll_interval(Duration::from_millis(20))
                .lease_ttl(TTL),
        )
        .spawn();

    assert_eq!(next(&mut told).await, Some(true), "leading started");
    nothing_told_for(&mut told, TTL * 5).await;
    leases.revoked.store(true, Ordering::SeqCst);
    assert_eq!(next(&mut told).await, Some(false), "the lease was lost");
    let standby = tokio::time::timeout(
        WAIT,
        handle.wait_until(|s| s.state == ProjectionState::Standby),
    )
    .await
    .expect("the worker to stand by after losing its lease, within 10 s");
    assert!(
        standby.is_some(),
        "the worker stopped instead of standing by"
    );
    leases.revoked.store(false, Ordering::SeqCst);
    assert_eq!(next(&mut told).await, Some(true), "leading again");
    handle.shutdown().await;
    assert_eq!(next(&mut told).await, Some(false), "stopped");
    assert_eq!(next(&mut told).await, None, "nothing more");
}

#[tokio::test(start_paused = true)]
async fn a_runner_without_leases_tells_of_its_one_stint() {
    let store = InMemoryEventStore::new();
    let (sender, mut told) = mpsc::unbounded_channel();
    let handle = ProjectionRunner::new(Told(sender), store.clone(), store.clone())
        .with_options(RunnerOptions::new().poll_interval(Duration::from_millis(20)))
        .spawn();
    assert_eq!(next(&mut told).await, Some(true));
    handle.shutdown().await;
    assert_eq!(next(&mut told).await, Some(false));
    assert_eq!(next(&mut told).await, None);
}
