//! A command handed on (`Dispatched::Forwarded`, as a bus dispatcher does) stays pending until
//! its reply is recorded in the requester's log (`CommandReplied`): the engine then decides it
//! as `Input::Accepted`, or as `Input::Rejected` with the rejection's JSON decoded into the
//! process's typed `Rejection`, exactly as a local dispatcher's answer. A reply recorded twice,
//! or one for a command that is not pending, decides nothing more. A target's word that it
//! could not run the command (`ReplyOutcome::Failed`) parks the instance with its reason until
//! the target's answer supersedes it.

mod process_support;

use std::time::Duration;

use cqrs_core::process::{
    CommandReplied, InstanceState, ProcessManager, ProcessManagerProjection, ProcessOptions,
    ProcessStore, ReplyOutcome,
};
use cqrs_core::projection::{DeadLetterStore, LetterTarget};
use cqrs_core::testing::TestClock;
use cqrs_core::{CommandId, InMemoryEventStore, ReadAll, SharedClock};
use process_support::{eventually, place, row, stream, total, Checkout, Refusal, Shop};

/// The command id of the instance's pending (forwarded) stock command, read from its journal.
async fn pending_stock_command(store: &InMemoryEventStore, instance: &str) -> CommandId {
    let journal = stream(store, &format!("checkout-{instance}")).await;
    let id = journal
        .iter()
        .flat_map(|e| e.payload["actions"].as_array().cloned().unwrap_or_default())
        .find(|a| {
            a["action"]["command"]["Add"]["tally"]
                .as_str()
                .is_some_and(|t| t.starts_with("stock-"))
        })
        .and_then(|a| a["action"]["command_id"].as_str().map(str::to_owned))
        .expect("a stock command was decided");
    CommandId::from_uuid(id.parse().expect("a uuid"))
}

/// Waits until `instance` was charged and waits on its forwarded reserve.
async fn waits_on_its_reserve(store: &InMemoryEventStore, instance: &str) {
    eventually(
        &format!("instance {instance} waits on its forwarded reserve"),
        || async {
            store
                .instance(Checkout::TYPE, instance)
                .await
                .expect("read")
                .is_some_and(|row| row.pending_commands == 1 && row.last_input == "accepted Add")
        },
    )
    .await;
}

fn kinds(events: &[cqrs_core::RecordedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e.payload["kind"]["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_reply_resolves_the_forwarded_step_as_accepted_or_typed_rejected_once() {
    let store = InMemoryEventStore::new();
    place(&store, 1, 30, 0).await;
    place(&store, 2, 20, 1).await;
    let mut shop = Shop::new(&store);
    shop.forward_stock = true;
    let options = ProcessOptions::default().clock(SharedClock::new(TestClock::new()));
    let handle = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options)
        .runner()
        .spawn();
    for instance in ["1", "2"] {
        waits_on_its_reserve(&store, instance).await;
    }
    assert_eq!(total(&store, "stock-0").await, 0, "forwarded, not run here");

    // Order 1: accepted, recorded twice (a redelivered reply) and once more under a stray id.
    let reserve = pending_stock_command(&store, "1").await;
    let accepted = CommandReplied::new("checkout", "1", reserve, ReplyOutcome::Accepted);
    assert!(
        !accepted
            .record(&store, None)
            .await
            .expect("recorded")
            .duplicate
    );
    assert!(
        accepted
            .record(&store, None)
            .await
            .expect("recorded")
            .duplicate
    );
    let stray = CommandReplied::new("checkout", "1", CommandId::new(), ReplyOutcome::Accepted);
    stray.record(&store, None).await.expect("recorded");

    // Order 2: refused with the typed error, as JSON.
    let reserve = pending_stock_command(&store, "2").await;
    let error = serde_json::to_value(Refusal::Closed).expect("json");
    let rejected = CommandReplied::new("checkout", "2", reserve, ReplyOutcome::Rejected { error });
    rejected.record(&store, None).await.expect("recorded");

    let head = store.head().await.expect("head");
    handle
        .wait_for(head, Duration::from_secs(10))
        .await
        .expect("the runner catches up");
    handle.shutdown().await;

    let first = row(&store, "1").await;
    assert_eq!(first.state, InstanceState::Completed);
    assert_eq!(first.pending_commands, 0);
    let journal = stream(&store, "checkout-1").await;
    assert_eq!(
        kinds(&journal),
        ["event", "accepted", "accepted"],
        "the reply decided once"
    );
    assert_eq!(journal[2].payload["input"], reserve_of(&store, "1").await);

    let second = row(&store, "2").await;
    assert_eq!(second.state, InstanceState::Completed);
    let journal = stream(&store, "checkout-2").await;
    assert_eq!(
        kinds(&journal),
        ["event", "accepted", "rejected", "accepted"]
    );
    assert_eq!(
        journal[2].payload["kind"]["error"],
        serde_json::json!("Closed")
    );
    assert_eq!(
        total(&store, "refund-2").await,
        20,
        "the typed rejection compensated"
    );
    assert_eq!(total(&store, "refund-1").await, 0);
}

/// A reply is recorded with what it decides before those commands are sent. When a send fails
/// (here the refund, once, as unavailable), the batch is retried and the reply comes again:
/// it is no longer pending, and before, that retry sent nothing, so the refund the rejection
/// decided was never sent and the instance stayed running with it pending for good.
#[tokio::test]
async fn the_commands_a_reply_decided_are_sent_when_their_first_send_failed() {
    let store = InMemoryEventStore::new();
    place(&store, 2, 20, 1).await;
    let mut shop = Shop::new(&store);
    shop.forward_stock = true;
    shop.unavailable
        .lock()
        .expect("unavailable")
        .insert("refund-2".to_owned(), 1);
    let options = ProcessOptions::default().clock(SharedClock::new(TestClock::new()));
    let handle = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options)
        .runner()
        .spawn();
    waits_on_its_reserve(&store, "2").await;
    let reserve = pending_stock_command(&store, "2").await;
    let error = serde_json::to_value(Refusal::Closed).expect("json");
    CommandReplied::new("checkout", "2", reserve, ReplyOutcome::Rejected { error })
        .record(&store, None)
        .await
        .expect("recorded");

    eventually("the refund the rejection decided is sent", || async {
        store
            .instance(Checkout::TYPE, "2")
            .await
            .expect("read")
            .is_some_and(|row| row.state == InstanceState::Completed)
    })
    .await;
    handle.shutdown().await;
    assert_eq!(total(&store, "refund-2").await, 20, "refunded once");
    let row = row(&store, "2").await;
    assert_eq!(row.pending_commands, 0);
}

