//! Blue/green rebuild: while queries run in a loop and the live projector keeps applying new
//! events, a rebuild fills `{name}_v2` from the start of the feed and swaps the alias. A query
//! round and appends run while the alias moves; no query fails or sees a partial index, the
//! alias ends on v2, v1 is gone, and v2 holds exactly what a full fold of the feed gives.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::projection::{ProjectionRunner, RunnerOptions};
use cqrs_core::InMemoryEventStore;
use cqrs_elastic::{EsIndex, EsQueries, Query, RebuildOptions, Search, SortOrder};
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
        handle.wait_for(head, Duration::from_secs(60)).await.is_ok(),
        "live projection caught up"
    );

    // Queries in a loop: counts only ever grow (new accounts open, none close). Between two
    // rounds the loop reads where the alias points, so the rounds that ran while it moved
    // from v1 to v2 show: they began with the alias on v1 and ended with it on v2. The first
    // reading is taken before the rebuild starts, and the loop stops only after a round that
    // began once the rebuild had returned, so such a round exists whatever the timing.
    let model = EsQueries::for_projection(client.clone(), &accounts).unwrap();
    let v1 = index.current().await.unwrap().expect("an alias over v1");
    let stop = Arc::new(AtomicBool::new(false));
    let queries = tokio::spawn({
        let (model, index, stop, mut alias) =
            (model.clone(), index.clone(), stop.clone(), v1.index.clone());
        async move {
            let (mut rounds, mut errors, mut last_count) = (0_u64, Vec::new(), 0_u64);
            let mut across_the_swap = 0_u64;
            loop {
                let stopping = stop.load(Ordering::SeqCst);
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
                    .sort("balance", SortOrder::Desc)
                    .size(5);
                if let Err(e) = model.search(&search).await {
                    errors.push(format!("search: {e:?}"));
                }
                if let Err(e) = model.get("account-1").await {
                    errors.push(format!("get: {e:?}"));
                }
                rounds += 1;
                let now = alias_target(&index).await;
                if now != alias {
                    across_the_swap += 1;
                    alias = now;
                }
                if stopping {
                    return (rounds, errors, across_the_swap, alias);
                }
            }
        }
    });

    // New events keep arriving until the rebuild has returned, applied by the live projector;
    // the same alias readings show appends made while the alias moved.
    let writer = tokio::spawn({
        let (store, index, stop, mut alias) =
            (store.clone(), index.clone(), stop.clone(), v1.index.clone());
        async move {
            let (mut across_the_swap, mut i) = (0_u64, 200);
            loop {
                let stopping = stop.load(Ordering::SeqCst);
                let stream = format!("account-{i}");
                open_account(&store, &stream, "late", "c9").await;
                append(&store, &stream, "Deposited", json!({ "cents": 3 })).await;
                append(&store, "account-0", "Deposited", json!({ "cents": 1 })).await;
                i += 1;
                let now = alias_target(&index).await;
                if now != alias {
                    across_the_swap += 1;
                    alias = now;
                }
                if stopping {
                    return (across_the_swap, alias);
                }
            }
        }
    });

    let report = index
        .rebuild(
            accounts.clone(),
            store.clone(),
            store.clone(),
            RebuildOptions::default()
                .batch_size(300)
                // Queries that reached the old index before the swap finish on it, however slow the
                // node: it is deleted only after this.
                .drain(Duration::from_secs(3)),
        )
        .await
        .expect("rebuild");
    stop.store(true, Ordering::SeqCst);
    let (writes_across, writer_alias) = writer.await.unwrap();
    let (rounds, errors, queries_across, query_alias) = queries.await.unwrap();

    assert!(
        errors.is_empty(),
        "queries failed during the rebuild: {errors:?}"
    );
    assert_eq!(
        (queries_across, query_alias.as_str()),
        (1, report.to.index.as_str()),
        "one query round ran while the alias moved from v1 to v2 ({rounds} rounds)"
    );
    assert_eq!(
        (writes_across, writer_alias.as_str()),
        (1, report.to.index.as_str()),
        "appends went on while the alias moved from v1 to v2"
    );
    // Events appended past the rebuild's last catch-up reached v2 only through the live
    // projector writing across the swap (checked below: v2 ends equal to a full fold).
    let late = all_events(&store).await;
    assert!(
        late.last().unwrap().position > report.position,
        "events were appended after the rebuild's last catch-up at {}",
        report.position
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
    assert!(handle.wait_for(head, Duration::from_secs(60)).await.is_ok());
    handle.shutdown().await;
    let expected = expected_accounts(&all_events(&store).await);
    assert!(expected.len() > 200, "late accounts were opened");
    for (id, doc) in &expected {
        assert_eq!(&model.get(id).await.unwrap(), doc, "{id} after the rebuild");
    }
    assert_eq!(
        model.count(&Query::match_all()).await.unwrap(),
        expected.len() as u64
    );
}

/// The index the alias points to; a failed reading fails the test, saying so.
async fn alias_target(index: &EsIndex) -> String {
    let current = index.current().await.expect("reading the alias");
    current
        .expect("the alias exists throughout the rebuild")
        .index
}
