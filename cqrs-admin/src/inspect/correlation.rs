//! [`Correlation`]: everything one correlation id caused.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::EventView;

/// The events carrying one correlation id, in feed order: a request and everything it caused,
/// across streams (commands, process managers' decisions, their commands' events).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Correlation {
    /// The correlation id.
    pub correlation_id: Uuid,
    /// Its events.
    pub events: Vec<EventView>,
}
