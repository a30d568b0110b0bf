//! The conformance suite: what every event store must do, as functions over a fresh store.
//!
//! Each case panics on the first broken promise (they are test assertions). Run them all with
//! [`store_conformance_tests!`](crate::store_conformance_tests).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use uuid::Uuid;

use crate::backend::DEFAULT_MAX_PAYLOAD_BYTES;
use crate::projection::{DeadLetter, DeadLetterStore, Lease, LeaseStore, LetterTarget, Redrive};
use crate::testing::{Tally, TallyCommand, TallyError};
use crate::{
    CheckpointStore, CommandContext, CommandError, CommandId, Error, EventFilter, EventId,
    EventStore, ExpectedVersion, FencedSave, Metadata, NewEvent, Position, RecordedEvent,
    Repository, RetryPolicy, Snapshot, SnapshotPolicy, SnapshotStore, StreamId, Upcasters, Version,
};

/// What the suite needs of a store.
pub trait ConformanceStore:
    EventStore + SnapshotStore + CheckpointStore + DeadLetterStore + LeaseStore + Clone + 'static
{
}

impl<T> ConformanceStore for T where
    T: EventStore
        + SnapshotStore
        + CheckpointStore
        + DeadLetterStore
        + LeaseStore
        + Clone
        + 'static
{
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("test stream ids are valid")
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("Numbered", 1, json!({ "n": n }))
}

fn events(range: std::ops::Range<u64>) -> Vec<NewEvent> {
    range.map(event).collect()
}

fn numbers(events: &[RecordedEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e.payload["n"].as_u64().expect("payload has n"))
        .collect()
}

/// Follows the feed from the start until `expected` events came (or a deadline passed), then
/// reads on until the feed is drained. A store's feed may show a committed event a moment late
/// (the PostgreSQL feed waits for older open transactions, even other tests'), never early.
async fn read_whole_feed<S: ConformanceStore>(
    store: &S,
    filter: &EventFilter,
    expected: usize,
) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut after = Position::START;
    let mut all = Vec::new();
    loop {
        let batch = store.read_all(after, 7, filter).await.expect("feed read");
        assert!(batch.next >= after, "the feed never moves backwards");
        let drained = batch.events.is_empty();
        after = batch.next;
        all.extend(batch.events);
        if drained {
            if all.len() >= expected || tokio::time::Instant::now() > deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Appended events read back with every field intact.
pub async fn appends_and_reads_back<S: ConformanceStore>(store: S) {
    let s = stream("roundtrip-1");
    let correlation = Uuid::now_v7();
    let metadata = Metadata::new(EventId::new())
        .with_correlation_id(correlation)
        .with_causation_id(correlation)
        .with_header("user", "alice");
    let first = NewEvent::new(
        "Opened",
        3,
        json!({ "name": "ünïcødé ✓", "nested": { "a": [1, 2.5, null] } }),
    )
    .with_metadata(metadata.clone());
    let outcome = store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![first.clone(), event(2), event(3)],
        )
        .await
        .expect("append");
    assert_eq!(outcome.first_version, Version::new(1));
    assert_eq!(outcome.last_version, Version::new(3));
    assert!(!outcome.duplicate);

    let read = store
        .read_stream(&s, Version::new(1), 100)
        .await
        .expect("read");
    assert_eq!(read.len(), 3);
    assert_eq!(read[0].event_type, "Opened");
    assert_eq!(read[0].schema_version, 3);
    assert_eq!(read[0].payload, first.payload);
    assert_eq!(read[0].metadata, metadata);
    assert_eq!(read[0].stream_id, s);
    let versions: Vec<u64> = read.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert!(read.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(read[2].position, outcome.position);
    let age = time::OffsetDateTime::now_utc() - read[0].recorded_at;
    assert!(
        age.whole_minutes().abs() < 5,
        "recorded_at is now-ish: {age}"
    );

    let tail = store
        .read_stream(&s, Version::new(2), 100)
        .await
        .expect("read tail");
    assert_eq!(numbers(&tail), [2, 3]);
}

/// An absent stream reads as empty, and reading past the end returns nothing.
pub async fn an_absent_stream_reads_as_empty<S: ConformanceStore>(store: S) {
    let none = store
        .read_stream(&stream("ghost-1"), Version::new(1), 10)
        .await
        .expect("read");
    assert!(none.is_empty());
    let s = stream("short-1");
    store
        .append(&s, ExpectedVersion::Any, events(1..3))
        .await
        .expect("append");
    let past = store
        .read_stream(&s, Version::new(3), 10)
        .await
        .expect("read past");
    assert!(past.is_empty());
}

/// Stream reads honour `from` and `limit`.
pub async fn stream_reads_are_batched<S: ConformanceStore>(store: S) {
    let s = stream("batched-1");
    store
        .append(&s, ExpectedVersion::NoStream, events(1..26))
        .await
        .expect("append");
    let mut from = Version::new(1);
    let mut seen = Vec::new();
    loop {
        let batch = store.read_stream(&s, from, 10).await.expect("read");
        assert!(batch.len() <= 10);
        let Some(last) = batch.last() else { break };
        from = last.version.next();
        seen.extend(numbers(&batch));
    }
    assert_eq!(seen, (1..26).collect::<Vec<_>>());
}

/// `NoStream`, `Exact` and `Any` are enforced, and a conflict says where the stream is.
pub async fn expected_versions_are_enforced<S: ConformanceStore>(store: S) {
    let s = stream("expect-1");
    store
        .append(&s, ExpectedVersion::Exact(Version::ZERO), events(1..3))
        .await
        .expect("first");
    match store
        .append(&s, ExpectedVersion::NoStream, events(3..4))
        .await
    {
        Err(Error::Conflict {
            stream_id,
            expected,
            actual,
        }) => {
            assert_eq!(stream_id, s);
            assert_eq!(expected, ExpectedVersion::NoStream);
            assert_eq!(actual, Version::new(2));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    for wrong in [1, 3, 10] {
        let err = store
            .append(
                &s,
                ExpectedVersion::Exact(Version::new(wrong)),
                events(3..4),
            )
            .await
            .expect_err("wrong version must fail");
        assert!(
            matches!(err, Error::Conflict { actual, .. } if actual == Version::new(2)),
            "{err:?}"
        );
    }
    store
        .append(&s, ExpectedVersion::Exact(Version::new(2)), events(3..4))
        .await
        .expect("exact");
    let any = store
        .append(&s, ExpectedVersion::Any, events(4..6))
        .await
        .expect("any");
    assert_eq!(any.last_version, Version::new(5));
    let all = store
        .read_stream(&s, Version::new(1), 100)
        .await
        .expect("read");
    assert_eq!(numbers(&all), [1, 2, 3, 4, 5]);
}

/// Many tasks race to append at the same expected version: exactly one wins each round, every
/// loser gets a conflict, and the stream ends contiguous.
pub async fn racing_writers_get_exactly_one_winner_per_version<S: ConformanceStore>(store: S) {
    let s = stream("race-1");
    let writers = 16u64;
    let rounds = 8u64;
    for round in 0..rounds {
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let store = store.clone();
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .append(
                        &s,
                        ExpectedVersion::Exact(Version::new(round)),
                        vec![event(writer)],
                    )
                    .await
            }));
        }
        let mut winners = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(outcome) => {
                    winners += 1;
                    assert_eq!(outcome.last_version, Version::new(round + 1));
                }
                Err(Error::Conflict { actual, .. }) => assert_eq!(actual, Version::new(round + 1)),
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round} had {winners} winners");
    }
    let all = store
        .read_stream(&s, Version::new(1), 1000)
        .await
        .expect("read");
    let versions: Vec<u64> = all.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, (1..=rounds).collect::<Vec<_>>());
}

