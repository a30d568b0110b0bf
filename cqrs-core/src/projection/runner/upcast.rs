//! Upcasting a batch in feed order while each key keeps its order: an event whose key is held
//! back (parked before, or failed to upcast earlier in the batch) is held back too, so no
//! document gets an event without the one before it.

use std::collections::HashSet;

use crate::{RecordedEvent, Upcasters};

/// A batch upcast: what can be applied, and what cannot (with why), each in feed order.
pub(crate) struct Upcast {
    /// Events brought to their current schema.
    pub(crate) ready: Vec<RecordedEvent>,
    /// Events that failed to upcast, or whose key is held back, and why.
    pub(crate) rejected: Vec<(RecordedEvent, String)>,
}

/// Upcasts `events` in order. An event whose `key` is in `held` or failed to upcast earlier
/// in the batch is rejected as held back. With `stop_at_failure`, nothing after the first
/// failure is looked at (whatever its key): the caller stops just before it.
pub(crate) fn upcast_in_order(
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
        // Keys only matter once something is held back; most batches skip computing them.
        if !(held.is_empty() && failed.is_empty())
            && key(&event).is_some_and(|k| held.contains(&k) || failed.contains(&k))
        {
            rejected.push((event, "an earlier event of this key is parked".to_owned()));
            continue;
        }
        if upcasters.is_empty() {
            // The common case: no copy of the payload just to keep it for a dead letter.
            ready.push(event);
            continue;
        }
        match upcasters.upcast(event.clone()) {
            Ok(upcast) => ready.push(upcast),
            Err(error) => {
                failed.extend(key(&event));
                rejected.push((event, error.to_string()));
                if stop_at_failure {
                    break;
                }
            }
        }
    }
    Upcast { ready, rejected }
}
