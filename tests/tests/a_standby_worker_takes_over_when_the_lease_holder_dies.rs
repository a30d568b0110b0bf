//! Two workers on one projection, sharing it through PostgreSQL leases: exactly one is active
//! while the other stands by (busy or idle); when the active one dies without releasing its
//! lease, the standby takes over once the lease expires, and the read model ends complete and
//! correct.
//!
//! The leases run on the database's clock, which a test cannot pause: the lease lasts long
//! enough (renewed every third of it) that a busy machine cannot make the holder miss a
//! renewal, and every wait polls with a deadline that names what it waited for.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::projection::{
    ProjectionHandle, ProjectionRunner, ProjectionState, ProjectionStatus,
};
use integration_tests::*;
use tokio::time::Instant;

/// Generous: the holder renews every 1.3 s and gives up leading only 3.6 s after a renewal
/// was asked, so a 1 s stall of the machine (a JVM and PostgreSQL beside) costs it nothing.
const TTL: Duration = Duration::from_secs(4);

fn active(status: &ProjectionStatus) -> bool {
    !matches!(
        status.state,
        ProjectionState::Standby | ProjectionState::Stopped | ProjectionState::Failed
    )
}

/// Samples both workers for `period`: never both active, `leader` active, `standby` idle.
async fn one_leader_for(period: Duration, leader: &ProjectionHandle, standby: &ProjectionHandle) {
    let end = Instant::now() + period;
    while Instant::now() < end {
        let (l, s) = (leader.status(), standby.status());
        assert!(
            active(&l) && s.state == ProjectionState::Standby,
            "exactly one worker is active:\nleader {l:?}\nstandby {s:?}"
        );
        assert_eq!(s.applied, 0, "the standby applied nothing");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_worker_takes_over_when_the_lease_holder_dies() {
    let store = pg_store().await;
    let client = es_client();
    let read_model = summaries_read_model(&client, "lease").await;
    let (summaries, index) = (read_model.projection(), read_model.index());
    let shop = Arc::new(Shop::new(&store));
    shop.register_customers().await;
    let worker = |owner: &str| {
        // Every role in PostgreSQL: feed, checkpoint, lease, dead letters, `LISTEN`.
        ProjectionRunner::for_store(read_model.projector(), &store)
            .with_options(quick_options().owner(owner).lease_ttl(TTL))
            .spawn()
    };

    let first = worker("worker-a");
    wait_for_status(&first, PATIENCE, "worker-a to lead", |s| {
        s.state == ProjectionState::Running
    })
    .await;
    let second = worker("worker-b");
    wait_for_status(&second, PATIENCE, "worker-b to stand by", |s| {
        s.state == ProjectionState::Standby
    })
    .await;
    assert_eq!(
        lease_holder(&store, &summaries.name).await.as_deref(),
        Some("worker-a")
    );

    // Busy: orders keep coming; only worker-a applies them.
    let load = Load::start(&shop, "busy", 2, 11, Duration::from_millis(3));
    one_leader_for(Duration::from_millis(1500), &first, &second).await;
    load.stop().await;
    wait_caught_up(&first, &store).await;
    // Idle for longer than the lease lasts: the leader keeps it.
    one_leader_for(TTL + TTL / 2, &first, &second).await;
    assert_eq!(
        lease_holder(&store, &summaries.name).await.as_deref(),
        Some("worker-a")
    );
    let applied_by_a = first.status().applied;
    assert!(applied_by_a > 0);

    // worker-a dies mid-stream, lease held; the writers go on.
    let load = Load::start(&shop, "takeover", 2, 12, Duration::from_millis(3));
    wait_for_status(&first, PATIENCE, "worker-a to apply more", |s| {
        s.applied > applied_by_a
    })
    .await;
    first.abort();
    let took_over = wait_for_status(
        &second,
        TTL * 10,
        "worker-b to take over after the lease expired",
        |s| s.applied > 0,
    )
    .await;
    assert!(active(&took_over), "{took_over:?}");
    eventually(PATIENCE, "the lease to name worker-b", || {
        let store = store.clone();
        let name = summaries.name.clone();
        async move { (lease_holder(&store, &name).await.as_deref() == Some("worker-b")).then_some(()) }
    })
    .await;
    let orders = load.stop().await;
    assert!(orders > 0);

    let status = wait_caught_up(&second, &store).await;
    assert!(status.is_ready(), "{status:?}");
    second.shutdown().await;
    assert_eq!(
        lease_holder(&store, &summaries.name).await,
        None,
        "a graceful shutdown releases the lease"
    );
    assert_read_model_is_the_fold(&client, &summaries.name, &store).await;

    delete_indices(&client, index, 1).await;
    drop_schema(&store).await;
}
