//! Shared by the partitioned-worker tests: a ledger sink that checks every promise (no event
//! of one partition applied by two holders at once, per-stream order, duplicates counted), a
//! writer, and a lease store a test can pause.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{Lease, LeaseStore, Projection, ProjectionError};
use cqrs_core::{
    AppendEvents, Error, ExpectedVersion, InMemoryEventStore, NewEvent, RecordedEvent, StreamId,
};

/// What every worker's sink saw.
#[derive(Default, Debug)]
pub(crate) struct Book {
    /// Per stream, the last version applied.
    pub(crate) last: HashMap<String, u64>,
    /// Per partition (lease name), the applies in flight.
    pub(crate) in_flight: HashMap<String, u32>,
    /// Applies that began while another apply of the same partition was in flight.
    pub(crate) overlaps: u64,
    /// Events applied again (a version at or below the last one applied).
    pub(crate) duplicates: u64,
    /// Events applied past a gap (a version beyond the last one plus one).
    pub(crate) gaps: u64,
    /// Events applied, duplicates included.
    pub(crate) applied: u64,
    /// Per worker, events applied.
    pub(crate) by_worker: HashMap<String, u64>,
}

/// A sink shared by the workers of a test: each worker has its own `Ledger` (its id), all
/// write one `Book`.
#[derive(Clone)]
pub(crate) struct Ledger {
    pub(crate) worker: String,
    pub(crate) book: Arc<Mutex<Book>>,
}

impl Ledger {
    pub(crate) fn new(worker: &str, book: &Arc<Mutex<Book>>) -> Self {
        Self {
            worker: worker.to_owned(),
            book: book.clone(),
        }
    }
}

#[async_trait]
impl Projection for Ledger {
    fn name(&self) -> &str {
        "ledger"
    }

    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        Err(ProjectionError::Transient(
            "a partitioned ledger is applied under a lease".into(),
        ))
    }

    async fn apply_fenced(
        &self,
        events: &[RecordedEvent],
        lease: Option<&Lease>,
    ) -> Result<(), ProjectionError> {
        let partition = lease.map_or_else(String::new, |l| l.name.clone());
        {
            let mut book = self.book.lock().unwrap();
            let in_flight = book.in_flight.entry(partition.clone()).or_default();
            *in_flight += 1;
            if *in_flight > 1 {
                book.overlaps += 1;
            }
        }
        // Out of flight however the apply ends: a runner whose term ends drops it midway.
        let _flight = InFlight {
            book: self.book.clone(),
            partition,
        };
        // A sink takes a moment: other workers run meanwhile.
        tokio::task::yield_now().await;
        let mut book = self.book.lock().unwrap();
        for event in events {
            let version = event.version.get();
            let last = book
                .last
                .get(event.stream_id.as_str())
                .copied()
                .unwrap_or(0);
            if version <= last {
                book.duplicates += 1;
            } else {
                if version > last + 1 {
                    book.gaps += 1;
                }
                book.last.insert(event.stream_id.to_string(), version);
            }
            book.applied += 1;
            *book.by_worker.entry(self.worker.clone()).or_default() += 1;
        }
        drop(book);
        Ok(())
    }
}

/// An apply in flight for a partition, counted out when dropped.
struct InFlight {
    book: Arc<Mutex<Book>>,
    partition: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut book = self
            .book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = book.in_flight.get_mut(&self.partition) {
            *n -= 1;
        }
    }
}

/// Appends one event at a time to `streams` streams, round robin, until told to stop; returns
/// each stream's version.
pub(crate) async fn write(
    store: InMemoryEventStore,
    streams: usize,
    stop: Arc<AtomicBool>,
    every: Duration,
) -> HashMap<String, u64> {
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let name = format!("order-{}", i % streams);
        let stream = StreamId::new(name.clone()).unwrap();
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                vec![NewEvent::new("Changed", 1, serde_json::json!({ "i": i }))],
            )
            .await
            .unwrap();
        *versions.entry(name).or_default() += 1;
        i += 1;
        tokio::time::sleep(every).await;
    }
    versions
}

/// Polls until `book` holds every stream at its version in `expected`, at most `limit`.
pub(crate) async fn all_applied(
    book: &Arc<Mutex<Book>>,
    expected: &HashMap<String, u64>,
    limit: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        {
            let book = book.lock().unwrap();
            if expected
                .iter()
                .all(|(s, v)| book.last.get(s).copied() == Some(*v))
            {
                return true;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The store's leases, unless paused: then every call fails as an unreachable store would
/// (a worker paused, or cut off). Remembers every lease it handed out.
#[derive(Clone)]
pub(crate) struct Pausable {
    pub(crate) store: InMemoryEventStore,
    pub(crate) paused: Arc<AtomicBool>,
    pub(crate) taken: Arc<Mutex<Vec<Lease>>>,
}

impl Pausable {
    pub(crate) fn new(store: &InMemoryEventStore) -> Self {
        Self {
            store: store.clone(),
            paused: Arc::default(),
            taken: Arc::default(),
        }
    }

    fn check(&self) -> cqrs_core::Result<()> {
        match self.paused.load(Ordering::SeqCst) {
            true => Err(Error::Unavailable("paused".into())),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl LeaseStore for Pausable {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> cqrs_core::Result<Option<Lease>> {
        self.check()?;
        let lease = self.store.try_acquire(name, owner, ttl).await?;
        if let Some(lease) = &lease {
            self.taken.lock().unwrap().push(lease.clone());
        }
        Ok(lease)
    }

    async fn release(&self, lease: &Lease) -> cqrs_core::Result<()> {
        self.check()?;
        self.store.release(lease).await
    }

    async fn leases(&self, prefix: &str) -> cqrs_core::Result<Vec<Lease>> {
        self.check()?;
        self.store.leases(prefix).await
    }
}
