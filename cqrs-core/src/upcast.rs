//! [`Upcasters`]: turning old event payloads into current ones on read.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::error::BoxError;
use crate::{DomainEvent, Error, Payload, RecordedEvent, StreamEvent, StreamId, Version};

/// Turns the payload of one event type from one schema version into the next.
pub trait Upcaster: Send + Sync {
    /// The event type it reads.
    fn event_type(&self) -> &str;
    /// The schema version it reads; it writes `schema_version() + 1`.
    fn schema_version(&self) -> u32;
    /// The payload at the next schema version.
    fn upcast(&self, payload: Value) -> Result<Value, BoxError>;
}

struct FnUpcaster<F> {
    event_type: String,
    schema_version: u32,
    f: F,
}

impl<F> Upcaster for FnUpcaster<F>
where
    F: Fn(Value) -> Result<Value, BoxError> + Send + Sync,
{
    fn event_type(&self) -> &str {
        &self.event_type
    }
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
    fn upcast(&self, payload: Value) -> Result<Value, BoxError> {
        (self.f)(payload)
    }
}

/// A chain of upcasters keyed by (event type, schema version).
///
/// On read, an event of type `t` at schema version `v` goes through the upcaster for `(t, v)`,
/// then the one for `(t, v + 1)`, and so on until none is registered: that is the current schema.
///
/// ```
/// use cqrs_core::Upcasters;
/// use serde_json::json;
///
/// // v1 had `amount` in euros; v2 has `cents`.
/// let upcasters = Upcasters::new().with_fn("Deposited", 1, |mut payload| {
///     let euros = payload["amount"].as_u64().ok_or("amount is missing")?;
///     payload = json!({ "cents": euros * 100 });
///     Ok(payload)
/// });
/// let (version, payload) = upcasters.upcast_payload("Deposited", 1, json!({ "amount": 3 }))?;
/// assert_eq!((version, payload), (2, json!({ "cents": 300 })));
/// # Ok::<(), cqrs_core::BoxError>(())
/// ```
#[derive(Clone, Default)]
pub struct Upcasters {
    by_type: HashMap<String, HashMap<u32, Arc<dyn Upcaster>>>,
}

impl Upcasters {
    /// No upcasters: every payload is current.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an upcaster, replacing any for the same type and version.
    #[must_use]
    pub fn with(mut self, upcaster: impl Upcaster + 'static) -> Self {
        self.by_type
            .entry(upcaster.event_type().to_owned())
            .or_default()
            .insert(upcaster.schema_version(), Arc::new(upcaster));
        self
    }

    /// Adds an upcaster written as a closure.
    #[must_use]
    pub fn with_fn<F>(self, event_type: &str, schema_version: u32, f: F) -> Self
    where
        F: Fn(Value) -> Result<Value, BoxError> + Send + Sync + 'static,
    {
        self.with(FnUpcaster {
            event_type: event_type.to_owned(),
            schema_version,
            f,
        })
    }

    /// Whether no upcaster is registered.
    pub fn is_empty(&self) -> bool {
        self.by_type.is_empty()
    }

    /// Runs the chain on one payload; returns the final schema version and payload.
    pub fn upcast_payload(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: Value,
    ) -> Result<(u32, Value), BoxError> {
        self.chain(event_type, schema_version, payload)
            .map_err(|(_, error)| error)
    }

    /// Brings a recorded event's payload to the current schema. Errors name the stream, the
    /// version, the type and the schema version whose upcaster failed.
    pub fn upcast(&self, mut event: RecordedEvent) -> Result<RecordedEvent, Error> {
        if self.by_type.is_empty() {
            return Ok(event);
        }
        let payload = std::mem::take(&mut event.payload);
        let (schema_version, payload) = self.chain_at(
            &event.stream_id,
            event.version,
            &event.event_type,
            event.schema_version,
            payload,
        )?;
        event.schema_version = schema_version;
        event.payload = payload;
        Ok(event)
    }

