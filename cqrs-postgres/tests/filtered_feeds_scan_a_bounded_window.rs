//! A filtered feed reads a bounded window of the primary key in feed order and filters that, so
//! its plan never depends on how rare the planner guesses the filter to be. A reader following a
//! rare category gets every match exactly once and moves past long runs of other events, one
//! window per read.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError, ProjectionRunner, RunnerOptions};

use cqrs_core::{
    AppendEvents, EventFilter, ExpectedVersion, NewEvent, Position, ReadAll, RecordedEvent,
    StreamId,
};
use cqrs_postgres::PgEventStore;
use serde_json::{json, Value};

/// The window a filtered read scans (`FILTERED_SCAN_WINDOW` in read.rs).
const WINDOW: usize = 10_000;

fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid")
}

fn events(kind: &str, count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|i| NewEvent::new(kind, 1, json!({ "i": i })))
        .collect()
}

/// Appends `count` events to a new `wanted` stream, noting each (stream, version).
async fn append_wanted(
    store: &PgEventStore,
    name: &str,
    count: usize,
    wanted: &mut Vec<(String, u64)>,
) -> Position {
    let s = stream(name);
    let outcome = store
        .append(&s, ExpectedVersion::NoStream, events("Wanted", count))
        .await
        .expect("append wanted");
    for version in 1..=u64::try_from(count).expect("small") {
        wanted.push((s.as_str().to_owned(), version));
    }
    outcome.position
}

/// 25 runs of 1,000 `noise` events with a few `wanted` events among them: three at the start,
/// two close together after 5,000 others, then none for 19,000 events, then two at the end.
/// Returns each wanted event's (stream, version) in feed order, and the last position appended.
async fn rare_category_store(store: &PgEventStore) -> (Vec<(String, u64)>, Position) {
    let mut wanted = Vec::new();
    for run in 0..25_usize {
        let count = match run {
            0 => 3,
            5 | 6 => 1,
            _ => 0,
        };
        if count > 0 {
            append_wanted(store, &format!("wanted-{run}"), count, &mut wanted).await;
        }
        store
            .append(
                &stream(&format!("noise-{run}")),
                ExpectedVersion::NoStream,
                events("Noise", 1_000),
            )
            .await
            .expect("append noise");
    }
    let last = append_wanted(store, "wanted-end", 2, &mut wanted).await;
    (wanted, last)
}

#[tokio::test]
async fn a_rare_category_is_read_exactly_once_and_the_reader_passes_long_runs_of_others() {
    let store = support::store().await;
    let (wanted, last) = rare_category_store(&store).await;
    support::wait_for_feed(&store, last).await;

    let filter = EventFilter::all().category("wanted");
    let mut after = Position::START;
    let mut seen = Vec::new();
    let mut reads = 0;
    let mut passed_empty_windows = 0;
    loop {
        reads += 1;
        assert!(reads <= 20, "the reader does not move on: stuck at {after}");
        let batch = store.read_all(after, 2, &filter).await.expect("feed read");
        assert!(batch.next >= after, "the feed never moves backwards");
        assert!(batch.events.len() <= 2);
        let mut previous = after;
        for event in &batch.events {
            assert!(event.position > previous, "in feed order, past `after`");
            assert!(
                event.position <= batch.next,
                "`next` is past what was returned"
            );
            previous = event.position;
        }
        if batch.events.len() < 2 {
            // A short page: `next` is the window's end when the window was full, else the reader
            // is past everything there is.
            let window = store
                .read_all(after, WINDOW, &EventFilter::all())
                .await
                .expect("unfiltered read");
            if window.events.len() == WINDOW {
                let end = window.events.last().expect("full").position;
                assert_eq!(batch.next, end, "moved to the end of the scanned window");
                if batch.events.is_empty() {
                    passed_empty_windows += 1;
                }
            } else {
                assert!(batch.next >= last, "caught up: {} < {last}", batch.next);
            }
        }
        let done = batch.events.is_empty() && batch.next >= last;
        seen.extend(
            batch
                .events
                .into_iter()
                .map(|e| (e.stream_id.as_str().to_owned(), e.version.get())),
        );
        after = batch.next;
        if done {
            break;
        }
    }
    assert_eq!(seen, wanted, "every wanted event, once, in order");
    assert!(
        passed_empty_windows >= 1,
        "a read finding nothing in a full window still moves the reader past it"
    );
}

/// Counts the events it is given.
struct CountWanted(Arc<Mutex<Vec<(String, u64)>>>);

#[async_trait]
impl Projection for CountWanted {
    fn name(&self) -> &str {
        "count-wanted"
    }

    fn filter(&self) -> EventFilter {
        EventFilter::all().category("wanted")
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut seen = self.0.lock().expect("not poisoned");
        seen.extend(
            events
                .iter()
                .map(|e| (e.stream_id.as_str().to_owned(), e.version.get())),
        );
        Ok(())
    }
}

