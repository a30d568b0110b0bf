//! Bus dead letters in PostgreSQL: messages a bus consumer parked, whole, with their error.
//!
//! Headers are kept as JSON so operators can query them (`headers @> '[{"name":"ce_type"}]'`):
//! a UTF-8 value as `{"name", "value"}`, other bytes as `{"name", "bytes": [...]}`, and a
//! header without value as `{"name"}`. A name holding a NUL, which `jsonb` cannot hold, is
//! kept as `"name_bytes": [...]` instead of `"name"`.

use async_trait::async_trait;
use cqrs_core::bus::{BusDeadLetterStore, BusLetter, BusLetterTarget, MessageId, ParkedKey};
use cqrs_core::projection::Redrive;
use cqrs_core::Error;
use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::convert::limit;
use crate::jsonb::Jsonb;
use crate::text::storable;
use crate::timestamp::Timestamp;
use crate::{PgError, PgEventStore};

fn request_text(request: Option<Redrive>) -> Option<&'static str> {
    request.map(|request| match request {
        Redrive::Retry => "retry",
        Redrive::Skip => "skip",
    })
}

/// A message's headers, in order; a header may have no value.
type Headers = Vec<(String, Option<Vec<u8>>)>;

fn headers_json(headers: &[(String, Option<Vec<u8>>)]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(name, value)| {
                let mut header = match value {
                    None => json!({}),
                    // Text with a NUL (a big-endian number is valid UTF-8) as bytes too: `jsonb`
                    // refuses `\u0000`.
                    Some(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) if !text.contains('\0') => json!({ "value": text }),
                        _ => json!({ "bytes": bytes }),
                    },
                };
                // The same for a name with a NUL, valid UTF-8 that another client may send.
                let (field, name) = match name.contains('\0') {
                    true => ("name_bytes", json!(name.as_bytes())),
                    false => ("name", json!(name)),
                };
                header[field] = name;
                header
            })
            .collect(),
    )
}

fn headers_from(value: &Value) -> Result<Headers, PgError> {
    const CORRUPT: PgError = PgError::CorruptRow {
        what: "bus dead letter headers are not as written",
    };
    let Value::Array(items) = value else {
        return Err(CORRUPT);
    };
    items
        .iter()
        .map(|item| {
            let name = match (item.get("name"), item.get("name_bytes")) {
                (Some(name), None) => name.as_str().ok_or(CORRUPT)?.to_owned(),
                (None, Some(bytes)) => {
                    let bytes: Vec<u8> =
                        serde_json::from_value(bytes.clone()).map_err(|_| CORRUPT)?;
                    String::from_utf8(bytes).map_err(|_| CORRUPT)?
                }
                _ => return Err(CORRUPT),
            };
            let value = if let Some(text) = item.get("value") {
                Some(text.as_str().ok_or(CORRUPT)?.as_bytes().to_vec())
            } else if let Some(bytes) = item.get("bytes") {
                let bytes: Vec<u8> = serde_json::from_value(bytes.clone()).map_err(|_| CORRUPT)?;
                Some(bytes)
            } else {
                None
            };
            Ok((name, value))
        })
        .collect()
}

/// A letter from a row of `bus_dead_letter_page.sql`'s columns.
fn letter(consumer: &str, row: &PgRow) -> Result<BusLetter, PgError> {
    let message = MessageId::new(
        row.try_get::<String, _>(0)?,
        row.try_get::<i32, _>(1)?,
        row.try_get::<i64, _>(2)?,
    );
    let Jsonb(headers): Jsonb<Value> = row.try_get(4)?;
    let error: String = row.try_get(6)?;
    let Timestamp(parked_at) = row.try_get(7)?;
    let request = match row.try_get::<Option<&str>, _>(8)? {
        None => None,
        Some("retry") => Some(Redrive::Retry),
        Some("skip") => Some(Redrive::Skip),
        Some(_) => {
            return Err(PgError::CorruptRow {
                what: "bus dead letter request is unknown",
            })
        }
    };
    Ok(BusLetter::new(consumer, message, error)
        .with_key(row.try_get(3)?)
        .with_headers(headers_from(&headers)?)
        .with_payload(row.try_get(5)?)
        .parked_at(parked_at)
        .with_request(request))
}

fn letters(consumer: &str, rows: &[PgRow]) -> Result<Vec<BusLetter>, PgError> {
    rows.iter().map(|row| letter(consumer, row)).collect()
}

#[async_trait]
impl BusDeadLetterStore for PgEventStore {
    async fn park_message(&self, letter: BusLetter) -> Result<(), Error> {
        let parked: bool = self
            .call(async |conn| {
                Ok(sqlx::query_scalar(&self.queries.bus_dead_letter_park)
                    .bind(&letter.consumer)
                    .bind(&letter.message.topic)
                    .bind(letter.message.partition)
                    .bind(letter.message.offset)
                    .bind(&letter.key)
                    .bind(headers_json(&letter.headers))
                    .bind(&letter.payload)
                    .bind(storable(&letter.error))
                    .bind(letter.parked_at)
                    .fetch_one(conn)
                    .await?)
            })
            .await?;
        if parked {
            Ok(())
        } else {
            Err(Error::MessageIdReused {
                consumer: letter.consumer,
                message: letter.message,
            })
        }
    }

