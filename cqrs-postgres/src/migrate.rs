//! Versioned, idempotent schema migrations.

use sqlx::{Executor, PgPool};

use crate::{PgError, PgSchema};

/// The migrations, in order: (version, SQL with `{schema}` placeholders).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("sql/0001_events.sql")),
    (2, include_str!("sql/0002_projections.sql")),
    (3, include_str!("sql/0003_lease_epochs.sql")),
];

/// The newest schema version this code knows.
pub(crate) const LATEST: i32 = 3;

/// Brings `schema` up to [`LATEST`]: creates it if needed, then applies each missing migration in
/// its own transaction. Concurrent callers serialize on an advisory lock, so running it from
/// every process at startup is safe. Returns the versions applied.
pub(crate) async fn migrate(pool: &PgPool, schema: &PgSchema) -> Result<Vec<i32>, PgError> {
    let quoted = schema.quoted();
    let mut conn = pool.acquire().await?;
    // One lock per schema name, held for the session while migrating.
    let lock_key = format!("cqrs-migrate-{}", schema.as_str());
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&lock_key)
        .execute(&mut *conn)
        .await?;
    let result = apply_missing(&mut conn, &quoted).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&lock_key)
        .execute(&mut *conn)
        .await;
    let applied = result?;
    unlocked?;
    Ok(applied)
}

async fn apply_missing(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Postgres>,
    quoted: &str,
) -> Result<Vec<i32>, PgError> {
    conn.execute(
        format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted};
             CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        )
        .as_str(),
    )
    .await?;
    let current: Option<i32> = sqlx::query_scalar(&format!(
        "SELECT max(version) FROM {quoted}.schema_migrations"
    ))
    .fetch_one(&mut **conn)
    .await?;
    let current = current.unwrap_or(0);
    if current > LATEST {
        return Err(PgError::SchemaTooNew {
            found: current,
            known: LATEST,
        });
    }
    let mut applied = Vec::new();
    for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let fail = |source| PgError::Migration { version, source };
        let mut tx = sqlx::Connection::begin(&mut **conn).await.map_err(fail)?;
        tx.execute(sql.replace("{schema}", quoted).as_str())
            .await
            .map_err(fail)?;
        sqlx::query(&format!(
            "INSERT INTO {quoted}.schema_migrations (version) VALUES ($1)"
        ))
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        tracing::info!(schema = quoted, version, "applied migration");
        applied.push(version);
    }
    Ok(applied)
}
