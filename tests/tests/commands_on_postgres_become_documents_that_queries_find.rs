//! End to end: commands go through the `Repository` into PostgreSQL, the real
//! `ProjectionRunner` (PG feed, PG checkpoints, `LISTEN` wake-ups) feeds the search node, and
//! `EsQueries` queries (get, search, count) answer with the expected documents. After each
//! command, waiting for its position makes the change searchable at once: read-your-writes.

use std::time::Duration;

use cqrs_core::projection::ProjectionState;
use cqrs_core::{CheckpointStore, ReadAll};
use cqrs_elastic::{Query, Search, SortOrder};
use integration_tests::domain::{CustomerCommand, OrderCommand, OrderStatus};
use integration_tests::*;

fn item(sku: &str, quantity: u32, unit_cents: u64) -> OrderCommand {
    OrderCommand::AddItem {
        sku: sku.to_owned(),
        quantity,
        unit_cents,
    }
}

fn place(customer: &str) -> OrderCommand {
    OrderCommand::Place {
        customer: customer.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_postgres_become_documents_that_queries_find() {
    let store = pg_store().await;
    let client = es_client();
    let read_model = summaries_read_model(&client, "e2e").await;
    let (summaries, index) = (read_model.projection(), read_model.index());
    let handle = pg_runner(read_model.projector(), &store, quick_options()).spawn();
    let model = read_model.queries().clone();
    let shop = Shop::new(&store);
    let wait = |position| {
        let (model, store, name) = (model.clone(), store.clone(), summaries.name.clone());
        async move {
            let reached = model
                .wait_for_position(&store, &name, position, Duration::from_secs(10))
                .await
                .expect("read the checkpoint");
            assert!(reached, "the read model reached {position}");
        }
    };

    for (id, name) in [("ada", "Ada"), ("bob", "Bob"), ("cy", "Cy")] {
        shop.customer(
            id,
            CustomerCommand::Register {
                name: name.to_owned(),
            },
        )
        .await;
    }

    // Read-your-writes, command by command: once the command's position is checkpointed, a
    // search (not only a real-time get) sees the change, with no polling.
    let script = [
        ("o1", place("ada")),
        ("o1", item("apple", 2, 150)),
        ("o1", item("pear", 1, 400)),
        ("o2", place("bob")),
        ("o2", item("apple", 5, 150)),
        ("o3", place("ada")),
        ("o3", item("melon", 1, 1200)),
        ("o1", OrderCommand::Ship),
        (
            "o2",
            OrderCommand::Cancel {
                reason: "changed their mind".to_owned(),
            },
        ),
        ("o4", place("cy")),
        ("o4", item("pear", 3, 400)),
        ("o4", OrderCommand::Ship),
    ];
    for (id, command) in script {
        let position = shop.order(id, command.clone()).await;
        wait(position).await;
        let (state, _) = shop.orders.load(id).await.unwrap();
        let found = model
            .search(&Search::new(
                Query::bool()
                    .filter(Query::term("cqrs.id", id))
                    .filter(Query::term("items", state.items()))
                    .filter(Query::term("total_cents", state.total_cents())),
            ))
            .await
            .unwrap();
        assert_eq!(
            found.hits.len(),
            1,
            "{id} is searchable with its new state right after {command:?}"
        );
        assert_eq!(found.hits[0].position, Some(position));
    }

    // An archived order disappears from every query at once.
    let archived = shop.order("o4", OrderCommand::Archive).await;
    wait(archived).await;
    assert_eq!(model.get("o4").await.unwrap(), None);
    assert_eq!(model.count(&Query::term("cqrs.id", "o4")).await.unwrap(), 0);

    // get: whole documents.
    let o1 = model.get("o1").await.unwrap().expect("o1");
    assert_eq!(
        o1,
        OrderSummary {
            customer: "ada".to_owned(),
            status: "shipped".to_owned(),
            items: 3,
            total_cents: 700,
            skus: vec!["apple".to_owned(), "pear".to_owned()],
            cancel_reason: None,
            gift_note: None,
        }
    );
    let o2 = model.get("o2").await.unwrap().expect("o2");
    assert_eq!((o2.status.as_str(), o2.total_cents), ("cancelled", 750));
    assert_eq!(o2.cancel_reason.as_deref(), Some("changed their mind"));
    assert_eq!(model.get("nope").await.unwrap(), None);

    // search: a customer's orders, biggest first.
    let ada = model
        .search(&Search::new(Query::term("customer", "ada")).sort("total_cents", SortOrder::Desc))
        .await
        .unwrap();
    let ids: Vec<&str> = ada.hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["o3", "o1"]);
    assert_eq!(ada.total, 2);
    assert_eq!(ada.hits[0].document.total_cents, 1200);
    let pears = model
        .search(&Search::new(Query::terms("skus", ["pear"])))
        .await
        .unwrap();
    assert_eq!(
        pears.hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["o1"],
        "o4 bought pears too, but it is archived"
    );
    let full_text = model
        .search(&Search::new(Query::matches("cancel_reason", "mind")))
        .await
        .unwrap();
    assert_eq!(full_text.hits.len(), 1);
    assert_eq!(full_text.hits[0].id, "o2");

    // count.
    assert_eq!(model.count(&Query::match_all()).await.unwrap(), 3);
    assert_eq!(
        model.count(&Query::term("status", "open")).await.unwrap(),
        1
    );
    assert_eq!(
        model
            .count(&Query::from(Query::range("total_cents").gte(700).lt(1000)))
            .await
            .unwrap(),
        2
    );

    // The read side agrees with the write side, order by order.
    for id in ["o1", "o2", "o3"] {
        let (state, _) = shop.orders.load(id).await.unwrap();
        let summary = model.get(id).await.unwrap().expect(id);
        assert_eq!(summary.items, state.items(), "{id}");
        assert_eq!(summary.total_cents, state.total_cents(), "{id}");
        assert_eq!(summary.customer, state.customer, "{id}");
        let status = match state.status {
            OrderStatus::Open => "open",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Cancelled => "cancelled",
            other => panic!("{id} is {other:?}"),
        };
        assert_eq!(summary.status, status, "{id}");
    }
    let expected = assert_read_model_is_the_fold(&client, &summaries.name, &store).await;
    assert_eq!(expected, 4);

    // The runner: healthy, every order event applied once, the customer events filtered out
    // in PostgreSQL, its checkpoint in PostgreSQL.
    let status = wait_caught_up(&handle, &store).await;
    assert!(status.is_ready() && status.is_live(), "{status:?}");
    assert_eq!(status.state, ProjectionState::Running);
    assert_eq!(status.applied, 13, "13 order events, no customer event");
    assert_eq!(status.last_error, None);
    handle.shutdown().await;
    let checkpoint = store.load_checkpoint(&summaries.name).await.unwrap();
    assert!(checkpoint >= Some(store.head().await.unwrap()));

    delete_indices(&client, index, 1).await;
    drop_schema(&store).await;
}
