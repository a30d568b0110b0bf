//! The payment service: runs payment commands from the bus on its own schema, and publishes
//! `PaymentAuthorized` / `PaymentRefused` from its log.

use std::sync::Arc;

use cqrs_core::projection::ProjectionHandle;
use cqrs_core::{BoxError, Repository};
use cqrs_kafka::consume::{ConsumerHandle, IntegrationConsumer};
use cqrs_kafka::remote::CommandConsumer;
use cqrs_kafka::{
    DomainMapper, KafkaConfig, KafkaProducer, KafkaPublisher, Outgoing, PublisherOptions,
};
use cqrs_postgres::PgEventStore;
use quickstart::payment::{CardLimits, Payment, PaymentEvent};
use quickstart::saga::commands::ShopRejection;

use crate::commands::Commands;
use crate::contracts::{PaymentAuthorized, PaymentRefused, PaymentRequest, Topics};

/// The CloudEvents source of the payment service.
pub const SOURCE: &str = "/services/payments";

/// The running payment service.
#[derive(Debug)]
pub struct PaymentService {
    /// Runs the commands sent to payments.
    pub commands: ConsumerHandle,
    /// Publishes the payment events the order saga waits for.
    pub publisher: ProjectionHandle,
}

impl PaymentService {
    /// Starts it on `store`, asking `cards` about payments.
    pub fn start(
        store: &PgEventStore,
        config: &KafkaConfig,
        topics: &Topics,
        cards: CardLimits,
    ) -> Result<Self, BoxError> {
        let producer = KafkaProducer::new(config)?;
        let handler = Commands::<Payment, PaymentRequest> {
            repository: Repository::with_services(store.clone(), cards),
            split: |r| (r.order_id, r.command),
            reject: ShopRejection::Payment,
        };
        let commands = IntegrationConsumer::new(
            config,
            &format!("payments.{}", topics.payment_commands),
            &[&topics.payment_commands],
            CommandConsumer::new(handler, producer, SOURCE),
        )
        .with_dead_letters(Arc::new(store.clone()))
        .spawn()?;
        let topic = topics.payment_events.clone();
        let mapper = DomainMapper::new(
            ["PaymentAuthorized", "PaymentRefused"],
            move |event: &PaymentEvent, _: &cqrs_core::RecordedEvent| match event {
                PaymentEvent::PaymentAuthorized { order_id, amount } => Outgoing::of(
                    topic.as_str(),
                    &PaymentAuthorized {
                        order_id: order_id.clone(),
                        amount: *amount,
                    },
                )
                .map(Some),
                PaymentEvent::PaymentRefused {
                    order_id,
                    amount,
                    reason,
                } => Outgoing::of(
                    topic.as_str(),
                    &PaymentRefused {
                        order_id: order_id.clone(),
                        amount: *amount,
                        reason: reason.clone(),
                    },
                )
                .map(Some),
                _ => Ok(None),
            },
        );
        let publisher =
            KafkaPublisher::new("payments", mapper, config, PublisherOptions::new(SOURCE))?
                .runner(store)
                .spawn();
        Ok(Self {
            commands,
            publisher,
        })
    }

    /// Stops it.
    pub async fn shutdown(self) {
        self.commands.shutdown().await;
        self.publisher.shutdown().await;
    }
}