/// The input id an outcome is recorded under: the command id it answers.
async fn reserve_of(store: &InMemoryEventStore, instance: &str) -> serde_json::Value {
    serde_json::Value::String(pending_stock_command(store, instance).await.to_string())
}

#[tokio::test]
async fn a_rejection_that_is_not_the_process_s_type_is_parked_under_the_instance() {
    let store = InMemoryEventStore::new();
    place(&store, 3, 10, 0).await;
    let mut shop = Shop::new(&store);
    shop.forward_stock = true;
    let options = ProcessOptions::default().clock(SharedClock::new(TestClock::new()));
    let handle = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options)
        .runner()
        .spawn();
    waits_on_its_reserve(&store, "3").await;
    let reserve = pending_stock_command(&store, "3").await;
    let error = serde_json::json!({ "NoSuchRefusal": 1 });
    CommandReplied::new("checkout", "3", reserve, ReplyOutcome::Rejected { error })
        .record(&store, None)
        .await
        .expect("recorded");
    let head = store.head().await.expect("head");
    handle
        .wait_for(head, Duration::from_secs(10))
        .await
        .expect("the runner passes it (parked)");
    let status = handle.status();
    handle.shutdown().await;
    assert_eq!(status.parked, 1, "{status:?}");
    let row = row(&store, "3").await;
    assert_eq!(
        (row.state, row.pending_commands),
        (InstanceState::Running, 1)
    );
}

#[tokio::test]
async fn a_target_s_failure_parks_the_instance_until_its_answer_supersedes_it() {
    let store = InMemoryEventStore::new();
    place(&store, 4, 10, 0).await;
    let mut shop = Shop::new(&store);
    shop.forward_stock = true;
    let options = ProcessOptions::default().clock(SharedClock::new(TestClock::new()));
    let handle = ProcessManagerProjection::<Checkout, _, _>::new(store.clone(), shop, options)
        .runner()
        .spawn();
    waits_on_its_reserve(&store, "4").await;
    let reserve = pending_stock_command(&store, "4").await;
    let failed = |reason: &str| {
        CommandReplied::new(
            "checkout",
            "4",
            reserve,
            ReplyOutcome::Failed {
                reason: reason.to_owned(),
            },
        )
    };
    // Told twice (the target crashed after telling): recorded once.
    let defect = failed("the stock service cannot read the command");
    assert!(
        !defect
            .record(&store, None)
            .await
            .expect("recorded")
            .duplicate
    );
    assert!(
        defect
            .record(&store, None)
            .await
            .expect("recorded")
            .duplicate
    );
    let head = store.head().await.expect("head");
    handle
        .wait_for(head, Duration::from_secs(10))
        .await
        .expect("the runner passes it (parked)");
    let letters = store
        .key_letters("process:checkout", "checkout-4", 10)
        .await
        .expect("letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].error.contains(
            "failed at its target, which parked it: the stock service cannot read the command"
        ),
        "{}",
        letters[0].error
    );
    let parked = row(&store, "4").await;
    assert_eq!(
        (parked.state, parked.pending_commands),
        (InstanceState::Running, 1)
    );

    // The target's operators retried it: its answer is recorded (held back behind the letter),
    // and retrying the instance decides the step on it, once.
    CommandReplied::new("checkout", "4", reserve, ReplyOutcome::Accepted)
        .record(&store, None)
        .await
        .expect("recorded");
    store
        .retry(
            "process:checkout",
            &LetterTarget::Key("checkout-4".to_owned()),
        )
        .await
        .expect("retry");
    eventually("the instance completes on the answer", || async {
        row(&store, "4").await.state == InstanceState::Completed
    })
    .await;
    handle.shutdown().await;
    let journal = stream(&store, "checkout-4").await;
    assert_eq!(kinds(&journal), ["event", "accepted", "accepted"]);
    assert!(store
        .key_letters("process:checkout", "checkout-4", 10)
        .await
        .expect("letters")
        .is_empty());
}
