//! Reading one stream, and the gap-safe global feed.

use async_trait::async_trait;
use cqrs_core::{
    Error, EventFilter, FeedBatch, Payload, Position, ReadAll, ReadStream, RecordedEvent,
    StreamEvent, StreamId, Version,
};
use futures_util::{Stream, TryStreamExt as _};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::convert::{self, limit, to_i64};
use crate::group;
use crate::row::{recorded_event, recorded_events};
use crate::xid8::Xid8;
use crate::{PgError, PgEventStore};

/// How many rows a filtered feed read scans at most (or `max`, if larger) before it applies the
/// filter. The scan is an unfiltered walk of the primary key in feed order, so its plan never
/// depends on how selective the planner guesses a filter to be; the window bounds what one read
/// may cost. A larger window passes long runs of non-matching events in fewer round trips; a
/// smaller one keeps down each read's latency and the work spent on the window's end (an
/// index-only scan of the whole window, `sql/window_end.sql`, made only when the page comes up
/// short). A window of 10,000 rows takes under 10 ms, and a run of non-matching events costs
/// one read per 10,000 of them.
const FILTERED_SCAN_WINDOW: usize = 10_000;

/// What one feed statement returned: the page's events in feed order, the horizon its snapshot
/// had, and (for a filtered read whose window was full) the window's end.
#[derive(Default)]
struct Page {
    events: Vec<RecordedEvent>,
    horizon: Option<u64>,
    window_end: Option<Position>,
}

impl Page {
    /// A feed statement's rows, decoded as they arrive (as [`recorded_events`] decodes them):
    /// events, and one header row (position NULL, the horizon in the first column), the window
    /// end left for the caller. Collected first (`fetch_all`), a page held its 1,000 rows and
    /// its 1,000 events at once.
    async fn from_rows(
        mut rows: impl Stream<Item = Result<PgRow, sqlx::Error>> + Unpin,
    ) -> Result<Self, PgError> {
        // Grown push by push. Sized at once, a page of 1,000 events is one allocation of about
        // 250 KB, which the allocator maps afresh for every page: 3% to 4% slower in
        // `pg-bench --only feed` (three alternations), though `perf` shows the growth's copies.
        let mut page = Page::default();
        while let Some(row) = rows.try_next().await? {
            // Unchecked, as `recorded_event` reads the rest: the statements fix the types.
            match row.try_get_unchecked::<Option<i64>, _>(1)? {
                Some(_) => page.events.push(recorded_event(&row)?),
                None => page.horizon = Some(row.try_get_unchecked::<Xid8, _>(0)?.0),
            }
        }
        // The statements return the page in feed order; a plan that ever did not would still
        // hand the reader its events in order.
        if !page.events.is_sorted_by(|a, b| a.position < b.position) {
            page.events.sort_by_key(|e| e.position);
        }
        Ok(page)
    }
}

#[async_trait]
impl ReadStream for PgEventStore {
    async fn read_stream(
        &self,
        stream_id: &StreamId,
        from: Version,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        Ok(self.read_stream_pg(stream_id, from, max).await?)
    }

    /// One statement whose rows are folded as they arrive (one row in memory at a time,
    /// however long the stream), four columns each, the payload as the JSON text PostgreSQL
    /// sends for `jsonb` anyway: decoded straight into the domain event, with no `Value`,
    /// metadata or timestamp built on the way.
    async fn replay(
        &self,
        stream_id: &StreamId,
        from: Version,
        max: usize,
        each: &mut (dyn for<'e> FnMut(StreamEvent<'e>) -> Result<(), Error> + Send),
    ) -> Result<usize, Error> {
        if max == 0 {
            return Ok(0);
        }
        let mut replay = Replay {
            from: to_i64("version", from.get()).map_err(Error::from)?,
            left: limit(max),
            folded: 0,
        };
        let Some(group) = &self.group else {
            self.replay_rows(stream_id, &mut replay, each).await?;
            return Ok(replay.folded);
        };
        // Counted in flight until this load is done, grouped or alone.
        let admission = group.admit_load(replay.from);
        let mut whole = false;
        if admission.grouped() {
            // The first rows in a group of loads; the rest of a longer stream alone.
            let asked = replay.left.min(group::ROWS);
            let grouped = group
                .load(
                    &self.pool,
                    self.answer_timeout,
                    &self.queries,
                    stream_id,
                    replay.from,
                    asked,
                )
                .await;
            if let Some(rows) = grouped {
                for row in &rows {
                    replay.fold(row, each)?;
                }
                whole = i64::try_from(rows.len()).is_ok_and(|read| read < asked);
            }
        }
        if !whole {
            self.replay_rows(stream_id, &mut replay, each).await?;
        }
        group.loaded(replay.folded);
        Ok(replay.folded)
    }
}

