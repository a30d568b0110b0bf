//! The raw sqlx ceilings on a `raw_events` table of the same shape as ours: plain statements,
//! no framework.

use std::sync::LazyLock;

use anyhow::{bail, Context as _, Result};
use cqrs_postgres::EventJson;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{amount_of, retrying, Attempt, BatchSystem, Command, CommandSystem, FeedSystem};
use crate::domain::{decide, payload, Deposit, Deposited, CATEGORY, EVENT_TYPE};

/// The raw statements for this run's column type (`--event-json`): payload and metadata are
/// sent as text and cast to it, as ours are, so neither side converts one type into the other.
struct Statements {
    insert_one: String,
    insert_one_notify: String,
    insert_many: String,
    create: String,
    create_like_ours: String,
}

static STATEMENTS: LazyLock<Statements> = LazyLock::new(|| {
    let json = super::event_json().to_string();
    let fill = |sql: &str| sql.replace("{event_json}", &json);
    Statements {
        insert_one: fill(INSERT_ONE),
        insert_one_notify: fill(INSERT_ONE_NOTIFY),
        insert_many: fill(INSERT_MANY),
        create: fill(include_str!("raw_events.sql")),
        create_like_ours: fill(include_str!("raw_events_like_ours.sql")),
    }
});

const INSERT_ONE: &str = "\
INSERT INTO raw_events (stream_id, version, event_id, event_type, schema_version, payload, metadata)
VALUES ($1, $2, $3, $4, 1, $5::{event_json}, $6::{event_json})";

const INSERT_ONE_NOTIFY: &str = "\
WITH inserted AS (
    INSERT INTO raw_events (stream_id, version, event_id, event_type, schema_version, payload, metadata)
    VALUES ($1, $2, $3, $4, 1, $5::{event_json}, $6::{event_json})
    RETURNING position
)
SELECT pg_notify('raw_events', '') FROM inserted";

const INSERT_MANY: &str = "\
INSERT INTO raw_events (stream_id, version, event_id, event_type, schema_version, payload, metadata)
SELECT $1, v, e, $2, 1, p::{event_json}, m::{event_json}
FROM UNNEST($3::bigint[], $4::uuid[], $5::text[], $6::text[]) AS t(v, e, p, m)";

const SELECT_STREAM: &str = "\
SELECT version, event_type, payload FROM raw_events WHERE stream_id = $1 ORDER BY version";

const SELECT_FEED: &str = "\
SELECT position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at
FROM raw_events WHERE position > $1 ORDER BY position LIMIT $2";

/// The same read of one category's streams, as `cqrs_core::EventFilter::category` defines it
/// (the stream id up to its first `-`).
const SELECT_FEED_CATEGORY: &str = "\
SELECT position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at
FROM raw_events WHERE position > $1 AND split_part(stream_id, '-', 1) = $3 ORDER BY position LIMIT $2";

/// Creates the `raw_events` table.
pub(crate) async fn migrate(pool: &PgPool) -> Result<()> {
    sqlx::raw_sql(&STATEMENTS.create)
        .execute(pool)
        .await
        .context("creating raw_events")?;
    Ok(())
}

/// Creates the `raw_events` table with the indexes of `cqrs.events` (a unique event id, the
/// feed key), for the ceilings that should pay for what an append maintains.
pub(crate) async fn migrate_like_ours(pool: &PgPool) -> Result<()> {
    sqlx::raw_sql(&STATEMENTS.create_like_ours)
        .execute(pool)
        .await
        .context("creating raw_events with the indexes of cqrs.events")?;
    Ok(())
}

fn stream_of(id: &str) -> String {
    format!("{CATEGORY}-{id}")
}