/// A batch with one bad event writes nothing at all.
pub async fn appends_are_all_or_nothing<S: ConformanceStore>(store: S) {
    let s = stream("atomic-1");
    let head = store.head().await.expect("head");
    let huge = "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES + 1);
    let mut batch = events(1..4);
    batch.insert(1, NewEvent::new("Huge", 1, json!({ "blob": huge })));
    let err = store
        .append(&s, ExpectedVersion::Any, batch)
        .await
        .expect_err("too large");
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err:?}");
    let mut batch = events(1..4);
    batch.push(NewEvent::new("", 1, json!({})));
    let err = store
        .append(&s, ExpectedVersion::Any, batch)
        .await
        .expect_err("bad type");
    assert!(matches!(err, Error::InvalidEventType(_)), "{err:?}");
    assert!(store
        .read_stream(&s, Version::new(1), 10)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(store.head().await.expect("head"), head);
}

/// The same command id appended again writes nothing and answers with the first outcome, even
/// with a stale expected version.
pub async fn a_repeated_command_id_returns_the_first_outcome<S: ConformanceStore>(store: S) {
    let s = stream("idem-1");
    let command_id = CommandId::new();
    let with_command = |range: std::ops::Range<u64>| -> Vec<NewEvent> {
        range
            .map(|n| {
                event(n).with_metadata(Metadata::new(EventId::new()).with_command_id(command_id))
            })
            .collect()
    };
    assert_eq!(
        store.command_outcome(command_id).await.expect("lookup"),
        None
    );
    let first = store
        .append(&s, ExpectedVersion::NoStream, with_command(1..3))
        .await
        .expect("first");
    store
        .append(&s, ExpectedVersion::Any, events(3..4))
        .await
        .expect("other");
    let again = store
        .append(&s, ExpectedVersion::NoStream, with_command(1..3))
        .await
        .expect("repeat is not an error");
    assert!(again.duplicate);
    assert_eq!(
        (again.first_version, again.last_version, again.position),
        (first.first_version, first.last_version, first.position)
    );
    let looked_up = store
        .command_outcome(command_id)
        .await
        .expect("lookup")
        .expect("recorded");
    assert_eq!(looked_up.position, first.position);
    assert_eq!(looked_up.last_version, first.last_version);
    let all = store
        .read_stream(&s, Version::new(1), 100)
        .await
        .expect("read");
    assert_eq!(numbers(&all), [1, 2, 3]);
    assert!(all[..2]
        .iter()
        .all(|e| e.metadata.command_id == Some(command_id)));
    let elsewhere = store
        .append(&stream("idem-9"), ExpectedVersion::Any, with_command(7..8))
        .await;
    assert!(
        matches!(elsewhere, Err(Error::CommandIdReused { ref stream_id, .. }) if *stream_id == s),
        "{elsewhere:?}"
    );
    assert!(store
        .read_stream(&stream("idem-9"), Version::new(1), 10)
        .await
        .expect("read")
        .is_empty());
}

