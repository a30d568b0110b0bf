//! The id rules. Every id an instance derives is a UUID v5 of [`PROCESS_NAMESPACE`] and a
//! `\0`-joined name, so redoing a step after a crash derives the same ids and the store's
//! idempotency (command ids, event ids) lands it once.
//!
//! - an input's id: the trigger's event id; a fired timeout's id; for a command's outcome, the
//!   command id it answers;
//! - a command's id: `{TYPE}\0{instance}\0{input}\0{index}`; a timeout's id: the same plus `\0t`;
//! - the journal event of one input: `{TYPE}\0{instance}\0{input}\0r`. It names the type and
//!   instance because one event may feed several process managers, and an event id is unique
//!   across the store.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::{uuid, Uuid};

use crate::{CommandId, EventId};

/// The namespace of every id process managers derive.
pub const PROCESS_NAMESPACE: Uuid = uuid!("6f1b3e52-2a7c-5d1e-9c4b-8e0f3a5d7c21");

/// Identifies one input of one instance: the event, the fired timeout, or the command whose
/// outcome it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InputId(Uuid);

impl InputId {
    /// Wraps a UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID inside.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The input an event is: its event id.
    pub fn of_event(event_id: EventId) -> Self {
        Self(event_id.as_uuid())
    }

    /// The input a command's outcome is: its command id.
    pub fn of_outcome(command_id: CommandId) -> Self {
        Self(command_id.as_uuid())
    }

    /// The input a fired timeout is: its timeout id.
    pub fn of_timeout(timeout_id: Uuid) -> Self {
        Self(timeout_id)
    }
}

impl fmt::Debug for InputId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InputId({})", self.0)
    }
}

impl fmt::Display for InputId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

fn derive(parts: &[&str]) -> Uuid {
    Uuid::new_v5(&PROCESS_NAMESPACE, parts.join("\0").as_bytes())
}

/// The command id of action `index` decided for `input` by `instance` of process `process`.
pub(crate) fn command_id(process: &str, instance: &str, input: InputId, index: u32) -> CommandId {
    CommandId::from_uuid(derive(&[
        process,
        instance,
        &input.to_string(),
        &index.to_string(),
    ]))
}

/// The timeout id of action `index` decided for `input`.
pub(crate) fn timeout_id(process: &str, instance: &str, input: InputId, index: u32) -> Uuid {
    derive(&[
        process,
        instance,
        &input.to_string(),
        &index.to_string(),
        "t",
    ])
}

/// The event id of the `ProcessInputReceived` recording `input`.
pub(crate) fn received_event_id(process: &str, instance: &str, input: InputId) -> EventId {
    EventId::from_uuid(derive(&[process, instance, &input.to_string(), "r"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let input = InputId::from_uuid(Uuid::nil());
        let a = command_id("order", "7", input, 0);
        assert_eq!(a, command_id("order", "7", input, 0));
        assert_ne!(a, command_id("order", "7", input, 1));
        assert_ne!(a, command_id("order", "8", input, 0));
        assert_ne!(a, command_id("orders", "7", input, 0));
        assert_ne!(a.as_uuid(), timeout_id("order", "7", input, 0));
        assert_ne!(
            received_event_id("order", "7", input),
            received_event_id("order", "8", input)
        );
    }

    #[test]
    fn the_separator_keeps_names_from_running_together() {
        let input = InputId::from_uuid(Uuid::nil());
        assert_ne!(
            command_id("ab", "c", input, 0),
            command_id("a", "bc", input, 0)
        );
    }
}
