//! The quick start's order flow as services: order, payment, inventory and shipping, each with
//! its own PostgreSQL schema (database per service), talking only through Kafka.
//!
//! - [`contracts`]: what crosses the bus: the commands each service takes, the integration
//!   events payment and shipping publish, and the topics;
//! - [`payment`], [`inventory`], [`shipping`]: each runs the commands sent to its aggregates
//!   ([`CommandConsumer`](cqrs_kafka::remote::CommandConsumer), replying with the outcome);
//!   payment and shipping publish their public events from their own log
//!   ([`KafkaPublisher`](cqrs_kafka::KafkaPublisher)); shipping runs the quick start's carrier;
//! - [`order`]: the quick start's [`OrderFulfilment`](quickstart::saga::orchestrated::OrderFulfilment),
//!   unchanged, sending order commands to its own repository and the others through a
//!   [`BusDispatcher`](cqrs_kafka::remote::BusDispatcher); replies come back through a
//!   [`ReplyInbox`](cqrs_kafka::remote::ReplyInbox), and the partners' public events are
//!   recorded in the order service's log where the saga subscribes to them;
//! - [`Services`]: all four started in one process, as `cargo run -p services` does.

mod commands;
pub mod contracts;
pub mod inventory;
pub mod order;
pub mod payment;
mod running;
pub mod shipping;

pub use running::{Services, ServicesOptions, Stores};