/// Re-sending the same events (same ids) is idempotent; reusing one id in another append is an
/// error.
pub async fn repeated_event_ids_return_the_first_outcome<S: ConformanceStore>(store: S) {
    let s = stream("idem-2");
    let batch = events(1..4);
    let first = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("first");
    let again = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("again");
    assert!(again.duplicate);
    assert_eq!(
        (again.last_version, again.position),
        (first.last_version, first.position)
    );
    let mut mixed = events(10..12);
    mixed.push(batch[1].clone());
    let err = store
        .append(&s, ExpectedVersion::Any, mixed)
        .await
        .expect_err("reused id");
    assert!(matches!(err, Error::EventIdReused { .. }), "{err:?}");
    let elsewhere = store
        .append(&stream("idem-3"), ExpectedVersion::Any, batch)
        .await;
    assert!(
        matches!(elsewhere, Err(Error::EventIdReused { .. })),
        "{elsewhere:?}"
    );
    let all = store
        .read_stream(&s, Version::new(1), 100)
        .await
        .expect("read");
    assert_eq!(numbers(&all), [1, 2, 3]);
}

/// The feed returns every event once, in append order across streams, in batches; positions
/// only grow; `head` is the last position.
pub async fn the_feed_is_totally_ordered_and_batched<S: ConformanceStore>(store: S) {
    let mut expected = Vec::new();
    for n in 0..30u64 {
        let s = stream(&format!("feed{}-{}", n % 3, n % 4));
        store
            .append(&s, ExpectedVersion::Any, vec![event(n)])
            .await
            .expect("append");
        expected.push(n);
    }
    let all = read_whole_feed(&store, &EventFilter::all(), expected.len()).await;
    assert_eq!(numbers(&all), expected);
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));
    let last = all.last().expect("events").position;
    assert_eq!(store.head().await.expect("head"), last);
    let rest = store
        .read_all(last, 10, &EventFilter::all())
        .await
        .expect("read");
    assert!(rest.events.is_empty());
    let middle = all[9].position;
    let after = store
        .read_all(middle, 5, &EventFilter::all())
        .await
        .expect("read");
    assert_eq!(numbers(&after.events), [10, 11, 12, 13, 14]);
    assert_eq!(after.next, all[14].position);
    let mut per_stream: HashMap<&StreamId, u64> = HashMap::new();
    for e in &all {
        let last = per_stream.entry(&e.stream_id).or_default();
        assert_eq!(e.version.get(), *last + 1, "per-stream order in the feed");
        *last = e.version.get();
    }
}

/// Category and event-type filters work, alone and together, and a filtered reader still
/// moves past what it skipped.
pub async fn the_feed_filters_by_category_and_event_type<S: ConformanceStore>(store: S) {
    for n in 0..12u64 {
        let category = ["order", "payment", "orderline"][usize::try_from(n % 3).expect("small")];
        let s = stream(&format!("{category}-{n}"));
        let kind = if n % 2 == 0 { "Even" } else { "Odd" };
        store
            .append(
                &s,
                ExpectedVersion::Any,
                vec![NewEvent::new(kind, 1, json!({ "n": n }))],
            )
            .await
            .expect("append");
    }
    let orders = read_whole_feed(&store, &EventFilter::all().category("order"), 4).await;
    assert_eq!(numbers(&orders), [0, 3, 6, 9]);
    let two = read_whole_feed(
        &store,
        &EventFilter::all().category("order").category("payment"),
        8,
    )
    .await;
    assert_eq!(numbers(&two), [0, 1, 3, 4, 6, 7, 9, 10]);
    let odd = read_whole_feed(&store, &EventFilter::all().event_types(["Odd"]), 6).await;
    assert_eq!(numbers(&odd), [1, 3, 5, 7, 9, 11]);
    let both = read_whole_feed(
        &store,
        &EventFilter::all().category("payment").event_types(["Odd"]),
        2,
    )
    .await;
    assert_eq!(numbers(&both), [1, 7]);
    let none = store
        .read_all(
            Position::START,
            100,
            &EventFilter::all().category("nothing"),
        )
        .await
        .expect("read");
    assert!(none.events.is_empty());
    assert!(
        none.next > Position::START,
        "a filtered reader moves past skipped events"
    );
}

