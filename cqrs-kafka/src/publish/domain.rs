//! [`DomainMapper`]: an [`IntegrationMapper`] over the service's own event enum.

use std::fmt;
use std::marker::PhantomData;

use cqrs_core::{DomainEvent, RecordedEvent, Upcasters};

use super::{IntegrationMapper, MapError, Outgoing};

/// An [`IntegrationMapper`] that decodes each event into the domain enum `D` (after the
/// [`Upcasters`], so old payloads decode as today's) and hands it to a closure that picks
/// the integration event.
///
/// ```
/// use cqrs_core::{DomainEvent, RecordedEvent};
/// use cqrs_kafka::{DomainMapper, IntegrationEvent, IntegrationMapper, Outgoing};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, DomainEvent)]
/// enum OrderEvent {
///     Placed { total_cents: u64 },
///     NoteAdded { text: String }, // private: never published
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct OrderPlaced {
///     order_id: String,
///     total_cents: u64,
/// }
/// impl IntegrationEvent for OrderPlaced {
///     const TYPE: &'static str = "shop.order.placed.v1";
/// }
///
/// let mapper = DomainMapper::new(["Placed"], |event: &OrderEvent, recorded: &RecordedEvent| {
///     match event {
///         OrderEvent::Placed { total_cents } => {
///             let placed = OrderPlaced {
///                 order_id: recorded.stream_id.instance().to_owned(),
///                 total_cents: *total_cents,
///             };
///             Outgoing::of("orders", &placed).map(Some)
///         }
///         OrderEvent::NoteAdded { .. } => Ok(None),
///     }
/// });
/// assert_eq!(mapper.event_types(), ["Placed"]);
/// ```
pub struct DomainMapper<D, F> {
    event_types: Vec<&'static str>,
    upcasters: Upcasters,
    map: F,
    domain: PhantomData<fn() -> D>,
}

impl<D, F> DomainMapper<D, F>
where
    D: DomainEvent,
    F: Fn(&D, &RecordedEvent) -> Result<Option<Outgoing>, MapError> + Send + Sync + 'static,
{
    /// A mapper of the domain event types `event_types` (the publisher reads only those),
    /// each decoded into `D` and given to `map`.
    pub fn new(event_types: impl IntoIterator<Item = &'static str>, map: F) -> Self {
        Self {
            event_types: event_types.into_iter().collect(),
            upcasters: Upcasters::new(),
            map,
            domain: PhantomData,
        }
    }

    /// Upcasts each payload with `upcasters` before decoding it (the same ones the service's
    /// repository uses). Payloads the runner already upcast go through unchanged.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }
}

impl<D, F> IntegrationMapper for DomainMapper<D, F>
where
    D: DomainEvent,
    F: Fn(&D, &RecordedEvent) -> Result<Option<Outgoing>, MapError> + Send + Sync + 'static,
{
    fn event_types(&self) -> Vec<&'static str> {
        self.event_types.clone()
    }

    fn map(&self, event: &RecordedEvent) -> Result<Option<Outgoing>, MapError> {
        let decoded = if self.upcasters.is_empty() {
            event.decode::<D>()
        } else {
            self.upcasters
                .upcast(event.clone())
                .and_then(RecordedEvent::into_domain::<D>)
        };
        (self.map)(&decoded.map_err(MapError::Decode)?, event)
    }
}

impl<D, F> fmt::Debug for DomainMapper<D, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainMapper")
            .field("event_types", &self.event_types)
            .field("upcasters", &self.upcasters)
            .finish_non_exhaustive()
    }
}
