//! A lane's statement is planned once, whatever the size of its groups; its connection goes
//! back to the pool without the settings that make it so.
//!
//! PostgreSQL plans a prepared statement's first five executions for their parameters, then
//! keeps a generic plan only if it does not look dearer than those. A group's arrays of a few
//! appends make the custom plans look cheap, so with small groups (two lanes sharing 16 writers
//! in `pg-bench`) it planned the group statement at every execution: 76 us of planning for 72
//! us of execution per group, by `pg_stat_statements`.

use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::test_pool::test_pool;
use cqrs_core::{NewEvent, StreamId};
use tokio::sync::oneshot;

use super::conn::LaneConn;
use super::request::{Request, TAKEN};
use super::statement::Writer;
use crate::columns::Columns;
use crate::{PgEventStore, PgSchema};

/// A group of `size` one-event appends to new streams `{prefix}-{i}`.
fn group(prefix: &str, size: usize) -> Vec<Request> {
    (0..size)
        .map(|i| {
            let events = vec![NewEvent::new("E", 1, serde_json::json!({ "i": i }))];
            let (reply, _) = oneshot::channel();
            Request {
                stream_id: StreamId::new(format!("{prefix}-{i}")).expect("id"),
                expected: 0,
                columns: Arc::new(Columns::new(events, 1 << 20, 1 << 20).expect("columns")),
                state: Arc::new(AtomicU8::new(TAKEN)),
                reply,
                queued_at: Instant::now(),
                span: tracing::Span::none(),
            }
        })
        .collect()
}

#[tokio::test]
async fn a_lane_plans_its_statement_once_however_small_its_groups() {
    let pool = test_pool(2).await;
    let schema = PgSchema::new(&format!("t_{}", uuid::Uuid::now_v7().simple())).expect("name");
    let store = PgEventStore::new(pool.clone()).with_schema(schema);
    store.migrate().await.expect("migrate");
    let mut writer = Writer {
        pool,
        conn: LaneConn::default(),
        queries: Arc::clone(&store.queries),
        timeout: Duration::from_secs(5),
        answer: Duration::from_secs(30),
        sent: false,
        seams: Arc::default(),
    };

    let groups = 40;
    for g in 0..groups {
        let outcomes = writer
            .insert(&group(&format!("plan{g}"), 1 + g % 3))
            .await
            .expect("the group is written");
        assert!(outcomes.iter().all(Option::is_some), "every append landed");
    }

    let conn = writer
        .conn
        .get(&writer.pool, writer.timeout)
        .await
        .expect("the lane's connection");
    let (generic, custom): (i64, i64) = sqlx::query_as(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE statement = $1",
    )
    .bind(&store.queries.append_group)
    .fetch_one(&mut **conn)
    .await
    .expect("the group statement is prepared on the lane's connection");
    assert_eq!(
        (generic, custom),
        (i64::try_from(groups).expect("40"), 0),
        "every group ran the one generic plan"
    );
}

#[tokio::test]
async fn a_lane_gives_its_connection_back_without_its_settings() {
    let pool = test_pool(1).await;
    let settings =
        "SELECT current_setting('statement_timeout'), current_setting('plan_cache_mode')";
    let before: (String, String) = {
        let mut conn = pool.acquire().await.expect("the pool's only connection");
        sqlx::query_as(settings)
            .fetch_one(&mut *conn)
            .await
            .expect("settings")
    };
    let mut lane = LaneConn::default();

    let conn = lane
        .get(&pool, Duration::from_millis(1500))
        .await
        .expect("the lane's connection");
    let held: (String, String) = sqlx::query_as(settings)
        .fetch_one(&mut **conn)
        .await
        .expect("settings");
    lane.release(Duration::from_secs(5)).await;
    let mut conn = pool.acquire().await.expect("the same connection, back");
    let back: (String, String) = sqlx::query_as(settings)
        .fetch_one(&mut *conn)
        .await
        .expect("settings");

    assert_eq!(held, ("1500ms".to_owned(), "force_generic_plan".to_owned()));
    assert_eq!(back, before, "both reset");
}