/// Writers on many streams append while a reader follows the feed: the reader sees every event
/// exactly once, each stream in version order.
pub async fn concurrent_writers_never_skip_a_feed_event<S: ConformanceStore>(store: S) {
    let writers = 8u64;
    let per_writer = 50u64;
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut after = Position::START;
            let mut seen: Vec<RecordedEvent> = Vec::new();
            let total = usize::try_from(writers * per_writer).expect("small");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                // Once the writers are done, drain until every event came (a store may show a
                // committed event a moment late) or the deadline says one never will.
                let finished = done.load(Ordering::SeqCst)
                    && (seen.len() >= total || tokio::time::Instant::now() > deadline);
                let batch = store
                    .read_all(after, 64, &EventFilter::all())
                    .await
                    .expect("read");
                let empty = batch.events.is_empty();
                after = batch.next;
                seen.extend(batch.events);
                if empty {
                    if finished {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let s = stream(&format!("conc-{}", (w * 7 + i) % 13));
                let n = w * 1000 + i;
                store
                    .append(&s, ExpectedVersion::Any, vec![event(n)])
                    .await
                    .expect("append");
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.expect("reader");
    let mut ns = numbers(&seen);
    assert_eq!(ns.len() as u64, writers * per_writer, "every event once");
    ns.sort_unstable();
    ns.dedup();
    assert_eq!(ns.len() as u64, writers * per_writer, "no event twice");
    let mut versions: BTreeMap<&StreamId, u64> = BTreeMap::new();
    for e in &seen {
        let last = versions.entry(&e.stream_id).or_default();
        assert_eq!(e.version.get(), *last + 1, "per-stream order in the feed");
        *last = e.version.get();
    }
}

/// A snapshot round trips; an older one never replaces a newer one.
pub async fn snapshots_keep_the_newest<S: ConformanceStore>(store: S) {
    let s = stream("snap-1");
    assert_eq!(store.load_snapshot(&s).await.expect("load"), None);
    let v5 = Snapshot::new(s.clone(), Version::new(5), 1, json!({ "total": 5 }));
    store.save_snapshot(v5.clone()).await.expect("save");
    assert_eq!(
        store.load_snapshot(&s).await.expect("load"),
        Some(v5.clone())
    );
    let v3 = Snapshot::new(s.clone(), Version::new(3), 1, json!({ "total": 3 }));
    store.save_snapshot(v3).await.expect("save older");
    assert_eq!(store.load_snapshot(&s).await.expect("load"), Some(v5));
    let v9 = Snapshot::new(s.clone(), Version::new(9), 2, json!({ "total": 9 }));
    store.save_snapshot(v9.clone()).await.expect("save newer");
    assert_eq!(store.load_snapshot(&s).await.expect("load"), Some(v9));
}

/// Checkpoints are per projection name, only move forward when saved, and start over when
/// reset.
pub async fn checkpoints_round_trip<S: ConformanceStore>(store: S) {
    assert_eq!(store.load_checkpoint("p1").await.expect("load"), None);
    let a = Position::from_parts(3, 17);
    store.save_checkpoint("p1", a).await.expect("save");
    store
        .save_checkpoint("p2", Position::from_parts(1, 1))
        .await
        .expect("save");
    assert_eq!(store.load_checkpoint("p1").await.expect("load"), Some(a));
    store.reset_checkpoint("p1").await.expect("reset");
    assert_eq!(store.load_checkpoint("p1").await.expect("load"), None);
    assert_eq!(
        store.load_checkpoint("p2").await.expect("load"),
        Some(Position::from_parts(1, 1))
    );
    store.reset_checkpoint("never-saved").await.expect("reset");
}

/// A checkpoint never moves back: a save at or before it changes nothing, fenced or not.
pub async fn a_checkpoint_never_moves_back<S: ConformanceStore>(store: S) {
    let (early, late) = (Position::from_parts(2, 40), Position::from_parts(3, 5));
    store.save_checkpoint("p", late).await.expect("save");
    store.save_checkpoint("p", early).await.expect("save late");
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(late));
    store.save_checkpoint("p", late).await.expect("save again");
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(late));

    let lease = store
        .try_acquire("p", "a", Duration::from_secs(30))
        .await
        .expect("acquire")
        .expect("free");
    assert_eq!(
        store
            .save_checkpoint_fenced("p", early, &lease)
            .await
            .expect("fenced save"),
        FencedSave::Saved,
        "held: not refused, only not moved back"
    );
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(late));
    let later = Position::from_parts(3, 6);
    assert_eq!(
        store
            .save_checkpoint_fenced("p", later, &lease)
            .await
            .expect("fenced save"),
        FencedSave::Saved
    );
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(later));
}

/// Bad input gets typed errors and writes nothing.
pub async fn bad_input_is_refused_with_typed_errors<S: ConformanceStore>(store: S) {
    let s = stream("bad-1");
    assert!(matches!(
        store.append(&s, ExpectedVersion::Any, Vec::new()).await,
        Err(Error::EmptyAppend)
    ));
    let mixed = vec![
        event(1).with_metadata(Metadata::new(EventId::new()).with_command_id(CommandId::new())),
        event(2),
    ];
    assert!(matches!(
        store.append(&s, ExpectedVersion::Any, mixed).await,
        Err(Error::MixedCommandIds)
    ));
    for bad_type in [
        "",
        "line\nbreak",
        &"t".repeat(crate::backend::MAX_EVENT_TYPE_LEN + 1),
    ] {
        let err = store
            .append(
                &s,
                ExpectedVersion::Any,
                vec![NewEvent::new(bad_type, 1, json!({}))],
            )
            .await
            .expect_err("bad type");
        assert!(matches!(err, Error::InvalidEventType(_)), "{err:?}");
    }
    let huge = Value::String("y".repeat(DEFAULT_MAX_PAYLOAD_BYTES));
    let err = store
        .append(
            &s,
            ExpectedVersion::Any,
            vec![NewEvent::new("Big", 1, huge)],
        )
        .await
        .expect_err("too large");
    assert!(
        matches!(err, Error::PayloadTooLarge { limit, .. } if limit == DEFAULT_MAX_PAYLOAD_BYTES)
    );
    assert!(store
        .read_stream(&s, Version::new(1), 10)
        .await
        .expect("read")
        .is_empty());
    let nul = NewEvent::new("Nul", 1, json!({ "text": "a\u{0}b" }));
    let err = store
        .append(&s, ExpectedVersion::Any, vec![nul])
        .await
        .expect_err("NUL");
    assert!(matches!(err, Error::NulInPayload { .. }), "{err:?}");
    assert!(store
        .read_stream(&s, Version::new(1), 10)
        .await
        .expect("read")
        .is_empty());
    // Odd but valid text round trips unchanged.
    let odd = json!({ "quote": "it's \"fine\"; DROP TABLE events; --", "escaped": "\\u0000 is text", "emoji": "🦀", "big": u64::MAX, "float": 2.5 });
    let ok = stream("bad-2'; DROP TABLE events; --");
    store
        .append(
            &ok,
            ExpectedVersion::Any,
            vec![NewEvent::new("Odd", 1, odd.clone())],
        )
        .await
        .expect("odd but valid");
    let back = store
        .read_stream(&ok, Version::new(1), 10)
        .await
        .expect("read");
    assert_eq!(back[0].payload, odd);
}

