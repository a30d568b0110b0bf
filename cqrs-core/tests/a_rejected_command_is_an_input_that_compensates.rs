//! A refused command comes back to `decide` as a typed input: the checkout whose stock is
//! closed hears `Rejected(Refusal::Closed)` and refunds the charge, and the instance
//! completes. A refusal it has no compensation for fails the instance, for an operator. A
//! command that cannot be delivered is no rejection: its trigger is parked under the instance
//! until an operator retries it.

mod process_support;

use std::time::Duration;

use cqrs_core::process::{InstanceState, ProcessManagerProjection, ProcessOptions, INPUT_RECEIVED};
use cqrs_core::projection::{DeadLetterStore, LetterTarget};
use cqrs_core::testing::TestClock;
use cqrs_core::{InMemoryEventStore, Position, ReadAll, SharedClock};
use process_support::{close, eventually, place, row, stream, total, Checkout, Refusal, Shop};
use serde_json::json;

async fn run_until_ended(store: &InMemoryEventStore, instances: &[&str]) {
    let options = ProcessOptions::default().clock(SharedClock::new(TestClock::new()));
    let handle =
        ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), Shop::new(store), options)
            .runner()
            .spawn();
    let head = store.head().await.expect("head");
    handle
        .wait_for(head, Duration::from_secs(10))
        .await
        .expect("the runner catches up");
    for instance in instances {
        eventually(&format!("instance {instance} ends"), || async {
            row(store, instance).await.state != InstanceState::Running
        })
        .await;
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn a_refused_reserve_reaches_decide_typed_and_the_charge_is_refunded() {
    let store = InMemoryEventStore::new();
    close(&store, "stock-1").await;
    place(&store, 7, 40, 1).await;
    place(&store, 8, 25, 2).await;
    run_until_ended(&store, &["7", "8"]).await;

    // Order 7: charged, reserve refused, refunded, completed.
    assert_eq!(total(&store, "pay-7").await, 40);
    assert_eq!(total(&store, "stock-1").await, 0);
    assert_eq!(total(&store, "refund-7").await, 40);
    let status = row(&store, "7").await;
    assert_eq!(status.state, InstanceState::Completed);
    assert_eq!(status.last_input, "accepted Add");

    // Its journal: the rejection is recorded typed, and the refund is what it decided.
    let journal = stream(&store, "checkout-7").await;
    let kinds: Vec<_> = journal
        .iter()
        .filter(|e| e.event_type == INPUT_RECEIVED)
        .map(|e| {
            e.payload["kind"]["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["event", "accepted", "rejected", "accepted"]);
    let rejected = journal
        .iter()
        .position(|e| e.payload["kind"]["type"] == "rejected")
        .expect("a rejection");
    assert_eq!(
        journal[rejected].payload["kind"]["error"],
        serde_json::to_value(Refusal::Closed).expect("json")
    );
    // The input's event holds what was decided for it.
    let answer = &journal[rejected];
    assert_eq!(answer.event_type, INPUT_RECEIVED);
    let actions: Vec<_> = answer.payload["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["action"]["type"].clone())
        .collect();
    assert_eq!(actions, [json!("send"), json!("complete")]);
    assert_eq!(
        answer.payload["actions"][0]["action"]["command"],
        json!({ "Add": { "tally": "refund-7", "amount": 40 } })
    );

    // Order 8, untouched by the closed stock, ships as usual.
    assert_eq!(total(&store, "stock-2").await, 25);
    assert_eq!(total(&store, "refund-8").await, 0);
    assert_eq!(row(&store, "8").await.state, InstanceState::Completed);
}

#[tokio::test]
async fn a_refusal_without_a_compensation_fails_the_instance() {
    let store = InMemoryEventStore::new();
    // A charge over the tally's cap is refused with OverCap, which the checkout does not
    // compensate: it fails the instance.
    place(&store, 9, cqrs_core::testing::Tally::CAP + 1, 0).await;
    run_until_ended(&store, &["9"]).await;
    let status = row(&store, "9").await;
    assert_eq!(status.state, InstanceState::Failed);
    assert!(status.finished_at.is_some());
    assert_eq!(total(&store, "pay-9").await, 0);
    assert_eq!(total(&store, "stock-0").await, 0);
}

#[tokio::test]
async fn a_command_that_cannot_be_delivered_is_no_rejection_its_trigger_is_parked_under_the_instance(
) {
    let store = InMemoryEventStore::new();
    place(&store, 1, 30, 0).await;
    place(&store, 2, 20, 1).await;
    let options = || ProcessOptions::default().clock(SharedClock::new(TestClock::new()));
    let mut broken = Shop::new(&store);
    broken.broken_stock = Some("stock-0".to_owned());
    let handle = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), broken, options())
        .runner()
        .spawn();
    let head = store.head().await.expect("head");
    handle
        .wait_for(head, Duration::from_secs(10))
        .await
        .expect("the runner moves on past the parked trigger");
    handle.shutdown().await;

    let letters = store
        .dead_letters("process:checkout", Position::START, 10)
        .await
        .expect("read");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].key.as_deref(), Some("checkout-1"));
    assert!(
        letters[0].error.contains("stock-0 is gone"),
        "{}",
        letters[0].error
    );
    // Order 1 is charged and waits with its reserve pending; order 2 went through.
    let waiting = row(&store, "1").await;
    assert_eq!(
        (waiting.state, waiting.pending_commands),
        (InstanceState::Running, 1)
    );
    assert_eq!(row(&store, "2").await.state, InstanceState::Completed);

    // Repaired, the trigger is retried: the pending reserve goes out, and nothing twice.
    store
        .retry(
            "process:checkout",
            &LetterTarget::Key("checkout-1".to_owned()),
        )
        .await
        .expect("requested");
    let handle = ProcessManagerProjection::<Checkout, _, _>::new(
        store.clone(),
        Shop::new(&store),
        options(),
    )
    .runner()
    .spawn();
    eventually("order 1 completes once retried", || async {
        row(&store, "1").await.state == InstanceState::Completed
    })
    .await;
    handle.shutdown().await;
    assert_eq!(total(&store, "pay-1").await, 30);
    assert_eq!(total(&store, "stock-0").await, 30);
    assert_eq!(total(&store, "refund-1").await, 0);
}