#[tokio::test]
async fn a_runner_on_a_rare_category_reads_window_after_window_without_idling() {
    let store = support::store().await;
    let (wanted, last) = rare_category_store(&store).await;
    support::wait_for_feed(&store, last).await;

    // No wake-ups and an hour between polls: only reading on at once after a window that the
    // store cut short gets the runner through the 25,000 events in time.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let options = RunnerOptions::new()
        .batch_size(100)
        .poll_interval(Duration::from_secs(3600));
    let handle = ProjectionRunner::new(CountWanted(seen.clone()), store.clone(), store.clone())
        .with_options(options)
        .spawn();
    assert!(
        handle.wait_for(last, Duration::from_secs(60)).await.is_ok(),
        "the runner idled between windows: {:?}",
        handle.status()
    );
    handle.shutdown().await;
    assert_eq!(*seen.lock().expect("not poisoned"), wanted);
}

/// The feed statement with this store's schema, as `Queries` builds it.
fn read_all_sql(store: &PgEventStore) -> String {
    include_str!("../src/sql/read_all.sql").replace("{schema}", &format!("\"{}\"", store.schema()))
}

/// Every node of a JSON plan, with whether it is the root.
fn nodes<'a>(plan: &'a Value, root: bool, out: &mut Vec<(&'a Value, bool)>) {
    out.push((plan, root));
    for child in plan["Plans"].as_array().into_iter().flatten() {
        nodes(child, false, out);
    }
}

fn reads_events(plan: &Value) -> bool {
    let mut all = Vec::new();
    nodes(plan, false, &mut all);
    all.iter()
        .any(|(node, _)| node["Relation Name"].as_str() == Some("events"))
}