fn tally_upcasters() -> Upcasters {
    // Schema 1 of `Added` called the amount `value`.
    Upcasters::new().with_fn("Added", 1, |mut payload| {
        let value = payload
            .as_object_mut()
            .and_then(|o| o.remove("value"))
            .ok_or("schema 1 `Added` without `value`")?;
        Ok(json!({ "amount": value }))
    })
}

/// The command pipeline on this store: commands, rejections, snapshots, old payloads upcast on
/// load, and typed errors for undecodable events.
pub async fn the_repository_runs_commands_with_snapshots_and_upcasters<S: ConformanceStore>(
    store: S,
) {
    let tallies = Repository::<Tally, _>::new(store.clone())
        .with_snapshots(SnapshotPolicy::every(4))
        .with_upcasters(tally_upcasters());
    let s = tallies.stream_id("t1").expect("id");
    store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Added", 1, json!({ "value": 7 }))],
        )
        .await
        .expect("old event");
    let outcome = tallies
        .execute("t1", &TallyCommand::Add(vec![1, 2, 3]))
        .await
        .expect("add");
    assert_eq!(outcome.version, Version::new(4));
    assert_eq!(outcome.events.len(), 3);
    let position = outcome.position.expect("position");
    assert_eq!(
        store
            .read_stream(&s, Version::new(4), 1)
            .await
            .expect("read")[0]
            .position,
        position
    );
    let snapshot = store
        .load_snapshot(&s)
        .await
        .expect("load")
        .expect("due at version 4");
    assert_eq!(snapshot.version, Version::new(4));
    tallies
        .execute("t1", &TallyCommand::Add(vec![10]))
        .await
        .expect("add");
    let (state, version) = tallies.load("t1").await.expect("load");
    assert_eq!(
        (state.total, state.applied, version),
        (23, 5, Version::new(5))
    );
    let nothing = tallies
        .execute("t1", &TallyCommand::Nothing)
        .await
        .expect("nothing");
    assert!(nothing.events.is_empty() && nothing.position.is_none());
    tallies
        .execute("t1", &TallyCommand::Close)
        .await
        .expect("close");
    let refused = tallies.execute("t1", &TallyCommand::Add(vec![1])).await;
    assert!(
        matches!(refused, Err(CommandError::Rejected(TallyError::Closed))),
        "{refused:?}"
    );

    let broken = tallies.stream_id("t2").expect("id");
    store
        .append(
            &broken,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Added", 1, json!({ "oops": 1 }))],
        )
        .await
        .expect("append");
    match tallies.load("t2").await {
        Err(Error::Upcast {
            stream_id,
            version,
            event_type,
            schema_version,
            ..
        }) => {
            assert_eq!(
                (stream_id, version, event_type.as_str(), schema_version),
                (broken, Version::new(1), "Added", 1)
            );
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
    let unknown = tallies.stream_id("t3").expect("id");
    store
        .append(
            &unknown,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Exploded", 1, json!({}))],
        )
        .await
        .expect("append");
    match tallies.load("t3").await {
        Err(Error::Decode {
            stream_id,
            version,
            event_type,
            ..
        }) => {
            assert_eq!(
                (stream_id, version, event_type.as_str()),
                (Some(unknown), Some(Version::new(1)), "Exploded")
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let wrong_shape = tallies.stream_id("t4").expect("id");
    store
        .append(
            &wrong_shape,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Added", 2, json!({ "amount": "many" }))],
        )
        .await
        .expect("append");
    assert!(matches!(
        tallies.load("t4").await,
        Err(Error::Decode { .. })
    ));
}

/// A snapshot of another schema version, or one that does not deserialize, is ignored and the
/// aggregate loads by full replay.
pub async fn a_stale_or_broken_snapshot_is_ignored<S: ConformanceStore>(store: S) {
    let tallies =
        Repository::<Tally, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(1000));
    tallies
        .execute("s1", &TallyCommand::Add(vec![5, 6]))
        .await
        .expect("add");
    let s = tallies.stream_id("s1").expect("id");
    let lie = json!({ "total": 999, "applied": 2, "closed": false });
    store
        .save_snapshot(Snapshot::new(s.clone(), Version::new(2), 99, lie))
        .await
        .expect("save");
    let (state, _) = tallies.load("s1").await.expect("load");
    assert_eq!(
        state.total, 11,
        "a snapshot of another schema version is ignored"
    );
    store
        .save_snapshot(Snapshot::new(
            s.clone(),
            Version::new(3),
            1,
            json!("not a tally"),
        ))
        .await
        .expect("save");
    let (state, version) = tallies.load("s1").await.expect("load");
    assert_eq!(
        (state.total, version),
        (11, Version::new(2)),
        "a broken snapshot is ignored"
    );
}

/// A [`Tally`] whose commands on a fresh tally wait until every racer has loaded it, so the
/// racers provably start from the same version and all but one must conflict and retry.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct GatedTally(Tally);

impl crate::Aggregate for GatedTally {
    const TYPE: &'static str = Tally::TYPE;
    type Command = TallyCommand;
    type Event = crate::testing::TallyEvent;
    type Error = TallyError;
    type Services = Arc<tokio::sync::Barrier>;

    fn apply(&mut self, event: &Self::Event) {
        self.0.apply(event);
    }

    async fn handle(
        &self,
        command: &TallyCommand,
        all_loaded: &Self::Services,
    ) -> Result<Vec<Self::Event>, TallyError> {
        if self.0.applied == 0 {
            // Only the first attempts see an empty tally; retries see the winner's event.
            tokio::time::timeout(Duration::from_secs(30), all_loaded.wait())
                .await
                .expect("every racer loaded the empty tally within 30 s");
        }
        self.0.handle(command, &()).await
    }
}

/// Many commands race on one aggregate: each lands exactly once (conflicts retried), and a
/// command id sent twice lands once.
pub async fn racing_commands_are_retried_until_each_lands_once<S: ConformanceStore>(store: S) {
    const RACERS: u64 = 24;
    const RACER_TASKS: usize = 24;
    // No cache: a cache makes one repository's commands take turns, and nothing would race.
    let racing = Arc::new(
        Repository::<GatedTally, _>::with_services(
            store.clone(),
            Arc::new(tokio::sync::Barrier::new(RACER_TASKS)),
        )
        .with_retry(RetryPolicy::new(200)),
    );
    let mut tasks = Vec::new();
    for n in 1..=RACERS {
        let racing = racing.clone();
        tasks.push(tokio::spawn(async move {
            racing
                .execute("hot", &TallyCommand::Add(vec![n]))
                .await
                .map(|o| o.attempts)
        }));
    }
    let mut first_try = 0;
    let mut retried = 0;
    for task in tasks {
        if task.await.expect("task").expect("command lands") > 1 {
            retried += 1;
        } else {
            first_try += 1;
        }
    }
    assert_eq!(
        (first_try, retried),
        (1, RACERS - 1),
        "all racers loaded the same empty tally: one lands at once, every other one conflicts and retries"
    );
    let tallies = Arc::new(
        Repository::<Tally, _>::new(store.clone())
            .with_retry(RetryPolicy::new(200))
            .with_cache(16),
    );
    let (state, version) = tallies.load("hot").await.expect("load");
    assert_eq!(state.total, (1..=RACERS).sum::<u64>());
    assert_eq!(version, Version::new(RACERS));

    // A cached state goes stale when another writer appends: the next command conflicts once,
    // reloads and lands.
    let warm = tallies
        .execute("hot", &TallyCommand::Nothing)
        .await
        .expect("warms the cache");
    assert_eq!(warm.attempts, 1);
    let other_writer = Repository::<Tally, _>::new(store.clone());
    other_writer
        .execute("hot", &TallyCommand::Add(vec![100]))
        .await
        .expect("the other writer lands");
    let stale = tallies
        .execute("hot", &TallyCommand::Add(vec![200]))
        .await
        .expect("lands after a reload");
    assert_eq!(
        (stale.attempts, stale.version),
        (2, Version::new(RACERS + 2)),
        "the stale cached state conflicts once, then the reloaded state lands"
    );
    let (state, _) = tallies.load("hot").await.expect("load");
    assert_eq!(state.total, (1..=RACERS).sum::<u64>() + 300);

    let context = CommandContext::new().command_id(CommandId::new());
    let mut twice = Vec::new();
    for _ in 0..2 {
        let tallies = tallies.clone();
        let context = context.clone();
        twice.push(tokio::spawn(async move {
            tallies
                .execute_with("hot", &TallyCommand::Add(vec![1000]), context)
                .await
        }));
    }
    let mut duplicates = 0;
    for task in twice {
        let outcome = task.await.expect("task").expect("lands");
        assert_eq!(outcome.events.len(), 1);
        duplicates += usize::from(outcome.duplicate);
    }
    assert_eq!(
        duplicates, 1,
        "one run appends, the other gets the first outcome"
    );
    let (state, version) = tallies.load("hot").await.expect("load");
    assert_eq!(
        (state.total, version),
        ((1..=RACERS).sum::<u64>() + 1300, Version::new(RACERS + 3))
    );
    let elsewhere = tallies
        .execute_with("cold", &TallyCommand::Add(vec![1]), context)
        .await;
    assert!(
        matches!(
            elsewhere,
            Err(CommandError::Store(Error::CommandIdReused { .. }))
        ),
        "a command id names one command on one aggregate: {elsewhere:?}"
    );
}

/// Waits until `owner` takes lease `name` (it expires meanwhile), at most ten seconds.
async fn acquire_when_expired<S: ConformanceStore>(
    store: &S,
    name: &str,
    owner: &str,
    ttl: Duration,
) -> Lease {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(lease) = store.try_acquire(name, owner, ttl).await.expect("acquire") {
            return lease;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "an expired lease passes on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A lease admits one owner at a time, renews for its owner, and passes on when released or
/// expired.
pub async fn leases_admit_one_owner_at_a_time<S: ConformanceStore>(store: S) {
    let long = Duration::from_secs(30);
    let a = store.try_acquire("p", "a", long).await.expect("acquire");
    let a = a.expect("free");
    assert_eq!((a.name.as_str(), a.owner.as_str()), ("p", "a"));
    assert!(
        a.valid_for > Duration::from_secs(29) && a.valid_for <= long,
        "valid for the time asked: {a:?}"
    );
    assert_eq!(store.try_acquire("p", "b", long).await.expect("held"), None);
    assert!(store
        .try_acquire("p", "a", long)
        .await
        .expect("renew")
        .is_some());
    let q = store.try_acquire("q", "b", long).await.expect("another");
    let q = q.expect("another lease");
    // b holds q, not p: releasing "p" as b (in q's epoch) leaves a's lease alone.
    store
        .release(&Lease::new("p", "b", q.epoch, long))
        .await
        .expect("not b's to release");
    assert_eq!(store.try_acquire("p", "b", long).await.expect("a's"), None);
    store.release(&a).await.expect("release");
    assert!(store
        .try_acquire("p", "b", Duration::from_millis(50))
        .await
        .expect("released")
        .is_some());
    acquire_when_expired(&store, "p", "a", long).await;
    assert_eq!(
        store.try_acquire("p", "b", long).await.expect("a's again"),
        None
    );
}

/// The epoch grows with each new holder (also the same owner after expiry or release) and
/// stays on renewal.
pub async fn lease_epochs_grow_with_each_new_holder<S: ConformanceStore>(store: S) {
    let (short, long) = (Duration::from_millis(50), Duration::from_secs(30));
    let first = store.try_acquire("p", "a", short).await.expect("acquire");
    let first = first.expect("free");
    let renewed = store.try_acquire("p", "a", long).await.expect("renew");
    let renewed = renewed.expect("a's");
    assert_eq!(renewed.epoch, first.epoch, "a renewal keeps the epoch");
    store.release(&renewed).await.expect("release");
    let b = acquire_when_expired(&store, "p", "b", short).await;
    assert!(b.epoch > first.epoch, "{b:?} after {first:?}");
    let a_again = acquire_when_expired(&store, "p", "a", long).await;
    assert!(
        a_again.epoch > b.epoch,
        "the same owner after expiry is a new holder: {a_again:?} after {b:?}"
    );
    store.release(&b).await.expect("b's time is over");
    let renewed = store.try_acquire("p", "a", long).await.expect("renew");
    assert_eq!(
        renewed.map(|l| l.epoch),
        Some(a_again.epoch),
        "a stale release changes nothing"
    );
    let other = store.try_acquire("q", "a", long).await.expect("acquire");
    assert!(other.is_some(), "leases are per name");
}

/// A save under a lease that expired or passed on is refused and writes nothing; the holder's
/// saves go through.
pub async fn a_stale_epoch_cannot_save<S: ConformanceStore>(store: S) {
    let short = Duration::from_millis(50);
    let old = store.try_acquire("p", "a", short).await.expect("acquire");
    let old = old.expect("free");
    let (p1, p2, p3) = (
        Position::from_parts(1, 1),
        Position::from_parts(1, 2),
        Position::from_parts(1, 3),
    );
    assert_eq!(
        store
            .save_checkpoint_fenced("p", p1, &old)
            .await
            .expect("save"),
        FencedSave::Saved
    );
    let new = acquire_when_expired(&store, "p", "b", Duration::from_secs(30)).await;
    assert!(new.epoch > old.epoch);
    assert_eq!(
        store
            .save_checkpoint_fenced("p", p3, &old)
            .await
            .expect("save"),
        FencedSave::LeaseLost,
        "the old holder is fenced off"
    );
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(p1));
    assert_eq!(
        store
            .save_checkpoint_fenced("p", p2, &new)
            .await
            .expect("save"),
        FencedSave::Saved
    );
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(p2));

    // Expired with no one after it: refused too (the store's clock decides).
    let expired = store.try_acquire("q", "a", short).await.expect("acquire");
    let expired = expired.expect("free");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store
        .save_checkpoint_fenced("q", p1, &expired)
        .await
        .expect("save")
        == FencedSave::Saved
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "an expired lease stops admitting saves"
        );
        store.reset_checkpoint("q").await.expect("reset");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.load_checkpoint("q").await.expect("load"), None);

    // A lease of another name fences nothing here.
    let other = store.try_acquire("r", "a", Duration::from_secs(30)).await;
    let other = other.expect("acquire").expect("free");
    assert_eq!(
        store
            .save_checkpoint_fenced("p", p3, &other)
            .await
            .expect("save"),
        FencedSave::LeaseLost
    );
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(p2));
}

