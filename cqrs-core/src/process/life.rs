//! Where an instance is in its life ([`InstanceState`]) and the timeouts it keeps alive
//! ([`LiveTimeout`]): plain values the contracts (`manager`, `store`) and the engine share.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// Started and not ended.
    #[default]
    Running,
    /// Ended by [`Action::Complete`](super::Action::Complete).
    Completed,
    /// Ended by [`Action::Fail`](super::Action::Fail).
    Failed,
}

impl InstanceState {
    /// The state's name as stored: `running`, `completed` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Running => "running",
            InstanceState::Completed => "completed",
            InstanceState::Failed => "failed",
        }
    }

    /// Whether the instance has ended: later inputs are ignored.
    pub fn is_final(self) -> bool {
        self != InstanceState::Running
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InstanceState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(InstanceState::Running),
            "completed" => Ok(InstanceState::Completed),
            "failed" => Ok(InstanceState::Failed),
            other => Err(format!("unknown instance state {other:?}")),
        }
    }
}

/// A timeout an instance scheduled that has neither fired nor been cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveTimeout {
    /// Its id: a firing whose id is no longer live under its key is stale and skipped.
    pub timeout_id: Uuid,
    /// When it is due.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
}
