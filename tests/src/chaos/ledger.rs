//! [`Writers`] append to a few streams in the background, each append 1 to 3 events tagged with
//! the append's id, and keep a [`Ledger`]: which appends succeeded, which failed and how.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, ReadStream, StreamId, Version};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Every append the writers tried, by append id: its stream, its size, and whether the caller
/// was told it succeeded.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Appends the caller saw succeed: append id to (stream, events).
    pub succeeded: BTreeMap<String, (String, u64)>,
    /// Appends the caller saw fail: append id to (stream, events). Whether each was recorded
    /// is unknown to the caller (the commit may have landed before the connection broke).
    pub failed: BTreeMap<String, (String, u64)>,
    /// The failures' texts, transient ones (a retry may succeed).
    pub transient_errors: Vec<String>,
    /// Failures that are neither transient nor a conflict: each one is a bug.
    pub other_errors: Vec<String>,
    /// Conflicts (an earlier append the caller saw fail had landed after all).
    pub conflicts: u64,
    /// The slowest append that succeeded.
    pub slowest: Duration,
    /// When an append last succeeded.
    pub last_success: Option<Instant>,
}

/// Writer tasks appending until stopped.
pub struct Writers {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    ledger: Arc<Mutex<Ledger>>,
    calls: Calls,
}

/// When each writer's call to the store (an append, or a read of a stream's version back)
/// started, while it is in flight.
type Calls = Arc<Mutex<Vec<Option<Instant>>>>;

impl Writers {
    /// Starts `writers` tasks on `store`, writer `w` appending to streams `{prefix}{w}-0` to
    /// `{prefix}{w}-{streams - 1}` in turn, seeded with `seed + w`, pausing `pace` after each
    /// append that succeeded.
    pub fn start(
        store: &PgEventStore,
        prefix: &str,
        writers: u64,
        streams: u64,
        seed: u64,
        pace: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let calls: Calls = Arc::new(Mutex::new(vec![
            None;
            usize::try_from(writers)
                .expect("a writer count that fits")
        ]));
        let tasks = (0..writers)
            .map(|w| {
                let (store, stop, ledger) = (store.clone(), stop.clone(), ledger.clone());
                let call = Call {
                    calls: calls.clone(),
                    writer: usize::try_from(w).expect("a writer index that fits"),
                };
                let names: Vec<String> = (0..streams).map(|s| format!("{prefix}{w}-{s}")).collect();
                tokio::spawn(async move {
                    let seed = seed.wrapping_add(w);
                    write(&store, &names, &stop, &ledger, &call, seed, pace).await;
                })
            })
            .collect();
        Self {
            stop,
            tasks,
            ledger,
            calls,
        }
    }

    /// How long the oldest call to the store still in flight has been waiting (zero when
    /// none is).
    pub fn longest_call_in_flight(&self) -> Duration {
        let calls = self.calls.lock().expect("the calls");
        let now = Instant::now();
        (calls.iter().flatten())
            .map(|started| now - *started)
            .max()
            .unwrap_or_default()
    }

    /// How many appends succeeded so far.
    pub fn succeeded(&self) -> usize {
        self.ledger.lock().expect("the ledger").succeeded.len()
    }

    /// Waits (at most [`PATIENCE`](crate::PATIENCE)) until `appends` appends succeeded in all.
    pub async fn wait_succeeded(&self, appends: usize) {
        crate::eventually(crate::PATIENCE, &format!("{appends} appends"), || async {
            (self.succeeded() >= appends).then_some(())
        })
        .await;
    }

    /// How many appends failed so far.
    pub fn failed(&self) -> usize {
        self.ledger.lock().expect("the ledger").failed.len()
    }

    /// When an append last succeeded.
    pub fn last_success(&self) -> Option<Instant> {
        self.ledger.lock().expect("the ledger").last_success
    }

    /// Stops the writers after the append each is in; returns the ledger.
    pub async fn stop(self) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("a writer panicked (see above)");
        }
        std::mem::take(&mut *self.ledger.lock().expect("the ledger"))
    }
}

/// One writer: appends to `names` in turn with the version it believes each is at; after a
/// failure it reads that stream's version back before appending to it again.
async fn write(
    store: &PgEventStore,
    names: &[String],
    stop: &AtomicBool,
    ledger: &Mutex<Ledger>,
    call: &Call,
    seed: u64,
    pace: Duration,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let streams: Vec<StreamId> = names
        .iter()
        .map(|n| StreamId::new(n).expect("a valid stream id"))
        .collect();
    let mut versions: Vec<Option<Version>> = vec![Some(Version::ZERO); streams.len()];
    let mut turn = 0;
    while !stop.load(Ordering::SeqCst) {
        turn = (turn + 1) % streams.len();
        let stream = &streams[turn];
        let Some(version) = versions[turn] else {
            // Unknown after a failure: read it back (this may fail too while the fault lasts).
            if let Ok(version) = call.timed(stream_version(store, stream)).await {
                versions[turn] = Some(version);
            } else {
                pause().await;
            }
            continue;
        };
        let append = uuid::Uuid::now_v7().simple().to_string();
        let size = rng.u64(1..=3);
        let events = (0..size)
            .map(|index| {
                NewEvent::new(
                    "Tallied",
                    1,
                    json!({ "append": append, "index": index, "of": size }),
                )
            })
            .collect();
        let started = Instant::now();
        let result = call
            .timed(store.append(stream, ExpectedVersion::Exact(version), events))
            .await;
        let failed = {
            let mut ledger = ledger.lock().expect("the ledger");
            match result {
                Ok(outcome) => {
                    versions[turn] = Some(outcome.last_version);
                    ledger.slowest = ledger.slowest.max(started.elapsed());
                    ledger.last_success = Some(Instant::now());
                    ledger
                        .succeeded
                        .insert(append, (stream.as_str().to_owned(), size));
                    false
                }
                Err(error) => {
                    versions[turn] = None;
                    ledger
                        .failed
                        .insert(append, (stream.as_str().to_owned(), size));
                    if error.is_conflict() {
                        ledger.conflicts += 1;
                    } else if error.is_transient() {
                        ledger.transient_errors.push(error.to_string());
                    } else {
                        ledger.other_errors.push(format!("{error:?}"));
                    }
                    true
                }
            }
        };
        if failed {
            pause().await;
        } else if !pace.is_zero() {
            // Pacing the load, not waiting for a condition.
            tokio::time::sleep(pace).await;
        }
    }
}

/// One writer's entry in [`Calls`].
struct Call {
    calls: Calls,
    writer: usize,
}

impl Call {
    /// `call`, its start kept in the writer's entry while it is in flight.
    async fn timed<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        self.set(Some(Instant::now()));
        let result = call.await;
        self.set(None);
        result
    }

    fn set(&self, started: Option<Instant>) {
        self.calls.lock().expect("the calls")[self.writer] = started;
    }
}

/// The version of `stream` in `store` now.
async fn stream_version(
    store: &PgEventStore,
    stream: &StreamId,
) -> Result<Version, cqrs_core::Error> {
    let mut version = Version::ZERO;
    loop {
        let events = store.read_stream(stream, version.next(), 500).await?;
        match events.last() {
            Some(last) => version = last.version,
            None => return Ok(version),
        }
    }
}

/// A writer's pause after a failure, so a broken network is not hammered (pacing, not a wait
/// for a condition).
async fn pause() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}
