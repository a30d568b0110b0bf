//! Checks after each timed run, straight in SQL on each system's own table, that the work was
//! done: every event there, every stream's versions exactly `1..=n`, every amount summed.

use anyhow::{ensure, Result};
use sqlx::PgPool;

use crate::domain::CATEGORY;

/// Where a system keeps its events.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    table: &'static str,
    stream: &'static str,
    version: &'static str,
    category_in_stream: bool,
}

impl Layout {
    /// The prefix of the stream names of account ids starting with `id_prefix`.
    pub(crate) fn accounts(&self, id_prefix: &str) -> String {
        if self.category_in_stream {
            format!("{CATEGORY}-{id_prefix}")
        } else {
            id_prefix.to_owned()
        }
    }
}

/// `cqrs.events` of `cqrs-postgres`.
pub(crate) const OURS: Layout = Layout {
    table: "cqrs.events",
    stream: "stream_id",
    version: "version",
    category_in_stream: true,
};

/// `events` of postgres-es (streams named by `aggregate_id` only).
pub(crate) const POSTGRES_ES: Layout = Layout {
    table: "events",
    stream: "aggregate_id",
    version: "sequence",
    category_in_stream: false,
};

/// `raw_events` of the raw ceilings.
pub(crate) const RAW: Layout = Layout {
    table: "raw_events",
    stream: "stream_id",
    version: "version",
    category_in_stream: true,
};

/// What was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Events.
    pub(crate) events: u64,
    /// Streams.
    pub(crate) streams: u64,
    /// The sum of all deposits.
    pub(crate) amount: u64,
}

/// Counts the streams whose names start with `prefix` and checks that none has a gap or a
/// duplicate version.
pub(crate) async fn tally(pool: &PgPool, layout: Layout, prefix: &str) -> Result<Tally> {
    let Layout {
        table,
        stream,
        version,
        ..
    } = layout;
    let sql = format!(
        "SELECT coalesce(sum(n), 0)::bigint, count(*), \
                count(*) FILTER (WHERE n <> top OR low <> 1), coalesce(sum(amount), 0)::bigint \
         FROM (SELECT count(*) AS n, max({version}) AS top, min({version}) AS low, \
                      sum((payload->>'amount')::bigint) AS amount \
               FROM {table} WHERE starts_with({stream}, $1) GROUP BY {stream}) AS per_stream"
    );
    let (events, streams, broken, amount): (i64, i64, i64, i64) =
        sqlx::query_as(&sql).bind(prefix).fetch_one(pool).await?;
    ensure!(
        broken == 0,
        "{broken} streams in {table} have gaps or duplicate versions"
    );
    Ok(Tally {
        events: u64::try_from(events)?,
        streams: u64::try_from(streams)?,
        amount: u64::try_from(amount)?,
    })
}

/// [`tally`], then fails unless it is `expected`.
pub(crate) async fn expect(
    pool: &PgPool,
    layout: Layout,
    prefix: &str,
    expected: Tally,
) -> Result<()> {
    let found = tally(pool, layout, prefix).await?;
    ensure!(
        found == expected,
        "{} holds {found:?} under {prefix:?}, expected {expected:?}",
        layout.table
    );
    Ok(())
}
