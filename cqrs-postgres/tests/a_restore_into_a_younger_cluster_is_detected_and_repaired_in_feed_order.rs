//! A schema moved with `pg_dump` / `pg_restore` into a cluster whose transaction counter is behind
//! the source's: the store notices (a typed error saying what to do, from `migrate()`, appends
//! and feed reads), and `repair_transaction_ids()` renumbers the stored transaction ids so that
//! appends work again, the feed keeps its order (old events, then new ones), and checkpoints,
//! dead letters and command outcomes still point at the same events.

mod support;

use cqrs_core::projection::DeadLetterStore;
use cqrs_core::{
    AppendEvents, CheckpointStore, CommandId, EventFilter, EventId, ExpectedVersion, Metadata,
    NewEvent, Position, ReadAll, ReadStream, StreamId, Version,
};
use cqrs_postgres::{PgError, PgEventStore};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use support::dump;

fn event(n: u32) -> NewEvent {
    NewEvent::new("Noted", 1, json!({ "n": n }))
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("a valid stream id")
}

/// The whole feed, in order.
async fn feed(store: &PgEventStore) -> Vec<(EventId, Position)> {
    feed_after(store, Position::START).await
}

/// The whole feed once it holds `count` events. Any transaction open in the cluster (another
/// test's) holds the feed back, so this polls, with a deadline.
async fn feed_of(store: &PgEventStore, count: usize) -> Vec<(EventId, Position)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let events = feed(store).await;
        if events.len() >= count || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The feed after `after`, in order.
