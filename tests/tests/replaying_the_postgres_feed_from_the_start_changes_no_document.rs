//! Replay: after the projection caught up, its PostgreSQL checkpoint is reset to the start and
//! a new runner applies the whole feed again over the same index. Every event is delivered a
//! second time, yet no document is written: every `_source` and every `_seq_no` is unchanged.

use cqrs_core::CheckpointStore;
use integration_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_postgres_feed_from_the_start_changes_no_document() {
    let store = pg_store().await;
    let client = es_client();
    let read_model = summaries_read_model(&client, "replay").await;
    let (summaries, index) = (read_model.projection(), read_model.index());
    let shop = Shop::new(&store);
    shop.register_customers().await;
    shop.random_orders("o", 60, 7).await;
    let events = all_events(&store).await;
    let order_events = events
        .iter()
        .filter(|e| e.stream_id.category() == "order")
        .count();
    let order_events = u64::try_from(order_events).unwrap();

    let first = pg_runner(read_model.projector(), &store, quick_options()).spawn();
    let status = wait_caught_up(&first, &store).await;
    assert_eq!(status.applied, order_events);
    first.shutdown().await;
    let before = raw_documents(&client, &summaries.name).await;
    assert_read_model_is_the_fold(&client, &summaries.name, &store).await;
    assert!(
        before.values().any(RawDocument::is_tombstone),
        "the feed archives some orders, so the replay meets tombstones too"
    );

    // A checkpoint only moves forward when saved; a replay starts it over explicitly.
    store.reset_checkpoint(&summaries.name).await.unwrap();
    assert_eq!(store.load_checkpoint(&summaries.name).await.unwrap(), None);
    let replay = pg_runner(read_model.projector(), &store, quick_options()).spawn();
    let status = wait_caught_up(&replay, &store).await;
    assert_eq!(
        status.applied, order_events,
        "the replay delivered every order event again"
    );
    assert_eq!(status.parked, 0);
    replay.shutdown().await;

    let after = raw_documents(&client, &summaries.name).await;
    assert_eq!(before.len(), after.len());
    for (id, doc) in &before {
        assert_eq!(
            after.get(id),
            Some(doc),
            "{id}: the replay changed the stored document"
        );
    }
    assert_read_model_is_the_fold(&client, &summaries.name, &store).await;

    delete_indices(&client, index, 1).await;
    drop_schema(&store).await;
}
