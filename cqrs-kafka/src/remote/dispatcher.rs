//! [`BusDispatcher`]: a process manager's [`CommandDispatcher`] that sends commands to
//! another service through the bus.

use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use cqrs_core::process::{CommandDispatcher, DispatchError, Dispatched};
use cqrs_core::telemetry::TRACEPARENT;
use cqrs_core::{CommandContext, Error};

use super::headers::{PROCESS, PROCESS_INSTANCE, REPLY_TO};
use crate::{CloudEvent, KafkaProducer, MapError, Outgoing, Record};

/// Where one command goes: the target aggregate's id (the message key, so one aggregate's
/// commands keep their order) and the command as a contract for the target's command topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    key: String,
    command: Outgoing,
}

impl Request {
    /// `command` (an [`IntegrationEvent`](crate::IntegrationEvent) contract made with
    /// [`Outgoing::of`]) for the aggregate `key`.
    pub fn new(key: impl Into<String>, command: Outgoing) -> Self {
        Self {
            key: key.into(),
            command,
        }
    }
}

type Route<C> = Box<dyn Fn(&C) -> Result<Request, MapError> + Send + Sync>;

/// Sends a process manager's commands to other services' aggregates through the bus:
/// [`Dispatched::Forwarded`] once the broker acknowledged, the outcome coming back later
/// through the service's [`ReplyInbox`](super::ReplyInbox).
///
/// `route` turns each command into its [`Request`] (topic, key, contract); `R` is the process's
/// `Rejection` (a bus dispatcher never rejects by itself: rejections come back as replies).
///
/// ```no_run
/// use cqrs_kafka::remote::{BusDispatcher, Request};
/// use cqrs_kafka::{IntegrationEvent, KafkaConfig, KafkaProducer, Outgoing};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// struct Charge { order: String, cents: u64 }
/// impl IntegrationEvent for Charge { const TYPE: &'static str = "shop.payment.charge.v1"; }
///
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// struct Refused(String);
///
/// let producer = KafkaProducer::new(&KafkaConfig::from_env()?)?;
/// let dispatcher: BusDispatcher<Charge, Refused> =
///     BusDispatcher::new(producer, "/services/orders", "orders.replies", |charge: &Charge| {
///         Ok(Request::new(charge.order.clone(), Outgoing::of("payments.commands", charge)?))
///     });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BusDispatcher<C, R> {
    producer: KafkaProducer,
    source: String,
    reply_to: String,
    route: Route<C>,
    rejection: PhantomData<fn() -> R>,
}

impl<C, R> fmt::Debug for BusDispatcher<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusDispatcher")
            .field("source", &self.source)
            .field("reply_to", &self.reply_to)
            .finish_non_exhaustive()
    }
}

impl<C, R> BusDispatcher<C, R> {
    /// Sends with `producer`, as CloudEvents `source` (`/services/orders`), asking for the
    /// outcomes on topic `reply_to` (which this service's [`ReplyInbox`](super::ReplyInbox)
    /// consumes), each command routed by `route`.
    pub fn new(
        producer: KafkaProducer,
        source: impl Into<String>,
        reply_to: impl Into<String>,
        route: impl Fn(&C) -> Result<Request, MapError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            producer,
            source: source.into(),
            reply_to: reply_to.into(),
            route: Box::new(route),
            rejection: PhantomData,
        }
    }

    /// The message `command` becomes under `context`: `ce_id` = its command id, the reply
    /// topic, the process and instance from the context's headers.
    ///
    /// # Errors
    ///
    /// Not transient: the context has no command id or no `process` / `process_instance`
    /// header (it did not come from a process manager), or `route` failed.
    pub fn message(&self, command: &C, context: &CommandContext) -> Result<Record, Error> {
        let ids = context.ids();
        let command_id = ids
            .command_id
            .ok_or_else(|| Error::process("bus", "a command sent on the bus needs a command id"))?;
        let header = |name: &str| {
            context.headers().get(name).ok_or_else(|| {
                Error::process(
                    "bus",
                    format!("command {command_id} has no {name} header: only process managers send on the bus"),
                )
            })
        };
        let process = header("process")?;
        let instance = header("process_instance")?;
        let request = (self.route)(command).map_err(|e| {
            Error::process(
                process.as_str(),
                format!("routing command {command_id}: {e}"),
            )
        })?;
        let mut event = CloudEvent::new(
            command_id.as_uuid(),
            self.source.as_str(),
            request.command.event_type(),
        );
        event.subject = Some(request.key.clone());
        event.dataschema = request.command.schema().map(str::to_owned);
        event.correlation_id = ids.correlation_id;
        event.causation_id = ids.causation_id;
        event.traceparent = context.headers().get(TRACEPARENT).cloned();
        let record = Record::new(
            request.command.topic(),
            request.key.into_bytes(),
            request.command.data().to_vec(),
        );
        Ok(event
            .write(record)
            .with_header(REPLY_TO, self.reply_to.as_str())
            .with_header(PROCESS, process.as_str())
            .with_header(PROCESS_INSTANCE, instance.as_str()))
    }
}

#[async_trait]
impl<C, R> CommandDispatcher<C> for BusDispatcher<C, R>
where
    C: Send + Sync,
    R: Send,
{
    type Rejection = R;

    /// Publishes the command and waits for the broker's acknowledgement: `Forwarded` then. A
    /// delivery error is transient or not as [`KafkaError::is_transient`](crate::KafkaError::is_transient)
    /// says (the engine retries the step, with the same command id).
    async fn dispatch(
        &self,
        command: &C,
        context: CommandContext,
    ) -> Result<Dispatched, DispatchError<R>> {
        let record = self
            .message(command, &context)
            .map_err(DispatchError::Failed)?;
        match self.producer.send(&record).await {
            Ok(_) => Ok(Dispatched::Forwarded),
            Err(error) if error.is_transient() => {
                Err(DispatchError::Failed(Error::unavailable(error)))
            }
            Err(error) => Err(DispatchError::Failed(Error::backend(error))),
        }
    }
}
