//! A worker leads only while its lease holds, and its checkpoint saves are fenced by the
//! lease's epoch: a long apply keeps the lease (a keeper renews it beside the work), a worker
//! whose renewal hangs stops leading before its lease expires (its apply dropped, nothing
//! saved), and a worker that still believes in a lease that passed on has its save refused,
//! so the checkpoint never moves back under the new holder.
//!
//! The clock is tokio's paused clock, which the in-memory store's leases follow too: time
//! moves only when every task waits, so no test depends on how fast the machine is.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    BreakerState, Lease, LeaseStore, Projection, ProjectionError, ProjectionHandle,
    ProjectionRunner, ProjectionState, RunnerOptions,
};
use cqrs_core::{
    AppendEvents, CheckpointStore, ExpectedVersion, FencedSave, InMemoryEventStore, NewEvent,
    Position, RecordedEvent, StreamId,
};
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(3);

/// A projection whose applies wait at a gate; it tells when an apply starts, and when one
/// was dropped unfinished.
#[derive(Clone)]
struct Gated {
    gate: Arc<Semaphore>,
    started: watch::Sender<u32>,
    applied: Arc<Mutex<Vec<Position>>>,
    dropped_at: Arc<Mutex<Option<Instant>>>,
}

impl Gated {
    fn closed() -> Self {
        Self {
            gate: Arc::new(Semaphore::new(0)),
            started: watch::channel(0).0,
            applied: Arc::default(),
            dropped_at: Arc::default(),
        }
    }

    fn open() -> Self {
        let gated = Self::closed();
        gated.gate.add_permits(Semaphore::MAX_PERMITS);
        gated
    }

    async fn wait_until_applying(&self) {
        let mut started = self.started.subscribe();
        started.wait_for(|n| *n > 0).await.expect("alive");
    }

    fn applied(&self) -> Vec<Position> {
        self.applied.lock().expect("lock").clone()
    }
}

/// Records when it is dropped, unless disarmed.
struct DropWatch<'a> {
    at: &'a Mutex<Option<Instant>>,
    armed: bool,
}

impl Drop for DropWatch<'_> {
    fn drop(&mut self) {
        if self.armed {
            *self.at.lock().expect("lock") = Some(Instant::now());
        }
    }
}

#[async_trait]
impl Projection for Gated {
    fn name(&self) -> &str {
        "gated"
    }
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut watch = DropWatch {
            at: &self.dropped_at,
            armed: true,
        };
        self.started.send_modify(|n| *n += 1);
        // One permit per apply.
        self.gate.acquire().await.expect("open").forget();
        watch.armed = false;
        let mut applied = self.applied.lock().expect("lock");
        applied.extend(events.iter().map(|e| e.position));
        Ok(())
    }
}

fn options(owner: &str) -> RunnerOptions {
    RunnerOptions::new()
        .owner(owner)
        .lease_ttl(TTL)
        .poll_interval(Duration::from_millis(100))
}

fn worker(
    projection: &Gated,
    store: &InMemoryEventStore,
    leases: impl LeaseStore + 'static,
    checkpoints: impl CheckpointStore + 'static,
    owner: &str,
) -> ProjectionHandle {
    ProjectionRunner::new(projection.clone(), store.clone(), checkpoints)
        .with_leases(leases)
        .with_signal(store.clone())
        .with_options(options(owner))
        .spawn()
}

async fn append(store: &InMemoryEventStore, n: u64) -> Position {
    store
        .append(
            &StreamId::new("s-1").expect("id"),
            ExpectedVersion::Any,
            vec![NewEvent::new("Counted", 1, json!({ "n": n }))],
        )
        .await
        .expect("append")
        .position
}

/// `status` awaited, failing the test if it takes longer than ten lease lifetimes (of the
/// paused clock): a worker that never changes state fails, it does not hang.
async fn within<T>(status: impl std::future::Future<Output = Option<T>>) -> Option<T> {
    tokio::time::timeout(TTL * 10, status)
        .await
        .expect("within ten lease lifetimes")
}

