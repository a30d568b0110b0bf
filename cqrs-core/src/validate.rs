//! Checks every store runs on an append before it writes anything.

use crate::texts::{Texts, TextsBuilder};
use crate::{CommandId, Error, NewEvent, Result};

/// The default limit on one event's JSON payload: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// The longest event type name accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 200;

/// What [`check_batch`] learned about a valid batch.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchCheck {
    /// The command id all events share, if any.
    pub command_id: Option<CommandId>,
    /// Each event's payload serialized as JSON, in order (stores that send text reuse it).
    pub payloads: Texts,
}

/// Checks a batch before an append: at least one event, valid type names, payloads within
/// `max_payload_bytes` and free of NUL characters, one command id at most. Returns the serialized payloads.
pub fn check_batch(events: &[NewEvent], max_payload_bytes: usize) -> Result<BatchCheck> {
    let first = events.first().ok_or(Error::EmptyAppend)?;
    let command_id = first.metadata.command_id;
    let mut payloads = TextsBuilder::with_capacity(events.len(), events.len() * 32);
    for event in events {
        check_event_type(&event.event_type)?;
        if event.metadata.command_id != command_id {
            return Err(Error::MixedCommandIds);
        }
        // Text and jsonb columns cannot hold NUL.
        if holds_nul(&event.payload)
            || event
                .metadata
                .headers
                .iter()
                .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(Error::NulInPayload {
                event_type: event.event_type.clone(),
            });
        }
        let size = payloads
            .push_json(&event.payload)
            .map_err(|source| Error::Encode {
                event_type: event.event_type.clone(),
                source,
            })?;
        if size > max_payload_bytes {
            return Err(Error::PayloadTooLarge {
                event_type: event.event_type.clone(),
                size,
                limit: max_payload_bytes,
            });
        }
    }
    let payloads = payloads.finish().map_err(|source| Error::Encode {
        event_type: first.event_type.clone(),
        source,
    })?;
    Ok(BatchCheck {
        command_id,
        payloads,
    })
}

/// Checks an event type name: non-empty, at most [`MAX_EVENT_TYPE_LEN`] bytes, no control
/// characters.
pub fn check_event_type(event_type: &str) -> Result<()> {
    // Most names are ASCII, whose control characters are single bytes: checked bytewise.
    let control = if event_type.is_ascii() {
        event_type.bytes().any(|b| b.is_ascii_control())
    } else {
        event_type.chars().any(char::is_control)
    };
    if event_type.is_empty() || event_type.len() > MAX_EVENT_TYPE_LEN || control {
        return Err(Error::InvalidEventType(event_type.to_owned()));
    }
    Ok(())
}

fn holds_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_types_with_a_control_character_are_refused_whether_ascii_or_not() {
        for bad in ["del\u{7f}", "tab\there", "nul\0", "nel\u{85}", "csi\u{9b}x"] {
            assert!(
                matches!(check_event_type(bad), Err(Error::InvalidEventType(_))),
                "{bad:?}"
            );
        }
        for good in [
            "Deposited",
            "Überweisung",
            "注文済み",
            "order.placed-v2 (beta)",
        ] {
            assert!(check_event_type(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn payloads_come_back_as_the_compact_json_of_each_event_in_order() {
        let events = [
            NewEvent::new("A", 1, json!({"b": [1, "x"], "a": null})),
            NewEvent::new("B", 1, json!("héllo")),
        ];
        let check = check_batch(&events, 1 << 20).expect("valid");
        let expected: Vec<String> = events.iter().map(|e| e.payload.to_string()).collect();
        assert_eq!(check.payloads.iter().collect::<Vec<_>>(), expected);
        assert_eq!(
            check.payloads.bytes(),
            expected.iter().map(String::len).sum::<usize>()
        );
    }

    #[test]
    fn a_payload_over_the_limit_is_refused_with_its_size() {
        let events = [NewEvent::new("A", 1, json!({"text": "x".repeat(20)}))];
        let size = events[0].payload.to_string().len();
        let refused = check_batch(&events, size - 1).expect_err("too large");
        assert!(
            matches!(refused, Error::PayloadTooLarge { size: s, limit, .. } if s == size && limit == size - 1),
            "{refused:?}"
        );
        assert!(check_batch(&events, size).is_ok());
    }
}