fn metadata() -> Value {
    serde_json::json!({ "correlation_id": Uuid::now_v7() })
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

async fn insert_one(pool: &PgPool, stream: &str, version: u64, amount: u64) -> sqlx::Result<()> {
    insert(pool, &STATEMENTS.insert_one, stream, version, amount).await
}

async fn insert(
    pool: &PgPool,
    sql: &'static str,
    stream: &str,
    version: u64,
    amount: u64,
) -> sqlx::Result<()> {
    let version = i64::try_from(version).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(sql)
        .bind(stream)
        .bind(version)
        .bind(Uuid::now_v7())
        .bind(EVENT_TYPE)
        .bind(payload(amount).to_string())
        .bind(metadata().to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// Ceiling (c): read the stream's rows, fold them, decide, insert the next version; retry on a
/// unique violation.
pub(crate) struct RawReadInsert {
    pool: PgPool,
}

impl RawReadInsert {
    /// Over `pool`, with `raw_events` created.
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn attempt(&self, stream: &str, amount: u64) -> Result<Attempt> {
        let rows = sqlx::query(SELECT_STREAM)
            .bind(stream)
            .fetch_all(&self.pool)
            .await?;
        let (mut balance, mut version) = (0_u64, 0_i64);
        for row in rows {
            let event_type: &str = row.try_get("event_type")?;
            if event_type != EVENT_TYPE {
                bail!("unknown event type {event_type}");
            }
            let Json(deposited): Json<Deposited> = row.try_get("payload")?;
            balance += deposited.amount;
            version = row.try_get("version")?;
        }
        let deposited = decide(balance, Deposit { amount })?;
        let next = u64::try_from(version)? + 1;
        match insert_one(&self.pool, stream, next, deposited.amount).await {
            Ok(()) => Ok(Attempt::Done),
            Err(error) if is_unique_violation(&error) => Ok(Attempt::Conflict),
            Err(error) => Err(error.into()),
        }
    }
}

impl CommandSystem for RawReadInsert {
    async fn deposit(&self, command: &Command) -> Result<u64> {
        let stream = stream_of(&command.id);
        retrying(|| self.attempt(&stream, command.amount)).await
    }
}

/// Ceiling (d): insert the command's row at its known version, reading nothing.
pub(crate) struct RawInsertOnly {
    pool: PgPool,
    sql: &'static str,
}

impl RawInsertOnly {
    /// Over `pool`, with `raw_events` created.
    pub(crate) fn new(pool: PgPool) -> Self {
        Self {
            pool,
            sql: &STATEMENTS.insert_one,
        }
    }

    /// The same, and `pg_notify` in the same statement, as a store that wakes listeners does:
    /// PostgreSQL serializes the commits of notifying transactions.
    pub(crate) fn notifying(pool: PgPool) -> Self {
        Self {
            pool,
            sql: &STATEMENTS.insert_one_notify,
        }
    }
}

impl CommandSystem for RawInsertOnly {
    async fn deposit(&self, command: &Command) -> Result<u64> {
        let stream = stream_of(&command.id);
        insert(
            &self.pool,
            self.sql,
            &stream,
            command.version,
            command.amount,
        )
        .await?;
        Ok(0)
    }
}

/// Batch appends as one `INSERT ... SELECT FROM UNNEST(...)` of all the rows.
pub(crate) struct RawBatch {
    pool: PgPool,
}

impl RawBatch {
    /// Over `pool`, with `raw_events` created.
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl BatchSystem for RawBatch {
    async fn append_batch(&self, stream: &str, events: u64) -> Result<()> {
        let capacity = usize::try_from(events)?;
        let (mut versions, mut ids, mut payloads, mut metadatas) = (
            Vec::with_capacity(capacity),
            Vec::with_capacity(capacity),
            Vec::with_capacity(capacity),
            Vec::with_capacity(capacity),
        );
        let correlation = metadata().to_string();
        for version in 1..=events {
            versions.push(i64::try_from(version)?);
            ids.push(Uuid::now_v7());
            payloads.push(payload(amount_of(version)).to_string());
            metadatas.push(correlation.clone());
        }
        let inserted = sqlx::query(&STATEMENTS.insert_many)
            .bind(stream)
            .bind(EVENT_TYPE)
            .bind(versions)
            .bind(ids)
            .bind(payloads)
            .bind(metadatas)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if inserted != events {
            bail!("inserted {inserted} rows of {events}");
        }
        Ok(())
    }
}

/// The feed ceiling: keyset pagination over `position`, every column decoded.
pub(crate) struct RawFeed {
    pool: PgPool,
    keep_pages: bool,
}

impl RawFeed {
    /// Over `pool`, with `raw_events` created: each row decoded, then dropped, or with
    /// `keep_pages` each page's decoded events kept until the next read, as a reader that hands
    /// its caller a page does (`ReadAll::read_all` returns one). Freeing each row's allocations
    /// at once lets the allocator reuse the same memory row after row; a page of 1,000 held
    /// events makes it take fresh memory.
    pub(crate) fn new(pool: PgPool, keep_pages: bool) -> Self {
        Self { pool, keep_pages }
    }
}

/// One row of the feed, decoded as a consumer would.
#[expect(
    dead_code,
    reason = "decoded to do the work a reader does; only `position` and `stream_id` are read"
)]
struct RawEvent {
    position: i64,
    stream_id: String,
    version: i64,
    event_id: Uuid,
    event_type: String,
    schema_version: i32,
    payload: Value,
    metadata: Value,
    recorded_at: OffsetDateTime,
}

impl FeedSystem for RawFeed {
    async fn read_feed(&self, batch: u64, category: Option<&'static str>) -> Result<u64> {
        let limit = i64::try_from(batch)?;
        let (mut after, mut read) = (0_i64, 0_u64);
        loop {
            let query = match category {
                None => sqlx::query(SELECT_FEED).bind(after).bind(limit),
                Some(category) => sqlx::query(SELECT_FEED_CATEGORY)
                    .bind(after)
                    .bind(limit)
                    .bind(category),
            };
            let rows = query.fetch_all(&self.pool).await?;
            if rows.is_empty() {
                return Ok(read);
            }
            let mut page = Vec::with_capacity(if self.keep_pages { rows.len() } else { 0 });
            for row in rows {
                let event = RawEvent {
                    position: row.try_get("position")?,
                    stream_id: row.try_get("stream_id")?,
                    version: row.try_get("version")?,
                    event_id: row.try_get("event_id")?,
                    event_type: row.try_get("event_type")?,
                    schema_version: row.try_get("schema_version")?,
                    payload: row.try_get("payload")?,
                    metadata: row.try_get("metadata")?,
                    recorded_at: row.try_get("recorded_at")?,
                };
                if event.position <= after {
                    bail!("position {} after {after}", event.position);
                }
                if let Some(category) = category {
                    if event.stream_id.split('-').next() != Some(category) {
                        bail!(
                            "{} at {} is not of {category}",
                            event.stream_id,
                            event.position
                        );
                    }
                }
                after = event.position;
                read += 1;
                if self.keep_pages {
                    page.push(event);
                }
            }
            // Held to here, like a page handed to a caller; never optimized away.
            std::hint::black_box(&page);
        }
    }
}

/// The bulk ceiling: a binary `COPY` of the batch into `raw_events` in autocommit, nothing
/// checked or read back (a racing writer would fail on the unique index).
pub(crate) struct RawCopyBatch {
    pool: PgPool,
}

impl RawCopyBatch {
    /// Over `pool`, with `raw_events` created.
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

const COPY_EVENTS: &str = "COPY raw_events (stream_id, version, event_id, event_type, \
     schema_version, payload, metadata) FROM STDIN (FORMAT binary)";

fn field(buf: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    buf.extend_from_slice(&i32::try_from(bytes.len())?.to_be_bytes());
    buf.extend_from_slice(bytes);
    Ok(())
}

/// A payload or metadata field as this run's column type takes it in binary: `jsonb` a
/// version byte, then the text; `json` the text.
fn json_field(buf: &mut Vec<u8>, json: &str) -> Result<()> {
    match super::event_json() {
        EventJson::Json => field(buf, json.as_bytes()),
        _ => {
            buf.extend_from_slice(&i32::try_from(json.len() + 1)?.to_be_bytes());
            buf.push(1);
            buf.extend_from_slice(json.as_bytes());
            Ok(())
        }
    }
}

impl BatchSystem for RawCopyBatch {
    async fn append_batch(&self, stream: &str, events: u64) -> Result<()> {
        let correlation = metadata().to_string();
        let mut buf = Vec::with_capacity(64 + usize::try_from(events)? * 200);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0_i32.to_be_bytes());
        buf.extend_from_slice(&0_i32.to_be_bytes());
        for version in 1..=events {
            buf.extend_from_slice(&7_i16.to_be_bytes());
            field(&mut buf, stream.as_bytes())?;
            field(&mut buf, &i64::try_from(version)?.to_be_bytes())?;
            field(&mut buf, Uuid::now_v7().as_bytes())?;
            field(&mut buf, EVENT_TYPE.as_bytes())?;
            field(&mut buf, &1_i32.to_be_bytes())?;
            json_field(&mut buf, &payload(amount_of(version)).to_string())?;
            json_field(&mut buf, &correlation)?;
        }
        buf.extend_from_slice(&(-1_i16).to_be_bytes());
        let mut conn = self.pool.acquire().await?;
        let mut copy = conn.copy_in_raw(COPY_EVENTS).await?;
        copy.send(buf).await?;
        let inserted = copy.finish().await?;
        if inserted != events {
            bail!("copied {inserted} rows of {events}");
        }
        Ok(())
    }
}
