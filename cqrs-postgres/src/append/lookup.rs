//! What an append that wrote nothing looks up: an earlier append of the same batch or command,
//! and the stream's version.

use cqrs_core::{AppendOutcome, CommandId, Error, EventId, StreamId, Version};
use sqlx::{PgConnection, PgExecutor, Row};
use uuid::Uuid;

use crate::columns::Columns;
use crate::row::{self, Landed};
use crate::{convert, PgError, PgEventStore};

impl PgEventStore {
    /// Nothing was written: is it because these events (or this command) are already in?
    pub(super) async fn earlier_append(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
        columns: &Columns,
    ) -> Result<Option<AppendOutcome>, PgError> {
        if let Some(command_id) = columns.command_id {
            if let Some(outcome) = self.command_outcome_on(&mut *conn, command_id).await? {
                if outcome.stream_id != *stream_id {
                    return Err(Error::CommandIdReused {
                        command_id,
                        stream_id: outcome.stream_id,
                    }
                    .into());
                }
                return Ok(Some(outcome));
            }
        }
        let rows = sqlx::query(&self.queries.events_by_id)
            .bind(&columns.event_ids)
            .fetch_all(&mut *conn)
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let reused = || -> Result<PgError, PgError> {
            let event_id: Uuid = first.try_get("event_id")?;
            Ok(Error::EventIdReused {
                event_id: EventId::from_uuid(event_id),
            }
            .into())
        };
        if rows.len() != columns.event_ids.len() {
            return Err(reused()?);
        }
        // The same batch: the same ids, in order, at consecutive versions of this stream.
        let mut landed = Landed::default();
        let mut previous: Option<i64> = None;
        for (row, id) in rows.iter().zip(&columns.event_ids) {
            let row_stream: &str = row.try_get("stream_id")?;
            let row_id: Uuid = row.try_get("event_id")?;
            let version: i64 = row.try_get("version")?;
            if row_stream != stream_id.as_str()
                || row_id != *id
                || previous.is_some_and(|p| p.checked_add(1) != Some(version))
            {
                return Err(reused()?);
            }
            previous = Some(version);
            landed.add(row)?;
        }
        Ok(Some(landed.outcome(stream_id, true)?))
    }

    /// The stream's version now.
    pub(super) async fn stream_version(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
    ) -> Result<Version, PgError> {
        let version: i64 = sqlx::query_scalar(&self.queries.stream_version)
            .bind(stream_id.as_str())
            .fetch_one(&mut *conn)
            .await?;
        convert::version(version)
    }

    /// The first outcome of the command `command_id`, if it was recorded.
    pub(super) async fn command_outcome_on(
        &self,
        executor: impl PgExecutor<'_>,
        command_id: CommandId,
    ) -> Result<Option<AppendOutcome>, PgError> {
        let row = sqlx::query(&self.queries.command_outcome)
            .bind(command_id.as_uuid())
            .fetch_optional(executor)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stream_id = row::stream(row.try_get("stream_id")?)?;
        let landed = Landed::summary(&row)?.ok_or(PgError::CorruptRow {
            what: "a recorded command has no position",
        })?;
        Ok(Some(landed.outcome(&stream_id, true)?))
    }
}
