//! One try of the lone append statements, and what it answered.

use cqrs_core::{StreamId, Version};
use sqlx::PgConnection;

use super::copy::copies;
use crate::columns::Columns;
use crate::process::RecordColumns;
use crate::row::Landed;
use crate::{convert, PgError, PgEventStore};

/// What an append statement answered.
pub(super) enum Attempt {
    /// Written: where the events landed.
    Appended(Landed),
    /// The stream was not at the expected version (nothing was written).
    WrongVersion(Version),
    /// The stream's last event was written by a younger transaction than ours: writing now would
    /// put our events before it in the feed (nothing was written). Only a new transaction helps.
    TransactionTooOld(Version),
    /// A unique constraint fired (nothing was written).
    Violation(Constraint),
}

/// Our unique constraints an append can run into.
#[derive(Debug, Clone, Copy)]
pub(super) enum Constraint {
    StreamVersion,
    EventId,
    CommandId,
}

impl PgEventStore {
    /// The general statement (`sql/append.sql`): any expected version, a command id, a notify
    /// in the statement. With `record`, `sql/process_record.sql`: the same append, answering
    /// the same way, that also writes a process instance's timeouts and status row.
    pub(super) async fn try_append(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
        expected: Option<i64>,
        columns: &Columns,
        notify_in_statement: bool,
        record: Option<&RecordColumns>,
    ) -> Result<Attempt, PgError> {
        let sql = match record {
            Some(_) => &self.queries.process_record,
            None => &self.queries.append,
        };
        let query = columns
            .bind(sqlx::query(sql), stream_id)
            .bind(expected)
            .bind(columns.command_id.map(|c| c.as_uuid()))
            .bind(notify_in_statement.then(|| self.schema.channel()));
        let query = match record {
            Some(record) => record.bind(query),
            None => query,
        };
        let result = query.fetch_one(&mut *conn).await;
        let row = match result {
            Ok(row) => row,
            Err(error) => return violation(error),
        };
        if let Some(landed) = Landed::summary(&row)? {
            return Ok(Attempt::Appended(landed));
        }
        let current = convert::version(sqlx::Row::try_get(&row, "current_version")?)?;
        let in_order: bool = sqlx::Row::try_get(&row, "in_order")?;
        Ok(if in_order {
            Attempt::WrongVersion(current)
        } else {
            Attempt::TransactionTooOld(current)
        })
    }

    /// The lean statement for a writer that knows the stream's version and records no command
    /// id. `None`: the stream is not at `expected` (or was written by a younger transaction),
    /// and nothing was written; the general statement tells which.
    pub(super) async fn try_append_known(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
        expected: i64,
        columns: &Columns,
    ) -> Result<Option<Attempt>, PgError> {
        if copies(u64::try_from(expected).ok(), columns) {
            return self.try_copy_new(conn, stream_id, columns).await.map(Some);
        }
        // One event: no row when the check failed. Several: a summary row whose position is
        // NULL when it failed.
        let sql = if columns.len() == 1 {
            &self.queries.append_known
        } else {
            &self.queries.append_known_batch
        };
        let result = columns
            .bind(sqlx::query(sql), stream_id)
            .bind(expected)
            .fetch_optional(&mut *conn)
            .await;
        match result {
            Ok(Some(row)) => Ok(Landed::summary(&row)?.map(Attempt::Appended)),
            Ok(None) => Ok(None),
            Err(error) => violation(error).map(Some),
        }
    }
}

/// A failed statement: a violation of one of our unique constraints is an answer (nothing was
/// written), anything else an error.
pub(super) fn violation(error: sqlx::Error) -> Result<Attempt, PgError> {
    match violated(&error) {
        Some(constraint) => Ok(Attempt::Violation(constraint)),
        None => Err(PgError::Database(error)),
    }
}

/// Which of our unique constraints an error violated, through sqlx's classification.
fn violated(error: &sqlx::Error) -> Option<Constraint> {
    let db = error.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    match db.constraint()? {
        "events_stream_version_key" => Some(Constraint::StreamVersion),
        "events_event_id_key" => Some(Constraint::EventId),
        "commands_pkey" => Some(Constraint::CommandId),
        _ => None,
    }
}
