//! A new stream's large batch by binary `COPY`: the rows go to the server in PostgreSQL's binary
//! copy format, which it inserts in pages at a time (a `COPY` writes far less WAL than an
//! `INSERT ... SELECT FROM unnest` of the same rows), then one lookup reads where they landed.
//!
//! Only for a stream the writer knows is new (expected version 0), in autocommit: the guarantees
//! of `append_known.sql` then need no check of their own. Versions `1..=n` are claimed through
//! the unique `(stream_id, version)` index, so a writer that raced another to create the stream
//! fails on it and nothing of its batch is written; a repeated event id fails on its own index.
//! No earlier event of the stream exists, so no transaction order can be broken. Both failures
//! are the same unique violations, by constraint name, as the statement's.

use cqrs_core::StreamId;
use sqlx::PgConnection;

use super::attempt::{violation, Attempt};
use crate::columns::Columns;
use crate::row::Landed;
use crate::{EventJson, PgError, PgEventStore};

/// Batches of at least this many events to a new stream are copied. A `COPY` and its lookup
/// take three round trips where the statement takes one; in `pg-bench --only batch` (16
/// clients) copying was behind the statement at 10 events a batch, even at 30, and ahead at 60
/// and 100.
pub(super) const COPY_FROM_EVENTS: usize = 64;

/// Whether an autocommit append of `columns` expecting `expected` events is copied: a new
/// stream's batch of at least [`COPY_FROM_EVENTS`], recording no command id. The one rule:
/// `try_append_known` copies by it, and the append runs such a one in a task of its own.
pub(super) fn copies(expected: Option<u64>, columns: &Columns) -> bool {
    expected == Some(0) && columns.command_id.is_none() && columns.len() >= COPY_FROM_EVENTS
}

/// The binary copy format's signature, flags and header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Columns per row, as `sql/copy_events.sql` lists them.
const FIELDS: i16 = 7;

impl PgEventStore {
    /// Copies `columns` as the events `1..=n` of the new stream `stream_id`, in autocommit on
    /// `conn`, and reads back where they landed.
    pub(super) async fn try_copy_new(
        &self,
        conn: &mut PgConnection,
        stream_id: &StreamId,
        columns: &Columns,
    ) -> Result<Attempt, PgError> {
        let rows = encode(stream_id, columns, self.event_json)?;
        let events = columns.len();
        let last = i64::try_from(events).map_err(|_| PgError::OutOfRange {
            what: "batch length",
            value: events.to_string(),
        })?;
        match copy(conn, &self.queries.copy_events, rows).await {
            Ok(copied) if usize::try_from(copied).is_ok_and(|c| c == events) => {}
            Ok(_) => {
                return Err(PgError::CorruptRow {
                    what: "a COPY wrote another number of events than it was sent",
                })
            }
            Err(error) => return violation(error),
        }
        let row = sqlx::query(&self.queries.copied)
            .bind(stream_id.as_str())
            .bind(last)
            .fetch_optional(&mut *conn)
            .await?;
        let landed = match row {
            Some(row) => Landed::summary(&row)?,
            None => None,
        };
        landed.map(Attempt::Appended).ok_or(PgError::CorruptRow {
            what: "the last event of a COPY was not found",
        })
    }
}

/// Sends `rows` through `statement` (a `COPY ... FROM STDIN`); how many rows it wrote.
async fn copy(conn: &mut PgConnection, statement: &str, rows: Vec<u8>) -> sqlx::Result<u64> {
    let mut copy = conn.copy_in_raw(statement).await?;
    if let Err(error) = copy.send(rows).await {
        // Leave the connection out of copy mode; the send's error is the one to report.
        let _aborted = copy.abort("the append could not send its events").await;
        return Err(error);
    }
    copy.finish().await
}

/// The rows of `columns` for `stream_id` in the binary copy format, payload and metadata as
/// `event_json` sends them in binary.
fn encode(
    stream_id: &StreamId,
    columns: &Columns,
    event_json: EventJson,
) -> Result<Vec<u8>, PgError> {
    let json_prefix = event_json.binary_prefix();
    let per_row = 2 + 7 * 4 + stream_id.as_str().len() + 8 + 16 + 4 + 1;
    let mut out = Vec::with_capacity(
        HEADER.len() + 2 + columns.len() * per_row + columns.bytes + columns.event_types.len() * 16,
    );
    out.extend_from_slice(HEADER);
    // What every row starts with: the field count and the stream id.
    let mut head = Vec::with_capacity(2 + 4 + stream_id.as_str().len());
    head.extend_from_slice(&FIELDS.to_be_bytes());
    field(&mut head, &[stream_id.as_str().as_bytes()])?;
    let mut version = 0_i64;
    for i in 0..columns.len() {
        version += 1;
        out.extend_from_slice(&head);
        // Fixed-width fields: their lengths are constants.
        out.extend_from_slice(&8_i32.to_be_bytes());
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&16_i32.to_be_bytes());
        out.extend_from_slice(columns.event_ids[i].as_bytes());
        field(&mut out, &[columns.event_types[i].as_bytes()])?;
        out.extend_from_slice(&4_i32.to_be_bytes());
        out.extend_from_slice(&columns.schema_versions[i].to_be_bytes());
        field(&mut out, &[json_prefix, columns.payloads[i].as_bytes()])?;
        field(&mut out, &[json_prefix, columns.metadata[i].as_bytes()])?;
    }
    out.extend_from_slice(&(-1_i16).to_be_bytes());
    Ok(out)
}

