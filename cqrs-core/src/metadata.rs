//! [`Metadata`]: what an event carries besides its payload.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CommandId, EventId};

/// Tracing and bookkeeping data recorded with every event.
///
/// - `event_id`: unique per event;
/// - `correlation_id`: shared by everything that one request set off, across services;
/// - `causation_id`: the id of the command or event that directly caused this one;
/// - `command_id`: the caller's id of the command that produced the event (see
///   [`CommandContext::command_id`](crate::CommandContext::command_id));
/// - `headers`: free-form extension headers (user id, tenant, ...).
///
/// ```
/// use cqrs_core::{Metadata, EventId};
/// use uuid::Uuid;
///
/// let correlation = Uuid::now_v7();
/// let metadata = Metadata::new(EventId::new())
///     .with_correlation_id(correlation)
///     .with_header("user", "alice");
/// assert_eq!(metadata.correlation_id, Some(correlation));
/// assert_eq!(metadata.header("user"), Some("alice"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// The event's own id.
    pub event_id: EventId,
    /// Shared by every command and event of one request or flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The command or event that caused this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The id of the command that produced this event, when the caller gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<CommandId>,
    /// Extension headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl Metadata {
    /// Metadata for the event `event_id`, with no correlation, causation or headers.
    pub fn new(event_id: EventId) -> Self {
        Self {
            event_id,
            correlation_id: None,
            causation_id: None,
            command_id: None,
            headers: BTreeMap::new(),
        }
    }

    /// Sets the correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id.
    #[must_use]
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Sets the command id.
    #[must_use]
    pub fn with_command_id(mut self, id: CommandId) -> Self {
        self.command_id = Some(id);
        self
    }

    /// Adds an extension header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// An extension header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

impl Default for Metadata {
    fn default() -> Self {
        Self::new(EventId::new())
    }
}
