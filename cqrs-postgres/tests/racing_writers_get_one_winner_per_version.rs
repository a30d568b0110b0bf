//! 32 writers race on one stream with expected versions: exactly one wins each version, every
//! loser gets a typed `Conflict` naming where the stream is.

mod support;

use cqrs_core::{AppendEvents, Error, ExpectedVersion, NewEvent, ReadStream, StreamId, Version};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_writers_one_winner_per_version() {
    let store = support::store_with(34).await;
    let stream = StreamId::new("contested-1").expect("id");
    let rounds = 20u64;
    for round in 0..rounds {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(32));
        let tasks: Vec<_> = (0..32u64)
            .map(|writer| {
                let store = store.clone();
                let stream = stream.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let event = NewEvent::new("Claimed", 1, json!({ "writer": writer }));
                    let expected = if round == 0 {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Exact(Version::new(round))
                    };
                    store.append(&stream, expected, vec![event]).await
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(outcome) => {
                    winners += 1;
                    assert_eq!(outcome.last_version, Version::new(round + 1));
                }
                Err(Error::Conflict {
                    actual, stream_id, ..
                }) => {
                    assert_eq!(stream_id, stream);
                    assert_eq!(actual, Version::new(round + 1));
                }
                Err(other) => panic!("a loser must get Conflict, got {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
    let events = store
        .read_stream(&stream, Version::new(1), 1000)
        .await
        .expect("read");
    let versions: Vec<u64> = events.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, (1..=rounds).collect::<Vec<_>>());
}
