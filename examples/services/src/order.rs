//! The order service: orders on its own schema, and the quick start's orchestrated saga,
//! unchanged, spanning the services.
//!
//! - [`OrderDispatcher`]: the saga's dispatcher: order commands to the local repository, the
//!   others through a [`BusDispatcher`] to the service that owns the aggregate.
//! - replies come back on [`Topics::order_replies`] and a [`ReplyInbox`] records them, so the
//!   saga hears `Accepted` / `Rejected` as with local aggregates;
//! - [`PartnerEvents`]: the saga also waits for events of payments and shipments
//!   (`PaymentAuthorized`, `PaymentRefused`, `ShipmentScheduled`). The partners publish them;
//!   this records each in the order service's log, in the stream the saga routes by
//!   (`payment-{order}`, `shipment-{order}`), with an event id derived from the message's: a
//!   redelivered message is a duplicate append. These streams are copies of the partners'
//!   public events, the order service's own record of what it was told; the partners' private
//!   events never leave their service.

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_core::process::{
    CommandDispatcher, DispatchError, Dispatched, ProcessManagerProjection, ProcessOptions,
};
use cqrs_core::projection::ProjectionHandle;
use cqrs_core::{
    Aggregate, AppendEvents, BoxError, CommandContext, EventId, ExpectedVersion, Metadata,
    NewEvent, Repository, StreamId,
};
use cqrs_kafka::consume::{
    ConsumerHandle, HandleError, Incoming, IntegrationConsumer, IntegrationHandler,
};
use cqrs_kafka::remote::{BusDispatcher, ReplyInbox, Request};
use cqrs_kafka::{IntegrationEvent, KafkaConfig, KafkaProducer, MapError, Outgoing};
use cqrs_postgres::PgEventStore;
use quickstart::order::Order;
use quickstart::payment::{Payment, PaymentEvent};
use quickstart::saga::commands::{ShopCommand, ShopRejection};
use quickstart::saga::orchestrated::OrderFulfilment;
use quickstart::shipping::{Shipment, ShipmentEvent};
use uuid::Uuid;

use crate::contracts::{
    PaymentAuthorized, PaymentRefused, PaymentRequest, ShipmentRequest, ShipmentScheduled,
    StockRequest, Topics,
};

/// The CloudEvents source of the order service.
pub const SOURCE: &str = "/services/orders";

/// The saga's dispatcher: order commands run here, the others go through the bus.
pub struct OrderDispatcher {
    orders: Repository<Order, PgEventStore>,
    bus: BusDispatcher<ShopCommand, ShopRejection>,
}

impl OrderDispatcher {
    /// Orders on `store`; the other commands sent with `producer` to `topics`.
    pub fn new(store: &PgEventStore, producer: KafkaProducer, topics: &Topics) -> Self {
        let topics_ = topics.clone();
        let bus = BusDispatcher::new(
            producer,
            SOURCE,
            topics.order_replies.as_str(),
            move |command: &ShopCommand| route(&topics_, command),
        );
        Self {
            orders: Repository::new(store.clone()),
            bus,
        }
    }
}

/// Where each remote command goes: its service's command topic, keyed by the aggregate id.
fn route(topics: &Topics, command: &ShopCommand) -> Result<Request, MapError> {
    match command {
        ShopCommand::Payment { order_id, command } => Ok(Request::new(
            order_id.as_str(),
            Outgoing::of(
                topics.payment_commands.as_str(),
                &PaymentRequest {
                    order_id: order_id.clone(),
                    command: command.clone(),
                },
            )?,
        )),
        ShopCommand::Stock { sku, command } => Ok(Request::new(
            sku.as_str(),
            Outgoing::of(
                topics.inventory_commands.as_str(),
                &StockRequest {
                    sku: sku.clone(),
                    command: command.clone(),
                },
            )?,
        )),
        ShopCommand::Shipping { order_id, command } => Ok(Request::new(
            order_id.as_str(),
            Outgoing::of(
                topics.shipping_commands.as_str(),
                &ShipmentRequest {
                    order_id: order_id.clone(),
                    command: command.clone(),
                },
            )?,
        )),
        ShopCommand::Order { .. } => Err(MapError::refused("order commands run locally")),
    }
}

#[async_trait]
impl CommandDispatcher<ShopCommand> for OrderDispatcher {
    type Rejection = ShopRejection;

    async fn dispatch(
        &self,
        command: &ShopCommand,
        context: CommandContext,
    ) -> Result<Dispatched, DispatchError<ShopRejection>> {
        match command {
            ShopCommand::Order { order_id, command } => {
                self.orders.dispatch(order_id, command, context).await
            }
            remote => self.bus.dispatch(remote, context).await,
        }
    }
}

