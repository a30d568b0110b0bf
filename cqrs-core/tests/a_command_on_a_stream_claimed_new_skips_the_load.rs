//! `CommandContext::new_stream`: a command on a stream its sender claims is new decides on the
//! initial state without reading the store. A wrong claim costs one failed append and a load,
//! never a wrong event, and is not one of the command's retries; a cached state wins over it.

mod repository_support;

use cqrs_core::testing::{Tally, TallyCommand, TallyError};
use cqrs_core::{CommandContext, CommandError, Repository, RetryPolicy, Version};
use repository_support::Counted;

fn claimed_new() -> CommandContext {
    CommandContext::new().new_stream()
}

#[tokio::test]
async fn a_command_claiming_a_new_stream_decides_without_reading_the_store() {
    let store = Counted::default();
    let tallies = Repository::<Tally, _>::new(store.clone());

    let outcome = tallies
        .execute_with("fresh", &TallyCommand::Add(vec![3, 4]), claimed_new())
        .await
        .expect("the command runs");

    assert_eq!(outcome.version, Version::new(2));
    assert_eq!(outcome.attempts, 1);
    assert_eq!(store.calls.reads(), 0, "nothing read before the append");
    assert_eq!((store.calls.appends(), store.calls.refused()), (1, 0));
    let (state, version) = tallies.load("fresh").await.expect("loads");
    assert_eq!((state.total, version), (7, Version::new(2)));
}

#[tokio::test]
async fn a_wrong_claim_loads_the_stream_and_decides_on_its_state_without_using_a_retry() {
    let store = Counted::default();
    // One attempt only: a wrong claim must not use it up.
    let tallies = Repository::<Tally, _>::new(store.clone()).with_retry(RetryPolicy::never());
    tallies
        .execute("old", &TallyCommand::Add(vec![5, 7]))
        .await
        .expect("the stream gets two events");
    let reads_before = store.calls.reads();

    let outcome = tallies
        .execute_with("old", &TallyCommand::Add(vec![1]), claimed_new())
        .await
        .expect("the command runs on the stream's state");

    assert_eq!(outcome.version, Version::new(3));
    assert_eq!(outcome.attempts, 2, "the guess, then the loaded state");
    assert_eq!(
        store.calls.reads() - reads_before,
        1,
        "one load after the guess"
    );
    assert_eq!(store.calls.refused(), 1, "the guess's append wrote nothing");
    let (state, version) = tallies.load("old").await.expect("loads");
    assert_eq!(
        (state.total, state.applied, version),
        (13, 3, Version::new(3))
    );
}

#[tokio::test]
async fn a_wrong_claim_on_a_closed_stream_is_refused_by_its_state_and_writes_nothing() {
    let store = Counted::default();
    let tallies = Repository::<Tally, _>::new(store.clone());
    tallies
        .execute("shut", &TallyCommand::Close)
        .await
        .expect("the tally closes");

    // The initial state would accept the addition; the stream's state refuses it.
    let refused = tallies
        .execute_with("shut", &TallyCommand::Add(vec![9]), claimed_new())
        .await
        .expect_err("a closed tally refuses");

    assert!(
        matches!(refused, CommandError::Rejected(TallyError::Closed)),
        "{refused:?}"
    );
    let (state, version) = tallies.load("shut").await.expect("loads");
    assert_eq!(
        (state.total, state.closed, version),
        (0, true, Version::new(1))
    );
}

#[tokio::test]
async fn a_cached_state_wins_over_the_claim() {
    let store = Counted::default();
    let tallies = Repository::<Tally, _>::new(store.clone()).with_cache(16);
    tallies
        .execute_with("warm", &TallyCommand::Add(vec![2]), claimed_new())
        .await
        .expect("the first command runs");

    let outcome = tallies
        .execute_with("warm", &TallyCommand::Add(vec![3]), claimed_new())
        .await
        .expect("the second command runs on the cached state");

    assert_eq!((outcome.version, outcome.attempts), (Version::new(2), 1));
    assert_eq!(store.calls.reads(), 0);
    assert_eq!((store.calls.appends(), store.calls.refused()), (2, 0));
}

#[tokio::test]
async fn a_wrong_claim_never_answers_a_command_that_records_nothing_from_the_initial_state() {
    let store = Counted::default();
    let tallies = Repository::<Tally, _>::new(store.clone()).with_retry(RetryPolicy::never());
    tallies
        .execute("quiet", &TallyCommand::Add(vec![1, 1]))
        .await
        .expect("the stream gets two events");
    let reads_before = store.calls.reads();

    let outcome = tallies
        .execute_with("quiet", &TallyCommand::Nothing, claimed_new())
        .await
        .expect("nothing to record");

    assert_eq!(
        outcome.version,
        Version::new(2),
        "the stream's version, not the guess's"
    );
    assert_eq!(store.calls.reads() - reads_before, 1);
}

#[tokio::test]
async fn a_refusal_on_a_stream_claimed_new_is_confirmed_on_the_stream_before_it_is_answered() {
    let store = Counted::default();
    let tallies = Repository::<Tally, _>::new(store.clone()).with_retry(RetryPolicy::never());

    let refused = tallies
        .execute_with(
            "big",
            &TallyCommand::Add(vec![Tally::CAP + 1]),
            claimed_new(),
        )
        .await
        .expect_err("over the cap");

    assert!(
        matches!(refused, CommandError::Rejected(TallyError::OverCap { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.calls.reads(),
        1,
        "the refusal was taken on the stream"
    );
    assert_eq!(store.calls.appends(), 0);
}

#[tokio::test]
async fn a_wrong_claim_under_a_policy_that_retries_for_ever_neither_panics_nor_stops_retrying() {
    // `RetryPolicy::new(u32::MAX)` is how a caller says "retry for ever": the free attempt a
    // wrong claim takes must not overflow the budget (a panic in debug, a budget of 0 after).
    let store = Counted::default();
    let tallies = Repository::<Tally, _>::new(store.clone()).with_retry(RetryPolicy::new(u32::MAX));
    tallies
        .execute("old", &TallyCommand::Add(vec![5]))
        .await
        .expect("the stream gets an event");

    let outcome = tallies
        .execute_with("old", &TallyCommand::Add(vec![1]), claimed_new())
        .await
        .expect("the command runs on the stream's state");

    assert_eq!(outcome.version, Version::new(2));
    assert_eq!(outcome.attempts, 2, "the guess, then the loaded state");
}
