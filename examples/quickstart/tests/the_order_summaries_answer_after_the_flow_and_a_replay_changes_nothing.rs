//! The read side in memory: after the quick start's story, the order summaries answer what the
//! command side decided, and delivering the feed to them again changes nothing.

use cqrs_core::projection::Projection;
use cqrs_core::{InMemoryEventStore, Position, ReadAll, RecordedEvent};
use quickstart::money;
use quickstart::order::OrderStatus;
use quickstart::payment::PaymentStatus;
use quickstart::read_side::{OrderSummaries, ReadSide, Summaries};
use quickstart::summary::{self, OrderSummary};

/// Runs the story on a new in-memory store; returns the store and the summaries it fed.
async fn after_the_story() -> (InMemoryEventStore, OrderSummaries) {
    let store = InMemoryEventStore::new();
    let summaries = OrderSummaries::new();
    let read_side = ReadSide::in_memory(summaries.clone(), store.clone(), store.clone());
    quickstart::run(store.clone(), read_side)
        .await
        .expect("the quick start runs");
    (store, summaries)
}

/// The order and payment events of the feed, in order.
async fn summary_events(store: &InMemoryEventStore) -> Vec<RecordedEvent> {
    let batch = store
        .read_all(Position::START, 1000, &summary::filter())
        .await
        .expect("feed");
    batch.events
}

fn every(summaries: &OrderSummaries) -> Vec<OrderSummary> {
    summaries.find(|_| true)
}

#[tokio::test]
async fn after_the_flow_each_order_has_its_summary() {
    let (store, summaries) = after_the_story().await;

    let brief: Vec<_> = every(&summaries)
        .into_iter()
        .map(|s| {
            (
                s.id,
                s.customer,
                s.status,
                money(s.total),
                s.items,
                s.payment,
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            (
                "1".into(),
                "alice".into(),
                OrderStatus::Shipped,
                "34.99".into(),
                3,
                Some(PaymentStatus::Captured)
            ),
            (
                "2".into(),
                "bob".into(),
                OrderStatus::Cancelled,
                "132.38".into(),
                13,
                Some(PaymentStatus::Refunded)
            ),
            (
                "3".into(),
                "carol".into(),
                OrderStatus::Cancelled,
                "75.00".into(),
                6,
                Some(PaymentStatus::Refused)
            ),
        ]
    );
    let reason = |id| summaries.get(id).and_then(|s| s.cancel_reason);
    assert_eq!(reason("1"), None);
    assert_eq!(
        reason("2").as_deref(),
        Some("out of stock: gadget (12 wanted, 9 available)")
    );
    assert_eq!(
        reason("3").as_deref(),
        Some("payment refused: over the card limit of 50.00")
    );

    // Each summary was last updated by the last event of its order or its payment.
    let events = summary_events(&store).await;
    for summary in every(&summaries) {
        let last = events
            .iter()
            .filter(|e| summary::order_id(e).as_deref() == Some(summary.id.as_str()))
            .map(|e| e.position)
            .max();
        assert_eq!(Some(summary.position), last, "order {}", summary.id);
    }
}

#[tokio::test]
async fn the_queries_answer_from_the_summaries() {
    let (_, summaries) = after_the_story().await;
    let queries = Summaries::InMemory(summaries);

    let count = |status| {
        let queries = &queries;
        async move { queries.count_by_status(status).await.expect("count") }
    };
    assert_eq!(count(OrderStatus::Shipped).await, 1);
    assert_eq!(count(OrderStatus::Cancelled).await, 2);
    assert_eq!(count(OrderStatus::Placed).await, 0);
    let bobs: Vec<String> = (queries.cancelled_of("bob").await.expect("search"))
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(bobs, ["2"]);
    assert!(queries
        .cancelled_of("alice")
        .await
        .expect("search")
        .is_empty());
}

#[tokio::test]
async fn delivering_the_feed_again_changes_no_summary() {
    let (store, summaries) = after_the_story().await;
    let before = every(&summaries);
    let events = summary_events(&store).await;

    // The whole feed again, then again in small batches, as a runner restarted from an old
    // checkpoint would deliver it.
    summaries.apply(&events).await.expect("replay");
    for batch in events.chunks(4) {
        summaries.apply(batch).await.expect("replay in batches");
    }
    assert_eq!(every(&summaries), before);

    // A rebuild from an empty read model folds to the same summaries.
    let rebuilt = OrderSummaries::new();
    rebuilt.apply(&events).await.expect("rebuild");
    assert_eq!(every(&rebuilt), before);
}
