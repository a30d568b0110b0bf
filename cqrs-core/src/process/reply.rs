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
//!
//! A target that cannot run a command at all (a defect, a contract it cannot read) parks it
//! and says so: [`ReplyOutcome::Failed`]. That is no answer and takes no answer's place (its
//! event id derives from the reason too); the engine parks the instance with the reason, as a
//! local dispatcher's failure parks it, until the target's real answer supersedes it.

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
    /// Accepted, rejected with the typed error as JSON, or not run (flattened: `"outcome":
    /// "accepted"`, `"outcome": "rejected", "error": ...`, or `"outcome": "failed", "reason":
    /// ...`).
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
    /// The target could not run it at all and parked it (a defect, a contract it cannot read):
    /// no answer, the command stays pending. The requesting instance is parked with `reason`,
    /// as a local dispatcher's failure parks it; once the target's operators retried the
    /// command, its real answer supersedes this, and retrying the instance decides the step.
    Failed {
        /// Why, in the target's words.
        reason: String,
    },
}

impl ReplyOutcome {
    /// Whether it answers the command (accepted or rejected), where [`Failed`](Self::Failed)
    /// only says the target could not run it.
    pub fn is_answer(&self) -> bool {
        !matches!(self, ReplyOutcome::Failed { .. })
    }
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
        Self::stream_of(&self.process, self.command_id)
    }

    /// The stream the replies to command `command_id` of `process` are recorded in.
    pub(crate) fn stream_of(process: &str, command_id: CommandId) -> Result<StreamId, Error> {
        Ok(StreamId::with_category(
            &reply_category(process),
            &command_id.to_string(),
        )?)
    }

    /// The reply event's id, derived from the command id: one answer per command. A
    /// [`Failed`](ReplyOutcome::Failed) word has an id of its own, derived from its reason too,
    /// so it never takes the answer's place and the same failure told twice is recorded once.
    pub fn event_id(&self) -> EventId {
        let name = match &self.outcome {
            ReplyOutcome::Failed { reason } => {
                format!("{}\0{}\0failed\0{reason}", self.process, self.command_id)
            }
            ReplyOutcome::Accepted | ReplyOutcome::Rejected { .. } => {
                format!("{}\0{}\0reply", self.process, self.command_id)
            }
        };
        EventId::from_uuid(Uuid::new_v5(&PROCESS_NAMESPACE, name.as_bytes()))
    }

    /// Appends the reply to `store`, with `correlation` if the command carried one. An answer
    /// recorded before (same command id) is a duplicate: nothing is written, and the first
    /// answer stands. A [`Failed`](ReplyOutcome::Failed) word is a duplicate only of the same
    /// failure told before (its id is its own).
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

    #[test]
    fn a_failure_is_stored_in_its_own_shape_and_never_in_the_answer_s_place() {
        let command = CommandId::from_uuid(Uuid::nil());
        let failed = |reason: &str| {
            CommandReplied::new(
                "order_fulfilment",
                "o7",
                command,
                ReplyOutcome::Failed {
                    reason: reason.to_owned(),
                },
            )
        };
        let defect = failed("cannot read the command");
        assert_eq!(
            serde_json::to_value(&defect).expect("json"),
            json!({
                "process": "order_fulfilment",
                "instance": "o7",
                "command_id": "00000000-0000-0000-0000-000000000000",
                "outcome": "failed",
                "reason": "cannot read the command",
            })
        );
        assert!(!defect.outcome.is_answer());
        let accepted =
            CommandReplied::new("order_fulfilment", "o7", command, ReplyOutcome::Accepted);
        assert!(accepted.outcome.is_answer());
        assert_ne!(
            defect.event_id(),
            accepted.event_id(),
            "not the answer's id"
        );
        assert_eq!(
            defect.event_id(),
            failed("cannot read the command").event_id(),
            "the same failure told twice is one"
        );
        assert_ne!(defect.event_id(), failed("another reason").event_id());
    }
}
