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
        // The context's (a process step sets it), or else the current span's.
        event.traceparent = (context.headers().get(TRACEPARENT).cloned())
            .or_else(cqrs_core::telemetry::current_traceparent);
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

#[cfg(test)]
mod tests {
    use cqrs_core::CommandId;
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    use super::*;
    use crate::cloudevents;
    use crate::{IntegrationEvent, KafkaConfig};

    #[derive(Serialize, Deserialize)]
    struct Charge {
        order: String,
    }

    impl IntegrationEvent for Charge {
        const TYPE: &'static str = "test.charge.v1";
    }

    fn dispatcher() -> BusDispatcher<Charge, ()> {
        // No broker is contacted: the producer connects lazily.
        let config = KafkaConfig::new("127.0.0.1:9").expect("config");
        let producer = KafkaProducer::new(&config).expect("producer");
        BusDispatcher::new(producer, "/services/a", "a.replies", |c: &Charge| {
            Ok(Request::new(
                c.order.clone(),
                Outgoing::of("b.commands", c)?,
            ))
        })
    }

    fn text<'r>(record: &'r Record, name: &str) -> &'r str {
        std::str::from_utf8(record.header(name).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn a_command_goes_to_its_topic_keyed_by_aggregate_with_the_step_id_and_where_to_reply() {
        let (command, correlation, causation) = (CommandId::new(), Uuid::now_v7(), Uuid::now_v7());
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = CommandContext::new()
            .command_id(command)
            .correlation_id(correlation)
            .causation_id(causation)
            .header("process", "fulfilment")
            .header("process_instance", "o7")
            .header(TRACEPARENT, parent);
        let charge = Charge { order: "o7".into() };
        let record = dispatcher().message(&charge, &context).expect("a message");
        assert_eq!(record.topic(), "b.commands");
        assert_eq!(record.key(), b"o7");
        assert_eq!(record.payload(), br#"{"order":"o7"}"#);
        assert_eq!(text(&record, cloudevents::ID), command.to_string());
        assert_eq!(text(&record, cloudevents::TYPE), "test.charge.v1");
        assert_eq!(text(&record, cloudevents::SOURCE), "/services/a");
        assert_eq!(
            text(&record, cloudevents::CORRELATION_ID),
            correlation.to_string()
        );
        assert_eq!(
            text(&record, cloudevents::CAUSATION_ID),
            causation.to_string()
        );
        assert_eq!(text(&record, cloudevents::TRACEPARENT), parent);
        assert_eq!(text(&record, REPLY_TO), "a.replies");
        assert_eq!(text(&record, PROCESS), "fulfilment");
        assert_eq!(text(&record, PROCESS_INSTANCE), "o7");
    }

    #[test]
    fn a_command_without_a_step_id_or_a_process_is_refused_for_good() {
        let charge = Charge { order: "o7".into() };
        let bus = dispatcher();
        let no_id = CommandContext::new()
            .header("process", "fulfilment")
            .header("process_instance", "o7");
        let error = bus.message(&charge, &no_id).expect_err("no command id");
        assert!(!error.is_transient());
        assert!(error.to_string().contains("needs a command id"), "{error}");
        let no_process = CommandContext::new().command_id(CommandId::new());
        let error = bus.message(&charge, &no_process).expect_err("no process");
        assert!(error.to_string().contains("no process header"), "{error}");
    }
}
