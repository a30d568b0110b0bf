//! Dead letters in PostgreSQL: parked events per projection, paged for people, their keys for
//! the runner, and operators' retry / skip requests.

use async_trait::async_trait;
use cqrs_core::projection::{DeadLetter, DeadLetterStore, Lease, LetterTarget, Redrive};
use cqrs_core::{Error, FencedSave, Position};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::convert::{self, limit, to_i64};
use crate::text::storable;
use crate::timestamp::Timestamp;
use crate::{PgError, PgEventStore};

fn request_text(request: Option<Redrive>) -> Option<&'static str> {
    request.map(|request| match request {
        Redrive::Retry => "retry",
        Redrive::Skip => "skip",
    })
}

/// A letter from a row of `dead_letters.sql`'s columns.
fn letter(projection: &str, row: &PgRow) -> Result<DeadLetter, PgError> {
    let transaction_id: &str = row.try_get(0)?;
    let stream_id: &str = row.try_get(2)?;
    let key: Option<String> = row.try_get(5)?;
    let error: &str = row.try_get(6)?;
    let Timestamp(parked_at) = row.try_get(7)?;
    let request: Option<&str> = row.try_get(8)?;
    let mut letter = cqrs_core::backend::dead_letter(
        projection,
        convert::position(transaction_id, row.try_get(1)?)?,
        crate::row::stream(stream_id)?,
        convert::version(row.try_get(3)?)?,
        row.try_get(4)?,
        key,
        error,
        parked_at,
    );
    letter.request = match request {
        None => None,
        Some("retry") => Some(Redrive::Retry),
        Some("skip") => Some(Redrive::Skip),
        Some(_) => {
            return Err(PgError::CorruptRow {
                what: "dead letter request is unknown",
            })
        }
    };
    Ok(letter)
}

fn letters(projection: &str, rows: &[PgRow]) -> Result<Vec<DeadLetter>, PgError> {
    rows.iter().map(|row| letter(projection, row)).collect()
}

#[async_trait]
impl DeadLetterStore for PgEventStore {
    async fn park(&self, letter: DeadLetter) -> Result<(), Error> {
        self.park_pg(letter, None).await?;
        Ok(())
    }

    async fn park_fenced(&self, letter: DeadLetter, lease: &Lease) -> Result<FencedSave, Error> {
        if lease.name != letter.projection {
            // A lease fences the letters of its own name only.
            return Ok(FencedSave::LeaseLost);
        }
        if self.park_pg(letter, Some(lease)).await? {
            Ok(FencedSave::Saved)
        } else {
            Ok(FencedSave::LeaseLost)
        }
    }

    async fn dead_letters(
        &self,
        projection: &str,
        after: Position,
        max: usize,
    ) -> Result<Vec<DeadLetter>, Error> {
        Ok(self.dead_letters_pg(projection, after, max).await?)
    }

    async fn parked_keys(&self, projection: &str) -> Result<Vec<String>, Error> {
        Ok(self.parked_keys_pg(projection).await?)
    }

    async fn key_letters(
        &self,
        projection: &str,
        key: &str,
        max: usize,
    ) -> Result<Vec<DeadLetter>, Error> {
        Ok(self.key_letters_pg(projection, key, max).await?)
    }

