//! The journal: the event an instance's stream `"{TYPE}-{instance}"` holds, one per input, and
//! the event a fired timeout appends to `"{TYPE}_timer-{timeout id}"`. Each is at schema
//! version 1.
//!
//! An input and the actions decided for it are one event ([`InputReceived`], appended with an
//! `Exact` version), whose id is derived from (type, instance, input), so recording an input
//! again is a duplicate and changes nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::ids::InputId;
use super::manager::{EventRef, Step};
use crate::{CommandId, Error, EventId, Metadata, NewEvent, RecordedEvent, StreamId};

/// The event type of [`InputReceived`].
pub const INPUT_RECEIVED: &str = "ProcessInputReceived";
/// The event type of [`TimeoutFired`].
pub const TIMEOUT_FIRED: &str = "ProcessTimeoutFired";

/// An instance received an input, and decided these actions for it (`ProcessInputReceived`):
/// one journal event per input, so a record writes one event row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputReceived {
    /// The input's id.
    pub input: InputId,
    /// The process clock's time when it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What it was.
    pub kind: ReceivedKind,
    /// The actions decided for it, in the order `decide` returned them (none: omitted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<DecidedAction>,
}

/// What an instance received.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReceivedKind {
    /// A subscribed event, as stored: on load it is upcast and routed again, so the user's
    /// upcasters apply to it.
    Event {
        /// Where it was recorded.
        source: EventRef,
        /// Its type.
        event_type: String,
        /// Its schema version as stored.
        schema_version: u32,
        /// Its payload as stored.
        payload: Value,
        /// Its metadata.
        metadata: Metadata,
    },
    /// A timeout fired.
    Timeout {
        /// Its key.
        key: String,
        /// Its id.
        timeout_id: Uuid,
        /// When it was due.
        #[serde(with = "time::serde::rfc3339")]
        due_at: OffsetDateTime,
        /// What it was scheduled with.
        payload: Value,
    },
    /// A command the instance sent was accepted.
    Accepted {
        /// The step that sent it.
        step: Step,
    },
    /// A command the instance sent was rejected.
    Rejected {
        /// The step that sent it.
        step: Step,
        /// The aggregate's error.
        error: Value,
    },
}

impl ReceivedKind {
    /// A subscribed event as received: the event as stored (already upcast by the runner).
    pub fn of_event(event: &RecordedEvent) -> Self {
        ReceivedKind::Event {
            source: EventRef::of(event),
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.clone(),
            metadata: event.metadata.clone(),
        }
    }

    /// A fired timeout as received.
    pub fn of_timeout(fired: &TimeoutFired) -> Self {
        ReceivedKind::Timeout {
            key: fired.key.clone(),
            timeout_id: fired.timeout_id,
            due_at: fired.due_at,
            payload: fired.payload.clone(),
        }
    }
}

/// One decided action with its index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecidedAction {
    /// Its index among the input's actions (it derives the command and timeout ids).
    pub index: u32,
    /// What it is.
    pub action: RecordedAction,
}

/// An action as recorded: typed values as JSON, `Due::After` resolved, ids derived.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordedAction {
    /// Send a command with this id.
    Send {
        /// The command.
        command: Value,
        /// Its derived id.
        command_id: CommandId,
    },
    /// Schedule a timeout.
    Schedule {
        /// Its key.
        key: String,
        /// Its derived id.
        timeout_id: Uuid,
        /// When it is due (absolute).
        #[serde(with = "time::serde::rfc3339")]
        due_at: OffsetDateTime,
        /// What it brings back.
        payload: Value,
    },
    /// Cancel the timeout under a key.
    Cancel {
        /// The key.
        key: String,
    },
    /// Complete once nothing is pending.
    Complete,
    /// End as failed.
    Fail {
        /// Why.
        reason: String,
    },
}

/// A timeout fired (`ProcessTimeoutFired`), appended to `"{TYPE}_timer-{timeout id}"` with the
/// timeout id as its event id, in the transaction that removed the timeout's row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeoutFired {
    /// The instance that scheduled it.
    pub instance: String,
    /// Its key.
    pub key: String,
    /// Its id.
    pub timeout_id: Uuid,
    /// When it was due.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// What it was scheduled with.
    pub payload: Value,
}

impl TimeoutFired {
    /// The stream a fired timeout is appended to: `"{process}_timer-{timeout id}"`.
    pub fn stream(process: &str, timeout_id: Uuid) -> Result<StreamId, Error> {
        Ok(StreamId::with_category(
            &format!("{process}_timer"),
            &timeout_id.to_string(),
        )?)
    }

    /// The event a store appends (with `NoStream`) to [`TimeoutFired::stream`] when it fires
    /// this timeout: event id = the timeout id, so it is appended once.
    pub fn to_event(&self) -> Result<NewEvent, Error> {
        let payload = serde_json::to_value(self).map_err(|source| Error::Encode {
            event_type: TIMEOUT_FIRED.to_owned(),
            source,
        })?;
        Ok(NewEvent::new(TIMEOUT_FIRED, 1, payload)
            .with_metadata(Metadata::new(EventId::from_uuid(self.timeout_id))))
    }
}
