//! A stream whose stored version is `i64::MAX` (written by hand: no append can take it) replays
//! as a typed error: the replay reads on from the version after the last it folded, which does
//! not exist, and must neither overflow nor wrap around to fold the stream again.

mod support;

use cqrs_core::{ReadStream, StreamId, Version};

#[tokio::test]
async fn a_stored_version_at_the_top_of_the_range_replays_as_an_error_not_a_panic() {
    let store = support::store().await;
    sqlx::query(&format!(
        "INSERT INTO {}.events (stream_id, version, event_id, event_type, schema_version, \
         payload, metadata) VALUES ('top-1', $1, gen_random_uuid(), 'E', 1, '{{}}', '{{}}')",
        store.schema().as_str()
    ))
    .bind(i64::MAX)
    .execute(store.pool())
    .await
    .expect("a row at the top version");
    let stream = StreamId::new("top-1").expect("id");

    let replayed = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut folded = 0;
            store
                .replay(&stream, Version::new(1), usize::MAX, &mut |_| {
                    folded += 1;
                    Ok(())
                })
                .await
        })
    }
    .await
    .expect("the replay does not panic");

    assert!(replayed.is_err(), "{replayed:?}");
}