    /// The domain event of one replayed event of `stream_id`, through the chain when one is
    /// registered for its type and schema version. A payload with no upcaster to run is
    /// decoded as it comes ([`DomainEvent::decode_json`] for JSON text); one that has is
    /// parsed, upcast, then decoded. Errors name the stream, the version and the type.
    pub fn decode<E: DomainEvent>(
        &self,
        stream_id: &StreamId,
        event: StreamEvent<'_>,
    ) -> Result<E, Error> {
        let StreamEvent {
            version,
            event_type,
            schema_version,
            payload,
            ..
        } = event;
        let upcasting =
            (self.by_type.get(event_type)).is_some_and(|steps| steps.contains_key(&schema_version));
        // A version an upcaster of this code reads is this code's to read.
        if !upcasting {
            if let Err(newer) = crate::event::not_newer::<E>(event_type, schema_version) {
                return Err(newer.at(stream_id, version));
            }
        }
        let decoded = match (payload, upcasting) {
            (Payload::Json(text), false) => E::decode_json(event_type, text),
            (Payload::Value(value), false) => E::decode(event_type, value.clone()),
            (payload, true) => {
                let parsed = match payload {
                    Payload::Json(text) => serde_json::from_str(text)
                        .map_err(|source| Error::decode(event_type, source)),
                    Payload::Value(value) => Ok(value.clone()),
                };
                parsed
                    .and_then(|old| {
                        self.chain_at(stream_id, version, event_type, schema_version, old)
                    })
                    .and_then(|(_, current)| E::decode(event_type, current))
            }
        };
        decoded.map_err(|error| error.at(stream_id, version))
    }

    /// The chain on the payload of event `version` of `stream_id`; an error names that place,
    /// the type and the schema version whose upcaster failed.
    fn chain_at(
        &self,
        stream_id: &StreamId,
        version: Version,
        event_type: &str,
        schema_version: u32,
        payload: Value,
    ) -> Result<(u32, Value), Error> {
        self.chain(event_type, schema_version, payload)
            .map_err(|(schema_version, source)| Error::Upcast {
                stream_id: stream_id.clone(),
                version,
                event_type: event_type.to_owned(),
                schema_version,
                source,
            })
    }

    /// The chain; on failure, the schema version whose upcaster failed and its error.
    fn chain(
        &self,
        event_type: &str,
        mut schema_version: u32,
        mut payload: Value,
    ) -> Result<(u32, Value), (u32, BoxError)> {
        let Some(steps) = self.by_type.get(event_type) else {
            return Ok((schema_version, payload));
        };
        while let Some(upcaster) = steps.get(&schema_version) {
            payload = upcaster
                .upcast(payload)
                .map_err(|error| (schema_version, error))?;
            schema_version += 1;
        }
        Ok((schema_version, payload))
    }
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self
            .by_type
            .iter()
            .flat_map(|(t, steps)| steps.keys().map(move |v| (t, v)))
            .collect();
        keys.sort();
        f.debug_struct("Upcasters").field("keys", &keys).finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// v1 `{ "value": n }` → v2 `{ "amount": n }` → v3 `{ "amount": n, "currency": "EUR" }`.
    fn three_schemas() -> Upcasters {
        Upcasters::new()
            .with_fn("Added", 2, |mut payload| {
                payload["currency"] = json!("EUR");
                Ok(payload)
            })
            .with_fn("Added", 1, |payload| {
                let value = payload.get("value").cloned().ok_or("no value")?;
                Ok(json!({ "amount": value }))
            })
    }

    #[test]
    fn a_chain_runs_every_step_from_the_events_schema_on() {
        let upcasters = three_schemas();
        assert_eq!(
            upcasters
                .upcast_payload("Added", 1, json!({ "value": 7 }))
                .expect("upcast"),
            (3, json!({ "amount": 7, "currency": "EUR" })),
            "two steps, registered in any order"
        );
        assert_eq!(
            upcasters
                .upcast_payload("Added", 2, json!({ "amount": 7 }))
                .expect("upcast"),
            (3, json!({ "amount": 7, "currency": "EUR" })),
            "a v2 event takes only the last step"
        );
        assert_eq!(
            upcasters
                .upcast_payload("Added", 3, json!({ "amount": 7 }))
                .expect("upcast"),
            (3, json!({ "amount": 7 })),
            "the current schema is left alone"
        );
        assert_eq!(
            upcasters
                .upcast_payload("Closed", 1, json!({}))
                .expect("upcast"),
            (1, json!({})),
            "other types are left alone"
        );
    }

    #[test]
    fn a_failing_step_is_named_by_its_schema_version() {
        let upcasters = three_schemas().with_fn("Added", 2, |_| Err("v2 is broken".into()));
        let event = RecordedEvent::new(
            crate::StreamId::new("tally-1").expect("id"),
            crate::Version::new(1),
            crate::Position::START,
            crate::NewEvent::new("Added", 1, json!({ "value": 7 })),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        match upcasters.upcast(event) {
            Err(Error::Upcast {
                schema_version,
                source,
                ..
            }) => {
                assert_eq!(
                    schema_version, 2,
                    "the first step passed, the second failed"
                );
                assert_eq!(source.to_string(), "v2 is broken");
            }
            other => panic!("expected an upcast error, got {other:?}"),
        }
    }
}
