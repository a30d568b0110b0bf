//! Checks every store runs on an append before it writes anything.

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
    pub payloads: Vec<String>,
}

/// Checks a batch before an append: at least one event, valid type names, payloads within
/// `max_payload_bytes` and free of NUL characters, one command id at most. Returns the serialized payloads.
pub fn check_batch(events: &[NewEvent], max_payload_bytes: usize) -> Result<BatchCheck> {
    let first = events.first().ok_or(Error::EmptyAppend)?;
    let command_id = first.metadata.command_id;
    let mut payloads = Vec::with_capacity(events.len());
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
        let payload = event.payload.to_string();
        if payload.len() > max_payload_bytes {
            return Err(Error::PayloadTooLarge {
                event_type: event.event_type.clone(),
                size: payload.len(),
                limit: max_payload_bytes,
            });
        }
        payloads.push(payload);
    }
    Ok(BatchCheck {
        command_id,
        payloads,
    })
}

/// Checks an event type name: non-empty, at most [`MAX_EVENT_TYPE_LEN`] bytes, no control
/// characters.
pub fn check_event_type(event_type: &str) -> Result<()> {
    if event_type.is_empty()
        || event_type.len() > MAX_EVENT_TYPE_LEN
        || event_type.chars().any(char::is_control)
    {
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
