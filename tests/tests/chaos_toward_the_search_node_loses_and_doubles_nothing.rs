//! Chaos toward the search node: a Toxiproxy proxy of each test's own between the framework
//! and the shared search node, while writers append to PostgreSQL and an `EsProjector` (run by
//! the projection runner) keeps one document per stream counting its events. Latency and a
//! bandwidth limit during a projection and a rebuild; connections reset, silenced or cut
//! mid-bulk during a projection (it retries behind its breaker, which opens and closes); a
//! rebuild under resets either completes or fails with a typed error while the live alias goes
//! on serving the old index. In every case the index ends equal to a fold of the store: no
//! event lost, none applied twice (a document's count would exceed its stream's version).
//!
//! Each scenario prints what it did and asserts the faults really happened.
//! `CHAOS_SOAK_SECS=300` holds the faults for five minutes instead of a few seconds.

use std::time::Duration;

use cqrs_core::projection::BreakerState;
use cqrs_core::ReadAll;
use cqrs_elastic::{EsIndex, EsReadModel, Query, RebuildOptions};
use cqrs_postgres::PgEventStore;
use elasticsearch::indices::IndicesExistsParts;
use elasticsearch::Elasticsearch;
use integration_tests::chaos::{
    assert_counts_are_the_fold, fault_time, through_port, upstream_of, RunnerWatch, ScenarioLog,
    StreamCounts, Writers,
};
use integration_tests::toxiproxy::{Direction, Proxy, Toxic, Toxiproxy};
use integration_tests::*;
use tokio::time::Instant;

/// A read model of stream counts reached through a proxy of the test's own; the proxy, and a
/// direct client to check what the node really holds.
struct Scene {
    proxy: Proxy,
    direct: Elasticsearch,
    read_model: EsReadModel<StreamCounts>,
    store: PgEventStore,
}

impl Scene {
    async fn new(name: &str) -> Self {
        let url = elasticsearch_url();
        let proxy = Toxiproxy::from_env()
            .create_proxy(&unique_name(name), &upstream_of(&url))
            .expect("create a proxy toward the search node");
        let proxied = client_for(&through_port(&url, proxy.port()));
        let counts = StreamCounts {
            name: unique_name(name),
        };
        let read_model = EsReadModel::new(proxied, counts).expect("a valid read model");
        read_model
            .ensure()
            .await
            .expect("create the read model's index");
        Self {
            proxy,
            direct: es_client(),
            read_model,
            store: pg_store().await,
        }
    }

    fn index(&self) -> EsIndex {
        EsIndex::for_projection(self.direct.clone(), self.read_model.projection())
            .expect("the read model's index")
    }

    /// Where the alias points now, read directly.
    async fn serving(&self) -> u32 {
        self.index()
            .current()
            .await
            .expect("read the alias")
            .expect("an alias")
            .version
    }

