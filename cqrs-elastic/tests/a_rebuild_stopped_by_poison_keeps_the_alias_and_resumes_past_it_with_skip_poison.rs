//! A poison event stops a rebuild before the swap (the default): the error names it, the alias
//! stays on the serving index and the half-built index stays with its progress. The next
//! rebuild, told to [`skip_poison`](cqrs_elastic::RebuildOptions::skip_poison), resumes from
//! that progress instead of the start of the feed, lists the poison event in its report, swaps,
//! and the new index holds the fold of every other event.

mod support;

use std::time::Duration;

use cqrs_core::projection::ProjectionError;
use cqrs_core::InMemoryEventStore;
use cqrs_elastic::{EsError, EsIndex, EsQueries, RebuildOptions};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_stopped_by_poison_keeps_the_alias_and_resumes_past_it_with_skip_poison() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 100, 2).await; // events 1..=300
    let corrupt = append(&store, "account-corrupt", "Corrupt", json!({})).await; // 301
    for i in 0..99 {
        append(
            &store,
            &format!("account-{i}"),
            "Deposited",
            json!({ "cents": 2 }),
        )
        .await;
    } // 302..=400
    let accounts = Accounts {
        name: unique_name("poisoned"),
    };
    // The serving index exists (empty): a rebuild needs the alias, not a live projector.
    projector(&client, accounts.clone()).await;
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();
    // Batches of 100, progress saved after every batch: the poison is in the fourth batch,
    // so the first attempt saves 300 and stops there.
    let options = || {
        RebuildOptions::default()
            .batch_size(100)
            .checkpoint_interval(Duration::ZERO)
            .drain(Duration::ZERO)
    };

    let stopped = index
        .rebuild(accounts.clone(), store.clone(), store.clone(), options())
        .await;
    match &stopped {
        Err(error @ EsError::Projection(ProjectionError::Poison(rejected))) => {
            assert!(!error.is_transient(), "poison is not retried: {error:?}");
            assert_eq!(
                rejected.iter().map(|r| r.position).collect::<Vec<_>>(),
                [corrupt],
                "the error names the poison event"
            );
        }
        other => panic!("expected the rebuild to stop on poison, got {other:?}"),
    }
    let serving = index.version_name(1);
    let half_built = index.version_name(2);
    assert_eq!(
        index.current().await.unwrap().map(|v| v.index),
        Some(serving.clone()),
        "the alias stays on the serving index"
    );
    assert!(
        index_exists(&client, &half_built).await,
        "the half-built index stays for the next rebuild"
    );

    let report = index
        .rebuild(
            accounts.clone(),
            store.clone(),
            store.clone(),
            options().skip_poison(true),
        )
        .await
        .expect("the rebuild skipping poison");
    assert_eq!(
        report.events, 100,
        "the rebuild resumed from the progress saved at 300, not from the start: {report:?}"
    );
    assert_eq!(
        report
            .rejected
            .iter()
            .map(|r| r.position)
            .collect::<Vec<_>>(),
        [corrupt],
        "the report lists the skipped poison event"
    );
    let head = all_events(&store).await.last().map(|e| e.position);
    assert_eq!(Some(report.position), head, "{report:?}");
    assert_eq!(report.to.index, half_built);
    assert_eq!(
        index.current().await.unwrap().map(|v| v.index),
        Some(half_built.clone())
    );
    assert!(!index_exists(&client, &serving).await, "v1 deleted");

    // The new index is the fold of every event but the poison one.
    let events: Vec<_> = all_events(&store)
        .await
        .into_iter()
        .filter(|e| e.position != corrupt)
        .collect();
    let expected = expected_accounts(&events);
    assert_eq!(expected.len(), 100);
    let model = EsQueries::for_projection(client.clone(), &accounts).unwrap();
    for (id, doc) in &expected {
        assert_eq!(&model.get(id).await.unwrap(), doc, "{id}");
    }
    assert_eq!(model.get("account-corrupt").await.unwrap(), None);

    let _ = client
        .indices()
        .delete(elasticsearch::indices::IndicesDeleteParts::Index(&[
            &half_built,
        ]))
        .send()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skip_poison_rebuild_interrupted_past_the_poison_still_lists_it_and_holds_its_key() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 50, 1).await; // 1..=100
    open_account(&store, "account-p", "pat", "c9").await; // 101
    let corrupt = append(&store, "account-p", "Corrupt", json!({})).await; // 102
    let held = append(&store, "account-p", "Deposited", json!({ "cents": 3 })).await; // 103
    seed_accounts(&store, 50, 1).await; // 104..=203
    let accounts = Accounts {
        name: unique_name("skipped"),
    };
    projector(&client, accounts.clone()).await;
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();
    let options = || {
        RebuildOptions::default()
            .batch_size(100)
            .checkpoint_interval(Duration::ZERO)
            .drain(Duration::ZERO)
            .skip_poison(true)
    };

    // The first attempt fills to the head (skipping the poison, saving past it) and stops
    // for good when its next catch-up asks for the head, before the swap.
    let (feed, mut paused) = PausingFeed::new(store.clone(), None, Some(2));
    tokio::select! {
        result = index.rebuild(accounts.clone(), feed, store.clone(), options()) => {
            panic!("the first attempt ended: {result:?}")
        }
        step = paused.recv() => assert_eq!(step, Some("head")),
    }

    let report = index
        .rebuild(accounts.clone(), store.clone(), store.clone(), options())
        .await
        .expect("the resumed rebuild");
    assert_eq!(
        report
            .rejected
            .iter()
            .map(|r| r.position)
            .collect::<Vec<_>>(),
        [corrupt, held],
        "the report lists the poison the first attempt skipped, and the event held behind it"
    );
    let model = EsQueries::for_projection(client.clone(), &accounts).unwrap();
    let doc = model.get("account-p").await.unwrap().expect("opened");
    assert_eq!(
        doc.balance, 0,
        "the deposit after the poison stays held back"
    );
}
