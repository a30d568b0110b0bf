//! Poison: a gift note makes an order summary a document the strict mapping refuses.
//!
//! - With `PoisonPolicy::Park`, the event lands in PostgreSQL's dead letters, the order's later
//!   events are parked behind it (also after a restart: the parked key is read back from PG),
//!   and every other order goes on.
//! - With `PoisonPolicy::Stop`, the runner fails with the checkpoint just before the poison
//!   event; once an operator fixes the mapping, a restart resumes from there.

use std::collections::BTreeMap;
use std::time::Duration;

use cqrs_core::projection::{DeadLetterStore, PoisonPolicy, ProjectionState};
use cqrs_core::{CheckpointStore, Position};
use cqrs_elastic::EsQueries;
use cqrs_postgres::PgEventStore;
use elasticsearch::indices::IndicesPutMappingParts;
use integration_tests::domain::OrderCommand;
use integration_tests::*;
use serde_json::json;

fn item(sku: &str, quantity: u32) -> OrderCommand {
    OrderCommand::AddItem {
        sku: sku.to_owned(),
        quantity,
        unit_cents: 100,
    }
}

fn place(customer: &str) -> OrderCommand {
    OrderCommand::Place {
        customer: customer.to_owned(),
    }
}

fn gift_note() -> OrderCommand {
    OrderCommand::AddGiftNote {
        note: "happy birthday".to_owned(),
    }
}

