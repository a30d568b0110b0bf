//! [`CommandConsumer`]: the target side of request / reply. It runs the commands other
//! services' process managers send, and publishes each outcome to the sender's reply topic.

use std::fmt;

use async_trait::async_trait;
use cqrs_core::process::ReplyOutcome;
use cqrs_core::{CommandContext, CommandError, CommandId, CommandOutcome};
use serde::Serialize;
use uuid::Uuid;

use super::headers::{
    reply_id, required, COMMAND_ID, PROCESS, PROCESS_INSTANCE, REPLY_TO, REPLY_TYPE,
};
use crate::consume::{HandleError, Incoming, IntegrationHandler, BUS_NAMESPACE};
use crate::{CloudEvent, KafkaProducer, Record};

/// What a service writes to run commands from the bus on its aggregates.
///
/// ```
/// use async_trait::async_trait;
/// use cqrs_core::process::ReplyOutcome;
/// use cqrs_core::testing::{Tally, TallyCommand};
/// use cqrs_core::{CommandContext, InMemoryEventStore, Repository};
/// use cqrs_kafka::consume::{HandleError, Incoming};
/// use cqrs_kafka::remote::{outcome_of, CommandHandler};
/// use cqrs_kafka::IntegrationEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Add { tally: String, amount: u64 }
/// impl IntegrationEvent for Add { const TYPE: &'static str = "example.tally.add.v1"; }
///
/// struct Tallies(Repository<Tally, InMemoryEventStore>);
///
/// #[async_trait]
/// impl CommandHandler for Tallies {
///     fn command_types(&self) -> Vec<&'static str> {
///         vec![Add::TYPE]
///     }
///     async fn execute(
///         &self,
///         command: &Incoming,
///         context: CommandContext,
///     ) -> Result<ReplyOutcome, HandleError> {
///         let add: Add = command.data()?;
///         let result = self.0.execute_with(&add.tally, &TallyCommand::Add(vec![add.amount]), context).await;
///         // The rejection as the requester's process decodes it (here, its text).
///         outcome_of(result, |error| error.to_string())
///     }
/// }
/// ```
#[async_trait]
pub trait CommandHandler: Send + Sync + 'static {
    /// The command contracts' types (`ce_type`) it runs.
    fn command_types(&self) -> Vec<&'static str>;

    /// Runs `command` with `context` (whose command id is the message's `ce_id`: pass it to
    /// [`Repository::execute_with`](cqrs_core::Repository::execute_with) unchanged, so a
    /// command delivered again lands once). `Ok` with the outcome to reply, accepted or the
    /// typed rejection as JSON ([`outcome_of`] builds it); `Err` when it could not run:
    /// retried if transient, else parked, and the sender is told it failed, with the reason
    /// ([`ReplyOutcome::Failed`]: its instance is parked until the real answer comes).
    async fn execute(
        &self,
        command: &Incoming,
        context: CommandContext,
    ) -> Result<ReplyOutcome, HandleError>;
}

/// The reply for a command's result: accepted (a duplicate too: the first run's outcome), or
/// rejected with `rejection(error)` as JSON, which must decode as the requesting process's
/// `Rejection`. A store error is no reply: it is the handler's error (transient or poison).
pub fn outcome_of<E, T, F>(
    result: Result<CommandOutcome<E>, CommandError<F>>,
    rejection: impl FnOnce(F) -> T,
) -> Result<ReplyOutcome, HandleError>
where
    F: std::error::Error + 'static,
    T: Serialize,
{
    match result {
        Ok(_) => Ok(ReplyOutcome::Accepted),
        Err(CommandError::Rejected(error)) => {
            let error = serde_json::to_value(rejection(error)).map_err(|e| {
                HandleError::poison(format_args!("the rejection does not encode: {e}"))
            })?;
            Ok(ReplyOutcome::Rejected { error })
        }
        Err(CommandError::Store(error)) => Err(error.into()),
        Err(other) => Err(HandleError::poison(other)),
    }
}

/// An [`IntegrationHandler`] (run it with an
/// [`IntegrationConsumer`](crate::consume::IntegrationConsumer) on the service's command
/// topic) that runs each command through a [`CommandHandler`] with command id = the
/// message's `ce_id`, then publishes the outcome to the message's `ce_replyto` topic, keyed by
/// the sending instance, with `ce_id` = [`reply_id`] of the command.
///
/// A crash (or a failed reply) between the two: the message comes again, the command runs as
/// a duplicate (nothing new recorded) and the same reply id is published; the requester
/// records one reply per command id.
///
/// A command that can never run (the handler's poison, a type it does not run, a key held
/// back behind a parked command) is parked, and the sender is told first:
/// [`ReplyOutcome::Failed`] with the reason, under an id of its own, so the requesting
/// instance is parked with the reason instead of waiting without a word. Once an operator
/// retried the parked command here, its real answer goes out as any other.
pub struct CommandConsumer<H> {
    handler: H,
    producer: KafkaProducer,
    source: String,
}

