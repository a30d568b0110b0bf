//! The server path: with both `DATABASE_URL` and `ELASTICSEARCH_URL` set, the quick start runs on
//! PostgreSQL with its read side in the search node, and the node answers what the in-memory
//! read model answers for the same feed. With either unset the test fails and says which one is
//! missing: a test that passes without running proves nothing (`scripts/test.sh` sets both).

use cqrs_core::projection::Projection;
use cqrs_core::{Position, ReadAll, RecordedEvent};
use cqrs_elastic::EsReadModel;
use cqrs_postgres::PgEventStore;
use elasticsearch::indices::IndicesDeleteParts;
use quickstart::order::OrderStatus;
use quickstart::read_side::{EsOrderSummaries, OrderSummaries, ReadSide, Summaries};
use quickstart::summary;

/// The variable `name`; the test fails, naming it, when it is unset or empty.
fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "the server path needs {name}: run scripts/test.sh, or set DATABASE_URL and \
             ELASTICSEARCH_URL to running servers"
        ),
    }
}

async fn summary_events(store: &PgEventStore) -> Vec<RecordedEvent> {
    let (mut events, mut after) = (Vec::new(), Position::START);
    loop {
        let batch = (store.read_all(after, 100, &summary::filter()).await).expect("feed");
        if batch.events.is_empty() && batch.next == after {
            return events;
        }
        after = batch.next;
        events.extend(batch.events);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_path_runs_the_walkthrough_on_postgres_and_the_search_node() {
    let (database, search) = (
        required_env("DATABASE_URL"),
        required_env("ELASTICSEARCH_URL"),
    );
    // Names of this test's own, so it runs beside `cargo run` and other tests.
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let schema = format!("quickstart_test_{}", &suffix[..16]);
    let name = format!("quickstart-orders-test-{suffix}");
    let store = quickstart::postgres::fresh_store(&database, &schema)
        .await
        .expect("a fresh schema");
    let client = cqrs_elastic::connect(&search).expect("a client");
    let read_side = ReadSide::on_node(client.clone(), &name, &store)
        .await
        .expect("the read model on the node");
    quickstart::run(store.clone(), read_side)
        .await
        .expect("the quick start runs on the servers");

    let model = EsReadModel::new(client.clone(), EsOrderSummaries::new(&name)).expect("name");
    let queries = Summaries::Node(model.clone());
    assert_eq!(
        queries.count_by_status(OrderStatus::Shipped).await.unwrap(),
        1
    );
    assert_eq!(
        queries
            .count_by_status(OrderStatus::Cancelled)
            .await
            .unwrap(),
        2
    );
    let bobs = queries.cancelled_of("bob").await.expect("search");
    assert_eq!(
        bobs.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["2"]
    );

    // The node holds what the in-memory read model folds from the same feed.
    let memory = OrderSummaries::new();
    memory
        .apply(&summary_events(&store).await)
        .await
        .expect("fold in memory");
    for id in ["1", "2", "3"] {
        let on_node = queries.get(id).await.expect("get");
        assert_eq!(on_node, memory.get(id), "order {id}");
        assert!(on_node.is_some(), "order {id}");
    }

    // Tidy up: the index and the schema are this test's alone.
    if let Some(current) = model.index().current().await.expect("alias") {
        let response = client
            .indices()
            .delete(IndicesDeleteParts::Index(&[&current.index]))
            .send()
            .await
            .expect("delete the index");
        assert!(response.status_code().is_success());
    }
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(store.pool())
        .await
        .expect("drop the schema");
}
