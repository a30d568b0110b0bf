//! Appending and reading streams: round trips, expected versions, races, atomicity,
//! idempotent command and event ids, and typed errors for bad input.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::backend::{DEFAULT_MAX_APPEND_BYTES, DEFAULT_MAX_PAYLOAD_BYTES};
use crate::{CommandId, Error, EventId, ExpectedVersion, Metadata, NewEvent, Payload, Version};

use super::{event, events, numbers, stream, ConformanceStore};

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

/// A replay folds what a stream read returns: the same versions, types, schema versions and
/// payloads, in pages of its limit, from any version on; it stops at its closure's first error
/// and returns that error.
pub async fn replays_fold_what_a_read_returns<S: ConformanceStore>(store: S) {
    let s = stream("replayed-1");
    let mut appended = vec![NewEvent::new(
        "Opened",
        3,
        json!({
            "name": "ünïcødé ✓ \"quoted\" \\ \n",
            "big": u64::MAX,
            "small": i64::MIN,
            "ratio": 2.5,
            "nested": { "a": [1, null, { "b": [] }], "empty": {} }
        }),
    )];
    appended.extend(events(2..26));
    appended.push(NewEvent::new("Closed", 1, Value::Null));
    store
        .append(&s, ExpectedVersion::NoStream, appended)
        .await
        .expect("append");
    let read = store
        .read_stream(&s, Version::new(1), 100)
        .await
        .expect("read");
    assert_eq!(read.len(), 26);

    for (from, limit) in [(1, 100), (1, 10), (7, 3), (26, 5), (27, 5), (1, 0)] {
        let mut seen = Vec::new();
        let replayed = store
            .replay(&s, Version::new(from), limit, &mut |event| {
                let payload = match event.payload {
                    Payload::Json(text) => serde_json::from_str(text).expect("the text is JSON"),
                    Payload::Value(value) => value.clone(),
                };
                seen.push((
                    event.version,
                    event.event_type.to_owned(),
                    event.schema_version,
                    payload,
                ));
                Ok(())
            })
            .await
            .expect("replay");
        let expected: Vec<_> = (read.iter())
            .filter(|e| e.version.get() >= from)
            .take(limit)
            .map(|e| {
                let event_type = e.event_type.clone();
                (e.version, event_type, e.schema_version, e.payload.clone())
            })
            .collect();
        assert_eq!(replayed, expected.len(), "from {from}, limit {limit}");
        assert_eq!(seen, expected, "from {from}, limit {limit}");
    }

    let mut calls = 0;
    let stopped = store
        .replay(&s, Version::new(1), 100, &mut |event| {
            calls += 1;
            if event.version == Version::new(3) {
                return Err(Error::InvalidEventType("stop here".into()));
            }
            Ok(())
        })
        .await;
    assert!(
        matches!(&stopped, Err(Error::InvalidEventType(why)) if why == "stop here"),
        "{stopped:?}"
    );
    assert_eq!(calls, 3, "nothing after the error");

    let absent = stream("replayed-absent");
    let replayed = store
        .replay(&absent, Version::new(1), 100, &mut |_| {
            panic!("an absent stream has no event")
        })
        .await
        .expect("replay");
    assert_eq!(replayed, 0);
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
    // One event and several: a store may write a batch by another statement than one event.
    for (wrong, batch) in [1, 3, 10].into_iter().flat_map(|w| [(w, 3..4), (w, 3..6)]) {
        let err = store
            .append(
                &s,
                ExpectedVersion::Exact(Version::new(wrong)),
                events(batch),
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

    // Events of one stream that landed by separate appends, with another stream's event between
    // them in the feed, sent again as one batch: they are in the stream, in order, at consecutive
    // versions, so it is a repeat of what landed, whatever the appends that wrote them.
    let apart = stream("idem-4");
    let (first, second) = (event(20), event(21));
    store
        .append(&apart, ExpectedVersion::NoStream, vec![first.clone()])
        .await
        .expect("first alone");
    store
        .append(&stream("idem-5"), ExpectedVersion::NoStream, events(30..31))
        .await
        .expect("between them");
    let later = store
        .append(
            &apart,
            ExpectedVersion::Exact(Version::new(1)),
            vec![second.clone()],
        )
        .await
        .expect("second alone");
    let together = store
        .append(&apart, ExpectedVersion::NoStream, vec![first, second])
        .await
        .expect("a repeat of what landed");
    assert!(together.duplicate);
    assert_eq!(
        (
            together.first_version,
            together.last_version,
            together.position
        ),
        (Version::new(1), Version::new(2), later.position)
    );
    let apart_read = store
        .read_stream(&apart, Version::new(1), 100)
        .await
        .expect("read");
    assert_eq!(numbers(&apart_read), [20, 21]);
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
    // One event id twice in one batch: refused as input at once (PostgreSQL's unique index
    // refused the batch, and the append then looked for the earlier append 100 times).
    let id = EventId::new();
    let repeated = vec![
        event(1).with_metadata(Metadata::new(id)),
        event(2),
        event(3).with_metadata(Metadata::new(id)),
    ];
    let err = store
        .append(&s, ExpectedVersion::Any, repeated)
        .await
        .expect_err("a repeated event id");
    assert!(
        matches!(err, Error::EventIdRepeated { event_id } if event_id == id)
            && err.kind() == crate::ErrorKind::InvalidInput,
        "{err:?}"
    );
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
    // Each payload under its limit, the whole append over the store's.
    let chunk = "z".repeat(DEFAULT_MAX_PAYLOAD_BYTES - 64);
    let count = DEFAULT_MAX_APPEND_BYTES / chunk.len() + 1;
    let whole = (0..count)
        .map(|n| NewEvent::new("Chunk", 1, json!({ "n": n, "data": chunk })))
        .collect();
    let err = store
        .append(&s, ExpectedVersion::Any, whole)
        .await
        .expect_err("an append over the store's limit");
    assert!(
        matches!(err, Error::AppendTooLarge { events, limit, .. }
            if events == count && limit == DEFAULT_MAX_APPEND_BYTES)
            && err.kind() == crate::ErrorKind::InvalidInput,
        "{err:?}"
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

/// Events in a large batch: above the size at which a store may write a batch by another path
/// (PostgreSQL copies new streams' batches of 64 events or more).
const LARGE: u64 = 100;

/// A large batch to a new stream keeps every promise a small one does: every field read back,
/// versions `1..=n` in feed order, the outcome's position the last event's; a stream that exists
/// refuses it whole; of racing creators exactly one wins; the same batch again is the first
/// outcome, and one of its event ids in another stream is refused.
pub async fn large_batches_to_new_streams_keep_every_promise<S: ConformanceStore>(store: S) {
    let s = stream("large-1");
    let metadata = Metadata::new(EventId::new())
        .with_correlation_id(Uuid::now_v7())
        .with_header("quote", "\"\\ ✓");
    let mut batch = events(1..LARGE + 1);
    batch[0] = NewEvent::new("Opened", 7, json!({ "n": 1, "text": "ünïcødé\n\t\"✓\"" }))
        .with_metadata(metadata.clone());
    let outcome = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("a large batch to a new stream");
    assert_eq!(
        (
            outcome.first_version,
            outcome.last_version,
            outcome.duplicate
        ),
        (Version::new(1), Version::new(LARGE), false)
    );
    let read = store
        .read_stream(&s, Version::new(1), 1000)
        .await
        .expect("read");
    assert_eq!(numbers(&read), (1..=LARGE).collect::<Vec<_>>());
    assert_eq!(
        (read[0].event_type.as_str(), read[0].schema_version),
        ("Opened", 7)
    );
    assert_eq!(read[0].payload, batch[0].payload);
    assert_eq!(read[0].metadata, metadata);
    for (sent, got) in batch.iter().zip(&read) {
        assert_eq!(got.metadata.event_id, sent.metadata.event_id);
        assert_eq!(got.version.get(), got.payload["n"].as_u64().expect("n"));
    }
    assert!(read.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(read[read.len() - 1].position, outcome.position);

    // The stream exists now: a batch expecting none is refused whole.
    let refused = store
        .append(&s, ExpectedVersion::NoStream, events(1..LARGE + 1))
        .await
        .expect_err("the stream exists");
    assert!(
        matches!(refused, Error::Conflict { actual, .. } if actual == Version::new(LARGE)),
        "{refused:?}"
    );

    // Racing creators of one stream: one wins, the others conflict, and only its events are in.
    let raced = stream("large-2");
    let mut tasks = Vec::new();
    for writer in 0..8u64 {
        let (store, raced) = (store.clone(), raced.clone());
        let batch: Vec<NewEvent> = (0..LARGE).map(|i| event(writer * 1000 + i)).collect();
        tasks.push(tokio::spawn(async move {
            (
                store.append(&raced, ExpectedVersion::NoStream, batch).await,
                writer,
            )
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (Ok(outcome), writer) => {
                assert_eq!(outcome.last_version, Version::new(LARGE));
                winners.push(writer);
            }
            (Err(Error::Conflict { actual, .. }), _) => assert_eq!(actual, Version::new(LARGE)),
            (Err(other), _) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let won = store
        .read_stream(&raced, Version::new(1), 1000)
        .await
        .expect("read");
    let expected: Vec<u64> = (0..LARGE).map(|i| winners[0] * 1000 + i).collect();
    assert_eq!(numbers(&won), expected);

    // The same batch again: the first outcome, nothing written.
    let again = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .expect("a repeat is not an error");
    assert!(again.duplicate);
    assert_eq!(
        (again.last_version, again.position),
        (outcome.last_version, outcome.position)
    );
    // One of its event ids in another new stream's large batch: refused, nothing written.
    let elsewhere = stream("large-3");
    let mut reused = events(1..LARGE + 1);
    let last = reused.len() - 1;
    reused[last] = batch[5].clone();
    let err = store
        .append(&elsewhere, ExpectedVersion::NoStream, reused)
        .await
        .expect_err("a reused event id");
    assert!(matches!(err, Error::EventIdReused { .. }), "{err:?}");
    assert!(store
        .read_stream(&elsewhere, Version::new(1), 10)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        store
            .read_stream(&s, Version::new(1), 1000)
            .await
            .expect("read")
            .len(),
        read.len()
    );
}
