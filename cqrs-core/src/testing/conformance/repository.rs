//! The command pipeline on the store: commands, snapshots, upcasters and conflict retries.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::testing::{Tally, TallyCommand, TallyError};
use crate::{
    CommandContext, CommandError, CommandId, Error, ExpectedVersion, NewEvent, Repository,
    RetryPolicy, Snapshot, SnapshotPolicy, Upcasters, Version,
};

use super::ConformanceStore;

fn tally_upcasters() -> Upcasters {
    // Schema 1 of `Added` called the amount `value`.
    Upcasters::new().with_fn("Added", 1, |mut payload| {
        let value = payload
            .as_object_mut()
            .and_then(|o| o.remove("value"))
            .ok_or("schema 1 `Added` without `value`")?;
        Ok(json!({ "amount": value }))
    })
}

/// The command pipeline on this store: commands, rejections, snapshots, old payloads upcast on
/// load, and typed errors for undecodable events.
pub async fn the_repository_runs_commands_with_snapshots_and_upcasters<S: ConformanceStore>(
    store: S,
) {
    let tallies = Repository::<Tally, _>::new(store.clone())
        .with_snapshots(SnapshotPolicy::every(4))
        .with_upcasters(tally_upcasters());
    let s = tallies.stream_id("t1").expect("id");
    store
        .append(
            &s,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Added", 1, json!({ "value": 7 }))],
        )
        .await
        .expect("old event");
    let outcome = tallies
        .execute("t1", &TallyCommand::Add(vec![1, 2, 3]))
        .await
        .expect("add");
    assert_eq!(outcome.version, Version::new(4));
    assert_eq!(outcome.events.len(), 3);
    let position = outcome.position.expect("position");
    assert_eq!(
        store
            .read_stream(&s, Version::new(4), 1)
            .await
            .expect("read")[0]
            .position,
        position
    );
    let snapshot = store
        .load_snapshot(&s)
        .await
        .expect("load")
        .expect("due at version 4");
    assert_eq!(snapshot.version, Version::new(4));
    tallies
        .execute("t1", &TallyCommand::Add(vec![10]))
        .await
        .expect("add");
    let (state, version) = tallies.load("t1").await.expect("load");
    assert_eq!(
        (state.total, state.applied, version),
        (23, 5, Version::new(5))
    );
    let nothing = tallies
        .execute("t1", &TallyCommand::Nothing)
        .await
        .expect("nothing");
    assert!(nothing.events.is_empty() && nothing.position.is_none());
    tallies
        .execute("t1", &TallyCommand::Close)
        .await
        .expect("close");
    let refused = tallies.execute("t1", &TallyCommand::Add(vec![1])).await;
    assert!(
        matches!(refused, Err(CommandError::Rejected(TallyError::Closed))),
        "{refused:?}"
    );

    let broken = tallies.stream_id("t2").expect("id");
    store
        .append(
            &broken,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Added", 1, json!({ "oops": 1 }))],
        )
        .await
        .expect("append");
    match tallies.load("t2").await {
        Err(Error::Upcast {
            stream_id,
            version,
            event_type,
            schema_version,
            ..
        }) => {
            assert_eq!(
                (stream_id, version, event_type.as_str(), schema_version),
                (broken, Version::new(1), "Added", 1)
            );
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
    let unknown = tallies.stream_id("t3").expect("id");
    store
        .append(
            &unknown,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Exploded", 1, json!({}))],
        )
        .await
        .expect("append");
    match tallies.load("t3").await {
        Err(Error::Decode {
            stream_id,
            version,
            event_type,
            ..
        }) => {
            assert_eq!(
                (stream_id, version, event_type.as_str()),
                (Some(unknown), Some(Version::new(1)), "Exploded")
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    let wrong_shape = tallies.stream_id("t4").expect("id");
    store
        .append(
            &wrong_shape,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Added", 2, json!({ "amount": "many" }))],
        )
        .await
        .expect("append");
    assert!(matches!(
        tallies.load("t4").await,
        Err(Error::Decode { .. })
    ));
}

/// A load behind a snapshot folds every event after it, however many reads they take, to the
/// state a full replay gives.
pub async fn a_load_behind_a_snapshot_folds_every_event_after_it<S: ConformanceStore>(store: S) {
    let snapshotting = Repository::<Tally, _>::new(store.clone())
        .with_snapshots(SnapshotPolicy::every(3))
        .with_read_batch(2);
    for n in 1..=4 {
        snapshotting
            .execute("t", &TallyCommand::Add(vec![n]))
            .await
            .expect("add");
    }
    let plain = Repository::<Tally, _>::new(store.clone()).with_read_batch(2);
    for n in 5..=9 {
        plain
            .execute("t", &TallyCommand::Add(vec![n]))
            .await
            .expect("add");
    }
    let s = snapshotting.stream_id("t").expect("id");
    let snapshot = store.load_snapshot(&s).await.expect("load snapshot");
    assert_eq!(snapshot.map(|s| s.version), Some(Version::new(3)));
    let (state, version) = snapshotting.load("t").await.expect("load");
    let (full, full_version) = plain.load("t").await.expect("replay");
    assert_eq!((state.total, version), (45, Version::new(9)));
    assert_eq!((full.total, full_version), (45, Version::new(9)));
    assert_eq!(state.applied, full.applied);
}

/// A snapshot of another schema version, or one that does not deserialize, is ignored and the
/// aggregate loads by full replay.
pub async fn a_stale_or_broken_snapshot_is_ignored<S: ConformanceStore>(store: S) {
    let tallies =
        Repository::<Tally, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(1000));
    tallies
        .execute("s1", &TallyCommand::Add(vec![5, 6]))
        .await
        .expect("add");
    let s = tallies.stream_id("s1").expect("id");
    let lie = json!({ "total": 999, "applied": 2, "closed": false });
    store
        .save_snapshot(Snapshot::new(s.clone(), Version::new(2), 99, lie))
        .await
        .expect("save");
    let (state, _) = tallies.load("s1").await.expect("load");
    assert_eq!(
        state.total, 11,
        "a snapshot of another schema version is ignored"
    );
    store
        .save_snapshot(Snapshot::new(
            s.clone(),
            Version::new(3),
            1,
            json!("not a tally"),
        ))
        .await
        .expect("save");
    let (state, version) = tallies.load("s1").await.expect("load");
    assert_eq!(
        (state.total, version),
        (11, Version::new(2)),
        "a broken snapshot is ignored"
    );
}

/// A [`Tally`] whose commands on a fresh tally wait until every racer has loaded it, so the
/// racers provably start from the same version and all but one must conflict and retry.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct GatedTally(Tally);

impl crate::Aggregate for GatedTally {
    const TYPE: &'static str = Tally::TYPE;
    type Command = TallyCommand;
    type Event = crate::testing::TallyEvent;
    type Error = TallyError;
    type Services = Arc<tokio::sync::Barrier>;

    fn apply(&mut self, event: &Self::Event) {
        self.0.apply(event);
    }

    async fn handle(
        &self,
        command: &TallyCommand,
        all_loaded: &Self::Services,
    ) -> Result<Vec<Self::Event>, TallyError> {
        if self.0.applied == 0 {
            // Only the first attempts see an empty tally; retries see the winner's event.
            tokio::time::timeout(Duration::from_secs(30), all_loaded.wait())
                .await
                .expect("every racer loaded the empty tally within 30 s");
        }
        self.0.handle(command, &()).await
    }
}

/// Many commands race on one aggregate: each lands exactly once (conflicts retried), and a
/// command id sent twice lands once.
pub async fn racing_commands_are_retried_until_each_lands_once<S: ConformanceStore>(store: S) {
    const RACERS: u64 = 24;
    const RACER_TASKS: usize = 24;
    // No cache: a cache makes one repository's commands take turns, and nothing would race.
    let racing = Arc::new(
        Repository::<GatedTally, _>::with_services(
            store.clone(),
            Arc::new(tokio::sync::Barrier::new(RACER_TASKS)),
        )
        .with_retry(RetryPolicy::new(200)),
    );
    let mut tasks = Vec::new();
    for n in 1..=RACERS {
        let racing = racing.clone();
        tasks.push(tokio::spawn(async move {
            racing
                .execute("hot", &TallyCommand::Add(vec![n]))
                .await
                .map(|o| o.attempts)
        }));
    }
    let mut first_try = 0;
    let mut retried = 0;
    for task in tasks {
        if task.await.expect("task").expect("command lands") > 1 {
            retried += 1;
        } else {
            first_try += 1;
        }
    }
    assert_eq!(
        (first_try, retried),
        (1, RACERS - 1),
        "all racers loaded the same empty tally: one lands at once, every other one conflicts and retries"
    );
    let tallies = Arc::new(
        Repository::<Tally, _>::new(store.clone())
            .with_retry(RetryPolicy::new(200))
            .with_cache(16),
    );
    let (state, version) = tallies.load("hot").await.expect("load");
    assert_eq!(state.total, (1..=RACERS).sum::<u64>());
    assert_eq!(version, Version::new(RACERS));

    // A cached state goes stale when another writer appends: the next command conflicts once,
    // catches up on the other writer's event and lands.
    let warm = tallies
        .execute("hot", &TallyCommand::Nothing)
        .await
        .expect("warms the cache");
    assert_eq!(warm.attempts, 1);
    let other_writer = Repository::<Tally, _>::new(store.clone());
    other_writer
        .execute("hot", &TallyCommand::Add(vec![100]))
        .await
        .expect("the other writer lands");
    let stale = tallies
        .execute("hot", &TallyCommand::Add(vec![200]))
        .await
        .expect("lands after catching up");
    assert_eq!(
        (stale.attempts, stale.version),
        (2, Version::new(RACERS + 2)),
        "the stale cached state conflicts once, then the caught-up state lands"
    );
    let (state, _) = tallies.load("hot").await.expect("load");
    assert_eq!(state.total, (1..=RACERS).sum::<u64>() + 300);
    // A decision to record nothing never appends, so no conflict tells the cache it is stale:
    // it is confirmed on the stream's head before it is answered.
    other_writer
        .execute("hot", &TallyCommand::Add(vec![0]))
        .await
        .expect("the other writer lands again");
    let nothing = tallies
        .execute("hot", &TallyCommand::Nothing)
        .await
        .expect("records nothing");
    assert_eq!(
        nothing.version,
        Version::new(RACERS + 3),
        "the stream's version, not the stale cached one"
    );

    let context = CommandContext::new().command_id(CommandId::new());
    let mut twice = Vec::new();
    for _ in 0..2 {
        let tallies = tallies.clone();
        let context = context.clone();
        twice.push(tokio::spawn(async move {
            tallies
                .execute_with("hot", &TallyCommand::Add(vec![1000]), context)
                .await
        }));
    }
    let mut duplicates = 0;
    for task in twice {
        let outcome = task.await.expect("task").expect("lands");
        assert_eq!(outcome.events.len(), 1);
        duplicates += usize::from(outcome.duplicate);
    }
    assert_eq!(
        duplicates, 1,
        "one run appends, the other gets the first outcome"
    );
    let (state, version) = tallies.load("hot").await.expect("load");
    assert_eq!(
        (state.total, version),
        ((1..=RACERS).sum::<u64>() + 1300, Version::new(RACERS + 4))
    );
    let elsewhere = tallies
        .execute_with("cold", &TallyCommand::Add(vec![1]), context)
        .await;
    assert!(
        matches!(
            elsewhere,
            Err(CommandError::Store(Error::CommandIdReused { .. }))
        ),
        "a command id names one command on one aggregate: {elsewhere:?}"
    );
}

/// Commands claiming a new stream, all at once: on streams that exist (the claim is wrong), on
/// fresh ones, and two on each of some fresh ones (one of the two is wrong). Each lands exactly
/// once on its stream's real state, with no retry allowed: a wrong claim is not one.
pub async fn claimed_new_streams_land_once_whether_or_not_they_were_new<S: ConformanceStore>(
    store: S,
) {
    const STREAMS: u64 = 8;
    let tallies =
        Arc::new(Repository::<Tally, _>::new(store.clone()).with_retry(RetryPolicy::never()));
    for n in 0..STREAMS {
        tallies
            .execute(&format!("old-{n}"), &TallyCommand::Add(vec![10, 20]))
            .await
            .expect("an existing stream");
    }
    let claimed = || CommandContext::new().new_stream();
    let mut tasks = Vec::new();
    for n in 0..STREAMS {
        for id in [
            format!("old-{n}"),
            format!("fresh-{n}"),
            format!("twice-{n}"),
            format!("twice-{n}"),
        ] {
            let tallies = tallies.clone();
            tasks.push(tokio::spawn(async move {
                tallies
                    .execute_with(&id, &TallyCommand::Add(vec![1]), claimed())
                    .await
                    .map(|outcome| outcome.version)
            }));
        }
    }
    for task in tasks {
        task.await
            .expect("task")
            .expect("every claimed command lands");
    }
    for n in 0..STREAMS {
        for (id, total, version) in [
            (format!("old-{n}"), 31, 3),
            (format!("fresh-{n}"), 1, 1),
            (format!("twice-{n}"), 2, 2),
        ] {
            let (state, at) = tallies.load(&id).await.expect("load");
            assert_eq!(
                (state.total, at),
                (total, Version::new(version)),
                "stream {id}"
            );
        }
    }
}
