//! In a least-privilege setup a DBA creates the schema, owned by the application's role, and
//! grants that role nothing on the database. `migrate()`, which every process runs at start,
//! asked for `CREATE SCHEMA IF NOT EXISTS` each time, and PostgreSQL checks the database's
//! CREATE privilege before it looks whether the schema exists: every start failed with
//! "permission denied for database", even on a store migrated long before. A schema that exists
//! is not created again.
//!
//! Setting the scene needs a role that may create roles (the scripts' server and docker
//! compose's give one).

mod support;

use cqrs_postgres::PgEventStore;
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_owns_its_schema_migrates_without_create_on_the_database() {
    let admin = support::pool(2).await;
    let schema = support::unique_schema();
    let role = format!("app_{}", schema.as_str().to_ascii_lowercase());
    admin
        .execute(format!("CREATE ROLE \"{role}\" NOLOGIN").as_str())
        .await
        .expect("DATABASE_URL's role must be able to create roles for this test");
    admin
        .execute(
            format!(
                "CREATE SCHEMA \"{}\" AUTHORIZATION \"{role}\"",
                schema.as_str()
            )
            .as_str(),
        )
        .await
        .expect("the DBA creates the schema");

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
    let again = store.migrate().await;
    as_app.close().await;

    admin
        .execute(format!("DROP SCHEMA \"{}\" CASCADE", schema.as_str()).as_str())
        .await
        .expect("drop the schema");
    admin
        .execute(format!("DROP ROLE \"{role}\"").as_str())
        .await
        .expect("drop the role");
    let migrated = migrated.expect("the schema's owner migrates it");
    assert!(!migrated.is_empty());
    assert_eq!(
        again.expect("and again, at the next start"),
        Vec::<i32>::new()
    );
}
