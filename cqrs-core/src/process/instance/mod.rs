//! One instance in memory: the user's state plus the framework's [`Bookkeeping`], folded from
//! the journal (or a snapshot and the journal's tail), and the one function that decides an
//! input, shared by the engine and the fixture.
//!
//! - this file: the bookkeeping types and how one journal event folds into them (the same code
//!   for a fresh decision and for replay, so the two cannot drift);
//! - `decide.rs`: [`Instance`] and `decide_input`, the pure step from an input to what to record;
//! - `replay.rs`: loading an instance from a snapshot and the journal's tail, and snapshots.

mod decide;
mod replay;

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::ids::InputId;
use super::journal::{DecidedAction, InputReceived, ReceivedKind, RecordedAction};
use super::life::{InstanceState, LiveTimeout};
use super::manager::Step;
use super::store::{InstanceRow, TimeoutChange};
use crate::Version;

pub(crate) use decide::{Decision, Instance, Received};

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
    /// When it completed or failed (process clock).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
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
            finished_at: None,
        }
    }

    /// Whether the instance has recorded anything.
    pub fn has_started(&self) -> bool {
        self.version != Version::ZERO
    }

    /// Whether `input` is among the recent inputs (recorded before).
    pub fn recently_received(&self, input: InputId) -> bool {
        self.recent_inputs.contains(&input)
    }

    /// The pending command a step's outcome answers.
    pub(crate) fn pending_command(&self, step: &Step) -> Option<&PendingCommand> {
        self.pending
            .iter()
            .find(|p| p.step.command_id == step.command_id)
    }

    /// When the earliest live timeout is due.
    pub fn next_timeout_at(&self) -> Option<OffsetDateTime> {
        self.timeouts.values().map(|t| t.due_at).min()
    }

    /// Folds the input of a journal event: what receiving it changes before `decide` runs
    /// (the answered command is no longer pending, the fired timeout no longer live). An event
    /// that carries the command id of a pending command answers it: that is how a
    /// [`Forwarded`](super::Dispatched::Forwarded) command stops being pending.
    pub(crate) fn receive(&mut self, received: &InputReceived) {
        if !self.has_started() {
            self.started_at = Some(received.at);
            if let ReceivedKind::Event {
                source, metadata, ..
            } = &received.kind
            {
                // A flow that starts here correlates by the event that started it.
                self.correlation_id = Some(
                    metadata
                        .correlation_id
                        .unwrap_or_else(|| source.event_id.as_uuid()),
                );
            }
        }
        self.progressed_at = Some(received.at);
        if self.recent_inputs.len() == Self::RECENT {
            self.recent_inputs.pop_front();
        }
        self.recent_inputs.push_back(received.input);
        match &received.kind {
            ReceivedKind::Accepted { step } | ReceivedKind::Rejected { step, .. } => {
                self.pending
                    .retain(|p| p.step.command_id != step.command_id);
            }
            ReceivedKind::Timeout {
                key, timeout_id, ..
            } => {
                if self.timeouts.get(key).map(|t| t.timeout_id) == Some(*timeout_id) {
                    self.timeouts.remove(key);
                }
            }
            // A forwarded command is answered by the events it produced, which carry its id.
            ReceivedKind::Event { metadata, .. } => {
                if let Some(command_id) = metadata.command_id {
                    self.pending.retain(|p| p.step.command_id != command_id);
                }
            }
        }
    }

    /// Folds the actions decided for `input`, then settles the instance's state: a completing
    /// instance completes once nothing is pending, and an ended one keeps no timeouts.
    /// `version` is the journal's version after the input's event.
    pub(crate) fn decide(
        &mut self,
        input: InputId,
        actions: &[DecidedAction],
        at: OffsetDateTime,
        version: Version,
    ) {
        for action in actions {
            match &action.action {
                RecordedAction::Send {
                    command,
                    command_id,
                } => self.pending.push(PendingCommand {
                    step: Step {
                        input,
                        index: action.index,
                        command_id: *command_id,
                    },
                    command: command.clone(),
                }),
                RecordedAction::Schedule {
                    key,
                    timeout_id,
                    due_at,
                    ..
                } => {
                    self.timeouts.insert(
                        key.clone(),
                        LiveTimeout {
                            timeout_id: *timeout_id,
                            due_at: *due_at,
                        },
                    );
                }
                RecordedAction::Cancel { key } => {
                    self.timeouts.remove(key);
                }
                RecordedAction::Complete => self.completing = true,
                RecordedAction::Fail { reason } => {
                    if !self.state.is_final() {
                        self.state = InstanceState::Failed;
                        self.failure = Some(reason.clone());
                    }
                }
            }
        }
        if self.state == InstanceState::Running && self.completing && self.pending.is_empty() {
            self.state = InstanceState::Completed;
        }
        if self.state.is_final() {
            self.timeouts.clear();
            self.finished_at.get_or_insert(at);
        }
        self.version = version;
    }

    /// The timeout changes that take the store from `before` (the live timeouts once the
    /// input was received) to these, at most one per key. `scheduled` holds the payloads of
    /// the timeouts this decision scheduled.
    pub(crate) fn timeout_changes(
        &self,
        before: &BTreeMap<String, LiveTimeout>,
        was_final: bool,
        scheduled: &BTreeMap<&str, &Value>,
    ) -> Vec<TimeoutChange> {
        if self.state.is_final() {
            return if was_final {
                Vec::new()
            } else {
                vec![TimeoutChange::CancelAll]
            };
        }
        let mut changes = Vec::new();
        for (key, old) in before {
            if !self.timeouts.contains_key(key) {
                changes.push(TimeoutChange::Cancel {
                    key: key.clone(),
                    timeout_id: old.timeout_id,
                });
            }
        }
        for (key, live) in &self.timeouts {
            let unchanged = before.get(key).map(|t| t.timeout_id) == Some(live.timeout_id);
            if unchanged {
                continue;
            }
            if let Some(payload) = scheduled.get(key.as_str()) {
                changes.push(TimeoutChange::Schedule {
                    key: key.clone(),
                    timeout_id: live.timeout_id,
                    due_at: live.due_at,
                    payload: (*payload).clone(),
                });
            }
        }
        changes
    }

    /// The status row of an instance with this bookkeeping.
    pub(crate) fn status_row(&self, instance: &str, last_input: String) -> InstanceRow {
        let progressed_at = self.progressed_at.unwrap_or(OffsetDateTime::UNIX_EPOCH);
        InstanceRow {
            instance: instance.to_owned(),
            state: self.state,
            correlation_id: self.correlation_id,
            version: self.version,
            last_input,
            pending_commands: u32::try_from(self.pending.len()).unwrap_or(u32::MAX),
            next_timeout_at: self.next_timeout_at(),
            started_at: self.started_at.unwrap_or(progressed_at),
            progressed_at,
            finished_at: self.finished_at,
        }
    }
}

impl Default for Bookkeeping {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
