//! A PostgreSQL read model written through the lease fence (`PgEventStore::lease_holds` in the
//! sink's own transaction): a worker paused past its lease cannot write once a successor took
//! over (its write is refused, and the refusal ends its term), and a takeover waits for a
//! fenced write already in flight, so the successor starts after it. Two partitioned workers
//! fill the read model exactly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::projection::{
    LeaseStore, PartitionedRunner, Partitions, Projection, ProjectionError,
};
use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId};
use cqrs_postgres::PgEventStore;
use integration_tests::*;
use tokio::time::Instant;

async fn append(store: &PgEventStore, stream: &str, n: usize) {
    let stream = StreamId::new(stream).expect("a stream id");
    let events = (0..n)
        .map(|i| NewEvent::new("Changed", 1, serde_json::json!({ "i": i })))
        .collect();
    store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .expect("append");
}

async fn wait_expired(store: &PgEventStore, name: &str) {
    let schema = store.schema().as_str();
    let expired =
        format!("SELECT expires_at <= now() FROM \"{schema}\".leases WHERE name = '{name}'");
    let deadline = Instant::now() + PATIENCE;
    while !sqlx::query_scalar::<_, bool>(&expired)
        .fetch_one(store.pool())
        .await
        .expect("expiry")
    {
        assert!(Instant::now() < deadline, "the lease expires");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_workers_late_write_through_the_fence_is_refused_after_a_takeover() {
    let store = pg_store().await;
    let model = FencedVersions::new(&store, "fenced");
    model.create().await;
    append(&store, "order-1", 3).await;
    // The feed shows a commit once every older transaction ended (other tests' included).
    let events = eventually(PATIENCE, "the three events in the feed", || async {
        let events = all_events(&store).await;
        (events.len() == 3).then_some(events)
    })
    .await;

    // Long enough for a's write below to land while it holds, however slow the machine; the
    // test then waits for it to expire.
    let a = store
        .try_acquire("fenced", "a", Duration::from_secs(3))
        .await
        .expect("acquire")
        .expect("free");
    model
        .apply_fenced(&events[..1], Some(&a))
        .await
        .expect("a writes while its lease holds");

    // a pauses past its lease; b takes over and writes on.
    wait_expired(&store, "fenced").await;
    let b = store
        .try_acquire("fenced", "b", Duration::from_secs(30))
        .await
        .expect("acquire")
        .expect("expired: b takes over");
    assert!(b.epoch > a.epoch);
    model
        .apply_fenced(&events[1..2], Some(&b))
        .await
        .expect("b writes");

    // a wakes up and writes what it had in hand: refused, nothing written.
    let late = model.apply_fenced(&events[..3], Some(&a)).await;
    assert!(
        matches!(late, Err(ProjectionError::LeaseLost(_))),
        "a's late write was not refused: {late:?}"
    );
    let state = model.state().await;
    println!("after a's late write: {state:?}");
    assert_eq!(
        state.versions["order-1"], 2,
        "a's late write changed the read model"
    );
    assert_eq!(state.refused, 1);
    assert_eq!((state.duplicates, state.out_of_order), (0, 0));
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_waits_for_a_sink_write_fenced_by_the_old_lease() {
    let store = pg_store().await;
    // Long enough for the check below to be made while it holds (then waited out).
    let a = store
        .try_acquire("fenced", "a", Duration::from_secs(2))
        .await
        .expect("acquire")
        .expect("free");
    // a checked its lease in its transaction, and is slow to commit.
    let mut slow = store.pool().begin().await.expect("begin");
    assert!(store.lease_holds(&mut slow, &a).await.expect("check"));
    wait_expired(&store, "fenced").await;
    let takeover = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .try_acquire("fenced", "b", Duration::from_secs(30))
                .await
        }
    });
    let schema = store.schema().as_str();
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO \"{schema}\".leases%'"
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
            "the takeover did not wait for the fenced write in flight"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!takeover.is_finished());
    slow.commit().await.expect("commit");
    let b = takeover
        .await
        .expect("task")
        .expect("acquire")
        .expect("b takes over after a's write");
    assert!(b.epoch > a.epoch);
    let mut late = store.pool().begin().await.expect("begin");
    assert!(!store.lease_holds(&mut late, &a).await.expect("check"));
    late.rollback().await.expect("rollback");
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_partitioned_workers_on_postgres_fill_the_fenced_read_model_exactly() {
    let store = pg_store().await;
    let model = FencedVersions::new(&store, "fenced");
    model.create().await;
    let options = |id: &str| {
        quick_options()
            .owner(id)
            .lease_ttl(Duration::from_secs(3))
            .batch_size(50)
    };
    let workers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|id| {
            PartitionedRunner::for_store(model.clone(), Partitions::by_stream(4), &store)
                .with_options(options(id))
                .spawn()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                append(&store, &format!("order-{}", i % 30), 1 + i % 3).await;
                i += 1;
            }
        }
    });
    let split = eventually(PATIENCE, "the workers split 4 partitions 2/2", || async {
        let leads: Vec<usize> = workers.iter().map(|w| w.status().leading().len()).collect();
        (leads == [2, 2]).then_some(leads)
    })
    .await;
    println!("split {split:?}");
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    let expected = last_versions(&store).await;
    let state = eventually(PATIENCE, "the read model equals the fold", || async {
        let state = model.state().await;
        (state.versions == expected).then_some(state)
    })
    .await;
    println!(
        "{} streams, {} duplicates, {} out of order, {} refused",
        state.versions.len(),
        state.duplicates,
        state.out_of_order,
        state.refused
    );
    assert_eq!(state.out_of_order, 0);
    assert_eq!(state.duplicates, 0);
    for worker in workers {
        worker.shutdown().await;
    }
    drop_schema(&store).await;
}
