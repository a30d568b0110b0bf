//! [`HorizonView`]: what holds the gap-safe feed back, for people.

use cqrs_postgres::{FeedHorizon, HorizonHolder};
use serde::{Deserialize, Serialize};

/// What holds the feed back now (see [`FeedHorizon`]): readers only see events of
/// transactions older than the oldest one still open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HorizonView {
    /// How long the oldest open transaction has been running, in seconds; `None` when none is.
    pub oldest_open_seconds: Option<f64>,
    /// Committed events readers cannot see yet because of it.
    pub waiting_events: u64,
    /// The transaction at the horizon.
    pub holder: Option<HorizonHolderView>,
}

/// The open transaction that holds the feed back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HorizonHolderView {
    /// A session's transaction (`pg_terminate_backend(pid)` ends it).
    Session {
        /// Its backend's process id.
        pid: i32,
        /// How long it has been open, in seconds, when this role may see it.
        age_seconds: Option<f64>,
    },
    /// A prepared transaction (two-phase commit).
    Prepared {
        /// Its global id.
        gid: String,
        /// How long ago it was prepared, in seconds.
        age_seconds: f64,
    },
}

impl From<&FeedHorizon> for HorizonView {
    fn from(horizon: &FeedHorizon) -> Self {
        Self {
            oldest_open_seconds: horizon.oldest_open_transaction.map(|d| d.as_secs_f64()),
            waiting_events: horizon.waiting_events,
            holder: horizon.holder.as_ref().and_then(|holder| match holder {
                HorizonHolder::Session { pid, age } => Some(HorizonHolderView::Session {
                    pid: *pid,
                    age_seconds: age.map(|d| d.as_secs_f64()),
                }),
                HorizonHolder::Prepared { gid, age } => Some(HorizonHolderView::Prepared {
                    gid: gid.clone(),
                    age_seconds: age.as_secs_f64(),
                }),
                _ => None,
            }),
        }
    }
}