async fn feed_after(store: &PgEventStore, mut after: Position) -> Vec<(EventId, Position)> {
    let mut events = Vec::new();
    loop {
        let batch = store
            .read_all(after, 3, &EventFilter::all())
            .await
            .expect("read the feed");
        if batch.events.is_empty() {
            return events;
        }
        events.extend(
            batch
                .events
                .iter()
                .map(|e| (e.metadata.event_id, e.position)),
        );
        after = batch.next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_a_younger_cluster_is_detected_and_repaired_in_feed_order() {
    let restore_url = dump::restore_database_url();
    let target_pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&restore_url)
        .await
        .expect("connect to RESTORE_DATABASE_URL");

    // The source's transaction ids clearly ahead of the target's.
    let source = support::store().await;
    let target_next = dump::next_transaction_id(&target_pool).await;
    dump::burn_transaction_ids_to(source.pool(), target_next + 5_000).await;

    // A history whose feed order is not the order of positions: transaction A takes a position,
    // B (younger) takes the next one and commits, then A takes a later one and commits.
    let mut a = source.pool().begin().await.expect("begin A");
    source
        .append_in(
            &mut a,
            &stream("acct-a"),
            ExpectedVersion::Exact(Version::new(0)),
            vec![event(1)],
        )
        .await
        .expect("A's first append");
    source
        .append(
            &stream("acct-b"),
            ExpectedVersion::Exact(Version::new(0)),
            vec![event(2)],
        )
        .await
        .expect("B's append");
    source
        .append_in(
            &mut a,
            &stream("acct-c"),
            ExpectedVersion::Exact(Version::new(0)),
            vec![event(3)],
        )
        .await
        .expect("A's second append");
    a.commit().await.expect("commit A");
    let command = CommandId::new();
    let with_command =
        event(4).with_metadata(Metadata::new(EventId::new()).with_command_id(command));
    source
        .append(
            &stream("acct-b"),
            ExpectedVersion::Exact(Version::new(1)),
            vec![with_command],
        )
        .await
        .expect("an append with a command id");
    for n in 5..9 {
        source
            .append(
                &stream("acct-d"),
                ExpectedVersion::Any,
                vec![event(n), event(n + 100)],
            )
            .await
            .expect("more appends");
    }
    let before = feed_of(&source, 12).await;
    assert_eq!(before.len(), 12);
    // A projection halfway, one caught up, and a dead letter.
    source
        .save_checkpoint("halfway", before[4].1)
        .await
        .expect("save a checkpoint");
    let caught_up = source
        .read_all(before[11].1, 10, &EventFilter::all())
        .await
        .expect("read at the head")
        .next;
    source
        .save_checkpoint("caught-up", caught_up)
        .await
        .expect("save a checkpoint");
    source
        .park(cqrs_core::backend::dead_letter(
            "halfway",
            before[2].1,
            stream("acct-c"),
            Version::new(1),
            "Noted",
            None,
            "poison",
            time::OffsetDateTime::now_utc(),
        ))
        .await
        .expect("park an event");

    let command_position = source
        .command_outcome(command)
        .await
        .expect("look up a command")
        .expect("the command was recorded")
        .position;
    let schema = source.schema().clone();
    dump::dump_and_restore(schema.as_str(), &support::database_url(), &restore_url);
    let restored = PgEventStore::new(target_pool.clone()).with_schema(schema.clone());

    // Detection: migrate(), appends and feed reads all say what happened and what to do.
    let refused = restored.migrate().await;
    let Err(error @ PgError::TransactionIdsAhead { stored, next }) = &refused else {
        panic!("migrate() accepted a schema whose transaction ids are ahead of the cluster's: {refused:?}");
    };
    assert!(stored >= next, "{error}");
    assert!(
        error.to_string().contains("repair_transaction_ids"),
        "the error says what to do: {error}"
    );
    for attempt in [
        restored
            .append(
                &stream("acct-b"),
                ExpectedVersion::Exact(Version::new(2)),
                vec![event(50)],
            )
            .await
            .map(|_| ()),
        restored
            .append(
                &stream("acct-new"),
                ExpectedVersion::Exact(Version::new(0)),
                vec![event(51)],
            )
            .await
            .map(|_| ()),
        restored
            .read_all(Position::START, 10, &EventFilter::all())
            .await
            .map(|_| ()),
    ] {
        assert!(
            is_ahead(&attempt),
            "refused with the typed error, got {attempt:?}"
        );
    }
    // Stores that checked before the move (a long-running process) still notice: an append
    // refused by the order rule, and a reader whose position lies past the horizon.
    let hide = format!(
        "ALTER TABLE \"{schema}\".events RENAME TO events_moved;
         CREATE TABLE \"{schema}\".events (LIKE \"{schema}\".events_moved INCLUDING ALL);
         ALTER TABLE \"{schema}\".checkpoints RENAME TO checkpoints_moved;
         CREATE TABLE \"{schema}\".checkpoints (LIKE \"{schema}\".checkpoints_moved INCLUDING ALL);"
    );
    sqlx::raw_sql(&hide)
        .execute(&target_pool)
        .await
        .expect("hide the restored rows");
    let writer = PgEventStore::new(target_pool.clone()).with_schema(schema.clone());
    let reader = PgEventStore::new(target_pool.clone()).with_schema(schema.clone());
    for store in [&writer, &reader] {
        store
            .read_all(Position::START, 1, &EventFilter::all())
            .await
            .expect("a store on empty tables passes its first check");
    }
    let unhide = format!(
        "DROP TABLE \"{schema}\".events;
         ALTER TABLE \"{schema}\".events_moved RENAME TO events;
         DROP TABLE \"{schema}\".checkpoints;
         ALTER TABLE \"{schema}\".checkpoints_moved RENAME TO checkpoints;"
    );
    sqlx::raw_sql(&unhide)
        .execute(&target_pool)
        .await
        .expect("bring the restored rows back");
    let refused = writer
        .append(
            &stream("acct-b"),
            ExpectedVersion::Exact(Version::new(2)),
            vec![event(52)],
        )
        .await;
    assert!(is_ahead(&refused), "a refused append says why: {refused:?}");
    let past_horizon = reader.read_all(before[4].1, 10, &EventFilter::all()).await;
    assert!(
        is_ahead(&past_horizon),
        "a reader past the horizon is told why: {past_horizon:?}"
    );

    // Logical replication copies no sequence values: the target's position sequence starts over.
    sqlx::query(&format!(
        "SELECT setval(pg_get_serial_sequence('\"{schema}\".events', 'position'), 1, false)"
    ))
    .execute(&target_pool)
    .await
    .expect("reset the position sequence");

    // The repair.
    let report = restored
        .repair_transaction_ids()
        .await
        .expect("repair the transaction ids");
    assert!(report.repaired, "{report:?}");
    assert_eq!(report.events, 12, "{report:?}");
    assert_eq!(report.checkpoints, 2, "{report:?}");
    assert_eq!(report.dead_letters, 1, "{report:?}");
    assert_eq!(report.commands, 1, "{report:?}");
    assert!(report.sequence_moved, "{report:?}");
    assert!(
        report.transaction_ids >= 2,
        "A's commit after B's needs two ids: {report:?}"
    );
    restored
        .migrate()
        .await
        .expect("migrate() passes after the repair");
    let again = restored
        .repair_transaction_ids()
        .await
        .expect("repair again");
    assert!(
        !again.repaired,
        "a second repair changes nothing: {again:?}"
    );

    // The feed: the same events in the same order, then new ones after them.
    let after = feed_of(&restored, 12).await;
    let ids = |events: &[(EventId, Position)]| events.iter().map(|e| e.0).collect::<Vec<_>>();
    assert_eq!(
        ids(&after),
        ids(&before),
        "the restored feed keeps its order"
    );
    for stream_name in ["acct-a", "acct-b", "acct-c"] {
        let current = restored
            .read_stream(&stream(stream_name), Version::new(0), 10)
            .await
            .expect("read a restored stream")
            .len();
        restored
            .append(
                &stream(stream_name),
                ExpectedVersion::Exact(Version::new(u64::try_from(current).expect("a count"))),
                vec![event(60)],
            )
            .await
            .expect("appends to restored streams work again");
    }
    let mut tx = restored.pool().begin().await.expect("begin");
    restored
        .append_in(
            &mut tx,
            &stream("acct-d"),
            ExpectedVersion::Exact(Version::new(8)),
            vec![event(61)],
        )
        .await
        .expect("appends in a transaction work again");
    tx.commit().await.expect("commit");
    let now = feed_of(&restored, 16).await;
    assert_eq!(now.len(), 16);
    assert_eq!(
        ids(&now[..12]),
        ids(&before),
        "old events first, in their order"
    );
    let last_old = before.iter().map(|e| e.1.parts().1).max().expect("events");
    assert!(
        now[12..].iter().all(|e| e.1.parts().1 > last_old),
        "new events take positions after every restored one: {:?}",
        &now[12..]
    );

    // Projections resume where they were; dead letters and command outcomes follow their events.
    let halfway = restored
        .load_checkpoint("halfway")
        .await
        .expect("load a checkpoint")
        .expect("the checkpoint survived");
    assert_eq!(halfway, now[4].1, "the checkpoint points at the same event");
    assert_eq!(ids(&feed_after(&restored, halfway).await), ids(&now[5..]));
    let caught_up = restored
        .load_checkpoint("caught-up")
        .await
        .expect("load a checkpoint")
        .expect("the checkpoint survived");
    assert_eq!(
        ids(&feed_after(&restored, caught_up).await),
        ids(&now[12..]),
        "a caught-up projection sees exactly the new events"
    );
    let letters = restored
        .dead_letters("halfway", Position::START, 10)
        .await
        .expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].position, now[2].1,
        "the dead letter points at the same event"
    );
    let outcome = restored
        .command_outcome(command)
        .await
        .expect("look up a command")
        .expect("the command's outcome survived");
    let command_event = before
        .iter()
        .position(|e| e.1 == command_position)
        .expect("the command's event in the source feed");
    assert_eq!(outcome.position, now[command_event].1);

    for pool in [source.pool(), &target_pool] {
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(pool)
            .await
            .expect("drop the test schema");
    }
}

