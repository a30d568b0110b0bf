//! Reading one stream, and the gap-safe global feed.

use async_trait::async_trait;
use cqrs_core::{
    Error, EventFilter, FeedBatch, Position, ReadAll, ReadStream, RecordedEvent, StreamId, Version,
};
use sqlx::Row;

use crate::convert::{self, to_i64};
use crate::row::{recorded_event, EVENT_COLUMNS};
use crate::{PgError, PgEventStore};

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl ReadStream for PgEventStore {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Version,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&self.queries.read_stream)
            .bind(stream_id.as_str())
            .bind(to_i64("version", from.get())?)
            .bind(limit(max))
            .fetch_all(&self.pool)
            .await
            .map_err(PgError::from)?;
        rows.iter()
            .map(|row| recorded_event(row, 0).map_err(Error::from))
            .collect()
    }
}

#[async_trait]
impl ReadAll for PgEventStore {
    async fn read_all(
        &self,
        after: Position,
        max: usize,
        filter: &EventFilter,
    ) -> Result<FeedBatch, Error> {
        if max == 0 {
            return Ok(FeedBatch::new(Vec::new(), after));
        }
        let (major, minor) = convert::position_parts(after)?;
        let categories = (!filter.categories.is_empty()).then_some(&filter.categories);
        let event_types = (!filter.event_types.is_empty()).then_some(&filter.event_types);
        let rows = sqlx::query(&self.queries.read_all)
            .bind(major)
            .bind(minor)
            .bind(limit(max))
            .bind(categories)
            .bind(event_types)
            .fetch_all(&self.pool)
            .await
            .map_err(PgError::from)?;
        debug_assert!(rows.first().is_none_or(|r| r.len() == 1 + EVENT_COLUMNS));
        let mut events = Vec::with_capacity(rows.len());
        let mut horizon = None;
        for row in &rows {
            if horizon.is_none() {
                horizon = Some(row.try_get::<String, _>(0).map_err(PgError::from)?);
            }
            // The statement returns one row of NULLs beside the horizon when no event qualifies.
            if row
                .try_get::<Option<i64>, _>(2)
                .map_err(PgError::from)?
                .is_some()
            {
                events.push(recorded_event(row, 1)?);
            }
        }
        let next = match events.last() {
            Some(last) if events.len() >= max => last.position,
            last => {
                // Every qualifying event below the horizon was returned: a reader may move to
                // the horizon, past whatever the filter dropped.
                let horizon = horizon.ok_or(PgError::CorruptRow {
                    what: "the feed query returned no horizon",
                })?;
                let below = convert::below_horizon(&horizon)?;
                last.map_or(after, |e| e.position).max(below).max(after)
            }
        };
        Ok(FeedBatch::new(events, next))
    }

    async fn head(&self) -> Result<Position, Error> {
        let row = sqlx::query(&self.queries.head)
            .fetch_one(&self.pool)
            .await
            .map_err(PgError::from)?;
        let head: Option<String> = row.try_get("head").map_err(PgError::from)?;
        match head {
            None => Ok(Position::START),
            Some(text) => Ok(text.parse().map_err(|_| PgError::CorruptRow {
                what: "head position is malformed",
            })?),
        }
    }
}