    /// Checks the index against a fold of the store, then deletes it and the schema.
    async fn check_and_clean(self, log: &ScenarioLog) -> usize {
        let events = all_events(&self.store as &dyn ReadAll).await;
        let name = self.read_model.name().to_owned();
        let documents = assert_counts_are_the_fold(&self.direct, &name, &events).await;
        assert!(
            documents > 0,
            "the feed showed no event (is a transaction on the server holding its horizon?)"
        );
        log.say(&format!(
            "checked: {documents} documents = a fold of {} events, none doubled, none lost",
            events.len()
        ));
        delete_indices(&self.direct, &self.index(), 3).await;
        drop_schema(&self.store).await;
        drop(self.proxy);
        documents
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_a_bandwidth_limit_slow_a_projection_and_a_rebuild_but_change_no_count() {
    let faults = fault_time(Duration::from_secs(3));
    let log = ScenarioLog::new(
        "es-slow",
        &format!("latency and a bandwidth limit for {faults:?}, then a rebuild under them"),
    );
    let scene = Scene::new("chaos-slow").await;
    let handle = pg_runner(scene.read_model.projector(), &scene.store, quick_options()).spawn();
    let writers = Writers::start(&scene.store, "slow", 2, 6, 44, Duration::from_millis(20));
    writers.wait_succeeded(20).await;

    let latency = Toxic::Latency {
        latency: Duration::from_millis(30),
        jitter: Duration::from_millis(10),
    };
    let bandwidth = Toxic::Bandwidth { kb_per_sec: 256 };
    scene
        .proxy
        .add("slow", Direction::Downstream, &latency)
        .unwrap();
    scene
        .proxy
        .add("narrow", Direction::Upstream, &bandwidth)
        .unwrap();
    log.say(&format!(
        "toxics on: {latency} downstream, {bandwidth} upstream"
    ));
    let probe = Instant::now();
    scene.read_model.count(&Query::match_all()).await.unwrap();
    let round_trip = probe.elapsed();
    let mut watch = RunnerWatch::default();
    watch.watch_for(&handle, faults).await;
    let applied = handle.status().applied;
    let rebuilding = Instant::now();
    let report = scene
        .read_model
        .rebuild(
            scene.store.clone(),
            scene.store.clone(),
            RebuildOptions::default()
                .batch_size(100)
                .drain(Duration::from_millis(200)),
        )
        .await
        .expect("a rebuild under latency completes");
    log.say(&format!(
        "a count took {round_trip:?} through the proxy; the projection applied {applied} \
         events under the toxics ({} errors); the rebuild took {:?}: {} events into {}",
        watch.retries.len(),
        rebuilding.elapsed(),
        report.events,
        report.to.index
    ));
    scene.proxy.clear().unwrap();
    assert!(
        applied > 0,
        "the projection applied events under the toxics"
    );
    assert!(
        report.events > 0,
        "the rebuild applied events under the toxics"
    );
    assert!(
        round_trip >= Duration::from_millis(20),
        "the latency was really applied: a count took {round_trip:?}"
    );
    assert_eq!(
        scene.serving().await,
        2,
        "the alias moved to the rebuilt index"
    );

    writers.stop().await;
    let status = wait_caught_up(&handle, &scene.store).await;
    assert_eq!(status.breaker, BreakerState::Closed, "{status:?}");
    handle.shutdown().await;
    scene.check_and_clean(&log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_timeouts_and_bulks_cut_mid_body_make_the_projection_retry_and_lose_nothing() {
    let faults = fault_time(Duration::from_secs(4));
    let log = ScenarioLog::new(
        "es-reset",
        &format!("rounds of resets, timeouts and cut bulks for {faults:?}"),
    );
    let scene = Scene::new("chaos-reset").await;
    let handle = pg_runner(scene.read_model.projector(), &scene.store, quick_options()).spawn();
    let writers = Writers::start(&scene.store, "cut", 2, 6, 55, Duration::from_millis(20));
    writers.wait_succeeded(20).await;

    let toxics = [
        (
            Direction::Downstream,
            Toxic::ResetPeer {
                after: Duration::ZERO,
            },
            Duration::from_millis(300),
        ),
        (
            Direction::Upstream,
            Toxic::LimitData { bytes: 1024 },
            Duration::from_millis(400),
        ),
        (
            Direction::Upstream,
            Toxic::Timeout {
                after: Duration::from_millis(300),
            },
            Duration::from_millis(500),
        ),
    ];
    let mut watch = RunnerWatch::default();
    let until = Instant::now() + faults;
    let mut rounds = 0;
    while Instant::now() < until {
        rounds += 1;
        for (direction, toxic, hold) in &toxics {
            scene.proxy.add("fault", *direction, toxic).unwrap();
            watch.watch_for(&handle, *hold).await;
            scene.proxy.remove("fault").unwrap();
            watch.watch_for(&handle, Duration::from_millis(600)).await;
        }
    }
    log.say(&format!(
        "{rounds} rounds of: {}",
        toxics
            .iter()
            .map(|(d, t, hold)| format!("{t} {d:?} for {hold:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    log.say(&format!(
        "the projection reported {} distinct errors (retrying seen: {}, breaker opened: {}), \
         e.g. {:?}",
        watch.retries.len(),
        watch.retrying_seen,
        watch.breaker_opened,
        watch.sample_error
    ));

    writers.stop().await;
    let recovering = Instant::now();
    let status = wait_caught_up(&handle, &scene.store).await;
    log.say(&format!(
        "caught up {:?} after the faults ended, breaker {:?}",
        recovering.elapsed(),
        status.breaker
    ));
    assert_eq!(
        status.breaker,
        BreakerState::Closed,
        "the breaker closed again"
    );
    assert!(
        !watch.retries.is_empty(),
        "the faults reached the projection, which retried"
    );
    assert!(
        watch.breaker_opened,
        "the faults opened the projection's breaker"
    );
    handle.shutdown().await;
    scene.check_and_clean(&log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_under_resets_completes_or_fails_typed_while_the_alias_serves_the_old_index() {
    let faults = fault_time(Duration::from_secs(3));
    let log = ScenarioLog::new(
        "es-rebuild",
        &format!("a rebuild through resets toggled for {faults:?}"),
    );
    let scene = Scene::new("chaos-rebuild").await;
    // The live projector writes straight to the node; only the rebuild goes through the proxy.
    let live = EsReadModel::new(scene.direct.clone(), scene.read_model.projection().clone())
        .expect("a valid read model");
    let handle = pg_runner(live.projector(), &scene.store, quick_options()).spawn();
    let writers = Writers::start(&scene.store, "rb", 2, 6, 66, Duration::from_millis(20));
    writers.wait_succeeded(200).await;

    // The rebuild goes slowly (20 ms each way), so the resets, toggled once its new index
    // exists, meet it mid-fill.
    let slow = Toxic::Latency {
        latency: Duration::from_millis(20),
        jitter: Duration::ZERO,
    };
    scene
        .proxy
        .add("slow", Direction::Downstream, &slow)
        .unwrap();
    let rebuild = tokio::spawn({
        let (read_model, store) = (scene.read_model.clone(), scene.store.clone());
        async move {
            read_model
                .rebuild(
                    store.clone(),
                    store,
                    RebuildOptions::default()
                        .batch_size(20)
                        .max_retries(2)
                        .drain(Duration::from_millis(200)),
                )
                .await
        }
    });
    let filling = scene.index().version_name(2);
    eventually(PATIENCE, "the rebuild to create its new index", || async {
        let exists = scene
            .direct
            .indices()
            .exists(IndicesExistsParts::Index(&[filling.as_str()]))
            .send()
            .await
            .ok()?;
        (exists.status_code().is_success() || rebuild.is_finished()).then_some(())
    })
    .await;
    log.say(&format!(
        "{slow} downstream; the rebuild is filling {filling}, the resets begin"
    ));
    let reset = Toxic::ResetPeer {
        after: Duration::ZERO,
    };
    let until = Instant::now() + faults;
    let mut toggles = 0;
    while Instant::now() < until && !rebuild.is_finished() {
        scene
            .proxy
            .add("reset", Direction::Downstream, &reset)
            .unwrap();
        toggles += 1;
        // Holding the fault on, then off: pacing, not ordering.
        tokio::time::sleep(Duration::from_millis(150)).await;
        scene.proxy.remove("reset").unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let outcome = rebuild.await.expect("the rebuild's task");
    scene.proxy.clear().unwrap();
    log.say(&format!("{toggles} times {reset} downstream for 150 ms"));
    match &outcome {
        Ok(report) => {
            log.say(&format!(
                "the rebuild completed despite the resets: {} events into {}",
                report.events, report.to.index
            ));
            assert_eq!(scene.serving().await, report.to.version);
        }
        Err(error) => {
            log.say(&format!(
                "the rebuild failed: {error} (transient: {})",
                error.is_transient()
            ));
            assert!(error.is_transient(), "a typed, transient error: {error:?}");
            assert_eq!(
                scene.serving().await,
                1,
                "the alias still serves the old index"
            );
            let serving = live
                .count(&Query::match_all())
                .await
                .expect("queries go on");
            log.say(&format!("the old index serves {serving} documents"));
            // A rebuild without faults completes (it releases any write block left behind).
            let report = scene
                .read_model
                .rebuild(
                    scene.store.clone(),
                    scene.store.clone(),
                    RebuildOptions::default().drain(Duration::from_millis(200)),
                )
                .await
                .expect("a rebuild without faults completes");
            log.say(&format!(
                "rebuilt again without faults into {}",
                report.to.index
            ));
        }
    }
    assert!(toggles > 0, "the resets were on while the rebuild ran");

    writers.stop().await;
    let status = wait_caught_up(&handle, &scene.store).await;
    assert!(status.is_ready(), "{status:?}");
    handle.shutdown().await;
    scene.check_and_clean(&log).await;
}
