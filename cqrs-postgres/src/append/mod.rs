//! Appending: one statement per batch, conflicts and duplicates told apart by constraint.
//!
//! `attempt.rs` runs one statement and says what it answered (`copy.rs` writes a new stream's
//! large batch by binary `COPY` instead), `lookup.rs` finds what an append that wrote nothing
//! ran into; this file loops over them, in autocommit
//! ([`AppendEvents::append`], through a group first when [`GroupCommit`](crate::GroupCommit)
//! is on) or in a caller's transaction ([`PgEventStore::append_in`]).

mod attempt;
mod copy;
mod lookup;
mod savepoint;

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_core::{
    AppendEvents, AppendOutcome, CommandId, Error, ExpectedVersion, NewEvent, StreamId,
};
use sqlx::PgConnection;
use tracing::Instrument;

use self::attempt::{Attempt, Constraint};
use self::savepoint::Savepoint;
use crate::columns::Columns;
use crate::convert::to_i64;
use crate::group::Grouped;
use crate::process::RecordColumns;
use crate::to_the_end::to_the_end;
use crate::{PgError, PgEventStore};

/// How often an append with [`ExpectedVersion::Any`] retries after another writer took the
/// versions it computed. Each retry means another writer made progress.
const ANY_RETRIES: u32 = 100;

impl PgEventStore {
    /// Appends inside the caller's own transaction (begun through sqlx: `begin()`) or on a plain
    /// connection, so events can be
    /// recorded atomically with the caller's other writes. Same semantics as
    /// [`AppendEvents::append`]; the append runs in a savepoint, so a conflict leaves the
    /// caller's transaction usable. Listeners are woken when the caller commits. Cut off midway
    /// (a timeout, an aborted task), it leaves the caller's transaction open (and a plain
    /// connection outside any transaction), but perhaps failed by the statement that was on its
    /// way, whose error nobody read: roll back after a cut-off append, since a `COMMIT` of a
    /// failed transaction answers as if it succeeded.
    ///
    /// One more conflict exists here: the feed orders events by their writing transaction, so a
    /// transaction that took its id (by writing anything) before the stream's last event was
    /// committed cannot append to that stream. It gets [`Error::Conflict`], whatever `expected`
    /// says; roll back and retry the unit of work in a new transaction. Appending early in the
    /// transaction makes this rare.
    ///
    /// ```no_run
    /// # use cqrs_core::{ExpectedVersion, NewEvent, StreamId};
    /// # async fn demo(store: cqrs_postgres::PgEventStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = store.pool().begin().await?;
    /// sqlx::query("UPDATE accounts SET flagged = true WHERE id = 1").execute(&mut *tx).await?;
    /// let stream = StreamId::new("account-1")?;
    /// let event = NewEvent::new("Flagged", 1, serde_json::json!({}));
    /// store.append_in(&mut tx, &stream, ExpectedVersion::Any, vec![event]).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn append_in(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, Error> {
        let columns = Columns::new(events, self.max_payload_bytes, self.max_append_bytes)?;
        Ok(self
            .append_columns_in(conn, stream_id, expected, &columns)
            .await?)
    }

    /// Appends `columns` (checked already, against whatever limits apply) to `stream_id` in
    /// the transaction on `conn`, in a savepoint.
    pub(crate) async fn append_columns_in(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        columns: &Columns,
    ) -> Result<AppendOutcome, PgError> {
        self.xid.ensure(&mut *conn).await?;
        self.append_on(conn, true, stream_id, expected, columns, None)
            .await
    }

    /// Appends `columns` to `stream_id` on `conn` (in a savepoint when `savepoint`), retrying
    /// and telling conflicts from duplicates. With `record`, the statement is
    /// `sql/process_record.sql`, which also writes a process instance's timeouts and status
    /// row when (and only when) its events are inserted.
    pub(crate) async fn append_on(
        &self,
        conn: &mut PgConnection,
        savepoint: bool,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        columns: &Columns,
        record: Option<&RecordColumns>,
    ) -> Result<AppendOutcome, PgError> {
        let expected_i64 = expected
            .exact()
            .map(|v| to_i64("expected version", v.get()))
            .transpose()?;
        // The lean statement first when it applies; the general one after any miss.
        let mut known =
            expected_i64.filter(|_| !savepoint && columns.command_id.is_none() && record.is_none());
        let mut retries = 0;
        loop {
            let attempt = if let Some(version) = known.take() {
                match self
                    .try_append_known(conn, stream_id, version, columns)
                    .await?
                {
                    Some(attempt) => attempt,
                    None => continue,
                }
            } else if savepoint {
                let sp = Savepoint::take(conn).await?;
                // Its notification is sent when the caller's transaction (or, with none, this
                // statement) commits.
                let attempt = self
                    .try_append(conn, stream_id, expected_i64, columns, true, record)
                    .await;
                match attempt {
                    Ok(Attempt::Appended(_)) => sp.release(conn).await?,
                    _ => sp.roll_back(conn).await?,
                }
                attempt?
            } else {
                self.try_append(conn, stream_id, expected_i64, columns, false, record)
                    .await?
            };
            let mut retry = expected == ExpectedVersion::Any;
            let wrong_version = match attempt {
                Attempt::Appended(landed) => return landed.outcome(stream_id, false),
                Attempt::WrongVersion(actual) => Some(actual),
                Attempt::TransactionTooOld(actual) => {
                    self.xid.suspect(&mut *conn).await?;
                    retry = false;
                    Some(actual)
                }
                Attempt::Violation(Constraint::StreamVersion) => None,
                Attempt::Violation(Constraint::EventId | Constraint::CommandId) => {
                    match self.earlier_append(conn, stream_id, columns).await? {
                        Some(outcome) => return Ok(outcome),
                        // The other append rolled back between our statement and the lookup.
                        None if retries < ANY_RETRIES => {
                            retries += 1;
                            continue;
                        }
                        None => {
                            return Err(PgError::CorruptRow {
                                what: "a unique event or command id vanished",
                            })
                        }
                    }
                }
            };
            // Nothing was written. A repeated command or batch wins over a stale expectation.
            if let Some(outcome) = self.earlier_append(conn, stream_id, columns).await? {
                return Ok(outcome);
            }
            if retry && retries < ANY_RETRIES {
                // Another writer took the versions we computed; compute again.
                retries += 1;
                continue;
            }
            let actual = match wrong_version {
                Some(actual) => actual,
                None => self.stream_version(conn, stream_id).await?,
            };
            return Err(Error::Conflict {
                stream_id: stream_id.clone(),
                expected,
                actual,
            }
            .into());
        }
    }
}

