//! A new stream's large batch is written by `COPY`. An append whose future is dropped midway
//! (a caller's timeout, a client gone, the runner dropping an apply when its term ends) must
//! leave the pooled connection it used answering each statement with that statement's own
//! result: sqlx 0.8's `COPY` is not cancel-safe (a drop while it waits for the server leaves
//! the connection a reply out of step, or in copy mode), and the next user of the connection,
//! any statement of the store, would read another statement's rows.

mod support;

use std::time::Duration;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, StreamId};

const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_stream_append_cut_off_during_its_copy_leaves_its_connection_usable() {
    // One connection, so every round reuses the one the cut-off append had.
    let store = support::store_with(1).await.without_group_commit();
    for round in 0..60i32 {
        let writer = store.clone();
        let append = tokio::spawn(async move {
            let stream = StreamId::new(format!("s-{round}")).expect("stream id");
            let events = (0..100)
                .map(|i| NewEvent::new("Filled", 1, serde_json::json!({ "i": i })))
                .collect();
            writer
                .append(&stream, ExpectedVersion::NoStream, events)
                .await
        });
        let delay = u64::try_from(round).expect("a round") * 150;
        tokio::time::sleep(Duration::from_micros(delay)).await;
        append.abort();
        let _ = append.await;

        for value in [round, round + 1000] {
            let answer = tokio::time::timeout(
                PATIENCE,
                sqlx::query_scalar::<_, i32>("SELECT $1::int")
                    .bind(value)
                    .fetch_one(store.pool()),
            )
            .await;
            let Ok(answer) = answer else {
                panic!("round {round}: the connection did not answer in {PATIENCE:?}");
            };
            assert_eq!(
                answer.as_ref().ok(),
                Some(&value),
                "round {round}: a statement read another one's answer: {answer:?}"
            );
        }
    }
}
