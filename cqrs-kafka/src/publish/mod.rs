//! Out: the publisher. The event log is the outbox: a [`KafkaPublisher`] follows the feed on
//! the core's projection runner and sends what an [`IntegrationMapper`] makes of each event.
//!
//! How the parts fit:
//! - `mapper`: [`IntegrationMapper`] (which events, as what) and [`MapError`];
//!   `domain`: [`DomainMapper`], the mapper over the service's event enum; `outgoing`:
//!   [`Outgoing`], one message to send;
//! - `publisher`: [`KafkaPublisher`], the [`Projection`](cqrs_core::projection::Projection)
//!   the runner drives; `options`: [`PublisherOptions`];
//! - `batch`: one attempt at a batch (map, enqueue all, await all), remembering in
//!   `ack_memo` what the broker acknowledged so a retry does not send it again;
//! - `message`: the record of one event (key, body, CloudEvents headers);
//! - `transport`: the producer behind a small trait, and how a failed send is classified.

mod ack_memo;
mod batch;
mod domain;
mod mapper;
mod message;
mod options;
mod outgoing;
mod publisher;
mod transport;

#[cfg(test)]
mod tests;

pub use domain::DomainMapper;
pub use mapper::{IntegrationMapper, MapError};
pub use options::PublisherOptions;
pub use outgoing::Outgoing;
pub use publisher::KafkaPublisher;
