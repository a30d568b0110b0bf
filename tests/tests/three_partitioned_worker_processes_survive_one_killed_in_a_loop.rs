//! Three partitioned worker processes (`partitioned_worker_child`) share 8 partitions by
//! stream through PostgreSQL, writing the fenced read model (per stream the last version,
//! in a transaction fenced by the partition's lease). While a writer appends, one worker at a
//! time is killed (SIGKILL) and a new one started in its place. At the end the read model is
//! the fold of the store (nothing lost), no event was ever applied past a gap in its stream
//! (order kept), and every kill's partitions were led again by the survivors within the
//! bound stated below. Duplicates (an event applied again after a crash, which the read model
//! ignores by version) are counted and printed.
//!
//! `SOAK_SECS` runs the kill loop for that long instead of four rounds.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::projection::{PartitionReport, Partitions};
use cqrs_core::{AppendEvents, EventFilter, ExpectedVersion, NewEvent, StreamId};
use cqrs_postgres::PgEventStore;
use integration_tests::*;

const TTL: Duration = Duration::from_secs(2);
const STREAMS: usize = 40;
const KILLS: usize = 4;

/// A kill's partitions are led again within about one lease time (the dead worker's leases
/// expire) plus a membership look (TTL / 3) plus a standby's poll (TTL / 3). Asserted with
/// generous slack for a busy CI machine.
fn bound() -> Duration {
    TTL * 3 + Duration::from_secs(5)
}

/// A worker process, killed when dropped (the test failing included).
struct Worker {
    id: String,
    child: Child,
}

impl Worker {
    fn start(schema: &str, id: String) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_partitioned_worker_child"))
            .env("DATABASE_URL", database_url())
            .env("WORKER_SCHEMA", schema)
            .env("WORKER_ID", &id)
            .env("WORKER_TTL_MS", TTL.as_millis().to_string())
            .spawn()
            .expect("start a worker process");
        Self { id, child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn holders(store: &PgEventStore) -> Vec<PartitionReport> {
    Partitions::by_stream(8)
        .report(store, "fenced", &EventFilter::all(), 0)
        .await
        .expect("partition report")
}

/// Who holds each partition now (`None`: nobody).
async fn owners(store: &PgEventStore) -> Vec<Option<String>> {
    holders(store)
        .await
        .into_iter()
        .map(|p| p.lease.map(|l| l.worker().to_owned()))
        .collect()
}

/// Waits until every partition is held by one of `live`, each of them holding some: the
/// spread then.
async fn wait_spread(
    store: &PgEventStore,
    live: &[String],
    within: Duration,
) -> BTreeMap<String, usize> {
    let started = Instant::now();
    loop {
        let owners = owners(store).await;
        let mut spread: BTreeMap<String, usize> = live.iter().map(|w| (w.clone(), 0)).collect();
        let mut all_live = true;
        for owner in &owners {
            match owner.as_ref().and_then(|o| spread.get_mut(o)) {
                Some(n) => *n += 1,
                None => all_live = false,
            }
        }
        if all_live && spread.values().all(|n| (2..=3).contains(n)) {
            return spread;
        }
        assert!(
            started.elapsed() < within,
            "the partitions were not spread over {live:?} within {within:?}: {owners:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_partitioned_worker_processes_survive_one_killed_in_a_loop() {
    let started = Instant::now();
    let soak = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let store = pg_store().await;
    let schema = store.schema().as_str().to_owned();
    let model = FencedVersions::new(&store, "fenced");
    model.create().await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            let mut i = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let stream = StreamId::new(format!("order-{}", i % STREAMS)).expect("stream id");
                let events = (0..1 + i % 3)
                    .map(|n| NewEvent::new("Changed", 1, serde_json::json!({ "i": i, "n": n })))
                    .collect();
                store
                    .append(&stream, ExpectedVersion::Any, events)
                    .await
                    .expect("append");
                i += 1;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            i
        }
    });

    let mut workers: Vec<Worker> = ["a", "b", "c"]
        .iter()
        .map(|w| Worker::start(&schema, format!("{w}-0")))
        .collect();
    let ids = |workers: &[Worker]| workers.iter().map(|w| w.id.clone()).collect::<Vec<_>>();
    let spread = wait_spread(&store, &ids(&workers), Duration::from_secs(30)).await;
    println!("three workers lead {spread:?}");

    let mut rebalances = Vec::new();
    let mut round = 0usize;
    loop {
        let more = match soak {
            Some(soak) => started.elapsed() < soak,
            None => round < KILLS,
        };
        if !more {
            break;
        }
        let victim = round % workers.len();
        round += 1;
        let dead = workers[victim].id.clone();
        let theirs: BTreeSet<usize> = owners(&store)
            .await
            .iter()
            .enumerate()
            .filter(|(_, o)| o.as_deref() == Some(dead.as_str()))
            .map(|(i, _)| i)
            .collect();
        workers[victim].kill();
        let killed = Instant::now();
        // The survivors lead the dead worker's partitions again.
        loop {
            let owners = owners(&store).await;
            let resumed = theirs
                .iter()
                .all(|i| owners[*i].as_ref().is_some_and(|o| o != &dead));
            if resumed {
                break;
            }
            assert!(
                killed.elapsed() < bound(),
                "round {round}: {dead}'s partitions {theirs:?} were not taken over within {:?}: {owners:?}",
                bound()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let took = killed.elapsed();
        println!("round {round}: killed {dead} (held {theirs:?}); taken over after {took:?}");
        rebalances.push(took);
        // A new worker in its place; the three spread again.
        let name = dead.split('-').next().unwrap_or("w").to_owned();
        workers[victim] = Worker::start(&schema, format!("{name}-{round}"));
        wait_spread(&store, &ids(&workers), Duration::from_secs(30)).await;
        for worker in &mut workers {
            assert!(worker.running(), "worker {} ended on its own", worker.id);
        }
    }

    stop.store(true, Ordering::SeqCst);
    let appends = writer.await.expect("writer");
    let expected = last_versions(&store).await;
    let state = eventually(
        PATIENCE * 2,
        "the read model equals the fold of the store",
        || async {
            let state = model.state().await;
            (state.versions == expected).then_some(state)
        },
    )
    .await;
    let events: u64 = expected.values().sum();
    let max = rebalances.iter().max().copied().unwrap_or_default();
    println!(
        "{appends} appends, {events} events over {} streams; {} kills, takeover max {max:?} \
         (bound {:?}); {} duplicates seen, {} out of order, {} refused; {:?} in all",
        expected.len(),
        rebalances.len(),
        bound(),
        state.duplicates,
        state.out_of_order,
        state.refused,
        started.elapsed()
    );
    assert_eq!(
        state.out_of_order, 0,
        "an event was applied past a gap in its stream"
    );
    drop(workers);
    drop_schema(&store).await;
}
