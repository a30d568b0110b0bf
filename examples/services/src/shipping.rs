//! The shipping service: runs shipment commands from the bus on its own schema, runs the quick
//! start's carrier on its own log, and publishes `ShipmentScheduled`.

use std::sync::Arc;

use cqrs_core::projection::ProjectionHandle;
use cqrs_core::{BoxError, Repository};
use cqrs_kafka::consume::{ConsumerHandle, IntegrationConsumer};
use cqrs_kafka::remote::CommandConsumer;
use cqrs_kafka::{
    DomainMapper, KafkaConfig, KafkaProducer, KafkaPublisher, Outgoing, PublisherOptions,
};
use cqrs_postgres::PgEventStore;
use quickstart::carrier::{Answers, Carrier};
use quickstart::saga::commands::ShopRejection;
use quickstart::shipping::{Shipment, ShipmentEvent};

use crate::commands::Commands;
use crate::contracts::{ShipmentRequest, ShipmentScheduled, Topics};

/// The CloudEvents source of the shipping service.
pub const SOURCE: &str = "/services/shipping";

/// The running shipping service.
#[derive(Debug)]
pub struct ShippingService {
    /// Runs the commands sent to shipments.
    pub commands: ConsumerHandle,
    /// The carrier, answering shipment requests.
    pub carrier: ProjectionHandle,
    /// Publishes the shipment events the order saga waits for.
    pub publisher: ProjectionHandle,
}

impl ShippingService {
    /// Starts it on `store`, its carrier answering as `answers` says.
    pub fn start(
        store: &PgEventStore,
        config: &KafkaConfig,
        topics: &Topics,
        answers: Answers,
    ) -> Result<Self, BoxError> {
        let handler = Commands::<Shipment, ShipmentRequest> {
            repository: Repository::new(store.clone()),
            split: |r| (r.order_id, r.command),
            reject: ShopRejection::Shipping,
        };
        let commands = IntegrationConsumer::new(
            config,
            &format!("shipping.{}", topics.shipping_commands),
            &[&topics.shipping_commands],
            CommandConsumer::new(handler, KafkaProducer::new(config)?, SOURCE),
        )
        .with_dead_letters(Arc::new(store.clone()))
        .spawn()?;
        let carrier = Carrier::new(store.clone(), answers).runner().spawn();
        let topic = topics.shipping_events.clone();
        let mapper = DomainMapper::new(
            ["ShipmentScheduled"],
            move |event: &ShipmentEvent, _: &cqrs_core::RecordedEvent| match event {
                ShipmentEvent::ShipmentScheduled { order_id, carrier } => Outgoing::of(
                    topic.as_str(),
                    &ShipmentScheduled {
                        order_id: order_id.clone(),
                        carrier: carrier.clone(),
                    },
                )
                .map(Some),
                _ => Ok(None),
            },
        );
        let publisher =
            KafkaPublisher::new("shipping", mapper, config, PublisherOptions::new(SOURCE))?
                .runner(store)
                .spawn();
        Ok(Self {
            commands,
            carrier,
            publisher,
        })
    }

    /// Stops it.
    pub async fn shutdown(self) {
        self.commands.shutdown().await;
        self.carrier.shutdown().await;
        self.publisher.shutdown().await;
    }
}