/// Whether `result` is the typed error for moved transaction ids.
fn is_ahead<T: std::fmt::Debug>(result: &Result<T, cqrs_core::Error>) -> bool {
    match result {
        Err(cqrs_core::Error::Backend(source)) => matches!(
            source.downcast_ref::<PgError>(),
            Some(PgError::TransactionIdsAhead { .. })
        ),
        _ => false,
    }
}

/// When the events need more distinct ids than lie below the cluster's horizon (a long history of
/// transactions committing out of order, restored into a brand-new cluster), the repair moves the
/// cluster's counter on first, and still keeps the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_needing_more_ids_than_the_cluster_has_used_moves_its_counter_on_first() {
    let target_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&dump::restore_database_url())
        .await
        .expect("connect to RESTORE_DATABASE_URL");
    let store = PgEventStore::new(target_pool.clone()).with_schema(support::unique_schema());
    store.migrate().await.expect("migrate");
    let schema = store.schema().as_str().to_owned();
    // Rows as a restore leaves them: ids far ahead, and every position lower than the one before
    // in feed order, so each event needs an id of its own.
    let next = dump::next_transaction_id(&target_pool).await;
    let rows = i64::try_from(next).expect("an id") + 100;
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".events
             (transaction_id, position, stream_id, version, event_id, event_type, schema_version,
              payload, metadata)
         OVERRIDING SYSTEM VALUE
         SELECT ($1 + i)::text::xid8, $2 - i, 'burn-' || i, 1, gen_random_uuid(), 'Noted', 1,
                '{{}}', json_build_object('event_id', gen_random_uuid())
         FROM generate_series(1, $2) AS i"
    ))
    .bind(i64::try_from(next).expect("an id") + 1_000_000)
    .bind(rows)
    .execute(&target_pool)
    .await
    .expect("insert rows from the future");
    let order: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT stream_id FROM \"{schema}\".events ORDER BY transaction_id, position"
    ))
    .fetch_all(&target_pool)
    .await
    .expect("the stored order");

    let report = store.repair_transaction_ids().await.expect("repair");
    assert!(report.repaired, "{report:?}");
    assert_eq!(
        report.transaction_ids,
        u64::try_from(rows).expect("a count")
    );
    assert!(report.burned_transaction_ids > 0, "{report:?}");
    let repaired: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT stream_id FROM \"{schema}\".events ORDER BY transaction_id, position"
    ))
    .fetch_all(&target_pool)
    .await
    .expect("the repaired order");
    assert_eq!(repaired, order, "the order is kept");
    let visible = feed_of(&store, order.len()).await.len();
    assert_eq!(visible, order.len(), "every event is below the horizon");
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&target_pool)
        .await
        .expect("drop the test schema");
}