    async fn request(
        &self,
        projection: &str,
        target: &LetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64, Error> {
        Ok(self.request_pg(projection, target, request).await?)
    }

    async fn requested(&self, projection: &str, max: usize) -> Result<Vec<DeadLetter>, Error> {
        Ok(self.requested_pg(projection, max).await?)
    }

    async fn remove(&self, projection: &str, positions: &[Position]) -> Result<u64, Error> {
        Ok(self.remove_pg(projection, positions).await?)
    }

    async fn redrive_failed(
        &self,
        projection: &str,
        position: Position,
        error: &str,
    ) -> Result<(), Error> {
        Ok(self.redrive_failed_pg(projection, position, error).await?)
    }
}

/// The dead-letter statements, run and decoded.
impl PgEventStore {
    /// Parks `letter`, under `lease` when given: `false` when the lease no longer held and
    /// nothing was written.
    async fn park_pg(&self, letter: DeadLetter, lease: Option<&Lease>) -> Result<bool, PgError> {
        let (major, minor) = convert::position_parts(letter.position)?;
        let statement = match lease {
            None => &self.queries.park,
            Some(_) => &self.queries.park_fenced,
        };
        let query = sqlx::query(statement)
            .bind(&letter.projection)
            .bind(major)
            .bind(minor)
            .bind(letter.stream_id.as_str())
            .bind(to_i64("version", letter.version.get())?)
            .bind(&letter.event_type)
            .bind(&letter.key)
            .bind(storable(&letter.error))
            .bind(letter.parked_at);
        let Some(lease) = lease else {
            self.call(async |conn| Ok(query.execute(conn).await?))
                .await?;
            return Ok(true);
        };
        let query = query
            .bind(&lease.owner)
            .bind(to_i64("lease epoch", lease.epoch)?);
        let held: bool = (self
            .call(async |conn| Ok(query.fetch_one(conn).await?))
            .await?)
            .try_get("held")?;
        Ok(held)
    }

    async fn dead_letters_pg(
        &self,
        projection: &str,
        after: Position,
        max: usize,
    ) -> Result<Vec<DeadLetter>, PgError> {
        let (major, minor) = convert::position_parts(after)?;
        let rows = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.dead_letters)
                    .bind(projection)
                    .bind(major)
                    .bind(minor)
                    .bind(limit(max))
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        letters(projection, &rows)
    }

    async fn parked_keys_pg(&self, projection: &str) -> Result<Vec<String>, PgError> {
        self.call(async |conn| {
            Ok(sqlx::query_scalar(&self.queries.parked_keys)
                .bind(projection)
                .fetch_all(conn)
                .await?)
        })
        .await
    }

    async fn key_letters_pg(
        &self,
        projection: &str,
        key: &str,
        max: usize,
    ) -> Result<Vec<DeadLetter>, PgError> {
        let rows = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.key_letters)
                    .bind(projection)
                    .bind(key)
                    .bind(limit(max))
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        letters(projection, &rows)
    }

    async fn request_pg(
        &self,
        projection: &str,
        target: &LetterTarget,
        request: Option<Redrive>,
    ) -> Result<u64, PgError> {
        let query = match target {
            LetterTarget::Key(key) => sqlx::query(&self.queries.request_key)
                .bind(projection)
                .bind(key)
                .bind(request_text(request)),
            LetterTarget::Position(position) => {
                let (major, minor) = convert::position_parts(*position)?;
                sqlx::query(&self.queries.request_position)
                    .bind(projection)
                    .bind(major)
                    .bind(minor)
                    .bind(request_text(request))
            }
        };
        let done = self
            .call(async |conn| Ok(query.execute(conn).await?))
            .await?;
        Ok(done.rows_affected())
    }

    async fn requested_pg(&self, projection: &str, max: usize) -> Result<Vec<DeadLetter>, PgError> {
        let rows = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.requested)
                    .bind(projection)
                    .bind(limit(max))
                    .fetch_all(conn)
                    .await?)
            })
            .await?;
        letters(projection, &rows)
    }

    async fn remove_pg(&self, projection: &str, positions: &[Position]) -> Result<u64, PgError> {
        let mut majors = Vec::with_capacity(positions.len());
        let mut minors = Vec::with_capacity(positions.len());
        for position in positions {
            let (major, minor) = convert::position_parts(*position)?;
            majors.push(major);
            minors.push(minor);
        }
        let done = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.remove_letters)
                    .bind(projection)
                    .bind(majors)
                    .bind(minors)
                    .execute(conn)
                    .await?)
            })
            .await?;
        Ok(done.rows_affected())
    }

    async fn redrive_failed_pg(
        &self,
        projection: &str,
        position: Position,
        error: &str,
    ) -> Result<(), PgError> {
        let (major, minor) = convert::position_parts(position)?;
        self.call(async |conn| {
            Ok(sqlx::query(&self.queries.redrive_failed)
                .bind(projection)
                .bind(major)
                .bind(minor)
                .bind(storable(error))
                .execute(conn)
                .await?)
        })
        .await?;
        Ok(())
    }
}
