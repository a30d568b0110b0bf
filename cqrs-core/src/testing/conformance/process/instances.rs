//! Status rows are listed and counted by state, and stuck by the clock.

use super::*;

/// Status rows are counted by state, listed by state in pages ordered by instance id, and a
/// running instance is stuck once the clock passed `stuck_after` without progress and no
/// timeout is due later.
pub async fn instances_are_listed_by_state_and_stuck<S: ConformanceStore>(store: S) {
    let rows = [
        running("i01", 2, at(0)),
        running("i02", 2, at(0)).state(InstanceState::Completed),
        running("i03", 2, at(0)).next_timeout_at(Some(at(500))),
        running("i04", 2, at(100)),
        running("i05", 2, at(0)).state(InstanceState::Failed),
        running("i06", 2, at(0)).state(InstanceState::Completed),
        running("i07", 2, at(0)).next_timeout_at(Some(at(50))),
    ];
    for row in &rows {
        record(
            &store,
            PROCESS,
            &row.instance,
            ExpectedVersion::NoStream,
            journal(),
            vec![],
            row.clone(),
        )
        .await
        .expect("record");
    }
    record(
        &store,
        OTHER,
        "i01",
        ExpectedVersion::NoStream,
        journal(),
        vec![],
        running("i01", 2, at(0)).state(InstanceState::Failed),
    )
    .await
    .expect("record other");

    let stuck_after = Duration::from_secs(60);
    let count = |now| {
        let store = store.clone();
        async move {
            store
                .instance_counts(PROCESS, now, stuck_after)
                .await
                .expect("counts")
        }
    };
    assert_eq!(count(at(30)).await, InstanceCounts::new(4, 2, 1, 0));
    assert_eq!(
        count(at(120)).await,
        InstanceCounts::new(4, 2, 1, 2),
        "i01 and i07 (its timeout overdue) are stuck; i03 waits for a timeout, i04 progressed"
    );
    assert_eq!(count(at(1000)).await, InstanceCounts::new(4, 2, 1, 4));
    assert_eq!(
        store
            .instance_counts(PROCESS, at(1000), Duration::MAX)
            .await
            .expect("counts with a stuck_after past the calendar"),
        InstanceCounts::new(4, 2, 1, 0),
        "a stuck_after reaching before the calendar's start makes nothing stuck"
    );
    assert_eq!(
        store
            .instance_counts(OTHER, at(0), stuck_after)
            .await
            .expect("counts"),
        InstanceCounts::new(0, 0, 1, 0)
    );

    let list = |query: InstanceQuery| {
        let store = store.clone();
        async move {
            store
                .instances(PROCESS, &query)
                .await
                .expect("instances")
                .into_iter()
                .map(|row| row.instance)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(InstanceQuery::all().limit(3)).await,
        ["i01", "i02", "i03"]
    );
    assert_eq!(
        list(InstanceQuery::all().after("i03").limit(3)).await,
        ["i04", "i05", "i06"]
    );
    assert_eq!(
        list(InstanceQuery::all().after("i06").limit(3)).await,
        ["i07"]
    );
    assert_eq!(
        list(InstanceQuery::state(InstanceState::Running)).await,
        ["i01", "i03", "i04", "i07"]
    );
    assert_eq!(
        list(InstanceQuery::state(InstanceState::Completed).after("i02")).await,
        ["i06"]
    );
    assert_eq!(
        list(InstanceQuery::state(InstanceState::Failed)).await,
        ["i05"]
    );
    assert_eq!(
        list(InstanceQuery::stuck(at(30), stuck_after)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list(InstanceQuery::stuck(at(120), stuck_after)).await,
        ["i01", "i07"]
    );
    assert_eq!(
        list(
            InstanceQuery::stuck(at(1000), stuck_after)
                .after("i01")
                .limit(2)
        )
        .await,
        ["i03", "i04"]
    );
    assert_eq!(
        list(InstanceQuery::stuck(at(1000), Duration::MAX)).await,
        Vec::<String>::new()
    );
    let rows_back = store
        .instances(PROCESS, &InstanceQuery::all())
        .await
        .expect("instances");
    assert_eq!(rows_back, rows, "rows round trip field by field");
}
