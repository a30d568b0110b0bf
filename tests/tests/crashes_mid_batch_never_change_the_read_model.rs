//! Crashes: while writers keep appending orders, the runner is aborted (as a crash would: no
//! checkpoint saved, nothing cleaned up) again and again at random points, several times in
//! the middle of a batch's `_mget` / `_bulk`. Then one runner goes to the end. The read model
//! equals a fold from scratch of the PostgreSQL feed: no event lost, none applied twice.

use std::sync::Arc;
use std::time::Duration;

use cqrs_core::{CheckpointStore, Position};
use integration_tests::*;

const CRASHES: usize = 12;

/// The seed of every run unless `CRASH_SEED` says otherwise: the same crash points, orders and
/// writers' choices each time, so a failure can be replayed (the scheduling of tasks and the
/// services' timing still vary from run to run).
const DEFAULT_SEED: u64 = 14;

/// `CRASH_SEED` if set (a malformed value is an error, not a silent default), else
/// [`DEFAULT_SEED`].
fn seed() -> u64 {
    match std::env::var("CRASH_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("CRASH_SEED={text:?} is not a u64")),
        Err(_) => DEFAULT_SEED,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_mid_batch_never_change_the_read_model() {
    let seed = seed();
    eprintln!("crash test seed: {seed} (rerun with CRASH_SEED={seed}; another with CRASH_SEED=n)");
    let mut rng = fastrand::Rng::with_seed(seed);

    let store = pg_store().await;
    let client = es_client();
    let read_model = summaries_read_model(&client, "crash").await;
    let (summaries, index) = (read_model.projection(), read_model.index());
    let shop = Arc::new(Shop::new(&store));
    shop.register_customers().await;
    shop.random_orders("seed", 20, seed).await;
    let load = Load::start(&shop, "w", 3, seed, Duration::from_millis(2));

    let counts = Arc::new(ApplyCounts::default());
    let options = || quick_options().batch_size(8);
    for crash in 0..CRASHES {
        // Crash in this run's first, second or third batch.
        let started = counts.started() + rng.u64(0..3);
        let handle = pg_runner(
            Probe::new(read_model.projector(), counts.clone()),
            &store,
            options(),
        )
        .spawn();
        // As soon as it is in that batch, crash at a random point: mostly during the batch's
        // requests to the node, sometimes between batches.
        tokio::time::timeout(PATIENCE, counts.wait_started(started))
            .await
            .unwrap_or_else(|_| panic!("crash {crash}: the runner started no batch"));
        let delay = if rng.bool() {
            rng.u64(0..2_000) // almost surely inside the batch's requests
        } else {
            rng.u64(0..25_000) // anywhere: inside, between requests, or after
        };
        tokio::time::sleep(Duration::from_micros(delay)).await;
        handle.abort();
    }
    let orders = load.stop().await;
    eprintln!(
        "{CRASHES} crashes: {} applies started, {} interrupted, {orders} orders placed meanwhile",
        counts.started(),
        counts.interrupted()
    );
    assert!(
        orders >= 10,
        "the writers kept appending during the crashes ({orders} orders)"
    );
    assert!(
        counts.interrupted() >= 2,
        "crashes hit the middle of a batch: {} of {} applies interrupted (seed {seed})",
        counts.interrupted(),
        counts.started()
    );

    let checkpoint = store
        .load_checkpoint(&summaries.name)
        .await
        .expect("load the checkpoint");
    assert!(
        checkpoint.is_some_and(|c| c > Position::START),
        "the crashed runs made progress between crashes"
    );

    let last = pg_runner(read_model.projector(), &store, options()).spawn();
    let status = wait_caught_up(&last, &store).await;
    assert!(status.is_ready(), "{status:?}");
    last.shutdown().await;
    let documents = assert_read_model_is_the_fold(&client, &summaries.name, &store).await;
    assert!(documents >= 30, "{documents} orders");

    delete_indices(&client, index, 1).await;
    drop_schema(&store).await;
}
