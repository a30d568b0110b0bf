//! The runner carries out operators' requests on dead letters (in memory): a retried key's
//! letters are read again, upcast and applied in feed order, and go; a failed retry stays
//! parked with the new error; skipped letters go, and once a key has none left its later events
//! flow. A start loads the parked keys, not the letters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    DeadLetter, DeadLetterStore, LetterTarget, PoisonPolicy, Projection, ProjectionError,
    ProjectionHandle, ProjectionRunner, ProjectionState, Redrive, Rejected, RunnerOptions,
};
use cqrs_core::{
    AppendEvents, ExpectedVersion, InMemoryEventStore, NewEvent, Position, ReadStream,
    RecordedEvent, Result, RetryPolicy, StreamId, Upcasters, Version,
};
use serde_json::json;

/// Per stream, the `n`s applied in order; refuses a payload without `n`, and holds back the
/// later events of a refused stream in the batch (the contract).
#[derive(Clone, Default)]
struct Sequences(Arc<Mutex<BTreeMap<String, Vec<i64>>>>);

impl Sequences {
    fn of(&self, stream: &str) -> Vec<i64> {
        self.0
            .lock()
            .expect("lock")
            .get(stream)
            .cloned()
            .unwrap_or_default()
    }
}

#[async_trait]
impl Projection for Sequences {
    fn name(&self) -> &str {
        "sequences"
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        Some(event.stream_id.to_string())
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut rejected: Vec<Rejected> = Vec::new();
        let mut held = std::collections::HashSet::new();
        let mut streams = self.0.lock().expect("lock");
        for event in events {
            let stream = event.stream_id.to_string();
            if held.contains(&stream) {
                rejected.push(Rejected::new(event.position, "held back"));
                continue;
            }
            match event.payload["n"].as_i64() {
                Some(n) => streams.entry(stream).or_default().push(n),
                None => {
                    rejected.push(Rejected::new(event.position, "no n in payload"));
                    held.insert(stream);
                }
            }
        }
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(ProjectionError::Poison(rejected))
        }
    }
}

async fn append(store: &InMemoryEventStore, stream: &str, payload: serde_json::Value) -> Position {
    store
        .append(
            &StreamId::new(stream).expect("id"),
            ExpectedVersion::Any,
            vec![NewEvent::new("Counted", 1, payload)],
        )
        .await
        .expect("append")
        .position
}

/// Turns `{"m": x}` into `{"n": x}` once `fixed` is set; until then refuses it.
fn upcasters(fixed: Arc<AtomicBool>) -> Upcasters {
    Upcasters::new().with_fn("Counted", 1, move |payload| {
        match (payload.get("m"), fixed.load(Ordering::SeqCst)) {
            (None, _) => Ok(payload),
            (Some(m), true) => Ok(json!({ "n": m })),
            (Some(_), false) => Err("cannot read m yet".into()),
        }
    })
}

fn options(fixed: Arc<AtomicBool>) -> RunnerOptions {
    RunnerOptions::new()
        .batch_size(7)
        .poll_interval(Duration::from_millis(20))
        .retry(
            RetryPolicy::new(u32::MAX).delays(Duration::from_millis(1), Duration::from_millis(5)),
        )
        .poison(PoisonPolicy::Park)
        .upcasters(upcasters(fixed))
}

