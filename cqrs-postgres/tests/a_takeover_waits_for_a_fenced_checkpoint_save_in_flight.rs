//! No checkpoint save of an old lease epoch commits after a takeover: a fenced save locks the
//! lease row, so a new holder's acquire waits until the save in flight has committed (and then
//! reads the checkpoint it left). Without the lock, the takeover would commit first and the old
//! holder's save after it.

mod support;

use std::time::Duration;

use cqrs_core::projection::LeaseStore;
use cqrs_core::{CheckpointStore, FencedSave, Position};
use tokio::time::Instant;

const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_waits_for_a_fenced_checkpoint_save_in_flight() {
    let store = support::store().await;
    let schema = format!("\"{}\"", store.schema().as_str());
    // Long enough for the save below to be made while it holds, however slow the machine;
    // the test then waits for it to expire.
    let a = store
        .try_acquire("p", "a", Duration::from_secs(2))
        .await
        .expect("acquire")
        .expect("free");

    // a's save, made while its lease holds, in a transaction that has not committed yet (a
    // slow commit, a paused process).
    let mut slow = store.pool().begin().await.expect("begin");
    let fenced = include_str!("../src/sql/save_checkpoint_fenced.sql").replace("{schema}", &schema);
    let held: bool = sqlx::query_scalar(&fenced)
        .bind("p")
        .bind("1")
        .bind(7_i64)
        .bind(&a.owner)
        .bind(i64::try_from(a.epoch).expect("epoch"))
        .fetch_one(&mut *slow)
        .await
        .expect("fenced save");
    assert!(held);

    // The lease expires meanwhile; b takes it over.
    let expired = format!("SELECT expires_at <= now() FROM {schema}.leases WHERE name = 'p'");
    let deadline = Instant::now() + PATIENCE;
    while !sqlx::query_scalar::<_, bool>(&expired)
        .fetch_one(store.pool())
        .await
        .expect("expiry")
    {
        assert!(Instant::now() < deadline, "the lease expires");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let takeover = tokio::spawn({
        let store = store.clone();
        async move { store.try_acquire("p", "b", Duration::from_secs(30)).await }
    });

    // The takeover waits on the lease row for the save in flight.
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO {schema}.leases%'"
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let waiters: i64 = sqlx::query_scalar(&waiting)
            .fetch_one(store.pool())
            .await
            .expect("activity");
        if waiters > 0 {
            break;
        }
        assert!(
            !takeover.is_finished() && Instant::now() < deadline,
            "the takeover did not wait for the save in flight: {:?}",
            takeover.is_finished()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!takeover.is_finished());
    slow.commit().await.expect("commit");

    let b = takeover
        .await
        .expect("task")
        .expect("acquire")
        .expect("expired: b takes over");
    assert!(b.epoch > a.epoch);
    let saved = Position::from_parts(1, 7);
    assert_eq!(
        store.load_checkpoint("p").await.expect("load"),
        Some(saved),
        "b's term starts after a's save"
    );
    // From now on a is fenced off.
    assert_eq!(
        store
            .save_checkpoint_fenced("p", Position::from_parts(1, 9), &a)
            .await
            .expect("save"),
        FencedSave::LeaseLost
    );
    assert_eq!(store.load_checkpoint("p").await.expect("load"), Some(saved));
}
