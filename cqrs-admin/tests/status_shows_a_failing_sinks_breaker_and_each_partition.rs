//! `cqrs status` shows what a runner in another process knows: the breaker of a projection
//! whose sink keeps failing (open, with the error that opened it, then closed once the sink is
//! back), and each partition and worker of a partitioned projection with its holder.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_admin::inspect::{LeaderState, Overview, SubscriberKind};
use cqrs_core::projection::{
    PartitionedRunner, Partitions, Projection, ProjectionError, ProjectionRunner, RunnerOptions,
};
use cqrs_core::RecordedEvent;
use cqrs_postgres::testing::fresh_store;
use cqrs_postgres::PgEventStore;
use support::{append, cqrs, eventually, visible};
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(30);

/// A sink that fails transiently while `down` holds.
#[derive(Clone)]
struct Flaky {
    name: &'static str,
    down: Arc<AtomicBool>,
}

#[async_trait]
impl Projection for Flaky {
    fn name(&self) -> &str {
        self.name
    }

    async fn apply(&self, _events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ProjectionError::Transient(
                "search node answered 503 <overloaded>".into(),
            ));
        }
        Ok(())
    }
}

fn options() -> RunnerOptions {
    RunnerOptions::new()
        .owner("worker-a")
        .poll_interval(Duration::from_millis(20))
        .lease_ttl(Duration::from_secs(5))
        .breaker(2, Duration::from_millis(200))
}

async fn status(store: &PgEventStore) -> Overview {
    let run = cqrs(store, &["status", "--json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    run.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_breaker_a_runner_in_another_process_recorded() {
    let store = fresh_store().await.expect("a fresh schema");
    let sink = Flaky {
        name: "search",
        down: Arc::new(AtomicBool::new(true)),
    };
    let last = append(&store, "order-1", "OrderPlaced", Uuid::new_v4()).await;
    visible(&store, last).await;
    let runner = ProjectionRunner::for_store(sink.clone(), &*store)
        .with_options(options())
        .spawn();

    eventually("the breaker shows open", PATIENCE, || async {
        let overview = status(&store).await;
        overview
            .subscriber("search")
            .and_then(|s| s.breaker.as_ref())
            .is_some_and(|b| b.is_tripped())
    })
    .await;
    let overview = status(&store).await;
    let search = overview.subscriber("search").expect("listed");
    let breaker = search.breaker.as_ref().expect("a breaker");
    assert_eq!(
        breaker.last_error.as_deref(),
        Some("search node answered 503 <overloaded>"),
        "{breaker:?}"
    );
    assert_eq!(search.leader, LeaderState::Leading);
    assert_eq!(search.lag_events, 1, "the event is not applied");

    let table = cqrs(&store, &["status"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    let column = lines[0].find("BREAKER").expect("a BREAKER column");
    let row = lines
        .iter()
        .find(|l| l.starts_with("search "))
        .expect("a row for search");
    assert!(
        row[column..].starts_with("open") || row[column..].starts_with("half-open"),
        "{}",
        table.stdout
    );
    assert!(
        lines.iter().any(|l| l.starts_with("breaker ")
            && l.contains(" on search since ")
            && l.ends_with(": search node answered 503 <overloaded>")),
        "{}",
        table.stdout
    );
    println!("{}", table.stdout);

    sink.down.store(false, Ordering::SeqCst);
    runner.wait_for(last, PATIENCE).await.expect("caught up");
    eventually("the breaker shows closed", PATIENCE, || async {
        let overview = status(&store).await;
        overview
            .subscriber("search")
            .and_then(|s| s.breaker.as_ref())
            .is_some_and(|b| b.state == "closed" && b.last_error.is_none())
    })
    .await;
    runner.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_lists_each_partition_with_its_holder_and_each_worker() {
    let store = fresh_store().await.expect("a fresh schema");
    let sink = Flaky {
        name: "counts",
        down: Arc::new(AtomicBool::new(false)),
    };
    let mut last = append(&store, "order-1", "OrderPlaced", Uuid::new_v4()).await;
    for i in 2..6 {
        last = append(&store, &format!("order-{i}"), "OrderPlaced", Uuid::new_v4()).await;
    }
    visible(&store, last).await;
    let worker = PartitionedRunner::for_store(sink, Partitions::by_stream(2), &*store)
        .with_options(options())
        .spawn();

    eventually("both partitions caught up", PATIENCE, || async {
        let overview = status(&store).await;
        let caught_up = overview
            .subscribers
            .iter()
            .filter(|s| s.kind == SubscriberKind::Partition)
            .filter(|s| s.lag_events == 0 || s.checkpoint.is_some_and(|c| c >= last))
            .count();
        caught_up == 2
    })
    .await;
    let overview = status(&store).await;
    for index in 0..2 {
        let name = format!("counts/partitions/2/{index}");
        let partition = overview.subscriber(&name).expect("each partition listed");
        assert_eq!(partition.kind, SubscriberKind::Partition);
        assert_eq!(partition.leader, LeaderState::Leading, "{partition:?}");
        let lease = partition.lease.as_ref().expect("a lease");
        assert!(lease.owner.starts_with("worker-a~"), "{lease:?}");
    }
    let member = overview
        .subscriber("counts/members/worker-a")
        .expect("the worker is listed");
    assert_eq!(member.kind, SubscriberKind::Worker);
    assert_eq!(member.leader, LeaderState::Leading);
    worker.shutdown().await;
}
