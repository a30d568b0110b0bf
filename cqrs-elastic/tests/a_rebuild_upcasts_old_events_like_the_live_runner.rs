//! A rebuild reads old events as the live runner does: through the same upcasters. A feed with
//! deposits of an old schema (`{"euros": n}`, schema 1) and of the current one (`{"cents": n}`,
//! schema 2) rebuilds into the documents the live runner built, not into a failed rebuild or
//! other balances.

mod support;

use cqrs_core::projection::{ProjectionRunner, RunnerOptions};
use cqrs_core::{AppendEvents, ExpectedVersion, InMemoryEventStore, NewEvent, StreamId, Upcasters};
use cqrs_elastic::{EsIndex, EsQueries, RebuildOptions};
use serde_json::json;
use support::*;

/// Deposits of schema 1 held euros; schema 2 holds cents.
fn upcasters() -> Upcasters {
    Upcasters::new().with_fn("Deposited", 1, |payload| {
        let euros = payload["euros"].as_i64().ok_or("euros missing")?;
        Ok(json!({ "cents": euros * 100 }))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_upcasts_old_events_like_the_live_runner() {
    let client = client();
    let store = InMemoryEventStore::new();
    for i in 0..20 {
        let stream = StreamId::new(format!("account-{i}")).unwrap();
        let events = vec![
            NewEvent::new("Opened", 1, json!({ "owner": "ada", "customer": "c1" })),
            NewEvent::new("Deposited", 1, json!({ "euros": 2 })),
            NewEvent::new("Deposited", 2, json!({ "cents": 150 })),
        ];
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    let accounts = Accounts {
        name: unique_name("upcast"),
    };
    let live = projector(&client, accounts.clone()).await;
    ProjectionRunner::new(live, store.clone(), store.clone())
        .with_options(RunnerOptions::new().upcasters(upcasters()))
        .catch_up()
        .await
        .expect("the live runner upcasts the old deposits");
    let model: EsQueries<AccountView> =
        EsQueries::for_projection(client.clone(), &accounts).unwrap();
    let live_doc = model.get("account-7").await.unwrap().expect("account-7");
    assert_eq!((live_doc.balance, live_doc.deposits), (350, 2));

    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();
    let options = RebuildOptions::default().upcasters(upcasters());
    let report = index
        .rebuild(accounts.clone(), store.clone(), store.clone(), options)
        .await
        .expect("the rebuild upcasts the old deposits");
    assert!(report.rejected.is_empty(), "{report:?}");
    for i in 0..20 {
        let id = format!("account-{i}");
        let doc = model.get(&id).await.unwrap().expect("rebuilt");
        assert_eq!(doc, live_doc, "{id} as the live runner built it");
    }
    let _ = client
        .indices()
        .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[
            &report.to.index,
        ]))
        .send()
        .await;
}
