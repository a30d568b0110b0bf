//! Group commit: concurrent appends share transactions, and every append still lands whole,
//! once, at its expected version, or fails with the same typed error it would get alone.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{
    AppendEvents, CommandId, Error, EventFilter, EventId, ExpectedVersion, Metadata, NewEvent,
    Position, ReadAll, ReadStream, StreamId, Version,
};
use cqrs_postgres::{GroupCommit, PgEventStore};
use serde_json::json;
use tokio::sync::Barrier;

async fn grouped_store(lanes: usize) -> PgEventStore {
    support::store_with(40).await.with_group_commit(
        GroupCommit::default()
            .alone_below(0)
            .alone_from_events(usize::MAX)
            .lanes(lanes),
    )
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream id")
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("Counted", 1, json!({ "n": n }))
}

/// Every event of the feed, from the start up to `last` (the position of the last append the
/// test made). Another test's open transaction can hold the cluster-wide horizon, so the feed
/// may show the appends late: it is read on, polling, until it passed `last` or 30 s are up.
async fn whole_feed(store: &PgEventStore, last: Position) -> Vec<(StreamId, u64, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut after = Position::START;
    let mut events = Vec::new();
    while after < last {
        let batch = store
            .read_all(after, 500, &EventFilter::all())
            .await
            .expect("feed read");
        if batch.events.is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after 30 s waiting for the feed to show the appends up to {last}: \
                 it stops at {after} after {} events (a transaction held the horizon?)",
                events.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for e in batch.events {
            let xid = e.position.parts().0.to_string();
            events.push((e.stream_id, e.version.get(), xid));
        }
        after = batch.next;
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_share_transactions_and_each_lands_whole() {
    const WRITERS: usize = 32;
    const APPENDS: u64 = 10;
    let store = grouped_store(1).await;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let id = stream(&format!("counter-{w}"));
                barrier.wait().await;
                let mut last = Position::START;
                for a in 0..APPENDS {
                    // Two events per append: a group must never split one.
                    let expected = ExpectedVersion::Exact(Version::new(a * 2));
                    let outcome = store
                        .append(&id, expected, vec![event(a * 2 + 1), event(a * 2 + 2)])
                        .await
                        .expect("append");
                    assert_eq!(outcome.first_version, Version::new(a * 2 + 1));
                    assert_eq!(outcome.last_version, Version::new(a * 2 + 2));
                    assert!(!outcome.duplicate);
                    last = outcome.position;
                }
                last
            })
        })
        .collect();
    let mut last = Position::START;
    for task in tasks {
        last = last.max(task.await.expect("writer"));
    }

    let feed = whole_feed(&store, last).await;
    assert_eq!(feed.len() as u64, WRITERS as u64 * APPENDS * 2);
    let mut next: HashMap<StreamId, u64> = HashMap::new();
    let mut by_transaction: HashMap<String, HashSet<StreamId>> = HashMap::new();
    for (id, version, xid) in feed {
        let expected = next.entry(id.clone()).or_insert(1);
        assert_eq!(version, *expected, "{id} out of order in the feed");
        *expected += 1;
        by_transaction.entry(xid).or_default().insert(id);
    }
    assert_eq!(next.len(), WRITERS);
    // 320 appends from 32 writers through one lane: while one group is written the others
    // queue, so far fewer transactions than appends.
    assert!(
        (by_transaction.len() as u64) < WRITERS as u64 * APPENDS / 2,
        "{} transactions for {} appends: nothing was grouped",
        by_transaction.len(),
        WRITERS as u64 * APPENDS
    );
    assert!(by_transaction.values().any(|streams| streams.len() > 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_and_early_writers_get_conflict_while_their_group_lands() {
    let store = grouped_store(1).await;
    let contested = stream("contested-1");
    store
        .append(&contested, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .expect("first append");
    for round in 0..10u64 {
        let barrier = Arc::new(Barrier::new(18));
        let mut tasks = Vec::new();
        for w in 0..16u64 {
            let (store, barrier) = (store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                let id = stream(&format!("fresh-{round}-{w}"));
                barrier.wait().await;
                store
                    .append(&id, ExpectedVersion::NoStream, vec![event(w)])
                    .await
            }));
        }
        let early = {
            let (store, contested, barrier) = (store.clone(), contested.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                // Writing versions past the stream's end would leave a gap.
                let expected = ExpectedVersion::Exact(Version::new(round + 5));
                store.append(&contested, expected, vec![event(98)]).await
            })
        };
        let stale = {
            let (store, contested) = (store.clone(), contested.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                // The stream is at version round + 1; this writer thinks it is at round.
                let expected = ExpectedVersion::Exact(Version::new(round));
                store.append(&contested, expected, vec![event(99)]).await
            })
        };
        for task in tasks {
            let outcome = task.await.expect("task").expect("fresh streams land");
            assert_eq!(outcome.last_version, Version::new(1));
        }
        match stale.await.expect("task") {
            Err(Error::Conflict {
                actual, expected, ..
            }) => {
                assert_eq!(actual, Version::new(round + 1));
                assert_eq!(expected, ExpectedVersion::Exact(Version::new(round)));
            }
            other => panic!("the stale writer must get Conflict, got {other:?}"),
        }
        match early.await.expect("task") {
            Err(Error::Conflict { actual, .. }) => assert_eq!(actual, Version::new(round + 1)),
            other => panic!("the early writer must get Conflict, got {other:?}"),
        }
        // Move the contested stream on, so the next round's stale writer is behind again.
        store
            .append(
                &contested,
                ExpectedVersion::Exact(Version::new(round + 1)),
                vec![event(round)],
            )
            .await
            .expect("catching up");
    }
    let events = store
        .read_stream(&contested, Version::new(1), 100)
        .await
        .expect("read");
    let versions: Vec<u64> = events.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, (1..=11).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_batch_returns_the_first_outcome() {
    let store = grouped_store(2).await;
    let id = stream("repeat-1");
    let batch: Vec<NewEvent> = (0..3)
        .map(|n| event(n).with_metadata(Metadata::new(EventId::new())))
        .collect();
    let barrier = Arc::new(Barrier::new(4));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, id, batch, barrier) =
                (store.clone(), id.clone(), batch.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.append(&id, ExpectedVersion::NoStream, batch).await
            })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        let outcome = task.await.expect("task").expect("same batch, same outcome");
        assert_eq!(
            (outcome.first_version, outcome.last_version),
            (Version::new(1), Version::new(3))
        );
        fresh += usize::from(!outcome.duplicate);
    }
    assert_eq!(fresh, 1, "exactly one append wrote the batch");
    let events = store
        .read_stream(&id, Version::new(1), 100)
        .await
        .expect("read");
    assert_eq!(events.len(), 3);
}