fn leading(handle: &ProjectionHandle) -> bool {
    !matches!(
        handle.status().state,
        ProjectionState::Standby | ProjectionState::Stopped | ProjectionState::Failed
    )
}

#[tokio::test(start_paused = true)]
async fn a_long_apply_keeps_the_lease_renewed_beside_it() {
    let store = InMemoryEventStore::new();
    let p1 = append(&store, 1).await;
    let slow = Gated::closed();
    let a = worker(&slow, &store, store.clone(), store.clone(), "a");
    slow.wait_until_applying().await;
    let standby = Gated::open();
    let b = worker(&standby, &store, store.clone(), store.clone(), "b");

    // The apply takes ten lease lifetimes.
    tokio::time::sleep(TTL * 10).await;
    assert!(
        leading(&a),
        "a leads through its long apply: {:?}",
        a.status()
    );
    assert_eq!(b.status().state, ProjectionState::Standby);
    assert!(standby.applied().is_empty(), "b applied nothing");

    slow.gate.add_permits(1);
    assert!(a.wait_for(p1, TTL).await.is_ok(), "{:?}", a.status());
    assert_eq!(slow.applied(), [p1]);
    assert_eq!(*slow.dropped_at.lock().expect("lock"), None);
    assert_eq!(
        store.load_checkpoint("gated").await.expect("load"),
        Some(p1)
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// The store's leases, whose renewals (every call after the first) and releases hang once
/// `hang` is set, as a database that stopped answering would. Records until when the store
/// granted the lease.
struct Hanging {
    inner: InMemoryEventStore,
    hang: Arc<AtomicBool>,
    expires: Arc<Mutex<Option<Instant>>>,
}

#[async_trait]
impl LeaseStore for Hanging {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> cqrs_core::Result<Option<Lease>> {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let lease = self.inner.try_acquire(name, owner, ttl).await?;
        if lease.is_some() {
            // The in-memory store counts from now, on the same paused clock.
            *self.expires.lock().expect("lock") = Some(Instant::now() + ttl);
        }
        Ok(lease)
    }
    async fn release(&self, lease: &Lease) -> cqrs_core::Result<()> {
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.release(lease).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_lease_whose_renewal_hangs_stops_the_worker_before_it_expires() {
    let store = InMemoryEventStore::new();
    append(&store, 1).await;
    let slow = Gated::closed();
    let (hang, expires) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let leases = Hanging {
        inner: store.clone(),
        hang: hang.clone(),
        expires: Arc::clone(&expires),
    };
    let a = worker(&slow, &store, leases, store.clone(), "a");
    slow.wait_until_applying().await;
    hang.store(true, Ordering::SeqCst);

    let status = within(a.wait_until(|s| s.state == ProjectionState::Standby))
        .await
        .expect("a stops leading");
    let dropped = slow
        .dropped_at
        .lock()
        .expect("lock")
        .expect("the apply was dropped");
    let expired = expires.lock().expect("lock").expect("granted");
    assert!(
        dropped < expired,
        "stopped leading {:?} before the lease expired",
        expired - dropped
    );
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("lease")),
        "{status:?}"
    );
    assert!(slow.applied().is_empty());
    assert_eq!(
        store.load_checkpoint("gated").await.expect("load"),
        None,
        "nothing saved after the lease could not be confirmed"
    );

    // Once it has expired, another worker leads.
    let standby = Gated::open();
    let b = worker(&standby, &store, store.clone(), store.clone(), "b");
    within(b.wait_until(|s| s.state == ProjectionState::Running))
        .await
        .expect("b takes over");
    assert!(Instant::now() >= expired);
    a.shutdown().await;
    b.shutdown().await;
}

/// Leases as a worker sees them that believes it still holds its lease (a process paused for
/// longer than the lease, a clock that jumped): while `frozen`, every renewal "succeeds"
/// without asking the store.
struct Frozen {
    inner: InMemoryEventStore,
    frozen: Arc<AtomicBool>,
    last: Mutex<Option<Lease>>,
}

#[async_trait]
impl LeaseStore for Frozen {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> cqrs_core::Result<Option<Lease>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Ok(self.last.lock().expect("lock").clone());
        }
        let lease = self.inner.try_acquire(name, owner, ttl).await?;
        self.last.lock().expect("lock").clone_from(&lease);
        Ok(lease)
    }
    async fn release(&self, lease: &Lease) -> cqrs_core::Result<()> {
        self.inner.release(lease).await
    }
}

