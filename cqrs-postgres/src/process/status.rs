//! Reading process instances back: live timeouts, status rows in pages, counts by state.

use std::time::Duration;

use crate::jsonb::Jsonb;
use cqrs_core::process::{
    InstanceCounts, InstanceFilter, InstanceQuery, InstanceRow, InstanceState, ScheduledTimeout,
};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::timestamp::{optional, required};
use crate::{convert, PgError, PgEventStore};

impl PgEventStore {
    /// [`ProcessStore::instance_timeouts`](cqrs_core::process::ProcessStore::instance_timeouts).
    pub(crate) async fn instance_timeouts_pg(
        &self,
        process: &str,
        instance: &str,
    ) -> Result<Vec<ScheduledTimeout>, PgError> {
        let rows = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.instance_timeouts)
                    .bind(process)
                    .bind(instance)
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        rows.iter()
            .map(|row| {
                let Jsonb(payload): Jsonb<Value> = row.try_get("payload")?;
                Ok(ScheduledTimeout::new(
                    row.try_get("key")?,
                    row.try_get::<Uuid, _>("timeout_id")?,
                    required(row, "due_at")?,
                    payload,
                ))
            })
            .collect()
    }

    /// One page of status rows as `query` asks ([`ProcessStore::instances`]), or the one row of
    /// `only` ([`ProcessStore::instance`]).
    ///
    /// [`ProcessStore::instances`]: cqrs_core::process::ProcessStore::instances
    /// [`ProcessStore::instance`]: cqrs_core::process::ProcessStore::instance
    pub(crate) async fn instances_pg(
        &self,
        process: &str,
        query: &InstanceQuery,
        only: Option<&str>,
    ) -> Result<Vec<InstanceRow>, PgError> {
        let (state, stuck) = match &query.filter {
            InstanceFilter::State(state) => (Some(state.as_str()), None),
            InstanceFilter::Stuck { now, stuck_after } => (
                None,
                Some((*now, InstanceRow::stuck_cutoff(*now, *stuck_after))),
            ),
            InstanceFilter::All => (None, None),
            other => {
                return Err(cqrs_core::Error::process(
                    process,
                    format!("this store does not know the instance filter {other:?}"),
                )
                .into())
            }
        };
        let rows = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.process_instances)
                    .bind(process)
                    .bind(state)
                    .bind(stuck.is_some())
                    .bind(stuck.map(|(now, _)| now))
                    .bind(stuck.and_then(|(_, before)| before))
                    .bind(query.after.as_deref())
                    .bind(convert::limit(query.limit))
                    .bind(only)
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        rows.iter().map(instance_row).collect()
    }

    /// [`ProcessStore::instance_counts`](cqrs_core::process::ProcessStore::instance_counts).
    pub(crate) async fn instance_counts_pg(
        &self,
        process: &str,
        now: OffsetDateTime,
        stuck_after: Duration,
    ) -> Result<InstanceCounts, PgError> {
        let row = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.process_counts)
                    .bind(process)
                    .bind(now)
                    .bind(InstanceRow::stuck_cutoff(now, stuck_after))
                    .fetch_one(conn)
                    .await?)
            })
            .await?;
        let count = |column: &str| -> Result<u64, PgError> {
            convert::to_u64("negative count", row.try_get(column)?)
        };
        Ok(InstanceCounts::new(
            count("running")?,
            count("completed")?,
            count("failed")?,
            count("stuck")?,
        ))
    }
}

/// A `sql/process_instances.sql` row.
fn instance_row(row: &PgRow) -> Result<InstanceRow, PgError> {
    let state: &str = row.try_get("state")?;
    let state: InstanceState = state.parse().map_err(|_| PgError::CorruptRow {
        what: "unknown process instance state",
    })?;
    let pending: i32 = row.try_get("pending_commands")?;
    let mut status = InstanceRow::new(
        row.try_get::<String, _>("instance")?,
        convert::version(row.try_get("version")?)?,
        required(row, "progressed_at")?,
    );
    status.state = state;
    status.correlation_id = row.try_get("correlation_id")?;
    status.last_input = row.try_get("last_input")?;
    status.pending_commands = u32::try_from(pending).map_err(|_| PgError::CorruptRow {
        what: "negative pending commands",
    })?;
    status.next_timeout_at = optional(row, "next_timeout_at")?;
    status.started_at = required(row, "started_at")?;
    status.finished_at = optional(row, "finished_at")?;
    Ok(status)
}
