//! Blue/green rebuild from the PostgreSQL feed: while a task queries the read model in a loop
//! and a writer keeps placing orders (applied by the live runner through the alias) from
//! before the rebuild until after it returned, through the alias swap, `EsIndex::rebuild`
//! fills `{name}_v2` from the start of the feed (its checkpoint in PG) and swaps the alias.
//! A query round runs while the alias moves, as do writes; no query ever fails or sees a
//! partial index, the alias ends on v2, v1 is gone, and v2 holds exactly the fold of the whole
//! feed: no write racing the swap is lost.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::ProjectionState;
use cqrs_core::{CheckpointStore, EventFilter, FeedBatch, Position, ReadAll};
use cqrs_elastic::{EsQueries, Query, RebuildOptions, Search, SortOrder};
use cqrs_postgres::PgEventStore;
use integration_tests::domain::OrderCommand;
use integration_tests::*;

/// Orders the live projector wrote before the rebuild; only new orders come during it.
const SEEDED: usize = 80;

/// Orders the writer places at each of the rebuild's held steps.
const PER_GATE: u64 = 3;

/// The PostgreSQL feed as the rebuild reads it, holding the rebuild at two steps: its second
/// `head` (its last catch-up, after it blocked writes to v1) until the writer placed
/// [`PER_GATE`] more orders and the live runner failed on the block (`live_blocked`, told by
/// the test, which watches the live runner); its third (after the swap) until the writer
/// placed [`PER_GATE`] more. The rebuild owns its feed (it runs in the engine's tasks).
struct GatedFeed {
    store: PgEventStore,
    live_blocked: tokio::sync::watch::Receiver<bool>,
    placed: tokio::sync::watch::Receiver<u64>,
    heads: AtomicUsize,
    gates_passed: Arc<AtomicUsize>,
}

impl GatedFeed {
    async fn more_orders(&self) {
        let mut placed = self.placed.clone();
        let start = *placed.borrow_and_update();
        tokio::time::timeout(PATIENCE, placed.wait_for(|n| *n >= start + PER_GATE))
            .await
            .expect("the writer places orders while the rebuild is held")
            .expect("the writer runs");
    }
}

