//! `migrate()` serializes processes with an advisory lock, then reads the schema's version. A
//! role, database or URL may make every session default to repeatable read or serializable;
//! then a waiting migrator's snapshot was taken when it asked for the lock, before the other
//! committed, and it ran the same migration again and failed ("already exists"), so every
//! replica but one failed its first start. Migrations run read committed whatever the default.

mod support;

use cqrs_postgres::PgEventStore;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

async fn repeatable_read_pool() -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET default_transaction_isolation = 'repeatable read'")
                    .await?;
                Ok(())
            })
        })
        .connect(&support::database_url())
        .await
        .expect("connect to DATABASE_URL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_racing_under_repeatable_read_sessions_both_succeed() {
    for _ in 0..3 {
        let schema = support::unique_schema();
        let a = PgEventStore::new(repeatable_read_pool().await).with_schema(schema.clone());
        let b = PgEventStore::new(repeatable_read_pool().await).with_schema(schema.clone());
        let (from_a, from_b) = tokio::join!(a.migrate(), b.migrate());
        let (from_a, from_b) = (
            from_a.expect("the first migrator"),
            from_b.expect("the second migrator"),
        );
        let mut applied: Vec<i32> = from_a.iter().chain(&from_b).copied().collect();
        applied.sort_unstable();
        let all: Vec<i32> = (1..=i32::try_from(applied.len()).expect("a few")).collect();
        assert_eq!(
            applied, all,
            "each migration applied once: {from_a:?} {from_b:?}"
        );
        a.pool()
            .execute(format!("DROP SCHEMA \"{}\" CASCADE", schema.as_str()).as_str())
            .await
            .expect("drop the schema");
    }
}
