//! A command whose append conflicts is retried on the state it decided on, brought up to date
//! with the events written since: a stream's events never change, so the state is still right
//! at its version. Before, each retry replayed the whole stream again, so a long stream under
//! contention cost a full replay per conflict.

mod repository_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::testing::{Tally, TallyCommand, TallyError, TallyEvent};
use cqrs_core::{
    Aggregate, AppendEvents, ExpectedVersion, NewEvent, Repository, RetryPolicy, StreamId, Version,
};
use repository_support::Counted;
use serde_json::json;

/// Another writer that appends one event to the tally's stream during each of the first
/// `races` decisions, so those attempts conflict.
struct Interloper {
    store: Counted,
    races: u32,
    decisions: AtomicU32,
}

/// A [`Tally`] whose first decisions race the [`Interloper`].
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
        if interloper.decisions.fetch_add(1, Ordering::SeqCst) < interloper.races {
            interloper
                .store
                .append(
                    &StreamId::with_category(Tally::TYPE, "contested").expect("id"),
                    ExpectedVersion::Any,
                    vec![NewEvent::new("Added", 2, json!({ "amount": 1 }))],
                )
                .await
                .expect("the interloper appends");
        }
        self.0.handle(command, &()).await
    }
}

/// A repository over `store` whose first `races` decisions conflict, on a stream of 50 events.
async fn contested(store: &Counted, races: u32) -> Repository<Contested, Counted> {
    let tallies = Repository::<Tally, _>::new(store.clone());
    tallies
        .execute("contested", &TallyCommand::Add(vec![2; 50]))
        .await
        .expect("fifty events");
    let interloper = Arc::new(Interloper {
        store: store.clone(),
        races,
        decisions: AtomicU32::new(0),
    });
    Repository::with_services(store.clone(), interloper)
        .with_retry(RetryPolicy::new(5).delays(Duration::from_millis(1), Duration::from_millis(1)))
}

#[tokio::test]
async fn a_retry_after_a_conflict_folds_only_the_events_written_since() {
    let store = Counted::default();
    let repository = contested(&store, 2).await;
    store.calls.reset_folded();

    let outcome = repository
        .execute("contested", &TallyCommand::Add(vec![10]))
        .await
        .expect("the third attempt lands");

    assert_eq!(outcome.attempts, 3, "two conflicts, then the append");
    assert_eq!(
        store.calls.folded(),
        50 + 1 + 1,
        "the first load, then each interloper's event once"
    );
    assert_eq!(outcome.version, Version::new(53));
}

#[tokio::test]
async fn the_state_a_retry_decides_on_is_the_one_a_full_replay_gives() {
    let store = Counted::default();
    let repository = contested(&store, 3).await;

    repository
        .execute("contested", &TallyCommand::Add(vec![10]))
        .await
        .expect("the fourth attempt lands");

    let (state, version) = repository.load("contested").await.expect("loads");
    assert_eq!(version, Version::new(54));
    assert_eq!(
        (state.0.total, state.0.applied),
        (50 * 2 + 3 + 10, 54),
        "fifty twos, the interlopers' three ones and the command's ten"
    );
}

#[tokio::test]
async fn a_cached_state_behind_another_writer_catches_up_instead_of_reloading() {
    let store = Counted::default();
    let repository = contested(&store, 0).await.with_cache(16);
    repository
        .execute("contested", &TallyCommand::Add(vec![1]))
        .await
        .expect("warms the cache");
    // Another process writes: the cached state is now behind.
    store
        .append(
            &StreamId::with_category(Tally::TYPE, "contested").expect("id"),
            ExpectedVersion::Any,
            vec![NewEvent::new("Added", 2, json!({ "amount": 5 }))],
        )
        .await
        .expect("another writer appends");
    store.calls.reset_folded();

    let outcome = repository
        .execute("contested", &TallyCommand::Add(vec![1]))
        .await
        .expect("lands on the second attempt");

    assert_eq!(outcome.attempts, 2);
    assert_eq!(store.calls.folded(), 1, "only the other writer's event");
    let (state, _) = repository.load("contested").await.expect("loads");
    assert_eq!(state.0.total, 50 * 2 + 1 + 5 + 1);
}
