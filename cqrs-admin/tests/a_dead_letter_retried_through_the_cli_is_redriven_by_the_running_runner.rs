//! `cqrs dead-letters list | show | skip | retry` against a projection whose runner is running:
//! the commands only file requests, and the leading runner acts on them.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use cqrs_admin::inspect::{DeadLetterDetail, DeadLetterView};
use cqrs_core::projection::{DeadLetterStore, ProjectionRunner, RunnerOptions};
use cqrs_core::Position;
use cqrs_postgres::testing::fresh_store;
use support::{append, cqrs, eventually, Picky};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_events_are_listed_shown_skipped_and_retried_through_the_cli() {
    let store = fresh_store().await.expect("a fresh schema");
    let picky = Picky::new("orders");
    let runner = ProjectionRunner::for_store(picky.clone(), &*store)
        .with_options(RunnerOptions::new().poll_interval(Duration::from_millis(50)))
        .spawn();
    let c = Uuid::new_v4();
    append(&store, "order-1", "OrderPlaced", c).await;
    let bad_1 = append(&store, "order-1", "Bad", c).await;
    append(&store, "order-1", "OrderPaid", c).await;
    let bad_2 = append(&store, "order-2", "Bad", c).await;
    append(&store, "order-3", "OrderPlaced", c).await;
    let letters = |store: cqrs_postgres::PgEventStore| async move {
        store
            .dead_letters("orders", Position::START, 100)
            .await
            .expect("letters read")
    };

    eventually("three letters parked", DEADLINE, || {
        let store = (*store).clone();
        async move { letters(store).await.len() == 3 }
    })
    .await;

    // list, with and without filters
    let all: Vec<DeadLetterView> = cqrs(&store, &["dead-letters", "list", "--json"])
        .await
        .json();
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0].position, bad_1);
    assert_eq!(all[0].key.as_deref(), Some("order-1"));
    let only_2: Vec<DeadLetterView> = cqrs(
        &store,
        &[
            "dead-letters",
            "list",
            "--projection",
            "orders",
            "--stream",
            "order-2",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(only_2.len(), 1);
    assert_eq!(only_2[0].position, bad_2);
    let table = cqrs(&store, &["dead-letters", "list", "--type", "Bad"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    assert_eq!(
        table.stdout.lines().count(),
        3,
        "a header and two rows: {}",
        table.stdout
    );
    assert!(
        table.stdout.starts_with("PROJECTION  POSITION"),
        "{}",
        table.stdout
    );

    // show: the letter with its event's payload and metadata
    let pos_2 = bad_2.to_string();
    let detail: DeadLetterDetail = cqrs(
        &store,
        &["dead-letters", "show", "orders", &pos_2, "--json"],
    )
    .await
    .json();
    assert!(
        detail.letter.error.contains("refused by the test"),
        "{detail:?}"
    );
    let event = detail.event.expect("the event is still stored");
    assert_eq!(event.payload["stream"], "order-2");
    assert_eq!(event.correlation_id, Some(c));
    assert_eq!(
        event.headers.get("source").map(String::as_str),
        Some("test")
    );
    let shown = cqrs(&store, &["dead-letters", "show", "orders", &pos_2]).await;
    assert!(
        shown.stdout.contains("error       bad payload"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("\"note\": \"<b>x</b>\""),
        "{}",
        shown.stdout
    );

    // skip: the runner drops it and never applies the event
    let skipped = cqrs(&store, &["dead-letters", "skip", "orders", &pos_2]).await;
    assert_eq!(skipped.code, 0, "{skipped:?}");
    eventually("the skipped letter is gone", DEADLINE, || {
        let store = (*store).clone();
        async move { letters(store).await.len() == 2 }
    })
    .await;

    // retry a key: its letters are applied in order, then removed
    picky.reject.store(false, Ordering::SeqCst);
    let retried = cqrs(
        &store,
        &[
            "dead-letters",
            "retry",
            "orders",
            "--key",
            "order-1",
            "--json",
        ],
    )
    .await;
    let answer: serde_json::Value = retried.json();
    assert_eq!(answer["marked"], 2, "{answer}");
    eventually("the retried letters are applied and gone", DEADLINE, || {
        let store = (*store).clone();
        async move { letters(store).await.is_empty() }
    })
    .await;
    let order_1: Vec<String> = picky
        .applied()
        .into_iter()
        .filter(|(s, _)| s == "order-1")
        .map(|(_, t)| t)
        .collect();
    assert_eq!(order_1, ["OrderPlaced", "Bad", "OrderPaid"]);
    assert!(!picky.applied().iter().any(|(s, _)| s == "order-2"));

    // nothing left to act on, an unknown projection: not found
    let again = cqrs(&store, &["dead-letters", "retry", "orders", &pos_2]).await;
    assert_eq!(again.code, 3, "{again:?}");
    let unknown = cqrs(&store, &["dead-letters", "list", "--projection", "nope"]).await;
    assert_eq!(unknown.code, 3, "{unknown:?}");
    assert_eq!(unknown.stderr.lines().count(), 1, "{unknown:?}");
    runner.shutdown().await;
}