/// The store's checkpoints, recording the outcome of each fenced save; a refused one ends the
/// freeze (the worker "wakes up").
struct Fenced {
    inner: InMemoryEventStore,
    outcomes: Arc<Mutex<Vec<(Position, FencedSave)>>>,
    frozen: Arc<AtomicBool>,
}

#[async_trait]
impl CheckpointStore for Fenced {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        self.inner.load_checkpoint(name).await
    }
    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        self.inner.save_checkpoint(name, position).await
    }
    async fn save_checkpoint_fenced(
        &self,
        name: &str,
        position: Position,
        lease: &Lease,
    ) -> cqrs_core::Result<FencedSave> {
        let outcome = self
            .inner
            .save_checkpoint_fenced(name, position, lease)
            .await?;
        if outcome == FencedSave::LeaseLost {
            self.frozen.store(false, Ordering::SeqCst);
        }
        self.outcomes
            .lock()
            .expect("lock")
            .push((position, outcome));
        Ok(outcome)
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_takeover_the_old_workers_save_is_refused() {
    let store = InMemoryEventStore::new();
    let p1 = append(&store, 1).await;
    let frozen = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let slow = Gated::closed();
    let a = worker(
        &slow,
        &store,
        Frozen {
            inner: store.clone(),
            frozen: frozen.clone(),
            last: Mutex::default(),
        },
        Fenced {
            inner: store.clone(),
            outcomes: outcomes.clone(),
            frozen: frozen.clone(),
        },
        "a",
    );
    slow.wait_until_applying().await;
    frozen.store(true, Ordering::SeqCst);

    // a's lease expires in the store; b takes over and goes further than a got.
    let fast = Gated::open();
    let b = worker(&fast, &store, store.clone(), store.clone(), "b");
    let p2 = append(&store, 2).await;
    assert!(b.wait_for(p2, TTL * 10).await.is_ok(), "{:?}", b.status());
    assert!(leading(&a), "a still believes it leads: {:?}", a.status());

    // a's apply ends; its save comes too late, and ends its term: the apply it started next
    // is dropped.
    slow.gate.add_permits(1);
    let status = within(a.wait_until(|s| s.state == ProjectionState::Standby))
        .await
        .expect("a stands by");
    assert_eq!(slow.applied(), [p1], "a applied its batch, and no more");
    assert!(
        slow.dropped_at.lock().expect("lock").is_some(),
        "a's next apply was dropped when its term ended"
    );
    assert_eq!(
        *outcomes.lock().expect("lock"),
        [(p1, FencedSave::LeaseLost)],
        "a's one save was refused, and not retried"
    );
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("lease")),
        "{status:?}"
    );
    assert_eq!(
        store.load_checkpoint("gated").await.expect("load"),
        Some(p2),
        "the checkpoint did not move back to a's"
    );
    let shown = a.status().position;
    assert!(
        shown == Position::START || shown == p2,
        "a shows no save of its own (standing by, b's checkpoint): {shown:?}"
    );
    assert_eq!(fast.applied(), [p1, p2]);
    assert!(leading(&b), "{:?}", b.status());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_graceful_shutdown_releases_the_lease_to_a_higher_epoch() {
    let store = InMemoryEventStore::new();
    let p1 = append(&store, 1).await;
    let gated = Gated::open();
    let a = worker(&gated, &store, store.clone(), store.clone(), "a");
    assert!(a.wait_for(p1, TTL).await.is_ok());
    let held = store.leases("gated").await.expect("listed");
    let held = held.first().expect("a holds it").clone();
    assert_eq!(held.worker(), "a");
    a.shutdown().await;
    let next = store
        .try_acquire("gated", "b", TTL)
        .await
        .expect("acquire")
        .expect("released");
    assert!(next.epoch > held.epoch);
}

