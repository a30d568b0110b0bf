//! Decoding rows: events, and where an append's events landed.

use crate::jsonb::Jsonb;
use cqrs_core::backend::MetadataWithoutId;
use cqrs_core::{AppendOutcome, EventId, NewEvent, RecordedEvent, StreamId};
use futures_util::{Stream, TryStreamExt as _};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::convert;
use crate::timestamp::Timestamp;
use crate::xid8::Xid8;
use crate::PgError;

/// An event row: `transaction_id, position, stream_id, version, event_type, schema_version,
/// payload, metadata, recorded_at, event_id`, in this order, the transaction id as `xid8`
/// ([`Xid8`]). The metadata JSON has every field but the event id, which is in its column (rows
/// written before it was taken out of the JSON read the same way). Reading by index spares a
/// name lookup per column per row on the feed's hot path.
///
/// Read with `try_get_unchecked`: the statements that select these columns fix their types
/// (the schema's columns and the casts), so sqlx's per-column compatibility check, which cost
/// the feed about 8% of its rate, proves nothing here. Decoding still checks what it reads
/// (lengths, nulls, UTF-8, the JSON and `jsonb`'s version byte, [`Jsonb`]): a value of another
/// width or kind fails with an error; one of the same width would decode wrong, which the fixed
/// statements rule out.
pub(crate) fn recorded_event(row: &PgRow) -> Result<RecordedEvent, PgError> {
    let Xid8(transaction_id) = row.try_get_unchecked(0)?;
    let position: i64 = row.try_get_unchecked(1)?;
    let stream_id: &str = row.try_get_unchecked(2)?;
    let version: i64 = row.try_get_unchecked(3)?;
    let event_type: String = row.try_get_unchecked(4)?;
    let schema_version: i32 = row.try_get_unchecked(5)?;
    let Jsonb(payload): Jsonb<Value> = row.try_get_unchecked(6)?;
    let Jsonb(metadata): Jsonb<MetadataWithoutId> = row.try_get_unchecked(7)?;
    let Timestamp(recorded_at) = row.try_get_unchecked(8)?;
    let event_id: Uuid = row.try_get_unchecked(9)?;
    let metadata = metadata.with_event_id(EventId::from_uuid(event_id));
    let stream_id = stream(stream_id)?;
    Ok(RecordedEvent::new(
        stream_id,
        convert::version(version)?,
        convert::feed_position(transaction_id, position)?,
        NewEvent::from_parts(
            event_type,
            convert::schema_version(schema_version)?,
            payload,
            metadata,
        ),
        recorded_at,
    ))
}

/// Event rows ([`recorded_event`]) decoded as they arrive: each row is dropped once its event
/// is made, so the next event reuses its memory, where collecting the rows first held every
/// row and every event at once.
pub(crate) async fn recorded_events(
    mut rows: impl Stream<Item = Result<PgRow, sqlx::Error>> + Unpin,
) -> Result<Vec<RecordedEvent>, PgError> {
    let mut events = Vec::new();
    while let Some(row) = rows.try_next().await? {
        events.push(recorded_event(&row)?);
    }
    Ok(events)
}

/// A stored stream id, which the store only ever wrote valid.
pub(crate) fn stream(stream_id: &str) -> Result<StreamId, PgError> {
    StreamId::new(stream_id).map_err(|_| PgError::CorruptRow {
        what: "stored stream id is invalid",
    })
}

/// Where one append's events landed: the one decoder from rows to an [`AppendOutcome`].
///
/// Filled from event rows whose first three columns are `version, position,
/// transaction_id::text` (every append statement's `RETURNING`, and `sql/events_by_id.sql`),
/// one [`add`](Self::add) per row, or from one summary row
/// ([`summary`](Self::summary): `sql/append.sql`, `sql/command_outcome.sql`).
#[derive(Debug, Default)]
pub(crate) struct Landed {
    rows: usize,
    first: i64,
    last: i64,
    /// The last event in feed order: its transaction and position.
    transaction_id: String,
    position: i64,
}

impl Landed {
    /// Counts one event row.
    pub(crate) fn add(&mut self, row: &PgRow) -> Result<(), PgError> {
        let version: i64 = row.try_get(0)?;
        let position: i64 = row.try_get(1)?;
        let transaction_id: &str = row.try_get(2)?;
        if self.rows == 0 {
            (self.first, self.last) = (version, version);
        }
        self.first = self.first.min(version);
        self.last = self.last.max(version);
        if self.rows == 0
            || later(
                transaction_id,
                position,
                &self.transaction_id,
                self.position,
            )
        {
            transaction_id.clone_into(&mut self.transaction_id);
            self.position = position;
        }
        self.rows += 1;
        Ok(())
    }

    /// A summary row's `first_version, last_version, position, transaction_id`; `None` when
    /// its position is NULL (nothing was written).
    pub(crate) fn summary(row: &PgRow) -> Result<Option<Self>, PgError> {
        let position: Option<i64> = row.try_get("position")?;
        let Some(position) = position else {
            return Ok(None);
        };
        let first: Option<i64> = row.try_get("first_version")?;
        let last: Option<i64> = row.try_get("last_version")?;
        let transaction_id: Option<String> = row.try_get("transaction_id")?;
        let (Some(first), Some(last), Some(transaction_id)) = (first, last, transaction_id) else {
            return Err(PgError::CorruptRow {
                what: "append returned a position without versions",
            });
        };
        Ok(Some(Self {
            rows: 0,
            first,
            last,
            transaction_id,
            position,
        }))
    }

    /// How many event rows were counted.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The outcome of the append to `stream_id`; `duplicate` when it is an earlier append's.
    pub(crate) fn outcome(
        &self,
        stream_id: &StreamId,
        duplicate: bool,
    ) -> Result<AppendOutcome, PgError> {
        if self.last < self.first {
            return Err(PgError::CorruptRow {
                what: "an append's last version is before its first",
            });
        }
        Ok(AppendOutcome::new(
            stream_id.clone(),
            convert::version(self.first)?,
            convert::version(self.last)?,
            convert::position(&self.transaction_id, self.position)?,
            duplicate,
        ))
    }
}

/// Whether `(transaction_id, position)` comes after `(than_id, than_position)` in feed order.
/// Transaction ids are decimal text without leading zeros: a longer one is larger.
fn later(transaction_id: &str, position: i64, than_id: &str, than_position: i64) -> bool {
    (transaction_id.len(), transaction_id, position) > (than_id.len(), than_id, than_position)
}

#[cfg(test)]
mod tests {
    use super::{later, Landed};
    use crate::PgError;
    use cqrs_core::StreamId;

    #[test]
    fn an_outcome_whose_last_version_precedes_its_first_is_a_corrupt_row() {
        // A `commands` row edited by hand: the repository would count the command's events as
        // `last - first + 1`.
        let landed = Landed {
            rows: 0,
            first: 5,
            last: 3,
            transaction_id: "7".to_owned(),
            position: 9,
        };
        let stream = StreamId::new("acc-1").expect("stream");
        let outcome = landed.outcome(&stream, true);
        assert!(
            matches!(outcome, Err(PgError::CorruptRow { .. })),
            "{outcome:?}"
        );
    }

    #[test]
    fn feed_order_compares_transaction_ids_as_numbers() {
        assert!(later("10", 1, "9", 5));
        assert!(later("9", 6, "9", 5));
        assert!(!later("9", 5, "10", 1));
    }
}