/// Writers with command ids append on their own, so they race the groups for the same
/// versions: a group whose statement loses is refused whole, and each of its appends is
/// retried alone. Bystanders in such a group must still land.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grouped_and_lone_writers_racing_get_one_winner_per_version() {
    let store = grouped_store(1).await;
    let contested = stream("contested-2");
    for round in 0..20u64 {
        let barrier = Arc::new(Barrier::new(24));
        let mut racers = Vec::new();
        for w in 0..16u64 {
            let (store, contested, barrier) = (store.clone(), contested.clone(), barrier.clone());
            racers.push(tokio::spawn(async move {
                let mut event = event(w);
                if w % 2 == 0 {
                    let metadata = Metadata::new(EventId::new()).with_command_id(CommandId::new());
                    event = event.with_metadata(metadata);
                }
                let expected = ExpectedVersion::Exact(Version::new(round));
                barrier.wait().await;
                store.append(&contested, expected, vec![event]).await
            }));
        }
        let mut bystanders = Vec::new();
        for w in 0..8u64 {
            let (store, barrier) = (store.clone(), barrier.clone());
            bystanders.push(tokio::spawn(async move {
                let id = stream(&format!("bystander-{w}"));
                let expected = ExpectedVersion::Exact(Version::new(round));
                barrier.wait().await;
                store.append(&id, expected, vec![event(round)]).await
            }));
        }
        let mut winners = 0;
        for racer in racers {
            match racer.await.expect("task") {
                Ok(outcome) => {
                    winners += 1;
                    assert_eq!(outcome.last_version, Version::new(round + 1));
                }
                Err(Error::Conflict { actual, .. }) => {
                    assert_eq!(actual, Version::new(round + 1));
                }
                Err(other) => panic!("a loser must get Conflict, got {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
        for bystander in bystanders {
            let outcome = bystander.await.expect("task").expect("bystanders land");
            assert_eq!(outcome.last_version, Version::new(round + 1));
        }
    }
    let versions: Vec<u64> = store
        .read_stream(&contested, Version::new(1), 100)
        .await
        .expect("read")
        .iter()
        .map(|e| e.version.get())
        .collect();
    assert_eq!(versions, (1..=20).collect::<Vec<_>>());
}