#[tokio::test]
async fn the_feed_plan_is_an_ordered_primary_key_scan_whatever_the_filter() {
    let store = support::store().await;
    let (_, last) = rare_category_store(&store).await;
    sqlx::query(&format!("ANALYZE \"{}\".events", store.schema()))
        .execute(store.pool())
        .await
        .expect("analyze");
    support::wait_for_feed(&store, last).await;
    let explain = format!("EXPLAIN (FORMAT JSON) {}", read_all_sql(&store));
    let some = |names: &[&str]| Some(names.iter().map(|&n| n.to_owned()).collect::<Vec<_>>());
    // Far enough from the end that the rows left outnumber a window: when they fit in one, the
    // planner may rightly read and sort them all.
    let middle = store
        .read_all(Position::START, 5_000, &EventFilter::all())
        .await
        .expect("feed read")
        .next;
    for after in [Position::START, middle] {
        let (major, minor) = after.parts();
        // A stream partition (index, count) as a partitioned worker reads it.
        for (categories, event_types, partition) in [
            (None, None, None),
            (some(&["wanted"]), None, None),
            (some(&["noise"]), None, None),
            (None, some(&["Wanted"]), None),
            (some(&["wanted", "other"]), some(&["Wanted"]), None),
            (None, None, Some((3_i64, 8_i64))),
            (some(&["wanted"]), None, Some((3_i64, 8_i64))),
        ] {
            let page: i64 = 1_000;
            let window: i64 =
                if categories.is_some() || event_types.is_some() || partition.is_some() {
                    10_000
                } else {
                    page
                };
            // Bound parameters plan like the custom plans a fresh connection's first executions
            // get: with the values, and the planner's guesses of the filter's selectivity.
            let (sqlx::types::Json(plan),): (sqlx::types::Json<Value>,) = sqlx::query_as(&explain)
                .bind(major.to_string())
                .bind(i64::try_from(minor).expect("small"))
                .bind(page)
                .bind(&categories)
                .bind(&event_types)
                .bind(window)
                .bind(partition.map(|p: (i64, i64)| p.0))
                .bind(partition.map(|p: (i64, i64)| p.1))
                .fetch_one(store.pool())
                .await
                .expect("explain");
            let plan = &plan[0]["Plan"];
            let mut all = Vec::new();
            nodes(plan, true, &mut all);
            let case = format!(
                "after {after}, categories {categories:?}, types {event_types:?}, partition {partition:?}"
            );
            let scans: Vec<&Value> = all
                .iter()
                .map(|(node, _)| *node)
                .filter(|node| node["Relation Name"].as_str() == Some("events"))
                .collect();
            assert!(!scans.is_empty(), "{case}: no scan of events in {plan:#}");
            for scan in scans {
                assert!(
                    matches!(
                        scan["Node Type"].as_str(),
                        Some("Index Scan" | "Index Only Scan")
                    ) && scan["Index Name"].as_str() == Some("events_pkey")
                        && scan["Scan Direction"].as_str() == Some("Forward"),
                    "{case}: events must be read off events_pkey in order, not {scan:#}"
                );
            }
            // Nothing sorts rows of the table: the page comes in index order, merged with the
            // one header row (whose sort keys are constants: a sort of one row).
            for (node, _) in all {
                let sort = node["Node Type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("Sort"));
                let of_constants = node["Sort Key"].as_array().is_some_and(|keys| {
                    keys.iter()
                        .all(|k| k.as_str().is_some_and(|k| k.starts_with("(NULL::")))
                });
                assert!(
                    !sort || of_constants || !reads_events(node),
                    "{case}: the plan sorts the table's rows: {plan:#}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_page_scans_the_table_once_and_a_short_one_learns_where_its_window_ended() {
    let store = support::store().await;
    let (_, last) = rare_category_store(&store).await;
    support::wait_for_feed(&store, last).await;
    let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", read_all_sql(&store));
    // How many times the statement walked events: once, full page or short (the window's end
    // is another statement's question, asked only for a short page).
    let walks = |categories: &'static [&'static str]| {
        let (store, explain) = (&store, &explain);
        async move {
            let categories: Vec<String> = categories.iter().map(|&c| c.to_owned()).collect();
            let (sqlx::types::Json(plan),): (sqlx::types::Json<Value>,) = sqlx::query_as(explain)
                .bind("0")
                .bind(0_i64)
                .bind(500_i64)
                .bind(Some(categories))
                .bind(None::<Vec<String>>)
                .bind(i64::try_from(WINDOW).expect("small"))
                .bind(None::<i64>)
                .bind(None::<i64>)
                .fetch_one(store.pool())
                .await
                .expect("explain analyze");
            let mut all = Vec::new();
            nodes(&plan[0]["Plan"], true, &mut all);
            all.iter()
                .filter(|(node, _)| node["Relation Name"].as_str() == Some("events"))
                .map(|(node, _)| node["Actual Loops"].as_u64().expect("analyzed"))
                .sum::<u64>()
        }
    };
    assert_eq!(walks(&["noise"]).await, 1, "a full page");
    assert_eq!(walks(&["wanted"]).await, 1, "a short page");
    // The window's end is found off events_pkey too, in order, without touching the table
    // (once the table is analyzed and vacuumed, as autovacuum leaves it).
    sqlx::query(&format!("VACUUM (ANALYZE) \"{}\".events", store.schema()))
        .execute(store.pool())
        .await
        .expect("vacuum");
    let window_end_sql = include_str!("../src/sql/window_end.sql")
        .replace("{schema}", &format!("\"{}\"", store.schema()));
    let (horizon,): (String,) =
        sqlx::query_as("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
            .fetch_one(store.pool())
            .await
            .expect("horizon");
    let (sqlx::types::Json(plan),): (sqlx::types::Json<Value>,) =
        sqlx::query_as(&format!("EXPLAIN (FORMAT JSON) {window_end_sql}"))
            .bind("0")
            .bind(0_i64)
            .bind(horizon)
            .bind(i64::try_from(WINDOW).expect("small"))
            .fetch_one(store.pool())
            .await
            .expect("explain");
    let mut all = Vec::new();
    nodes(&plan[0]["Plan"], true, &mut all);
    let scans: Vec<&Value> = all
        .iter()
        .map(|(node, _)| *node)
        .filter(|node| node["Relation Name"].as_str() == Some("events"))
        .collect();
    assert_eq!(scans.len(), 1, "{plan:#}");
    assert_eq!(
        (
            scans[0]["Node Type"].as_str(),
            scans[0]["Index Name"].as_str(),
            scans[0]["Scan Direction"].as_str()
        ),
        (
            Some("Index Only Scan"),
            Some("events_pkey"),
            Some("Forward")
        ),
        "{plan:#}"
    );

    // The window's end, as the feed's order has it: the WINDOW-th event. The ORDER BY names
    // the table's column: a bare `transaction_id` is the output column, the id as text, which
    // puts `1000000` before `999999`.
    let (major, minor): (String, i64) = sqlx::query_as(&format!(
        "SELECT e.transaction_id::text, e.position FROM \"{}\".events e \
         ORDER BY e.transaction_id, e.position OFFSET $1 LIMIT 1",
        store.schema()
    ))
    .bind(i64::try_from(WINDOW - 1).expect("small"))
    .fetch_one(store.pool())
    .await
    .expect("the window's last event");
    let window_end: Position = format!("{major}/{minor}").parse().expect("a position");
    // `wanted` is rare: five matches in the first window, a short page that moves to its end.
    let short = store
        .read_all(Position::START, 500, &EventFilter::all().category("wanted"))
        .await
        .expect("feed read");
    assert_eq!(short.events.len(), 5);
    assert_eq!((short.next, short.more), (window_end, true));
    // `noise` fills a page of 500 at once: the reader moves to its last event.
    let full = store
        .read_all(Position::START, 500, &EventFilter::all().category("noise"))
        .await
        .expect("feed read");
    assert_eq!(full.events.len(), 500);
    let last_read = full.events.last().map(|e| e.position);
    assert_eq!((Some(full.next), full.more), (last_read, false));
}
