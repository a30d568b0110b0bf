//! A process manager handles an event by issuing two commands, one per step, with
//! `CommandContext::caused_by_step`: handling the event again issues neither twice, the two
//! steps do not collide, and both carry the event's correlation and causation.

use cqrs_core::testing::{Tally, TallyCommand};
use cqrs_core::{
    CommandContext, CommandId, EventId, InMemoryEventStore, Metadata, ReadStream, Repository,
    Version,
};
use uuid::Uuid;

/// Runs `Add(5)` on tally `id` under `context`; whether it was a duplicate, and the command id
/// its event records.
async fn add(
    tallies: &Repository<Tally, InMemoryEventStore>,
    id: &str,
    context: CommandContext,
) -> (bool, Option<CommandId>) {
    let outcome = tallies
        .execute_with(id, &TallyCommand::Add(vec![5]), context)
        .await
        .expect("lands");
    let recorded = tallies
        .store()
        .read_stream(&tallies.stream_id(id).expect("id"), outcome.version, 1)
        .await
        .expect("read");
    (outcome.duplicate, recorded[0].metadata.command_id)
}

#[tokio::test]
async fn each_step_lands_once_however_often_its_event_is_handled() {
    let store = InMemoryEventStore::new();
    let tallies = Repository::<Tally, _>::new(store.clone());
    let correlation = Uuid::now_v7();
    let cause = Metadata::new(EventId::new()).with_correlation_id(correlation);

    // The event is handled twice (a redelivery): both steps, each time.
    let mut ids = Vec::new();
    for handling in 0..2 {
        for (id, step) in [("from", "debit"), ("to", "credit")] {
            let (duplicate, command_id) =
                add(&tallies, id, CommandContext::caused_by_step(&cause, step)).await;
            assert_eq!(
                duplicate,
                handling == 1,
                "{step}: the second handling finds the first outcome"
            );
            ids.push(command_id.expect("a step's command has an id"));
        }
    }
    assert_eq!(ids[0], ids[2], "a step's command id is stable");
    assert_ne!(ids[0], ids[1], "two steps of one event do not collide");

    let (_, single) = add(&tallies, "single", CommandContext::caused_by(&cause)).await;
    assert!(
        single.is_some_and(|s| !ids.contains(&s)),
        "a step differs from the event's single command"
    );
    let other_cause = Metadata::new(EventId::new());
    let (duplicate, other) = add(
        &tallies,
        "from",
        CommandContext::caused_by_step(&other_cause, "debit"),
    )
    .await;
    assert!(
        !duplicate && other != Some(ids[0]),
        "the same step of another event is another command"
    );

    for id in ["from", "to"] {
        let (state, version) = tallies.load(id).await.expect("load");
        let expected = if id == "from" { 10 } else { 5 };
        assert_eq!(state.total, expected, "{id}: each command once");
        let stream = tallies.stream_id(id).expect("id");
        let first = &store
            .read_stream(&stream, Version::new(1), 1)
            .await
            .expect("read")[0];
        assert_eq!(first.metadata.correlation_id, Some(correlation));
        assert_eq!(first.metadata.causation_id, Some(cause.event_id.as_uuid()));
        assert!(version >= Version::new(1));
    }
}
