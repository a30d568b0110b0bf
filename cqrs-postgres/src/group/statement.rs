//! A group's statement, and the lookup after its connection broke: both decode their rows
//! with the store's one decoder ([`Landed`]).

use std::collections::HashMap;

use cqrs_core::AppendOutcome;
use sqlx::Row;
use uuid::Uuid;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use super::conn::LaneConn;
use super::request::{Reply, Request};
use crate::bounded::NoAnswer;
use crate::row::Landed;
use crate::schema::Queries;

/// Writes a lane's groups on its connection.
pub(super) struct Writer {
    pub(super) pool: PgPool,
    /// Kept between groups while busy: no pool round trip per group.
    pub(super) conn: LaneConn,
    pub(super) queries: Arc<Queries>,
    /// The group commit's timeout: for acquiring a connection, and its `statement_timeout`.
    pub(super) timeout: Duration,
    /// How long a statement (with the connection's acquisition and setup) waits for its
    /// answer before the connection is dropped: the store's answer timeout, and past the
    /// group commit's own.
    pub(super) answer: Duration,
    /// Whether the group's statement was sent in the current [`insert`](Self::insert): one
    /// that ran out of time before that wrote nothing.
    pub(super) sent: bool,
    /// Test seams: see `tests.rs`.
    #[cfg(test)]
    pub(super) seams: Arc<super::tests::Seams>,
}

impl Writer {
    /// After a broken connection: each append of `group` whose events are all in, at the
    /// versions it asked for, was written by the group (its events are ours: a repeat of the
    /// same batch from this store goes through this lane after the group, and one from
    /// elsewhere would have failed the group on the event ids); the others were not.
    pub(super) async fn written(&mut self, group: &[Request]) -> Result<Vec<Reply>, sqlx::Error> {
        let looked = tokio::time::timeout(self.answer, self.written_unbounded(group)).await;
        self.answered(looked)
    }

    /// [`written`](Self::written), waiting as long as the server lets it.
    async fn written_unbounded(&mut self, group: &[Request]) -> Result<Vec<Reply>, sqlx::Error> {
        let ids: Vec<Uuid> = group
            .iter()
            .flat_map(|r| r.columns.event_ids.iter().copied())
            .collect();
        let query = sqlx::query(&self.queries.events_by_id).bind(&ids);
        #[cfg(test)]
        self.seams
            .lookups
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        #[cfg(test)]
        if self
            .seams
            .fail_next_lookup
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(sqlx::Error::PoolTimedOut);
        }
        let conn = self.conn.get(&self.pool, self.timeout).await?;
        let rows = query.fetch_all(&mut **conn).await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            let event_id: Uuid = row.try_get("event_id")?;
            let stream_id: &str = row.try_get("stream_id")?;
            let version: i64 = row.try_get("version")?;
            found.insert(event_id, (stream_id, version, row));
        }
        Ok(group
            .iter()
            .map(|request| {
                let mut landed = Landed::default();
                for (i, id) in request.columns.event_ids.iter().enumerate() {
                    let version = request.expected + 1 + i64::try_from(i).unwrap_or(i64::MAX);
                    match found.get(id) {
                        Some((stream, v, row))
                            if *stream == request.stream_id.as_str() && *v == version =>
                        {
                            if landed.add(row).is_err() {
                                return Reply::Alone;
                            }
                        }
                        _ => return Reply::Alone,
                    }
                }
                if landed.rows() == 0 {
                    return Reply::Alone;
                }
                landed
                    .outcome(&request.stream_id, false)
                    .map_or(Reply::Alone, Reply::Appended)
            })
            .collect())
    }

    /// Writes `group` in one statement: each append's outcome, `None` for those the checks
    /// left out.
    pub(super) async fn insert(
        &mut self,
        group: &[Request],
    ) -> Result<Vec<Option<AppendOutcome>>, sqlx::Error> {
        self.sent = false;
        let inserted = tokio::time::timeout(self.answer, self.insert_unbounded(group)).await;
        if inserted.is_err() && !self.sent {
            // Stuck getting or setting up a connection: the statement was never sent.
            self.conn.drop_unanswered();
            return Err(sqlx::Error::PoolTimedOut);
        }
        self.answered(inserted)
    }

    /// What a call bounded by the answer timeout gave: with no answer, the connection is
    /// dropped (a broken connection to the lane, whose group may have committed).
    fn answered<T>(
        &mut self,
        result: Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, sqlx::Error> {
        result.unwrap_or_else(|_| {
            self.conn.drop_unanswered();
            Err(NoAnswer {
                within: self.answer,
            }
            .into())
        })
    }

    /// [`insert`](Self::insert), waiting as long as the server lets it.
    async fn insert_unbounded(
        &mut self,
        group: &[Request],
    ) -> Result<Vec<Option<AppendOutcome>>, sqlx::Error> {
        let rows: usize = group.iter().map(|r| r.columns.len()).sum();
        let mut streams: Vec<&str> = Vec::with_capacity(rows);
        let mut expected: Vec<i64> = Vec::with_capacity(rows);
        let mut versions: Vec<i64> = Vec::with_capacity(rows);
        let mut event_ids = Vec::with_capacity(rows);
        let mut event_types: Vec<&str> = Vec::with_capacity(rows);
        let mut schema_versions: Vec<i32> = Vec::with_capacity(rows);
        let mut payloads: Vec<&str> = Vec::with_capacity(rows);
        let mut metadata: Vec<&str> = Vec::with_capacity(rows);
        for request in group {
            let c = &request.columns;
            let mut version = request.expected;
            for i in 0..c.len() {
                version += 1;
                streams.push(request.stream_id.as_str());
                expected.push(request.expected);
                versions.push(version);
                event_ids.push(c.event_ids[i]);
                event_types.push(&c.event_types[i]);
                schema_versions.push(c.schema_versions[i]);
                payloads.push(&c.payloads[i]);
                metadata.push(&c.metadata[i]);
            }
        }
        let returned = sqlx::query(&self.queries.append_group)
            .bind(&streams)
            .bind(&expected)
            .bind(&versions)
            .bind(&event_ids)
            .bind(&event_types)
            .bind(&schema_versions)
            .bind(&payloads)
            .bind(&metadata);
        let conn = self.conn.get(&self.pool, self.timeout).await?;
        self.sent = true;
        let returned = returned.fetch_all(&mut **conn).await?;
        #[cfg(test)]
        if self
            .seams
            .lose_next_reply
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(super::tests::lose_reply(&self.pool, conn).await);
        }

        let mut landed: Vec<Landed> = group.iter().map(|_| Landed::default()).collect();
        for row in &returned {
            // Rows come back in no promised order: each names its stream (one append each).
            let stream: &str = row.try_get(3)?;
            if let Some(i) = group.iter().position(|r| r.stream_id.as_str() == stream) {
                // A row this statement returned that does not decode: as if the reply was lost.
                landed[i]
                    .add(row)
                    .map_err(|error| sqlx::Error::Decode(error.into()))?;
            }
        }
        Ok(group
            .iter()
            .zip(landed)
            .map(|(request, landed)| {
                // All of an append's events or none pass the checks; anything else is read
                // back by the lone path.
                (landed.rows() == request.columns.len())
                    .then(|| landed.outcome(&request.stream_id, false).ok())
                    .flatten()
            })
            .collect())
    }
}