/// The store's leases, failing the next `failures` calls (a broken connection).
struct Failing {
    inner: InMemoryEventStore,
    failures: Arc<AtomicU32>,
    expires: Arc<Mutex<Option<Instant>>>,
}

#[async_trait]
impl LeaseStore for Failing {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> cqrs_core::Result<Option<Lease>> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(cqrs_core::Error::unavailable("connection refused"));
        }
        let lease = self.inner.try_acquire(name, owner, ttl).await?;
        if lease.is_some() {
            *self.expires.lock().expect("lock") = Some(Instant::now() + ttl);
        }
        Ok(lease)
    }
    async fn release(&self, lease: &Lease) -> cqrs_core::Result<()> {
        self.inner.release(lease).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_renewal_is_not_held_but_a_retry_in_time_keeps_the_lease() {
    let store = InMemoryEventStore::new();
    append(&store, 1).await;
    let slow = Gated::closed();
    let (failures, expires) = (Arc::new(AtomicU32::new(0)), Arc::default());
    let leases = Failing {
        inner: store.clone(),
        failures: failures.clone(),
        expires: Arc::clone(&expires),
    };
    let a = worker(&slow, &store, leases, store.clone(), "a");
    slow.wait_until_applying().await;

    // One failed renewal: retried before the lease runs out, the worker goes on leading.
    failures.store(1, Ordering::SeqCst);
    tokio::time::sleep(TTL * 5).await;
    assert_eq!(failures.load(Ordering::SeqCst), 0, "the failure was met");
    assert!(leading(&a), "{:?}", a.status());
    assert_eq!(*slow.dropped_at.lock().expect("lock"), None);

    // Renewals keep failing: not held, so the worker stops leading before the lease expires.
    failures.store(u32::MAX, Ordering::SeqCst);
    within(a.wait_until(|s| s.state == ProjectionState::Standby))
        .await
        .expect("a stops leading");
    let dropped = slow.dropped_at.lock().expect("lock").expect("dropped");
    let expired = expires.lock().expect("lock").expect("granted");
    assert!(dropped < expired, "{:?} too late", dropped - expired);
    assert_eq!(store.load_checkpoint("gated").await.expect("load"), None);
    a.shutdown().await;
}

/// Checkpoints kept apart from the leases: it cannot check a lease, so it offers no fenced
/// saves (the trait's default refuses them).
struct Unfenceable(InMemoryEventStore);

#[async_trait]
impl CheckpointStore for Unfenceable {
    async fn load_checkpoint(&self, name: &str) -> cqrs_core::Result<Option<Position>> {
        self.0.load_checkpoint(name).await
    }
    async fn save_checkpoint(&self, name: &str, position: Position) -> cqrs_core::Result<()> {
        self.0.save_checkpoint(name, position).await
    }
}

#[tokio::test(start_paused = true)]
async fn leases_with_checkpoints_that_cannot_be_fenced_fail_rather_than_save_unfenced() {
    let store = InMemoryEventStore::new();
    append(&store, 1).await;
    let open = Gated::open();
    let a = worker(
        &open,
        &store,
        store.clone(),
        Unfenceable(store.clone()),
        "a",
    );
    let status = within(a.wait_until(|s| s.state == ProjectionState::Failed))
        .await
        .expect("the projection fails");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("fenced checkpoint saves")),
        "{status:?}"
    );
    assert_eq!(store.load_checkpoint("gated").await.expect("load"), None);
    a.shutdown().await;
}

/// The store's leases, panicking on every call after the first.
struct Panicking {
    inner: InMemoryEventStore,
    calls: AtomicU32,
}

