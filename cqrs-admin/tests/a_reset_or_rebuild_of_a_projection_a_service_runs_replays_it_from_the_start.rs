//! `projections reset` and `projections rebuild` while the service's own runner leads the
//! projection: the runner's term ends with the reset, and whoever leads next replays the feed
//! from the start; a rebuild ends once the projection, led by anyone, has caught up again. A
//! reset drops the projection's dead letters too: they belong to the run it forgets, and a
//! parked key would otherwise hold back the key's earlier events in the replay.

mod support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cqrs_admin::service::{Admin, AdminArgs, AdminCommand, CatchUpProjection, ProjectionCommand};
use cqrs_admin::Inspector;
use cqrs_core::projection::{DeadLetterStore, ProjectionHandle, ProjectionRunner};
use cqrs_core::{CheckpointStore, Position};
use cqrs_postgres::testing::fresh_store;
use cqrs_postgres::PgEventStore;
use support::{append, eventually, Picky};
use uuid::Uuid;

fn args(command: ProjectionCommand) -> AdminArgs {
    AdminArgs {
        json: false,
        command: AdminCommand::Projections(command),
    }
}

fn admin(store: &PgEventStore, picky: &Picky) -> Admin {
    let live = store.clone();
    let projection = picky.clone();
    Admin::new(Inspector::new(store.clone())).projection(CatchUpProjection::new(
        "orders",
        store.clone(),
        move || ProjectionRunner::for_store(projection.clone(), &live),
    ))
}

/// The streams of the events `picky` applied after its first `from`.
fn streams_applied_after(picky: &Picky, from: usize) -> HashSet<String> {
    picky.applied()[from..]
        .iter()
        .map(|(stream, _)| stream.clone())
        .collect()
}

fn streams(names: &[&str]) -> HashSet<String> {
    names.iter().map(|&n| n.to_owned()).collect()
}

/// Three events, and the service's runner leading `orders` with all three applied and saved.
async fn a_running_service(store: &PgEventStore, picky: &Picky) -> (ProjectionHandle, Position) {
    let c = Uuid::new_v4();
    let mut head = Position::START;
    for n in 1..=3 {
        head = append(store, &format!("order-{n}"), "OrderPlaced", c).await;
    }
    // The feed shows them once every older transaction ended (other tests' too).
    support::visible(store, head).await;
    let running = ProjectionRunner::for_store(picky.clone(), store).spawn();
    eventually(
        "the service's runner saves",
        Duration::from_secs(30),
        || async {
            let saved = store.load_checkpoint("orders").await;
            saved.is_ok_and(|p| p.is_some_and(|p| p >= head))
        },
    )
    .await;
    assert_eq!(picky.applied().len(), 3);
    (running, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_while_the_service_leads_makes_its_runner_replay_the_feed() {
    let store = fresh_store().await.expect("a fresh schema");
    let picky = Picky::new("orders");
    let (running, _) = a_running_service(&store, &picky).await;

    admin(&store, &picky)
        .run(
            &args(ProjectionCommand::Reset {
                name: "orders".into(),
            }),
            &mut Vec::new(),
        )
        .await
        .expect("reset");
    append(&store, "order-4", "OrderPlaced", Uuid::new_v4()).await;

    let every = streams(&["order-1", "order-2", "order-3", "order-4"]);
    eventually(
        "the runner replays every event after the reset",
        Duration::from_secs(30),
        || async { streams_applied_after(&picky, 3) == every },
    )
    .await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_while_the_service_leads_ends_once_the_feed_is_replayed() {
    let store = fresh_store().await.expect("a fresh schema");
    let picky = Picky::new("orders");
    let (running, head) = a_running_service(&store, &picky).await;

    let (admin, mut out) = (admin(&store, &picky), Vec::new());
    let command = args(ProjectionCommand::Rebuild {
        name: "orders".into(),
    });
    let rebuild = admin.run(&command, &mut out);
    tokio::time::timeout(Duration::from_secs(60), rebuild)
        .await
        .expect("the rebuild ends while the service runs")
        .expect("rebuilt");

    let printed = String::from_utf8(out).expect("utf-8");
    assert!(printed.starts_with("rebuilt orders up to "), "{printed}");
    assert_eq!(
        streams_applied_after(&picky, 3),
        streams(&["order-1", "order-2", "order-3"]),
        "every event applied again, by whichever runner led"
    );
    let saved = store.load_checkpoint("orders").await.expect("read");
    assert!(saved.is_some_and(|p| p >= head), "{saved:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_drops_the_dead_letters_so_the_replay_applies_a_parked_keys_events() {
    let store = fresh_store().await.expect("a fresh schema");
    let picky = Picky::new("orders");
    let c = Uuid::new_v4();
    append(&store, "order-1", "OrderPlaced", c).await;
    let bad = append(&store, "order-1", "Bad", c).await;
    support::visible(&store, bad).await;
    ProjectionRunner::for_store(picky.clone(), &*store)
        .catch_up()
        .await
        .expect("caught up");
    assert_eq!(picky.applied().len(), 1, "the bad event parked");
    let letters = store.dead_letters("orders", Position::START, 10).await;
    assert_eq!(letters.expect("letters").len(), 1);

    picky.reject.store(false, Ordering::SeqCst);
    admin(&store, &picky)
        .run(
            &args(ProjectionCommand::Reset {
                name: "orders".into(),
            }),
            &mut Vec::new(),
        )
        .await
        .expect("reset");
    ProjectionRunner::for_store(picky.clone(), &*store)
        .catch_up()
        .await
        .expect("caught up");

    let replayed: Vec<String> = picky.applied()[1..]
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    assert_eq!(
        replayed,
        ["OrderPlaced", "Bad"],
        "the key held nothing back"
    );
    let letters = store.dead_letters("orders", Position::START, 10).await;
    assert!(letters.expect("letters").is_empty());
}
