//! [`Outgoing`]: one message a mapper asks the publisher to send.

use crate::IntegrationEvent;

use super::MapError;

/// One message to publish: the topic, the contract's type (and schema), and its JSON body.
///
/// The publisher adds the rest: the key (the stream id) and the CloudEvents headers taken
/// from the recorded event (id, subject, time, sequence, correlation, causation,
/// `traceparent`).
///
/// ```
/// use cqrs_kafka::{IntegrationEvent, Outgoing};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct OrderPlaced {
///     order_id: String,
/// }
/// impl IntegrationEvent for OrderPlaced {
///     const TYPE: &'static str = "shop.order.placed.v1";
/// }
///
/// let out = Outgoing::of("orders", &OrderPlaced { order_id: "o-1".into() })?;
/// assert_eq!(out.topic(), "orders");
/// assert_eq!(out.event_type(), "shop.order.placed.v1");
/// assert_eq!(out.data(), br#"{"order_id":"o-1"}"#);
/// # Ok::<(), cqrs_kafka::MapError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    topic: String,
    event_type: &'static str,
    schema: Option<&'static str>,
    data: Vec<u8>,
}

impl Outgoing {
    /// The contract `event`, serialized to JSON, for `topic`.
    ///
    /// # Errors
    ///
    /// [`MapError::Encode`] when `event` does not serialize (a map with non-string keys,
    /// a failing `Serialize` impl).
    pub fn of<E: IntegrationEvent>(topic: impl Into<String>, event: &E) -> Result<Self, MapError> {
        let data = serde_json::to_vec(event).map_err(|source| MapError::Encode {
            event_type: E::TYPE,
            source,
        })?;
        Ok(Self {
            topic: topic.into(),
            event_type: E::TYPE,
            schema: E::SCHEMA,
            data,
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The contract's type (`ce_type`).
    pub fn event_type(&self) -> &'static str {
        self.event_type
    }

    /// The contract's schema URI (`ce_dataschema`), if any.
    pub fn schema(&self) -> Option<&'static str> {
        self.schema
    }

    /// The JSON body.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The topic and the body, taken out.
    pub(crate) fn into_parts(self) -> (String, Vec<u8>) {
        (self.topic, self.data)
    }
}
