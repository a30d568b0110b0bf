//! Blue/green rebuild: while queries run in a loop and the live projector keeps applying new
//! events, a rebuild fills `{name}_v2` from the start of the feed and swaps the alias. No
//! query fails or sees a partial index, the alias ends on v2, v1 is gone, and v2 holds exactly
//! what a full fold of the feed gives.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::projection::{ProjectionRunner, RunnerOptions};
use cqrs_core::InMemoryEventStore;
use cqrs_elastic::{EsIndex, Order, Query, ReadModel, RebuildOptions, Search};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_swaps_the_alias_while_queries_and_the_live_projector_go_on() {
    let client = client();
    let store = InMemoryEventStore::new();
    seed_accounts(&store, 200, 10).await; // 2 200 events
    let accounts = Accounts {
        name: unique_name("rebuild"),
    };
    let index = EsIndex::for_projection(client.clone(), &accounts).unwrap();
    let live = projector(&client, accounts.clone()).await;
    let handle = ProjectionRunner::new(live, store.clone(), store.clone())
        .with_signal(store.clone())
        .with_options(
            RunnerOptions::new()
                .batch_size(200)
                .poll_interval(Duration::from_millis(50)),
        )
        .spawn();
    let head = all_events(&store).await.last().unwrap().position;
    assert!(
        handle.wait_for(head, Duration::from_secs(60)).await,
        "live projection caught up"
    );

    // Queries in a loop: counts only ever grow (new accounts open, none close).
    let model = ReadModel::for_projection(client.clone(), &accounts).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let queries = tokio::spawn({
        let (model, stop) = (model.clone(), stop.clone());
        async move {
            let (mut rounds, mut errors, mut last_count) = (0_u64, Vec::new(), 0_u64);
            while !stop.load(Ordering::Relaxed) {
                match model.count(&Query::match_all()).await {
                    Ok(count) => {
                        if count < last_count || count < 200 {
                            errors.push(format!("count went from {last_count} to {count}"));
                        }
                        last_count = count;
                    }
                    Err(e) => errors.push(format!("count: {e:?}")),
                }
                let search = Search::new(Query::range("balance").gte(0))
                    .sort("balance", Order::Desc)
                    .size(5);
                if let Err(e) = model.search(&search).await {
                    errors.push(format!("search: {e:?}"));
                }
                if let Err(e) = model.get("account-1").await {
                    errors.push(format!("get: {e:?}"));
                }
                rounds += 1;
            }
            (rounds, errors)
        }
    });

    // New events keep arriving during the rebuild, applied by the live projector.
    let writer = tokio::spawn({
        let store = store.clone();
        async move {
            for i in 200..260 {
                let stream = format!("account-{i}");
                open_account(&store, &stream, "late", "c9").await;
                append(&store, &stream, "Deposited", json!({ "cents": 3 })).await;
                append(&store, "account-0", "Deposited", json!({ "cents": 1 })).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    let report = index
        .rebuild(
            &accounts,
            &store,
            &store,
            RebuildOptions::default()
                .batch_size(300)
                .drain(Duration::from_millis(300)),
        )
        .await
        .expect("rebuild");
    writer.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (rounds, errors) = queries.await.unwrap();

    assert!(
        errors.is_empty(),
        "queries failed during the rebuild: {errors:?}"
    );
    assert!(
        rounds > 10,
        "the query loop ran throughout ({rounds} rounds)"
    );
    assert_eq!(report.from.index, format!("{}_v1", accounts.name));
    assert_eq!(report.to.index, format!("{}_v2", accounts.name));
    assert!(
        report
            .checkpoint_name
            .starts_with(&format!("{}@v2#", accounts.name)),
        "{report:?}"
    );
    assert!(
        report.events >= 2200 && report.rejected.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        index.current().await.unwrap().unwrap().index,
        report.to.index
    );
    assert!(
        !index_exists(&client, &report.from.index).await,
        "v1 deleted"
    );

    // The live projector writes into v2 through the alias now; v2 ends equal to a full fold.
    let head = all_events(&store).await.last().unwrap().position;
    assert!(handle.wait_for(head, Duration::from_secs(60)).await);
    handle.shutdown().await;
    let expected = expected_accounts(&all_events(&store).await);
    assert_eq!(expected.len(), 260);
    for (id, doc) in &expected {
        assert_eq!(&model.get(id).await.unwrap(), doc, "{id} after the rebuild");
    }
    assert_eq!(model.count(&Query::match_all()).await.unwrap(), 260);
}
