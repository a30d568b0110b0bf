//! In a least-privilege setup the schema's owner migrates it (`cqrs migrate`, a deploy job),
//! and the application runs as a role that may only use the schema and read and write its
//! tables. `migrate()`, which every process runs at start, asked for `CREATE TABLE IF NOT
//! EXISTS` of its table of versions each time, and PostgreSQL checks the schema's CREATE
//! privilege before it looks whether the table exists: every start failed with "permission
//! denied for schema", even on a store migrated long before. A store at the latest version is
//! left as it is, and the role then reads and writes.
//!
//! Setting the scene needs a role that may create roles (the scripts' server and docker
//! compose's give one).

mod support;

use cqrs_core::{AppendEvents, ExpectedVersion, NewEvent, ReadStream, StreamId, Version};
use cqrs_postgres::PgEventStore;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_may_only_read_and_write_starts_on_a_schema_migrated_before() {
    let owner = support::store_with(2).await;
    let schema = owner.schema().clone();
    let quoted = format!("\"{}\"", schema.as_str());
    let role = format!("rw_{}", schema.as_str().to_ascii_lowercase());
    let admin = owner.pool();
    admin
        .execute(format!("CREATE ROLE \"{role}\" NOLOGIN").as_str())
        .await
        .expect("DATABASE_URL's role must be able to create roles for this test");
    for grant in [
        format!("GRANT USAGE ON SCHEMA {quoted} TO \"{role}\""),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {quoted} TO \"{role}\""
        ),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quoted} TO \"{role}\""),
    ] {
        admin.execute(grant.as_str()).await.expect("grant");
    }

    let as_app = {
        let role = role.clone();
        PgPoolOptions::new()
            .max_connections(2)
            .after_connect(move |conn, _| {
                let set = format!("SET ROLE \"{role}\"");
                Box::pin(async move {
                    conn.execute(set.as_str()).await?;
                    Ok(())
                })
            })
            .connect(&support::database_url())
            .await
            .expect("connect")
    };
    let store = PgEventStore::new(as_app.clone()).with_schema(schema.clone());
    let migrated = store.migrate().await;
    let stream = StreamId::new("order-1").expect("id");
    let appended = store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Placed", 1, json!({ "n": 1 }))],
        )
        .await;
    let read = store.read_stream(&stream, Version::new(1), 10).await;
    as_app.close().await;

    admin
        .execute(format!("DROP SCHEMA {quoted} CASCADE").as_str())
        .await
        .expect("drop the schema");
    admin
        .execute(format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\"").as_str())
        .await
        .expect("drop the role");
    assert_eq!(
        migrated.expect("nothing to do, nothing asked"),
        Vec::<i32>::new()
    );
    appended.expect("the role writes");
    assert_eq!(read.expect("the role reads").len(), 1);
}
