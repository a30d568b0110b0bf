//! What a stalled test prints about the shared PostgreSQL server: the feed horizon and the
//! sessions that hold a transaction open. One long transaction anywhere on the server holds back
//! the gap-safe feed of every schema, so a stall in one test can come from another.

use std::fmt::Write;

use cqrs_postgres::PgEventStore;
use sqlx::Row;

/// The feed horizon as `store` sees it and every session of the server with an open transaction
/// (oldest first), as lines to print. Never fails: what it cannot read it says.
pub async fn server_report(store: &PgEventStore) -> String {
    let mut report = String::new();
    match store.feed_horizon().await {
        Ok(horizon) => {
            let _ = writeln!(report, "feed horizon of {}: {horizon:?}", store.schema());
        }
        Err(e) => {
            let _ = writeln!(
                report,
                "feed horizon of {}: cannot read it: {e}",
                store.schema()
            );
        }
    }
    let sessions = sqlx::query(
        "SELECT pid, coalesce(application_name, ''), coalesce(state, ''),
                backend_xid::text, backend_xmin::text,
                extract(epoch FROM now() - xact_start)::float8,
                coalesce(wait_event_type || '/' || wait_event, ''), left(query, 160)
         FROM pg_stat_activity
         WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()
         ORDER BY xact_start",
    )
    .fetch_all(store.pool())
    .await;
    match sessions {
        Ok(rows) => {
            let _ = writeln!(report, "{} sessions in a transaction:", rows.len());
            for row in rows {
                let _ = writeln!(
                    report,
                    "  pid {} app {:?} {} xid {:?} xmin {:?} for {:.1?} s wait {:?}: {:?}",
                    row.get::<i32, _>(0),
                    row.get::<String, _>(1),
                    row.get::<String, _>(2),
                    row.get::<Option<String>, _>(3),
                    row.get::<Option<String>, _>(4),
                    row.get::<Option<f64>, _>(5).unwrap_or_default(),
                    row.get::<String, _>(6),
                    row.get::<Option<String>, _>(7).unwrap_or_default(),
                );
            }
        }
        Err(e) => {
            let _ = writeln!(report, "sessions: cannot read them: {e}");
        }
    }
    report
}