impl<H> fmt::Debug for CommandConsumer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandConsumer")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl<H: CommandHandler> CommandConsumer<H> {
    /// Runs commands with `handler`, replying with `producer` as CloudEvents `source`
    /// (`/services/payments`).
    pub fn new(handler: H, producer: KafkaProducer, source: impl Into<String>) -> Self {
        Self {
            handler,
            producer,
            source: source.into(),
        }
    }

    /// The context a command message runs under: command id = `ce_id`, its correlation and
    /// causation, and the publisher's trace carried on (the message is handled in a span that
    /// continues its `traceparent`; with no traced span running, the header goes on as it came).
    pub fn context(command: &Incoming) -> CommandContext {
        let event = command.event();
        let mut context = CommandContext::new()
            .command_id(CommandId::from_uuid(event.id))
            .causation_id(event.causation_id.unwrap_or(event.id));
        if let Some(correlation) = event.correlation_id {
            context = context.correlation_id(correlation);
        }
        crate::consume::carry_trace(context, event.traceparent.as_deref())
    }

    fn reply(&self, command: &Incoming, outcome: &ReplyOutcome) -> Result<Record, HandleError> {
        let reply_to = required(command, REPLY_TO)?;
        let process = required(command, PROCESS)?;
        let instance = required(command, PROCESS_INSTANCE)?;
        let request = command.event();
        let id = match outcome {
            ReplyOutcome::Failed { reason } => failure_id(request.id, reason),
            _ => reply_id(request.id),
        };
        let mut event = CloudEvent::new(id, self.source.as_str(), REPLY_TYPE);
        event.subject = Some(instance.to_owned());
        event.correlation_id = request.correlation_id;
        event.causation_id = Some(request.id);
        event.traceparent = request.traceparent.clone();
        let body = serde_json::to_vec(outcome)
            .map_err(|e| HandleError::poison(format_args!("the reply does not encode: {e}")))?;
        let record = Record::new(reply_to, instance.as_bytes().to_vec(), body);
        Ok(event
            .write(record)
            .with_header(PROCESS, process)
            .with_header(PROCESS_INSTANCE, instance)
            .with_header(COMMAND_ID, request.id.to_string()))
    }
}

#[async_trait]
impl<H: CommandHandler> IntegrationHandler for CommandConsumer<H> {
    fn event_types(&self) -> Vec<&'static str> {
        self.handler.command_types()
    }

    /// Runs the command, then publishes its outcome and waits for the acknowledgement. A
    /// command without a reply address is poison before it runs.
    async fn handle(&self, incoming: &Incoming) -> Result<(), HandleError> {
        // Checked first: a command that cannot be answered is not run.
        self.reply(incoming, &ReplyOutcome::Accepted)?;
        let outcome = self
            .handler
            .execute(incoming, Self::context(incoming))
            .await?;
        if let ReplyOutcome::Failed { reason } = outcome {
            // Not an answer: the command is parked here, and the sender told so, as for an
            // `Err` (a failure replied without a letter would leave nothing to retry).
            return Err(HandleError::Poison(reason));
        }
        self.publish(&self.reply(incoming, &outcome)?).await
    }

    /// Tells the sender the command failed, with `reason`, before it is parked here.
    async fn parking(&self, incoming: &Incoming, reason: &str) -> Result<(), HandleError> {
        let failed = ReplyOutcome::Failed {
            reason: reason.to_owned(),
        };
        self.publish(&self.reply(incoming, &failed)?).await
    }
}

impl<H> CommandConsumer<H> {
    /// Publishes `reply` and waits for the acknowledgement.
    async fn publish(&self, reply: &Record) -> Result<(), HandleError> {
        self.producer.send(reply).await.map_err(|error| {
            if error.is_transient() {
                HandleError::transient(error)
            } else {
                HandleError::poison(format_args!("the reply was not published: {error}"))
            }
        })?;
        Ok(())
    }
}

/// The `ce_id` of the word that command `command_id` failed for `reason`: its own (never the
/// answer's, which may come once the command is retried), the same for the same failure.
fn failure_id(command_id: Uuid, reason: &str) -> Uuid {
    Uuid::new_v5(
        &BUS_NAMESPACE,
        format!("failed\0{command_id}\0{reason}").as_bytes(),
    )
}
