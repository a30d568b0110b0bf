//! A command that conflicts on every attempt is tried exactly as often as the retry policy
//! allows, then fails with the store's `Conflict`; nothing of it is written.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::testing::{Tally, TallyCommand, TallyError, TallyEvent};
use cqrs_core::{
    Aggregate, AppendEvents, CommandError, Error, ExpectedVersion, InMemoryEventStore, NewEvent,
    ReadStream, Repository, RetryPolicy, StreamId, Version,
};
use serde_json::json;

/// Another writer that appends to the tally's stream during every decision, so each attempt's
/// expected version is stale by the time it appends.
struct Interloper {
    store: InMemoryEventStore,
    decisions: AtomicU32,
}

/// A [`Tally`] whose every decision races the [`Interloper`].
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Contested(Tally);

impl Aggregate for Contested {
    const TYPE: &'static str = Tally::TYPE;
    type Command = TallyCommand;
    type Event = TallyEvent;
    type Error = TallyError;
    type Services = Arc<Interloper>;

    fn apply(&mut self, event: &TallyEvent) {
        self.0.apply(event);
    }

    async fn handle(
        &self,
        command: &TallyCommand,
        interloper: &Arc<Interloper>,
    ) -> Result<Vec<TallyEvent>, TallyError> {
        interloper.decisions.fetch_add(1, Ordering::SeqCst);
        interloper
            .store
            .append(
                &StreamId::with_category(Tally::TYPE, "contested").expect("id"),
                ExpectedVersion::Any,
                vec![NewEvent::new("Added", 2, json!({ "amount": 1 }))],
            )
            .await
            .expect("the interloper appends");
        self.0.handle(command, &()).await
    }
}

#[tokio::test]
async fn a_command_that_always_conflicts_fails_with_conflict_after_max_attempts() {
    let store = InMemoryEventStore::new();
    let interloper = Arc::new(Interloper {
        store: store.clone(),
        decisions: AtomicU32::new(0),
    });
    let contested = Repository::<Contested, _>::with_services(store.clone(), interloper.clone())
        .with_retry(RetryPolicy::new(4).delays(Duration::from_millis(1), Duration::from_millis(1)));
    let outcome = contested
        .execute("contested", &TallyCommand::Add(vec![100]))
        .await;
    match &outcome {
        Err(CommandError::Store(Error::Conflict { .. })) => {}
        other => panic!("expected a conflict after the retries, got {other:?}"),
    }
    assert!(outcome
        .as_ref()
        .err()
        .is_some_and(|e| e.rejection().is_none()));
    assert_eq!(
        interloper.decisions.load(Ordering::SeqCst),
        4,
        "four attempts in all, as the policy says"
    );
    let stream = StreamId::with_category(Tally::TYPE, "contested").expect("id");
    let events = store
        .read_stream(&stream, Version::new(1), 100)
        .await
        .expect("read");
    assert_eq!(events.len(), 4, "only the interloper's events were written");
    assert!(events.iter().all(|e| e.payload == json!({ "amount": 1 })));
}

#[tokio::test]
async fn a_rejection_is_the_aggregates_own_error_and_not_retried() {
    let store = InMemoryEventStore::new();
    let tallies = Repository::<Tally, _>::new(store.clone());
    tallies
        .execute("closed", &TallyCommand::Close)
        .await
        .expect("close");
    let refused = tallies
        .execute("closed", &TallyCommand::Add(vec![1]))
        .await
        .expect_err("a closed tally refuses");
    assert_eq!(refused.rejection(), Some(&TallyError::Closed));
    assert_eq!(refused.to_string(), "command rejected: the tally is closed");
}
