//! Appending: one statement per batch, conflicts and duplicates told apart by constraint.

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_core::backend::{check_batch, BatchCheck};
use cqrs_core::{
    AppendEvents, AppendOutcome, CommandId, Error, EventId, ExpectedVersion, NewEvent, StreamId,
    Version,
};
use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

use crate::convert::{self, to_i64};
use crate::{PgError, PgEventStore};

/// How often an append with [`ExpectedVersion::Any`] retries after another writer took the
/// versions it computed. Each retry means another writer made progress.
const ANY_RETRIES: u32 = 100;

/// The columns of one batch, as arrays for `unnest`.
pub(crate) struct Columns {
    pub(crate) event_ids: Vec<Uuid>,
    pub(crate) event_types: Vec<String>,
    pub(crate) schema_versions: Vec<i32>,
    pub(crate) payloads: Vec<String>,
    pub(crate) metadata: Vec<String>,
    pub(crate) command_id: Option<CommandId>,
    /// The JSON text of every payload and metadata (headers included), in bytes.
    pub(crate) bytes: usize,
}

impl Columns {
    /// Checks and encodes a batch: each payload within `max_payload_bytes`, and the whole
    /// append, payloads and metadata with headers, within `max_append_bytes`.
    pub(crate) fn new(
        events: Vec<NewEvent>,
        max_payload_bytes: usize,
        max_append_bytes: usize,
    ) -> Result<Self, Error> {
        let BatchCheck {
            command_id,
            payloads,
            ..
        } = check_batch(&events, max_payload_bytes)?;
        let mut bytes: usize = payloads.iter().map(String::len).sum();
        let mut columns = Columns {
            event_ids: Vec::with_capacity(events.len()),
            event_types: Vec::with_capacity(events.len()),
            schema_versions: Vec::with_capacity(events.len()),
            payloads,
            metadata: Vec::with_capacity(events.len()),
            command_id,
            bytes: 0,
        };
        let count = events.len();
        for event in events {
            let schema_version =
                i32::try_from(event.schema_version).map_err(|_| PgError::OutOfRange {
                    what: "schema version",
                    value: event.schema_version.to_string(),
                })?;
            // Ids, uuids and a map of strings: this cannot fail, but is typed if it ever does.
            let metadata =
                serde_json::to_string(&event.metadata).map_err(|source| Error::Encode {
                    event_type: event.event_type.clone(),
                    source,
                })?;
            bytes = bytes.saturating_add(metadata.len());
            if bytes > max_append_bytes {
                // Stop early: the rest only adds to it.
                return Err(PgError::AppendTooLarge {
                    events: count,
                    bytes,
                    limit: max_append_bytes,
                }
                .into());
            }
            columns.event_ids.push(event.metadata.event_id.as_uuid());
            columns.event_types.push(event.event_type);
            columns.schema_versions.push(schema_version);
            columns.metadata.push(metadata);
        }
        columns.bytes = bytes;
        Ok(columns)
    }
}

impl Columns {
    /// How many events.
    pub(crate) fn len(&self) -> usize {
        self.event_ids.len()
    }

    /// Binds `$1` to `$6` of both append statements: the stream and the event columns.
    fn bind<'q>(&'q self, query: PgQuery<'q>, stream_id: &'q StreamId) -> PgQuery<'q> {
        query
            .bind(stream_id.as_str())
            .bind(&self.event_ids)
            .bind(&self.event_types)
            .bind(&self.schema_versions)
            .bind(&self.payloads)
            .bind(&self.metadata)
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// The rows one append's `INSERT ... RETURNING version, position, transaction_id::text` gave
/// back, summed up into its outcome (the lean and the group statement return that shape).
#[derive(Debug, Default)]
pub(crate) struct Landed {
    rows: usize,
    first: i64,
    last: i64,
    position: i64,
    transaction_id: String,
}