fn spawn(
    sequences: &Sequences,
    store: &InMemoryEventStore,
    fixed: &Arc<AtomicBool>,
) -> ProjectionHandle {
    ProjectionRunner::new(sequences.clone(), store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_signal(store.clone())
        .with_options(options(fixed.clone()))
        .spawn()
}

const WAIT: Duration = Duration::from_secs(10);

async fn letters(store: &InMemoryEventStore, key: &str) -> Vec<DeadLetter> {
    store
        .key_letters("sequences", key, 100)
        .await
        .expect("letters")
}

/// Polls `check` until it holds, for at most `WAIT`.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_key_is_applied_in_order_and_its_later_events_flow_again() {
    let store = InMemoryEventStore::new();
    let sequences = Sequences::default();
    let fixed = Arc::new(AtomicBool::new(false));
    append(&store, "s-1", json!({ "n": 1 })).await;
    let old = append(&store, "s-1", json!({ "m": 2 })).await;
    let handle = spawn(&sequences, &store, &fixed);
    // (Its own batch: a later event of the key in the batch of an upcast failure is item 1 of
    // issue 13, fixed apart.)
    assert!(handle.wait_for(old, WAIT).await.is_ok());
    append(&store, "s-2", json!({ "n": 10 })).await;
    append(&store, "s-1", json!({ "n": 3 })).await;
    let last = append(&store, "s-2", json!({ "n": 11 })).await;
    assert!(handle.wait_for(last, WAIT).await.is_ok());
    assert_eq!(sequences.of("s-1"), [1]);
    assert_eq!(sequences.of("s-2"), [10, 11]);
    assert_eq!(letters(&store, "s-1").await.len(), 2);

    // A retry before the fix fails again: the letters stay, with the new error, unmarked.
    let s1 = LetterTarget::Key("s-1".to_owned());
    assert_eq!(store.retry("sequences", &s1).await.expect("retry"), 2);
    until("the failed retry to be recorded", || async {
        store
            .requested("sequences", 10)
            .await
            .expect("requested")
            .is_empty()
    })
    .await;
    let kept = letters(&store, "s-1").await;
    assert_eq!(kept.len(), 2);
    assert!(kept[0].error.contains("cannot read m yet"), "{kept:?}");
    assert_eq!(sequences.of("s-1"), [1]);

    // Fixed: the retry applies both, in order; then s-1 flows again.
    fixed.store(true, Ordering::SeqCst);
    store.retry("sequences", &s1).await.expect("retry");
    until("s-1's letters to go", || async {
        letters(&store, "s-1").await.is_empty()
    })
    .await;
    assert_eq!(sequences.of("s-1"), [1, 2, 3]);
    let later = append(&store, "s-1", json!({ "n": 4 })).await;
    assert!(handle.wait_for(later, WAIT).await.is_ok());
    assert_eq!(sequences.of("s-1"), [1, 2, 3, 4]);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skipped_letters_go_and_a_key_with_none_left_flows_again() {
    let store = InMemoryEventStore::new();
    let sequences = Sequences::default();
    let fixed = Arc::new(AtomicBool::new(false));
    append(&store, "s-1", json!({ "n": 1 })).await;
    let bad = append(&store, "s-1", json!({ "bad": true })).await;
    let held = append(&store, "s-1", json!({ "n": 3 })).await;
    let handle = spawn(&sequences, &store, &fixed);
    assert!(handle.wait_for(held, WAIT).await.is_ok());

    // Skipping the bad one alone: its key stays held back by the next letter.
    store
        .skip("sequences", &LetterTarget::Position(bad))
        .await
        .expect("skip");
    until("the skipped letter to go", || async {
        letters(&store, "s-1").await.len() == 1
    })
    .await;
    let parked = append(&store, "s-1", json!({ "n": 4 })).await;
    assert!(handle.wait_for(parked, WAIT).await.is_ok());
    let left: Vec<Position> = letters(&store, "s-1")
        .await
        .iter()
        .map(|l| l.position)
        .collect();
    assert_eq!(left, [held, parked], "s-1 is still held back");

    // Skipping the key: nothing of it is left, and what follows flows.
    store
        .skip("sequences", &LetterTarget::Key("s-1".to_owned()))
        .await
        .expect("skip");
    until("s-1's letters to go", || async {
        letters(&store, "s-1").await.is_empty()
    })
    .await;
    let after = append(&store, "s-1", json!({ "n": 5 })).await;
    assert!(handle.wait_for(after, WAIT).await.is_ok());
    assert_eq!(sequences.of("s-1"), [1, 5]);
    handle.shutdown().await;
}

/// A dead-letter store that counts how many letters it hands out, over the in-memory one.
#[derive(Clone)]
struct Counting {
    store: InMemoryEventStore,
    letters_read: Arc<std::sync::atomic::AtomicUsize>,
}

impl Counting {
    fn count(&self, letters: Result<Vec<DeadLetter>>) -> Result<Vec<DeadLetter>> {
        if let Ok(letters) = &letters {
            self.letters_read.fetch_add(letters.len(), Ordering::SeqCst);
        }
        letters
    }
}

#[async_trait]
impl DeadLetterStore for Counting {
    async fn park(&self, letter: DeadLetter) -> Result<()> {
        self.store.park(letter).await
    }
    async fn dead_letters(
        &self,
        projection: &str,
        after: Position,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        self.count(self.store.dead_letters(projection, after, limit).await)
    }
    async fn parked_keys(&self, projection: &str) -> Result<Vec<String>> {
        self.store.parked_keys(projection).await
    }
    async fn key_letters(
        &self,
        projection: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>> {
        self.count(self.store.key_letters(projection, key, limit).await)
    }
    async fn request(
        &self,
        projection: &str,
        target: &LetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64> {
        self.store.request(projection, target, request).await
    }
    async fn requested(&self, projection: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        self.count(self.store.requested(projection, limit).await)
    }
    async fn remove(&self, projection: &str, positions: &[Position]) -> Result<u64> {
        self.store.remove(projection, positions).await
    }
    async fn redrive_failed(
        &self,
        projection: &str,
        position: Position,
        error: &str,
    ) -> Result<()> {
        self.store.redrive_failed(projection, position, error).await
    }
}

#[async_trait]
impl ReadStream for Counting {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        self.store.read_stream(stream_id, from, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_loads_the_parked_keys_not_the_letters() {
    let store = InMemoryEventStore::new();
    let sequences = Sequences::default();
    append(&store, "s-1", json!({ "bad": true })).await;
    let mut last = Position::START;
    for n in 0..50 {
        last = append(&store, "s-1", json!({ "n": n })).await;
    }
    let counting = Counting {
        store: store.clone(),
        letters_read: Arc::default(),
    };
    let fixed = Arc::new(AtomicBool::new(false));
    let run = || {
        ProjectionRunner::new(sequences.clone(), store.clone(), store.clone())
            .with_dead_letters(counting.clone())
            .with_options(options(fixed.clone()))
            .spawn()
    };
    let handle = run();
    assert!(handle.wait_for(last, WAIT).await.is_ok());
    handle.shutdown().await;
    assert_eq!(letters(&store, "s-1").await.len(), 51);

    let later = append(&store, "s-1", json!({ "n": 99 })).await;
    let handle = run();
    assert!(handle.wait_for(later, WAIT).await.is_ok());
    handle.shutdown().await;
    assert!(sequences.of("s-1").is_empty(), "s-1 stays held back");
    assert_eq!(
        counting.letters_read.load(Ordering::SeqCst),
        0,
        "no letter was loaded to learn the parked keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_under_its_own_checkpoint_name_keeps_its_own_letters_and_leaves_the_lives_alone() {
    let store = InMemoryEventStore::new();
    let fixed = Arc::new(AtomicBool::new(false));
    let live = Sequences::default();
    let handle = spawn(&live, &store, &fixed);
    append(&store, "s-1", json!({ "m": 1 })).await;
    until("the live run parks s-1's event", || async {
        letters(&store, "s-1").await.len() == 1
    })
    .await;
    handle.shutdown().await;
    store
        .request(
            "sequences",
            &LetterTarget::Key("s-1".into()),
            Some(Redrive::Retry),
        )
        .await
        .expect("request");
    let p2 = append(&store, "s-2", json!({ "m": 2 })).await;

    // A replay into another sink, under its own checkpoint (as a rebuild runs).
    let replay = Sequences::default();
    let reached = ProjectionRunner::new(replay.clone(), store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_options(options(fixed.clone()).checkpoint_name("sequences:replay"))
        .catch_up()
        .await
        .expect("caught up");

    assert!(reached >= p2);
    let theirs = store.key_letters("sequences:replay", "s-1", 100).await;
    assert_eq!(
        theirs.expect("letters").len(),
        1,
        "the replay parks under its own name"
    );
    let theirs = store.key_letters("sequences:replay", "s-2", 100).await;
    assert_eq!(theirs.expect("letters").len(), 1);
    let live_letters = letters(&store, "s-1").await;
    assert_eq!(live_letters.len(), 1, "the live run's letter is left alone");
    assert_eq!(live_letters[0].request, Some(Redrive::Retry));
    assert!(letters(&store, "s-2").await.is_empty());
}

/// Per document (the payload's `doc`), the `n`s applied in order; keyed by `doc`, so an event
/// whose `doc` cannot be read (before its upcaster is fixed) has no key.
#[derive(Clone, Default)]
struct ByDoc(Arc<Mutex<BTreeMap<String, Vec<i64>>>>);

#[async_trait]
impl Projection for ByDoc {
    fn name(&self) -> &str {
        "by-doc"
    }

    fn key(&self, event: &RecordedEvent) -> Option<String> {
        event.payload["doc"].as_str().map(str::to_owned)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut docs = self.0.lock().expect("lock");
        for event in events {
            let doc = event.payload["doc"].as_str().unwrap_or("?").to_owned();
            let n = event.payload["n"].as_i64().unwrap_or(-1);
            docs.entry(doc).or_default().push(n);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyless_letter_whose_key_reads_now_is_not_applied_past_its_keys_later_events() {
    let store = InMemoryEventStore::new();
    let fixed = Arc::new(AtomicBool::new(false));
    // Schema 1 named the document `d` and the number `m`; until fixed, its upcaster fails.
    let upcast = fixed.clone();
    let upcasters = Upcasters::new().with_fn("Counted", 1, move |payload| {
        match (payload.get("m"), upcast.load(Ordering::SeqCst)) {
            (None, _) => Ok(payload),
            (Some(m), true) => Ok(json!({ "n": m, "doc": payload["d"] })),
            (Some(_), false) => Err("cannot read m yet".into()),
        }
    });
    let docs = ByDoc::default();
    let handle = ProjectionRunner::new(docs.clone(), store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_signal(store.clone())
        .with_options(options(fixed.clone()).upcasters(upcasters))
        .spawn();
    append(&store, "s-1", json!({ "m": 1, "d": "x" })).await;
    let later = append(&store, "s-1", json!({ "n": 2, "doc": "x" })).await;
    handle
        .wait_for(later, WAIT)
        .await
        .expect("the later event is applied");
    let parked = store.dead_letters("by-doc", Position::START, 10).await;
    let parked = parked.expect("letters");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].key, None, "its key could not be read");

    fixed.store(true, Ordering::SeqCst);
    store
        .request(
            "by-doc",
            &LetterTarget::Position(parked[0].position),
            Some(Redrive::Retry),
        )
        .await
        .expect("request");
    until("the retry is carried out", || async {
        store
            .dead_letters("by-doc", Position::START, 10)
            .await
            .expect("letters")
            .first()
            .is_none_or(|l| l.request.is_none())
    })
    .await;
    handle.shutdown().await;

    let docs = docs.0.lock().expect("lock").clone();
    assert_eq!(
        docs.get("x"),
        Some(&vec![2]),
        "never applied after its later event"
    );
    let left = store.dead_letters("by-doc", Position::START, 10).await;
    let left = left.expect("letters");
    assert_eq!(left.len(), 1, "it stays parked");
    assert!(left[0].error.contains("rebuild"), "{}", left[0].error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_kept_apart_from_the_leases_fail_the_projection_saying_so() {
    let store = InMemoryEventStore::new();
    let fixed = Arc::new(AtomicBool::new(false));
    let sequences = Sequences::default();
    // The letters' store checks fenced parks against its own leases, which nobody takes.
    let handle = ProjectionRunner::new(sequences.clone(), store.clone(), store.clone())
        .with_leases(store.clone())
        .with_dead_letters(InMemoryEventStore::new())
        .with_options(options(fixed))
        .spawn();
    append(&store, "s-1", json!({ "m": 1 })).await;

    let failed = handle.wait_until(|s| s.state == ProjectionState::Failed);
    let failed = tokio::time::timeout(WAIT, failed).await;
    let failed = failed.unwrap_or_else(|_| panic!("not failed: {:?}", handle.status()));
    let error = failed.and_then(|s| s.last_error).unwrap_or_default();
    assert!(error.contains("lease store"), "{error}");
}
