//! `cqrs_postgres::testing::fresh_store` gives each test a migrated store in a schema of its
//! own: two of them never see each other's events, and dropping one drops its schema (unless
//! it was kept).

use cqrs_core::{
    AppendEvents, EventFilter, ExpectedVersion, NewEvent, Position, ReadAll, StreamId,
};
use cqrs_postgres::testing;
use serde_json::json;

async fn schema_exists(pool: &sqlx::PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("look the schema up")
}

#[tokio::test]
async fn two_fresh_stores_are_isolated_and_each_schema_goes_with_its_store() {
    let one = testing::fresh_store().await.expect("a fresh store");
    let two = testing::fresh_store().await.expect("another");
    assert_ne!(one.schema(), two.schema());
    one.append(
        &StreamId::new("order-1").expect("id"),
        ExpectedVersion::NoStream,
        vec![NewEvent::new("Placed", 1, json!({}))],
    )
    .await
    .expect("migrated: the tables are there");
    let seen = two
        .read_all(Position::START, 10, &EventFilter::all())
        .await
        .expect("read");
    assert!(
        seen.events.is_empty(),
        "the other schema's events: {seen:?}"
    );

    let pool = two.pool().clone();
    let name = one.schema().as_str().to_owned();
    assert!(schema_exists(&pool, &name).await);
    drop(one);
    assert!(!schema_exists(&pool, &name).await, "dropped with its store");

    let name = two.schema().as_str().to_owned();
    two.drop_schema().await.expect("drop now");
    assert!(!schema_exists(&pool, &name).await);
}

#[tokio::test]
async fn a_kept_store_keeps_its_schema() {
    let kept = testing::fresh_store().await.expect("a fresh store").keep();
    let name = kept.schema().as_str().to_owned();
    assert!(schema_exists(kept.pool(), &name).await);
    sqlx::query(&format!("DROP SCHEMA \"{name}\" CASCADE"))
        .execute(kept.pool())
        .await
        .expect("clean up by hand");
}