impl Landed {
    /// Counts one returned row; its first three columns are version, position and transaction.
    pub(crate) fn add(&mut self, row: &PgRow) -> Result<(), sqlx::Error> {
        let version: i64 = row.try_get(0)?;
        let position: i64 = row.try_get(1)?;
        if self.rows == 0 {
            (self.first, self.last) = (version, version);
            // One statement, one transaction: every row has the same.
            self.transaction_id = row.try_get(2)?;
        }
        self.first = self.first.min(version);
        self.last = self.last.max(version);
        self.position = self.position.max(position);
        self.rows += 1;
        Ok(())
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The outcome of a fresh append to `stream_id` (at least one row counted).
    pub(crate) fn outcome(&self, stream_id: &StreamId) -> Result<AppendOutcome, PgError> {
        Ok(AppendOutcome::new(
            stream_id.clone(),
            convert::version(self.first)?,
            convert::version(self.last)?,
            convert::position(&self.transaction_id, self.position)?,
            false,
        ))
    }
}

/// What the append statement answered.
enum Attempt {
    Appended(AppendOutcome),
    /// The stream was not at the expected version (nothing was written).
    WrongVersion(Version),
    /// The stream's last event was written by a younger transaction than ours: writing now would
    /// put our events before it in the feed (nothing was written). Only a new transaction helps.
    TransactionTooOld(Version),
    /// A unique constraint fired (nothing was written).
    Violation(Constraint),
}

#[derive(Debug, Clone, Copy)]
enum Constraint {
    StreamVersion,
    EventId,
    CommandId,
}

impl PgEventStore {
    async fn try_append(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
        expected: Option<i64>,
        columns: &Columns,
        notify_in_statement: bool,
    ) -> Result<Attempt, Error> {
        let result = columns
            .bind(sqlx::query(&self.queries.append), stream_id)
            .bind(expected)
            .bind(columns.command_id.map(|c| c.as_uuid()))
            .bind(notify_in_statement.then(|| self.schema.channel()))
            .fetch_one(&mut *conn)
            .await;
        match result {
            Ok(row) => Ok(appended(stream_id, &row)?),
            Err(error) => match violated(&error) {
                Some(constraint) => Ok(Attempt::Violation(constraint)),
                None => Err(PgError::Database(error).into()),
            },
        }
    }

    /// The lean statement for a writer that knows the stream's version and records no command
    /// id. `None`: the stream is not at `expected` (or was written by a younger transaction),
    /// and nothing was written; the general statement tells which.
    async fn try_append_known(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
        expected: i64,
        columns: &Columns,
    ) -> Result<Option<Attempt>, Error> {
        let result = columns
            .bind(sqlx::query(&self.queries.append_known), stream_id)
            .bind(expected)
            .fetch_all(&mut *conn)
            .await;
        let rows = match result {
            Ok(rows) => rows,
            Err(error) => {
                return match violated(&error) {
                    Some(constraint) => Ok(Some(Attempt::Violation(constraint))),
                    None => Err(PgError::Database(error).into()),
                }
            }
        };
        let mut landed = Landed::default();
        for row in &rows {
            landed.add(row).map_err(PgError::from)?;
        }
        if landed.rows() == 0 {
            return Ok(None);
        }
        Ok(Some(Attempt::Appended(landed.outcome(stream_id)?)))
    }