#[async_trait]
impl LeaseStore for Panicking {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> cqrs_core::Result<Option<Lease>> {
        if self.calls.fetch_add(1, Ordering::SeqCst) > 0 {
            panic!("the lease store broke");
        }
        self.inner.try_acquire(name, owner, ttl).await
    }
    async fn release(&self, lease: &Lease) -> cqrs_core::Result<()> {
        self.inner.release(lease).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_lease_store_that_panics_on_renewal_ends_the_term() {
    let store = InMemoryEventStore::new();
    append(&store, 1).await;
    let slow = Gated::closed();
    let leases = Panicking {
        inner: store.clone(),
        calls: AtomicU32::new(0),
    };
    let a = worker(&slow, &store, leases, store.clone(), "a");
    slow.wait_until_applying().await;
    // The keeper's renewal panics: the term ends with it, the apply in flight is dropped.
    // (Then taking the lease again panics in the worker: it fails, visibly.)
    let status = within(a.wait_until(|s| s.state == ProjectionState::Failed))
        .await
        .expect("the worker fails");
    assert!(
        slow.dropped_at.lock().expect("lock").is_some(),
        "{status:?}"
    );
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("the lease store broke")),
        "{status:?}"
    );
    assert_eq!(store.load_checkpoint("gated").await.expect("load"), None);
    a.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_standby_follows_the_leaders_checkpoint_so_any_worker_can_be_waited_on() {
    let store = InMemoryEventStore::new();
    let open = Gated::open();
    let a = worker(&open, &store, store.clone(), store.clone(), "a");
    let p1 = append(&store, 1).await;
    within(a.wait_until(|s| s.position >= p1))
        .await
        .expect("a leads");
    let b = worker(&Gated::open(), &store, store.clone(), store.clone(), "b");

    let status = b
        .wait_for(p1, TTL * 10)
        .await
        .expect("b shows a's checkpoint");
    assert_eq!(status.state, ProjectionState::Standby);
    assert!(status.is_ready(), "another worker leads it: {status:?}");
    let p2 = append(&store, 2).await;
    let status = b.wait_for(p2, TTL * 10).await.expect("and follows it");
    assert_eq!(status.state, ProjectionState::Standby);
    assert_eq!(open.applied(), [p1, p2], "only the leader applied");
}

#[tokio::test(start_paused = true)]
async fn two_workers_given_the_same_owner_never_lead_at_once() {
    let store = InMemoryEventStore::new();
    let p1 = append(&store, 1).await;
    let first = Gated::open();
    let a = worker(&first, &store, store.clone(), store.clone(), "same");
    within(a.wait_until(|s| s.position >= p1))
        .await
        .expect("a leads");

    // Two replicas configured alike, or a restart while the old process lingers.
    let second = Gated::open();
    let b = worker(&second, &store, store.clone(), store.clone(), "same");
    tokio::time::sleep(TTL).await;
    let p2 = append(&store, 2).await;
    within(a.wait_until(|s| s.position >= p2))
        .await
        .expect("a applies");
    tokio::time::sleep(TTL * 3).await;

    assert_eq!(
        b.status().state,
        ProjectionState::Standby,
        "{:?}",
        b.status()
    );
    assert_eq!(first.applied(), [p1, p2]);
    assert_eq!(second.applied(), [], "only one of them applies");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_kept_apart_from_the_checkpoints_fail_the_projection_saying_so() {
    let store = InMemoryEventStore::new();
    append(&store, 1).await;
    // The checkpoint store checks fenced saves against its own leases, which nobody takes.
    let elsewhere = InMemoryEventStore::new();
    let gated = Gated::open();
    let a = worker(&gated, &store, elsewhere, store.clone(), "a");

    // On the real clock: the loop this guards against never lets a paused clock move.
    let failed = a.wait_until(|s| s.state == ProjectionState::Failed);
    let failed = tokio::time::timeout(Duration::from_secs(20), failed).await;
    let failed = failed.unwrap_or_else(|_| {
        panic!(
            "not failed: {:?}, {} applies",
            a.status(),
            gated.applied().len()
        )
    });
    let error = failed.and_then(|s| s.last_error).unwrap_or_default();
    assert!(error.contains("lease store"), "{error}");
    assert_eq!(
        gated.applied().len(),
        1,
        "one apply, not a replay without end"
    );
}

/// The in-memory store's leases, whose renewals (every call after the first) are held until a
/// gate opens and then run to the end even if the caller gave up, as a statement already sent
/// to a database server does.
#[derive(Clone)]
struct HeldRenewals {
    inner: InMemoryEventStore,
    calls: Arc<AtomicU32>,
    gate: Arc<Semaphore>,
    holding: watch::Sender<bool>,
}

#[async_trait]
impl LeaseStore for HeldRenewals {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> cqrs_core::Result<Option<Lease>> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return self.inner.try_acquire(name, owner, ttl).await;
        }
        self.holding.send_replace(true);
        let (this, name, owner) = (self.clone(), name.to_owned(), owner.to_owned());
        tokio::spawn(async move {
            let _permit = this.gate.acquire().await.expect("gate");
            this.inner.try_acquire(&name, &owner, ttl).await
        })
        .await
        .expect("renewal task")
    }

