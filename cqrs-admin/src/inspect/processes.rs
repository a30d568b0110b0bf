//! Process-manager instances: [`InstanceView`] rows and one instance's [`InstanceDetail`] with
//! its timeline.

use cqrs_core::process::{InstanceRow, InstanceState, TimelineEntry, TimelineKind};
use cqrs_core::Position;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// Which instances to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InstanceFilterView {
    /// Every instance.
    All,
    /// Running ones.
    Running,
    /// Completed ones.
    Completed,
    /// Failed ones (held back by a parked event too).
    Failed,
    /// Running ones without progress for the stuck threshold and no timeout due later.
    Stuck,
}

/// One instance's status row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InstanceView {
    /// The process manager's type (`{TYPE}` of `process:{TYPE}`).
    pub process: String,
    /// The instance id.
    pub instance: String,
    /// `running`, `completed` or `failed`.
    pub state: String,
    /// Its correlation id.
    pub correlation_id: Option<Uuid>,
    /// Its journal's version.
    pub version: u64,
    /// The last input, for people.
    pub last_input: String,
    /// Commands sent and not answered.
    pub pending_commands: u32,
    /// When its earliest live timeout is due.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_timeout_at: Option<OffsetDateTime>,
    /// When it started (process clock).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it last recorded an input.
    #[serde(with = "time::serde::rfc3339")]
    pub progressed_at: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl InstanceView {
    pub(crate) fn new(process: &str, row: &InstanceRow) -> Self {
        Self {
            process: process.to_owned(),
            instance: row.instance.clone(),
            state: state_name(row.state).to_owned(),
            correlation_id: row.correlation_id,
            version: row.version.get(),
            last_input: row.last_input.clone(),
            pending_commands: row.pending_commands,
            next_timeout_at: row.next_timeout_at,
            started_at: row.started_at,
            progressed_at: row.progressed_at,
            finished_at: row.finished_at,
        }
    }
}

fn state_name(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Running => "running",
        InstanceState::Completed => "completed",
        InstanceState::Failed => "failed",
    }
}

/// One entry of an instance's timeline: what it received, what it decided, a live timeout, a
/// parked event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimelineEntryView {
    /// `received`, `decided`, `live` (a timeout not fired yet) or `parked`.
    pub kind: String,
    /// The journal entry's version.
    pub version: u64,
    /// Its feed position.
    #[serde(with = "super::serde_pos")]
    pub position: Position,
    /// When the store recorded it.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// The process clock's time (a live timeout's due time).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// For people: the input, the timeout's key, the parked event.
    pub what: String,
    /// The actions decided, or a parked event's error.
    pub details: Vec<String>,
    /// The input's or timeout's payload.
    pub payload: Option<Value>,
}

impl From<&TimelineEntry> for TimelineEntryView {
    fn from(entry: &TimelineEntry) -> Self {
        let (kind, what, details, payload) = match &entry.kind {
            TimelineKind::Received { what, payload, .. } => {
                ("received", what.clone(), Vec::new(), Some(payload.clone()))
            }
            TimelineKind::Decided { actions, .. } => {
                ("decided", String::new(), actions.clone(), None)
            }
            TimelineKind::Live {
                key,
                timeout_id,
                payload,
                ..
            } => (
                "live",
                format!("timeout {key} ({timeout_id})"),
                Vec::new(),
                Some(payload.clone()),
            ),
            TimelineKind::Parked { what, error } => {
                ("parked", what.clone(), vec![error.clone()], None)
            }
            _ => ("other", String::new(), Vec::new(), None),
        };
        Self {
            kind: kind.to_owned(),
            version: entry.version.get(),
            position: entry.position,
            recorded_at: entry.recorded_at,
            at: entry.at,
            what,
            details,
            payload,
        }
    }
}

/// One instance: its status row (when it recorded anything) and its timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InstanceDetail {
    /// Its status row, as lists show it.
    pub status: Option<InstanceView>,
    /// Its journal, live timeouts and parked events, in that order.
    pub timeline: Vec<TimelineEntryView>,
}
