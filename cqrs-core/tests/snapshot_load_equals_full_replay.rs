//! Loading an aggregate from its snapshot plus the events after it gives the same state as
//! replaying its whole stream, and as folding the events its commands recorded: no event is
//! skipped, and none is applied twice.

use cqrs_core::testing::{Tally, TallyCommand, TallyEvent};
use cqrs_core::{
    Aggregate, CommandError, InMemoryEventStore, Repository, SnapshotPolicy, SnapshotStore, Version,
};
use proptest::prelude::*;

fn command() -> impl Strategy<Value = TallyCommand> {
    prop_oneof![
        12 => prop::collection::vec(0u64..100, 0..=5).prop_map(TallyCommand::Add),
        4 => Just(TallyCommand::Nothing),
        1 => Just(TallyCommand::Close),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn snapshot_load_equals_full_replay(
        commands in prop::collection::vec(command(), 0..40),
        every in 1u64..20,
        read_batch in 1usize..8,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(check(commands, every, read_batch))?;
    }
}

async fn check(
    commands: Vec<TallyCommand>,
    every: u64,
    read_batch: usize,
) -> Result<(), TestCaseError> {
    let store = InMemoryEventStore::new();
    let snapshotting = Repository::<Tally, _>::new(store.clone())
        .with_snapshots(SnapshotPolicy::every(every))
        .with_read_batch(read_batch);
    let replaying = Repository::<Tally, _>::new(store.clone());

    let mut accepted: Vec<TallyEvent> = Vec::new();
    for command in &commands {
        match snapshotting.execute("t", command).await {
            Ok(outcome) => {
                prop_assert_eq!(outcome.version.get(), len(&accepted) + len(&outcome.events));
                accepted.extend(outcome.events);
            }
            Err(CommandError::Rejected(_)) => {}
            Err(other) => return Err(TestCaseError::fail(format!("store failed: {other}"))),
        }
    }

    let (via_snapshot, snapshot_version) = snapshotting.load("t").await.expect("load");
    let (via_replay, replay_version) = replaying.load("t").await.expect("load");
    let mut folded = Tally::default();
    for event in &accepted {
        folded.apply(event);
    }
    let expected_version = Version::new(len(&accepted));

    prop_assert_eq!(&via_snapshot, &via_replay);
    prop_assert_eq!(&via_snapshot, &folded);
    prop_assert_eq!(snapshot_version, expected_version);
    prop_assert_eq!(replay_version, expected_version);
    prop_assert_eq!(
        via_snapshot.applied,
        expected_version.get(),
        "an event applied twice"
    );

    // The snapshot path was taken: once the stream passed a multiple of `every`, there is a
    // snapshot at or after the last such multiple, holding exactly the events up to it.
    let stream = snapshotting.stream_id("t").expect("stream id");
    let snapshot = store.load_snapshot(&stream).await.expect("load snapshot");
    let last_multiple = expected_version.get() / every * every;
    match snapshot {
        None => prop_assert_eq!(last_multiple, 0),
        Some(snapshot) => {
            prop_assert!(snapshot.version.get() >= last_multiple);
            prop_assert!(snapshot.version <= expected_version);
            let state: Tally = serde_json::from_value(snapshot.state).expect("snapshot state");
            prop_assert_eq!(state.applied, snapshot.version.get());
        }
    }
    Ok(())
}

fn len(events: &[TallyEvent]) -> u64 {
    u64::try_from(events.len()).expect("few events")
}