/// Records the partners' public events the saga waits for in the order service's log.
pub struct PartnerEvents {
    store: PgEventStore,
}

impl PartnerEvents {
    /// Records in `store`.
    pub fn new(store: PgEventStore) -> Self {
        Self { store }
    }

    async fn record<E: cqrs_core::DomainEvent>(
        &self,
        incoming: &Incoming,
        category: &str,
        order_id: &str,
        event: &E,
    ) -> Result<(), HandleError> {
        let stream = StreamId::with_category(category, order_id)
            .map_err(|e| HandleError::poison(format_args!("order id {order_id:?}: {e}")))?;
        let id = Uuid::new_v5(
            &cqrs_kafka::consume::BUS_NAMESPACE,
            incoming.id().as_bytes(),
        );
        let mut metadata = Metadata::new(EventId::from_uuid(id)).with_causation_id(incoming.id());
        if let Some(correlation) = incoming.event().correlation_id {
            metadata = metadata.with_correlation_id(correlation);
        }
        // The partner's trace goes on with the saga step this event sets off.
        if let Some(traceparent) = &incoming.event().traceparent {
            metadata = metadata.with_header(cqrs_core::telemetry::TRACEPARENT, traceparent);
        }
        let event = NewEvent::from_domain(event, metadata)?;
        self.store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await?;
        Ok(())
    }
}

#[async_trait]
impl IntegrationHandler for PartnerEvents {
    fn event_types(&self) -> Vec<&'static str> {
        vec![
            PaymentAuthorized::TYPE,
            PaymentRefused::TYPE,
            ShipmentScheduled::TYPE,
        ]
    }

    async fn handle(&self, incoming: &Incoming) -> Result<(), HandleError> {
        match incoming.event_type() {
            PaymentAuthorized::TYPE => {
                let e: PaymentAuthorized = incoming.data()?;
                let event = PaymentEvent::PaymentAuthorized {
                    order_id: e.order_id.clone(),
                    amount: e.amount,
                };
                self.record(incoming, Payment::TYPE, &e.order_id, &event)
                    .await
            }
            PaymentRefused::TYPE => {
                let e: PaymentRefused = incoming.data()?;
                let event = PaymentEvent::PaymentRefused {
                    order_id: e.order_id.clone(),
                    amount: e.amount,
                    reason: e.reason,
                };
                self.record(incoming, Payment::TYPE, &e.order_id, &event)
                    .await
            }
            _ => {
                let e: ShipmentScheduled = incoming.data()?;
                let event = ShipmentEvent::ShipmentScheduled {
                    order_id: e.order_id.clone(),
                    carrier: e.carrier,
                };
                self.record(incoming, Shipment::TYPE, &e.order_id, &event)
                    .await
            }
        }
    }
}

/// The running order service.
#[derive(Debug)]
pub struct OrderService {
    /// The orchestrated saga.
    pub saga: ProjectionHandle,
    /// Records the outcomes of the saga's remote commands.
    pub replies: ConsumerHandle,
    /// Records the partners' public events.
    pub partners: ConsumerHandle,
}

impl OrderService {
    /// Starts it on `store`, the saga with `options`.
    pub fn start(
        store: &PgEventStore,
        config: &KafkaConfig,
        topics: &Topics,
        options: ProcessOptions,
    ) -> Result<Self, BoxError> {
        let dispatcher = OrderDispatcher::new(store, KafkaProducer::new(config)?, topics);
        let saga = ProcessManagerProjection::<OrderFulfilment, _, _>::new(
            store.clone(),
            dispatcher,
            options,
        )
        .runner()
        .spawn();
        let replies = IntegrationConsumer::new(
            config,
            &format!("orders.{}", topics.order_replies),
            &[&topics.order_replies],
            ReplyInbox::new(store.clone()),
        )
        .with_dead_letters(Arc::new(store.clone()))
        .spawn()?;
        let partners = IntegrationConsumer::new(
            config,
            &format!("orders.{}", topics.payment_events),
            &[&topics.payment_events, &topics.shipping_events],
            PartnerEvents::new(store.clone()),
        )
        .with_dead_letters(Arc::new(store.clone()))
        .spawn()?;
        Ok(Self {
            saga,
            replies,
            partners,
        })
    }

    /// Stops it.
    pub async fn shutdown(self) {
        self.saga.shutdown().await;
        self.replies.shutdown().await;
        self.partners.shutdown().await;
    }
}