#[async_trait]
impl AppendEvents for PgEventStore {
    async fn append(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, Error> {
        // `group`: how many appends the one it rode in held (none: it was appended alone).
        let span = tracing::debug_span!(
            "pg_append",
            stream = %stream_id,
            events = events.len(),
            group = tracing::field::Empty,
        );
        Ok(self
            .append_pg(stream_id, expected, events)
            .instrument(span)
            .await?)
    }

    async fn command_outcome(&self, command_id: CommandId) -> Result<Option<AppendOutcome>, Error> {
        Ok(self
            .call(async |conn| self.command_outcome_on(conn, command_id).await)
            .await?)
    }
}

impl PgEventStore {
    /// [`AppendEvents::append`]: through a group when it applies, else on its own.
    async fn append_pg(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, PgError> {
        let columns = Arc::new(Columns::new(
            events,
            self.max_payload_bytes,
            self.max_append_bytes,
        )?);
        self.ensure_xids().await?;
        // Counted in flight until this append is done, grouped or alone.
        let admission = match (&self.group, expected.exact(), columns.command_id) {
            (Some(group), Some(version), None) => {
                Some((group, group.admit(columns.len()), version))
            }
            _ => None,
        };
        // A lane counts the versions up from the expected one: an append whose last version
        // would not fit a `bigint` goes alone, whose statement checks the stream first.
        let grouped = admission
            .as_ref()
            .filter(|(_, admitted, _)| admitted.grouped())
            .and_then(|(group, _, version)| {
                let expected = i64::try_from(version.get()).ok()?;
                expected.checked_add(i64::try_from(columns.len()).ok()?)?;
                Some((group, expected))
            });
        let mut perhaps_written = false;
        if let Some((group, version)) = grouped {
            let grouped = group
                .append(
                    &self.pool,
                    self.answer_timeout,
                    &self.queries,
                    stream_id,
                    version,
                    Arc::clone(&columns),
                )
                .await?;
            match grouped {
                Grouped::Appended(outcome) => {
                    self.notify_listeners();
                    return Ok(outcome);
                }
                Grouped::Alone => {}
                Grouped::Unknown => perhaps_written = true,
            }
        }
        // One statement in autocommit: the whole append is one round trip.
        let mut conn = self.bounded().await?;
        let mut outcome = if copy::copies(expected.exact().map(|v| v.get()), &columns) {
            // sqlx's `COPY` is not cancel-safe: cut off while it waits for the server, it
            // leaves the connection a reply out of step (every later statement on it reads
            // the one before's answer) or stuck in copy mode. So it runs to its end (or its
            // answer timeout, which drops the connection) in a task of its own, which owns the
            // connection and hands it back to the pool.
            let store = self.clone();
            let stream_id = stream_id.clone();
            let columns = Arc::clone(&columns);
            let copying = async move {
                conn.run(async |conn| {
                    (store.append_on(conn, false, &stream_id, expected, &columns, None)).await
                })
                .await
            };
            to_the_end(copying.in_current_span()).await?
        } else {
            let outcome = conn
                .run(async |conn| {
                    (self.append_on(conn, false, stream_id, expected, &columns, None)).await
                })
                .await?;
            drop(conn);
            outcome
        };
        if perhaps_written && outcome.duplicate {
            // This append's own events, at its versions: written by its group, not by an
            // earlier append (which would have failed the group on the event ids).
            outcome.duplicate = false;
        }
        drop(admission);
        if !outcome.duplicate {
            self.notify_listeners();
        }
        Ok(outcome)
    }
}
