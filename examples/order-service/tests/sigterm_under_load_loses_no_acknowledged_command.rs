//! SIGTERM during load: the real binary, on a free port with its own schema and read model,
//! takes concurrent commands; SIGTERM makes it stop accepting, finish the requests in flight,
//! shut its workers down and exit 0. Then every command it acknowledged has its events in
//! PostgreSQL, the read side's checkpoint was saved (no document is ahead of it), and a service
//! started again on the same schema resumes from that checkpoint: it applies the events after
//! it, none before.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cqrs_core::{CheckpointStore, Position, ReadAll, Repository};
use cqrs_elastic::{EsReadModel, Query, Search};
use order_service::Service;
use quickstart::order::{Order, OrderStatus};
use quickstart::read_side::EsOrderSummaries;
use quickstart::summary;
use reqwest::StatusCode;
use serde_json::json;
use support::{client, config, eventually, required_env, Binary, PATIENCE};
use tokio::sync::Notify;

/// Concurrent clients.
const CLIENTS: usize = 8;

/// Commands acknowledged before the signal.
const BEFORE_SIGNAL: usize = 40;

/// Summary events in `(after, until]`.
async fn summary_events(store: &impl ReadAll, after: Position, until: Position) -> u64 {
    let (mut count, mut from) = (0, after);
    loop {
        let batch = (store.read_all(from, 500, &summary::filter()).await).expect("read the feed");
        count += batch.events.iter().filter(|e| e.position <= until).count() as u64;
        if batch.events.is_empty() || batch.next >= until || batch.next == from {
            return count;
        }
        from = batch.next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_loses_no_acknowledged_command_and_saves_the_checkpoint() {
    let (config, names) = config();
    let binary = Binary::start(&names, &[]).await;
    let base = binary.base.clone();

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let mut clients = Vec::new();
    for client_no in 0..CLIENTS {
        let (base, acknowledged, count, enough) = (
            base.clone(),
            acknowledged.clone(),
            count.clone(),
            enough.clone(),
        );
        clients.push(tokio::spawn(async move {
            let http = client();
            for n in 0.. {
                let id = format!("c{client_no}-{n}");
                let body = json!({ "customer": format!("client-{client_no}"), "lines": [{ "sku": "widget", "quantity": 1, "unit_price": 100 }] });
                match http.post(format!("{base}/orders/{id}")).json(&body).send().await {
                    Ok(response) if response.status() == StatusCode::CREATED => {
                        acknowledged.lock().unwrap().push(id);
                        if count.fetch_add(1, Ordering::SeqCst) + 1 == BEFORE_SIGNAL {
                            enough.notify_one();
                        }
                    }
                    // Refused, reset or 503 while stopping: not acknowledged, and the end.
                    _ => return,
                }
            }
        }));
    }
    tokio::time::timeout(PATIENCE, enough.notified())
        .await
        .expect("commands are acknowledged");
    binary.terminate().await;
    for client in clients {
        client.await.expect("no client panicked");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= BEFORE_SIGNAL);

    // Every acknowledged command's events are in PostgreSQL.
    let store = cqrs_postgres::PgEventStore::connect(&required_env("DATABASE_URL"))
        .await
        .expect("connect")
        .with_schema(cqrs_postgres::PgSchema::new(&names.schema).expect("schema"));
    let orders = Repository::<Order, _>::new(store.clone());
    for id in &acknowledged {
        let (order, _) = orders.load(id).await.expect("load");
        assert_ne!(
            order.status,
            OrderStatus::New,
            "acknowledged order {id} was lost"
        );
    }

    // The read side's checkpoint was saved, and no document is ahead of it.
    let checkpoint = (store.load_checkpoint(&names.index).await)
        .expect("load the checkpoint")
        .expect("a checkpoint was saved");
    assert!(checkpoint > Position::START);
    let client = cqrs_elastic::connect(&required_env("ELASTICSEARCH_URL")).expect("client");
    let model = EsReadModel::new(client, EsOrderSummaries::new(&names.index)).expect("model");
    let page = (model
        .search(&Search::new(Query::match_all()).size(1000))
        .await)
        .expect("search");
    for hit in &page.hits {
        assert!(
            hit.document.position <= checkpoint,
            "{} is ahead of the checkpoint",
            hit.id
        );
    }

    // Started again, the read side applies what came after the checkpoint, and nothing before.
    let service = Service::start(config).await.expect("a restart");
    let head = store.head().await.expect("head");
    let status = eventually("the read side catches up after the restart", || async {
        let status = service.read_side_status().await.expect("running");
        (status.position >= head).then_some(status)
    })
    .await;
    let now = store.head().await.expect("head");
    let lower = summary_events(&store, checkpoint, status.position).await;
    let upper = summary_events(&store, checkpoint, now).await;
    assert!(
        (lower..=upper).contains(&status.applied),
        "after the restart it applied {} events; {lower} to {upper} came after its checkpoint",
        status.applied
    );
    service.shutdown().await;
    names.clean_up().await;
}
