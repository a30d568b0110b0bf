//! [`ReplyInbox`]: the requester side of request / reply. It records each reply in the
//! service's own log, where the process manager's engine resolves the pending step.

use std::fmt;

use async_trait::async_trait;
use cqrs_core::process::{CommandReplied, ReplyOutcome};
use cqrs_core::{AppendEvents, CommandId};
use uuid::Uuid;

use super::headers::{required, COMMAND_ID, PROCESS, PROCESS_INSTANCE, REPLY_TYPE};
use crate::consume::{HandleError, Incoming, IntegrationHandler};

/// An [`IntegrationHandler`] (run it with an
/// [`IntegrationConsumer`](crate::consume::IntegrationConsumer) on the service's reply topic)
/// that appends each reply to `store` as a [`CommandReplied`]: the process manager's
/// projection reads it from its own feed and decides the step's `Accepted` or `Rejected`.
///
/// A reply delivered again, or published again by a target that ran the command again, is a
/// duplicate append (the event id derives from the command id): one reply per command.
pub struct ReplyInbox<S> {
    store: S,
}

impl<S> fmt::Debug for ReplyInbox<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyInbox").finish_non_exhaustive()
    }
}

impl<S: AppendEvents + 'static> ReplyInbox<S> {
    /// Records replies in `store` (the requesting service's event store).
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The [`CommandReplied`] a reply message holds: poison when a header is missing or the
    /// body is not a [`ReplyOutcome`].
    pub fn decode(incoming: &Incoming) -> Result<CommandReplied, HandleError> {
        let process = required(incoming, PROCESS)?;
        let instance = required(incoming, PROCESS_INSTANCE)?;
        let command = required(incoming, COMMAND_ID)?;
        let command = Uuid::parse_str(command).map_err(|e| {
            HandleError::poison(format_args!("the {COMMAND_ID} header is not a uuid: {e}"))
        })?;
        let body = incoming
            .message()
            .payload()
            .ok_or_else(|| HandleError::poison("the reply has no body"))?;
        let outcome: ReplyOutcome = serde_json::from_slice(body).map_err(|e| {
            HandleError::poison(format_args!("the reply's body is not an outcome: {e}"))
        })?;
        Ok(CommandReplied::new(
            process,
            instance,
            CommandId::from_uuid(command),
            outcome,
        ))
    }
}

#[async_trait]
impl<S: AppendEvents + 'static> IntegrationHandler for ReplyInbox<S> {
    fn event_types(&self) -> Vec<&'static str> {
        vec![REPLY_TYPE]
    }

    async fn handle(&self, incoming: &Incoming) -> Result<(), HandleError> {
        let reply = Self::decode(incoming)?;
        reply
            .record(&self.store, incoming.event().correlation_id)
            .await?;
        Ok(())
    }
}
