//! Versions are `bigint`s. An append whose expected version fits one but whose events would
//! take versions past it gets the same answer from a store that groups it as from one that
//! writes it alone (the stream is not at that version: a conflict), and no task panics on the
//! way: a lane counting versions up from the expected one must not overflow.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cqrs_core::{AppendEvents, Error, ExpectedVersion, NewEvent, StreamId, Version};
use cqrs_postgres::GroupCommit;
use serde_json::json;

#[tokio::test]
async fn an_append_whose_versions_would_pass_bigint_gets_one_answer_grouped_or_alone_and_panics_nothing(
) {
    // Alone in its test binary: any panic, on any thread, is this test's.
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&panics);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let grouped = support::store()
        .await
        .with_group_commit(GroupCommit::default().alone_below(0));
    let alone = support::store().await.without_group_commit();
    let top = i64::MAX.unsigned_abs();

    for store in [grouped, alone] {
        let stream = StreamId::new("top-1").expect("id");
        for (expected, events) in [(top, 1), (top - 1, 2)] {
            let err = store
                .append(
                    &stream,
                    ExpectedVersion::Exact(Version::new(expected)),
                    (0..events)
                        .map(|i| NewEvent::new("E", 1, json!({ "i": i })))
                        .collect(),
                )
                .await
                .expect_err("the stream is not at that version");
            assert!(
                matches!(err, Error::Conflict { actual, .. } if actual == Version::new(0)),
                "{err:?}"
            );
        }
        let written = store
            .append(
                &stream,
                ExpectedVersion::NoStream,
                vec![NewEvent::new("E", 1, json!({}))],
            )
            .await
            .expect("the store goes on");
        assert_eq!(written.last_version, Version::new(1));
    }

    assert_eq!(panics.load(Ordering::SeqCst), 0, "no task panicked");
}