/// Dead letters round trip per projection, in feed order, once per position.
pub async fn dead_letters_round_trip<S: ConformanceStore>(store: S) {
    let letter = |n: u64, key: Option<&str>| {
        DeadLetter::new(
            "read-model",
            Position::from_parts(7, n),
            stream("dl-1"),
            Version::new(n),
            "Broken",
            key.map(str::to_owned),
            &format!("bad payload {n}"),
            time::OffsetDateTime::now_utc(),
        )
    };
    assert!(store
        .dead_letters("read-model", Position::START, 100)
        .await
        .expect("none")
        .is_empty());
    store.park(letter(9, Some("doc-1"))).await.expect("park");
    store.park(letter(3, None)).await.expect("park");
    store
        .park(letter(9, Some("doc-1")))
        .await
        .expect("park again");
    let mut other = letter(1, None);
    other.projection = "another".to_owned();
    store.park(other).await.expect("park");
    let letters = store
        .dead_letters("read-model", Position::START, 100)
        .await
        .expect("letters");
    let positions: Vec<u64> = letters.iter().map(|l| l.position.parts().1).collect();
    assert_eq!(positions, [3, 9]);
    assert_eq!(letters[1].key.as_deref(), Some("doc-1"));
    assert_eq!(letters[1].error, "bad payload 9");
    assert_eq!(letters[1].stream_id, stream("dl-1"));
    assert_eq!(letters[1].request, None);
}

