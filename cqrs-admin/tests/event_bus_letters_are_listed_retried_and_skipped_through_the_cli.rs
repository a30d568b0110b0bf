//! `cqrs bus-letters list | retry | skip`: messages an event-bus consumer parked are listed
//! (bytes shown as text), and retry / skip file the consumer's requests; `status` lists the
//! consumer.

mod support;

use cqrs_admin::inspect::{BusLetterView, Overview, RedriveRequest, SubscriberKind};
use cqrs_core::bus::{BusDeadLetterStore, BusLetter, MessageId};
use cqrs_postgres::testing::fresh_store;
use support::cqrs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_messages_are_listed_and_marked_for_retry_or_skip() {
    let store = fresh_store().await.expect("a fresh schema");
    for (offset, key) in [(5, "order-1"), (6, "order-1"), (9, "order-2")] {
        let letter = BusLetter::new(
            "billing",
            MessageId::new("orders", 0, offset),
            "no such account",
        )
        .with_key(Some(key.as_bytes().to_vec()))
        .with_headers(vec![(
            "event_type".to_owned(),
            Some(b"OrderPlaced".to_vec()),
        )])
        .with_payload(Some(br#"{"total":12}"#.to_vec()));
        store.park_message(letter).await.expect("parked");
    }

    let overview: Overview = cqrs(&store, &["status", "--json"]).await.json();
    let billing = overview
        .subscriber("billing")
        .expect("the consumer is listed");
    assert_eq!(billing.kind, SubscriberKind::Consumer);
    assert_eq!(billing.dead_letters, 3);

    let letters: Vec<BusLetterView> = cqrs(&store, &["bus-letters", "list", "--json"])
        .await
        .json();
    assert_eq!(letters.len(), 3);
    assert_eq!(letters[0].message, "orders/0/5");
    assert_eq!(letters[0].key.as_deref(), Some("order-1"));
    assert_eq!(letters[0].payload.as_deref(), Some(r#"{"total":12}"#));
    assert_eq!(letters[0].headers[0].1.as_deref(), Some("OrderPlaced"));
    let table = cqrs(&store, &["bus-letters", "list", "--consumer", "billing"]).await;
    assert_eq!(table.stdout.lines().count(), 4, "{}", table.stdout);
    assert!(
        table.stdout.starts_with("CONSUMER  MESSAGE"),
        "{}",
        table.stdout
    );

    let retried = cqrs(&store, &["bus-letters", "retry", "billing", "orders/0/9"]).await;
    assert_eq!(retried.code, 0, "{retried:?}");
    let skipped: serde_json::Value = cqrs(
        &store,
        &[
            "bus-letters",
            "skip",
            "billing",
            "--key",
            "order-1",
            "--topic",
            "orders",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(skipped["marked"], 2);
    let letters: Vec<BusLetterView> = cqrs(&store, &["bus-letters", "list", "--json"])
        .await
        .json();
    let requests: Vec<Option<RedriveRequest>> = letters.iter().map(|l| l.request).collect();
    assert_eq!(
        requests,
        [
            Some(RedriveRequest::Skip),
            Some(RedriveRequest::Skip),
            Some(RedriveRequest::Retry)
        ]
    );

    let bad = cqrs(&store, &["bus-letters", "retry", "billing", "orders-9"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
    let missing = cqrs(&store, &["bus-letters", "retry", "billing", "orders/1/1"]).await;
    assert_eq!(missing.code, 3, "{missing:?}");
    let no_topic = cqrs(
        &store,
        &["bus-letters", "skip", "billing", "--key", "order-1"],
    )
    .await;
    assert_eq!(no_topic.code, 2, "{no_topic:?}");
}
