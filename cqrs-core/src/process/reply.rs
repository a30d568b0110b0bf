//! [`CommandReplied`]: the answer to a [`Forwarded`](super::Dispatched::Forwarded) command,
//! recorded in the requester's own log so the engine resolves the pending step.
//!
//! A command sent to another service (through a bus) is answered later, by a message. Whoever
//! receives that message (a bus consumer, `cqrs_kafka::remote::ReplyInbox`) appends one
//! `ProcessCommandReplied` event to the stream `"{TYPE}_reply-{command id}"`
//! ([`CommandReplied::record`]). The process manager's projection subscribes to these streams as
//! it does to its fired timeouts, and its engine turns the reply into
//! [`Input::Accepted`](super::Input::Accepted) or
//! [`Input::Rejected`](super::Input::Rejected) with the rejection's JSON decoded into the
//! process's `Rejection`, exactly as a local dispatcher's answer would be.
//!
//! Once per command: the event's id is derived from the command id, so a reply received twice
//! (a redelivered message, a command re-sent after a crash and answered again) is a duplicate
//! append, and the first answer stands. The engine's input id for it is the command id (as for
//! a local answer), so it is decided once too.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::ids::PROCESS_NAMESPACE;
use crate::{
    AppendEvents, AppendOutcome, CommandId, Error, EventId, ExpectedVersion, Metadata, NewEvent,
    StreamId,
};

/// The event type of [`CommandReplied`].
pub const COMMAND_REPLIED: &str = "ProcessCommandReplied";

/// The answer to a forwarded command of process `process`'s instance `instance`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandReplied {
    /// The process manager's `TYPE` (the command's `process` header).
    pub process: String,
    /// The instance that sent it (the command's `process_instance` header).
    pub instance: String,
    /// The command id it was sent with: which pending step it answers.
    pub command_id: CommandId,
    /// Accepted, or rejected with the typed error as JSON (flattened: `"outcome": "accepted"`,
    /// or `"outcome": "rejected", "error": ...`).
    #[serde(flatten)]
    pub outcome: ReplyOutcome,
}

/// What became of a forwarded command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReplyOutcome {
    /// The target accepted it and recorded its events.
    Accepted,
    /// The target refused it: `error` must decode as the process's `Rejection` (a reply that
    /// does not is poison, parked under the instance).
    Rejected {
        /// The typed rejection, as JSON.
        error: Value,
    },
}

impl CommandReplied {
    /// The answer `outcome` to command `command_id` of `process`'s instance `instance`.
    pub fn new(
        process: impl Into<String>,
        instance: impl Into<String>,
        command_id: CommandId,
        outcome: ReplyOutcome,
    ) -> Self {
        Self {
            process: process.into(),
            instance: instance.into(),
            command_id,
            outcome,
        }
    }

    /// The stream the reply is recorded in: `"{process}_reply-{command id}"`.
    pub fn stream(&self) -> Result<StreamId, Error> {
        Ok(StreamId::with_category(
            &reply_category(&self.process),
            &self.command_id.to_string(),
        )?)
    }

    /// The reply event's id, derived from the command id: one reply per command.
    pub fn event_id(&self) -> EventId {
        let name = format!("{}\0{}\0reply", self.process, self.command_id);
        EventId::from_uuid(Uuid::new_v5(&PROCESS_NAMESPACE, name.as_bytes()))
    }

    /// Appends the reply to `store`, with `correlation` if the command carried one. A reply
    /// recorded before (same command id) is a duplicate: nothing is written, and the first
    /// reply stands.
    ///
    /// ```
    /// use cqrs_core::process::{CommandReplied, ReplyOutcome};
    /// use cqrs_core::{CommandId, InMemoryEventStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = InMemoryEventStore::new();
    /// let command = CommandId::new();
    /// let reply = CommandReplied::new("fulfilment", "order-1", command, ReplyOutcome::Accepted);
    /// assert!(!reply.record(&store, None).await?.duplicate);
    /// // The same command answered again (here, differently): the first answer stands.
    /// let again = CommandReplied::new(
    ///     "fulfilment",
    ///     "order-1",
    ///     command,
    ///     ReplyOutcome::Rejected { error: serde_json::json!("out of stock") },
    /// );
    /// assert!(again.record(&store, None).await?.duplicate);
    /// # Ok::<(), cqrs_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn record<S: AppendEvents + ?Sized>(
        &self,
        store: &S,
        correlation: Option<Uuid>,
    ) -> Result<AppendOutcome, Error> {
        let stream = self.stream()?;
        let payload = serde_json::to_value(self).map_err(|source| Error::Encode {
            event_type: COMMAND_REPLIED.to_owned(),
            source,
        })?;
        let mut metadata =
            Metadata::new(self.event_id()).with_causation_id(self.command_id.as_uuid());
        if let Some(correlation) = correlation {
            metadata = metadata.with_correlation_id(correlation);
        }
        let event = NewEvent::new(COMMAND_REPLIED, 1, payload).with_metadata(metadata);
        // `Any`: the stream is the command's own; a second reply is a duplicate by event id.
        store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
    }
}

/// The category of process `process`'s reply streams.
pub(crate) fn reply_category(process: &str) -> String {
    format!("{process}_reply")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reply_is_stored_in_a_stable_shape_and_stream() {
        let command = CommandId::from_uuid(Uuid::nil());
        let error = json!({ "Stock": "Closed" });
        let reply = CommandReplied::new(
            "order_fulfilment",
            "o7",
            command,
            ReplyOutcome::Rejected {
                error: error.clone(),
            },
        );
        assert_eq!(
            serde_json::to_value(&reply).expect("json"),
            json!({
                "process": "order_fulfilment",
                "instance": "o7",
                "command_id": "00000000-0000-0000-0000-000000000000",
                "outcome": "rejected",
                "error": error,
            })
        );
        assert_eq!(
            reply.stream().expect("stream").as_str(),
            "order_fulfilment_reply-00000000-0000-0000-0000-000000000000"
        );
        let accepted =
            CommandReplied::new("order_fulfilment", "o7", command, ReplyOutcome::Accepted);
        assert_eq!(
            accepted.event_id(),
            reply.event_id(),
            "one reply per command"
        );
        let other = CommandReplied::new("other", "o7", command, ReplyOutcome::Accepted);
        assert_ne!(other.event_id(), reply.event_id(), "per process");
    }
}
