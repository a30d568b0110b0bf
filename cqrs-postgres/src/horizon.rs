//! [`FeedHorizon`]: what holds the gap-safe feed back, and who.

use std::time::Duration;

use sqlx::Row;

use crate::{PgError, PgEventStore};

/// What holds the global feed back right now.
///
/// Feed readers only see events of transactions older than the oldest transaction still open in
/// the cluster, so one long transaction (any writer, even outside this store, and a prepared
/// transaction that nobody committed or rolled back) delays every projection until it ends.
/// Watch these figures.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FeedHorizon {
    /// How long the oldest open transaction holding an id has been running, if any: sessions'
    /// transactions and prepared ones. A session of another role counts only if this role may
    /// see its start (that role's member, or `pg_read_all_stats`); see [`Self::holder`].
    pub oldest_open_transaction: Option<Duration>,
    /// Committed events that readers cannot see yet because of it.
    pub waiting_events: u64,
    /// The transaction at the horizon, the one readers wait for; `None` when nothing is open.
    pub holder: Option<HorizonHolder>,
}

/// The open transaction that holds the feed back: see [`FeedHorizon::holder`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HorizonHolder {
    /// A session's open transaction.
    Session {
        /// The session's backend process id (`pg_terminate_backend` ends it).
        pid: i32,
        /// How long the transaction has been open; `None` when this role may not see it
        /// (another role's session, without `pg_read_all_stats`).
        age: Option<Duration>,
    },
    /// A prepared transaction (two-phase commit): it belongs to no session and survives
    /// restarts; only `COMMIT PREPARED` or `ROLLBACK PREPARED` with its id ends it.
    Prepared {
        /// Its global transaction id.
        gid: String,
        /// How long ago it was prepared.
        age: Duration,
    },
}

fn seconds(value: Option<f64>) -> Option<Duration> {
    value
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

impl PgEventStore {
    /// What holds the feed back now: see [`FeedHorizon`].
    pub async fn feed_horizon(&self) -> Result<FeedHorizon, PgError> {
        let row = self
            .call(async |conn| {
                Ok(sqlx::query(&self.queries.feed_horizon)
                    .fetch_one(conn)
                    .await?)
            })
            .await?;
        let oldest: Option<f64> = row.try_get("oldest_open_seconds")?;
        let waiting: i64 = row.try_get("waiting_events")?;
        let pid: Option<i32> = row.try_get("holder_pid")?;
        let gid: Option<String> = row.try_get("holder_gid")?;
        let age = seconds(row.try_get("holder_seconds")?);
        let holder = match (pid, gid) {
            (_, Some(gid)) => Some(HorizonHolder::Prepared {
                gid,
                age: age.unwrap_or_default(),
            }),
            (Some(pid), None) => Some(HorizonHolder::Session { pid, age }),
            (None, None) => None,
        };
        Ok(FeedHorizon {
            oldest_open_transaction: seconds(oldest),
            waiting_events: u64::try_from(waiting).unwrap_or(0),
            holder,
        })
    }
}

/// Sets the feed horizon's gauges from `horizon` (a service calls it with
/// [`PgEventStore::feed_horizon`] before it renders a scrape):
/// [`FEED_HORIZON_OLDEST_TRANSACTION`](cqrs_core::telemetry::metrics::FEED_HORIZON_OLDEST_TRANSACTION),
/// the oldest open transaction's age in seconds (0 when none is open), and
/// [`FEED_HORIZON_WAITING_EVENTS`](cqrs_core::telemetry::metrics::FEED_HORIZON_WAITING_EVENTS),
/// the committed events readers cannot see yet. No-ops without an installed `metrics`
/// recorder.
pub fn record_feed_horizon(horizon: &FeedHorizon) {
    use cqrs_core::telemetry::metrics::{
        FEED_HORIZON_OLDEST_TRANSACTION, FEED_HORIZON_WAITING_EVENTS,
    };
    let oldest = horizon.oldest_open_transaction.unwrap_or_default();
    metrics::gauge!(FEED_HORIZON_OLDEST_TRANSACTION).set(oldest);
    metrics::gauge!(FEED_HORIZON_WAITING_EVENTS).set(horizon.waiting_events as f64);
}