fn keyed_letter(n: u64, key: Option<&str>) -> DeadLetter {
    DeadLetter::new(
        "read-model",
        Position::from_parts(7, n),
        stream("dl-1"),
        Version::new(n),
        "Broken",
        key.map(str::to_owned),
        &format!("bad payload {n}"),
        time::OffsetDateTime::now_utc(),
    )
}

fn letter_numbers(letters: &[DeadLetter]) -> Vec<u64> {
    letters.iter().map(|l| l.position.parts().1).collect()
}

/// Letters are listed in pages (`after`, `limit`), the runner gets each parked key once (not
/// every letter), and a key's letters come in feed order.
pub async fn dead_letters_come_in_pages_and_keys_once<S: ConformanceStore>(store: S) {
    for n in [5, 1, 8, 2, 9, 3, 7] {
        let key = match n % 3 {
            0 => None,
            1 => Some("doc-a"),
            _ => Some("doc-b"),
        };
        store.park(keyed_letter(n, key)).await.expect("park");
    }
    let first = store
        .dead_letters("read-model", Position::START, 3)
        .await
        .expect("page 1");
    assert_eq!(letter_numbers(&first), [1, 2, 3]);
    let after = first.last().expect("a full page").position;
    let second = store
        .dead_letters("read-model", after, 3)
        .await
        .expect("page 2");
    assert_eq!(letter_numbers(&second), [5, 7, 8]);
    let third = store
        .dead_letters("read-model", second[2].position, 3)
        .await
        .expect("page 3");
    assert_eq!(letter_numbers(&third), [9]);

    // Feed order, not the text order of the positions' parts ("10" sorts before "9").
    for major in [10, 9] {
        let mut letter = keyed_letter(1, Some("doc-c"));
        letter.position = Position::from_parts(major, 1);
        store.park(letter).await.expect("park");
    }
    let later = store
        .dead_letters("read-model", third[0].position, 3)
        .await
        .expect("page 4");
    let majors: Vec<u64> = later.iter().map(|l| l.position.parts().0).collect();
    assert_eq!(majors, [9, 10]);
    let c = store
        .key_letters("read-model", "doc-c", 10)
        .await
        .expect("doc-c");
    let majors: Vec<u64> = c.iter().map(|l| l.position.parts().0).collect();
    assert_eq!(majors, [9, 10]);

    let mut keys = store.parked_keys("read-model").await.expect("keys");
    keys.sort();
    assert_eq!(keys, ["doc-a", "doc-b", "doc-c"]);
    assert!(store.parked_keys("another").await.expect("keys").is_empty());
    let a = store
        .key_letters("read-model", "doc-a", 10)
        .await
        .expect("doc-a");
    assert_eq!(letter_numbers(&a), [1, 7]);
    let b = store
        .key_letters("read-model", "doc-b", 2)
        .await
        .expect("doc-b");
    assert_eq!(letter_numbers(&b), [2, 5]);
}

