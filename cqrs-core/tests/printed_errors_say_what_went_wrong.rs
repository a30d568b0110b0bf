//! An error printed with `{}` (or logged) says what went wrong on its own: a refused command's
//! message is the aggregate's reason, and a decode error carries serde's, down to the dead
//! letter a projection parks.

use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{
    DeadLetterStore, PoisonPolicy, Projection, ProjectionError, ProjectionRunner, Rejected,
    RunnerOptions,
};
use cqrs_core::testing::{Tally, TallyCommand, TallyEvent};
use cqrs_core::{
    AppendEvents, CommandError, DomainEvent, Error, ExpectedVersion, InMemoryEventStore, NewEvent,
    Position, RecordedEvent, Repository, StreamId,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// serde's reason for `{"amount": "lots"}` where a `u64` belongs.
const SERDE_REASON: &str = "invalid type: string \"lots\", expected u64";

#[tokio::test]
async fn a_refused_commands_message_is_the_aggregates_reason() {
    let store = InMemoryEventStore::new();
    let repository = Repository::<Tally, _>::new(store);
    repository
        .execute("1", &TallyCommand::Close)
        .await
        .expect("closed");
    let err = repository
        .execute("1", &TallyCommand::Add(vec![1]))
        .await
        .expect_err("a closed tally refuses");
    assert!(err.rejection().is_some(), "{err:?}");
    assert_eq!(err.to_string(), "command rejected: the tally is closed");
}

#[test]
fn a_store_failure_behind_a_command_error_shows_its_cause() {
    let err: CommandError<std::io::Error> = Error::EmptyAppend.into();
    assert_eq!(err.to_string(), "an append needs at least one event");
}

#[test]
fn a_decode_errors_message_carries_serdes_reason() {
    let err = TallyEvent::decode("Added", json!({ "amount": "lots" })).expect_err("bad payload");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("could not decode event Added"), "{text}");
    assert!(text.contains(SERDE_REASON), "{text}");
}

/// Decodes each event as a [`TallyEvent`], rejecting (with the error's text) what does not
/// decode.
struct Decoding;

#[async_trait]
impl Projection for Decoding {
    fn name(&self) -> &str {
        "decoding"
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let rejected: Vec<Rejected> = events
            .iter()
            .filter_map(|event| {
                let err = event.decode::<TallyEvent>().err()?;
                Some(Rejected::new(event.position, err))
            })
            .collect();
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(ProjectionError::Poison(rejected))
        }
    }
}

#[tokio::test]
async fn a_parked_undecodable_events_dead_letter_names_serdes_reason() {
    let store = InMemoryEventStore::new();
    let stream = StreamId::new("tally-7").expect("id");
    let position = store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new("Added", 2, json!({ "amount": "lots" }))],
        )
        .await
        .expect("append")
        .position;
    let handle = ProjectionRunner::new(Decoding, store.clone(), store.clone())
        .with_dead_letters(store.clone())
        .with_signal(store.clone())
        .with_options(RunnerOptions::new().poison(PoisonPolicy::Park))
        .spawn();
    if let Err(error) = handle.wait_for(position, WAIT).await {
        panic!("the runner did not reach the event: {error}");
    }
    handle.shutdown().await;

    let letters = store
        .dead_letters("decoding", Position::START, 10)
        .await
        .expect("letters");
    assert_eq!(letters.len(), 1, "{letters:?}");
    let error = &letters[0].error;
    assert!(
        error.contains("could not decode event Added at tally-7@1"),
        "{error}"
    );
    assert!(error.contains(SERDE_REASON), "{error}");
}
