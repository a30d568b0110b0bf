//! [`Tally`]: a read model kept in memory by a projection: per stream, the events applied in
//! order. It is idempotent the way a real sink must be under at-least-once delivery (an event
//! at or below a stream's applied version is a redelivery, skipped and counted), and it counts
//! gaps (an event past the next version: one was skipped or reordered).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cqrs_core::projection::{Projection, ProjectionError};
use cqrs_core::RecordedEvent;

/// One applied event: its version, and the append it came from with its index there.
pub type Entry = (u64, String, u64);

#[derive(Debug, Default)]
struct State {
    streams: BTreeMap<String, Vec<Entry>>,
    redelivered: u64,
    gaps: Vec<String>,
}

/// The in-memory read model, shared by the projection and the test.
#[derive(Clone, Debug)]
pub struct Tally {
    name: String,
    state: Arc<Mutex<State>>,
}

impl Tally {
    /// An empty read model for projection `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            state: Arc::default(),
        }
    }

    /// Per stream, the events applied, in order.
    pub fn streams(&self) -> BTreeMap<String, Vec<Entry>> {
        self.state.lock().expect("the tally").streams.clone()
    }

    /// Events delivered again (and skipped), after a batch whose checkpoint did not save.
    pub fn redelivered(&self) -> u64 {
        self.state.lock().expect("the tally").redelivered
    }

    /// Events that arrived past their stream's next version (none may).
    pub fn gaps(&self) -> Vec<String> {
        self.state.lock().expect("the tally").gaps.clone()
    }

    /// The entry an event makes.
    pub fn entry(event: &RecordedEvent) -> Entry {
        (
            event.version.get(),
            event.payload["append"].as_str().unwrap_or("?").to_owned(),
            event.payload["index"].as_u64().unwrap_or(u64::MAX),
        )
    }
}

#[async_trait]
impl Projection for Tally {
    fn name(&self) -> &str {
        &self.name
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut state = self.state.lock().expect("the tally");
        for event in events {
            let stream = event.stream_id.as_str().to_owned();
            let applied = state.streams.get(&stream).map_or(0, |e| e.len() as u64);
            let version = event.version.get();
            if version <= applied {
                state.redelivered += 1;
                continue;
            }
            if version != applied + 1 {
                state
                    .gaps
                    .push(format!("{stream}: version {version} after {applied}"));
            }
            state
                .streams
                .entry(stream)
                .or_default()
                .push(Self::entry(event));
        }
        Ok(())
    }
}