#[async_trait]
impl ReadAll for GatedFeed {
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
    ) -> cqrs_core::Result<FeedBatch> {
        self.store.read_all(after, limit, filter).await
    }

    async fn head(&self) -> cqrs_core::Result<Position> {
        match self.heads.fetch_add(1, Ordering::SeqCst) + 1 {
            2 => {
                self.more_orders().await;
                let mut blocked = self.live_blocked.clone();
                tokio::time::timeout(PATIENCE, blocked.wait_for(|b| *b))
                    .await
                    .expect("the live runner blocked on v1")
                    .expect("the test watches the live runner");
                self.gates_passed.fetch_add(1, Ordering::SeqCst);
            }
            3 => {
                self.more_orders().await;
                self.gates_passed.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        self.store.head().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_from_postgres_never_interrupts_queries() {
    let store = pg_store().await;
    let client = es_client();
    let read_model = summaries_read_model(&client, "rebuild").await;
    let (summaries, index) = (read_model.projection(), read_model.index());
    let shop = Arc::new(Shop::new(&store));
    shop.register_customers().await;
    shop.random_orders("seed", SEEDED, 3).await;
    let live = pg_runner(read_model.projector(), &store, quick_options()).spawn();
    wait_caught_up(&live, &store).await;
    let model: EsQueries<OrderSummary> = read_model.queries().clone();
    let seeded_live = model.count(&Query::match_all()).await.unwrap();
    assert!(seeded_live > 40, "{seeded_live} live orders");
    let seed_0 = model.get("seed-0").await.unwrap();

    // Queries in a loop. New orders only open during the rebuild (none is archived), so the
    // number of live orders never drops: a drop would be a query on a partial index. Between
    // two rounds the loop reads where the alias points: the first reading (v1) is taken
    // before the rebuild starts and the last round begins after it returned, so one round
    // runs while the alias moves from v1 to v2, and it shows.
    let v1 = index
        .current()
        .await
        .unwrap()
        .expect("an alias over v1")
        .index;
    let stop = Arc::new(AtomicBool::new(false));
    let queries = tokio::spawn({
        let (model, stop, index, mut alias) = (model.clone(), stop.clone(), index.clone(), v1);
        async move {
            let (mut rounds, mut errors, mut last) = (0_u64, Vec::new(), seeded_live);
            let mut across_the_swap = 0_u64;
            loop {
                let stopping = stop.load(Ordering::SeqCst);
                match model.count(&Query::match_all()).await {
                    Ok(count) if count < last => {
                        errors.push(format!("count dropped from {last} to {count}"));
                    }
                    Ok(count) => last = count,
                    Err(e) => errors.push(format!("count: {e:?}")),
                }
                let search = Search::new(Query::term("status", "open"))
                    .sort("total_cents", SortOrder::Desc)
                    .size(20);
                if let Err(e) = model.search(&search).await {
                    errors.push(format!("search: {e:?}"));
                }
                match model.get("seed-0").await {
                    Ok(doc) if doc == seed_0 => {}
                    Ok(doc) => errors.push(format!("seed-0 changed to {doc:?}")),
                    Err(e) => errors.push(format!("get: {e:?}")),
                }
                rounds += 1;
                let current = index.current().await.expect("reading the alias");
                let now = current
                    .expect("the alias exists throughout the rebuild")
                    .index;
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
    // Orders keep opening throughout the rebuild, through the alias swap, until it returns.
    // The rebuild's feed holds it at two steps until the writer has placed more orders: just
    // after it blocked writes to v1 (its last catch-up is about to read the head), and just
    // after the swap; at the first it also waits until the live runner is seen failing on the
    // block, so the swap happens while the live runner's writes are in flight.
    let (placed, placed_rx) = tokio::sync::watch::channel(0_u64);
    let writing = Arc::new(AtomicBool::new(true));
    let writer = tokio::spawn({
        let (shop, writing) = (shop.clone(), writing.clone());
        async move {
            let (mut orders, mut last) = (0_u64, None);
            while writing.load(Ordering::SeqCst) || orders == 0 {
                let id = format!("late-{orders}");
                shop.order(
                    &id,
                    OrderCommand::Place {
                        customer: "c1".to_owned(),
                    },
                )
                .await;
                last = Some(
                    shop.order(
                        &id,
                        OrderCommand::AddItem {
                            sku: "plum".to_owned(),
                            quantity: 1,
                            unit_cents: 99,
                        },
                    )
                    .await,
                );
                orders += 1;
                placed.send_replace(orders);
            }
            (orders, last.expect("orders during the rebuild"))
        }
    });
    let (blocked, live_blocked) = tokio::sync::watch::channel(false);
    let gates_passed = Arc::new(AtomicUsize::new(0));
    let feed = GatedFeed {
        store: store.clone(),
        live_blocked,
        placed: placed_rx,
        heads: AtomicUsize::new(0),
        gates_passed: gates_passed.clone(),
    };
    // The live runner is seen failing on the block while the rebuild holds it.
    let watch_live = async {
        wait_for_status(&live, PATIENCE, "the live runner blocked on v1", |s| {
            s.state == ProjectionState::Retrying
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("write-blocked by a rebuild"))
        })
        .await;
        blocked.send_replace(true);
    };

    let rebuild = index.rebuild(
        summaries.clone(),
        feed,
        store.clone(),
        RebuildOptions::default()
            .batch_size(50)
            // Queries that reached the old index before the swap finish on it, however slow the
            // node: it is deleted only after this.
            .drain(Duration::from_secs(3)),
    );
    let (report, ()) = tokio::join!(rebuild, watch_live);
    let report = report.expect("the rebuild");
    writing.store(false, Ordering::SeqCst);
    assert_eq!(
        gates_passed.load(Ordering::SeqCst),
        2,
        "orders were placed while v1 was blocked and after the swap"
    );
    let (late, last_write) = writer.await.expect("the writer");
    wait_caught_up_to(&live, last_write).await;
    assert_eq!(
        model.count(&Query::match_all()).await.unwrap(),
        seeded_live + late,
        "every order is there after the swap"
    );
    stop.store(true, Ordering::SeqCst);
    let (rounds, errors, across_the_swap, alias) = queries.await.expect("the query loop");
    assert!(
        errors.is_empty(),
        "queries failed during the rebuild: {errors:#?}"
    );
    assert_eq!(
        (across_the_swap, alias),
        (1, index.version_name(2)),
        "one query round ran while the alias moved from v1 to v2 ({rounds} rounds)"
    );

    assert_eq!(report.from.index, index.version_name(1));
    assert_eq!(report.to.index, index.version_name(2));
    assert!(report.rejected.is_empty(), "{report:?}");
    assert_eq!(
        index.current().await.unwrap().map(|v| v.index),
        Some(index.version_name(2)),
        "the alias points to v2"
    );
    let stored = store
        .load_checkpoint(&report.checkpoint_name)
        .await
        .unwrap();
    assert_eq!(
        stored,
        Some(report.position),
        "the rebuild kept its progress in PostgreSQL"
    );
    let v1 = client
        .indices()
        .exists(elasticsearch::indices::IndicesExistsParts::Index(&[
            &report.from.index,
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(v1.status_code().as_u16(), 404, "v1 is deleted");

    live.shutdown().await;
    let documents = assert_read_model_is_the_fold(&client, &report.to.index, &store).await;
    assert_eq!(documents, SEEDED + usize::try_from(late).unwrap());

    delete_indices(&client, index, 2).await;
    drop_schema(&store).await;
}
