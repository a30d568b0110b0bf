//! [`Incoming`]: one decoded bus message, as a handler sees it.

use std::sync::Arc;

use cqrs_core::{CommandContext, CommandId};
use uuid::Uuid;

use super::{derived_command_id, HandleError};
use crate::{CloudEvent, CloudEventError, IntegrationEvent, Received};

/// A message whose CloudEvents attributes decoded: the attributes, the key, the JSON data and
/// where it was read (topic, partition, offset).
#[derive(Clone, Debug)]
pub struct Incoming {
    consumer: Arc<str>,
    event: CloudEvent,
    message: Received,
}

impl Incoming {
    /// Decodes `message`'s attributes for consumer `consumer`.
    pub fn decode(consumer: &str, message: Received) -> Result<Self, CloudEventError> {
        Ok(Self {
            consumer: Arc::from(consumer),
            event: CloudEvent::read(&message)?,
            message,
        })
    }

    pub(crate) fn from_parts(consumer: Arc<str>, event: CloudEvent, message: Received) -> Self {
        Self {
            consumer,
            event,
            message,
        }
    }

    /// The CloudEvents attributes.
    pub fn event(&self) -> &CloudEvent {
        &self.event
    }

    /// `ce_id`: the publishing service's event id, what redeliveries share.
    pub fn id(&self) -> Uuid {
        self.event.id
    }

    /// `ce_type`: the contract's versioned type.
    pub fn event_type(&self) -> &str {
        &self.event.event_type
    }

    /// The message as read: key, payload, headers, topic, partition, offset.
    pub fn message(&self) -> &Received {
        &self.message
    }

    /// The consumer (group) reading it.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The data as contract `E`: poison when `ce_type` is not `E::TYPE` or the body does not
    /// decode as `E`.
    pub fn data<E: IntegrationEvent>(&self) -> Result<E, HandleError> {
        if self.event.event_type != E::TYPE {
            return Err(HandleError::poison(format_args!(
                "the message is a {}, not a {}",
                self.event.event_type,
                E::TYPE
            )));
        }
        let payload = self
            .message
            .payload()
            .ok_or_else(|| HandleError::poison("the message has no body"))?;
        serde_json::from_slice(payload)
            .map_err(|e| HandleError::poison(format_args!("the body is not a {}: {e}", E::TYPE)))
    }

    /// The command id of `step` of this message's effect (see
    /// [`derived_command_id`](super::derived_command_id)).
    pub fn command_id(&self, step: &str) -> CommandId {
        CommandId::from_uuid(derived_command_id(&self.consumer, self.event.id, step))
    }

    /// The context for the command of `step`: the derived command id, so a redelivered message
    /// lands once; the correlation id of the message (`ce_correlationid`); caused by the
    /// message's event (`ce_id`); and the publisher's trace carried on: the consumer handles
    /// the message in a span that continues it, so the command's span is inside that trace and
    /// its events name the command's place in it; with no traced span running (no tracing
    /// here), the message's `traceparent` header goes on the events as it came.
    pub fn command_context(&self, step: &str) -> CommandContext {
        let mut context = CommandContext::new()
            .command_id(self.command_id(step))
            .causation_id(self.event.id);
        if let Some(correlation) = self.event.correlation_id {
            context = context.correlation_id(correlation);
        }
        carry_trace(context, self.event.traceparent.as_deref())
    }
}

/// `context` with the message's `traceparent` as the command's, when no traced span runs: the
/// consumer handles each message inside a span that continues the publisher's trace, and the
/// command's own span, inside it, then writes its place in that trace on the events (an
/// explicit header would make the command span continue the publisher's span directly,
/// skipping the message span). Without tracing here, the header passes the trace on as it
/// came.
pub(crate) fn carry_trace(context: CommandContext, traceparent: Option<&str>) -> CommandContext {
    match traceparent {
        Some(parent) if cqrs_core::telemetry::current_traceparent().is_none() => {
            context.header(cqrs_core::telemetry::TRACEPARENT, parent)
        }
        _ => context,
    }
}

#[cfg(test)]
mod tests {
    use cqrs_core::telemetry::TRACEPARENT;
    use cqrs_core::CommandContext;

    use super::carry_trace;

    #[test]
    fn without_a_traced_span_the_message_s_traceparent_goes_on_as_it_came() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = carry_trace(CommandContext::new(), Some(parent));
        assert_eq!(
            context.headers().get(TRACEPARENT).map(String::as_str),
            Some(parent)
        );
        let none = carry_trace(CommandContext::new(), None);
        assert!(none.headers().get(TRACEPARENT).is_none());
    }
}
