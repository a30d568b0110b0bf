//! Dead letters in PostgreSQL can be re-driven: an operator asks to retry a key's letters (once
//! the cause is fixed) or to skip letters, and the leading runner carries it out between
//! batches. A retried document ends complete, as a fold of all its events; once a key has no
//! letter left, its later events flow again.

use cqrs_core::projection::{DeadLetterStore, LetterTarget, PoisonPolicy, ProjectionHandle};
use cqrs_core::{Position, Upcasters};
use cqrs_postgres::PgEventStore;
use integration_tests::domain::OrderCommand;
use integration_tests::*;

fn item(sku: &str) -> OrderCommand {
    OrderCommand::AddItem {
        sku: sku.to_owned(),
        quantity: 1,
        unit_cents: 100,
    }
}

fn place(customer: &str) -> OrderCommand {
    OrderCommand::Place {
        customer: customer.to_owned(),
    }
}

/// Version 1 of `ItemAdded` as a broken deployment reads it: it cannot read durians.
fn broken_upcasters() -> Upcasters {
    Upcasters::new().with_fn("ItemAdded", 1, |payload| {
        if payload["sku"] == "durian" {
            Err("the v1 upcaster cannot read durian".into())
        } else {
            Ok(payload)
        }
    })
}

/// The fixed deployment's.
fn fixed_upcasters() -> Upcasters {
    Upcasters::new().with_fn("ItemAdded", 1, Ok)
}

/// An `ItemAdded` of order `id` as the release before wrote it (schema version 1, which the
/// upcasters read).
async fn old_item(store: &PgEventStore, id: &str, sku: &str) -> Position {
    use cqrs_core::{Aggregate, AppendEvents, ExpectedVersion, NewEvent, StreamId};
    let stream = StreamId::with_category(integration_tests::domain::Order::TYPE, id).expect("id");
    let payload = serde_json::json!({ "sku": sku, "quantity": 1, "unit_cents": 100 });
    store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("ItemAdded", 1, payload)],
        )
        .await
        .expect("append")
        .position
}

async fn letters_of(store: &PgEventStore, name: &str, key: &str) -> Vec<Position> {
    store
        .key_letters(name, key, 1000)
        .await
        .expect("letters")
        .iter()
        .map(|l| l.position)
        .collect()
}

async fn wait_until_no_letters(store: &PgEventStore, name: &str, key: &str) {
    eventually(PATIENCE, &format!("the letters of {key} to go"), || async {
        letters_of(store, name, key).await.is_empty().then_some(())
    })
    .await;
}

async fn caught_up(handle: &ProjectionHandle, position: Position) {
    wait_caught_up_to(handle, position).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_key_completes_its_document_and_skipped_letters_let_later_events_flow() {
    let store = pg_store().await;
    let client = es_client();
    let read_model = summaries_read_model(&client, "redrive").await;
    let (summaries, index) = (read_model.projection(), read_model.index());
    let model = read_model.queries().clone();
    let name = summaries.name.clone();
    let shop = Shop::new(&store);
    let options = |upcasters: Upcasters| {
        quick_options()
            .poison(PoisonPolicy::Park)
            .upcasters(upcasters)
    };

    // The broken deployment parks b's durian and everything of b after it.
    let handle = pg_runner(read_model.projector(), &store, options(broken_upcasters())).spawn();
    shop.order("a", place("ada")).await;
    shop.order("b", place("bob")).await;
    let durian = old_item(&store, "b", "durian").await;
    shop.order("a", item("apple")).await;
    let pear = shop.order("b", item("pear")).await;
    let shipped = shop.order("b", OrderCommand::Ship).await;
    caught_up(&handle, shipped).await;
    assert_eq!(
        letters_of(&store, &name, "b").await,
        [durian, pear, shipped]
    );
    let b = model.get("b").await.unwrap().expect("b");
    assert_eq!((b.items, b.status.as_str()), (0, "open"), "b is held back");
    handle.shutdown().await;

    // Fixed and restarted: the letters wait for an operator.
    let handle = pg_runner(read_model.projector(), &store, options(fixed_upcasters())).spawn();
    caught_up(&handle, shipped).await;
    assert_eq!(letters_of(&store, &name, "b").await.len(), 3);
    let marked = store
        .retry(&name, &LetterTarget::Key("b".to_owned()))
        .await
        .expect("retry b");
    assert_eq!(marked, 3);
    wait_until_no_letters(&store, &name, "b").await;
    let b = model.get("b").await.unwrap().expect("b");
    assert_eq!(
        (b.items, b.status.as_str(), b.skus.clone()),
        (2, "shipped", vec!["durian".to_owned(), "pear".to_owned()]),
        "b is complete, in order"
    );
    // b is no longer held back.
    let archived = shop.order("b", OrderCommand::Archive).await;
    caught_up(&handle, archived).await;
    assert_eq!(model.get("b").await.unwrap(), None, "b's archive flowed");
    assert!(letters_of(&store, &name, "b").await.is_empty());

    // c: a gift note the mapping refuses, and an item behind it. Skipping the note alone
    // keeps c held back (its item is still parked); retrying c then brings the rest.
    // (Placed in a batch of its own: a refused document refuses every event folded into it.)
    caught_up(&handle, shop.order("c", place("cy")).await).await;
    let note = shop
        .order(
            "c",
            OrderCommand::AddGiftNote {
                note: "hi".to_owned(),
            },
        )
        .await;
    let kiwi = shop.order("c", item("kiwi")).await;
    caught_up(&handle, kiwi).await;
    assert_eq!(letters_of(&store, &name, "c").await, [note, kiwi]);
    store
        .skip(&name, &LetterTarget::Position(note))
        .await
        .expect("skip the note");
    eventually(PATIENCE, "the note's letter to go", || async {
        (letters_of(&store, &name, "c").await == [kiwi]).then_some(())
    })
    .await;
    let c_shipped = shop.order("c", OrderCommand::Ship).await;
    caught_up(&handle, c_shipped).await;
    assert_eq!(
        letters_of(&store, &name, "c").await,
        [kiwi, c_shipped],
        "c is still held back behind its item"
    );
    store
        .retry(&name, &LetterTarget::Key("c".to_owned()))
        .await
        .expect("retry c");
    wait_until_no_letters(&store, &name, "c").await;

    // d: a gift note skipped with its key: what follows flows.
    caught_up(&handle, shop.order("d", place("di")).await).await;
    let d_note = shop
        .order(
            "d",
            OrderCommand::AddGiftNote {
                note: "hey".to_owned(),
            },
        )
        .await;
    caught_up(&handle, d_note).await;
    assert_eq!(letters_of(&store, &name, "d").await, [d_note]);
    store
        .skip(&name, &LetterTarget::Key("d".to_owned()))
        .await
        .expect("skip d");
    wait_until_no_letters(&store, &name, "d").await;
    let fig = shop.order("d", item("fig")).await;
    caught_up(&handle, fig).await;
    assert!(letters_of(&store, &name, "d").await.is_empty());
    handle.shutdown().await;

    // Every document is the fold of every event but the two skipped notes.
    let applied: Vec<_> = all_events(&store)
        .await
        .into_iter()
        .filter(|e| e.position != note && e.position != d_note)
        .collect();
    refresh(&client, &name).await;
    assert_documents(&client, &name, &expected_summaries(&applied)).await;
    assert!(store
        .dead_letters(&name, Position::START, 10)
        .await
        .unwrap()
        .is_empty());

    delete_indices(&client, index, 1).await;
    drop_schema(&store).await;
}