/// One field: its length, then its bytes (given in parts).
fn field(out: &mut Vec<u8>, parts: &[&[u8]]) -> Result<(), PgError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = i32::try_from(len).map_err(|_| PgError::OutOfRange {
        what: "field length",
        value: len.to_string(),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_core::{NewEvent, StreamId};
    use serde_json::json;

    #[test]
    fn rows_are_encoded_as_the_binary_copy_format_lays_them_out() {
        let events = vec![NewEvent::new("Opened", 2, json!({"a": 1}))];
        let columns = Columns::new(events, 1 << 20, 1 << 20).expect("columns");
        let stream = StreamId::new("acc-1").expect("stream");

        let out = encode(&stream, &columns, EventJson::Jsonb).expect("encodes");

        assert_eq!(&out[..11], b"PGCOPY\n\xff\r\n\0");
        assert_eq!(&out[11..19], &[0; 8], "no flags, no header extension");
        let mut at = 19;
        let mut take = |n: usize| {
            let bytes = &out[at..at + n];
            at += n;
            bytes.to_vec()
        };
        assert_eq!(take(2), 7_i16.to_be_bytes());
        assert_eq!(take(4), 5_i32.to_be_bytes());
        assert_eq!(take(5), b"acc-1");
        assert_eq!(take(4), 8_i32.to_be_bytes());
        assert_eq!(take(8), 1_i64.to_be_bytes(), "the first version");
        assert_eq!(take(4), 16_i32.to_be_bytes());
        assert_eq!(take(16), columns.event_ids[0].as_bytes());
        assert_eq!(take(4), 6_i32.to_be_bytes());
        assert_eq!(take(6), b"Opened");
        assert_eq!(take(4), 4_i32.to_be_bytes());
        assert_eq!(take(4), 2_i32.to_be_bytes(), "the schema version");
        let payload = take(4);
        assert_eq!(
            payload,
            8_i32.to_be_bytes(),
            "jsonb: a version byte, then the text"
        );
        assert_eq!(take(8), b"\x01{\"a\":1}");
        let metadata_len = i32::from_be_bytes(take(4).try_into().expect("4 bytes"));
        let metadata = take(usize::try_from(metadata_len).expect("length"));
        assert_eq!(metadata[0], 1);
        assert_eq!(&metadata[1..], columns.metadata[0].as_bytes());
        assert_eq!(take(2), (-1_i16).to_be_bytes(), "the trailer");
        assert_eq!(at, out.len());
    }

    #[test]
    fn json_columns_get_the_text_alone() {
        let events = vec![NewEvent::new("Opened", 2, json!({"a": 1}))];
        let columns = Columns::new(events, 1 << 20, 1 << 20).expect("columns");
        let stream = StreamId::new("acc-1").expect("stream");
        let jsonb = encode(&stream, &columns, EventJson::Jsonb).expect("encodes");
        let json = encode(&stream, &columns, EventJson::Json).expect("encodes");

        let payload = b"{\"a\":1}";
        let metadata = columns.metadata[0].as_bytes();
        let field = |prefix: &[u8], text: &[u8]| {
            let len = i32::try_from(prefix.len() + text.len()).expect("small");
            [&len.to_be_bytes()[..], prefix, text].concat()
        };
        let jsonb_fields = [field(b"\x01", payload), field(b"\x01", metadata)].concat();
        let json_fields = [field(b"", payload), field(b"", metadata)].concat();
        // The same rows up to the payload; then each JSON field without the version byte.
        let at = jsonb.len() - 2 - jsonb_fields.len();
        assert_eq!(&jsonb[..at], &json[..at]);
        assert_eq!(&jsonb[at..jsonb.len() - 2], &jsonb_fields[..]);
        assert_eq!(&json[at..json.len() - 2], &json_fields[..]);
        assert_eq!(json.len() + 2, jsonb.len());
    }
}
