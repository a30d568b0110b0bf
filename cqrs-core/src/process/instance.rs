//! One instance in memory: the user's state plus the framework's [`Bookkeeping`], folded from
//! the journal (or a snapshot and the journal's tail), and the one function that decides an
//! input, shared by the engine and the fixture.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::ids::InputId;
use super::manager::Step;
use crate::Version;

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

/// A command an instance decided to send whose outcome is not recorded yet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingCommand {
    /// Which step sends it.
    pub step: Step,
    /// The command, as recorded.
    pub command: Value,
}

/// What the framework keeps about an instance besides the user's state. It is folded from the
/// journal with the state and stored with it in snapshots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Bookkeeping {
    /// The journal's version: the next record expects exactly this.
    pub version: Version,
    /// The correlation id of the event that started the instance, passed on to its commands.
    pub correlation_id: Option<Uuid>,
    /// Running, completed or failed.
    pub state: InstanceState,
    /// Commands decided and not answered yet, in (input, index) order.
    pub pending: Vec<PendingCommand>,
    /// Live timeouts by key.
    pub timeouts: BTreeMap<String, LiveTimeout>,
    /// The ids of the last inputs recorded (at most [`Bookkeeping::RECENT`]): a cheap check for
    /// an input delivered again.
    pub recent_inputs: VecDeque<InputId>,
    /// `Complete` was decided while commands were pending: the instance completes when the
    /// last outcome is recorded.
    pub completing: bool,
    /// Why it failed, once it has.
    pub failure: Option<String>,
    /// When its first input was recorded (process clock).
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When its last input was recorded (process clock).
    #[serde(with = "time::serde::rfc3339::option")]
    pub progressed_at: Option<OffsetDateTime>,
}

impl Bookkeeping {
    /// How many input ids [`recent_inputs`](Self::recent_inputs) keeps.
    pub const RECENT: usize = 256;

    /// The bookkeeping of an instance that has recorded nothing yet.
    pub fn new() -> Self {
        Self {
            version: Version::ZERO,
            correlation_id: None,
            state: InstanceState::Running,
            pending: Vec::new(),
            timeouts: BTreeMap::new(),
            recent_inputs: VecDeque::new(),
            completing: false,
            failure: None,
            started_at: None,
            progressed_at: None,
        }
    }

    /// Whether the instance has recorded anything.
    pub fn has_started(&self) -> bool {
        self.version != Version::ZERO
    }
}

impl Default for Bookkeeping {
    fn default() -> Self {
        Self::new()
    }
}
