//! Snapshots and checkpoints: the newest snapshot wins, checkpoints only move forward.

use std::time::Duration;

use serde_json::json;

use crate::{ExpectedVersion, FencedSave, Position, Snapshot, SnapshotReplay, StreamId, Version};

use super::{events, stream, ConformanceStore};

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

/// A snapshot whose state could not be read back once stored (a NUL in a string or a key, or
/// nesting past what a reader decodes) is refused with a typed error before anything is
/// saved, and the stream's snapshot stays what it was: such a snapshot would fail every later
/// load of the stream.
pub async fn a_snapshot_no_reader_could_decode_is_refused_and_the_older_one_stays<
    S: ConformanceStore,
>(
    store: S,
) {
    let s = stream("snap-unreadable");
    let v2 = Snapshot::new(s.clone(), Version::new(2), 1, json!({ "total": 2 }));
    store.save_snapshot(v2.clone()).await.expect("save");
    let mut deep = json!(0);
    for _ in 0..crate::backend::MAX_PAYLOAD_DEPTH + 1 {
        deep = json!([deep]);
    }
    let unreadable = [
        json!({ "name": "a\u{0}b" }),
        json!({ "a\u{0}b": 1 }),
        json!({ "tree": deep }),
    ];
    for state in unreadable {
        let refused = store
            .save_snapshot(Snapshot::new(s.clone(), Version::new(7), 1, state))
            .await
            .expect_err("a snapshot no load could read back is refused");
        assert!(
            matches!(refused, crate::Error::SnapshotUnreadable { .. })
                && refused.kind() == crate::ErrorKind::InvalidInput,
            "{refused:?}"
        );
        assert_eq!(
            store
                .load_snapshot(&s)
                .await
                .expect("the stream's snapshot still loads"),
            Some(v2.clone())
        );
    }
    let mut readable = json!(0);
    for _ in 0..crate::backend::MAX_PAYLOAD_DEPTH - 1 {
        readable = json!([readable]);
    }
    let v9 = Snapshot::new(s.clone(), Version::new(9), 1, json!({ "tree": readable }));
    store
        .save_snapshot(v9.clone())
        .await
        .expect("as deep as a reader decodes");
    assert_eq!(store.load_snapshot(&s).await.expect("load"), Some(v9));
}

/// A store that reads a snapshot and the events after it together hands over the snapshot
/// first, then only the events after its version, at most `limit` of them; without a snapshot,
/// the events from the first. A store that reads them apart says so with `None`.
pub async fn a_snapshot_and_the_events_after_it_are_read_together<S: ConformanceStore>(store: S) {
    let s = stream("snap-tail");
    store
        .append(&s, ExpectedVersion::NoStream, events(1..9))
        .await
        .expect("append");
    let Some(whole) = replayed(&store, &s, 100).await else {
        return;
    };
    assert_eq!(whole, (None, (1..9).collect()), "no snapshot: every event");
    let v5 = Snapshot::new(s.clone(), Version::new(5), 1, json!({ "total": 15 }));
    store.save_snapshot(v5.clone()).await.expect("save");
    assert_eq!(
        replayed(&store, &s, 100).await,
        Some((Some(v5.clone()), vec![6, 7, 8])),
        "the snapshot, then the events after it"
    );
    assert_eq!(
        replayed(&store, &s, 2).await,
        Some((Some(v5), vec![6, 7])),
        "at most the limit of events"
    );
    assert_eq!(
        replayed(&store, &stream("snap-absent"), 10).await,
        Some((None, Vec::new())),
        "an absent stream has neither"
    );
}

/// What [`SnapshotStore::replay_from_snapshot`](crate::SnapshotStore::replay_from_snapshot)
/// handed over: the snapshot and the events' versions, checking the snapshot came first.
async fn replayed<S: ConformanceStore>(
    store: &S,
    s: &StreamId,
    limit: usize,
) -> Option<(Option<Snapshot>, Vec<u64>)> {
    let mut snapshot = None;
    let mut versions = Vec::new();
    let mut each = |item: SnapshotReplay<'_>| {
        match item {
            SnapshotReplay::Snapshot(taken) => {
                assert!(
                    snapshot.is_none() && versions.is_empty(),
                    "the snapshot comes first, once"
                );
                snapshot = Some(taken);
            }
            SnapshotReplay::Event(event) => versions.push(event.version.get()),
        }
        Ok(())
    };
    let read = store
        .replay_from_snapshot(s, limit, &mut each)
        .await
        .expect("read")?;
    assert_eq!(read, versions.len(), "the count of events handed over");
    Some((snapshot, versions))
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
