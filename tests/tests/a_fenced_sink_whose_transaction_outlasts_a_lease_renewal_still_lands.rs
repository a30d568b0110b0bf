//! A sink fenced by its lease (`PgEventStore::lease_holds` in its own transaction) locks the
//! lease row until that transaction ends, and its own worker's renewal updates that row. When
//! the check came first, as the recipe said, a transaction open longer than the time left for
//! a renewal made the worker's renewal wait on the worker's own sink: the term was lost, the
//! batch dropped, and the same batch applied again, without end. The check comes last now,
//! just before the commit, and holds the row for the commit alone.

use std::time::Duration;

use cqrs_core::projection::{ProjectionRunner, RunnerOptions};
use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId};
use integration_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_sink_whose_transaction_outlasts_a_lease_renewal_still_lands() {
    let store = pg_store().await;
    // Each batch's transaction stays open a whole lease time: past any renewal's deadline.
    // Three seconds leave a renewal (every second) most of two to answer on a busy machine.
    let ttl = Duration::from_secs(3);
    let model = FencedVersions::new(&store, "slow_fenced").slow(ttl);
    model.create().await;
    let stream = StreamId::new("order-1").expect("a stream id");
    let events = (0..3)
        .map(|i| NewEvent::new("Changed", 1, serde_json::json!({ "i": i })))
        .collect();
    // Where the last event landed: the head read now could still be short of it, while
    // another test's transaction holds the feed's horizon back.
    let last = store
        .append(&stream, ExpectedVersion::Any, events)
        .await
        .expect("append")
        .position;
    let options = RunnerOptions::new().lease_ttl(ttl).batch_size(1);
    let handle = ProjectionRunner::for_store(model.clone(), &store)
        .with_options(options)
        .spawn();

    let reached = handle.wait_for(last, PATIENCE).await;
    let status = handle.status();
    handle.shutdown().await;
    reached.unwrap_or_else(|e| panic!("the projection never reached the head: {e}; {status:?}"));
    let state = model.state().await;
    assert_eq!(state.versions["order-1"], 3, "{state:?}");
    assert_eq!(
        (state.duplicates, state.refused),
        (0, 0),
        "each batch applied once, none refused: {state:?}"
    );
    drop_schema(&store).await;
}
