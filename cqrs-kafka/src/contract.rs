//! [`IntegrationEvent`]: a public, versioned contract other services may rely on.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A public, versioned integration event: what other services may rely on. Domain events stay
/// private to their service; a publisher maps the ones it chooses to these contracts.
///
/// ```
/// use cqrs_kafka::IntegrationEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct OrderPlaced {
///     order_id: String,
///     total_cents: u64,
/// }
///
/// impl IntegrationEvent for OrderPlaced {
///     const TYPE: &'static str = "shop.order.placed.v1";
/// }
/// ```
pub trait IntegrationEvent: Serialize + DeserializeOwned + Send + Sync {
    /// The CloudEvents `type`, versioned (`shop.order.placed.v1`). A breaking change is a new
    /// type (`v2`), published beside the old one until every subscriber moved.
    const TYPE: &'static str;
    /// The contract's schema URI (`ce_dataschema`), if it publishes one.
    const SCHEMA: Option<&'static str> = None;
}
