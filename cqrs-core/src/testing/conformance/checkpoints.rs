//! Snapshots and checkpoints: the newest snapshot wins, checkpoints only move forward.

use std::time::Duration;

use serde_json::json;

use crate::{FencedSave, Position, Snapshot, Version};

use super::{stream, ConformanceStore};

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