async fn wait(store: &PgEventStore, summaries: &OrderSummaries, position: Position) {
    let model: EsQueries<OrderSummary> = EsQueries::for_projection(es_client(), summaries).unwrap();
    let reached = model
        .wait_for_position(store, &summaries.name, position, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(reached, "the projection reached {position}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_poison_holds_back_its_document_and_the_others_go_on() {
    let store = pg_store().await;
    let client = es_client();
    let read_model = summaries_read_model(&client, "park").await;
    let (summaries, index) = (read_model.projection(), read_model.index());
    let model = read_model.queries().clone();
    let shop = Shop::new(&store);
    let options = || quick_options().poison(PoisonPolicy::Park);
    let handle = pg_runner(read_model.projector(), &store, options()).spawn();

    shop.order("a", place("ada")).await;
    shop.order("a", item("apple", 1)).await;
    shop.order("b", place("bob")).await;
    shop.order("b", item("pear", 2)).await;
    wait(&store, summaries, shop.order("c", place("cy")).await).await;
    let b_before = model.get("b").await.unwrap().expect("b");

    // The poison event on its own batch, then more events of b and of the others.
    let note = shop.order("b", gift_note()).await;
    wait(&store, summaries, note).await;
    let b_item = shop.order("b", item("fig", 1)).await;
    shop.order("a", OrderCommand::Ship).await;
    shop.order("c", item("kiwi", 3)).await;
    let b_ship = shop.order("b", OrderCommand::Ship).await;
    wait(&store, summaries, shop.order("c", OrderCommand::Ship).await).await;

    let letters = store
        .dead_letters(&summaries.name, Position::START, 1000)
        .await
        .unwrap();
    let parked: Vec<(Position, &str)> = letters
        .iter()
        .map(|l| (l.position, l.event_type.as_str()))
        .collect();
    assert_eq!(
        parked,
        [
            (note, "GiftNoteAdded"),
            (b_item, "ItemAdded"),
            (b_ship, "OrderShipped")
        ]
    );
    for letter in &letters {
        assert_eq!(letter.key.as_deref(), Some("b"));
        assert_eq!(letter.stream_id.as_str(), "order-b");
        assert_eq!(letter.projection, summaries.name);
    }
    assert!(
        letters[0]
            .error
            .contains("strict_dynamic_mapping_exception")
            && letters[0].error.contains("gift_note"),
        "the refusal is named: {}",
        letters[0].error
    );
    assert!(letters[1].error.contains("parked"), "{}", letters[1].error);

    assert_eq!(model.get("b").await.unwrap(), Some(b_before), "b is frozen");
    let a = model.get("a").await.unwrap().expect("a");
    assert_eq!(a.status, "shipped");
    let c = model.get("c").await.unwrap().expect("c");
    assert_eq!((c.status.as_str(), c.items), ("shipped", 3));
    let status = handle.status();
    assert_eq!(status.parked, 3);
    assert_eq!(status.state, ProjectionState::Running);
    assert!(status.is_ready(), "parking is not a failure: {status:?}");
    handle.shutdown().await;

    // After a restart, b stays parked: its key comes back from PostgreSQL.
    let b_more = shop.order("b", OrderCommand::Archive).await;
    let a_archived = shop.order("a", OrderCommand::Archive).await;
    let handle = pg_runner(read_model.projector(), &store, options()).spawn();
    wait(&store, summaries, a_archived.max(b_more)).await;
    let letters = store
        .dead_letters(&summaries.name, Position::START, 1000)
        .await
        .unwrap();
    assert_eq!(letters.len(), 4);
    assert_eq!(letters[3].position, b_more);
    assert!(
        model.get("b").await.unwrap().is_some(),
        "b's archive is parked too"
    );
    assert_eq!(model.get("a").await.unwrap(), None, "a is archived");
    handle.shutdown().await;

    // Everything else is exactly the fold of the events that were not parked.
    let parked: Vec<Position> = letters.iter().map(|l| l.position).collect();
    let applied: Vec<_> = all_events(&store)
        .await
        .into_iter()
        .filter(|e| !parked.contains(&e.position))
        .collect();
    let expected: BTreeMap<_, _> = expected_summaries(&applied);
    assert_documents(&client, &summaries.name, &expected).await;

    delete_indices(&client, index, 1).await;
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_stops_the_projection_just_before_it_until_fixed() {
    let store = pg_store().await;
    let client = es_client();
    let read_model = summaries_read_model(&client, "stop").await;
    let (summaries, index) = (read_model.projection(), read_model.index());
    let model = read_model.queries().clone();
    let shop = Shop::new(&store);
    let options = || quick_options().poison(PoisonPolicy::Stop);

    let handle = pg_runner(read_model.projector(), &store, options()).spawn();
    shop.order("a", place("ada")).await;
    shop.order("b", place("bob")).await;
    wait(&store, summaries, shop.order("b", item("pear", 1)).await).await;
    handle.shutdown().await;

    // One batch: a's item (fine), b's gift note (refused), then more events.
    let a_item = shop.order("a", item("apple", 2)).await;
    let note = shop.order("b", gift_note()).await;
    shop.order("c", place("cy")).await;
    shop.order("a", OrderCommand::Ship).await;

    let handle = pg_runner(read_model.projector(), &store, options()).spawn();
    let failed = wait_for_status(&handle, PATIENCE, "the projection to fail", |s| {
        s.state == ProjectionState::Failed
    })
    .await;
    assert!(!failed.is_live());
    assert_eq!(
        failed.position, a_item,
        "the status sits just before the poison event"
    );
    assert_eq!(
        store.load_checkpoint(&summaries.name).await.unwrap(),
        Some(a_item),
        "the checkpoint sits just before the poison event {note}"
    );
    let error = failed.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("order-b@3 (GiftNoteAdded)")
            && error.contains(&note.to_string())
            && error.contains("strict_dynamic_mapping_exception"),
        "the error names the event and the refusal: {error}"
    );
    assert!(
        store
            .dead_letters(&summaries.name, Position::START, 1000)
            .await
            .unwrap()
            .is_empty(),
        "Stop parks nothing"
    );
    assert_eq!(
        model.get("a").await.unwrap().expect("a").items,
        2,
        "the event before the poison one is applied"
    );
    assert_eq!(model.get("b").await.unwrap().expect("b").gift_note, None);
    handle.shutdown().await;

    // Restarting without a fix fails again at the same place.
    let handle = pg_runner(read_model.projector(), &store, options()).spawn();
    let again = wait_for_status(&handle, PATIENCE, "the projection to fail again", |s| {
        s.state == ProjectionState::Failed
    })
    .await;
    assert_eq!(again.position, a_item);
    handle.shutdown().await;

    // The operator maps the field; a restart resumes just before the poison event.
    let response = client
        .indices()
        .put_mapping(IndicesPutMappingParts::Index(&[&summaries.name]))
        .body(json!({ "properties": { "gift_note": { "type": "keyword" } } }))
        .send()
        .await
        .unwrap();
    assert!(response.status_code().is_success());
    let handle = pg_runner(read_model.projector(), &store, options()).spawn();
    let status = wait_caught_up(&handle, &store).await;
    assert_eq!(status.last_error, None);
    handle.shutdown().await;
    assert_eq!(
        model
            .get("b")
            .await
            .unwrap()
            .expect("b")
            .gift_note
            .as_deref(),
        Some("happy birthday")
    );
    assert_read_model_is_the_fold(&client, &summaries.name, &store).await;

    delete_indices(&client, index, 1).await;
    drop_schema(&store).await;
}
