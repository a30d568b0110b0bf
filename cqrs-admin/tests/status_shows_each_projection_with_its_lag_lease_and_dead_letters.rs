//! `cqrs status` lists every reader the store knows of with its checkpoint, lag (events and
//! time), lease and dead letters, as an aligned table or one JSON document of the data type.

mod support;

use std::time::Duration;

use cqrs_admin::inspect::{LeaderState, Overview, SubscriberKind};
use cqrs_core::projection::LeaseStore;
use cqrs_core::CheckpointStore;
use cqrs_postgres::testing::fresh_store;
use support::{append, cqrs};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_checkpoint_lag_lease_and_kind_per_reader() {
    let store = fresh_store().await.expect("a fresh schema");
    let correlation = Uuid::new_v4();
    let first = append(&store, "order-1", "OrderPlaced", correlation).await;
    append(&store, "order-1", "OrderPaid", correlation).await;
    append(&store, "order-2", "OrderPlaced", correlation).await;
    store.save_checkpoint("orders", first).await.expect("saved");
    store
        .try_acquire("orders", "worker-a", Duration::from_secs(60))
        .await
        .expect("the lease store answers")
        .expect("the lease is free");
    store
        .save_checkpoint("process:order_saga", first)
        .await
        .expect("saved");

    let run = cqrs(&store, &["status", "--json"]).await;
    let overview: Overview = run.json();
    let orders = overview.subscriber("orders").expect("orders is listed");
    assert_eq!(orders.kind, SubscriberKind::Projection);
    assert_eq!(orders.checkpoint, Some(first));
    assert_eq!(orders.lag_events, 2, "two events past the checkpoint");
    assert!(orders.oldest_unapplied_at.is_some());
    assert!(orders.lag_seconds >= 0.0);
    let lease = orders.lease.as_ref().expect("the lease is shown");
    assert_eq!(
        (lease.owner.as_str(), lease.epoch, lease.live),
        ("worker-a", 1, true)
    );
    assert_eq!(orders.leader, LeaderState::Leading);
    assert_eq!(orders.dead_letters, 0);
    let saga = overview
        .subscriber("process:order_saga")
        .expect("the process manager is listed");
    assert_eq!(saga.kind, SubscriberKind::Process);
    assert!(saga.lease.is_none());
    assert_eq!(saga.leader, LeaderState::Unleased);
    assert_eq!(overview.subscribers.len(), 2);

    let run = cqrs(&store, &["status"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let header = lines[0];
    assert!(header.starts_with("NAME"), "{}", run.stdout);
    let row = lines
        .iter()
        .find(|l| l.starts_with("orders "))
        .expect("a row for orders");
    // Aligned: each value starts under its header.
    let lag_column = header.find("LAG ").expect("a LAG column");
    assert_eq!(&row[lag_column..lag_column + 2], "2 ", "{}", run.stdout);
    let state_column = header.find("STATE").expect("a STATE column");
    assert!(
        row[state_column..].starts_with("leading "),
        "{}",
        run.stdout
    );
    let lease_column = header.find("LEASE").expect("a LEASE column");
    assert!(
        row[lease_column..].starts_with("worker-a"),
        "{}",
        run.stdout
    );
    assert!(
        lines.last().expect("a last line").starts_with("head "),
        "{}",
        run.stdout
    );
    println!("{}", run.stdout);
}
