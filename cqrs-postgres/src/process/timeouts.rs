//! Firing due timeouts: `sql/fire_timeouts.sql` removes them under row locks (skipping rows
//! another firer holds), and each one's `ProcessTimeoutFired` event is appended in the same
//! transaction, so a timeout fires once, or not at all if the transaction rolls back.

use crate::jsonb::Jsonb;
use cqrs_core::process::{FiredTimeout, TimeoutFired};
use cqrs_core::ExpectedVersion;
use serde_json::Value;
use sqlx::{Connection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::columns::Columns;
use crate::timestamp::{required, Timestamp};
use crate::{convert, PgError, PgEventStore};

impl PgEventStore {
    /// [`ProcessStore::fire_due`](cqrs_core::process::ProcessStore::fire_due): one
    /// transaction; the fired events are appended earliest due first.
    ///
    /// The transaction runs [`to_the_end`](crate::to_the_end::to_the_end) even when the caller
    /// is cut off, as the timer pump is when its worker is aborted or loses its lease.
    pub(crate) async fn fire_due_pg(
        &self,
        process: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<FiredTimeout>, PgError> {
        let store = self.clone();
        let process = process.to_owned();
        crate::to_the_end::to_the_end(async move {
            store.fire_due_to_the_end(&process, now, limit).await
        })
        .await
    }

    /// [`fire_due_pg`](Self::fire_due_pg)'s transaction.
    async fn fire_due_to_the_end(
        &self,
        process: &str,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<FiredTimeout>, PgError> {
        // A batch of timeouts takes as long as each of its appends is answered in time.
        let mut conn = self.bounded().await?;
        conn.run_progressing(async |conn, progress| {
            let mut tx = conn.begin().await?;
            let rows = sqlx::query(&self.queries.fire_timeouts)
                .bind(process)
                .bind(now)
                .bind(convert::limit(limit))
                .fetch_all(&mut *tx)
                .await?;
            if rows.is_empty() {
                tx.commit().await?;
                return Ok(Vec::new());
            }
            let mut due = rows
                .iter()
                .map(|row| {
                    let Jsonb(payload): Jsonb<Value> = row.try_get("payload")?;
                    Ok(TimeoutFired {
                        instance: row.try_get("instance")?,
                        key: row.try_get("key")?,
                        timeout_id: row.try_get::<Uuid, _>("timeout_id")?,
                        due_at: required(row, "due_at")?,
                        payload,
                    })
                })
                .collect::<Result<Vec<_>, PgError>>()?;
            // RETURNING keeps no order: the fired events follow the due times.
            due.sort_by(|a, b| {
                (a.due_at, &a.instance, &a.key).cmp(&(b.due_at, &b.instance, &b.key))
            });
            let mut fired = Vec::with_capacity(due.len());
            for timeout in due {
                let stream = TimeoutFired::stream(process, timeout.timeout_id)?;
                // Its payload was checked when it was scheduled: this store's limits do not refuse
                // it (a limit lowered since, or the fired event's own few fields past a payload
                // near it, would roll back the batch and hold every timeout of the process).
                let columns = Columns::new(vec![timeout.to_event()?], usize::MAX, usize::MAX)?;
                let outcome = self
                    .append_columns_in(&mut tx, &stream, ExpectedVersion::NoStream, &columns)
                    .await?;
                progress.tick();
                let TimeoutFired {
                    instance,
                    key,
                    timeout_id,
                    due_at,
                    ..
                } = timeout;
                fired.push(FiredTimeout::new(
                    instance,
                    key,
                    timeout_id,
                    due_at,
                    outcome.position,
                ));
            }
            // The appends notified in their statements: listeners wake when this commits.
            tx.commit().await?;
            Ok(fired)
        })
        .await
    }

    /// [`ProcessStore::next_due`](cqrs_core::process::ProcessStore::next_due).
    pub(crate) async fn next_due_pg(
        &self,
        process: &str,
    ) -> Result<Option<OffsetDateTime>, PgError> {
        self.call(async |conn| {
            let next: Option<Timestamp> = sqlx::query_scalar(&self.queries.next_timeout)
                .bind(process)
                .fetch_one(conn)
                .await?;
            Ok(next.map(|at| at.0))
        })
        .await
    }
}