/// Retry and skip requests mark letters (a key's, or one by position) until the runner
/// removes the letters or records a failed re-drive; withdrawn requests go.
pub async fn dead_letter_requests_are_kept_until_carried_out<S: ConformanceStore>(store: S) {
    for (n, key) in [
        (1, Some("doc-a")),
        (2, None),
        (3, Some("doc-a")),
        (4, Some("doc-b")),
    ] {
        store.park(keyed_letter(n, key)).await.expect("park");
    }
    assert!(store
        .requested("read-model", 10)
        .await
        .expect("none yet")
        .is_empty());
    let key_a = LetterTarget::Key("doc-a".to_owned());
    assert_eq!(store.retry("read-model", &key_a).await.expect("retry"), 2);
    let second = LetterTarget::Position(Position::from_parts(7, 2));
    assert_eq!(store.skip("read-model", &second).await.expect("skip"), 1);
    let nowhere = LetterTarget::Position(Position::from_parts(7, 99));
    assert_eq!(store.skip("read-model", &nowhere).await.expect("skip"), 0);
    assert_eq!(store.retry("another", &key_a).await.expect("retry"), 0);

    let requested = store.requested("read-model", 10).await.expect("requested");
    assert_eq!(letter_numbers(&requested), [1, 2, 3]);
    let requests: Vec<Option<Redrive>> = requested.iter().map(|l| l.request).collect();
    assert_eq!(
        requests,
        [
            Some(Redrive::Retry),
            Some(Redrive::Skip),
            Some(Redrive::Retry)
        ]
    );
    let first = store.requested("read-model", 1).await.expect("requested");
    assert_eq!(letter_numbers(&first), [1]);

    // The runner: the skipped letter and a re-driven one go; a failed re-drive stays.
    let removed = store
        .remove(
            "read-model",
            &[Position::from_parts(7, 2), Position::from_parts(7, 1)],
        )
        .await
        .expect("remove");
    assert_eq!(removed, 2);
    store
        .redrive_failed("read-model", Position::from_parts(7, 3), "still bad")
        .await
        .expect("failed");
    let left = store
        .dead_letters("read-model", Position::START, 10)
        .await
        .expect("letters");
    assert_eq!(letter_numbers(&left), [3, 4]);
    assert_eq!(
        (left[0].error.as_str(), left[0].request),
        ("still bad", None)
    );
    assert!(store
        .requested("read-model", 10)
        .await
        .expect("none left")
        .is_empty());

    // A request withdrawn.
    let key_b = LetterTarget::Key("doc-b".to_owned());
    store.retry("read-model", &key_b).await.expect("retry");
    assert_eq!(
        store
            .request("read-model", &key_b, None)
            .await
            .expect("withdraw"),
        1
    );
    assert!(store
        .requested("read-model", 10)
        .await
        .expect("none left")
        .is_empty());
    // Parking a letter again keeps the first, request and all.
    store.retry("read-model", &key_b).await.expect("retry");
    store
        .park(keyed_letter(4, Some("doc-b")))
        .await
        .expect("park again");
    let requested = store.requested("read-model", 10).await.expect("requested");
    assert_eq!(letter_numbers(&requested), [4]);
}