    async fn parked_messages(
        &self,
        consumer: &str,
        after: Option<&MessageId>,
        max: usize,
    ) -> Result<Vec<BusLetter>, Error> {
        let rows = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.bus_dead_letter_page)
                    .bind(consumer)
                    .bind(after.map(|m| m.topic.as_str()))
                    .bind(after.map_or(0, |m| m.partition))
                    .bind(after.map_or(0, |m| m.offset))
                    .bind(limit(max))
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        Ok(letters(consumer, &rows)?)
    }

    async fn requested_partition_messages(
        &self,
        consumer: &str,
        topic: &str,
        partition: i32,
        max: usize,
    ) -> Result<Vec<BusLetter>, Error> {
        let rows = self
            .call(async |conn| {
                Ok(
                    sqlx::query(&self.queries.bus_dead_letter_requested_partition)
                        .bind(consumer)
                        .bind(topic)
                        .bind(partition)
                        .bind(limit(max))
                        .fetch_all(conn)
                        .await?,
                )
            })
            .await?;
        Ok(letters(consumer, &rows)?)
    }

    async fn parked_message_keys(&self, consumer: &str) -> Result<Vec<ParkedKey>, Error> {
        let rows: Vec<(String, Vec<u8>)> = self
            .call(async |conn| {
                Ok(sqlx::query_as(&self.queries.bus_dead_letter_keys)
                    .bind(consumer)
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(topic, key)| ParkedKey::new(topic, key))
            .collect())
    }

    async fn key_messages(
        &self,
        consumer: &str,
        key: &ParkedKey,
        max: usize,
    ) -> Result<Vec<BusLetter>, Error> {
        let rows = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.bus_dead_letter_key)
                    .bind(consumer)
                    .bind(&key.topic)
                    .bind(&key.key)
                    .bind(limit(max))
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        Ok(letters(consumer, &rows)?)
    }

    async fn request_messages(
        &self,
        consumer: &str,
        target: &BusLetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64, Error> {
        let query = match target {
            BusLetterTarget::Key(key) => sqlx::query(&self.queries.bus_dead_letter_request_key)
                .bind(consumer)
                .bind(&key.topic)
                .bind(&key.key)
                .bind(request_text(request)),
            BusLetterTarget::Message(message) => {
                sqlx::query(&self.queries.bus_dead_letter_request_message)
                    .bind(consumer)
                    .bind(&message.topic)
                    .bind(message.partition)
                    .bind(message.offset)
                    .bind(request_text(request))
            }
        };
        let done = self
            .call(async |conn| Ok(query.execute(conn).await?))
            .await?;
        Ok(done.rows_affected())
    }

    async fn requested_messages(
        &self,
        consumer: &str,
        max: usize,
    ) -> Result<Vec<BusLetter>, Error> {
        let rows = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.bus_dead_letter_requested)
                    .bind(consumer)
                    .bind(limit(max))
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        Ok(letters(consumer, &rows)?)
    }

    async fn take_messages(&self, consumer: &str, messages: &[MessageId]) -> Result<u64, Error> {
        let topics: Vec<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
        let partitions: Vec<i32> = messages.iter().map(|m| m.partition).collect();
        let offsets: Vec<i64> = messages.iter().map(|m| m.offset).collect();
        let done = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.bus_dead_letter_take)
                    .bind(consumer)
                    .bind(&topics)
                    .bind(&partitions)
                    .bind(&offsets)
                    .execute(conn)
                    .await?)
            })
            .await?;
        Ok(done.rows_affected())
    }

    async fn message_redrive_failed(
        &self,
        consumer: &str,
        message: &MessageId,
        error: &str,
    ) -> Result<(), Error> {
        self.call(async |conn| {
            Ok(sqlx::query(&self.queries.bus_dead_letter_failed)
                .bind(consumer)
                .bind(&message.topic)
                .bind(message.partition)
                .bind(message.offset)
                .bind(storable(error))
                .execute(conn)
                .await?)
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_through_json_text_bytes_and_none() {
        let headers = vec![
            ("ce_id".to_owned(), Some(b"abc".to_vec())),
            ("none".to_owned(), None),
            ("bin".to_owned(), Some(vec![0xff, 0])),
            ("ce_id".to_owned(), Some(Vec::new())),
            ("count".to_owned(), Some(vec![0, 0, 0, 1])),
        ];
        let json = headers_json(&headers);
        assert_eq!(json[0], json!({"name": "ce_id", "value": "abc"}));
        assert_eq!(json[4], json!({"name": "count", "bytes": [0, 0, 0, 1]}));
        assert_eq!(headers_from(&json).expect("decode"), headers);
        assert!(headers_from(&json!({"name": 1})).is_err());
        assert!(headers_from(&json!([{"value": "x"}])).is_err());
    }
}