    async fn release(&self, lease: &Lease) -> cqrs_core::Result<()> {
        self.inner.release(lease).await
    }

    async fn leases(&self, prefix: &str) -> cqrs_core::Result<Vec<Lease>> {
        self.inner.leases(prefix).await
    }
}

/// A worker stopping gives its lease back; a renewal of its keeper still in flight then must
/// not take it again (before, the release went out beside it, the renewal landed after, and
/// the next worker waited a whole lease time).
#[tokio::test(start_paused = true)]
async fn a_lease_given_back_at_shutdown_is_not_taken_again_by_a_renewal_in_flight() {
    let store = InMemoryEventStore::new();
    let p1 = append(&store, 1).await;
    let leases = HeldRenewals {
        inner: store.clone(),
        calls: Arc::default(),
        gate: Arc::new(Semaphore::new(0)),
        holding: watch::channel(false).0,
    };
    let projection = Gated::open();
    let a = worker(&projection, &store, leases.clone(), store.clone(), "a");
    assert!(a.wait_for(p1, TTL).await.is_ok(), "{:?}", a.status());
    let mut holding = leases.holding.subscribe();
    within(async { holding.wait_for(|h| *h).await.ok().map(|_| ()) })
        .await
        .expect("a renewal is in flight");

    let stopping = tokio::spawn(a.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    leases.gate.add_permits(Semaphore::MAX_PERMITS);
    tokio::time::timeout(TTL * 2, stopping)
        .await
        .expect("stops within two lease lifetimes")
        .expect("shutdown task");
    // Whatever is still in flight lands meanwhile.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let next = store.try_acquire("gated", "b", TTL).await.expect("acquire");
    assert!(
        next.is_some(),
        "the lease was given back, and stays so: {:?}",
        store.leases("gated").await
    );
}

/// A sink that is down: every apply is a transient failure.
struct Down;

#[async_trait]
impl Projection for Down {
    fn name(&self) -> &str {
        "down"
    }
    async fn apply(&self, _: &[RecordedEvent]) -> Result<(), ProjectionError> {
        Err(ProjectionError::Transient("the sink is down".into()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_lost_its_lease_with_the_breaker_open_shows_it_closed_while_standing_by() {
    let store = InMemoryEventStore::new();
    append(&store, 1).await;
    let (hang, expires) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let leases = Hanging {
        inner: store.clone(),
        hang: hang.clone(),
        expires,
    };
    let a = ProjectionRunner::new(Down, store.clone(), store.clone())
        .with_leases(leases)
        .with_signal(store.clone())
        .with_options(options("a").breaker(2, Duration::from_secs(60)))
        .spawn();
    within(a.wait_until(|s| s.breaker == BreakerState::Open))
        .await
        .expect("the breaker opens");

    hang.store(true, Ordering::SeqCst);
    let status = within(a.wait_until(|s| s.state == ProjectionState::Standby))
        .await
        .expect("a stops leading");
    // It calls no sink and applies nothing while it stands by: an alert on an open breaker
    // or on a lag must not fire on a replica doing nothing while another leads.
    assert_eq!(status.breaker, BreakerState::Closed, "{status:?}");
    assert_eq!(status.lag_events, 0, "{status:?}");
    a.shutdown().await;
}

/// The store's leases, whose next renewal once `late` is set is granted by the store but
/// answered only a lease lifetime later: a worker paused (or starved) right after it sent it.
struct Late {
    inner: InMemoryEventStore,
    late: Arc<AtomicBool>,
    /// Refuses the next release once set (a store slow to answer at that moment).
    refuse_release: Arc<AtomicBool>,
}

#[async_trait]
impl LeaseStore for Late {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> cqrs_core::Result<Option<Lease>> {
        let lease = self.inner.try_acquire(name, owner, ttl).await?;
        if self.late.swap(false, Ordering::SeqCst) {
            tokio::time::sleep(TTL).await;
        }
        Ok(lease)
    }
    async fn release(&self, lease: &Lease) -> cqrs_core::Result<()> {
        if self.refuse_release.swap(false, Ordering::SeqCst) {
            return Err(cqrs_core::Error::unavailable("the pool timed out"));
        }
        self.inner.release(lease).await
    }
    async fn leases(&self, prefix: &str) -> cqrs_core::Result<Vec<Lease>> {
        self.inner.leases(prefix).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_lost_its_term_leads_again_only_under_a_new_epoch() {
    lost_term_leads_again_under_a_new_epoch(false).await;
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_could_not_give_back_its_lost_term_s_lease_still_leads_again_under_a_new_epoch(
) {
    lost_term_leads_again_under_a_new_epoch(true).await;
}

async fn lost_term_leads_again_under_a_new_epoch(refuse_release: bool) {
    // A term given up while the store still holds its lease: work of that term may still be on
    // its way (a sink's fenced transaction spawned on its own). Its fence must refuse it once
    // the worker leads again, so the next term cannot be a renewal of the same epoch.
    let store = InMemoryEventStore::new();
    append(&store, 1).await;
    let slow = Gated::closed();
    let late = Arc::new(AtomicBool::new(false));
    let leases = Late {
        inner: store.clone(),
        late: late.clone(),
        refuse_release: Arc::new(AtomicBool::new(refuse_release)),
    };
    let a = worker(&slow, &store, leases, store.clone(), "a");
    slow.wait_until_applying().await;
    let epoch = |leases: Vec<Lease>| leases.first().map(|lease| lease.epoch);
    let first = epoch(store.leases("gated").await.expect("leases")).expect("a holds it");

    late.store(true, Ordering::SeqCst);
    let mut started = slow.started.subscribe();
    within(async { started.wait_for(|n| *n >= 2).await.ok() })
        .await
        .expect("a leads again after its late renewal ended its term");

    let second = epoch(store.leases("gated").await.expect("leases")).expect("a holds it");
    assert!(
        second > first,
        "the next term kept the epoch {first} of the one given up"
    );
    slow.gate.add_permits(Semaphore::MAX_PERMITS);
    a.shutdown().await;
}

/// The store's leases, each taken at once but answered only half a lease lifetime later.
struct SlowToAnswer(InMemoryEventStore);

#[async_trait]
impl LeaseStore for SlowToAnswer {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> cqrs_core::Result<Option<Lease>> {
        let lease = self.0.try_acquire(name, owner, ttl).await?;
        tokio::time::sleep(TTL / 2).await;
        Ok(lease)
    }
    async fn release(&self, lease: &Lease) -> cqrs_core::Result<()> {
        self.0.release(lease).await
    }
    async fn leases(&self, prefix: &str) -> cqrs_core::Result<Vec<Lease>> {
        self.0.leases(prefix).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_worker_stopped_while_taking_the_lease_gives_back_what_the_store_granted() {
    // Stopped (a rolling deploy) while its try to take the lease was on its way: the store
    // granted it, and nobody else could lead until it expired.
    let store = InMemoryEventStore::new();
    let slow = Gated::open();
    let a = worker(
        &slow,
        &store,
        SlowToAnswer(store.clone()),
        store.clone(),
        "a",
    );
    while store.leases("gated").await.expect("leases").is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // Given back before the shutdown returns: a process exits right after it.
    a.shutdown().await;

    assert_eq!(
        store.leases("gated").await.expect("leases"),
        [],
        "the lease granted while the worker stopped is still held"
    );
}
