//! Upcasting a batch in feed order while each key keeps its order: an event whose key is held
//! back (parked before, or failed to upcast earlier in the batch) is held back too, so no
//! document gets an event without the one before it.

use std::collections::HashSet;

use crate::{RecordedEvent, Upcasters};

/// A batch upcast by [`upcast_in_order`]: what can be applied, and what cannot (with why),
/// each in feed order.
#[derive(Debug)]
#[non_exhaustive]
pub struct Upcast {
    /// Events brought to their current schema.
    pub ready: Vec<RecordedEvent>,
    /// Events that failed to upcast, or whose key is held back, and why.
    pub rejected: Vec<(RecordedEvent, String)>,
}

/// Upcasts `events` in order, as the projection runner does before `apply`, so each key keeps
/// its order. An event whose `key` (read from it upcast) is in `held` (its key has a parked
/// event), or whose key failed to upcast earlier in the batch, is rejected as held back; an
/// event that fails to upcast holds back its key as read from it stored. With `stop_at_failure`,
/// nothing after the first failure is looked at (whatever its key): the caller stops just
/// before it. For sinks that drive their own loop over the feed.
///
/// ```
/// use std::collections::HashSet;
/// use cqrs_core::backend::upcast_in_order;
/// use cqrs_core::{NewEvent, Position, RecordedEvent, StreamId, Upcasters, Version};
/// use serde_json::json;
///
/// let upcasters = Upcasters::new().with_fn("Deposited", 1, |payload| {
///     let euros = payload["euros"].as_i64().ok_or("euros missing")?;
///     Ok(json!({ "cents": euros * 100 }))
/// });
/// let event = |n: u64, payload| {
///     let new = NewEvent::new("Deposited", 1, payload);
///     let stream = StreamId::new("account-1").unwrap();
///     RecordedEvent::new(stream, Version::new(n), Position::from_parts(n, 0), new, time::OffsetDateTime::UNIX_EPOCH)
/// };
/// let events = [event(1, json!({})), event(2, json!({ "euros": 1 }))];
/// let key = |e: &RecordedEvent| Some(e.stream_id.to_string());
/// let upcast = upcast_in_order(&upcasters, events, key, &HashSet::new(), false);
/// // The first fails; the second, of the same account, is held back behind it.
/// assert!(upcast.ready.is_empty());
/// assert_eq!(upcast.rejected.len(), 2);
/// ```
pub fn upcast_in_order(
    upcasters: &Upcasters,
    events: impl IntoIterator<Item = RecordedEvent>,
    key: impl Fn(&RecordedEvent) -> Option<String>,
    held: &HashSet<String>,
    stop_at_failure: bool,
) -> Upcast {
    let events = events.into_iter();
    let mut ready = Vec::with_capacity(events.size_hint().0);
    let mut rejected = Vec::new();
    // Keys whose event failed to upcast in this batch.
    let mut failed: HashSet<String> = HashSet::new();
    for event in events {
        let upcast = if upcasters.is_empty() {
            // The common case: no copy of the payload just to keep it for a dead letter.
            Ok(event)
        } else {
            upcasters
                .upcast(event.clone())
                .map_err(|error| (event, error.to_string()))
        };
        match upcast {
            Ok(event) => {
                // The key is read from the event as the projection sees it (an upcaster may
                // move what it is read from). Keys only matter once something is held back;
                // most batches skip computing them.
                if !(held.is_empty() && failed.is_empty())
                    && key(&event).is_some_and(|k| held.contains(&k) || failed.contains(&k))
                {
                    rejected.push((event, "an earlier event of this key is parked".to_owned()));
                } else {
                    ready.push(event);
                }
            }
            Err((event, error)) => {
                // Its key as stored: the best there is for an event that cannot be upcast.
                failed.extend(key(&event));
                rejected.push((event, error));
                if stop_at_failure {
                    break;
                }
            }
        }
    }
    Upcast { ready, rejected }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, Position, StreamId, Version};
    use serde_json::json;

    fn event(n: u64, schema_version: u32, payload: serde_json::Value) -> RecordedEvent {
        let new = NewEvent::new("Noted", schema_version, payload);
        let stream = StreamId::new(format!("note-{n}")).expect("a stream id");
        let at = Position::from_parts(n, 0);
        RecordedEvent::new(
            stream,
            Version::new(1),
            at,
            new,
            time::OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn an_events_key_is_read_from_it_upcast_so_an_older_schema_is_held_back_too() {
        // Schema 1 named the document `d`; the current schema, which the key reads, `doc`.
        let upcasters = Upcasters::new().with_fn("Noted", 1, |payload| {
            Ok(json!({ "doc": payload["d"].clone() }))
        });
        let key = |e: &RecordedEvent| e.payload["doc"].as_str().map(str::to_owned);
        let held = HashSet::from(["x".to_owned()]);
        let events = [
            event(1, 1, json!({ "d": "x" })),
            event(2, 2, json!({ "doc": "y" })),
        ];

        let upcast = upcast_in_order(&upcasters, events, key, &held, false);

        let ready: Vec<_> = upcast.ready.iter().map(|e| e.payload.clone()).collect();
        assert_eq!(ready, [json!({ "doc": "y" })]);
        assert_eq!(upcast.rejected.len(), 1, "x's older event is held back");
        assert_eq!(upcast.rejected[0].0.position, Position::from_parts(1, 0));
    }
}