impl PgEventStore {
    /// Folds `sql/replay.sql`'s rows for the events `replay` may still fold of `stream_id`, as
    /// they arrive.
    async fn replay_rows(
        &self,
        stream_id: &StreamId,
        replay: &mut Replay,
        each: &mut (dyn for<'e> FnMut(StreamEvent<'e>) -> Result<(), Error> + Send),
    ) -> Result<(), Error> {
        if replay.left == 0 {
            return Ok(());
        }
        // Rows straight from a connection: `fetch(&pool)` wraps the connection's row stream in
        // a stream of its own, one more generator each row passes through. With the unchecked
        // reads below, about 0.2 us of the client's CPU less per row (`pg-bench --only load`).
        let mut conn = self.bounded().await.map_err(PgError::from)?;
        // A long stream takes as long as its rows keep coming.
        conn.run_progressing(async |conn, progress| {
            let mut rows = sqlx::query(&self.queries.replay)
                .bind(stream_id.as_str())
                .bind(replay.from)
                .bind(replay.left)
                .fetch(conn);
            while let Some(row) = rows.try_next().await.map_err(PgError::from)? {
                progress.tick();
                replay.fold(&row, each)?;
            }
            Ok(())
        })
        .await
    }
}

/// Where one replay is: the version it reads from next, how many events it may still fold,
/// and how many it folded.
struct Replay {
    from: i64,
    left: i64,
    folded: usize,
}

impl Replay {
    /// Folds one replay row into `each`.
    fn fold(
        &mut self,
        row: &PgRow,
        each: &mut (dyn for<'e> FnMut(StreamEvent<'e>) -> Result<(), Error> + Send),
    ) -> Result<(), Error> {
        let event = stream_event(row)?;
        // Checked: a stored version of `i64::MAX` has no version after it.
        let next = event.version.get().saturating_add(1);
        self.from = to_i64("the version after a stored one", next)?;
        self.left -= 1;
        each(event)?;
        self.folded += 1;
        Ok(())
    }
}

/// A replay row: `version, event_type, schema_version, payload::text`.
///
/// Read unchecked, for the reason [`recorded_event`] gives: the replay statements fix these
/// four columns' types. None is JSON, so whatever a server sends decodes or fails with an
/// error, never a panic.
pub(crate) fn stream_event(row: &PgRow) -> Result<StreamEvent<'_>, PgError> {
    let version: i64 = row.try_get_unchecked(0)?;
    let event_type: &str = row.try_get_unchecked(1)?;
    let schema_version: i32 = row.try_get_unchecked(2)?;
    let payload: &str = row.try_get_unchecked(3)?;
    Ok(StreamEvent::new(
        convert::version(version)?,
        event_type,
        convert::schema_version(schema_version)?,
        Payload::Json(payload),
    ))
}

#[async_trait]
impl ReadAll for PgEventStore {
    async fn read_all(
        &self,
        after: Position,
        max: usize,
        filter: &EventFilter,
    ) -> Result<FeedBatch, Error> {
        Ok(self.read_all_pg(after, max, filter).await?)
    }

    async fn head(&self) -> Result<Position, Error> {
        Ok(self.head_pg().await?)
    }
}

impl PgEventStore {
    async fn read_stream_pg(
        &self,
        stream_id: &StreamId,
        from: Version,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, PgError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // From a connection, as `replay_rows` reads.
        let from = to_i64("version", from.get())?;
        // As many rows as asked take as long as they keep coming.
        let mut conn = self.bounded().await?;
        conn.run_progressing(async |conn, progress| {
            let rows = sqlx::query(&self.queries.read_stream)
                .bind(stream_id.as_str())
                .bind(from)
                .bind(limit(max))
                .fetch(conn)
                .inspect_ok(|_| progress.tick());
            recorded_events(rows).await
        })
        .await
    }

    /// The gap-safe feed: see the crate's docs.
    async fn read_all_pg(
        &self,
        after: Position,
        max: usize,
        filter: &EventFilter,
    ) -> Result<FeedBatch, PgError> {
        if max == 0 {
            return Ok(FeedBatch::new(Vec::new(), after));
        }
        self.ensure_xids().await?;
        let Page {
            events,
            horizon,
            window_end,
        } = if filter.is_all() {
            self.unfiltered_page(after, max).await?
        } else {
            self.filtered_page(after, max, filter).await?
        };
        let stopped_early = events.len() < max && window_end.is_some();
        let next = match (events.last(), window_end) {
            // A full page: events after the last one may not have been examined.
            (Some(last), _) if events.len() >= max => last.position,
            // A full window: every event up to its end was examined, and the filter dropped
            // those not returned. The reader moves past them even if nothing matched.
            (_, Some(end)) => end,
            (last, None) => {
                // Every qualifying event below the horizon was returned: a reader may move to
                // the horizon, past whatever the filter dropped.
                let horizon = horizon.ok_or(PgError::CorruptRow {
                    what: "the feed query returned no horizon",
                })?;
                let below = convert::below_horizon(horizon);
                if after > below {
                    // A reader past the horizon: only ids moved in from another cluster explain it.
                    self.suspect_xids().await?;
                }
                last.map_or(after, |e| e.position).max(below).max(after)
            }
        };
        Ok(FeedBatch::new(events, next).with_more(stopped_early))
    }

