//! Checks every store runs on an append before it writes anything.

use crate::texts::{Texts, TextsBuilder};
use crate::{CommandId, Error, EventId, NewEvent, Result};

/// The default limit on one event's JSON payload: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// The default limit on one append as a whole: 16 MiB of JSON, every event's payload and
/// metadata (headers included).
pub const DEFAULT_MAX_APPEND_BYTES: usize = 16 << 20;

/// The deepest nesting of arrays and objects accepted in a payload: serde_json, which every
/// reader decodes payloads with, refuses a 128th level.
pub const MAX_PAYLOAD_DEPTH: usize = 127;

/// The longest event type name accepted, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 200;

/// The longest time to live a lease may be taken for: a year. Every store refuses a longer
/// one ([`check_lease_ttl`]), `Duration::MAX` included: no store keeps a deadline that far.
pub const MAX_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 60 * 60);

/// The shortest time to live a lease may be taken for: 100 ms. Every store refuses a shorter
/// one ([`check_lease_ttl`]): a lease is renewed every third of its time to live, so a
/// shorter one expires before its renewal's round trip ends, and its holder takes it again
/// and again, writing each time, and never leads.
pub const MIN_LEASE_TTL: std::time::Duration = std::time::Duration::from_millis(100);

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
/// `max_payload_bytes`, free of NUL characters and nested at most [`MAX_PAYLOAD_DEPTH`]
/// levels, one command id at most, no event id twice. Returns the serialized payloads.
pub fn check_batch(events: &[NewEvent], max_payload_bytes: usize) -> Result<BatchCheck> {
    let first = events.first().ok_or(Error::EmptyAppend)?;
    let command_id = first.metadata.command_id;
    if let Some(event_id) = repeated_event_id(events) {
        return Err(Error::EventIdRepeated { event_id });
    }
    let mut payloads = TextsBuilder::with_capacity(events.len(), events.len() * 32);
    for event in events {
        check_event_type(&event.event_type)?;
        if event.metadata.command_id != command_id {
            return Err(Error::MixedCommandIds);
        }
        // Text and jsonb columns cannot hold NUL.
        let flaw = flaw(&event.payload, 0).or_else(|| {
            let nul = |(k, v): (&String, &String)| k.contains('\0') || v.contains('\0');
            event.metadata.headers.iter().any(nul).then_some(Flaw::Nul)
        });
        if let Some(flaw) = flaw {
            return Err(flaw.error(&event.event_type));
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

/// An event id `events` name twice, if any. Most appends hold one event, or a few: those are
/// compared pairwise; a large batch's ids are sorted (no hashing on the append's path).
fn repeated_event_id(events: &[NewEvent]) -> Option<EventId> {
    const PAIRWISE: usize = 16;
    if events.len() <= PAIRWISE {
        return (events.iter().enumerate()).find_map(|(i, event)| {
            let id = event.metadata.event_id;
            events[i + 1..]
                .iter()
                .any(|later| later.metadata.event_id == id)
                .then_some(id)
        });
    }
    let mut ids: Vec<EventId> = events.iter().map(|e| e.metadata.event_id).collect();
    ids.sort_unstable();
    ids.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
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

/// Checks a snapshot before a store saves it: its state must be storable as JSON text and
/// readable back (no NUL in a string or key, nesting at most [`MAX_PAYLOAD_DEPTH`] deep), or
/// every later load of the stream, which reads the snapshot first, would fail. A store calls
/// it at the start of `save_snapshot`; [`Error::SnapshotUnreadable`] when it does not pass.
///
/// ```
/// use cqrs_core::backend::check_snapshot;
/// use cqrs_core::{ErrorKind, Snapshot, StreamId, Version};
/// use serde_json::json;
///
/// let stream = StreamId::new("order-1")?;
/// let fine = Snapshot::new(stream.clone(), Version::new(3), 1, json!({ "total": 3 }));
/// assert!(check_snapshot(&fine).is_ok());
/// let nul = Snapshot::new(stream, Version::new(3), 1, json!({ "name": "a\u{0}b" }));
/// assert_eq!(check_snapshot(&nul).map_err(|e| e.kind()), Err(ErrorKind::InvalidInput));
/// # Ok::<(), cqrs_core::Error>(())
/// ```
pub fn check_snapshot(snapshot: &crate::Snapshot) -> Result<()> {
    match flaw(&snapshot.state, 0) {
        None => Ok(()),
        Some(flaw) => Err(Error::SnapshotUnreadable {
            stream_id: snapshot.stream_id.clone(),
            reason: match flaw {
                Flaw::Nul => "holds a NUL character",
                Flaw::TooDeep => "is nested deeper than the 127 levels a reader decodes",
            },
        }),
    }
}

/// Why a payload cannot be stored, or read back once stored.
enum Flaw {
    /// A NUL character, in a string or a key.
    Nul,
    /// Nesting deeper than [`MAX_PAYLOAD_DEPTH`].
    TooDeep,
}

impl Flaw {
    /// The error refusing an event of `event_type` for this flaw.
    fn error(self, event_type: &str) -> Error {
        let event_type = event_type.to_owned();
        match self {
            Flaw::Nul => Error::NulInPayload { event_type },
            Flaw::TooDeep => Error::PayloadTooDeep {
                event_type,
                limit: MAX_PAYLOAD_DEPTH,
            },
        }
    }
}

/// The first flaw of `value`, found at nesting `depth` (a payload's top is 0); the walk goes
/// no deeper than the limit.
fn flaw(value: &serde_json::Value, depth: usize) -> Option<Flaw> {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0').then_some(Flaw::Nul),
        Value::Array(_) | Value::Object(_) if depth >= MAX_PAYLOAD_DEPTH => Some(Flaw::TooDeep),
        Value::Array(items) => items.iter().find_map(|v| flaw(v, depth + 1)),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(Flaw::Nul)
            } else {
                flaw(v, depth + 1)
            }
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

/// Refuses a lease time to live outside [`MIN_LEASE_TTL`] to [`MAX_LEASE_TTL`] with
/// [`Error::LeaseTtlOutOfRange`] (invalid input); every
/// [`LeaseStore`](crate::projection::LeaseStore) calls it before it takes a lease.
///
/// ```
/// use cqrs_core::backend::{check_lease_ttl, MAX_LEASE_TTL, MIN_LEASE_TTL};
/// use cqrs_core::ErrorKind;
/// use std::time::Duration;
///
/// assert!(check_lease_ttl(Duration::from_secs(30)).is_ok());
/// assert!(check_lease_ttl(MIN_LEASE_TTL).is_ok());
/// assert!(check_lease_ttl(MAX_LEASE_TTL).is_ok());
/// for refused in [Duration::MAX, Duration::ZERO] {
///     assert_eq!(check_lease_ttl(refused).map_err(|e| e.kind()), Err(ErrorKind::InvalidInput));
/// }
/// ```
pub fn check_lease_ttl(ttl: std::time::Duration) -> Result<()> {
    if !(MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&ttl) {
        return Err(Error::LeaseTtlOutOfRange { ttl });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_snapshot_refusal_names_the_depth_a_reader_decodes() {
        assert_eq!(MAX_PAYLOAD_DEPTH, 127, "the refusal's text says 127");
    }

    #[test]
    fn an_event_id_named_twice_is_found_in_a_small_batch_and_in_a_large_one() {
        use crate::Metadata;
        for len in [2, 3, 16, 17, 200] {
            let mut events: Vec<NewEvent> = (0..len)
                .map(|i| NewEvent::new("E", 1, json!({ "i": i })))
                .collect();
            assert!(check_batch(&events, 1 << 20).is_ok(), "{len} distinct ids");
            let id = events[(len - 1) / 2].metadata.event_id;
            events[len - 1] = NewEvent::new("E", 1, json!({})).with_metadata(Metadata::new(id));
            assert!(
                matches!(
                    check_batch(&events, 1 << 20),
                    Err(Error::EventIdRepeated { event_id }) if event_id == id
                ),
                "{len} events, one id twice"
            );
        }
    }

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

    /// `levels` arrays, one inside the other, around a number.
    fn nested(levels: usize) -> serde_json::Value {
        (0..levels).fold(json!(1), |inner, _| json!([inner]))
    }

    #[test]
    fn a_payload_nested_deeper_than_a_reader_decodes_is_refused() {
        let readable = [NewEvent::new("A", 1, nested(MAX_PAYLOAD_DEPTH))];
        let check = check_batch(&readable, 1 << 20).expect("as deep as a reader decodes");
        let text = check.payloads.iter().next().expect("one payload");
        assert!(
            serde_json::from_str::<serde_json::Value>(text).is_ok(),
            "serde_json reads it back"
        );

        let events = [NewEvent::new("A", 1, nested(MAX_PAYLOAD_DEPTH + 1))];
        let text = events[0].payload.to_string();
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_err(),
            "serde_json would not read it back"
        );
        let refused = check_batch(&events, 1 << 20).expect_err("too deep");
        assert!(
            matches!(
                refused,
                Error::PayloadTooDeep {
                    limit: MAX_PAYLOAD_DEPTH,
                    ..
                }
            ),
            "{refused:?}"
        );
        assert_eq!(refused.kind(), crate::ErrorKind::InvalidInput);
    }
}
