//! A command the engine decided in a record that just landed cannot have been sent before, so
//! it goes out as a first delivery (the repository skips looking up a first outcome: one
//! round trip less per step). A command found pending in the journal after a crash may have
//! been sent, so it goes out without the claim and the lookup returns the first outcome.

mod process_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cqrs_core::process::{InstanceState, ProcessManagerProjection, ProcessOptions, ProcessStore};
use cqrs_core::projection::{ProjectionHandle, ProjectionRunner, ProjectionStore, RunnerOptions};
use cqrs_core::testing::TestClock;
use cqrs_core::{InMemoryEventStore, SharedClock};
use process_support::{assert_each_command_once, place, Checkout, Point, Probe, Probed, Shop};

const ORDERS: u64 = 3;

async fn setup(orders: u64) -> Probed {
    let store = InMemoryEventStore::new();
    for n in 0..orders {
        place(&store, n, 10 + n, n % 2).await;
    }
    Probed {
        inner: store,
        probe: Arc::new(Probe::default()),
    }
}

fn spawn(store: &Probed, deliveries: &Arc<Mutex<Vec<bool>>>) -> ProjectionHandle {
    let options = ProcessOptions::default()
        .clock(SharedClock::new(TestClock::new()))
        .timer_poll(Duration::from_millis(10));
    let shop = Shop {
        deliveries: deliveries.clone(),
        ..Shop::probed(&store.inner, store.probe.clone())
    };
    let projection = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options);
    ProjectionRunner::new(projection, store.clone(), store.clone())
        .with_signal(store.signal())
        .with_options(RunnerOptions::new().poll_interval(Duration::from_millis(10)))
        .spawn()
}

async fn ended(store: &Probed, orders: u64) -> bool {
    for n in 0..orders {
        match ProcessStore::instance(&store.inner, "checkout", &n.to_string()).await {
            Ok(Some(row)) if row.state != InstanceState::Running => {}
            _ => return false,
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_skips_the_outcome_lookup_only_when_just_recorded() {
    // Without a crash, every command is sent once, each as a first delivery.
    let store = setup(ORDERS).await;
    let deliveries = Arc::default();
    let worker = spawn(&store, &deliveries);
    process_support::eventually("every order ends", || ended(&store, ORDERS)).await;
    worker.shutdown().await;
    let sent = deliveries.lock().unwrap().clone();
    assert!(!sent.is_empty(), "commands were sent");
    assert!(sent.iter().all(|&first| first), "{sent:?}");

    // Killed right after its first dispatch returned (the command landed, its outcome is not
    // recorded): the next worker finds it pending and sends it again, not as a first delivery.
    // One order only: with several, the other instances' drives go on while the tripped one
    // hangs, and the next worker may send one of their fresh commands before the pending one.
    let store = setup(1).await;
    store.probe.arm(Point::AfterDispatch, 1);
    let crashing = spawn(&store, &Arc::default());
    assert!(
        store.probe.wait_tripped(Duration::from_secs(10)).await,
        "the first dispatch returned"
    );
    crashing.abort();
    store.probe.disarm();
    let deliveries = Arc::default();
    let taking_over = spawn(&store, &deliveries);
    process_support::eventually("every order ends", || ended(&store, 1)).await;
    taking_over.shutdown().await;
    let sent = deliveries.lock().unwrap().clone();
    assert_eq!(sent.first(), Some(&false), "the pending command: {sent:?}");
    assert!(sent[1..].iter().all(|&first| first), "{sent:?}");
    let tallies: Vec<String> = (0..1)
        .flat_map(|n| [format!("pay-{n}"), format!("refund-{n}")])
        .chain((0..2).map(|sku| format!("stock-{sku}")))
        .collect();
    assert_each_command_once(&store.inner, &tallies).await;
}
