//! The message for one recorded event: key = stream id, body = the contract's JSON, and the
//! CloudEvents headers written by [`CloudEvent::write`].

use cqrs_core::telemetry::TRACEPARENT;
use cqrs_core::RecordedEvent;

use crate::{CloudEvent, Record};

use super::Outgoing;

/// The record that publishes `event` as `out`, from service `source`.
pub(crate) fn record(source: &str, event: &RecordedEvent, out: Outgoing) -> Record {
    let stream = event.stream_id.as_str();
    let mut attributes =
        CloudEvent::new(event.metadata.event_id.as_uuid(), source, out.event_type());
    attributes.subject = Some(stream.to_owned());
    attributes.time = Some(event.recorded_at);
    attributes.dataschema = out.schema().map(str::to_owned);
    attributes.sequence = Some(event.version.get());
    attributes.correlation_id = event.metadata.correlation_id;
    attributes.causation_id = event.metadata.causation_id;
    attributes.traceparent = event.metadata.header(TRACEPARENT).map(str::to_owned);
    let (topic, data) = out.into_parts();
    attributes.write(Record::new(topic, stream, data))
}

#[cfg(test)]
mod tests {
    use cqrs_core::{Metadata, NewEvent, Position, StreamId, Version};
    use serde::{Deserialize, Serialize};
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::cloudevents;
    use crate::IntegrationEvent;

    fn at(time: &str) -> OffsetDateTime {
        OffsetDateTime::parse(time, &Rfc3339).expect("an RFC 3339 time")
    }

    #[derive(Serialize, Deserialize)]
    struct Shipped {
        order: String,
    }
    impl IntegrationEvent for Shipped {
        const TYPE: &'static str = "shop.order.shipped.v1";
        const SCHEMA: Option<&'static str> = Some("https://schemas.example/shipped.v1.json");
    }

    #[test]
    fn every_attribute_comes_from_the_recorded_event_and_the_contract() {
        let correlation = Uuid::now_v7();
        let causation = Uuid::now_v7();
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let metadata = Metadata::default()
            .with_correlation_id(correlation)
            .with_causation_id(causation)
            .with_header(TRACEPARENT, parent);
        let event_id = metadata.event_id.as_uuid();
        let event = RecordedEvent::new(
            StreamId::new("order-7").expect("stream id"),
            Version::new(3),
            Position::from_parts(1, 9),
            NewEvent::new("Shipped", 1, serde_json::json!({})).with_metadata(metadata),
            at("2026-12-04T10:11:12.5Z"),
        );
        let out = Outgoing::of("orders", &Shipped { order: "7".into() }).expect("encodes");
        let record = record("/services/orders", &event, out);

        assert_eq!(record.topic(), "orders");
        assert_eq!(record.key(), b"order-7");
        assert_eq!(record.payload(), br#"{"order":"7"}"#);
        let header = |name| {
            record
                .header(name)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let expected = [
            (cloudevents::SPECVERSION, "1.0".to_owned()),
            (cloudevents::ID, event_id.to_string()),
            (cloudevents::SOURCE, "/services/orders".to_owned()),
            (cloudevents::TYPE, "shop.order.shipped.v1".to_owned()),
            (cloudevents::SUBJECT, "order-7".to_owned()),
            (cloudevents::TIME, "2026-12-04T10:11:12.5Z".to_owned()),
            (
                cloudevents::DATASCHEMA,
                "https://schemas.example/shipped.v1.json".to_owned(),
            ),
            (cloudevents::SEQUENCE, "3".to_owned()),
            (cloudevents::CORRELATION_ID, correlation.to_string()),
            (cloudevents::CAUSATION_ID, causation.to_string()),
            (cloudevents::TRACEPARENT, parent.to_owned()),
            (cloudevents::CONTENT_TYPE, "application/json".to_owned()),
        ];
        for (name, value) in &expected {
            assert_eq!(header(name).as_deref(), Some(value.as_str()), "{name}");
        }
        assert_eq!(
            record.headers().len(),
            expected.len(),
            "{:?}",
            record.headers()
        );
    }

    #[test]
    fn absent_metadata_leaves_its_headers_out() {
        let event = RecordedEvent::new(
            StreamId::new("order-8").expect("stream id"),
            Version::new(1),
            Position::from_parts(1, 1),
            NewEvent::new("Shipped", 1, serde_json::json!({})),
            at("2026-12-04T10:11:12Z"),
        );
        let out = Outgoing::of("orders", &Shipped { order: "8".into() }).expect("encodes");
        let record = record("/s", &event, out);
        for name in [
            cloudevents::CORRELATION_ID,
            cloudevents::CAUSATION_ID,
            cloudevents::TRACEPARENT,
        ] {
            assert_eq!(record.header(name), None, "{name}");
        }
    }
}