    /// A page of a filtered feed: `sql/read_all.sql`, rows as the unfiltered statement's. A
    /// short page is asked where its window ended (`sql/window_end.sql`, under the page's
    /// horizon): the scan may have passed a full window of events the filter dropped.
    async fn filtered_page(
        &self,
        after: Position,
        max: usize,
        filter: &EventFilter,
    ) -> Result<Page, PgError> {
        let (major, minor) = convert::position_parts(after)?;
        let categories = (!filter.categories.is_empty()).then_some(&filter.categories);
        let event_types = (!filter.event_types.is_empty()).then_some(&filter.event_types);
        let partition = filter
            .partition
            .map(|p| (i64::from(p.index), i64::from(p.count)));
        let window = limit(max.max(FILTERED_SCAN_WINDOW));
        // From a connection, as `replay_rows` reads; a short page's window end asks on it too.
        self.call(async |conn| {
            let rows = sqlx::query(&self.queries.read_all)
                .bind(&major)
                .bind(minor)
                .bind(limit(max))
                .bind(categories)
                .bind(event_types)
                .bind(window)
                .bind(partition.map(|p| p.0))
                .bind(partition.map(|p| p.1))
                .fetch(&mut *conn);
            let mut page = Page::from_rows(rows).await?;
            if page.events.len() < max {
                let horizon = page.horizon.ok_or(PgError::CorruptRow {
                    what: "the feed query returned no horizon",
                })?;
                let end = sqlx::query(&self.queries.window_end)
                    .bind(&major)
                    .bind(minor)
                    .bind(horizon.to_string())
                    .bind(window)
                    .fetch_optional(&mut *conn)
                    .await?;
                if let Some(end) = end {
                    let end_major: &str = end.try_get(0)?;
                    let end_minor: i64 = end.try_get(1)?;
                    page.window_end = Some(convert::position(end_major, end_minor)?);
                }
            }
            Ok(page)
        })
        .await
    }

    /// A page of the whole feed: `sql/read_all_unfiltered.sql`, event rows and one header row
    /// (position NULL, the horizon first), with no window.
    async fn unfiltered_page(&self, after: Position, max: usize) -> Result<Page, PgError> {
        let (major, minor) = convert::position_parts(after)?;
        // From a connection, as `replay_rows` reads.
        self.call(async |conn| {
            let rows = sqlx::query(&self.queries.read_all_unfiltered)
                .bind(major)
                .bind(minor)
                .bind(limit(max))
                .fetch(conn);
            Page::from_rows(rows).await
        })
        .await
    }

    async fn head_pg(&self) -> Result<Position, PgError> {
        let row = (self
            .call(async |conn| Ok(sqlx::query(&self.queries.head).fetch_one(conn).await?)))
        .await?;
        let head: Option<String> = row.try_get("head")?;
        match head {
            None => Ok(Position::START),
            Some(text) => text.parse().map_err(|_| PgError::CorruptRow {
                what: "head position is malformed",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_core::Version;

    use super::stream_event;
    use crate::test_pool::test_pool;

    /// Read unchecked, a replay row's values are still decoded with their checks: a NULL where
    /// the statement never puts one, or a number too wide for its column, is an error.
    #[tokio::test]
    async fn a_replay_row_with_a_null_or_a_too_wide_value_is_an_error_not_a_panic() {
        let pool = test_pool(1).await;
        let rows = [
            ("1::bigint, 'Deposited'::text, 1::integer, '{}'::text", true),
            (
                "NULL::bigint, 'Deposited'::text, 1::integer, '{}'::text",
                false,
            ),
            ("1::bigint, NULL::text, 1::integer, '{}'::text", false),
            (
                "1::bigint, 'Deposited'::text, 1::integer, NULL::text",
                false,
            ),
            (
                "1::bigint, 'Deposited'::text, 1099511627776::bigint, '{}'::text",
                false,
            ),
        ];
        for (columns, decodes) in rows {
            // A prepared statement: binary results, as the replay's.
            let row = sqlx::query(&format!("SELECT {columns}"))
                .fetch_one(&pool)
                .await
                .expect("the row");
            let event = stream_event(&row);
            assert_eq!(event.is_ok(), decodes, "{columns}: {:?}", event.err());
            if let Ok(event) = event {
                assert_eq!(
                    (event.version, event.event_type, event.schema_version),
                    (Version::new(1), "Deposited", 1)
                );
            }
        }
    }
}