    /// Nothing was written: is it because these events (or this command) are already in?
    async fn earlier_append(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
        columns: &Columns,
    ) -> Result<Option<AppendOutcome>, Error> {
        if let Some(command_id) = columns.command_id {
            if let Some(outcome) = self.command_outcome_on(conn, command_id).await? {
                if outcome.stream_id != *stream_id {
                    return Err(Error::CommandIdReused {
                        command_id,
                        stream_id: outcome.stream_id,
                    });
                }
                return Ok(Some(outcome));
            }
        }
        let rows = sqlx::query(&self.queries.events_by_id)
            .bind(&columns.event_ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(PgError::from)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let reused = || -> Result<Error, Error> {
            let event_id = rows[0]
                .try_get::<Uuid, _>("event_id")
                .map_err(PgError::from)?;
            Ok(Error::EventIdReused {
                event_id: EventId::from_uuid(event_id),
            })
        };
        if rows.len() != columns.event_ids.len() {
            return Err(reused()?);
        }
        let mut versions = Vec::with_capacity(rows.len());
        for (row, id) in rows.iter().zip(&columns.event_ids) {
            let row_stream: &str = row.try_get("stream_id").map_err(PgError::from)?;
            let row_id: Uuid = row.try_get("event_id").map_err(PgError::from)?;
            if row_stream != stream_id.as_str() || row_id != *id {
                return Err(reused()?);
            }
            versions.push(row.try_get::<i64, _>("version").map_err(PgError::from)?);
        }
        if versions.windows(2).any(|w| w[1] != w[0] + 1) {
            return Err(reused()?);
        }
        let last = &rows[rows.len() - 1];
        let transaction_id: &str = last.try_get("transaction_id").map_err(PgError::from)?;
        let position: i64 = last.try_get("position").map_err(PgError::from)?;
        Ok(Some(AppendOutcome::new(
            stream_id.clone(),
            convert::version(versions[0])?,
            convert::version(versions[versions.len() - 1])?,
            convert::position(transaction_id, position)?,
            true,
        )))
    }

    async fn stream_version(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
    ) -> Result<Version, Error> {
        let version: i64 = sqlx::query_scalar(&self.queries.stream_version)
            .bind(stream_id.as_str())
            .fetch_one(&mut *conn)
            .await
            .map_err(PgError::from)?;
        Ok(convert::version(version)?)
    }
}

fn appended(stream_id: &StreamId, row: &PgRow) -> Result<Attempt, PgError> {
    let position: Option<i64> = row.try_get("position")?;
    let Some(position) = position else {
        let current = convert::version(row.try_get("current_version")?)?;
        let in_order: bool = row.try_get("in_order")?;
        return Ok(if in_order {
            Attempt::WrongVersion(current)
        } else {
            Attempt::TransactionTooOld(current)
        });
    };
    let first: Option<i64> = row.try_get("first_version")?;
    let last: Option<i64> = row.try_get("last_version")?;
    let transaction_id: Option<&str> = row.try_get("transaction_id")?;
    let (Some(first), Some(last), Some(transaction_id)) = (first, last, transaction_id) else {
        return Err(PgError::CorruptRow {
            what: "append returned a position without versions",
        });
    };
    Ok(Attempt::Appended(AppendOutcome::new(
        stream_id.clone(),
        convert::version(first)?,
        convert::version(last)?,
        convert::position(transaction_id, position)?,
        false,
    )))
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

impl PgEventStore {
    /// Appends inside the caller's own transaction (or on a plain connection), so events can be
    /// recorded atomically with the caller's other writes. Same semantics as
    /// [`AppendEvents::append`]; the append runs in a savepoint, so a conflict leaves the
    /// caller's transaction usable. Listeners are woken when the caller commits.
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
        self.xid.ensure(&mut *conn).await?;
        self.append_on(conn, true, stream_id, expected, &columns)
            .await
    }

    async fn append_on(
        &self,
        conn: &mut PgConnection,
        savepoint: bool,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        columns: &Columns,
    ) -> Result<AppendOutcome, Error> {
        let expected_i64 = expected
            .exact()
            .map(|v| to_i64("expected version", v.get()))
            .transpose()?;
        // The lean statement first when it applies; the general one after any miss.
        let mut known = expected_i64.filter(|_| !savepoint && columns.command_id.is_none());
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
                let mut sp = conn.begin().await.map_err(PgError::from)?;
                let attempt = self
                    .try_append(&mut sp, stream_id, expected_i64, columns, true)
                    .await;
                match attempt {
                    Ok(Attempt::Appended(_)) => sp.commit().await.map_err(PgError::from)?,
                    _ => sp.rollback().await.map_err(PgError::from)?,
                }
                attempt?
            } else {
                self.try_append(conn, stream_id, expected_i64, columns, false)
                    .await?
            };
            let mut retry = expected == ExpectedVersion::Any;
            let wrong_version = match attempt {
                Attempt::Appended(outcome) => return Ok(outcome),
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
                            }
                            .into())
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
            });
        }
    }

    async fn command_outcome_on(
        &self,
        conn: &mut PgConnection,
        command_id: CommandId,
    ) -> Result<Option<AppendOutcome>, Error> {
        let row = sqlx::query(&self.queries.command_outcome)
            .bind(command_id.as_uuid())
            .fetch_optional(&mut *conn)
            .await
            .map_err(PgError::from)?;
        let Some(row) = row else { return Ok(None) };
        let outcome = (|| -> Result<AppendOutcome, PgError> {
            let stream_id: &str = row.try_get("stream_id")?;
            let stream_id = StreamId::new(stream_id).map_err(|_| PgError::CorruptRow {
                what: "stored stream id is invalid",
            })?;
            let transaction_id: &str = row.try_get("transaction_id")?;
            Ok(AppendOutcome::new(
                stream_id,
                convert::version(row.try_get("first_version")?)?,
                convert::version(row.try_get("last_version")?)?,
                convert::position(transaction_id, row.try_get("position")?)?,
                true,
            ))
        })()?;
        Ok(Some(outcome))
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
        let columns = Arc::new(Columns::new(
            events,
            self.max_payload_bytes,
            self.max_append_bytes,
        )?);
        self.xid.ensure(&self.pool).await?;
        if let (Some(group), Some(version), None) =
            (&self.group, expected.exact(), columns.command_id)
        {
            let version = to_i64("expected version", version.get())?;
            let grouped = group
                .append(
                    &self.pool,
                    &self.queries,
                    stream_id,
                    version,
                    Arc::clone(&columns),
                )
                .await?;
            if let Some(outcome) = grouped {
                self.notifier.signal(&self.pool, &self.schema.channel());
                return Ok(outcome);
            }
        }
        // One statement in autocommit: the whole append is one round trip.
        let mut conn = self.pool.acquire().await.map_err(PgError::from)?;
        let outcome = self
            .append_on(&mut conn, false, stream_id, expected, &columns)
            .await?;
        drop(conn);
        if !outcome.duplicate {
            self.notifier.signal(&self.pool, &self.schema.channel());
        }
        Ok(outcome)
    }

    async fn command_outcome(&self, command_id: CommandId) -> Result<Option<AppendOutcome>, Error> {
        let mut conn = self.pool.acquire().await.map_err(PgError::from)?;
        self.command_outcome_on(&mut conn, command_id).await
    }
}
