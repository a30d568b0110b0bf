//! Versioned, idempotent schema migrations.

use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, Transaction};

use crate::{EventJson, PgError, PgSchema};

/// The migrations, in order: (version, SQL with `{schema}` placeholders, and `{event_json}` for
/// the type of an event's payload and metadata).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("sql/0001_events.sql")),
    (2, include_str!("sql/0002_projections.sql")),
    (3, include_str!("sql/0003_lease_epochs.sql")),
    (4, include_str!("sql/0004_dead_letter_requests.sql")),
    (5, include_str!("sql/0005_process_managers.sql")),
    (6, include_str!("sql/0006_bus_dead_letters.sql")),
    (7, include_str!("sql/0007_breakers.sql")),
    (8, include_str!("sql/0008_stream_ids_compare_bytewise.sql")),
    (9, include_str!("sql/0009_bus_dead_letter_keys_hashed.sql")),
];

/// How long a migration waits for a lock on a table another session holds before it fails
/// (transient: `55P03`, retry later), during which the store's appends and reads on that table
/// wait too.
const MIGRATION_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The newest schema version this code knows.
pub(crate) const LATEST: i32 = 9;

/// Brings `schema` up to [`LATEST`]: creates it if needed, then applies each missing migration in
/// its own transaction. Concurrent callers serialize on an advisory lock, so running it from
/// every process at startup is safe. Returns the versions applied.
///
/// The lock is transaction-scoped (`pg_advisory_xact_lock`), taken again by each migration's
/// transaction: it ends with that transaction, whatever happens to this future. A session lock
/// outlived a caller that dropped the future midway (a startup timeout, say): the pooled
/// connection kept it, and every later migration, from any process, blocked for good.
///
/// The migrations run [`to_the_end`](crate::to_the_end::to_the_end), whatever happens to this
/// future.
pub(crate) async fn migrate(
    pool: &PgPool,
    schema: &PgSchema,
    event_json: EventJson,
) -> Result<Vec<i32>, PgError> {
    let (pool, schema) = (pool.clone(), schema.clone());
    crate::to_the_end::to_the_end(
        async move { migrate_to_the_end(&pool, &schema, event_json).await },
    )
    .await
}

async fn migrate_to_the_end(
    pool: &PgPool,
    schema: &PgSchema,
    event_json: EventJson,
) -> Result<Vec<i32>, PgError> {
    let quoted = schema.quoted();
    let mut conn = pool.acquire().await?;
    // One lock per schema name.
    let lock_key = format!("cqrs-migrate-{}", schema.as_str());
    let mut applied = Vec::new();
    loop {
        let mut tx = conn.begin().await?;
        // Read committed whatever the session's default: under repeatable read the snapshot
        // would predate the lock, and a second migrator would miss the first one's work.
        tx.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .await?;
        // Waits as long as another process migrates (its own waits are bounded below).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&lock_key)
            .execute(&mut *tx)
            .await?;
        // A table another session holds (a dump, a transaction left open) is waited for a
        // bounded time: PostgreSQL queues every later request on the table behind a waiting
        // exclusive one, so an unbounded wait stalled every append and read of the store. A
        // long rewrite may run as long as it takes.
        tx.execute(
            format!(
                "SET LOCAL lock_timeout = '{}ms'; SET LOCAL statement_timeout = 0",
                MIGRATION_LOCK_TIMEOUT.as_millis()
            )
            .as_str(),
        )
        .await?;
        let current = current_version(&mut tx, schema, &quoted).await?;
        let Some(&(version, sql)) = MIGRATIONS.iter().find(|(v, _)| *v > current) else {
            tx.commit().await?;
            return Ok(applied);
        };
        apply(tx, &quoted, version, sql, event_json).await?;
        tracing::info!(schema = quoted, version, "applied migration");
        applied.push(version);
    }
}

/// The schema's version (0 for none yet), under the lock: creates the schema and the table of
/// applied migrations if needed.
async fn current_version(
    tx: &mut PgConnection,
    schema: &PgSchema,
    quoted: &str,
) -> Result<i32, PgError> {
    // Each only when missing, both asked in one round trip: PostgreSQL checks the CREATE
    // privilege (the database's for a schema, the schema's for a table) before it looks whether
    // the object exists, and a role given only its own schema, or only the right to read and
    // write a schema its owner migrated, has none.
    let (schema_exists, recorded): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), \
                to_regclass($2) IS NOT NULL",
    )
    .bind(schema.as_str())
    .bind(format!("{quoted}.schema_migrations"))
    .fetch_one(&mut *tx)
    .await?;
    if !schema_exists {
        tx.execute(format!("CREATE SCHEMA IF NOT EXISTS {quoted}").as_str())
            .await?;
    }
    if !recorded {
        tx.execute(
            format!(
                "CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations (
                     version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now()
                 );"
            )
            .as_str(),
        )
        .await?;
    }
    let current: Option<i32> = sqlx::query_scalar(&format!(
        "SELECT max(version) FROM {quoted}.schema_migrations"
    ))
    .fetch_one(&mut *tx)
    .await?;
    let current = current.unwrap_or(0);
    if current > LATEST {
        return Err(PgError::SchemaTooNew {
            found: current,
            known: LATEST,
        });
    }
    Ok(current)
}

/// Applies one migration and records it, in `tx`, and commits: all of it or nothing.
async fn apply(
    mut tx: Transaction<'_, Postgres>,
    quoted: &str,
    version: i32,
    sql: &str,
    event_json: EventJson,
) -> Result<(), PgError> {
    let fail = |source| PgError::Migration { version, source };
    let sql = sql
        .replace("{schema}", quoted)
        .replace("{event_json}", event_json.sql_type());
    tx.execute(sql.as_str()).await.map_err(fail)?;
    sqlx::query(&format!(
        "INSERT INTO {quoted}.schema_migrations (version) VALUES ($1)"
    ))
    .bind(version)
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    Ok(())
}
